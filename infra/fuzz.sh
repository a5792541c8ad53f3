#!/usr/bin/env bash
# Fuzzes every decoder of outside bytes (fuzz/fuzz_targets) with cargo fuzz (libFuzzer):
#   infra/fuzz.sh [SECONDS] [TARGET...]   each target for SECONDS (default 60), all by default
# Each run starts from the committed seeds (fuzz/seeds/<target>) and the corpus earlier runs
# grew ($INLET_CACHE/fuzz-corpus/<target>); a crash, a hang (10 s) or 2 GiB of memory stops
# it with the input in fuzz/artifacts/<target>/, and this script fails. cargo fuzz needs
# nightly features: the nightly toolchain when there is one, else stable with
# RUSTC_BOOTSTRAP=1. Not part of infra/test.sh (which needs no nightly); CI runs a short pass.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
INLET_CACHE="${INLET_CACHE:-$HOME/.cache/inlet}"
tools="$INLET_CACHE/cargo-fuzz"
if [ ! -x "$tools/bin/cargo-fuzz" ]; then
    echo "[fuzz] installing cargo-fuzz (one time)" >&2
    cargo install --quiet --locked cargo-fuzz --version 0.13.2 --root "$tools"
fi
export PATH="$tools/bin:$PATH"
toolchain=()
if rustup run nightly rustc --version > /dev/null 2>&1; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi
# Safe Rust: the sanitizer would only slow the build; libFuzzer's own checks (crash, hang,
# memory) are what these targets need.
flags=(--sanitizer none --release --target-dir "$INLET_CACHE/fuzz-target")
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cd fuzz && cargo "${toolchain[@]}" fuzz list)
fi
cd fuzz
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
    corpus="$INLET_CACHE/fuzz-corpus/$t"
    mkdir -p "$corpus" "artifacts/$t"
    echo "[fuzz] $t for ${seconds}s" >&2
    status=0
    cargo "${toolchain[@]}" fuzz run "${flags[@]}" "$t" "$corpus" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 > "$log" 2>&1 || status=$?
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log" | sed "s/^/[fuzz] $t /" >&2 || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log" >&2
        echo "[fuzz] $t FAILED (exit $status): the input is in fuzz/artifacts/$t/" >&2
        exit 1
    fi
done
echo "[fuzz] ${#targets[@]} targets, ${seconds}s each: no crash, hang or excess memory" >&2
