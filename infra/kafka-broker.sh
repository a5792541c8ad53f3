#!/usr/bin/env bash
# Starts one Kafka-protocol broker (Tansu, a Rust broker from crates.io, on its SQLite storage
# engine) on a random loopback port and prints "BOOTSTRAP PID" once it answers. servers.sh
# runs it for the shared broker; tests that must stop a broker start their own.
#
#   infra/kafka-broker.sh RUN_DIR       (RUN_DIR holds its log and data; INLET_CACHE the install)
#   infra/kafka-broker.sh --install     (only installs; the first install takes ~18 min)
#
# Why Tansu: no JVM, one binary, and its SQLite engine handles consumer groups, committed
# offsets, idempotent producers, lz4/zstd and timestamp lookups correctly. Its memory engine
# mishandles offsets inside batches, so it is not used. It has no topic auto-creation (tests
# create their topics) and no CreatePartitions. Its DeleteTopics deletes EVERY topic (the
# SQLite engine's topic_delete_by.sql matches on the cluster, not the topic): tests never
# delete a topic on the shared broker, only on a private one.
set -euo pipefail
TANSU_VERSION=0.6.0
cache="${INLET_CACHE:-$HOME/.cache/inlet}"
root="$cache/tansu-$TANSU_VERSION"
bin="$root/bin/tansu"

log() { printf '[kafka-broker] %s\n' "$*" >&2; }

if [ ! -x "$bin" ]; then
    command -v cargo >/dev/null 2>&1 || { log "cargo not found"; exit 1; }
    log "installing tansu $TANSU_VERSION with cargo (one time, ~18 min on 2 cores)"
    rm -rf "$root.tmp"
    # Its own target dir: an exported CARGO_TARGET_DIR (CI's) would otherwise fill with it.
    env -u CARGO_TARGET_DIR cargo install --quiet --root "$root.tmp" --target-dir "$cache/tansu-build" \
        tansu --version "$TANSU_VERSION" --features dynostore,libsql
    rm -rf "$root" && mv "$root.tmp" "$root" && rm -rf "$cache/tansu-build"
fi
[ "${1:-}" = --install ] && { echo "$bin"; exit 0; }

run_dir="${1:?usage: kafka-broker.sh RUN_DIR | --install}"
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port="$(free_port)"
data="$run_dir/kafka-$port"
mkdir -p "$data"
logfile="$data/broker.log"
# Tansu opens sqlite://NAME under its working directory (an absolute path too: it is made
# relative), hence the cd.
(
    cd "$data"
    RUST_LOG=warn exec "$bin" broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine "sqlite://tansu.db" >"$logfile" 2>&1
) &
pid=$!
for _ in $(seq 1 150); do
    if python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$port" 2>/dev/null; then
        echo "127.0.0.1:$port $pid"
        exit 0
    fi
    kill -0 "$pid" 2>/dev/null || { log "broker exited:"; cat "$logfile" >&2; exit 1; }
    sleep 0.2
done
log "broker did not listen on port $port within 30 s:"
cat "$logfile" >&2
kill "$pid" 2>/dev/null || true
exit 1
