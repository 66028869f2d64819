#!/usr/bin/env bash
# The main job: a throwaway local PostgreSQL 15 cluster under .demo/ with
# flowstate preloaded and a live pipeline in database flowstate_demo: an
# orders table (test/demo.sql) fed by a generator (pgbench running
# test/demo_orders.pgbench) and continuous views over it, one joined to a
# table of region managers, one to its history; and a Kafka
# topic of page views on librdkafka's mock cluster (test/kafka_mock), fed
# by kcat, with a continuous view over it; a topic of prices, keyed by
# product, whose messages arrive out of order, with an SCD type-2 history
# sequenced by their time; and a bulk load of 500,000 orders in one
# transaction.  The views are printed as they change.  Usage: demo.sh [start|watch|stop|status]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

PORT=${FLOWSTATE_PORT:-55432}
DEMO=$ROOT/.demo

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        su postgres -s /bin/bash -c "PATH='$PATH' $*"
    else
        eval "$*"
    fi
}

if [ "$(id -u)" -eq 0 ]; then
    mkdir -p "$DEMO" && chown postgres:postgres "$DEMO"
    if ! su postgres -s /bin/bash -c "test -w '$DEMO'"; then
        DEMO=/tmp/flowstate-demo
        echo "flowstate: the postgres user cannot enter $ROOT; the demo cluster lives in $DEMO"
        mkdir -p "$DEMO" && chown postgres:postgres "$DEMO"
    fi
else
    mkdir -p "$DEMO"
fi
DATA=$DEMO/data
PSQL="psql -X -q -h localhost -p $PORT -U postgres"

stop() {
    if [ -f "$DEMO/generator.pid" ]; then
        kill "$(cat "$DEMO/generator.pid")" 2>/dev/null || true
        rm -f "$DEMO/generator.pid"
    fi
    # the page view producer and the mock cluster: process groups of their own
    for pidfile in "$DEMO/producer.pid" "$DEMO/prices.pid" "$DEMO/kafka.pid"; do
        if [ -f "$pidfile" ]; then
            kill -- "-$(cat "$pidfile")" 2>/dev/null || true
            rm -f "$pidfile"
        fi
    done
    if [ -f "$DATA/postmaster.pid" ]; then
        as_pg pg_ctl -D "'$DATA'" -m fast -w stop >/dev/null || true
    fi
}

# what the views show now
show() {
    echo "---- $(date -u +%H:%M:%S) UTC ----"
    $PSQL -d flowstate_demo -c "SELECT * FROM orders_by_status ORDER BY status"
    $PSQL -d flowstate_demo -c "SELECT region, minute, orders, revenue,
            round(avg_amount, 2) AS avg_amount, largest
        FROM revenue_per_minute
        WHERE minute >= date_bin('1 minute', now(), '2000-01-01') - interval '1 minute'
        ORDER BY minute DESC, region"
    # the minutes' partial states combined into hours
    $PSQL -d flowstate_demo -c "SELECT region, hour, (f).orders, (f).revenue,
            round((f).avg_amount, 2) AS avg_amount, (f).largest
        FROM (SELECT (keys).region, date_bin('1 hour', (keys).minute, '2000-01-01') AS hour,
                     flowstate.finalize(flowstate.combine(state), NULL::revenue_per_minute) AS f
                FROM flowstate.partial_states(NULL::revenue_per_minute) GROUP BY 1, 2) h
        ORDER BY hour DESC, region LIMIT 4"
    $PSQL -d flowstate_demo -c "SELECT customer, orders, spent, last_order
        FROM customers ORDER BY spent DESC, customer LIMIT 3"
    # orders joined to the table of region managers (east went to Eve)
    $PSQL -d flowstate_demo -c "SELECT manager, orders, revenue FROM revenue_per_manager ORDER BY manager"
    # and to the manager each order's region had when it was placed (a
    # temporal join to the managers' history: Chen keeps his orders)
    $PSQL -d flowstate_demo -c "SELECT manager, orders, revenue FROM revenue_per_manager_then ORDER BY manager"
    # the last 5 minutes, every minute (hopping windows)
    $PSQL -d flowstate_demo -c "SELECT window_start, window_end, region, orders, revenue
        FROM revenue_5min WHERE window_end <= now() + interval '1 minute'
        ORDER BY window_start DESC, region LIMIT 4"
    # the latest shopping sessions (session windows): a customer's orders
    # less than 30 seconds apart
    $PSQL -d flowstate_demo -c "SELECT customer, session_start, orders, spent,
            last_order - session_start AS duration
        FROM customer_sessions ORDER BY last_order DESC, customer LIMIT 3"
    # exact percentiles of the last minute's orders
    $PSQL -d flowstate_demo -c "SELECT region, minute, orders, round(median::numeric, 2) AS median,
            round(p95::numeric, 2) AS p95
        FROM order_percentiles
        WHERE minute >= date_bin('1 minute', now(), '2000-01-01') - interval '1 minute'
        ORDER BY minute DESC, region LIMIT 4"
    # sketches of 10 minutes combined into hours: distinct customers (hll)
    # and the 99th percentile amount (t-digest)
    $PSQL -d flowstate_demo -c "SELECT region, date_bin('1 hour', w, '2000-01-01') AS hour,
            sum(orders) AS orders, round(hll_cardinality(hll_union_agg(customers))) AS customers,
            round(tdigest_percentile(amounts, 0.99)::numeric, 2) AS p99_amount
        FROM region_sketches GROUP BY 1, 2 ORDER BY hour DESC, region LIMIT 4"
    # the last windows that became final, from the changelog
    $PSQL -d flowstate_demo -c "SELECT region, window_start, orders, revenue, finalized_at
        FROM revenue_final_changelog ORDER BY window_start DESC, region LIMIT 4"
    # days that start at midnight in Tokyo, whatever the reader's zone
    $PSQL -d flowstate_demo -c "SELECT tokyo_day, (tokyo_day AT TIME ZONE 'Asia/Tokyo')::date AS date_in_tokyo,
            region, orders, revenue
        FROM orders_per_tokyo_day ORDER BY tokyo_day DESC, region LIMIT 4"
    # the history of the orders shipped last: placed, then shipped
    $PSQL -d flowstate_demo -c "SELECT id, status, version, valid_from, valid_to
        FROM order_history
        WHERE id IN (SELECT id FROM order_history WHERE version = 2 ORDER BY valid_from DESC LIMIT 2)
        ORDER BY id, version"
    # the latest prices of a product, from a stream whose messages come out of
    # order: each version ends where the next begins
    $PSQL -d flowstate_demo -c "SELECT sku, price, version, valid_from, valid_to
        FROM price_history WHERE sku = 'sku-1' ORDER BY version DESC LIMIT 4"
    $PSQL -d flowstate_demo -c "SELECT history, status, versions_written, last_change FROM flowstate.histories"
    $PSQL -d flowstate_demo -c "SELECT page, minute, views, round(avg_ms) AS avg_ms, slowest
        FROM page_views_per_minute
        WHERE minute >= flowstate.tumble(now(), '1 minute') - interval '1 minute'
        ORDER BY minute DESC, page"
    # page views joined to the pages table (lookup join) and to the
    # section each page had when it was viewed (temporal join to a history)
    $PSQL -d flowstate_demo -c "SELECT owner, minute, views, round(avg_ms) AS avg_ms
        FROM views_per_owner
        WHERE minute >= flowstate.tumble(now(), '1 minute') - interval '1 minute'
        ORDER BY minute DESC, owner"
    $PSQL -d flowstate_demo -c "SELECT section, version, views FROM views_per_section ORDER BY section, version"
    $PSQL -d flowstate_demo -c "SELECT view, status, groups, rows_applied, failed_rows, flushes
        FROM flowstate.views ORDER BY view::text"
    $PSQL -d flowstate_demo -c "SELECT source, kind, state, changes, lag_messages, streamed_transactions
        FROM flowstate.sources ORDER BY source"
}

case "${1:-start}" in
    stop)   stop; exit 0 ;;
    status) as_pg pg_ctl -D "'$DATA'" status; exit $? ;;
    watch)  while true; do show; sleep 2; done ;;
    start)  ;;
    *)      echo "usage: $0 [start|watch|stop|status]" >&2; exit 2 ;;
esac

stop
rm -rf "$DATA"
as_pg initdb -D "'$DATA'" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-instructions >/dev/null
cat >> "$DATA/postgresql.conf" <<CONF
shared_preload_libraries = 'flowstate'
wal_level = logical
max_worker_processes = 32
max_replication_slots = 16
max_wal_senders = 16
listen_addresses = 'localhost'
port = $PORT
unix_socket_directories = '/tmp'
timezone = 'UTC'
CONF
as_pg pg_ctl -D "'$DATA'" -l "'$DEMO/server.log'" -w start >/dev/null
$PSQL -d postgres -c "CREATE DATABASE flowstate_demo"
$PSQL -d flowstate_demo -v ON_ERROR_STOP=1 -f "$ROOT/test/demo.sql"

# the Kafka cluster: librdkafka's mock, three brokers in one process, which
# reads its commands from a pipe kept open by a sleeping writer
make -s -C "$ROOT" test/kafka_mock PG_CONFIG="$PG_BIN/pg_config"
rm -f "$DEMO/kafka.in" "$DEMO/kafka.out"
mkfifo "$DEMO/kafka.in"
setsid bash -c "sleep infinity > '$DEMO/kafka.in' & exec '$ROOT/test/kafka_mock' \
    < '$DEMO/kafka.in' > '$DEMO/kafka.out' 2> '$DEMO/kafka.log'" &
echo $! > "$DEMO/kafka.pid"
for _ in $(seq 1 100); do
    grep -q '^ready ' "$DEMO/kafka.out" 2>/dev/null && break
    sleep 0.1
done
BROKERS=$(awk '/^ready / {print $2}' "$DEMO/kafka.out")
echo "topic page_views 4" > "$DEMO/kafka.in"
echo "topic prices 2" > "$DEMO/kafka.in"
for _ in $(seq 1 100); do
    [ "$(grep -c '^ok' "$DEMO/kafka.out")" = 2 ] && break
    sleep 0.1
done
$PSQL -d flowstate_demo -v ON_ERROR_STOP=1 -v brokers="$BROKERS" <<'SQL'
CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers :'brokers');
CREATE FOREIGN TABLE page_views (ts timestamptz NOT NULL, page text NOT NULL, ms int)
  SERVER kafka OPTIONS (topic 'page_views', format 'json', start 'earliest');
-- page views per page and minute, from the topic
SELECT flowstate.create_view('page_views_per_minute', $$
    SELECT page, flowstate.tumble(ts, '1 minute') AS minute, count(*) AS views,
           avg(ms) AS avg_ms, max(ms) AS slowest
      FROM page_views GROUP BY page, minute $$);
-- the site's pages, a dimension: who owns each, and its section, with a
-- history of the sections; page views joined to the owner a page has
-- (a lookup join), and to the section it had when it was viewed (a
-- temporal join)
CREATE TABLE pages (page text PRIMARY KEY, owner text NOT NULL, section text NOT NULL);
ALTER TABLE pages REPLICA IDENTITY FULL;
INSERT INTO pages VALUES ('/home', 'web team', 'marketing'), ('/pricing', 'sales', 'marketing'),
    ('/docs', 'docs team', 'product'), ('/blog', 'web team', 'marketing'), ('/signup', 'growth', 'product');
SELECT flowstate.create_history('page_history', 'pages', '{page}');
SELECT flowstate.wait_for(timeout => '60s');
SELECT flowstate.create_view('views_per_owner', $$
    SELECT p.owner, flowstate.tumble(v.ts, '1 minute') AS minute, count(*) AS views, avg(v.ms) AS avg_ms
      FROM page_views v JOIN pages p ON p.page = v.page GROUP BY 1, 2 $$);
SELECT flowstate.create_view('views_per_section', $$
    SELECT h.section, h.version, count(*) AS views
      FROM page_views v JOIN page_history h
        ON h.page = v.page AND h.valid_from <= v.ts AND v.ts < h.valid_to
     GROUP BY 1, 2 $$);
-- prices of products, keyed by product: each message the price from "at";
-- they arrive up to seconds out of order, and the history puts them in place
CREATE FOREIGN TABLE prices (sku text OPTIONS (metadata 'key'), price numeric NOT NULL,
                             at timestamptz NOT NULL)
  SERVER kafka OPTIONS (topic 'prices', format 'json', start 'earliest');
SELECT flowstate.create_history('price_history', 'prices', '{sku}', sequence_column => 'at');
SQL

# the page view producer: about 100 messages a second, one in 500 malformed
# (it lands in flowstate.dead_letters)
setsid bash -c '
    pages=(home pricing docs blog signup)
    n=0
    while sleep 0.05; do
        ts=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
        for _ in 1 2 3 4 5; do
            n=$((n + 1))
            if ((n % 500 == 0)); then echo "{\"ts\": not json"; continue; fi
            printf "{\"ts\":\"%s\",\"page\":\"/%s\",\"ms\":%d}\n" \
                "$ts" "${pages[RANDOM % 5]}" $((20 + RANDOM % 400))
        done
    done | kcat -P -b "$0" -t page_views' "$BROKERS" > "$DEMO/producer.log" 2>&1 &
echo $! > "$DEMO/producer.pid"

# the price producer: a new price of one of five products 20 times a
# second, stamped up to 3 seconds back (late messages)
setsid bash -c '
    while sleep 0.05; do
        at=$(($(date -u +%s%3N) - RANDOM % 3000))    # epoch milliseconds
        printf "sku-%d|{\"price\":%d.%02d,\"at\":%d.%03d}\n" \
            $((1 + RANDOM % 5)) $((10 + RANDOM % 5)) $((RANDOM % 100)) $((at / 1000)) $((at % 1000))
    done | kcat -P -K "|" -b "$0" -t prices' "$BROKERS" > "$DEMO/prices.log" 2>&1 &
echo $! > "$DEMO/prices.pid"

# until every view runs (the backfills done)
for _ in $(seq 1 100); do
    n=$($PSQL -At -d flowstate_demo -c "SELECT count(*) FROM flowstate.views WHERE status <> 'running'")
    [ "$n" = 0 ] && break
    sleep 0.1
done

# a bulk load: 500,000 orders in one transaction, decoded while it runs
# (its changes pass logical_decoding_work_mem) and in the views as it commits
echo
echo "A bulk load of 500,000 orders in one transaction:"
t0=$(date +%s.%N)
$PSQL -q -d flowstate_demo -c "INSERT INTO orders (customer, region, amount)
    SELECT 1 + i % 500, (ARRAY['north', 'south', 'east', 'west'])[1 + i % 4], 5 + (i::bigint * 7919) % 49500 / 100.0
      FROM generate_series(1, 500000) i"
t1=$(date +%s.%N)
$PSQL -q -At -d flowstate_demo -c "SELECT flowstate.wait_for()" > /dev/null
t2=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v c="$t2" \
    'BEGIN { printf "loaded in %.2f s; the views had it %.2f s after the load began\n", b - a, c - a }'
$PSQL -d flowstate_demo -c "SELECT streamed_transactions, pg_size_pretty(open_transaction_peak_bytes) AS deltas_peak,
        pg_size_pretty(spilled_bytes) AS spilled
    FROM flowstate.sources WHERE kind = 'logical decoding'"

# an SCD type-2 history of the orders: each status an order went through,
# from now on (the orders there become version 1)
$PSQL -q -d flowstate_demo -c "SELECT flowstate.create_history('order_history', 'orders', '{id}',
                                                               tracked => '{status}')" > /dev/null
# its backfill, handed over to the changes (the generator starts after it)
$PSQL -q -At -d flowstate_demo -c "SELECT flowstate.wait_for(timeout => '120 s')" > /dev/null

# the generator: 20 transactions a second, until demo.sh stop
cp "$ROOT/test/demo_orders.pgbench" "$DEMO/orders.pgbench"
as_pg "nohup pgbench -n -c 1 -R 20 -T 8640000 -h localhost -p $PORT -U postgres \
    -f '$DEMO/orders.pgbench' flowstate_demo > '$DEMO/generator.log' 2>&1 & echo \$! > '$DEMO/generator.pid'"

echo
echo "flowstate workers:"
$PSQL -d flowstate_demo -c "SELECT kind, datname, state, activity
    FROM flowstate.workers ORDER BY kind = 'manager', kind, datname"
# /docs moves to a new section with a new owner: the page views from now on
# join the new row and the new version; those before keep the old ones
$PSQL -q -d flowstate_demo -c "UPDATE pages SET section = 'support', owner = 'support team' WHERE page = '/docs'"
# the east region changes hands: its orders, all of them, count for Eve now
$PSQL -q -d flowstate_demo -c "UPDATE region_managers SET manager = 'Eve' WHERE region = 'east'"
echo "The generator places, ships and cancels orders, kcat sends page views; the views follow:"
for _ in 1 2 3; do
    sleep 2
    show
done
cat <<MSG
The demo server runs on port $PORT (data in $DATA, log in $DEMO/server.log);
the generators keep running, the Kafka mock cluster at $BROKERS.
Watch:    bash .ci/demo.sh watch
Connect:  psql "host=localhost port=$PORT user=postgres dbname=flowstate_demo"
Stop:     bash .ci/demo.sh stop
MSG
