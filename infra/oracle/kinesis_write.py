"""Writes records to a Kinesis stream with boto3, independently of Inlet's producer: the
independent writer the consumer's tests read from.

    kinesis_write.py ENDPOINT STREAM FILE MODE [MAX_AGG_BYTES]

FILE holds JSON lines {"pk": partition key, "data": base64}, written in file order.
MODE `plain`:      PutRecords in batches of up to 500 plain records.
MODE `aggregated`: user records packed with the official aws-kinesis-agg RecordAggregator
                   (at most MAX_AGG_BYTES per aggregate, default 1 MiB); each full aggregate,
                   and the last one, is put with PutRecord under its own partition key and
                   explicit hash key (those of its first user record, as Kinesis routes it).
Failed records (throttled, refused) are retried with backoff until written. Counts go to
stderr.
"""
import base64
import json
import sys
import time

import boto3
from aws_kinesis_agg.aggregator import RecordAggregator

BATCH = 500
MAX_ATTEMPTS = 30


def backoff(attempt):
    time.sleep(min(0.05 * (2 ** attempt), 2.0))


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    endpoint, stream, path, mode = sys.argv[1:5]
    max_agg = int(sys.argv[5]) if len(sys.argv) == 6 else 1024 * 1024
    if mode not in ("plain", "aggregated"):
        sys.exit(f"unknown MODE {mode!r}: plain or aggregated")
    client = boto3.client(
        "kinesis", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="local", aws_secret_access_key="local",
    )
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    users = [(r["pk"], base64.b64decode(r["data"])) for r in records]
    counts = {"user_records": len(users), "stream_records": 0, "calls": 0, "retried": 0}
    started = time.monotonic()

    if mode == "plain":
        for i in range(0, len(users), BATCH):
            pending = [{"PartitionKey": pk, "Data": data} for pk, data in users[i:i + BATCH]]
            attempt = 0
            while pending:
                counts["calls"] += 1
                try:
                    out = client.put_records(StreamName=stream, Records=pending)
                except client.exceptions.ProvisionedThroughputExceededException:
                    results = [{"ErrorCode": "ProvisionedThroughputExceededException"}] * len(pending)
                else:
                    results = out["Records"]
                failed = [rec for rec, res in zip(pending, results) if "ErrorCode" in res]
                counts["stream_records"] += len(pending) - len(failed)
                if failed:
                    attempt += 1
                    if attempt > MAX_ATTEMPTS:
                        sys.exit(f"gave up on {len(failed)} records after {MAX_ATTEMPTS} attempts")
                    counts["retried"] += len(failed)
                    backoff(attempt)
                pending = failed
    else:
        aggregator = RecordAggregator(max_size=max_agg)

        def put(agg):
            pk, ehk, data = agg.get_contents()
            args = {"StreamName": stream, "PartitionKey": pk, "Data": data}
            if ehk:  # None unless user records carry explicit hash keys
                args["ExplicitHashKey"] = ehk
            attempt = 0
            while True:
                counts["calls"] += 1
                try:
                    client.put_record(**args)
                    counts["stream_records"] += 1
                    return
                except client.exceptions.ProvisionedThroughputExceededException:
                    attempt += 1
                    if attempt > MAX_ATTEMPTS:
                        sys.exit(f"gave up on an aggregate after {MAX_ATTEMPTS} attempts")
                    counts["retried"] += 1
                    backoff(attempt)

        for pk, data in users:
            full = aggregator.add_user_record(pk, data, None)
            if full is not None:
                put(full)
        last = aggregator.clear_and_get()
        if last is not None:
            put(last)

    counts["seconds"] = round(time.monotonic() - started, 2)
    print(f"kinesis_write.py {mode}: " + json.dumps(counts), file=sys.stderr)


if __name__ == "__main__":
    main()
