#!/usr/bin/env bash
# The history benchmark through Kafka: bash bench/history_kafka.sh [rounds]
# (or: make bench-history-kafka)
#
# 500,000 messages, each the price of one of 5,000 products (a new price
# every time) with the time it began, as JSON in a topic of 64 partitions
# of librdkafka's mock cluster (test/kafka_mock), consumed by one Kafka
# worker into, each alone:
#   view      a continuous view of count, max(at) and sum(price) per
#             product: the baseline, what consuming the stream costs;
#   ordered   a history of the products sequenced by "at", the messages of
#             each product in the order of "at" (in the partition of the
#             product, as producers partition keyed messages);
#   late      the same history, one message in ten sent 100 s of "at" late
#             (after about twenty later prices of its product): each of
#             those splits a version in the middle, and its product's
#             versions from there are built again from its messages.
# Per consumer: the time from its creation until it has every message
# (wait_for), messages and versions per second, and the history checked
# against the one the prices give in order (late equals ordered, row for
# row).  As in bench/kafka.sh, the server runs on CPU 0 and the brokers on
# the others.  Prints each round, then the medians.  As root it first
# installs what it needs (.ci/setup.sh) and runs the server as postgres.
set -euo pipefail
trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
ROUNDS=${1:-${ROUNDS:-3}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${FLOWSTATE_BENCH_DIR:-/tmp/flowstate-bench-history-kafka}
PORT=${FLOWSTATE_BENCH_PORT:-5493}
source "$HERE/lib.sh"

if [ "${FLOWSTATE_BENCH_CHILD:-}" != 1 ]; then
    bench_prepare_kafka
    bench_reexec history_kafka.sh "$ROUNDS"
fi

# ---- as the server's user, in $WORK -------------------------------------
cd "$WORK"
export PGOPTIONS='-c client_min_messages=warning'
bench_initdb < /dev/null
bench_kafka_start

MESSAGES=500000
PRODUCTS=5000
PARTITIONS=64
# message i: product i % PRODUCTS, a price from i, "at" 2026-01-01 + i ms;
# in the late topic, one message in ten goes out 100,000 messages later
# (100 s of "at", some flushes of the history later); the message's timestamp is "at" (mode timed of the mock)
awk -v n=$MESSAGES -v p=$PRODUCTS 'BEGIN {
    for (i = 0; i < n; i++) {
        ms = 1767225600000 + i
        printf "%d\tp%05d\t{\"price\":%d.%02d,\"at\":%d.%03d}\n", ms, i % p, 10 + i % 997, i % 100, int(ms / 1000), ms % 1000
    }
}' > ordered.txt
awk -F'\t' '{ i = NR - 1; key = (i % 10 == 3) ? i + 100000 : i; printf "%d\t%s\n", key, $0 }' ordered.txt |
    sort -n -s -k1,1 | cut -f2- > late.txt

q -c "CREATE EXTENSION flowstate" \
  -c "CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers '$BROKERS')" >/dev/null

printf 'flowstate history benchmark through Kafka: %s, %s cores (consumers on %s), %d rounds of %d messages over %d products and %d partitions\n' \
    "$(q -c 'SHOW server_version')" "$(nproc)" "${CONSUMER_CPU[*]:-every CPU}" "$ROUNDS" "$MESSAGES" "$PRODUCTS" "$PARTITIONS"
: > results.txt
for ((r = 1; r <= ROUNDS; r++)); do
    for kind in ordered late; do
        [ "$(kafka "topic $kind$r $PARTITIONS")" = ok ]
        [ "$(kafka "produce $kind$r $WORK/$kind.txt timed")" = "produced $MESSAGES" ]
    done
    # "at" as epoch seconds with milliseconds: the JSON reader converts those
    stream() {
        q -c "CREATE FOREIGN TABLE $1 (product text OPTIONS (metadata 'key'), price numeric NOT NULL,
                                       at timestamptz NOT NULL)
                SERVER kafka OPTIONS (topic '$2', start 'earliest')" >/dev/null
    }
    run() {   # name, topic, what to create; prints seconds
        local t0 t1
        stream "s_$1$r" "$2"
        t0=$(now)
        q -c "$(printf "$3" "$1$r" "s_$1$r")" -c "SELECT flowstate.wait_for(timeout => '30min')" >/dev/null
        t1=$(now)
        elapsed "$t0" "$t1"
    }
    view_s=$(run view "ordered$r" "SELECT flowstate.create_view('%s', 'SELECT product, count(*) AS n, max(at) AS last, sum(price) AS total FROM %s GROUP BY product')")
    n=$(q -c "SELECT sum(n) FROM view$r")
    [ "$n" = "$MESSAGES" ] || { echo "the view has $n messages: the mock kept fewer" >&2; exit 1; }
    # every message kept when wait_for returns
    kept() {
        local n
        n=$(q -c "SELECT count(*) FROM $1_changes")
        if [ "$n" != "$MESSAGES" ]; then
            echo "wait_for returned when $1 had $n messages" >&2
            q -c "SELECT * FROM flowstate.histories" -c "SELECT * FROM flowstate.sources" \
              -c "SELECT history_id, count(*), sum(next_offset) FROM flowstate.history_offsets GROUP BY 1" >&2
            exit 1
        fi
    }
    ordered_s=$(run ordered "ordered$r" "SELECT flowstate.create_history('%s', '%s', '{product}', sequence_column => 'at')")
    kept "ordered$r"
    late_s=$(run late "late$r" "SELECT flowstate.create_history('%s', '%s', '{product}', sequence_column => 'at')")
    kept "late$r"
    versions=$(q -c "SELECT count(*) FROM ordered$r")
    differ=$(q -c "SELECT count(*) FROM ((SELECT * FROM ordered$r EXCEPT ALL SELECT * FROM late$r)
                                  UNION ALL (SELECT * FROM late$r EXCEPT ALL SELECT * FROM ordered$r)) d")
    q -c "SELECT flowstate.drop_view('view$r')" -c "SELECT flowstate.drop_history('ordered$r')" \
      -c "SELECT flowstate.drop_history('late$r')" \
      -c "DROP FOREIGN TABLE s_view$r, s_ordered$r, s_late$r" >/dev/null
    echo "$r $view_s $ordered_s $late_s $versions $differ" >> results.txt
    printf 'round %d: view %.2f s (%.0f messages/s); history in order %.2f s (%.0f versions/s, %.2fx the view); one message in ten late %.2f s (%.0f versions/s, %.2fx the view); %s versions, late and ordered differ in %s rows\n' \
        "$r" "$view_s" "$(echo "$MESSAGES / $view_s" | bc -l)" \
        "$ordered_s" "$(echo "$versions / $ordered_s" | bc -l)" "$(echo "$ordered_s / $view_s" | bc -l)" \
        "$late_s" "$(echo "$versions / $late_s" | bc -l)" "$(echo "$late_s / $view_s" | bc -l)" \
        "$versions" "$differ"
done

col() { awk -v c="$1" '{print $c}' results.txt | median; }
echo "medians of $ROUNDS rounds:"
printf '  view (count/max/sum per product): %.0f messages/s\n' "$(echo "$MESSAGES / $(col 2)" | bc -l)"
printf '  history, in order: %.0f versions/s, %.2fx the time of the view\n' \
    "$(echo "$(col 5) / $(col 3)" | bc -l)" "$(echo "$(col 3) / $(col 2)" | bc -l)"
printf '  history, one message in ten late: %.0f versions/s, %.2fx the time of the view\n' \
    "$(echo "$(col 5) / $(col 4)" | bc -l)" "$(echo "$(col 4) / $(col 2)" | bc -l)"
if awk '$6 != 0 {bad = 1} END {exit bad}' results.txt; then
    echo "the history with late messages equalled the one in order in every round"
else
    echo "the history with late messages differed from the one in order"
    exit 1
fi
