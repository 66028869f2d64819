-- The demo database: an orders table, fed by test/demo_orders.pgbench, and
-- continuous views over it
CREATE EXTENSION IF NOT EXISTS flowstate;

CREATE TABLE orders (
    id        bigserial PRIMARY KEY,
    placed_at timestamptz NOT NULL DEFAULT now(),
    customer  int NOT NULL,
    region    text NOT NULL,
    amount    numeric(10, 2) NOT NULL,
    status    text NOT NULL DEFAULT 'placed'
);
-- continuous views need the old rows of updates and deletes
ALTER TABLE orders REPLICA IDENTITY FULL;
CREATE INDEX ON orders (region, placed_at);

-- an hour of history: the views start from it (backfill)
INSERT INTO orders (placed_at, customer, region, amount, status)
SELECT now() - i * interval '1 second', 1 + i % 500,
       (ARRAY['north', 'south', 'east', 'west'])[1 + i % 4],
       round((5 + (i * 7919) % 49500 / 100.0)::numeric, 2),
       CASE WHEN i > 300 THEN 'shipped' ELSE 'placed' END
  FROM generate_series(1, 3600) i;

-- who manages each region: a dimension (a user catalog table, which the
-- decoder reads as of each commit), and revenue per manager, a lookup join
-- that follows changes of either table
CREATE TABLE region_managers (region text PRIMARY KEY, manager text NOT NULL)
    WITH (user_catalog_table = true);
ALTER TABLE region_managers REPLICA IDENTITY FULL;
INSERT INTO region_managers VALUES ('north', 'Ana'), ('south', 'Ben'), ('east', 'Chen'), ('west', 'Dara');
SELECT flowstate.create_view('revenue_per_manager', $$
    SELECT m.manager, count(*) AS orders, sum(o.amount) AS revenue
      FROM orders o JOIN region_managers m ON m.region = o.region
     GROUP BY m.manager $$);
-- the managers' history, and revenue per manager at the time of each
-- order (a temporal join): when a region changes hands, its earlier orders
-- stay with the manager they had (those before the history began have none)
SELECT flowstate.create_history('manager_history', 'region_managers', '{region}');
ALTER TABLE manager_history SET (user_catalog_table = true);
ALTER TABLE manager_history REPLICA IDENTITY FULL;
SELECT flowstate.create_view('revenue_per_manager_then', $$
    SELECT h.manager, count(*) AS orders, sum(o.amount) AS revenue
      FROM orders o JOIN manager_history h
        ON h.region = o.region AND h.valid_from <= o.placed_at AND o.placed_at < h.valid_to
     GROUP BY h.manager $$);

-- revenue per region and minute: a tumbling window
SELECT flowstate.create_view('revenue_per_minute', $$
    SELECT region, date_bin('1 minute', placed_at, '2000-01-01') AS minute,
           count(*) AS orders, sum(amount) AS revenue, avg(amount) AS avg_amount,
           max(amount) AS largest
      FROM orders GROUP BY region, minute $$);

-- orders move between groups as they are shipped
SELECT flowstate.create_view('orders_by_status', $$
    SELECT status, count(*) AS orders, sum(amount) AS amount
      FROM orders GROUP BY status $$);

-- a running aggregate per customer
SELECT flowstate.create_view('customers', $$
    SELECT customer, count(*) AS orders, sum(amount) AS spent,
           min(placed_at) AS first_order, max(placed_at) AS last_order
      FROM orders GROUP BY customer $$);

-- revenue per region and 10 seconds, final 5 seconds after each window
-- ends: final windows are written to revenue_final_changelog (and
-- announced on the channel "public.revenue_final"), kept an hour
SELECT flowstate.create_view('revenue_final', $$
    SELECT region, flowstate.tumble(placed_at, '10 seconds') AS window_start,
           count(*) AS orders, sum(amount) AS revenue
      FROM orders GROUP BY region, window_start $$,
    allowed_lateness => '5 seconds', retention => '1 hour', notify => true, changelog => true);

-- revenue per region over the last 5 minutes, every minute: hopping
-- windows, kept in panes of a minute (revenue_5min_panes)
SELECT flowstate.create_view('revenue_5min', $$
    SELECT w.window_start, w.window_end, o.region, count(*) AS orders, sum(o.amount) AS revenue
      FROM orders o, LATERAL flowstate.hop(o.placed_at, '5 minutes', '1 minute') w
     GROUP BY w.window_start, w.window_end, o.region $$);

-- orders per local day in Tokyo: the view evaluates in the time zone of the
-- session that created it
SET TimeZone = 'Asia/Tokyo';
SELECT flowstate.create_view('orders_per_tokyo_day', $$
    SELECT date_trunc('day', placed_at) AS tokyo_day, region, count(*) AS orders,
           sum(amount) AS revenue
      FROM orders GROUP BY 1, 2 $$);
RESET TimeZone;

-- shopping sessions: a customer's orders less than 30 seconds apart, kept
-- in panes of 30 seconds (customer_sessions_panes); a cancelled order in
-- the middle of a session splits it again
SELECT flowstate.create_view('customer_sessions', $$
    SELECT customer, session_start, count(*) AS orders, sum(amount) AS spent,
           max(placed_at) AS last_order
      FROM (SELECT customer, placed_at, amount,
                   flowstate.session(placed_at, '30 seconds')
                     OVER (PARTITION BY customer ORDER BY placed_at) AS session_start
              FROM orders) s
     GROUP BY customer, session_start $$);

-- distinct customers (an hll sketch) and the amounts (a t-digest) per
-- region and 10 minutes: sketches that combine into any coarser window
CREATE EXTENSION IF NOT EXISTS hll;
CREATE EXTENSION IF NOT EXISTS tdigest;
SELECT flowstate.create_view('region_sketches', $$
    SELECT region, date_bin('10 minutes', placed_at, '2000-01-01') AS w, count(*) AS orders,
           hll_add_agg(hll_hash_integer(customer)) AS customers,
           tdigest(amount::float8, 100) AS amounts
      FROM orders GROUP BY region, w $$);

-- the median and 95th percentile order per region and minute, exact: kept
-- as each minute's multiset of amounts (order_percentiles_values)
SELECT flowstate.create_view('order_percentiles', $$
    SELECT region, date_bin('1 minute', placed_at, '2000-01-01') AS minute, count(*) AS orders,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY amount::float8) AS median,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY amount::float8) AS p95
      FROM orders GROUP BY region, minute $$);
