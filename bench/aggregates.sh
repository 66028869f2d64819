#!/usr/bin/env bash
# The aggregates benchmark: bash bench/aggregates.sh [rounds]   (or: make bench-aggregates)
#
# On a throwaway cluster, 2,000,000 rows (k: 1,000 keys; u1k: 1,000
# distinct values; u1m: 1,000,000; v: 10,000 distinct float8s) are loaded
# into a table, in transactions of 10,000, once without a view and once
# with each view alone:
#   fast      count(*), sum(u1k), avg(u1k) per k: the native aggregates;
#   dist_1k   count(DISTINCT u1k) per k % 10: 1,000 distinct values a group;
#   dist_1m   count(DISTINCT u1m) per k % 10: 100,000 a group, 1,000,000 in all;
#   p95       percentile_cont(0.95) and percentile_disc(0.5) of v per k % 10;
#   generic   count(*), g_sum(u1k), g_avg(u1k) per k: user-defined aggregates
#             with the support functions of sum(int4) and avg(int4), which
#             take the generic path (their own functions, called through
#             fmgr): the cost of that path beside fast;
#   hll_1m    hll_cardinality(hll_add_agg(hll_hash_integer(u1m))) per k % 10:
#             the hll extension's sketch of dist_1m's distinct counts;
# and measures, per view, the time until it is fresh, the decoder's CPU per
# row (decoding, aggregating, flushing), the groups and bytes of shared
# memory (those of <name>_values for the multiset views: one group per
# group and value), the time of one full read, and checks each view
# against its defining query run as a batch query.  Prints each round,
# then the medians.  As root it first installs what it needs
# (.ci/setup.sh) and runs the server as postgres.
set -euo pipefail
trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
ROUNDS=${1:-${ROUNDS:-3}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${FLOWSTATE_BENCH_DIR:-/tmp/flowstate-bench-aggregates}
PORT=${FLOWSTATE_BENCH_PORT:-5493}
source "$HERE/lib.sh"

if [ "${FLOWSTATE_BENCH_CHILD:-}" != 1 ]; then
    bench_prepare
    bench_reexec aggregates.sh "$ROUNDS"
fi

# ---- as the server's user, in $WORK -------------------------------------
cd "$WORK"
bench_initdb <<< "flowstate.memory_limit = '2GB'"
pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
trap 'pg_ctl -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true' EXIT

ROWS=2000000
BATCH=10000
: > load.sql
for ((b = 0; b < ROWS; b += BATCH)); do
    echo "INSERT INTO t SELECT (i * 7919) % 1000, (i * 31) % 1000, (i * 104729) % 1000000,
            ((i * 613) % 10000) / 10.0
          FROM generate_series($b::bigint, $((b + BATCH - 1))) i;" >> load.sql
done

declare -A VIEWS=(
    [fast]="SELECT k, count(*) AS n, sum(u1k) AS total, avg(u1k) AS mean FROM t GROUP BY k"
    [dist_1k]="SELECT k % 10 AS g, count(*) AS n, count(DISTINCT u1k) AS users FROM t GROUP BY 1"
    [dist_1m]="SELECT k % 10 AS g, count(*) AS n, count(DISTINCT u1m) AS users FROM t GROUP BY 1"
    [p95]="SELECT k % 10 AS g, percentile_cont(0.95) WITHIN GROUP (ORDER BY v) AS p95,
                  percentile_disc(0.5) WITHIN GROUP (ORDER BY v) AS median FROM t GROUP BY 1"
    [generic]="SELECT k, count(*) AS n, g_sum(u1k) AS total, g_avg(u1k) AS mean FROM t GROUP BY k"
    [hll_1m]="SELECT k % 10 AS g, count(*) AS n,
                     hll_cardinality(hll_add_agg(hll_hash_integer(u1m))) AS users FROM t GROUP BY 1"
)
ORDER=(fast generic dist_1k dist_1m hll_1m p95)

q -d postgres -c "CREATE DATABASE plain" -c "CREATE DATABASE flow"
q -d flow -c "CREATE EXTENSION flowstate" -c "CREATE EXTENSION hll" \
  -c "CREATE AGGREGATE g_sum(int4) (SFUNC = int4_sum, STYPE = int8, COMBINEFUNC = int8pl)" \
  -c "CREATE AGGREGATE g_avg(int4) (SFUNC = int4_avg_accum, STYPE = int8[], COMBINEFUNC = int4_avg_combine,
                                    FINALFUNC = int8_avg, INITCOND = '{0,0}')"
new_table() {
    q -d "$1" -c "DROP TABLE IF EXISTS t CASCADE" \
      -c "CREATE TABLE t (k int, u1k int, u1m int, v float8)" \
      -c "ALTER TABLE t REPLICA IDENTITY FULL"
}

printf 'flowstate aggregates benchmark: %s, %s cores, %d rounds, %d rows\n' \
    "$(q -d postgres -c 'SHOW server_version')" "$(nproc)" "$ROUNDS" "$ROWS"
: > results.txt
for ((r = 1; r <= ROUNDS; r++)); do
    new_table plain
    q -d plain -c CHECKPOINT
    t0=$(now); q -d plain -f load.sql >/dev/null; t1=$(now)
    plain=$(elapsed "$t0" "$t1")
    printf 'round %d: plain load %.2f s\n' "$r" "$plain"
    for v in "${ORDER[@]}"; do
        new_table flow
        q -d flow -c "SELECT flowstate.create_view('$v', \$\$ ${VIEWS[$v]} \$\$)" >/dev/null
        q -d flow -c "SELECT flowstate.wait_for(NULL, '1h')" >/dev/null
        q -d flow -c CHECKPOINT
        pid=$(decoder_pid)
        cpu0=$(cpu_seconds "$pid")
        t0=$(now); q -d flow -f load.sql >/dev/null
        q -d flow -c "SELECT flowstate.wait_for(NULL, '1h')" >/dev/null; t1=$(now)
        cpu=$(echo "$(cpu_seconds "$pid") - $cpu0" | bc -l)
        fresh=$(elapsed "$t0" "$t1")
        sv=$(state_view "$v")
        read -r groups bytes < <(q -d flow -F ' ' -c "SELECT groups_in_memory, memory_bytes FROM flowstate.views WHERE view = '$sv'::regclass")
        t0=$(now); rows=$(q -d flow -c "SELECT count(*) FROM $v"); t1=$(now)
        readt=$(elapsed "$t0" "$t1")
        differ=$(q -d flow -c "SELECT count(*) FROM ((TABLE $v EXCEPT ALL ${VIEWS[$v]}) UNION ALL (${VIEWS[$v]} EXCEPT ALL TABLE $v)) d")
        printf '  %-8s fresh after %6.2f s (%.2fx plain), decoder %6.2f us/row, %8d groups in %10d bytes (%4.0f per group), read of %5d rows %.3f s, oracle: %s rows differ\n' \
            "$v" "$fresh" "$(echo "$fresh / $plain" | bc -l)" "$(echo "$cpu * 1000000 / $ROWS" | bc -l)" \
            "$groups" "$bytes" "$(echo "$bytes / $groups" | bc -l)" "$rows" "$readt" "$differ"
        echo "$r $v $plain $fresh $cpu $groups $bytes $readt $differ" >> results.txt
        q -d flow -c "DROP VIEW $v" >/dev/null
    done
done

plain=$(awk '{print $3}' results.txt | median)
echo "medians of $ROUNDS rounds, $ROWS rows    fresh     x plain   decoder us/row   x fast   groups    bytes/group   full read"
for v in "${ORDER[@]}"; do
    printf '%-8s                    %7.2f s   %5.2fx       %6.2f      %5.2fx  %8.0f    %6.0f       %.3f s\n' \
        "$v" "$(med "$v" 4)" "$(echo "$(med "$v" 4) / $plain" | bc -l)" \
        "$(echo "$(med "$v" 5) * 1000000 / $ROWS" | bc -l)" "$(echo "$(med "$v" 5) / $(med fast 5)" | bc -l)" \
        "$(med "$v" 6)" "$(echo "$(med "$v" 7) / $(med "$v" 6)" | bc -l)" "$(med "$v" 8)"
done
if awk '$9 != 0 {bad = 1} END {exit bad}' results.txt; then
    echo "every view equalled its batch query in every round"
else
    echo "a view differed from its batch query"
    exit 1
fi
