#!/usr/bin/env bash
# The many-groups benchmark: bash bench/groups.sh [rounds]   (or: make bench-groups)
#
# On a throwaway cluster, for a table events(k int, v float8) and a
# continuous view of count, sum, min and max of v per k over 1,000,000 keys
# (no window), each round measures
#   - loading 2,000,000 rows in transactions of 10,000 rows into a table with
#     the view and into one without, and the time until the view is fresh
#     (every key gets two rows: the first load creates the million groups,
#     half-way, the second half changes them);
#   - a restart with that million groups: an immediate stop, a start, then
#     one new row: the seconds of PostgreSQL's crash recovery, then from
#     when the server accepts connections until the view says 'running',
#     and until it shows the new row;
# and checks the view against its defining query run as a batch query;
# then, with flushes an hour apart, it reads one key's last 60 windows of a
# 1-minute tumbling view while its 100,000 groups are in shared memory only.
# Prints each round, then the medians and their ratios.  As root it first
# installs what it needs (.ci/setup.sh) and runs the servers as postgres.
set -euo pipefail
trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
ROUNDS=${1:-${ROUNDS:-3}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${FLOWSTATE_BENCH_DIR:-/tmp/flowstate-bench-groups}
PORT=${FLOWSTATE_BENCH_PORT:-5489}
source "$HERE/lib.sh"

if [ "${FLOWSTATE_BENCH_CHILD:-}" != 1 ]; then
    bench_prepare
    bench_reexec groups.sh "$ROUNDS"
fi

# ---- as the server's user, in $WORK -------------------------------------
cd "$WORK"
bench_initdb <<< "flowstate.memory_limit = '2GB'"
pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
trap 'pg_ctl -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true' EXIT

ROWS=2000000
BATCH=10000
KEYS=1000000
VIEW_SQL="SELECT k, count(*) AS n, sum(v) AS total, min(v) AS lo, max(v) AS hi FROM events GROUP BY k"

# row i: k = i % KEYS, v = (i % 9973) * 0.5
: > load.sql
for ((b = 0; b < ROWS; b += BATCH)); do
    echo "INSERT INTO events SELECT i % $KEYS, (i % 9973) * 0.5 FROM generate_series($b, $((b + BATCH - 1))) i;" >> load.sql
done

q -d postgres -c "CREATE DATABASE plain" -c "CREATE DATABASE flow"
q -d flow -c "CREATE EXTENSION flowstate"

new_table() {
    q -d "$1" -c "DROP TABLE IF EXISTS events CASCADE" \
      -c "CREATE TABLE events (k int NOT NULL, v float8)" \
      -c "ALTER TABLE events REPLICA IDENTITY FULL"
}
status() { q -d flow -c "SELECT status FROM flowstate.views WHERE view = 'ev'::regclass" 2>/dev/null || true; }

printf 'flowstate many-groups benchmark: %s, %s cores, %d rounds\n' \
    "$(q -d postgres -c 'SHOW server_version')" "$(nproc)" "$ROUNDS"
: > results.txt
for ((r = 1; r <= ROUNDS; r++)); do
    # the load, without and with the view
    new_table plain
    q -d plain -c CHECKPOINT
    t0=$(now); q -d plain -f load.sql >/dev/null; t1=$(now)
    plain=$(elapsed "$t0" "$t1")

    q -d flow -c "SELECT flowstate.drop_view('ev')" >/dev/null 2>&1 || true
    new_table flow
    q -d flow -c "SELECT flowstate.create_view('ev', \$\$ $VIEW_SQL \$\$)" >/dev/null
    q -d flow -c "SELECT flowstate.wait_for(NULL, '1h')" >/dev/null
    q -d flow -c CHECKPOINT
    t0=$(now); q -d flow -f load.sql >/dev/null; t1=$(now)
    q -d flow -c "SELECT flowstate.wait_for(NULL, '1h')" >/dev/null; t2=$(now)
    loaded=$(elapsed "$t0" "$t1"); fresh=$(elapsed "$t0" "$t2")
    groups=$(q -d flow -c "SELECT count(*) FROM ev")

    # durable, then an immediate stop and a start
    lsn=$(q -d flow -c "SELECT pg_current_wal_lsn()")
    polls=0
    until [ "$(q -d flow -c "SELECT durable_lsn >= '$lsn' FROM flowstate.sources" 2>/dev/null)" = t ]; do
        polls=$((polls + 1))
        [ "$polls" -lt 3000 ] || { echo "bench: the view was not durable after 300 s" >&2; exit 1; }
        sleep 0.1
    done
    pg_ctl -D "$WORK/data" -m immediate stop >/dev/null
    tstart=$(now)
    pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
    # from when the server accepts connections (after its crash recovery)
    t0=$(now)
    recovery=$(elapsed "$tstart" "$t0")
    q -d flow -c "INSERT INTO events VALUES (-1, 1)"
    running=""
    polls=0
    while :; do
        polls=$((polls + 1))
        [ "$polls" -lt 6000 ] || { echo "bench: the new row was not visible 300 s after the restart" >&2; exit 1; }
        [ -z "$running" ] && [ "$(status)" = running ] && running=$(elapsed "$t0" "$(now)")
        [ "$(q -d flow -c "SELECT count(*) FROM ev WHERE k = -1" 2>/dev/null || echo 0)" = 1 ] && break
        sleep 0.05
    done
    visible=$(elapsed "$t0" "$(now)")
    [ -z "$running" ] && running=$visible

    differ=$(q -d flow -c "SELECT count(*) FROM ((TABLE ev EXCEPT ALL $VIEW_SQL) UNION ALL ($VIEW_SQL EXCEPT ALL TABLE ev)) d")
    printf 'round %d: load %.2f s plain, %.2f s with the view, fresh after %.2f s (%d groups); restart: recovery %.2f s, then running after %.2f s, a new row visible after %.2f s; oracle: %s rows differ\n' \
        "$r" "$plain" "$loaded" "$fresh" "$groups" "$recovery" "$running" "$visible" "$differ"
    echo "$plain $loaded $fresh $running $visible $differ $recovery" >> results.txt
done

# reads of one key's last 60 windows while 100,000 groups are in shared
# memory only: no flush for an hour
q -d postgres -c "ALTER SYSTEM SET flowstate.flush_interval = '1h'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
q -d flow -c "SELECT flowstate.drop_view('ev')" >/dev/null
q -d flow -c "CREATE TABLE events_w (ts timestamptz NOT NULL, k int NOT NULL, v float8)" \
  -c "ALTER TABLE events_w REPLICA IDENTITY FULL" \
  -c "SELECT flowstate.create_view('ev_w', \$\$ SELECT k, date_bin('1 minute', ts, '2026-01-01') AS minute,
        count(*) AS n, sum(v) AS total, min(v) AS lo, max(v) AS hi FROM events_w GROUP BY 1, 2 \$\$)" >/dev/null
q -d flow -c "SELECT flowstate.wait_for(NULL, '1h')" >/dev/null
flushes_before=$(q -d flow -c "SELECT flushes FROM flowstate.views WHERE view = 'ev_w'::regclass")
q -d flow -c "INSERT INTO events_w SELECT '2026-01-01'::timestamptz + (i / 1000) * interval '1 minute', i % 1000, i % 9973
                FROM generate_series(0, 99999) i"
q -d flow -c "SELECT flowstate.wait_for(NULL, '1h')" >/dev/null
./probe read "dbname=flow" 2000 \
    "SELECT * FROM ev_w WHERE k = 42 ORDER BY minute DESC LIMIT 60" > reads_unflushed.txt
unflushed_state=$(q -d flow -c "SELECT groups_in_memory || ' groups in memory, ' ||
        (flushes - $flushes_before) || ' flushes since the load' FROM flowstate.views WHERE view = 'ev_w'::regclass")
read_rows=$(q -d flow -c "SELECT count(*) FROM (SELECT * FROM ev_w WHERE k = 42 ORDER BY minute DESC LIMIT 60) r")

col() { awk -v c="$1" '{print $c}' results.txt | median; }
ratio() { echo "$1 / $2" | bc -l; }
plain=$(col 1); loaded=$(col 2); fresh=$(col 3); running=$(col 4); visible=$(col 5); recovery=$(col 7)
echo "medians of $ROUNDS rounds                               measured     ratio    target"
printf 'load 2M rows into 1M groups: without the view   %8.2f s\n' "$plain"
printf '  with the view (writers'"'"' tax)                 %8.2f s    %5.2fx\n' "$loaded" "$(ratio "$loaded" "$plain")"
printf '  until the view is fresh                       %8.2f s    %5.2fx   <= 2.00x\n' "$fresh" "$(ratio "$fresh" "$plain")"
printf 'restart with 1M groups: crash recovery         %8.2f s   (PostgreSQL'"'"'s, before connections)\n' "$recovery"
printf '  then the view running after                   %8.2f s\n' "$running"
printf '  then a new row visible after                  %8.2f s              < 5 s\n' "$visible"
printf 'read one key'"'"'s last 60 windows (%s rows), 100,000 groups unflushed (%s): p50 %.3f ms, p99 %.3f ms   < 2 ms\n' \
    "$read_rows" "$unflushed_state" "$(median < reads_unflushed.txt)" "$(pct 99 < reads_unflushed.txt)"
if awk '$6 != 0 {bad = 1} END {exit bad}' results.txt; then
    echo "the view equalled its batch query in every round"
else
    echo "the view differed from its batch query"
    exit 1
fi
