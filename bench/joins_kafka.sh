#!/usr/bin/env bash
# The join benchmark through Kafka: bash bench/joins_kafka.sh [rounds]
# (or: make bench-joins-kafka)
#
# 1,000,000 JSON orders ({"ts", "cid", "amount"}, a customer of 100,000) in
# a topic of 16 partitions of librdkafka's mock cluster (test/kafka_mock),
# consumed by one Kafka worker into, each alone:
#   plain     count and sum of the amount per cid % 10: the baseline,
#             what consuming the stream costs;
#   lookup    the same per customer segment (10 of them), the orders joined
#             to a table of the 100,000 customers on its primary key;
#   temporal  the same per account tier, the orders joined to a history of
#             the 100,000 accounts (3 versions each) on the key and the
#             range of the versions (the version valid at the order's time).
# Per view: the time from its creation until it has every message
# (wait_for), messages per second, and the cost of the join per message
# (the difference with the plain view, in microseconds).  The views are
# checked: each counts every order.  As in bench/kafka.sh, the server runs
# on CPU 0 and the brokers on the others.  Prints each round, then the
# medians.  As root it first installs what it needs (.ci/setup.sh) and runs
# the server as postgres.
set -euo pipefail
trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
ROUNDS=${1:-${ROUNDS:-3}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${FLOWSTATE_BENCH_DIR:-/tmp/flowstate-bench-joins-kafka}
PORT=${FLOWSTATE_BENCH_PORT:-5494}
source "$HERE/lib.sh"

if [ "${FLOWSTATE_BENCH_CHILD:-}" != 1 ]; then
    bench_prepare_kafka
    bench_reexec joins_kafka.sh "$ROUNDS"
fi

# ---- as the server's user, in $WORK -------------------------------------
cd "$WORK"
export PGOPTIONS='-c client_min_messages=warning'
bench_initdb < /dev/null
bench_kafka_start

MESSAGES=1000000
CUSTOMERS=100000
PARTITIONS=16

q -c "CREATE EXTENSION flowstate" \
  -c "CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers '$BROKERS')" \
  -c "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, segment text NOT NULL)" \
  -c "INSERT INTO customers SELECT i, 'customer ' || i, 'segment ' || (i % 10) FROM generate_series(0, $CUSTOMERS - 1) i" \
  -c "CREATE TABLE accounts (id int PRIMARY KEY, tier text NOT NULL)" \
  -c "ALTER TABLE accounts REPLICA IDENTITY FULL" \
  -c "INSERT INTO accounts SELECT i, 'bronze' FROM generate_series(0, $CUSTOMERS - 1) i" \
  -c "SELECT flowstate.create_history('account_history', 'accounts', '{id}')" \
  -c "SELECT flowstate.wait_for(timeout => '10min')" \
  -c "UPDATE accounts SET tier = 'silver'" \
  -c "UPDATE accounts SET tier = 'tier ' || (id % 10)" \
  -c "SELECT flowstate.wait_for(timeout => '10min')" \
  -c "VACUUM ANALYZE customers, account_history" >/dev/null
versions=$(q -c "SELECT count(*) FROM account_history")
[ "$versions" = $((3 * CUSTOMERS)) ] || { echo "the history has $versions versions" >&2; exit 1; }
# the orders come after every version: each joins the current one
start=$(q -c "SELECT extract(epoch FROM now())::bigint + 60")
awk -v n=$MESSAGES -v c=$CUSTOMERS -v t="$start" 'BEGIN {
    for (i = 0; i < n; i++)
        printf "{\"ts\":%d.%03d,\"cid\":%d,\"amount\":%d.%02d}\n", t + int(i / 1000), i % 1000, (i * 7919) % c, i % 500, i % 100
}' > orders.json

printf 'flowstate join benchmark through Kafka: %s, %s cores (consumers on %s), %d rounds of %d messages over %d partitions, %d customers\n' \
    "$(q -c 'SHOW server_version')" "$(nproc)" "${CONSUMER_CPU[*]:-every CPU}" "$ROUNDS" "$MESSAGES" "$PARTITIONS" "$CUSTOMERS"
: > results.txt
for ((r = 1; r <= ROUNDS; r++)); do
    [ "$(kafka "topic orders$r $PARTITIONS")" = ok ]
    [ "$(kafka "produce orders$r $WORK/orders.json")" = "produced $MESSAGES" ]
    run() {   # name, view query over %s; prints seconds
        local t0 t1 n
        q -c "CREATE FOREIGN TABLE s_$1$r (ts timestamptz NOT NULL, cid int NOT NULL, amount numeric NOT NULL)
                SERVER kafka OPTIONS (topic 'orders$r', start 'earliest')" >/dev/null
        t0=$(now)
        q -c "SELECT flowstate.create_view('$1$r', \$q\$ $(printf "$2" "s_$1$r") \$q\$)" \
          -c "SELECT flowstate.wait_for(timeout => '30min')" >/dev/null
        t1=$(now)
        n=$(q -c "SELECT sum(n) FROM $1$r")
        [ "$n" = "$MESSAGES" ] || { echo "view $1$r counts $n messages" >&2; exit 1; }
        q -c "SELECT flowstate.drop_view('$1$r')" -c "DROP FOREIGN TABLE s_$1$r" >/dev/null
        elapsed "$t0" "$t1"
    }
    plain_s=$(run plain "SELECT o.cid %% 10 AS bucket, count(*) AS n, sum(o.amount) AS total FROM %s o GROUP BY 1")
    lookup_s=$(run lookup "SELECT c.segment, count(*) AS n, sum(o.amount) AS total
                             FROM %s o JOIN customers c ON c.id = o.cid GROUP BY 1")
    temporal_s=$(run temporal "SELECT h.tier, count(*) AS n, sum(o.amount) AS total
                                 FROM %s o JOIN account_history h
                                   ON h.id = o.cid AND h.valid_from <= o.ts AND o.ts < h.valid_to GROUP BY 1")
    echo "$r $plain_s $lookup_s $temporal_s" >> results.txt
    printf 'round %d: plain %.2f s (%.0f messages/s); lookup join %.2f s (%.0f messages/s, %.2f us more per message, %.2fx); temporal join %.2f s (%.0f messages/s, %.2f us more per message, %.2fx)\n' \
        "$r" "$plain_s" "$(echo "$MESSAGES / $plain_s" | bc -l)" \
        "$lookup_s" "$(echo "$MESSAGES / $lookup_s" | bc -l)" "$(echo "($lookup_s - $plain_s) * 1000000 / $MESSAGES" | bc -l)" \
        "$(echo "$lookup_s / $plain_s" | bc -l)" \
        "$temporal_s" "$(echo "$MESSAGES / $temporal_s" | bc -l)" "$(echo "($temporal_s - $plain_s) * 1000000 / $MESSAGES" | bc -l)" \
        "$(echo "$temporal_s / $plain_s" | bc -l)"
done

col() { awk -v c="$1" '{print $c}' results.txt | median; }
echo "medians of $ROUNDS rounds:"
printf '  plain view: %.0f messages/s\n' "$(echo "$MESSAGES / $(col 2)" | bc -l)"
printf '  lookup join: %.0f messages/s, %.2f us more per message, %.2fx the time of the plain view\n' \
    "$(echo "$MESSAGES / $(col 3)" | bc -l)" "$(echo "($(col 3) - $(col 2)) * 1000000 / $MESSAGES" | bc -l)" \
    "$(echo "$(col 3) / $(col 2)" | bc -l)"
printf '  temporal join: %.0f messages/s, %.2f us more per message, %.2fx the time of the plain view\n' \
    "$(echo "$MESSAGES / $(col 4)" | bc -l)" "$(echo "($(col 4) - $(col 2)) * 1000000 / $MESSAGES" | bc -l)" \
    "$(echo "$(col 4) / $(col 2)" | bc -l)"
