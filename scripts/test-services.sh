#!/usr/bin/env bash
# Ensure a PostgreSQL and a Redis server are available for the chatkeep test
# suite, and stop only what we started.
#
#   scripts/test-services.sh up   STATEDIR   # start/reuse servers, write STATEDIR/env
#   scripts/test-services.sh down STATEDIR   # stop the servers that `up` started
#
# `up` writes STATEDIR/env with
#   export CHATKEEP_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:PORT/postgres
#   export CHATKEEP_TEST_REDIS_URL=redis://127.0.0.1:PORT/0
#
# Environment:
#   CHATKEEP_TEST_POSTGRES_URL / CHATKEEP_TEST_REDIS_URL  use as-is, start nothing
#   CHATKEEP_TEST_PG_PORT      (default 55432)
#   CHATKEEP_TEST_REDIS_PORT   (default 56379)
#   CHATKEEP_TEST_WAIT_TIMEOUT seconds to wait for a server (default 30)
#
# Files in STATEDIR:
#   env              the URLs (see above)
#   postgres.started present only if we started PostgreSQL; line 1 = base dir
#                    (holds data/, the socket and server.log), line 2 = bin dir
#   redis.started    present only if we started Redis; contains the port
#   redis.pid, redis.log
#
# Markers are written *before* a server is started, so `down` also cleans up
# after an `up` that failed halfway.  `down` is idempotent.
set -euo pipefail

PROG=test-services
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }

usage() { echo "usage: $0 up|down STATEDIR" >&2; exit 2; }

[ $# -eq 2 ] || usage
ACTION=$1
STATEDIR_ARG=$2
[ -n "$STATEDIR_ARG" ] || usage

PG_PORT=${CHATKEEP_TEST_PG_PORT:-55432}
REDIS_PORT=${CHATKEEP_TEST_REDIS_PORT:-56379}
WAIT_TIMEOUT=${CHATKEEP_TEST_WAIT_TIMEOUT:-30}

# ---------------------------------------------------------------- helpers ---

abs_statedir() {
    # Make STATEDIR absolute (relative to the caller's cwd); create it for `up`.
    local d=$1 create=$2
    if [ "$create" = yes ]; then
        mkdir -p -- "$d"
    fi
    if [ -d "$d" ]; then
        (cd -- "$d" && pwd -P)
    else
        case $d in
            /*) printf '%s\n' "$d" ;;
            *) printf '%s/%s\n' "$(pwd -P)" "$d" ;;
        esac
    fi
}

APT_UPDATED=no
POLICY_RC_CREATED=no
cleanup_policy_rc() {
    if [ "$POLICY_RC_CREATED" = yes ]; then
        rm -f /usr/sbin/policy-rc.d
        POLICY_RC_CREATED=no
    fi
}
trap cleanup_policy_rc EXIT

apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not available; cannot install $*"
    [ "$(id -u)" -eq 0 ] || die "need root to install $*"
    # Keep the package's maintainer scripts from starting system services
    # (postgresql on 5432, redis on 6379): they are not ours.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        POLICY_RC_CREATED=yes
    fi
    export DEBIAN_FRONTEND=noninteractive
    if [ "$APT_UPDATED" = no ]; then
        log "apt-get update"
        apt-get update -qq >&2
        APT_UPDATED=yes
    fi
    log "apt-get install -y $*"
    apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "$@" >&2
    cleanup_policy_rc
}

write_env() {
    local f=$STATEDIR/env tmp
    tmp=$(mktemp "$STATEDIR/.env.XXXXXX")
    {
        printf 'export CHATKEEP_TEST_POSTGRES_URL=%q\n' "$1"
        printf 'export CHATKEEP_TEST_REDIS_URL=%q\n' "$2"
    } >"$tmp"
    chmod 644 "$tmp"
    mv -f -- "$tmp" "$f"
}

# ------------------------------------------------------------- PostgreSQL ---

PGBIN=
find_pg_bin() {
    local d best=
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] \
            && [ -x "$d/pg_isready" ] && [ -x "$d/psql" ]; then
            best=$d
        fi
    done
    [ -n "$best" ] || return 1
    PGBIN=$best
}

ensure_pg_bin() {
    if ! find_pg_bin; then
        log "PostgreSQL server binaries not found; installing"
        apt_install postgresql
        find_pg_bin || die "PostgreSQL binaries still not found after install"
    fi
}

ensure_postgres_user() {
    if ! getent passwd postgres >/dev/null; then
        log "creating system user postgres"
        getent group postgres >/dev/null || groupadd --system postgres
        useradd --system --gid postgres --home-dir /var/lib/postgresql \
            --no-create-home --shell /bin/bash postgres
    fi
}

as_postgres() { (cd / && runuser -u postgres -- "$@"); }

pg_ready() {  # exit status of pg_isready: 0 ok, 1 rejecting, 2 no response, 3 error
    local rc=0
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 3 >/dev/null 2>&1 || rc=$?
    return $rc
}

pg_usable() {
    PGCONNECT_TIMEOUT=5 "$PGBIN/psql" -X -q -A -t -w -h 127.0.0.1 -p "$PG_PORT" \
        -U postgres -d postgres -c 'select 1' >/dev/null 2>&1
}

# Is the server recorded in postgres.started running?
pg_ours_running() {
    local base bin
    [ -f "$STATEDIR/postgres.started" ] || return 1
    base=$(sed -n 1p "$STATEDIR/postgres.started")
    bin=$(sed -n 2p "$STATEDIR/postgres.started")
    [ -n "$base" ] && [ -f "$base/data/postmaster.pid" ] || return 1
    [ -x "$bin/pg_ctl" ] || bin=$PGBIN
    as_postgres "$bin/pg_ctl" status -D "$base/data" >/dev/null 2>&1
}

safe_pg_base() {  # only ever rm -rf directories we could have created
    case $1 in
        "$STATEDIR/postgres" | /tmp/chatkeep-pg.*) return 0 ;;
        *) return 1 ;;
    esac
}

pg_stop_ours() {
    local marker=$STATEDIR/postgres.started base bin pid
    [ -f "$marker" ] || return 0
    base=$(sed -n 1p "$marker")
    bin=$(sed -n 2p "$marker")
    if [ -z "$base" ] || ! safe_pg_base "$base"; then
        log "WARNING: ignoring suspicious postgres base dir '$base' in $marker"
        rm -f -- "$marker"
        return 0
    fi
    if [ -f "$base/data/postmaster.pid" ]; then
        [ -x "$bin/pg_ctl" ] || { find_pg_bin && bin=$PGBIN; } || bin=
        if [ -n "$bin" ] && [ -x "$bin/pg_ctl" ] \
            && as_postgres "$bin/pg_ctl" status -D "$base/data" >/dev/null 2>&1; then
            log "stopping our PostgreSQL (data dir $base/data)"
            as_postgres "$bin/pg_ctl" stop -D "$base/data" -m fast -w -t "$WAIT_TIMEOUT" >/dev/null 2>&1 \
                || as_postgres "$bin/pg_ctl" stop -D "$base/data" -m immediate -w -t 10 >/dev/null 2>&1 \
                || true
        fi
        # Fallback: pg_ctl unavailable or failed; signal the postmaster directly.
        pid=$(sed -n 1p "$base/data/postmaster.pid" 2>/dev/null || true)
        if [[ $pid =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/comm" ] \
            && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ] \
            && [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$base/data" ]; then
            log "killing leftover postmaster $pid"
            kill -QUIT "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    if [ -d "$base" ]; then
        log "removing $base"
        rm -rf -- "$base"
    fi
    rm -f -- "$marker"
}

pg_up() {
    if [ -n "${CHATKEEP_TEST_POSTGRES_URL:-}" ]; then
        log "PostgreSQL: using CHATKEEP_TEST_POSTGRES_URL from environment"
        PG_URL=$CHATKEEP_TEST_POSTGRES_URL
        return 0
    fi
    PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
    ensure_pg_bin

    local rc=0
    pg_ready || rc=$?
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 1 ]; then
        # Something PostgreSQL-like answers; give it a moment if it is starting.
        local deadline=$((SECONDS + WAIT_TIMEOUT))
        while ! pg_usable && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
        pg_usable || die "a server answers on 127.0.0.1:$PG_PORT but 'psql -U postgres' fails; set CHATKEEP_TEST_PG_PORT to a free port"
        if pg_ours_running; then
            log "PostgreSQL: ours already running on 127.0.0.1:$PG_PORT"
        else
            log "PostgreSQL: reusing existing server on 127.0.0.1:$PG_PORT (not started by us)"
        fi
        return 0
    fi

    # Start our own throwaway cluster.  Clean up a dead leftover of ours first.
    pg_stop_ours
    ensure_postgres_user

    local base
    base=$STATEDIR/postgres
    # postgres must be able to reach the data dir; and the socket path must fit
    # in sun_path (~107 bytes).
    if ! as_postgres test -x "$STATEDIR" 2>/dev/null \
        || [ ${#base} -gt 80 ]; then
        base=$(mktemp -d /tmp/chatkeep-pg.XXXXXX)
        log "PostgreSQL: $STATEDIR not usable by user postgres; using $base"
    else
        mkdir -p -- "$base"
    fi
    printf '%s\n%s\n' "$base" "$PGBIN" >"$STATEDIR/postgres.started"
    chown postgres:postgres "$base"
    chmod 700 "$base"

    log "PostgreSQL: initdb in $base/data ($PGBIN)"
    if ! as_postgres "$PGBIN/initdb" -D "$base/data" -U postgres --auth=trust \
        -E UTF8 --no-locale --no-sync >"$base/initdb.log" 2>&1; then
        cat "$base/initdb.log" >&2
        die "initdb failed"
    fi
    cat >>"$base/data/postgresql.conf" <<EOF

# chatkeep test settings (scripts/test-services.sh)
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$base'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
EOF

    log "PostgreSQL: starting on 127.0.0.1:$PG_PORT"
    as_postgres touch "$base/server.log"
    if ! as_postgres "$PGBIN/pg_ctl" start -D "$base/data" -l "$base/server.log" \
        -w -t "$WAIT_TIMEOUT" >/dev/null 2>&1; then
        log "PostgreSQL: pg_ctl start failed; server log:"
        cat "$base/server.log" >&2 || true
        die "PostgreSQL did not start"
    fi
    local deadline=$((SECONDS + WAIT_TIMEOUT))
    until pg_ready && pg_usable; do
        if [ $SECONDS -ge $deadline ]; then
            log "PostgreSQL: not ready after ${WAIT_TIMEOUT}s; server log:"
            cat "$base/server.log" >&2 || true
            die "PostgreSQL did not become ready"
        fi
        sleep 0.3
    done
    log "PostgreSQL: ready on 127.0.0.1:$PG_PORT"
}

# ------------------------------------------------------------------ Redis ---

redis_ping() {
    # Pure-bash PING (works without redis-cli).
    timeout 5 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "PING\r\n" >&3
        IFS= read -r -t 3 reply <&3 || exit 1
        [[ $reply == +PONG* ]]
    ' _ "$REDIS_PORT" 2>/dev/null
}

redis_pid_ours() {  # prints pid of our redis if it is running
    local pid
    [ -f "$STATEDIR/redis.pid" ] || return 1
    pid=$(tr -dc '0-9' <"$STATEDIR/redis.pid")
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'redis-server' || return 1
    printf '%s\n' "$pid"
}

redis_stop_ours() {
    local marker=$STATEDIR/redis.started pid
    [ -f "$marker" ] || return 0
    if pid=$(redis_pid_ours); then
        log "stopping our Redis (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            log "Redis $pid did not exit; killing"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f -- "$STATEDIR/redis.pid" "$STATEDIR/redis.log" "$STATEDIR/dump.rdb" "$marker"
}

redis_up() {
    if [ -n "${CHATKEEP_TEST_REDIS_URL:-}" ]; then
        log "Redis: using CHATKEEP_TEST_REDIS_URL from environment"
        REDIS_URL=$CHATKEEP_TEST_REDIS_URL
        return 0
    fi
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"

    if redis_ping; then
        if [ -f "$STATEDIR/redis.started" ] && redis_pid_ours >/dev/null; then
            log "Redis: ours already running on 127.0.0.1:$REDIS_PORT"
        else
            log "Redis: reusing existing server on 127.0.0.1:$REDIS_PORT (not started by us)"
        fi
        return 0
    fi

    redis_stop_ours  # dead leftover of ours, if any
    if ! command -v redis-server >/dev/null 2>&1; then
        log "redis-server not found; installing"
        apt_install redis-server redis-tools
        command -v redis-server >/dev/null 2>&1 || die "redis-server still not found after install"
    fi

    printf '%s\n' "$REDIS_PORT" >"$STATEDIR/redis.started"
    log "Redis: starting on 127.0.0.1:$REDIS_PORT"
    if ! redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
        --save '' --appendonly no --daemonize yes \
        --pidfile "$STATEDIR/redis.pid" --dir "$STATEDIR" \
        --logfile "$STATEDIR/redis.log" </dev/null >/dev/null 2>&1; then
        cat "$STATEDIR/redis.log" >&2 2>/dev/null || true
        die "redis-server failed to start"
    fi
    local deadline=$((SECONDS + WAIT_TIMEOUT))
    until redis_ping; do
        if [ $SECONDS -ge $deadline ]; then
            log "Redis: no PING reply after ${WAIT_TIMEOUT}s; log:"
            cat "$STATEDIR/redis.log" >&2 2>/dev/null || true
            die "Redis did not become ready"
        fi
        sleep 0.2
    done
    log "Redis: ready on 127.0.0.1:$REDIS_PORT"
}

# ------------------------------------------------------------------- main ---

case $ACTION in
    up)
        STATEDIR=$(abs_statedir "$STATEDIR_ARG" yes)
        PG_URL= REDIS_URL=
        pg_up
        redis_up
        write_env "$PG_URL" "$REDIS_URL"
        log "wrote $STATEDIR/env"
        ;;
    down)
        STATEDIR=$(abs_statedir "$STATEDIR_ARG" no)
        if [ ! -d "$STATEDIR" ]; then
            log "nothing to do ($STATEDIR does not exist)"
            exit 0
        fi
        rc=0
        pg_stop_ours || rc=1
        redis_stop_ours || rc=1
        rm -f -- "$STATEDIR/env" "$STATEDIR"/.env.*
        rmdir -- "$STATEDIR" 2>/dev/null || true
        log "down done"
        exit $rc
        ;;
    *)
        usage
        ;;
esac
