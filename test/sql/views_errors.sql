-- Wrong calls of flowstate.create_view: each gets an SQLSTATE, a message that
-- names the problem, and a hint (try() is defined in views.sql)
CREATE TABLE public.clicks (id int PRIMARY KEY, ts timestamptz, user_id int, url text, ms int);
ALTER TABLE public.clicks REPLICA IDENTITY FULL;
CREATE TABLE public.users (id int PRIMARY KEY, name text);
CREATE TABLE public.plain (ts timestamptz, v int);
CREATE UNLOGGED TABLE public.unlogged (ts timestamptz, v int);
CREATE TABLE public.parted (ts timestamptz, v int) PARTITION BY RANGE (ts);
CREATE VIEW public.click_view AS SELECT * FROM public.clicks;

-- shapes that are not an aggregate over one table
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT c.user_id, count(*) FROM public.clicks c JOIN public.users u ON u.id = c.user_id GROUP BY 1')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT count(*) FROM public.clicks, public.users')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT count(*) FROM (SELECT * FROM public.clicks) s')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT count(*) FROM generate_series(1, 3)')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT DISTINCT user_id FROM public.clicks')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT user_id, rank() OVER (ORDER BY ts) FROM public.clicks')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT count(*) FROM public.clicks WHERE user_id IN (SELECT id FROM public.users)')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT user_id, count(*) FROM public.clicks GROUP BY 1 ORDER BY 2')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT user_id, count(*) FROM public.clicks GROUP BY 1 LIMIT 3')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT count(*) FROM public.clicks UNION ALL SELECT 1')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'WITH c AS (SELECT * FROM public.clicks) SELECT count(*) FROM c')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT user_id, url, count(*) FROM public.clicks GROUP BY ROLLUP (user_id, url)')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT user_id FROM public.clicks')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT generate_series(1, 2), count(*) FROM public.clicks')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT ctid, count(*) FROM public.clicks GROUP BY 1')$$);

-- aggregates that cannot be kept incrementally (yet)
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT count(DISTINCT user_id) FROM public.clicks')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT string_agg(url, '','') FROM public.clicks')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT array_agg(url ORDER BY ts) FROM public.clicks')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM public.clicks')$$);

-- expressions must be immutable: each row is evaluated once, when it arrives
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT count(*) FROM public.clicks WHERE ts > now() - interval ''1 hour''')$$);
-- (date_trunc of a timestamptz is evaluated in the view's time zone: views_time_zone)
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT to_char(ts, ''HH24''), count(*) FROM public.clicks GROUP BY 1')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT user_id, sum(random()) FROM public.clicks GROUP BY 1')$$);

-- sources that cannot be followed
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT count(*) FROM public.click_view')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT count(*) FROM public.unlogged')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT count(*) FROM ONLY public.parted')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT count(*) FROM pg_class')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT count(*) FROM public.plain')$$);

-- unknown names and bad types, as in any query
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT count(*) FROM public.no_such_table')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT no_such_column, count(*) FROM public.clicks GROUP BY 1')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT sum(url) FROM public.clicks')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT user_id, count(*) FROM public.clicks')$$);

-- not one SELECT
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT count(*) FROM public.clicks; SELECT 1')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'DELETE FROM public.clicks')$$);
SELECT public.try($$SELECT flowstate.create_view('v', NULL)$$);

-- names and options
SELECT public.try($$SELECT flowstate.create_view('public.clicks', 'SELECT count(*) FROM public.clicks')$$);
SELECT public.try($$SELECT flowstate.create_view('no_such_schema.v', 'SELECT count(*) FROM public.clicks')$$);
SELECT public.try($$SELECT flowstate.create_view('pg_temp.v', 'SELECT count(*) FROM public.clicks')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT count(*) FROM public.clicks', allowed_lateness => '1 minute')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT flowstate.tumble(ts, ''1 minute''), count(*) FROM public.clicks GROUP BY 1', allowed_lateness => '-1 minute')$$);
-- retention: only where windows become final, and not before they are
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT flowstate.tumble(ts, ''1 minute''), count(*) FROM public.clicks GROUP BY 1', retention => '1 hour')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT flowstate.tumble(ts, ''1 hour''), count(*) FROM public.clicks GROUP BY 1', allowed_lateness => '10 minutes', retention => '1 hour')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT flowstate.tumble(ts, ''1 minute''), count(*) FROM public.clicks GROUP BY 1', allowed_lateness => '0', retention => '-1 day')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT flowstate.tumble(ts, ''1 minute''), count(*) FROM public.clicks GROUP BY 1', allowed_lateness => '0', retention => '1 month')$$);
-- notify and changelog: only where windows become final; the changelog's name is free
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT flowstate.tumble(ts, ''1 minute''), count(*) FROM public.clicks GROUP BY 1', notify => true)$$);
CREATE TABLE public.v_changelog (x int);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT flowstate.tumble(ts, ''1 minute''), count(*) FROM public.clicks GROUP BY 1', allowed_lateness => '0', changelog => true)$$);
DROP TABLE public.v_changelog;
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT flowstate.tumble(ts, ''1 minute''), count(*) FROM public.clicks GROUP BY 1', watermark_delay => '1 month')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT count(*) FROM public.clicks', memory_limit => 'lots')$$);
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT count(*) FROM public.clicks', memory_limit => '10kB')$$);

-- a name taken by an earlier continuous view
SELECT flowstate.create_view('public.click_count', 'SELECT count(*) AS n FROM public.clicks');
SELECT public.try($$SELECT flowstate.create_view('public.click_count', 'SELECT count(*) FROM public.clicks')$$);

-- the defining query's own errors, such as duplicate column names
SELECT public.try($$SELECT flowstate.create_view('v', 'SELECT count(*), count(*) FROM public.clicks')$$);

-- nothing was left behind by the failed calls
SELECT view FROM flowstate.view;
SELECT count(*) AS objects FROM pg_class
 WHERE relnamespace = 'flowstate'::regnamespace AND relname ~ '^view_\d+_(query|state)$';

-- drop_view of something else
SELECT public.try($$SELECT flowstate.drop_view('public.click_view')$$);
SELECT public.try($$SELECT flowstate.drop_view('public.nothing_here')$$);
SELECT public.try($$SELECT flowstate.drop_view(NULL)$$);

-- wait_for cannot wait for a view its own transaction creates
BEGIN;
SELECT flowstate.create_view('public.click_users', 'SELECT user_id, count(*) AS n FROM public.clicks GROUP BY 1');
SELECT public.try($$SELECT flowstate.wait_for(timeout => '1s')$$);
ROLLBACK;
SELECT public.try($$SELECT flowstate.wait_for(timeout => '-1s')$$);

-- an error of the defining query points into the query, not the call
SELECT flowstate.create_view('public.v', 'SELECT user_id, count(*) FROM public.clicks WHERE no_such_column > 0 GROUP BY 1');

-- inheritance: the decoder follows a table alone, so a view reads it with
-- ONLY, or without children; a child added later is refused while a view
-- reads the table with its children
CREATE TABLE public.parent (k int, v int);
ALTER TABLE public.parent REPLICA IDENTITY FULL;
CREATE TABLE public.child () INHERITS (public.parent);
SELECT public.try($$SELECT flowstate.create_view('public.by_parent', 'SELECT k, sum(v) FROM public.parent GROUP BY k')$$);
SELECT flowstate.create_view('public.by_parent_only', 'SELECT k, sum(v) AS total FROM ONLY public.parent GROUP BY k');
DROP TABLE public.child;
SELECT flowstate.create_view('public.by_parent', 'SELECT k, sum(v) AS total FROM public.parent GROUP BY k');
SELECT public.try($$CREATE TABLE public.child () INHERITS (public.parent)$$);
CREATE TABLE public.other (k int, v int);
SELECT public.try($$ALTER TABLE public.other INHERIT public.parent$$);
SELECT flowstate.drop_view('public.by_parent');
CREATE TABLE public.child () INHERITS (public.parent);
INSERT INTO public.parent VALUES (1, 10);
INSERT INTO public.child VALUES (1, 5);
SELECT flowstate.wait_for();
SELECT * FROM public.by_parent_only;
DROP TABLE public.parent, public.other CASCADE;

-- the event trigger is not for calling
SELECT public.try('SELECT flowstate.on_sql_drop()');

SELECT flowstate.drop_view('public.click_count');
DROP VIEW public.click_view;
DROP TABLE public.clicks, public.users, public.plain, public.unlogged, public.parted;
