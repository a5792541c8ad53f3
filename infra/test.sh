#!/usr/bin/env bash
# Runs the whole test suite: starts what the tests need (infra/servers.sh), then every test
# of every crate, including the multi-process and oracle tests, and each criterion bench
# once in test mode.
#
# Plain `cargo test` runs only what needs no server: the tests that need one are
# `#[ignore = "needs <server>: run infra/test.sh"]`. Here they run too (--include-ignored),
# and a server that failed to start fails the run: start_servers returns 1, and a test whose
# variable is missing panics. The benches cannot be ignored one by one: INLET_BENCH_SERVERS=1
# makes their server parts fail, not skip, when a server variable is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust with rustup (https://rustup.rs)" >&2; exit 1; }
command -v cc >/dev/null 2>&1 || { echo "no C compiler (cc): the bundled SQLite needs one (Debian: apt-get install build-essential)" >&2; exit 1; }

# shellcheck source=infra/servers.sh
source infra/servers.sh
# Trapped first: servers that started are stopped even when another failed to.
trap stop_servers EXIT
start_servers

cargo test --workspace --locked -- --include-ignored
INLET_BENCH_SERVERS=1 cargo test --locked -p inlet-benches --benches
