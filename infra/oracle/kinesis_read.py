"""Reads every shard of a Kinesis stream with boto3 and deaggregates KPL records with the
official aws-kinesis-agg library: the independent reader the producer's tests compare with.

    kinesis_read.py ENDPOINT STREAM     -> JSON lines, shards in ListShards order, each in
                                           sequence order: {"shard","seq","sub","pk","data"}
                                           (data base64; sub is null for plain records)
"""
import base64
import json
import sys
import time

import boto3
from aws_kinesis_agg.deaggregator import iter_deaggregate_records

endpoint, stream = sys.argv[1], sys.argv[2]
client = boto3.client(
    "kinesis", endpoint_url=endpoint, region_name="us-east-1",
    aws_access_key_id="local", aws_secret_access_key="local",
)

shards, token = [], None
while True:
    page = client.list_shards(NextToken=token) if token else client.list_shards(StreamName=stream)
    shards += page["Shards"]
    token = page.get("NextToken")
    if not token:
        break

out = sys.stdout
for shard in shards:
    it = client.get_shard_iterator(
        StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    while it:
        page = client.get_records(ShardIterator=it, Limit=10000)
        for user in iter_deaggregate_records(page["Records"], data_format="Boto3"):
            k = user["kinesis"]
            data = k["data"]
            if k.get("aggregated"):
                data = base64.b64decode(data)  # the library re-encodes aggregated ones
            out.write(json.dumps({
                "shard": shard["ShardId"],
                "seq": k["sequenceNumber"],
                "sub": k.get("subSequenceNumber"),
                "pk": k["partitionKey"],
                "data": base64.b64encode(data).decode(),
            }) + "\n")
        it = page.get("NextShardIterator")
        if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
            break  # an open shard read to its current end
        if not page["Records"]:
            time.sleep(0.05)
