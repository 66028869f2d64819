-- Continuous views: creation, reads, changes, monitoring, privileges, drop
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';

-- try(statement): the SQLSTATE, message and hint of its error, or 'ok'
CREATE FUNCTION public.try(statement text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    state text;
    message text;
    hint text;
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            hint = PG_EXCEPTION_HINT;
    RETURN state || ': ' || message || coalesce(E'\n       HINT: ' || nullif(hint, ''), '');
END
$$;

-- same(view): rows of the view and of its defining query run as a batch
-- query that the other lacks (0 when they are equal)
CREATE FUNCTION public.same(v regclass) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    def regclass := (SELECT definition FROM flowstate.view WHERE view = v);
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM ((TABLE %1$s EXCEPT ALL TABLE %2$s)
                    UNION ALL (TABLE %2$s EXCEPT ALL TABLE %1$s)) d', v, def) INTO n;
    RETURN n;
END
$$;

CREATE TABLE public.orders (
    id serial PRIMARY KEY,
    ts timestamptz NOT NULL,
    region text,
    amount numeric(10, 2)
);
ALTER TABLE public.orders REPLICA IDENTITY FULL;
INSERT INTO public.orders (ts, region, amount)
SELECT '2026-11-25 10:00:00+00'::timestamptz + i * interval '7 seconds',
       (ARRAY['north', 'south', 'east'])[1 + i % 3],
       (i % 50) + 0.25
  FROM generate_series(1, 60) AS i;

-- a view over a table that holds rows starts from them (backfill)
SELECT flowstate.create_view('public.revenue', $$
    SELECT flowstate.tumble(ts, '1 minute') AS minute, region,
           count(*) AS orders, sum(amount) AS revenue, max(amount) AS biggest
      FROM public.orders
     GROUP BY 1, 2
$$);
SELECT flowstate.wait_for();
SELECT * FROM public.revenue ORDER BY minute, region LIMIT 6;
SELECT public.same('public.revenue') AS differences;

-- what it is made of
SELECT v.view, v.definition::text ~ '^flowstate\.view_\d+_query$' AS definition,
       v.state_table::text ~ '^flowstate\.view_\d+_state$' AS state_table,
       v.source, v.window_kind, v.window_size
  FROM flowstate.view v;
SELECT definition AS revenue_definition, state_table AS revenue_state
  FROM flowstate.view WHERE view = 'public.revenue'::regclass \gset
SELECT column_name, data_type FROM information_schema.columns
 WHERE table_schema = 'public' AND table_name = 'revenue' ORDER BY ordinal_position;
SELECT c.relname ~ '^view_\d+_' AS flowstate_object, c.relnamespace::regnamespace, c.relkind
  FROM pg_class c
 WHERE c.oid IN (SELECT view FROM flowstate.view UNION ALL SELECT definition FROM flowstate.view
                 UNION ALL SELECT state_table FROM flowstate.view)
 ORDER BY 1, 3;

-- the definition is the batch query, readable by the view's owner: its rows
-- are those of the defining query
SELECT count(*) AS rows, count(*) FILTER (WHERE side = 'definition only') AS definition_only,
       count(*) FILTER (WHERE side = 'query only') AS query_only
  FROM ((SELECT 'definition only' AS side, * FROM
           (TABLE :revenue_definition
            EXCEPT ALL SELECT flowstate.tumble(ts, '1 minute'), region, count(*), sum(amount), max(amount)
                         FROM public.orders GROUP BY 1, 2) d)
        UNION ALL
        (SELECT 'query only', * FROM
           (SELECT flowstate.tumble(ts, '1 minute'), region, count(*), sum(amount), max(amount)
              FROM public.orders GROUP BY 1, 2
            EXCEPT ALL TABLE :revenue_definition) q)) x;
SELECT count(*) AS definition_rows FROM :revenue_definition;

-- inserts, updates (also moving rows to another group and window), deletes
INSERT INTO public.orders (ts, region, amount)
VALUES ('2026-11-25 10:03:30+00', 'west', 99.99), ('2026-11-25 10:03:31+00', NULL, 1.00);
UPDATE public.orders SET region = 'south' WHERE id = 3;
UPDATE public.orders SET ts = ts + interval '5 minutes' WHERE id BETWEEN 10 AND 12;
DELETE FROM public.orders WHERE amount = 49.25;
SELECT flowstate.wait_for();
SELECT public.same('public.revenue') AS differences;
SELECT * FROM public.revenue WHERE region IS NULL OR region = 'west' ORDER BY region;

-- a transaction is seen whole, and only once committed
BEGIN;
INSERT INTO public.orders (ts, region, amount) VALUES ('2026-11-25 11:00:00+00', 'north', 10);
SELECT flowstate.wait_for();
SELECT count(*) AS seen_before_commit FROM public.revenue WHERE minute = '2026-11-25 11:00:00+00';
COMMIT;
SELECT flowstate.wait_for();
SELECT orders, revenue FROM public.revenue WHERE minute = '2026-11-25 11:00:00+00';

-- the state table catches up within the flush interval; the view reads the same
SELECT pg_sleep(1.2);
-- (nothing is left in shared memory only: the view's rows are the state table's)
SELECT count(*) AS unflushed
  FROM flowstate.unflushed(:'revenue_state'::regclass)
       AS u(gid bigint, live boolean, minute timestamptz, region text,
            orders bigint, revenue numeric, biggest numeric);
SELECT count(*) = (SELECT count(*) FROM public.revenue) AS flushed_all
  FROM :revenue_state;
SELECT public.same('public.revenue') AS differences;

-- monitoring
SELECT view, source, status, window_kind, groups, rows_applied, late_rows, failed_rows,
       applied_lsn IS NOT NULL AS has_lsn, flushes > 0 AS flushed, last_error
  FROM flowstate.views;
SELECT source, kind, state, slot_name ~ '^flowstate_[0-9]+$' AS slot,
       applied_lsn <= pg_current_wal_lsn() AS lsn_ok, changes > 0 AS counted
  FROM flowstate.sources;
SELECT kind, state FROM flowstate.workers WHERE datname = current_database() ORDER BY kind;

-- a view without GROUP BY has exactly one row, even over no rows
CREATE TABLE public.empty_source (v int);
ALTER TABLE public.empty_source REPLICA IDENTITY FULL;
SELECT flowstate.create_view('public.totals', 'SELECT count(*) AS n, sum(v) AS total FROM public.empty_source');
SELECT flowstate.wait_for();
SELECT * FROM public.totals;
INSERT INTO public.empty_source VALUES (1), (2), (NULL);
SELECT flowstate.wait_for();
SELECT * FROM public.totals;
TRUNCATE public.empty_source;
SELECT flowstate.wait_for();
SELECT * FROM public.totals;

-- other roles read what the view's owner grants them, nothing else
CREATE ROLE flowstate_analyst;
GRANT SELECT ON public.revenue TO flowstate_analyst;
SET ROLE flowstate_analyst;
SELECT count(*) > 0 AS reads_view FROM public.revenue;
SELECT public.try('SELECT count(*) FROM ' || :'revenue_state') ~ 'permission denied' AS state_denied;
SELECT public.try('SELECT count(*) FROM ' || :'revenue_definition') ~ 'permission denied' AS definition_denied;
SELECT public.try('SELECT count(*) FROM public.totals');
SELECT public.try($$SELECT flowstate.drop_view('public.revenue')$$);
RESET ROLE;

-- the source keeps what the views use
SELECT public.try('ALTER TABLE public.orders DROP COLUMN amount');
SELECT public.try('DROP TABLE public.orders');
SELECT public.try('ALTER TABLE public.orders ALTER COLUMN region TYPE varchar(10)');
SELECT public.try('ALTER TABLE public.orders REPLICA IDENTITY DEFAULT');
SELECT public.try('ALTER TABLE public.orders SET UNLOGGED');
ALTER TABLE public.orders ADD COLUMN note text;
ALTER TABLE public.orders RENAME TO orders_renamed;
INSERT INTO public.orders_renamed (ts, region, amount, note) VALUES ('2026-11-25 10:00:00+00', 'east', 5, 'x');
SELECT flowstate.wait_for();
SELECT public.same('public.revenue') AS differences;
ALTER TABLE public.orders_renamed RENAME TO orders;

-- wait_for when the WAL insert position is at the start of a page, the
-- last record having filled the previous page exactly (the position then
-- counts a page header not written yet, which XLogFlush refuses)
CREATE FUNCTION public.wait_at_page_start() RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    before pg_lsn;
    overhead int;
    room int;
BEGIN
    FOR attempt IN 1..100 LOOP
        -- the WAL a message record takes beyond its text
        before := pg_current_wal_insert_lsn();
        PERFORM pg_logical_emit_message(false, 'flowstate_test', repeat('x', 400));
        overhead := (pg_current_wal_insert_lsn() - before)::int - 400;
        room := 8192 - ((pg_current_wal_insert_lsn() - '0/0'::pg_lsn) % 8192)::int;
        -- (a record that crossed into a new page counts the page's header)
        IF room >= 400 + overhead AND overhead BETWEEN 0 AND 200 AND
           floor((before - '0/0'::pg_lsn) / 8192) =
           floor((pg_current_wal_insert_lsn() - '0/0'::pg_lsn) / 8192) THEN
            -- a record that ends exactly at the end of the page
            PERFORM pg_logical_emit_message(false, 'flowstate_test', repeat('x', room - overhead));
            IF (pg_current_wal_insert_lsn() - '0/0'::pg_lsn) % 8192 = 24 THEN
                RETURN flowstate.wait_for(timeout => '60s');
            END IF;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'the WAL insert position never landed at a page start';
END $$;
INSERT INTO public.orders (ts, region, amount, note) VALUES ('2026-11-25 10:01:00+00', 'east', 7, 'y');
SELECT public.wait_at_page_start() AS waited;
SELECT public.same('public.revenue') AS differences;
DROP FUNCTION public.wait_at_page_start();

-- a table whose column was added with a default after some of its rows
-- were written: those rows lack it, and the backfill (and a delete of one
-- of them) reads the default
CREATE TABLE public.added (id int);
ALTER TABLE public.added REPLICA IDENTITY FULL;
INSERT INTO public.added SELECT generate_series(1, 10);
ALTER TABLE public.added ADD COLUMN w int NOT NULL DEFAULT 5;
INSERT INTO public.added VALUES (11, 6);
SELECT flowstate.create_view('public.added_sums',
    'SELECT w, count(*) AS n, sum(id) AS s FROM public.added GROUP BY w');
SELECT flowstate.wait_for();
SELECT * FROM public.added_sums ORDER BY w;
DELETE FROM public.added WHERE id IN (1, 11);
SELECT flowstate.wait_for();
SELECT * FROM public.added_sums ORDER BY w;
SELECT public.same('public.added_sums') AS differences;
DROP TABLE public.added CASCADE;

-- an UPDATE leaves a large value stored out of line unchanged: the WAL
-- has only its pointer, and the view reads it from the old row
CREATE TABLE public.docs (id int PRIMARY KEY, kind text, body text);
ALTER TABLE public.docs REPLICA IDENTITY FULL;
ALTER TABLE public.docs ALTER COLUMN body SET STORAGE EXTERNAL;
INSERT INTO public.docs SELECT i, 'draft', repeat(md5(i::text), 200 + i) FROM generate_series(1, 3) i;
SELECT flowstate.create_view('public.doc_kinds', $$
    SELECT kind, count(*) AS n, max(body) AS last_body, sum(length(body)) AS chars
      FROM public.docs GROUP BY kind $$);
SELECT flowstate.wait_for();
UPDATE public.docs SET kind = 'final' WHERE id <= 2;
BEGIN;
UPDATE public.docs SET kind = 'review' WHERE id = 3;
UPDATE public.docs SET kind = 'final' WHERE id = 3;
COMMIT;
SELECT flowstate.wait_for();
SELECT kind, n, md5(last_body), chars FROM public.doc_kinds ORDER BY kind;
SELECT public.same('public.doc_kinds') AS differences;
DROP TABLE public.docs CASCADE;

-- drop_view and DROP VIEW drop the view with its definition and state
SELECT flowstate.drop_view('public.totals');
SELECT public.try($$SELECT flowstate.drop_view('public.totals')$$);
SELECT flowstate.drop_view('public.totals', if_exists => true);
SELECT public.try($$SELECT flowstate.drop_view('public.orders')$$);
SELECT flowstate.create_view('public.revenue_by_region', 'SELECT region, sum(amount) FROM public.orders GROUP BY region');
DROP VIEW public.revenue_by_region;
SELECT view FROM flowstate.view ORDER BY view_id;
SELECT count(*) AS objects_of_one_view FROM pg_class
 WHERE relnamespace = 'flowstate'::regnamespace AND relname ~ '^view_\d+_(query|state)$';

-- DROP TABLE ... CASCADE on the source drops its views
DROP TABLE public.orders CASCADE;
SELECT count(*) AS views_left FROM flowstate.view;
SELECT count(*) AS leftovers FROM pg_class
 WHERE relnamespace = 'flowstate'::regnamespace AND relname ~ '^view_\d+_';
SELECT flowstate.wait_for() AS nothing_to_wait_for;

-- once no view is left, the decoding worker leaves and drops its slot
SELECT wait_for($$
    SELECT count(*) = 0 FROM pg_replication_slots WHERE slot_name LIKE 'flowstate_%'
$$) AS slot_dropped;

DROP TABLE public.empty_source;
DROP ROLE flowstate_analyst;
