# Shared by the benchmarks (bench/*.sh), sourced by each:
# the re-execution as the server's user, a throwaway cluster, and helpers.
# Each script sets HERE (its directory), WORK (its scratch directory) and
# PORT before sourcing this file.

# bench_reexec SCRIPT ARGS...: run SCRIPT again from $WORK, as postgres when
# run as root, with FLOWSTATE_BENCH_CHILD=1 (the caller prepared $WORK)
bench_reexec() {
    local script=$1
    shift
    cp "$HERE/lib.sh" "$HERE/$script" "$WORK/"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres:postgres "$WORK"
        exec su postgres -s /bin/bash -c \
            "FLOWSTATE_BENCH_CHILD=1 PATH='$PATH' PG_BIN='$PG_BIN' bash '$WORK/$script' $*"
    fi
    FLOWSTATE_BENCH_CHILD=1 exec bash "$WORK/$script" "$@"
}

# bench_stop_leftover: stop a server still running in $WORK (an interrupted
# run, an experiment).  Left running while $WORK is removed and made again,
# it would notice a minute later that its data directory is gone, shut down
# and remove the socket file of the new server, which has the same path.
bench_stop_leftover() {
    [ -f "$WORK/data/postmaster.pid" ] || return 0
    if [ "$(id -u)" -eq 0 ]; then
        su postgres -s /bin/bash -c "'$PG_BIN/pg_ctl' -D '$WORK/data' -m immediate stop" >/dev/null 2>&1 || true
    else
        "$PG_BIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
    fi
}

# bench_prepare: what the server's user needs, installed (.ci/setup.sh), a
# fresh $WORK, and the latency probe (probe.c) built into it
bench_prepare() {
    source "$HERE/../.ci/setup.sh"
    bench_stop_leftover
    rm -rf "$WORK"
    mkdir -p "$WORK"
    cc -O2 -Wall -I"$("$PG_BIN/pg_config" --includedir)" "$HERE/probe.c" -o "$WORK/probe" \
        -L"$("$PG_BIN/pg_config" --libdir)" -lpq
}

# bench_prepare_kafka: what the server's user needs, installed
# (.ci/setup.sh), a fresh $WORK, and librdkafka's mock cluster
# (test/kafka_mock) built and copied into it
bench_prepare_kafka() {
    source "$HERE/../.ci/setup.sh"
    bench_stop_leftover
    rm -rf "$WORK"
    mkdir -p "$WORK"
    make -s -C "$ROOT" test/kafka_mock PG_CONFIG="$PG_BIN/pg_config"
    cp "$ROOT/test/kafka_mock" "$WORK/"
}

# bench_initdb: a cluster in $WORK/data with flowstate preloaded, settings
# that keep checkpoints out of the timed parts, and the lines on stdin
bench_initdb() {
    export PGHOST="$WORK" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres
    initdb -D "$WORK/data" -A trust -U postgres --no-instructions >/dev/null
    cat >> "$WORK/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$WORK'
port = $PORT
shared_preload_libraries = 'flowstate'
wal_level = logical
max_worker_processes = 16
shared_buffers = 1GB
max_wal_size = 16GB
checkpoint_timeout = 1h
timezone = 'UTC'
CONF
    cat >> "$WORK/data/postgresql.conf"
}

q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }
# median, percentile of numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {printf "%.6f\n", (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
pct() { sort -g | awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p/100+0.999); if (i<1) i=1; printf "%.6f\n", a[i]}'; }
# CPU seconds a process (or /proc/PID/task/TID thread) has used
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }

# med LABEL COLUMN: the median of the COLUMNth field of results.txt's lines
# whose second field is LABEL
med() { awk -v v="$1" -v c="$2" '$2 == v {print $c}' results.txt | median; }

# decoder_pid: the decoder of database flow
decoder_pid() { q -d flow -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'flowstate decoder' AND datname = 'flow'"; }

# state_view VIEW: the continuous view that holds VIEW's groups in database
# flow: itself, its panes (hopping, cumulating, session windows) or its
# values (DISTINCT and ordered-set aggregates)
state_view() {
    q -d flow -c "SELECT coalesce(to_regclass('$1_panes'), to_regclass('$1_values'), '$1'::regclass)"
}

# bench_kafka_start (after bench_initdb): the server on CPU 0 and the mock
# Kafka cluster (./kafka_mock, in $WORK) on the others (CONSUMER_CPU and
# BROKER_CPUS: the commands that pin there), both stopped on exit; sets
# BROKERS.  The mock's producer sends batches of up to 10,000 messages (the
# mock serves one batch per partition and fetch, as a broker serves up to
# max.partition.fetch.bytes).  kafka CMD sends the mock a command and prints
# its answer.
bench_kafka_start() {
    local ready
    CONSUMER_CPU=() BROKER_CPUS=()
    if [ "$(nproc)" -ge 2 ]; then
        CONSUMER_CPU=(taskset -c 0) BROKER_CPUS=(taskset -c "1-$(($(nproc) - 1))")
    fi
    "${CONSUMER_CPU[@]}" pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
    coproc KAFKA { "${BROKER_CPUS[@]}" ./kafka_mock linger.ms=1000 queue.buffering.max.messages=4000000 2>kafka.log; }
    trap 'pg_ctl -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true; kill "$KAFKA_PID" 2>/dev/null || true' EXIT
    read -r ready BROKERS <&"${KAFKA[0]}"
    [ "$ready" = ready ]
}
kafka() {
    local answer
    echo "$1" >&"${KAFKA[1]}"
    read -r answer <&"${KAFKA[0]}"
    echo "$answer"
}
