#!/usr/bin/env bash
# The windows benchmark: bash bench/windows.sh [rounds]   (or: make bench-windows)
#
# On a throwaway cluster, Nexmark-style bids (auction, bidder, price,
# channel, date_time) are loaded into a table, 2,000,000 rows in
# transactions of 10,000, 1,000 bids per second of event time: once
# without a view, then once with each of these views:
#   q7  tumble(10 s): the highest price and the number of bids per window;
#   q5  hop(10 s, 2 s): bids per auction per window;
#   cum cumulate(10 s, 1 min): bids per channel, every 10 s of the minute;
#   q11 session(gap 10 s): bids per bidder per session (flowstate.session);
#   hop(1 hour, 1 minute) and tumble(1 minute) of bids per auction, for the
#       shared memory each keeps (not read: the batch query of the hop
#       expands each bid into 60 rows);
# and measures, per view, the time until it is fresh, the rows per CPU
# second of the database's decoder (decoding, aggregating, flushing: one
# core's worth of work per row), its shared memory, the time of one full
# read, and checks it against its defining query run as a batch query.
# Then, for q7, q5 and q11, the decoder's CPU per row of 100,000 late rows,
# each into a window that closed long ago (the first 10 s of the load),
# next to 100,000 rows into the current windows: a late row is one group
# update, not a range recompute.
# Prints each round, then the medians.  As root it first installs what it
# needs (.ci/setup.sh) and runs the server as postgres.
set -euo pipefail
trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
ROUNDS=${1:-${ROUNDS:-3}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${FLOWSTATE_BENCH_DIR:-/tmp/flowstate-bench-windows}
PORT=${FLOWSTATE_BENCH_PORT:-5490}
source "$HERE/lib.sh"

if [ "${FLOWSTATE_BENCH_CHILD:-}" != 1 ]; then
    bench_prepare
    bench_reexec windows.sh "$ROUNDS"
fi

# ---- as the server's user, in $WORK -------------------------------------
cd "$WORK"
bench_initdb <<< "flowstate.memory_limit = '2GB'"
pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
trap 'pg_ctl -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true' EXIT

ROWS=2000000
BATCH=10000

# bid i: 1,000 per second of event time from 2026-01-01, 10,000 auctions,
# 100,000 bidders, prices up to 10,000, four channels
: > load.sql
for ((b = 0; b < ROWS; b += BATCH)); do
    echo "INSERT INTO bids SELECT (i * 7919) % 10000, (i * 104729) % 100000, (i * 31) % 10000,
            (ARRAY['apple', 'google', 'facebook', 'baidu'])[1 + i % 4],
            '2026-01-01'::timestamptz + i * interval '1 millisecond'
          FROM generate_series($b::bigint, $((b + BATCH - 1))) i;" >> load.sql
done

declare -A VIEWS=(
    [q7]="SELECT flowstate.tumble(date_time, '10 seconds') AS window_start, max(price) AS top, count(*) AS bids
            FROM bids GROUP BY 1"
    [q5]="SELECT w.window_start, w.window_end, auction, count(*) AS bids
            FROM bids, LATERAL flowstate.hop(bids.date_time, '10 seconds', '2 seconds') w
           GROUP BY w.window_start, w.window_end, auction"
    [cum]="SELECT w.window_start, w.window_end, channel, count(*) AS bids
             FROM bids, LATERAL flowstate.cumulate(bids.date_time, '10 seconds', '1 minute') w
            GROUP BY w.window_start, w.window_end, channel"
    [q11]="SELECT bidder, session_start, count(*) AS bids, max(date_time) AS last_bid
             FROM (SELECT bidder, date_time,
                          flowstate.session(date_time, '10 seconds')
                            OVER (PARTITION BY bidder ORDER BY date_time) AS session_start
                     FROM bids) s
            GROUP BY bidder, session_start"
    [hop_1h]="SELECT w.window_start, w.window_end, auction, count(*) AS bids, max(price) AS top
                FROM bids, LATERAL flowstate.hop(bids.date_time, '1 hour', '1 minute') w
               GROUP BY w.window_start, w.window_end, auction"
    [tumble_1m]="SELECT flowstate.tumble(date_time, '1 minute') AS window_start, auction, count(*) AS bids,
                        max(price) AS top
                   FROM bids GROUP BY 1, 2"
)
ORDER=(q7 q5 cum q11 hop_1h tumble_1m)

q -d postgres -c "CREATE DATABASE plain" -c "CREATE DATABASE flow"
q -d flow -c "CREATE EXTENSION flowstate"
new_table() {
    q -d "$1" -c "DROP TABLE IF EXISTS bids CASCADE" \
      -c "CREATE TABLE bids (auction int, bidder int, price int, channel text, date_time timestamptz NOT NULL)" \
      -c "ALTER TABLE bids REPLICA IDENTITY FULL"
}
# rows_cpu_us PID TIME: the decoder's CPU microseconds per row of 100,000
# bids at event time TIME (an expression of i), in one transaction
rows_cpu_us() {
    local c0
    c0=$(cpu_seconds "$1")
    q -d flow -c "INSERT INTO bids SELECT i % 10000, i % 100000, i % 10000, 'apple', $2
                    FROM generate_series(1, 100000) i" >/dev/null
    q -d flow -c "SELECT flowstate.wait_for(NULL, '1h')" >/dev/null
    echo "($(cpu_seconds "$1") - $c0) * 1000000 / 100000" | bc -l
}

printf 'flowstate windows benchmark: %s, %s cores, %d rounds, %d bids\n' \
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
        if [ "$v" = hop_1h ] || [ "$v" = tumble_1m ]; then
            # for their memory only: the batch query of hop(1 hour, 1 minute)
            # expands each bid into 60 rows (minutes to compare)
            rows=0; readt=0; differ=0
        else
            t0=$(now); rows=$(q -d flow -c "SELECT count(*) FROM $v"); t1=$(now)
            readt=$(elapsed "$t0" "$t1")
            differ=$(q -d flow -c "SELECT count(*) FROM ((TABLE $v EXCEPT ALL ${VIEWS[$v]}) UNION ALL (${VIEWS[$v]} EXCEPT ALL TABLE $v)) d")
        fi
        late=0; current=0
        if [ "$v" = q7 ] || [ "$v" = q5 ] || [ "$v" = q11 ]; then
            late=$(rows_cpu_us "$pid" "'2026-01-01'::timestamptz + (i % 10000) * interval '1 millisecond'")
            current=$(rows_cpu_us "$pid" "'2026-01-01'::timestamptz + ($ROWS + i % 1000) * interval '1 millisecond'")
            printf '  %-10s decoder CPU per row: %.2f us for a row into a window closed long ago, %.2f us into a current one\n' \
                "$v" "$late" "$current"
        fi
        printf '  %-10s fresh after %6.2f s (%.2fx plain), decoder %8.0f rows/CPU-s, %7d groups in %9d bytes, read of %6d rows %.3f s, oracle: %s rows differ\n' \
            "$v" "$fresh" "$(echo "$fresh / $plain" | bc -l)" "$(echo "$ROWS / $cpu" | bc -l)" \
            "$groups" "$bytes" "$rows" "$readt" "$differ"
        echo "$r $v $plain $fresh $cpu $groups $bytes $readt $differ $late $current" >> results.txt
        q -d flow -c "DROP VIEW $v" >/dev/null
    done
done

plain=$(awk '{print $3}' results.txt | median)
echo "medians of $ROUNDS rounds, $ROWS bids       fresh     x plain   rows per decoder CPU-s   groups   bytes   full read"
for v in "${ORDER[@]}"; do
    printf '%-10s                    %7.2f s   %5.2fx   %12.0f        %8.0f %9.0f   %.3f s\n' \
        "$v" "$(med "$v" 4)" "$(echo "$(med "$v" 4) / $plain" | bc -l)" \
        "$(echo "$ROWS / $(med "$v" 5)" | bc -l)" "$(med "$v" 6)" "$(med "$v" 7)" "$(med "$v" 8)"
done
for v in q7 q5 q11; do
    printf '%-10s decoder CPU per late row into a window closed long ago: %.2f us, per row into a current window: %.2f us\n' \
        "$v" "$(med "$v" 10)" "$(med "$v" 11)"
done
printf 'shared memory of hop(1 hour, 1 minute) against tumble(1 minute), per auction: %.2fx   target <= 2x\n' \
    "$(echo "$(med hop_1h 7) / $(med tumble_1m 7)" | bc -l)"
if awk '$9 != 0 {bad = 1} END {exit bad}' results.txt; then
    echo "every view equalled its batch query in every round"
else
    echo "a view differed from its batch query"
    exit 1
fi
