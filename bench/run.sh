#!/usr/bin/env bash
# The flowstate benchmark: bash bench/run.sh [rounds]   (or: make bench)
#
# On a throwaway cluster, for a narrow table events(ts timestamptz, k int,
# v float8) and a continuous view of 1-minute tumbling count, sum, avg, min
# and max per k (1,000 keys), each round measures
#   - loading 2,000,000 rows in transactions of 10,000 rows into a table with
#     the view and into one without (the writers' tax), and the time until
#     the view is fresh;
#   - the rows per CPU second of the view's worker over that load (decoding,
#     aggregating and flushing), beside the rows per second of PostgreSQL's
#     own pgoutput decoding the same WAL (pg_logical_slot_get_binary_changes);
#   - 100,000 single-row UPDATEs, then 50,000 DELETEs, 1,000 per transaction,
#     with an index on (k, ts), with and without the view, until fresh;
#   - commit-to-visible latency: a probe commits a row every 20 ms and polls
#     a view until it shows it, during a second load and a second run of
#     updates and deletes (not during the timed ones);
#   - the read time of one key's last 60 windows, and shared memory per group;
# and checks the view against its defining query run as a batch query.
# Prints each round, then the medians and their ratios.  As root it first
# installs what it needs (.ci/setup.sh) and runs the servers as postgres.
set -euo pipefail
trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
ROUNDS=${1:-${ROUNDS:-3}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${FLOWSTATE_BENCH_DIR:-/tmp/flowstate-bench}
PORT=${FLOWSTATE_BENCH_PORT:-5488}
source "$HERE/lib.sh"

if [ "${FLOWSTATE_BENCH_CHILD:-}" != 1 ]; then
    bench_prepare
    bench_reexec run.sh "$ROUNDS"
fi

# ---- as the server's user, in $WORK -------------------------------------
cd "$WORK"
bench_initdb <<< "max_replication_slots = 10"
pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
trap 'pg_ctl -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true' EXIT


ROWS=2000000
BATCH=10000
VIEW_SQL="SELECT k, date_bin('1 minute', ts, '2026-01-01') AS minute,
       count(*) AS n, sum(v) AS total, avg(v) AS mean, min(v) AS lo, max(v) AS hi
  FROM events GROUP BY 1, 2"

# loading statements: row i has ts = 2026-01-01 + i * 2 ms (67 minutes for
# 2M rows), k = i % 1000; rows [from, from + ROWS)
load_file() {
    local from=$1 file=$2
    : > "$file"
    for ((b = from; b < from + ROWS; b += BATCH)); do
        echo "INSERT INTO events SELECT '2026-01-01'::timestamptz + (i * 2) * interval '1 ms', i % 1000, (i % 9973) * 0.5 FROM generate_series($b, $((b + BATCH - 1))) i;" >> "$file"
    done
}
# 100k single-row updates then 50k deletes of distinct rows among rows
# [from, from + ROWS), in transactions of 1,000 statements
changes_file() {
    local from=$1 file=$2
    q -d postgres -c "
COPY (
  WITH picked AS (
    SELECT i, row_number() OVER (ORDER BY md5(i::text)) AS r
      FROM generate_series($from, $from + $ROWS - 1) i ORDER BY md5(i::text) LIMIT 150000)
  SELECT CASE WHEN r % 1000 = 1 THEN 'BEGIN; ' ELSE '' END ||
         CASE WHEN r <= 100000
              THEN format('UPDATE events SET v = v + 1 WHERE k = %s AND ts = %L;', i % 1000,
                          '2026-01-01'::timestamptz + (i * 2) * interval '1 ms')
              ELSE format('DELETE FROM events WHERE k = %s AND ts = %L;', i % 1000,
                          '2026-01-01'::timestamptz + (i * 2) * interval '1 ms') END ||
         CASE WHEN r % 1000 = 0 THEN ' COMMIT;' ELSE '' END
    FROM picked ORDER BY r) TO '$WORK/$file'"
}
load_file 0 load.sql
load_file $ROWS load2.sql
changes_file 0 changes.sql
changes_file $ROWS changes2.sql

q -d postgres -c "CREATE DATABASE plain" -c "CREATE DATABASE flow"
q -d flow -c "CREATE EXTENSION flowstate" \
  -c "CREATE TABLE bench_probe (id bigint)" \
  -c "ALTER TABLE bench_probe REPLICA IDENTITY FULL" \
  -c "SELECT flowstate.create_view('probe_last', 'SELECT count(*) AS n, max(id) AS last FROM bench_probe')" >/dev/null

new_table() {
    q -d "$1" -c "DROP TABLE IF EXISTS events CASCADE" \
      -c "CREATE TABLE events (ts timestamptz NOT NULL, k int NOT NULL, v float8)" \
      -c "ALTER TABLE events REPLICA IDENTITY FULL"
}
fresh() { q -d flow -c "SELECT flowstate.wait_for(${1:-NULL}, '1h')" >/dev/null; }
decoder_pid() { q -d postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'flowstate decoder' AND datname = 'flow'"; }
# wait until the worker's state tables are flushed up to an LSN
durable() {
    until [ "$(q -d flow -c "SELECT durable_lsn >= '$1' FROM flowstate.sources")" = t ]; do
        sleep 0.05
    done
}
run_file() { q -d "$1" -f "$2" >/dev/null; }

printf 'flowstate benchmark: %s, %s cores, %d rounds\n' \
    "$(q -d postgres -c 'SHOW server_version')" "$(nproc)" "$ROUNDS"
: > latency_load.txt; : > latency_changes.txt; : > results.txt
for ((r = 1; r <= ROUNDS; r++)); do
    # --- load: the writers' tax and the time until fresh ---
    new_table plain
    q -d flow -c "SELECT flowstate.drop_view('ev', if_exists => true)" >/dev/null
    new_table flow
    q -d flow -c "SELECT flowstate.create_view('ev', \$\$ $VIEW_SQL \$\$)" \
      -c "CREATE PUBLICATION bench FOR TABLE events" >/dev/null
    load_plain() {
        q -d postgres -c CHECKPOINT
        t0=$(now); run_file plain load.sql; t1=$(now)
        plain_load=$(elapsed "$t0" "$t1")
    }
    load_flow() {
        # pgoutput will decode the same WAL as the view's worker
        q -d flow -c "SELECT pg_create_logical_replication_slot('bench_pgoutput', 'pgoutput')" >/dev/null
        q -d postgres -c CHECKPOINT
        pid=$(decoder_pid); cpu0=$(cpu_seconds "$pid")
        t0=$(now); run_file flow load.sql; t1=$(now); fresh; t2=$(now)
        end=$(q -d flow -c "SELECT pg_current_wal_lsn()")
        durable "$end"
        cpu1=$(cpu_seconds "$pid")
        view_load=$(elapsed "$t0" "$t1"); view_fresh=$(elapsed "$t0" "$t2")
    }
    # odd rounds run the table without the view first, even rounds second
    fresh
    if ((r % 2)); then load_plain; load_flow; else load_flow; load_plain; fi

    # --- decoding rate per CPU second: pgoutput, alone, vs the view's worker ---
    t0=$(now)
    q -d flow -c "SELECT count(*) FROM pg_logical_slot_get_binary_changes('bench_pgoutput', '$end', NULL,
        'proto_version', '1', 'publication_names', 'bench')" >/dev/null
    t1=$(now)
    q -d flow -c "SELECT pg_drop_replication_slot('bench_pgoutput')" -c "DROP PUBLICATION bench" >/dev/null
    pgoutput_rate=$(echo "$ROWS / $(elapsed "$t0" "$t1")" | bc -l)
    view_rate=$(echo "$ROWS / $(elapsed "$cpu0" "$cpu1")" | bc -l)

    # --- updates and deletes ---
    q -d plain -c "CREATE INDEX ON events (k, ts)" -c "VACUUM ANALYZE events"
    q -d flow -c "CREATE INDEX ON events (k, ts)" -c "VACUUM ANALYZE events"
    changes_plain() {
        q -d postgres -c CHECKPOINT
        t0=$(now); run_file plain changes.sql; t1=$(now)
        plain_changes=$(elapsed "$t0" "$t1")
    }
    changes_flow() {
        q -d postgres -c CHECKPOINT
        t0=$(now); run_file flow changes.sql; t1=$(now); fresh; t2=$(now)
        view_changes=$(elapsed "$t0" "$t1"); view_changes_fresh=$(elapsed "$t0" "$t2")
    }
    fresh
    if ((r % 2)); then changes_plain; changes_flow; else changes_flow; changes_plain; fi

    # --- commit-to-visible latency, under the same two loads ---
    ./probe visible "dbname=flow" > probe_load.txt & probe=$!
    run_file flow load2.sql; fresh
    kill -TERM $probe; wait $probe || true
    ./probe visible "dbname=flow" > probe_changes.txt & probe=$!
    run_file flow changes2.sql; fresh
    kill -TERM $probe; wait $probe || true
    cat probe_load.txt >> latency_load.txt
    cat probe_changes.txt >> latency_changes.txt

    # the oracle: the view equals its defining query run as a batch query
    # (sums of floats depend on the order of the additions: those to 1e-9)
    differ=$(q -d flow -c "SELECT count(*) FROM ev FULL JOIN ($VIEW_SQL) b USING (k, minute)
        WHERE ev.n IS DISTINCT FROM b.n OR ev.lo IS DISTINCT FROM b.lo OR ev.hi IS DISTINCT FROM b.hi
           OR (ev.total IS NULL) <> (b.total IS NULL) OR (ev.mean IS NULL) <> (b.mean IS NULL)
           OR abs(ev.total - b.total) > 1e-9 * greatest(abs(b.total), 1)
           OR abs(ev.mean - b.mean) > 1e-9 * greatest(abs(b.mean), 1)")

    # --- reads and memory ---
    ./probe read "dbname=flow" 2000 \
        "SELECT * FROM ev WHERE k = 42 ORDER BY minute DESC LIMIT 60" > reads.txt
    read_p50=$(median < reads.txt); read_p99=$(pct 99 < reads.txt)
    per_group=$(q -d flow -c "SELECT memory_bytes / groups_in_memory FROM flowstate.views WHERE view = 'ev'::regclass")
    groups=$(q -d flow -c "SELECT groups FROM flowstate.views WHERE view = 'ev'::regclass")

    printf '%s %s %s %s %s %s %s %s %s %s %s %s %s\n' "$plain_load" "$view_load" "$view_fresh" \
        "$plain_changes" "$view_changes" "$view_changes_fresh" "$pgoutput_rate" "$view_rate" \
        "$read_p50" "$read_p99" "$per_group" "$groups" "$differ" >> results.txt
    printf 'round %d: load %.2f s plain, %.2f s with the view, fresh after %.2f s; changes %.2f s plain, %.2f s with the view, fresh after %.2f s; decoding %.0f rows/s pgoutput, %.0f rows/CPU-s flowstate; read %.3f ms; %d groups, %d bytes each; oracle: %s rows differ\n' \
        "$r" "$plain_load" "$view_load" "$view_fresh" "$plain_changes" "$view_changes" \
        "$view_changes_fresh" "$pgoutput_rate" "$view_rate" "$read_p50" "$groups" "$per_group" "$differ"
done

col() { awk -v c="$1" '{print $c}' results.txt | median; }
ratio() { echo "$1 / $2" | bc -l; }
pl=$(col 1); vl=$(col 2); vf=$(col 3); pc=$(col 4); vc=$(col 5); vcf=$(col 6)
pr=$(col 7); vr=$(col 8); rp50=$(col 9); rp99=$(col 10); pg=$(col 11)
ll50=$(median < latency_load.txt); ll99=$(pct 99 < latency_load.txt); lln=$(wc -l < latency_load.txt)
lc50=$(median < latency_changes.txt); lc99=$(pct 99 < latency_changes.txt); lcn=$(wc -l < latency_changes.txt)
bad=$(awk '$13 != 0' results.txt | wc -l)

echo
echo "medians of $ROUNDS rounds                               measured            ratio    target"
printf 'load 2M rows, 10k per transaction: without the view %7.2f s\n' "$pl"
printf '  with the view (writers'"'"' tax)                     %7.2f s        %6.2fx   <= 1.10x\n' "$vl" "$(ratio "$vl" "$pl")"
printf '  until the view is fresh                          %7.2f s        %6.2fx   <= 1.50x\n' "$vf" "$(ratio "$vf" "$pl")"
printf '100k UPDATEs + 50k DELETEs: without the view       %7.2f s\n' "$pc"
printf '  with the view                                    %7.2f s        %6.2fx\n' "$vc" "$(ratio "$vc" "$pc")"
printf '  until the view is fresh                          %7.2f s        %6.2fx   <= 1.20x\n' "$vcf" "$(ratio "$vcf" "$pc")"
printf 'decoding the 2M rows'"'"' WAL: pgoutput                %7.0f rows/s\n' "$pr"
printf '  flowstate: decode, aggregate, flush          %7.0f rows/CPU-s %5.2fx   >= 0.80x\n' "$vr" "$(ratio "$vr" "$pr")"
printf 'commit-to-visible latency while loading        p50 %5.1f ms, p99 %5.1f ms (%d probes)   p99 < 100 ms\n' "$ll50" "$ll99" "$lln"
printf '  while updating and deleting                   p50 %5.1f ms, p99 %5.1f ms (%d probes)   p99 < 100 ms\n' "$lc50" "$lc99" "$lcn"
printf "read one key's last 60 windows                    p50 %.3f ms, p99 %.3f ms  < 1 ms\n" "$rp50" "$rp99"
printf 'shared memory per group                            %7.0f bytes\n' "$pg"
if [ "$bad" -ne 0 ]; then
    echo "the view differed from its batch query in $bad rounds" >&2
    exit 1
fi
echo "the view equalled its batch query in every round"
