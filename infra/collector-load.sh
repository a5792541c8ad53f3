#!/usr/bin/env bash
# Load test of the collector, on loopback only: wrk posts one realistic batch (EVENTS
# generated events, JSON) over CONNECTIONS keep-alive connections for DURATION to
# `inlet collector` in front of a fresh embedded stream; then a consumer worker reads the
# stream into the warehouse and the script checks that every acknowledged event is in the
# rollups. Prints requests/s, events/s, latency percentiles, the collector's CPU seconds per
# million events and its peak RSS.
#
# Usage: infra/collector-load.sh [DURATION=20s] [CONNECTIONS=32] [EVENTS=50]
# Needs wrk (Debian: apt-get install wrk) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20s}
CONNECTIONS=${2:-32}
EVENTS=${3:-50}
THREADS=${THREADS:-2}
PORT=${PORT:-18080}
KEY=load-test-key

cargo build --release -q -p inlet -p inlet-collector --example load_body
inlet=target/release/inlet
work=$(mktemp -d /tmp/inlet-collector-load.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

target/release/examples/load_body "$EVENTS" json > "$work/body.json"
cat > "$work/collector.toml" <<TOML
listen = "127.0.0.1:$PORT"
# The load test measures the collector, not the rate limit.
[rate_limit]
events_per_second = 1e12
burst = 4000000000
[[keys]]
id = "load"
app_id = "load-test"
sha256 = "$(printf %s "$KEY" | $inlet collector hash-key)"
TOML

NO_COLOR=1 $inlet collector --config "$work/collector.toml" --data-dir "$work/data" --shards 4 \
    2> "$work/collector.log" &
collector=$!
pids+=("$collector")
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/readyz" > /dev/null && break
    sleep 0.1
done

cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
local f = assert(io.open("$work/body.json", "rb"))
wrk.body = f:read("*a")
f:close()
function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local ok = summary.requests - summary.errors.status
  io.write(string.format("acknowledged_requests %d\n", ok))
  io.write(string.format("requests_per_s %.0f events_per_s %.0f\n", ok / secs, ok * $EVENTS / secs))
  io.write(string.format("latency_ms p50 %.2f p90 %.2f p99 %.2f max %.2f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
LUA

echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION: $EVENTS events ($(wc -c < "$work/body.json") bytes) per request"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$work/post.lua" \
    "http://127.0.0.1:$PORT/v1/events" | tee "$work/wrk.txt"
acknowledged=$(( $(awk '/^acknowledged_requests/ {print $2}' "$work/wrk.txt") * EVENTS ))

# The collector's CPU time and peak memory, then a graceful stop (SIGTERM).
read -r utime stime < <(awk '{print $14, $15}' "/proc/$collector/stat")
hz=$(getconf CLK_TCK)
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$collector/status")
kill -TERM "$collector"
wait "$collector"
delivered=$(sed 's/\x1b\[[0-9;]*m//g' "$work/collector.log" | grep -o 'delivered=[0-9]*' | tail -1 | cut -d= -f2)
awk -v u="$utime" -v s="$stime" -v hz="$hz" -v n="$delivered" -v rss="$rss_kb" 'BEGIN {
  printf "collector: %d events delivered, %.1f CPU s per million events, peak RSS %.0f MiB\n",
    n, (u + s) / hz / n * 1e6, rss / 1024 }'

# Every acknowledged event must be in the rollups (the consumer reads them all).
NO_COLOR=1 $inlet consume --data-dir "$work/data" 2> "$work/consume.log" &
consumer=$!
pids+=("$consumer")
aggregated=0
for _ in $(seq 600); do
    aggregated=$($inlet report --data-dir "$work/data" 2> /dev/null | awk '/^aggregated/ {gsub(/[^0-9]/, "", $2); print $2}')
    [ "${aggregated:-0}" -ge "$delivered" ] && break
    sleep 1
done
kill -TERM "$consumer"
wait "$consumer" || true
echo "acknowledged $acknowledged events; delivered $delivered; aggregated ${aggregated:-0}"
if [ "${aggregated:-0}" -ne "$delivered" ] || [ "$delivered" -lt "$acknowledged" ]; then
    echo "FAIL: acknowledged events missing from the rollups" >&2
    exit 1
fi
echo "OK: every acknowledged event is in the rollups (data in $work)"
