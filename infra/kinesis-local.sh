#!/usr/bin/env bash
# Starts one Kinesis API emulator (npm `kinesis-local`, the Scala.js build of kinesis-mock)
# on a random loopback port and prints "ENDPOINT PID" once it answers. servers.sh runs it
# for the shared emulator; tests that must stop an emulator (outages) start their own.
#
#   infra/kinesis-local.sh RUN_DIR      (RUN_DIR holds its log; INLET_CACHE the install)
set -euo pipefail
KINESIS_LOCAL_VERSION=0.6.2
run_dir="${1:?usage: kinesis-local.sh RUN_DIR}"
cache="${INLET_CACHE:-$HOME/.cache/inlet}"
dir="$cache/kinesis-local-$KINESIS_LOCAL_VERSION"
main="$dir/node_modules/kinesis-local/main.js"

log() { printf '[kinesis-local] %s\n' "$*" >&2; }

command -v node >/dev/null 2>&1 || { log "node not found (Debian: apt-get install nodejs npm)"; exit 1; }
if [ ! -f "$main" ]; then
    log "installing kinesis-local $KINESIS_LOCAL_VERSION with npm"
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    (cd "$dir.tmp" && npm install --silent --no-audit --no-fund "kinesis-local@$KINESIS_LOCAL_VERSION" >/dev/null)
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port="$(free_port)"
tls_port="$(free_port)"
mkdir -p "$run_dir"
logfile="$run_dir/kinesis-local-$port.log"
# Fast stream changes for tests; enough shards for the 256-shard lease test; in memory only.
(
    cd "$run_dir"
    KINESIS_MOCK_PLAIN_PORT="$port" KINESIS_MOCK_TLS_PORT="$tls_port" \
        KINESIS_MOCK_CERT_PATH="$dir/node_modules/kinesis-local/server.json" \
        SHARD_LIMIT=4096 LOG_LEVEL=WARN SHOULD_PERSIST_DATA=false \
        CREATE_STREAM_DURATION=100ms DELETE_STREAM_DURATION=100ms SPLIT_SHARD_DURATION=100ms \
        MERGE_SHARDS_DURATION=100ms UPDATE_SHARD_COUNT_DURATION=100ms \
        REGISTER_STREAM_CONSUMER_DURATION=100ms DEREGISTER_STREAM_CONSUMER_DURATION=100ms \
        exec node --max-old-space-size=4096 "$main" >"$logfile" 2>&1
) &
pid=$!
for _ in $(seq 1 150); do
    if python3 - "$port" <<'PY' 2>/dev/null; then
import sys, urllib.request
req = urllib.request.Request(
    f"http://127.0.0.1:{sys.argv[1]}/", data=b"{}", method="POST",
    headers={"Content-Type": "application/x-amz-json-1.1",
             "X-Amz-Target": "Kinesis_20131202.ListStreams",
             "X-Amz-Date": "20260101T000000Z",
             "Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0"})
urllib.request.urlopen(req, timeout=1).read()
PY
        echo "http://127.0.0.1:$port $pid"
        exit 0
    fi
    kill -0 "$pid" 2>/dev/null || { log "emulator exited:"; cat "$logfile" >&2; exit 1; }
    sleep 0.2
done
log "emulator did not answer on port $port within 30 s:"
cat "$logfile" >&2
kill "$pid" 2>/dev/null || true
exit 1
