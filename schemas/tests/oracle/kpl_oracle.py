"""Oracle for tests/kpl_codec.rs: runs the official aws-kinesis-agg (Python) on cases from stdin.

Input, one item a line, all strings hex-encoded (UTF-8 for keys), "-" for "none":
    case <outer_pk_hex> <outer_ehk|-> <data_hex> <n>     data: a Kinesis record's data to deaggregate
    rec <pk_hex> <ehk|-> <data_hex>                      n of these: user records to aggregate
Output for each case:
    deagg <m>  then m lines  rec <pk_hex> <ehk|-> <data_hex>   (aws_kinesis_agg.deaggregator)
    agg <outer_pk_hex> <outer_ehk|-> <data_hex>  or  agg -      (aws_kinesis_agg.aggregator, if n > 0)
"""
import base64
import sys

from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import deaggregate_records


def unhex_str(s):
    return bytes.fromhex(s).decode("utf-8")


def opt(s):
    return None if s == "-" else s


def show(s):
    return "-" if s is None else s


def run_case(outer_pk, outer_ehk, data, recs, out):
    kinesis = {
        "kinesisSchemaVersion": "1.0",
        "sequenceNumber": "1",
        "approximateArrivalTimestamp": 0,
        "partitionKey": outer_pk,
        "data": base64.b64encode(data),
    }
    if outer_ehk is not None:
        kinesis["explicitHashKey"] = outer_ehk
    users = deaggregate_records([{"kinesis": kinesis}])
    out.append("deagg %d" % len(users))
    for u in users:
        k = u["kinesis"]
        out.append("rec %s %s %s" % (k["partitionKey"].encode("utf-8").hex(),
                                     show(k.get("explicitHashKey")),
                                     base64.b64decode(k["data"]).hex()))
    if not recs:
        out.append("agg -")
        return
    aggregator = RecordAggregator()
    for pk, ehk, payload in recs:
        if aggregator.add_user_record(pk, payload, ehk) is not None:
            raise SystemExit("aggregate overflowed one record; keep oracle cases small")
    agg_pk, agg_ehk, agg_data = aggregator.clear_and_get().get_contents()
    out.append("agg %s %s %s" % (agg_pk.encode("utf-8").hex(), show(agg_ehk), agg_data.hex()))


def main():
    lines = sys.stdin.read().split("\n")
    out, i = [], 0
    while i < len(lines):
        if not lines[i]:
            i += 1
            continue
        tag, pk, ehk, data, n = lines[i].split(" ")
        assert tag == "case", lines[i]
        recs = []
        for line in lines[i + 1:i + 1 + int(n)]:
            rtag, rpk, rehk, rdata = line.split(" ")
            assert rtag == "rec", line
            recs.append((unhex_str(rpk), opt(rehk), bytes.fromhex(rdata)))
        i += 1 + int(n)
        run_case(unhex_str(pk), opt(ehk), bytes.fromhex(data), recs, out)
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
