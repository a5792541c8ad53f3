# shellcheck shell=bash
# The one place that starts what the tests talk to, on loopback, and tells the tests where
# it is through environment variables. Source it, then `start_servers`; `stop_servers`
# undoes it (test.sh traps it on exit).
#
# One-time installs are cached under $INLET_CACHE (default ~/.cache/inlet), outside the
# clone, so a warm run starts in seconds.
#
# What it provides today:
#   INLET_KPL_ORACLE_PYTHON  a Python with the official aws-kinesis-agg (the KPL format oracle)
# Later issues add here: the Kinesis emulator (kinesis-local), a Kafka broker, PostgreSQL.

INLET_CACHE="${INLET_CACHE:-$HOME/.cache/inlet}"
INLET_RUN_DIR=""

log() { printf '[servers] %s\n' "$*" >&2; }

# Runs apt-get install for the named packages when we may (root, apt present).
apt_install() {
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        log "installing $* with apt-get"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        log "cannot install $* (need root and apt-get); install it and run again"
        return 1
    fi
}

# The official Python KPL aggregation library, in a venv of its own.
start_kpl_oracle() {
    local venv="$INLET_CACHE/py-kpl"
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import aws_kinesis_agg, six' 2>/dev/null; then
        command -v python3 >/dev/null 2>&1 || apt_install python3 || return 1
        if ! python3 -m venv "$venv.tmp" 2>/dev/null; then
            rm -rf "$venv.tmp"
            apt_install python3-venv || return 1
            python3 -m venv "$venv.tmp" || return 1
        fi
        # aws-kinesis-agg imports six without declaring it.
        "$venv.tmp/bin/pip" install -q 'aws-kinesis-agg==1.2.3' six || return 1
        rm -rf "$venv" && mv "$venv.tmp" "$venv"
        # A moved venv keeps absolute paths in its scripts; the interpreter itself is fine.
    fi
    export INLET_KPL_ORACLE_PYTHON="$venv/bin/python"
    log "KPL oracle: $INLET_KPL_ORACLE_PYTHON"
}

start_servers() {
    mkdir -p "$INLET_CACHE"
    INLET_RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/inlet-servers.XXXXXX")"
    local failed=0
    start_kpl_oracle || failed=1
    if [ "$failed" = 1 ]; then
        if [ "${CI:-}" = true ]; then
            log "a test dependency failed to start; under CI that fails the run"
            return 1
        fi
        log "a test dependency failed to start; the tests that need it will say so"
    fi
}

stop_servers() {
    [ -n "$INLET_RUN_DIR" ] && rm -rf "$INLET_RUN_DIR"
    INLET_RUN_DIR=""
}
