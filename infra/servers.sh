# shellcheck shell=bash
# The one place that starts what the tests talk to, on loopback, and tells the tests where
# it is through environment variables. Source it, then `start_servers`; `stop_servers`
# undoes it (test.sh traps it on exit). `start_servers` fails (returns 1) when any of them
# fails to start: the tests that need a server are the `#[ignore]`d ones, which test.sh runs
# with --include-ignored, and a missing server must fail that run, not skip.
#
# One-time installs are cached under $INLET_CACHE (default ~/.cache/inlet), outside the
# clone, so a warm run starts in seconds.
#
# What it provides today:
#   INLET_KPL_ORACLE_PYTHON  a Python with the official aws-kinesis-agg (the KPL format oracle)
#   INLET_PG_URL             a throwaway PostgreSQL cluster on a random loopback port (tests
#                            create a fresh database each); INLET_PG_RESTART restarts it. TCP
#                            is TLS only (a throwaway CA signs its certificate for 127.0.0.1
#                            and localhost), and the URL says sslmode=verify-full and
#                            sslrootcert=INLET_PG_CA, so every PostgreSQL test runs over TLS
#   INLET_PG_CA              that CA's certificate (PEM)
#   INLET_PG_PASSWORD_URL    the same server as a role that logs in with a password
#                            (SCRAM-SHA-256), verify-full too
#   INLET_CHROMIUM           Debian's headless Chromium (the dashboard's browser test)
#   INLET_PROMTOOL           Prometheus's promtool (checks every process's /metrics page)
#   INLET_NODE_MODULES       node_modules holding playwright-core, which drives it
#   INLET_KINESIS_ENDPOINT   the Kinesis API emulator (npm kinesis-local) on a random loopback
#                            port (tests create a fresh stream each; infra/kinesis-local.sh
#                            starts a private one for tests that stop it)
#   INLET_KPL_ORACLE_PYTHON also has boto3, the independent Kinesis client
#   INLET_KAFKA_BOOTSTRAP    a Kafka-protocol broker (Tansu, installed once with cargo, ~18 min)
#                            on a random loopback port, as host:port (tests create a fresh
#                            topic each; infra/kafka-broker.sh starts a private one for tests
#                            that stop it)
#   INLET_KAFKA_ORACLE_PYTHON a Python with confluent-kafka (the independent Kafka client, on
#                            the librdkafka its wheel bundles)

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
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import aws_kinesis_agg, six, boto3' 2>/dev/null; then
        command -v python3 >/dev/null 2>&1 || apt_install python3 || return 1
        if ! python3 -m venv "$venv.tmp" 2>/dev/null; then
            rm -rf "$venv.tmp"
            apt_install python3-venv || return 1
            python3 -m venv "$venv.tmp" || return 1
        fi
        # aws-kinesis-agg imports six without declaring it.
        "$venv.tmp/bin/pip" install -q 'aws-kinesis-agg==1.2.3' six 'boto3==1.40.*' || return 1
        rm -rf "$venv" && mv "$venv.tmp" "$venv"
        # A moved venv keeps absolute paths in its scripts; the interpreter itself is fine.
    fi
    export INLET_KPL_ORACLE_PYTHON="$venv/bin/python"
    log "KPL oracle: $INLET_KPL_ORACLE_PYTHON"
}

# confluent-kafka, the independent Kafka client, in a venv of its own (its manylinux wheel
# bundles librdkafka: nothing to compile).
CONFLUENT_KAFKA_VERSION=2.16.1
start_kafka_oracle() {
    local venv="$INLET_CACHE/py-kafka"
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c \
        "import confluent_kafka, sys; sys.exit(confluent_kafka.version()[0] != '$CONFLUENT_KAFKA_VERSION')" 2>/dev/null; then
        command -v python3 >/dev/null 2>&1 || apt_install python3 || return 1
        rm -rf "$venv.tmp"
        if ! python3 -m venv "$venv.tmp" 2>/dev/null; then
            rm -rf "$venv.tmp"
            apt_install python3-venv || return 1
            python3 -m venv "$venv.tmp" || return 1
        fi
        "$venv.tmp/bin/pip" install -q "confluent-kafka==$CONFLUENT_KAFKA_VERSION" || return 1
        rm -rf "$venv" && mv "$venv.tmp" "$venv"
    fi
    export INLET_KAFKA_ORACLE_PYTHON="$venv/bin/python"
    log "Kafka oracle: $INLET_KAFKA_ORACLE_PYTHON (confluent-kafka $CONFLUENT_KAFKA_VERSION)"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A throwaway PostgreSQL cluster (initdb + pg_ctl) in the run dir, on a random port, taking
# TCP connections over TLS only (pg_hba has hostssl lines and no plain host line), the way
# managed PostgreSQL is reached.
start_postgres() {
    local bindir=""
    for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && bindir="$d"; done
    if [ -z "$bindir" ]; then
        apt_install postgresql || return 1
        for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && bindir="$d"; done
        # The package starts a cluster of its own; ours is separate.
    fi
    [ -n "$bindir" ] || { log "no PostgreSQL binaries found"; return 1; }
    local data="$INLET_RUN_DIR/pg" port
    port="$(free_port)"
    # initdb and postgres refuse to run as root: run them as an unprivileged user.
    local as=()
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        as=(runuser -u postgres --)
        chown postgres "$INLET_RUN_DIR"
    fi
    # A throwaway CA, and the server's certificate it signs: IP SAN 127.0.0.1 (what the URL
    # names, so verify-full checks an IP address) and localhost.
    local ca="$INLET_RUN_DIR/pg-ca.pem" cert="$INLET_RUN_DIR/pg-server.pem" key="$INLET_RUN_DIR/pg-server.key"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
        -keyout "$INLET_RUN_DIR/pg-ca.key" -out "$ca" -subj "/CN=Inlet test CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        2>/dev/null || { log "openssl could not make the PostgreSQL CA"; return 1; }
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$key" \
        -subj "/CN=localhost" 2>/dev/null |
        openssl x509 -req -CA "$ca" -CAkey "$INLET_RUN_DIR/pg-ca.key" -days 7 \
            -set_serial "0x$(openssl rand -hex 8)" -out "$cert" -extfile <(printf '%s\n' \
                "subjectAltName = IP:127.0.0.1, DNS:localhost" "basicConstraints = critical, CA:FALSE" \
                "keyUsage = critical, digitalSignature" "extendedKeyUsage = serverAuth") \
            2>/dev/null || { log "openssl could not make the PostgreSQL server certificate"; return 1; }
    # PostgreSQL refuses a key that others can read: the server's user's, mode 600.
    chmod 600 "$key" "$INLET_RUN_DIR/pg-ca.key"
    [ "${#as[@]}" -eq 0 ] || chown postgres "$key"
    "${as[@]}" "$bindir/initdb" -D "$data" -U postgres --auth=trust --no-sync -E UTF8 >/dev/null || return 1
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$INLET_RUN_DIR'
fsync = off
max_connections = 200
ssl = on
ssl_cert_file = '$cert'
ssl_key_file = '$key'
CONF
    # TCP only over TLS: trust for the superuser the tests use, a password (SCRAM) for
    # inlet_scram; the Unix socket (trust) is for this script's own psql.
    cat >"$data/pg_hba.conf" <<HBA
local   all  all                        trust
hostssl all  inlet_scram  127.0.0.1/32  scram-sha-256
hostssl all  all          127.0.0.1/32  trust
HBA
    "${as[@]}" "$bindir/pg_ctl" -D "$data" -l "$INLET_RUN_DIR/pg.log" -w -t 60 start >/dev/null || {
        cat "$INLET_RUN_DIR/pg.log" >&2
        return 1
    }
    local password
    password="$(openssl rand -hex 16)"
    "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$INLET_RUN_DIR" -p "$port" -U postgres -d postgres \
        -c "CREATE ROLE inlet_scram LOGIN PASSWORD '$password'" >/dev/null || return 1
    cat >"$INLET_RUN_DIR/pg-restart" <<SH
#!/usr/bin/env bash
exec ${as[*]} "$bindir/pg_ctl" -D "$data" -l "$INLET_RUN_DIR/pg.log" -w -t 60 -m fast restart >/dev/null
SH
    chmod +x "$INLET_RUN_DIR/pg-restart"
    PG_STOP=("${as[@]}" "$bindir/pg_ctl" -D "$data" -m immediate stop)
    local tls="sslmode=verify-full&sslrootcert=$ca"
    export INLET_PG_URL="postgres://postgres@127.0.0.1:$port/postgres?$tls"
    export INLET_PG_PASSWORD_URL="postgres://inlet_scram:$password@127.0.0.1:$port/postgres?$tls"
    export INLET_PG_CA="$ca"
    export INLET_PG_RESTART="$INLET_RUN_DIR/pg-restart"
    log "PostgreSQL: $INLET_PG_URL"
}

# promtool, Prometheus's own linter for /metrics pages, from Debian's prometheus package.
start_promtool() {
    command -v promtool >/dev/null 2>&1 || apt_install prometheus || return 1
    INLET_PROMTOOL="$(command -v promtool)" || return 1
    export INLET_PROMTOOL
    log "promtool: $INLET_PROMTOOL"
}

# Headless Chromium from Debian's package, and playwright-core (pinned) to drive it through
# `executablePath`: no browser is ever downloaded (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD, and
# playwright-core has no install script anyway).
PLAYWRIGHT_CORE_VERSION=1.65.1
start_browser() {
    command -v chromium >/dev/null 2>&1 || apt_install chromium || return 1
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm || return 1
    local dir="$INLET_CACHE/node"
    if ! grep -qs "\"version\": \"$PLAYWRIGHT_CORE_VERSION\"" "$dir/node_modules/playwright-core/package.json"; then
        log "installing playwright-core $PLAYWRIGHT_CORE_VERSION with npm"
        rm -rf "$dir.tmp" && mkdir -p "$dir.tmp" || return 1
        (cd "$dir.tmp" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --silent --no-audit --no-fund \
            "playwright-core@$PLAYWRIGHT_CORE_VERSION" >/dev/null) || return 1
        rm -rf "$dir" && mv "$dir.tmp" "$dir"
    fi
    INLET_CHROMIUM="$(command -v chromium)"
    export INLET_CHROMIUM INLET_NODE_MODULES="$dir/node_modules"
    log "browser: $INLET_CHROMIUM driven by playwright-core $PLAYWRIGHT_CORE_VERSION"
}

# The Kinesis API emulator shared by the tests.
KINESIS_PID=""
start_kinesis() {
    command -v node >/dev/null 2>&1 || apt_install nodejs npm || return 1
    local out
    out="$(./infra/kinesis-local.sh "$INLET_RUN_DIR")" || return 1
    export INLET_KINESIS_ENDPOINT="${out% *}"
    KINESIS_PID="${out#* }"
    log "Kinesis emulator: $INLET_KINESIS_ENDPOINT (pid $KINESIS_PID)"
}

# The Kafka broker shared by the tests (the first run installs Tansu with cargo).
KAFKA_PID=""
start_kafka() {
    local out
    out="$(./infra/kafka-broker.sh "$INLET_RUN_DIR")" || return 1
    export INLET_KAFKA_BOOTSTRAP="${out% *}"
    KAFKA_PID="${out#* }"
    log "Kafka broker: $INLET_KAFKA_BOOTSTRAP (pid $KAFKA_PID)"
}

start_servers() {
    mkdir -p "$INLET_CACHE"
    INLET_RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/inlet-servers.XXXXXX")"
    local failed=0
    start_kpl_oracle || failed=1
    start_postgres || failed=1
    start_browser || failed=1
    start_promtool || failed=1
    start_kinesis || failed=1
    start_kafka_oracle || failed=1
    start_kafka || failed=1
    if [ "$failed" = 1 ]; then
        log "a test dependency failed to start (see above): that fails the run"
        return 1
    fi
}

PG_STOP=()

stop_servers() {
    if [ -n "$KAFKA_PID" ]; then
        kill "$KAFKA_PID" 2>/dev/null || true
        KAFKA_PID=""
    fi
    if [ -n "$KINESIS_PID" ]; then
        kill "$KINESIS_PID" 2>/dev/null || true
        KINESIS_PID=""
    fi
    if [ "${#PG_STOP[@]}" -gt 0 ]; then
        "${PG_STOP[@]}" >/dev/null 2>&1 || true
        PG_STOP=()
    fi
    [ -n "$INLET_RUN_DIR" ] && rm -rf "$INLET_RUN_DIR"
    INLET_RUN_DIR=""
}
