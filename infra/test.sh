#!/usr/bin/env bash
# Runs the whole test suite: starts what the tests need (infra/servers.sh), then every test
# of every crate, including the multi-process and oracle tests, and each criterion bench
# once in test mode.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust with rustup (https://rustup.rs)" >&2; exit 1; }
command -v cc >/dev/null 2>&1 || { echo "no C compiler (cc): the bundled SQLite needs one (Debian: apt-get install build-essential)" >&2; exit 1; }

# shellcheck source=infra/servers.sh
source infra/servers.sh
start_servers
trap stop_servers EXIT

cargo test --workspace --locked
cargo test --locked -p inlet-benches --benches
