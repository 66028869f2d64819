#!/usr/bin/env bash
# The bulk-load benchmark: bash bench/bulk.sh [rounds]   (or: make bench-bulk)
#
# On a throwaway cluster with PostgreSQL's default logical_decoding_work_mem
# (64MB) and flowstate's default open_transaction_memory (64MB),
# Nexmark-style bids (auction, bidder, price, channel, date_time; 1,000 per
# second of event time) are loaded in ONE transaction each:
#   copy_2m    COPY of 2,000,000 rows from a file;
#   insert_2m  INSERT ... SELECT of 2,000,000 rows;
#   insert_20m INSERT ... SELECT of 20,000,000 rows (first round only);
#   groups_1m  INSERT ... SELECT of 2,000,000 rows into 1,000,000 groups;
# once into a table without a view (the plain load time), once into a table
# with the view q7 (tumble(10 s): the highest price and the number of bids
# per window) and the view per_auction (bids and revenue per auction,
# 10,000 groups); groups_1m with the view per_2ms instead (tumble(2 ms):
# count and highest price, 1,000,000 groups).  For each: the load time, the time from the start of the
# load until both views are fresh, their ratio (target <= 1.5), the
# decoder's peak private memory (RssAnon, sampled every 50 ms) and the peak
# of its open transactions' deltas (flowstate.sources), whether the
# transaction was decoded while it ran and whether the reorder buffer
# spilled it to disk (pg_stat_replication_slots); each view is checked
# against its defining query run as a batch query.  Prints each round, then
# the medians (of the ratios: of each round's).  As root it first installs
# what it needs (.ci/setup.sh) and runs the server as postgres.
set -euo pipefail
trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
ROUNDS=${1:-${ROUNDS:-3}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${FLOWSTATE_BENCH_DIR:-/tmp/flowstate-bench-bulk}
PORT=${FLOWSTATE_BENCH_PORT:-5491}
source "$HERE/lib.sh"

if [ "${FLOWSTATE_BENCH_CHILD:-}" != 1 ]; then
    bench_prepare
    bench_reexec bulk.sh "$ROUNDS"
fi

# ---- as the server's user, in $WORK -------------------------------------
cd "$WORK"
export PGOPTIONS='-c client_min_messages=warning'
bench_initdb <<< "flowstate.memory_limit = '2GB'"
pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
trap 'kill $SAMPLER 2>/dev/null || true; pg_ctl -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true' EXIT
SAMPLER=

BIDS="SELECT (i * 7919) % 10000, (i * 104729) % 100000, (i * 31) % 10000,
             (ARRAY['apple', 'google', 'facebook', 'baidu'])[1 + i % 4],
             '2026-01-01'::timestamptz + i * interval '1 millisecond'"
declare -A LOADS=(
    [copy_2m]="COPY bids FROM '$WORK/bids_2m.csv' (FORMAT csv)"
    [insert_2m]="INSERT INTO bids $BIDS FROM generate_series(0::bigint, 1999999) i"
    [insert_20m]="INSERT INTO bids $BIDS FROM generate_series(0::bigint, 19999999) i"
)
LOADS[groups_1m]=${LOADS[insert_2m]}
declare -A ROWS=([copy_2m]=2000000 [insert_2m]=2000000 [insert_20m]=20000000 [groups_1m]=2000000)
ORDER=(copy_2m insert_2m insert_20m groups_1m)
Q7="SELECT flowstate.tumble(date_time, '10 seconds') AS window_start, max(price) AS top, count(*) AS bids
      FROM bids GROUP BY 1"
PER_AUCTION="SELECT auction, count(*) AS bids, sum(price) AS revenue FROM bids GROUP BY auction"
# 1,000,000 groups: two bids per group
PER_2MS="SELECT flowstate.tumble(date_time, '2 milliseconds') AS window_start, count(*) AS bids, max(price) AS top
           FROM bids GROUP BY 1"
declare -A VIEWS=([q7]=$Q7 [per_auction]=$PER_AUCTION [per_2ms]=$PER_2MS)
views_of() { if [ "$1" = groups_1m ]; then echo per_2ms; else echo q7 per_auction; fi; }

q -d postgres -c "CREATE DATABASE plain" -c "CREATE DATABASE flow"
q -d flow -c "CREATE EXTENSION flowstate"
q -d postgres -c "COPY ($BIDS FROM generate_series(0::bigint, 1999999) i) TO '$WORK/bids_2m.csv' (FORMAT csv)"
new_table() {
    q -d "$1" -c "DROP TABLE IF EXISTS bids CASCADE" \
      -c "CREATE TABLE bids (auction int, bidder int, price int, channel text, date_time timestamptz NOT NULL)" \
      -c "ALTER TABLE bids REPLICA IDENTITY FULL"
}
slot_stat() { q -d flow -c "SELECT $1 FROM pg_stat_replication_slots WHERE slot_name LIKE 'flowstate%'"; }
# sample_rss PID FILE: the largest RssAnon (kB) of PID, every 50 ms, into FILE
sample_rss() {
    local max=0 v
    while v=$(awk '/^RssAnon/ {print $2}' "/proc/$1/status" 2>/dev/null); do
        [ -n "$v" ] && [ "$v" -gt "$max" ] && { max=$v; echo "$max" > "$2"; }
        sleep 0.05
    done
}
# differ VIEWS...: rows the views and their batch queries do not share
differ() {
    local n=0 v
    for v in "$@"; do
        n=$((n + $(q -d flow -c "SELECT count(*) FROM ((TABLE $v EXCEPT ALL ${VIEWS[$v]})
                                          UNION ALL (${VIEWS[$v]} EXCEPT ALL TABLE $v)) d")))
    done
    echo "$n"
}

printf 'flowstate bulk-load benchmark: %s, %s cores, %d rounds, logical_decoding_work_mem %s, open_transaction_memory %s\n' \
    "$(q -d postgres -c 'SHOW server_version')" "$(nproc)" "$ROUNDS" \
    "$(q -d postgres -c 'SHOW logical_decoding_work_mem')" "$(q -d postgres -c 'SHOW flowstate.open_transaction_memory')"
: > results.txt
for ((r = 1; r <= ROUNDS; r++)); do
    for load in "${ORDER[@]}"; do
        [ "$load" = insert_20m ] && [ "$r" -gt 1 ] && continue
        read -r -a views <<< "$(views_of "$load")"
        new_table plain
        q -d plain -c CHECKPOINT
        t0=$(now); q -d plain -c "${LOADS[$load]}" >/dev/null; t1=$(now)
        plain=$(elapsed "$t0" "$t1")

        new_table flow
        for v in "${views[@]}"; do
            q -d flow -c "SELECT flowstate.create_view('$v', \$\$ ${VIEWS[$v]} \$\$)" >/dev/null
        done
        q -d flow -c "SELECT flowstate.wait_for(NULL, '1h')" >/dev/null
        q -d flow -c CHECKPOINT
        pid=$(decoder_pid)
        streamed0=$(slot_stat stream_txns); spilled0=$(slot_stat spill_txns)
        echo 0 > rss.txt
        sample_rss "$pid" rss.txt & SAMPLER=$!
        t0=$(now); q -d flow -c "${LOADS[$load]}" >/dev/null; t1=$(now)
        q -d flow -c "SELECT flowstate.wait_for(NULL, '1h')" >/dev/null; t2=$(now)
        kill $SAMPLER; wait $SAMPLER 2>/dev/null || true
        loaded=$(elapsed "$t0" "$t1"); fresh=$(elapsed "$t0" "$t2")
        rss=$(cat rss.txt)
        deltas=$(q -d flow -c "SELECT open_transaction_peak_bytes FROM flowstate.sources WHERE kind = 'logical decoding'")
        streamed=$(( $(slot_stat stream_txns) - streamed0 )); spilled=$(( $(slot_stat spill_txns) - spilled0 ))
        bad=$(differ "${views[@]}")
        printf 'round %d %-10s plain %6.2f s, with views: load %6.2f s, fresh after %6.2f s (%.2fx plain), decoder peak RssAnon %7d kB, open transactions peak %9d bytes, streamed %d, spilled %d, oracle: %s rows differ\n' \
            "$r" "$load" "$plain" "$loaded" "$fresh" "$(echo "$fresh / $plain" | bc -l)" "$rss" "$deltas" \
            "$streamed" "$spilled" "$bad"
        echo "$r $load $plain $loaded $fresh $rss $deltas $streamed $spilled $bad" >> results.txt
        for v in "${views[@]}"; do q -d flow -c "DROP VIEW $v" >/dev/null; done
    done
done

# the median of each round's ratio: fresh against the plain load of its round
ratio() { awk -v l="$1" '$2 == l {print $5 / $3}' results.txt | median; }
echo "medians of $ROUNDS rounds (insert_20m: 1)   plain load   with views: load   fresh    x plain (target <= 1.5)   decoder RssAnon"
for load in "${ORDER[@]}"; do
    printf '%-10s %9.0f rows          %6.2f s          %6.2f s   %6.2f s   %5.2fx                    %7.0f kB\n' \
        "$load" "${ROWS[$load]}" "$(med "$load" 3)" "$(med "$load" 4)" "$(med "$load" 5)" \
        "$(ratio "$load")" "$(med "$load" 6)"
done
if awk '$10 != 0 {bad = 1} END {exit bad}' results.txt; then
    echo "every view equalled its batch query after every load"
else
    echo "a view differed from its batch query"
    exit 1
fi
