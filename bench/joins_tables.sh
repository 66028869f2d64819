#!/usr/bin/env bash
# The benchmark of joins between tables: bash bench/joins_tables.sh [rounds]
# (or: make bench-joins-tables)
#
# On a throwaway cluster, a table of 10,000 customers (a user catalog table
# with REPLICA IDENTITY FULL) and an orders table indexed on its customer.
# Each round loads 1,000,000 orders (100 transactions of 10,000 rows) into
# the orders table with, each alone:
#   plain     a continuous view of count and sum per customer % 10: the
#             baseline, what decoding the load costs;
#   lookup    the same per customer segment, the orders joined to the
#             customers on their key;
#   temporal  the same through a temporal join to a history of the
#             customers' segments (3 versions each, kept from another
#             table), by the time of the order;
# and reports the time from the start of the load until the view is fresh
# (wait_for), the decoder's CPU per row, the cost of the join per row (the
# difference with the baseline) and the ratio.  Then, with the million orders in place, it
# times a change of the dimension: 100 customers (about 10,000 of their
# orders) change segment in one transaction, until the joined view is
# fresh again (the groups of both segments recomputed by a scan of the
# orders).  Each view is checked against its batch query.  As root it first
# installs what it needs (.ci/setup.sh) and runs the server as postgres.
set -euo pipefail
trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
ROUNDS=${1:-${ROUNDS:-3}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${FLOWSTATE_BENCH_DIR:-/tmp/flowstate-bench-joins-tables}
PORT=${FLOWSTATE_BENCH_PORT:-5495}
source "$HERE/lib.sh"

if [ "${FLOWSTATE_BENCH_CHILD:-}" != 1 ]; then
    bench_prepare
    bench_reexec joins_tables.sh "$ROUNDS"
fi

# ---- as the server's user, in $WORK -------------------------------------
cd "$WORK"
export PGOPTIONS='-c client_min_messages=warning'
bench_initdb <<< "flowstate.flush_interval = 1s"
pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
trap 'pg_ctl -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true' EXIT

ROWS=1000000
CUSTOMERS=10000
q -c "CREATE EXTENSION flowstate" \
  -c "CREATE TABLE customers (id int PRIMARY KEY, segment text NOT NULL) WITH (user_catalog_table = true)" \
  -c "ALTER TABLE customers REPLICA IDENTITY FULL" \
  -c "INSERT INTO customers SELECT i, 'segment ' || (i % 10) FROM generate_series(0, $CUSTOMERS - 1) i" \
  -c "CREATE TABLE customer_segments (id int PRIMARY KEY, segment text NOT NULL)" \
  -c "ALTER TABLE customer_segments REPLICA IDENTITY FULL" \
  -c "INSERT INTO customer_segments SELECT id, segment FROM customers" \
  -c "SELECT flowstate.create_history('customer_history', 'customer_segments', '{id}')" \
  -c "SELECT flowstate.wait_for(timeout => '10min')" \
  -c "UPDATE customer_segments SET segment = segment || ' b'" -c "SELECT flowstate.wait_for(timeout => '10min')" \
  -c "UPDATE customer_segments SET segment = segment || ' c'" -c "SELECT flowstate.wait_for(timeout => '10min')" \
  -c "ALTER TABLE customer_history SET (user_catalog_table = true)" \
  -c "ALTER TABLE customer_history REPLICA IDENTITY FULL" >/dev/null

plain='SELECT o.cid % 10 AS bucket, count(*) AS n, sum(o.amount) AS total FROM orders o GROUP BY 1'
lookup='SELECT c.segment, count(*) AS n, sum(o.amount) AS total FROM orders o JOIN customers c ON c.id = o.cid GROUP BY 1'
temporal='SELECT h.segment, count(*) AS n, sum(o.amount) AS total FROM orders o JOIN customer_history h ON h.id = o.cid AND h.valid_from <= o.at AND o.at < h.valid_to GROUP BY 1'

differs() {   # view, query: rows they do not share
    q -c "SELECT count(*) FROM ((SELECT * FROM $1 EXCEPT ALL $2) UNION ALL ($2 EXCEPT ALL SELECT * FROM $1)) d"
}

decoder() { q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'flowstate decoder'"; }

run() {   # name, query; prints the seconds until fresh after the load, and the decoder's CPU seconds
    local t0 t1 c0 c1 pid
    q -c "DROP TABLE IF EXISTS orders" \
      -c "CREATE TABLE orders (id bigserial PRIMARY KEY, cid int NOT NULL, amount int NOT NULL,
                               at timestamptz NOT NULL DEFAULT now())" \
      -c "ALTER TABLE orders REPLICA IDENTITY FULL" \
      -c "CREATE INDEX ON orders (cid)" \
      -c "SELECT flowstate.create_view('$1', \$q\$ $2 \$q\$)" \
      -c "SELECT flowstate.wait_for(timeout => '10min')" >/dev/null
    pid=$(decoder)
    c0=$(cpu_seconds "$pid")
    t0=$(now)
    for ((t = 0; t < 100; t++)); do
        q -c "INSERT INTO orders (cid, amount)
              SELECT (i::bigint * 7919) % $CUSTOMERS, i % 1000 FROM generate_series($t * 10000 + 1, ($t + 1) * 10000) i" >/dev/null
    done
    q -c "SELECT flowstate.wait_for(timeout => '30min')" >/dev/null
    t1=$(now)
    c1=$(cpu_seconds "$pid")
    [ "$(differs "$1" "$2")" = 0 ] || { echo "view $1 differs from its batch query" >&2; exit 1; }
    echo "$(elapsed "$t0" "$t1") $(echo "$c1 - $c0" | bc -l)"
}

printf 'flowstate table join benchmark: %s, %s cores, %d rounds of %d orders over %d customers\n' \
    "$(q -c 'SHOW server_version')" "$(nproc)" "$ROUNDS" "$ROWS" "$CUSTOMERS"
: > results.txt
for ((r = 1; r <= ROUNDS; r++)); do
    read -r plain_s plain_cpu <<< "$(run "plain$r" "$plain")"
    q -c "SELECT flowstate.drop_view('plain$r')" >/dev/null
    read -r lookup_s lookup_cpu <<< "$(run "lookup$r" "$lookup")"
    # a change of the dimension: 100 customers move to another segment
    t0=$(now)
    q -c "UPDATE customers SET segment = 'moved ' || $r WHERE id % 100 = $r" \
      -c "SELECT flowstate.wait_for(timeout => '30min')" >/dev/null
    t1=$(now)
    change_s=$(elapsed "$t0" "$t1")
    [ "$(differs "lookup$r" "$lookup")" = 0 ] || { echo "view lookup$r differs after the change" >&2; exit 1; }
    q -c "SELECT flowstate.drop_view('lookup$r')" >/dev/null
    read -r temporal_s temporal_cpu <<< "$(run "temporal$r" "$temporal")"
    q -c "SELECT flowstate.drop_view('temporal$r')" >/dev/null
    echo "$r $plain_s $lookup_s $change_s $plain_cpu $lookup_cpu $temporal_s $temporal_cpu" >> results.txt
    printf 'round %d: plain view fresh %.2f s after the load began, decoder %.2f us of CPU per row; lookup join %.2f s, %.2f us per row (%.2f us more, %.2fx); 100 customers changing segment: fresh %.2f s later; temporal join %.2f s, %.2f us per row (%.2f us more, %.2fx)\n' \
        "$r" "$plain_s" "$(echo "$plain_cpu * 1000000 / $ROWS" | bc -l)" "$lookup_s" \
        "$(echo "$lookup_cpu * 1000000 / $ROWS" | bc -l)" "$(echo "($lookup_cpu - $plain_cpu) * 1000000 / $ROWS" | bc -l)" \
        "$(echo "$lookup_cpu / $plain_cpu" | bc -l)" "$change_s" "$temporal_s" \
        "$(echo "$temporal_cpu * 1000000 / $ROWS" | bc -l)" "$(echo "($temporal_cpu - $plain_cpu) * 1000000 / $ROWS" | bc -l)" \
        "$(echo "$temporal_cpu / $plain_cpu" | bc -l)"
done

col() { awk -v c="$1" '{print $c}' results.txt | median; }
echo "medians of $ROUNDS rounds:"
printf '  plain view: fresh %.2f s after a load of %d rows; decoder %.2f us of CPU per row\n' \
    "$(col 2)" "$ROWS" "$(echo "$(col 5) * 1000000 / $ROWS" | bc -l)"
printf '  lookup join: fresh %.2f s; decoder %.2f us of CPU per row, %.2f us more, %.2fx the plain view\n' \
    "$(col 3)" "$(echo "$(col 6) * 1000000 / $ROWS" | bc -l)" "$(echo "($(col 6) - $(col 5)) * 1000000 / $ROWS" | bc -l)" \
    "$(echo "$(col 6) / $(col 5)" | bc -l)"
printf '  temporal join: fresh %.2f s; decoder %.2f us of CPU per row, %.2f us more, %.2fx the plain view\n' \
    "$(col 7)" "$(echo "$(col 8) * 1000000 / $ROWS" | bc -l)" "$(echo "($(col 8) - $(col 5)) * 1000000 / $ROWS" | bc -l)" \
    "$(echo "$(col 8) / $(col 5)" | bc -l)"
printf '  a dimension change of 100 customers (%d orders in a table of %d): fresh %.2f s later\n' \
    "$((ROWS / 100))" "$ROWS" "$(col 4)"
echo "every view equalled its batch query in every round"
