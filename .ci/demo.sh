#!/usr/bin/env bash
# The main job: a throwaway local PostgreSQL 15 cluster under .demo/ with
# flowstate preloaded, database flowstate_demo set up by test/demo.sql, and
# its workers shown.  Usage: demo.sh [start|stop|status]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

PORT=${FLOWSTATE_PORT:-55432}
DEMO=$ROOT/.demo

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        su postgres -s /bin/bash -c "PATH='$PATH' $*"
    else
        eval "$*"
    fi
}

if [ "$(id -u)" -eq 0 ]; then
    mkdir -p "$DEMO" && chown postgres:postgres "$DEMO"
    if ! su postgres -s /bin/bash -c "test -w '$DEMO'"; then
        DEMO=/tmp/flowstate-demo
        echo "flowstate: the postgres user cannot enter $ROOT; the demo cluster lives in $DEMO"
        mkdir -p "$DEMO" && chown postgres:postgres "$DEMO"
    fi
else
    mkdir -p "$DEMO"
fi
DATA=$DEMO/data
PSQL="psql -X -q -h localhost -p $PORT -U postgres"

stop() {
    if [ -f "$DATA/postmaster.pid" ]; then
        as_pg pg_ctl -D "'$DATA'" -m fast -w stop >/dev/null || true
    fi
}

case "${1:-start}" in
    stop)   stop; exit 0 ;;
    status) as_pg pg_ctl -D "'$DATA'" status; exit $? ;;
    start)  ;;
    *)      echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

stop
rm -rf "$DATA"
as_pg initdb -D "'$DATA'" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-instructions >/dev/null
cat >> "$DATA/postgresql.conf" <<CONF
shared_preload_libraries = 'flowstate'
wal_level = logical
max_worker_processes = 32
max_replication_slots = 16
max_wal_senders = 16
listen_addresses = 'localhost'
port = $PORT
unix_socket_directories = '/tmp'
timezone = 'UTC'
CONF
as_pg pg_ctl -D "'$DATA'" -l "'$DEMO/server.log'" -w start >/dev/null
$PSQL -d postgres -c "CREATE DATABASE flowstate_demo"
$PSQL -d flowstate_demo -v ON_ERROR_STOP=1 -f "$ROOT/test/demo.sql"

for _ in $(seq 1 100); do
    n=$($PSQL -At -d flowstate_demo -c "SELECT count(*) FROM flowstate.workers
            WHERE kind = 'manager' AND datname = 'flowstate_demo' AND state = 'running'")
    [ "$n" = 1 ] && break
    sleep 0.1
done

echo
echo "flowstate workers (pg_stat_activity):"
$PSQL -d flowstate_demo -c "SELECT backend_type, datname, wait_event_type, query AS activity
    FROM pg_stat_activity WHERE backend_type LIKE 'flowstate%' ORDER BY 1, 2"
echo "flowstate.workers:"
$PSQL -d flowstate_demo -c "SELECT kind, datname, pid, state, failures, activity
    FROM flowstate.workers ORDER BY kind = 'manager', datname"
cat <<MSG
The demo server runs on port $PORT (data in $DATA, log in $DEMO/server.log).
Connect:  psql "host=localhost port=$PORT user=postgres dbname=flowstate_demo"
Stop:     bash .ci/demo.sh stop
MSG
