"""The Python peers `benches/peers/run.sh` measures Inlet against: the official aws-kinesis-agg
(KPL aggregation and deaggregation) and a boto3 `put_records` loop, on the events file that
`benches/benches/peers.rs gen` wrote (JSON lines {"pk", "data" (base64)}).

    kpl_peer.py aggregate EVENTS INLET_AGGREGATES MAX_SIZE REPEAT [bytes|str]
        RecordAggregator(max_size=MAX_SIZE) over every event in file order; each aggregate it
        returns when full, and the last one (clear_and_get), is turned into bytes with
        get_contents(). Timed: that loop. Then (untimed) compares the aggregates with Inlet's,
        byte for byte. Partition keys are passed as bytes by default: aws-kinesis-agg 1.2.3
        looks a str key up in its key table as bytes, never finds it, and so counts a repeated
        str key's table entry again, sealing aggregates early (`str` measures that).

    kpl_peer.py deaggregate AGGREGATES EVENTS REPEAT
        AGGREGATES: JSON lines {"pk", "data" (base64)} (Inlet's). Timed, REPEAT times each:
        list(iter_deaggregate_records(records, data_format="Boto3")) over records as boto3's
        get_records returns them (data as bytes); and deaggregate_records(records) over records
        as Lambda gets them (data base64, decoded by the library). Then (untimed) checks that
        both yield exactly the events, in order.

    kpl_peer.py put ENDPOINT EVENTS N SHARDS plain|aggregated MAX_SIZE MAX_CALL_BYTES
        Creates a fresh stream of SHARDS shards on the emulator (untimed), then puts the first
        N events with boto3 put_records in calls of at most 500 records and MAX_CALL_BYTES,
        one call at a time; records a call fails (throttled) are retried with backoff.
        plain: one event per Kinesis record, no aggregation, in file order.
        aggregated: one RecordAggregator(max_size=MAX_SIZE) per shard, events routed by the
        MD5 of their partition key over the shards' hash-key ranges (as the KPL and Inlet do);
        a full aggregate is queued under its first user record's partition key, and the
        partial ones at the end. Timed: from the first event to the last call answered.
        Deletes the stream after.

Prints one JSON line: seconds per repetition and this process's CPU seconds
(resource.getrusage) over the timed part.
"""
import base64
import bisect
import hashlib
import json
import resource
import sys
import time

from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import deaggregate_records, iter_deaggregate_records

CALL_RECORDS = 500
MAX_ATTEMPTS = 30


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def median(xs):
    return sorted(xs)[len(xs) // 2]


def read_lines(path, limit=None):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            if limit is not None and len(out) >= limit:
                break
            r = json.loads(line)
            out.append((r["pk"], r["data"]))
    return out


def versions():
    from importlib.metadata import version
    return {p: version(p) for p in ("aws-kinesis-agg", "protobuf", "boto3")} | {"python": sys.version.split()[0]}


def aggregate(events_path, inlet_path, max_size, repeat, key_type):
    events = read_lines(events_path)
    if key_type == "bytes":
        users = [(pk.encode("utf-8"), base64.b64decode(d)) for pk, d in events]
    else:
        users = [(pk, base64.b64decode(d)) for pk, d in events]
    nbytes = sum(len(pk) + len(d) for pk, d in users)
    seconds, cpu_seconds, out = [], 0.0, []
    for _ in range(repeat):
        out = []
        c0, t0 = cpu(), time.perf_counter()
        aggregator = RecordAggregator(max_size=max_size)
        for pk, data in users:
            full = aggregator.add_user_record(pk, data)
            if full is not None:
                out.append(full.get_contents())
        last = aggregator.clear_and_get()
        if last is not None:
            out.append(last.get_contents())
        seconds.append(time.perf_counter() - t0)
        cpu_seconds += cpu() - c0

    inlet = [(pk, base64.b64decode(d)) for pk, d in read_lines(inlet_path)]
    first_difference = None
    for i, ((pk, _ehk, data), (ipk, idata)) in enumerate(zip(out, inlet)):
        pk = pk.decode("utf-8") if isinstance(pk, bytes) else pk
        if pk != ipk or data != idata:
            first_difference = i
            break
    if first_difference is None and len(out) != len(inlet):
        first_difference = min(len(out), len(inlet))
    print(json.dumps({
        "side": "aws-kinesis-agg",
        "mode": "aggregate",
        "keys": key_type,
        "events": len(users),
        "bytes": nbytes,
        "aggregates": len(out),
        "aggregate_bytes": sum(len(data) for _, _, data in out),
        "max_aggregate_bytes": max_size,
        "seconds": seconds,
        "median_seconds": median(seconds),
        "cpu_seconds": cpu_seconds / repeat,
        "inlet_aggregates": len(inlet),
        "identical_to_inlet": first_difference is None,
        "first_difference": first_difference,
        "versions": versions(),
    }), flush=True)


def deaggregate(aggregates_path, events_path, repeat):
    aggregates = read_lines(aggregates_path)
    events = read_lines(events_path)
    boto3_records = [
        {"SequenceNumber": str(i), "PartitionKey": pk, "ApproximateArrivalTimestamp": 0,
         "Data": base64.b64decode(d)}
        for i, (pk, d) in enumerate(aggregates)
    ]
    lambda_records = [
        {"kinesis": {"kinesisSchemaVersion": "1.0", "sequenceNumber": str(i), "partitionKey": pk,
                     "approximateArrivalTimestamp": 0, "data": d}}
        for i, (pk, d) in enumerate(aggregates)
    ]

    def check(users):
        # The library hands data back base64-encoded (as Lambda delivers it): compare as text.
        if len(users) != len(events):
            return False
        return all(u["kinesis"]["partitionKey"] == pk and u["kinesis"]["data"].decode("ascii") == d
                   for u, (pk, d) in zip(users, events))

    result = {"side": "aws-kinesis-agg", "mode": "deaggregate", "events": len(events),
              "aggregates": len(aggregates)}
    for name, run in (
        ("iter_boto3", lambda: list(iter_deaggregate_records(boto3_records, data_format="Boto3"))),
        ("deaggregate_records_lambda", lambda: deaggregate_records(lambda_records)),
    ):
        seconds, cpu_seconds, users = [], 0.0, None
        for _ in range(repeat):
            users = None
            c0, t0 = cpu(), time.perf_counter()
            users = run()
            seconds.append(time.perf_counter() - t0)
            cpu_seconds += cpu() - c0
        result[name] = {"seconds": seconds, "median_seconds": median(seconds),
                        "cpu_seconds": cpu_seconds / repeat, "match_events": check(users)}
        users = None
    result["versions"] = versions()
    print(json.dumps(result), flush=True)


def put(endpoint, events_path, n, shards, mode, max_size, max_call_bytes):
    import boto3

    events = read_lines(events_path, n)
    users = [(pk.encode("utf-8"), base64.b64decode(d)) for pk, d in events]
    nbytes = sum(len(pk) + len(d) for pk, d in users)
    client = boto3.client(
        "kinesis", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="local", aws_secret_access_key="local",
    )
    stream = f"peers-boto3-{mode}-{int(time.time() * 1000)}"
    client.create_stream(StreamName=stream, ShardCount=shards)
    client.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})
    listed = client.list_shards(StreamName=stream)["Shards"]
    ranges = sorted(int(s["HashKeyRange"]["StartingHashKey"]) for s in listed)
    counts = {"stream_records": 0, "calls": 0, "retried": 0}

    def call(records):
        pending, attempt = records, 0
        while pending:
            counts["calls"] += 1
            try:
                results = client.put_records(StreamName=stream, Records=pending)["Records"]
            except client.exceptions.ProvisionedThroughputExceededException:
                results = [{"ErrorCode": "ProvisionedThroughputExceededException"}] * len(pending)
            failed = [rec for rec, res in zip(pending, results) if "ErrorCode" in res]
            counts["stream_records"] += len(pending) - len(failed)
            if failed:
                attempt += 1
                if attempt > MAX_ATTEMPTS:
                    sys.exit(f"gave up on {len(failed)} records after {MAX_ATTEMPTS} attempts")
                counts["retried"] += len(failed)
                time.sleep(min(0.05 * (2 ** attempt), 2.0))
            pending = failed

    batch, batch_bytes = [], 0

    def queue(pk, data):
        nonlocal batch, batch_bytes
        size = len(pk) + len(data)
        if batch and (len(batch) >= CALL_RECORDS or batch_bytes + size > max_call_bytes):
            call(batch)
            batch, batch_bytes = [], 0
        batch.append({"PartitionKey": pk, "Data": data})
        batch_bytes += size

    c0, t0 = cpu(), time.perf_counter()
    if mode == "plain":
        for pk, data in users:
            queue(pk.decode("utf-8"), data)
    else:
        aggregators = [RecordAggregator(max_size=max_size) for _ in ranges]
        for pk, data in users:
            shard = bisect.bisect_right(ranges, int.from_bytes(hashlib.md5(pk).digest(), "big")) - 1
            full = aggregators[shard].add_user_record(pk, data)
            if full is not None:
                agg_pk, _, agg_data = full.get_contents()
                queue(agg_pk.decode("utf-8"), agg_data)
        for aggregator in aggregators:
            last = aggregator.clear_and_get()
            if last is not None:
                agg_pk, _, agg_data = last.get_contents()
                queue(agg_pk.decode("utf-8"), agg_data)
    if batch:
        call(batch)
    seconds = time.perf_counter() - t0
    cpu_seconds = cpu() - c0
    client.delete_stream(StreamName=stream)
    print(json.dumps({
        "side": "boto3", "mode": f"put-{mode}", "events": len(users), "bytes": nbytes, "shards": shards,
        "seconds": seconds, "cpu_seconds": cpu_seconds, **counts, "versions": versions(),
    }), flush=True)


def main():
    args = sys.argv[1:]
    if args[:1] == ["aggregate"] and len(args) in (5, 6):
        aggregate(args[1], args[2], int(args[3]), int(args[4]), args[5] if len(args) == 6 else "bytes")
    elif args[:1] == ["deaggregate"] and len(args) == 4:
        deaggregate(args[1], args[2], int(args[3]))
    elif args[:1] == ["put"] and len(args) == 8 and args[5] in ("plain", "aggregated"):
        put(args[1], args[2], int(args[3]), int(args[4]), args[5], int(args[6]), int(args[7]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
