#!/usr/bin/env bash
# The windows benchmark through Kafka: bash bench/windows_kafka.sh [rounds]
# (or: make bench-windows-kafka)
#
# The Nexmark-style bids of bench/windows.sh (auction, bidder, price,
# channel, date_time; 10,000 auctions, 1,000 bids per second of event time),
# 2,000,000 of them as JSON messages in a topic of 64 partitions of
# librdkafka's mock cluster (test/kafka_mock), consumed by one Kafka worker
# into each view alone: q7 tumble(10 s) highest price and count, q5
# hop(10 s, 2 s) count per auction, cum cumulate(10 s, 1 min) count per
# channel, q11 session(gap 10 s) count per bidder.  Per view: the time from its creation until it has every message,
# the messages per CPU second of its Kafka worker (all its threads: one
# core's worth of work per message), and the view against its defining
# query run as a batch query over the same bids in a table.  As in
# bench/kafka.sh, the server runs on CPU 0 and the brokers on the others.
# Prints each round, then the medians.  As root it first installs what it
# needs (.ci/setup.sh) and runs the server as postgres.
set -euo pipefail
trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
ROUNDS=${1:-${ROUNDS:-3}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${FLOWSTATE_BENCH_DIR:-/tmp/flowstate-bench-windows-kafka}
PORT=${FLOWSTATE_BENCH_PORT:-5492}
source "$HERE/lib.sh"

if [ "${FLOWSTATE_BENCH_CHILD:-}" != 1 ]; then
    bench_prepare_kafka
    bench_reexec windows_kafka.sh "$ROUNDS"
fi

# ---- as the server's user, in $WORK -------------------------------------
cd "$WORK"
export PGOPTIONS='-c client_min_messages=warning'
bench_initdb <<< "flowstate.memory_limit = '2GB'"
bench_kafka_start

MESSAGES=2000000
PARTITIONS=64
# bid i, as in bench/windows.sh
q -c "CREATE TABLE bids (auction int, bidder int, price int, channel text, date_time timestamptz NOT NULL)" \
  -c "INSERT INTO bids SELECT (i * 7919) % 10000, (i * 104729) % 100000, (i * 31) % 10000,
             (ARRAY['apple', 'google', 'facebook', 'baidu'])[1 + i % 4],
             '2026-01-01'::timestamptz + i * interval '1 millisecond'
        FROM generate_series(0::bigint, $((MESSAGES - 1))) i" \
  -c "COPY (SELECT row_to_json(b) FROM bids b) TO '$WORK/bids.json'" \
  -c "VACUUM ANALYZE bids" -c "CREATE EXTENSION flowstate" \
  -c "CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers '$BROKERS')" >/dev/null

# each view's query, over %s (the foreign table, or the table bids)
declare -A VIEWS=(
    [q7]="SELECT flowstate.tumble(date_time, '10 seconds') AS window_start, max(price) AS top, count(*) AS bids
            FROM %s GROUP BY 1"
    [q5]="SELECT w.window_start, w.window_end, auction, count(*) AS bids
            FROM %s s, LATERAL flowstate.hop(s.date_time, '10 seconds', '2 seconds') w
           GROUP BY w.window_start, w.window_end, auction"
    [cum]="SELECT w.window_start, w.window_end, channel, count(*) AS bids
             FROM %s s, LATERAL flowstate.cumulate(s.date_time, '10 seconds', '1 minute') w
            GROUP BY w.window_start, w.window_end, channel"
    [q11]="SELECT bidder, session_start, count(*) AS bids, max(date_time) AS last_bid
             FROM (SELECT bidder, date_time,
                          flowstate.session(date_time, '10 seconds')
                            OVER (PARTITION BY bidder ORDER BY date_time) AS session_start
                     FROM %s) s
            GROUP BY bidder, session_start"
)
ORDER=(q7 q5 cum q11)

printf 'flowstate windows benchmark through Kafka: %s, %s cores (server on %s), %d rounds of %d bids over %d partitions\n' \
    "$(q -c 'SHOW server_version')" "$(nproc)" "${CONSUMER_CPU[*]:-every CPU}" "$ROUNDS" "$MESSAGES" "$PARTITIONS"
# one topic: each view's foreign table reads it from the start, as a
# consumer group of its own
[ "$(kafka "topic bids $PARTITIONS")" = ok ]
[ "$(kafka "produce bids $WORK/bids.json")" = "produced $MESSAGES" ]
: > results.txt
for ((r = 1; r <= ROUNDS; r++)); do
    for v in "${ORDER[@]}"; do
        topic=bids
        q -c "CREATE FOREIGN TABLE ${v}_src (auction int, bidder int, price int, channel text,
                                              date_time timestamptz NOT NULL)
                SERVER kafka OPTIONS (topic '$topic', start 'earliest')" >/dev/null
        t0=$(now)
        # shellcheck disable=SC2059
        q -c "SELECT flowstate.create_view('$v', \$\$ $(printf "${VIEWS[$v]}" "${v}_src") \$\$)" \
          -c "SELECT flowstate.wait_for(timeout => '10min')" >/dev/null
        t1=$(now)
        pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'flowstate kafka'")
        cpu=$(cpu_seconds "$pid")
        fresh=$(elapsed "$t0" "$t1")
        # shellcheck disable=SC2059
        batch=$(printf "${VIEWS[$v]}" bids)
        differ=$(q -c "SELECT count(*) FROM ((TABLE $v EXCEPT ALL ($batch)) UNION ALL (($batch) EXCEPT ALL TABLE $v)) d")
        printf 'round %d: %-4s all %d bids in the view after %6.2f s: %8.0f bids/s, %8.0f bids per CPU-s of the Kafka worker; oracle: %s rows differ\n' \
            "$r" "$v" "$MESSAGES" "$fresh" "$(echo "$MESSAGES / $fresh" | bc -l)" \
            "$(echo "$MESSAGES / $cpu" | bc -l)" "$differ"
        echo "$r $v $fresh $cpu $differ" >> results.txt
        q -c "SELECT flowstate.drop_view('$v')" -c "DROP FOREIGN TABLE ${v}_src" >/dev/null
    done
done

echo "medians of $ROUNDS rounds, $MESSAGES bids     fresh after    bids/s    bids per CPU-s (target >= 300,000)"
for v in "${ORDER[@]}"; do
    printf '%-4s                                  %7.2f s   %9.0f   %9.0f\n' \
        "$v" "$(med "$v" 3)" "$(echo "$MESSAGES / $(med "$v" 3)" | bc -l)" "$(echo "$MESSAGES / $(med "$v" 4)" | bc -l)"
done
if awk '$5 != 0 {bad = 1} END {exit bad}' results.txt; then
    echo "every view equalled its batch query in every round"
else
    echo "a view differed from its batch query"
    exit 1
fi
