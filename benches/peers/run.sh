#!/usr/bin/env bash
# Inlet against its peers, in one run, on the same events (issue 11):
#
#   1. KPL aggregation and deaggregation: Inlet's `inlet_schemas::kpl` (Aggregator,
#      decode_strict) against the official Python aws-kinesis-agg (RecordAggregator,
#      iter_deaggregate_records / deaggregate_records), 50 KiB aggregates, one process each,
#      the work timed inside the process (no start-up, no file loading). Python decodes
#      Inlet's aggregates, so both decode identical bytes; both results are checked against
#      the events, and Python's aggregates against Inlet's, byte for byte.
#   2. Producing to the Kinesis emulator (kinesis-local): Inlet's Producer against a boto3
#      put_records loop (calls of at most 500 records), plain (one event per record, no
#      aggregation) and with aws-kinesis-agg aggregates per shard; each into a fresh 16-shard
#      stream on the same emulator.
#
#   benches/peers/run.sh
#
# Environment (defaults):
#   PEERS_CODEC_EVENTS (1000000)    events of the KPL codec part
#   PEERS_EMULATOR_EVENTS (100000)  the first events of the same file, for Inlet and for boto3
#                                   with aws-kinesis-agg aggregates
#   PEERS_PLAIN_EVENTS (20000)      the first events of the same file, for boto3 with plain
#                                   records and for Inlet again on them: the emulator's cost per
#                                   record grows with the records already in the shard, so plain
#                                   records take about 5 minutes at 100,000
#   PEERS_SEED (1)                  the generator's seed
#   PEERS_REPEAT (5), PEERS_PY_REPEAT (1)
#                                   repetitions of each codec measurement by Inlet and by Python
#                                   (a Python one of 10^6 events takes about 5 s); the median is
#                                   reported
#   PEERS_WARMUP_EVENTS (10000)     an untimed Inlet put first, to warm the emulator up
#   INLET_KINESIS_ENDPOINT          use this emulator instead of starting one
#   INLET_CACHE (~/.cache/inlet)    the Python venv and the emulator's npm install
#   CARGO_TARGET_DIR, PEERS_KEEP=1 (keep the work directory)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$repo/benches/peers"
export INLET_CACHE="${INLET_CACHE:-$HOME/.cache/inlet}"
codec_events="${PEERS_CODEC_EVENTS:-1000000}"
emulator_events="${PEERS_EMULATOR_EVENTS:-100000}"
plain_events="${PEERS_PLAIN_EVENTS:-20000}"
seed="${PEERS_SEED:-1}"
repeat="${PEERS_REPEAT:-5}"
py_repeat="${PEERS_PY_REPEAT:-1}"
warmup_events="${PEERS_WARMUP_EVENTS:-10000}"
shards=16
max_aggregate=51200    # 50 KiB: the KPL's AggregationMaxSize, Inlet's default
max_call_bytes=1048576 # what producer_throughput gives Inlet against the emulator

log() { printf '[peers] %s\n' "$*" >&2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/inlet-peers.XXXXXX")"
emulator_pid=""
cleanup() {
    if [ -n "$emulator_pid" ]; then kill "$emulator_pid" 2>/dev/null || true; fi
    if [ "${PEERS_KEEP:-0}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# The Python peers: the venv infra/servers.sh makes (aws-kinesis-agg 1.2.3, six, boto3 1.40).
python="$INLET_CACHE/py-kpl/bin/python"
if [ ! -x "$python" ] || ! "$python" -c 'import aws_kinesis_agg, six, boto3' 2>/dev/null; then
    log "making the aws-kinesis-agg venv with infra/servers.sh start_kpl_oracle"
    # shellcheck source=/dev/null
    source "$repo/infra/servers.sh"
    start_kpl_oracle
fi

log "building the peers bench"
bin="$(cd "$repo" && cargo bench -q -p inlet-benches --bench peers --no-run --message-format=json-render-diagnostics |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "peers" and m.get("executable"):
        print(m["executable"])')"
[ -x "$bin" ] || { log "no peers bench executable"; exit 1; }

# CPU seconds (user + system) of a process so far, from /proc/PID/stat.
cpu_of() {
    local f
    read -r -a f < <(sed 's/^.*) //' "/proc/$1/stat")
    echo "$(( f[11] + f[12] )) $(getconf CLK_TCK)" | awk '{printf "%.2f", $1 / $2}'
}

{
    echo "started $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git -C "$repo" rev-parse --short HEAD) plus working tree"
    echo "uptime before: $(uptime)"
} >"$work/header.txt"

log "generating $codec_events events (seed $seed)"
"$bin" gen "$work/events.jsonl" "$codec_events" "$seed" --bench

log "KPL: Inlet (aggregate, deaggregate; $repeat times each)"
"$bin" kpl "$work/events.jsonl" "$work/aggregates.jsonl" "$repeat" --bench >"$work/inlet-kpl.json"
log "KPL: aws-kinesis-agg aggregate"
"$python" "$here/kpl_peer.py" aggregate "$work/events.jsonl" "$work/aggregates.jsonl" "$max_aggregate" "$py_repeat" \
    >"$work/py-aggregate.json"
log "KPL: aws-kinesis-agg deaggregate (Inlet's aggregates)"
"$python" "$here/kpl_peer.py" deaggregate "$work/aggregates.jsonl" "$work/events.jsonl" "$py_repeat" \
    >"$work/py-deaggregate.json"

if [ -n "${INLET_KINESIS_ENDPOINT:-}" ]; then
    endpoint="$INLET_KINESIS_ENDPOINT"
    log "emulator: $endpoint (given; its CPU is not measured)"
else
    read -r endpoint emulator_pid < <("$repo/infra/kinesis-local.sh" "$work")
    log "emulator: $endpoint (pid $emulator_pid)"
fi
# Runs one producer; its JSON line goes to FILE, with the emulator's CPU seconds added.
put() {
    local file="$1" before after
    shift
    before="$([ -n "$emulator_pid" ] && cpu_of "$emulator_pid" || echo "")"
    "$@" >"$file.raw"
    after="$([ -n "$emulator_pid" ] && cpu_of "$emulator_pid" || echo "")"
    python3 - "$file.raw" "$before" "$after" >"$file" <<'PY'
import json, sys
line = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
if sys.argv[2]:
    line["emulator_cpu_seconds"] = float(sys.argv[3]) - float(sys.argv[2])
print(json.dumps(line))
PY
}
if [ "$warmup_events" -gt 0 ]; then
    log "emulator warm-up: Inlet, $warmup_events events (not reported)"
    "$bin" kinesis "$work/events.jsonl" "$endpoint" "$warmup_events" "$shards" --bench >/dev/null
fi
log "emulator: Inlet Producer, $emulator_events events"
put "$work/inlet-put.json" "$bin" kinesis "$work/events.jsonl" "$endpoint" "$emulator_events" "$shards" --bench
log "emulator: boto3 put_records, aws-kinesis-agg aggregates, $emulator_events events"
put "$work/boto3-aggregated.json" "$python" "$here/kpl_peer.py" put "$endpoint" "$work/events.jsonl" \
    "$emulator_events" "$shards" aggregated "$max_aggregate" "$max_call_bytes"
log "emulator: Inlet Producer, $plain_events events"
put "$work/inlet-put-plain-n.json" "$bin" kinesis "$work/events.jsonl" "$endpoint" "$plain_events" "$shards" --bench
log "emulator: boto3 put_records, plain records, $plain_events events"
put "$work/boto3-plain.json" "$python" "$here/kpl_peer.py" put "$endpoint" "$work/events.jsonl" "$plain_events" \
    "$shards" plain "$max_aggregate" "$max_call_bytes"

echo "uptime after: $(uptime)" >>"$work/header.txt"

python3 - "$work" <<'PY'
import json, os, sys

work = sys.argv[1]
def load(name):
    with open(os.path.join(work, name)) as f:
        return json.loads(f.read().strip().splitlines()[-1])

inlet = load("inlet-kpl.json")
agg = load("py-aggregate.json")
deagg = load("py-deaggregate.json")
inlet_put, inlet_put_n = load("inlet-put.json"), load("inlet-put-plain-n.json")
inlet_name = "Inlet `Producer` (KPL aggregation per shard, up to %d calls in flight)"
puts = [(inlet_name, inlet_put, None),
        ("boto3 `put_records` loop, aws-kinesis-agg aggregates per shard", load("boto3-aggregated.json"), inlet_put),
        (inlet_name, inlet_put_n, None),
        ("boto3 `put_records` loop, plain records (one event per record, no aggregation)", load("boto3-plain.json"),
         inlet_put_n)]
v = agg["versions"]
print(open(os.path.join(work, "header.txt")).read().rstrip())
print()
n = inlet["events"]
print(f"KPL codec: {n:,} events ({inlet['bytes'] / 1e6:.1f} MB of key + data), aggregates of at most "
      f"{inlet['max_aggregate_bytes']:,} bytes, median of {len(inlet['aggregate_seconds'])} (Inlet) and "
      f"{len(agg['seconds'])} (Python) repetitions "
      f"(aws-kinesis-agg {v['aws-kinesis-agg']}, protobuf {v['protobuf']}, Python {v['python']})")
print()
print("| work | Inlet | aws-kinesis-agg | Inlet ÷ aws-kinesis-agg | CPU s per repetition, Inlet / Python |")
print("| --- | --- | --- | --- | --- |")
def rate(s):
    return f"{n / s:,.0f} events/s ({s:.3f} s)"
it, lam = deagg["iter_boto3"], deagg["deaggregate_records_lambda"]
rows = [
    ("aggregate (`Aggregator` / `RecordAggregator` + `get_contents`)",
     inlet["aggregate_median_seconds"], agg["median_seconds"], inlet["aggregate_cpu_seconds"], agg["cpu_seconds"]),
    ("deaggregate, boto3-shaped records (`decode_strict` / `iter_deaggregate_records(..., 'Boto3')`)",
     inlet["deaggregate_median_seconds"], it["median_seconds"], inlet["deaggregate_cpu_seconds"], it["cpu_seconds"]),
    ("deaggregate, Lambda-shaped records, base64 in (`decode_strict` / `deaggregate_records`)",
     inlet["deaggregate_median_seconds"], lam["median_seconds"], inlet["deaggregate_cpu_seconds"], lam["cpu_seconds"]),
]
for name, si, sp, ci, cp in rows:
    print(f"| {name} | {rate(si)} | {rate(sp)} | {sp / si:.1f}x | {ci:.2f} / {cp:.2f} |")
print()
print(f"aggregates: Inlet {inlet['aggregates']:,} ({inlet['aggregate_bytes']:,} bytes), aws-kinesis-agg "
      f"{agg['aggregates']:,} ({agg['aggregate_bytes']:,} bytes); byte-identical: {agg['identical_to_inlet']}"
      + ("" if agg["identical_to_inlet"] else f" (first difference at aggregate {agg['first_difference']})"))
print(f"decoded user records equal the events, in order: Inlet {inlet['decoded_match_events']}, "
      f"aws-kinesis-agg {deagg['iter_boto3']['match_events'] and deagg['deaggregate_records_lambda']['match_events']}")
print(f"all timings (s): Inlet aggregate {inlet['aggregate_seconds']}, deaggregate {inlet['deaggregate_seconds']}; "
      f"aws-kinesis-agg aggregate {agg['seconds']}, iter {deagg['iter_boto3']['seconds']}, "
      f"deaggregate_records {deagg['deaggregate_records_lambda']['seconds']}")
print()
print("Kinesis emulator: 16 shards, a fresh stream each, calls of at most 500 records and 1 MiB; "
      "each boto3 row against the Inlet row of the same events")
print()
print("| producer | events | seconds | events/s | MB/s | stream records | calls (retried records) | client CPU s "
      "| emulator CPU s | Inlet ÷ this |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for name, p, ref in puts:
    if "%d" in name:
        name = name % p["max_in_flight"]
    r = p["events"] / p["seconds"]
    client_cpu = p.get("cpu_seconds", p.get("cpu_user", 0) + p.get("cpu_sys", 0))
    emu = p.get("emulator_cpu_seconds")
    emu = f"{emu:.1f}" if emu is not None else "-"
    ratio = "-" if ref is None else f"{ref['events'] / ref['seconds'] / r:.2f}x"
    print(f"| {name} | {p['events']:,} | {p['seconds']:.2f} | {r:,.0f} | {p['bytes'] / p['seconds'] / 1e6:.2f} | "
          f"{p['stream_records']:,} | {p['calls']:,} ({p['retried']:,}) | {client_cpu:.1f} | {emu} | {ratio} |")
PY
