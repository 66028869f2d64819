-- Aggregates over the multiset of a value: count, sum and avg of DISTINCT
-- values, array_agg and string_agg of DISTINCT values or of every value in
-- order, percentile_disc, percentile_cont and mode.  A view keeps per group and value its rows and
-- its other aggregates (<name>_values) and computes these over the values
-- and their counts when it is read: exact, after inserts, updates, deletes
-- and TRUNCATE, equal to its defining query run as a batch query.
SET TimeZone = 'UTC';
SET datestyle = 'ISO, YMD';
SET extra_float_digits = 0;

CREATE TABLE public.hits (id serial PRIMARY KEY, ts timestamptz NOT NULL, page text, usr int, ms float8);
ALTER TABLE public.hits REPLICA IDENTITY FULL;
-- hits(n, seed): n hits of 300 users over 4 pages and an hour, some users
-- and latencies NULL
CREATE FUNCTION public.hits(n int, seed float8) RETURNS void
LANGUAGE sql AS $$
    SELECT setseed(seed);
    INSERT INTO public.hits (ts, page, usr, ms)
    SELECT '2026-01-01'::timestamptz + (random() * 3600)::int * interval '1 second',
           'p' || (random() * 3)::int,
           CASE WHEN random() < 0.05 THEN NULL ELSE (random() * 300)::int END,
           CASE WHEN random() < 0.05 THEN NULL ELSE round((random() * 500)::numeric, 1)::float8 END
      FROM generate_series(1, n);
$$;
SELECT public.hits(2000, 0.1);

-- distinct users per page and 10 minutes, with ordinary aggregates; created
-- over rows
SELECT flowstate.create_view('public.page_users', $$
    SELECT flowstate.tumble(ts, '10 minutes') AS w, page, count(*) AS hits,
           count(DISTINCT usr) AS users, sum(DISTINCT usr) AS usr_sum, avg(DISTINCT usr) AS usr_avg,
           max(ms) AS slowest, array_agg(DISTINCT usr) AS who, array_agg(usr ORDER BY usr) AS every_who
      FROM public.hits GROUP BY 1, 2 $$);
-- latency percentiles and mode per page
SELECT flowstate.create_view('public.page_latency', $$
    SELECT page, count(ms) AS n,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS median,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95,
           percentile_disc(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
           percentile_disc(0) WITHIN GROUP (ORDER BY ms) AS fastest,
           mode() WITHIN GROUP (ORDER BY ms) AS most_common,
           max(ms) AS slowest
      FROM public.hits WHERE ts < '2026-01-01 00:50:00+00' GROUP BY page $$);
-- pages per user, as a string, for users with more than 2 pages
SELECT flowstate.create_view('public.user_pages', $$
    SELECT usr % 10 AS cohort, string_agg(DISTINCT page, ',' ORDER BY page) AS pages,
           count(DISTINCT page) AS n_pages, length(string_agg(page, '' ORDER BY page)) AS visits_len
      FROM public.hits GROUP BY 1 HAVING count(DISTINCT page) > 2 $$);
-- distinct users and their median per page, over hopping windows of 20
-- minutes every 5 (the values kept per pane of 5 minutes), and the users
-- of each quarter hour so far, every 5 minutes (cumulating windows)
SELECT flowstate.create_view('public.page_users_hop', $$
    SELECT w.window_start, w.window_end, page, count(*) AS hits, count(DISTINCT usr) AS users,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY usr) AS median_usr, max(ms) AS slowest
      FROM public.hits, LATERAL flowstate.hop(hits.ts, '20 minutes', '5 minutes') w
     GROUP BY w.window_start, w.window_end, page $$);
SELECT flowstate.create_view('public.users_so_far', $$
    SELECT w.window_end, count(DISTINCT usr) AS users, sum(DISTINCT usr) AS usr_sum
      FROM public.hits, LATERAL flowstate.cumulate(hits.ts, '5 minutes', '15 minutes') w
     GROUP BY w.window_end HAVING count(*) > 10 $$);
SELECT view, window_kind FROM flowstate.views
 WHERE view::text IN ('page_users_values', 'page_latency_values', 'user_pages_values',
                      'page_users_hop_values', 'users_so_far_values') ORDER BY 1;

-- differences(view, query): rows the view and the query do not share
CREATE FUNCTION public.differences(v regclass, q text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM ((TABLE %s EXCEPT ALL %s) UNION ALL (%s EXCEPT ALL TABLE %s)) d',
                   v, q, q, v) INTO n;
    RETURN n;
END
$$;
CREATE VIEW public.check_multiset AS
SELECT public.differences('public.page_users', $q$
    SELECT flowstate.tumble(ts, '10 minutes') AS w, page, count(*) AS hits,
           count(DISTINCT usr) AS users, sum(DISTINCT usr) AS usr_sum, avg(DISTINCT usr) AS usr_avg,
           max(ms) AS slowest, array_agg(DISTINCT usr) AS who, array_agg(usr ORDER BY usr) AS every_who
      FROM public.hits GROUP BY 1, 2 $q$) AS page_users,
       public.differences('public.page_latency', $q$
    SELECT page, count(ms) AS n,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS median,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95,
           percentile_disc(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
           percentile_disc(0) WITHIN GROUP (ORDER BY ms) AS fastest,
           mode() WITHIN GROUP (ORDER BY ms) AS most_common,
           max(ms) AS slowest
      FROM public.hits WHERE ts < '2026-01-01 00:50:00+00' GROUP BY page $q$) AS page_latency,
       public.differences('public.user_pages', $q$
    SELECT usr % 10 AS cohort, string_agg(DISTINCT page, ',' ORDER BY page) AS pages,
           count(DISTINCT page) AS n_pages, length(string_agg(page, '' ORDER BY page)) AS visits_len
      FROM public.hits GROUP BY 1 HAVING count(DISTINCT page) > 2 $q$) AS user_pages,
       public.differences('public.page_users_hop', $q$
    SELECT w.window_start, w.window_end, page, count(*) AS hits, count(DISTINCT usr) AS users,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY usr) AS median_usr, max(ms) AS slowest
      FROM public.hits, LATERAL flowstate.hop(hits.ts, '20 minutes', '5 minutes') w
     GROUP BY w.window_start, w.window_end, page $q$) AS page_users_hop,
       public.differences('public.users_so_far', $q$
    SELECT w.window_end, count(DISTINCT usr) AS users, sum(DISTINCT usr) AS usr_sum
      FROM public.hits, LATERAL flowstate.cumulate(hits.ts, '5 minutes', '15 minutes') w
     GROUP BY w.window_end HAVING count(*) > 10 $q$) AS users_so_far,
       (SELECT count(*) FROM public.page_users) AS page_users_rows,
       (SELECT count(*) FROM public.page_users_hop) AS page_users_hop_rows,
       (SELECT count(*) FROM public.users_so_far) AS users_so_far_rows,
       (SELECT count(*) FROM public.page_latency) AS page_latency_rows,
       (SELECT count(*) FROM public.user_pages) AS user_pages_rows;

SELECT flowstate.wait_for();
SELECT * FROM public.check_multiset;
SELECT page, n, median, p95, p99, fastest, most_common FROM public.page_latency ORDER BY page;

-- churn: inserts, updates of the value and of the keys, deletes of the
-- last row of a value, of many values
SELECT public.hits(1000, 0.2);
UPDATE public.hits SET usr = usr + 1 WHERE id % 7 = 0;
UPDATE public.hits SET ms = ms * 2, page = 'p' || (id % 4) WHERE id % 5 = 0;
DELETE FROM public.hits WHERE usr BETWEEN 100 AND 150;
DELETE FROM public.hits WHERE id % 11 = 0;
SELECT flowstate.wait_for();
SELECT * FROM public.check_multiset;
-- a page with few rows: percentiles interpolated between them
DELETE FROM public.hits WHERE page = 'p1' AND id % 41 <> 0;
SELECT flowstate.wait_for();
SELECT * FROM public.check_multiset;
SELECT page, n, median, p95, p99, fastest FROM public.page_latency WHERE page = 'p1';
-- TRUNCATE, then rows again
TRUNCATE public.hits;
SELECT flowstate.wait_for();
SELECT * FROM public.check_multiset;
SELECT public.hits(500, 0.3);
SELECT flowstate.wait_for();
SELECT * FROM public.check_multiset;

-- a role reads the view only if it may read its values too
CREATE ROLE multiset_reader;
GRANT SELECT ON public.page_users TO multiset_reader;
SET ROLE multiset_reader;
SELECT public.try('SELECT count(*) FROM public.page_users');
RESET ROLE;
GRANT SELECT ON public.page_users_values TO multiset_reader;
SET ROLE multiset_reader;
SELECT count(*) > 0 AS rows_read FROM public.page_users;
RESET ROLE;
REVOKE ALL ON public.page_users, public.page_users_values FROM multiset_reader;
DROP ROLE multiset_reader;

-- what such a view does not take
SELECT public.try($$SELECT flowstate.create_view('public.m', 'SELECT page, count(DISTINCT usr), count(DISTINCT ms) FROM public.hits GROUP BY page')$$);
SELECT public.try($$SELECT flowstate.create_view('public.m', 'SELECT count(DISTINCT usr) FROM public.hits')$$);
SELECT public.try($$SELECT flowstate.create_view('public.m', 'SELECT page, count(DISTINCT usr) FILTER (WHERE ms > 1) FROM public.hits GROUP BY page')$$);
SELECT public.try($$SELECT flowstate.create_view('public.m', 'SELECT page, percentile_cont(1.5) WITHIN GROUP (ORDER BY ms) FROM public.hits GROUP BY page')$$);
SELECT public.try($$SELECT flowstate.create_view('public.m', 'SELECT page, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms DESC) FROM public.hits GROUP BY page')$$);
SELECT public.try($$SELECT flowstate.create_view('public.m', 'SELECT page, percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY ms) FROM public.hits GROUP BY page')$$);
SELECT public.try($$SELECT flowstate.create_view('public.m', 'SELECT page, array_agg(usr ORDER BY usr DESC) FROM public.hits GROUP BY page')$$);
SELECT public.try($$SELECT flowstate.create_view('public.m', 'SELECT page, array_agg(usr ORDER BY ms) FROM public.hits GROUP BY page')$$);
SELECT public.try($$SELECT flowstate.create_view('public.m', 'SELECT page, rank(3) WITHIN GROUP (ORDER BY usr) FROM public.hits GROUP BY page')$$);
SELECT public.try($$SELECT flowstate.create_view('public.m', 'SELECT page, count(DISTINCT usr) FROM public.hits GROUP BY page', allowed_lateness => '0', notify => true)$$);
SELECT public.try($$SELECT flowstate.create_view('public.m', 'SELECT page, s, count(DISTINCT usr) FROM (SELECT page, usr, flowstate.session(ts, ''1 minute'') OVER (PARTITION BY page ORDER BY ts) AS s FROM public.hits) h GROUP BY 1, 2')$$);

-- over hopping windows with allowed_lateness and retention: a row is late once the
-- earliest window holding its pane is final (here 10-minute windows every
-- 4, in panes of 2 minutes; the watermark at the latest event time, 11
-- minutes of lateness)
CREATE TABLE public.taps (id int PRIMARY KEY, ts timestamptz NOT NULL, usr int);
ALTER TABLE public.taps REPLICA IDENTITY FULL;
INSERT INTO public.taps SELECT i, '2026-01-01'::timestamptz + i * interval '20 seconds', i % 17
  FROM generate_series(1, 180) i;
SELECT flowstate.create_view('public.tap_users', $$
    SELECT w.window_start, count(*) AS taps, count(DISTINCT usr) AS users
      FROM public.taps, LATERAL flowstate.hop(taps.ts, '10 minutes', '4 minutes') w
     GROUP BY w.window_start $$, allowed_lateness => '11 minutes', retention => '30 minutes');
SELECT view, window_kind FROM flowstate.views WHERE view::text = 'tap_users_values';
SELECT flowstate.wait_for();
SELECT public.wait_durable();
-- the latest event is at 01:00, so windows that end by 00:49 are final:
-- the row at 00:12 is late; the one at 00:47 is not (its pane, 00:46 to
-- 00:48, is in the window 00:40 to 00:50 too, though the pane itself ended
-- before 00:49); nor is the one at 00:52
INSERT INTO public.taps VALUES (1001, '2026-01-01 00:12:00+00', 99),
                               (1002, '2026-01-01 00:47:00+00', 98),
                               (1003, '2026-01-01 00:52:00+00', 97);
SELECT flowstate.wait_for();
SELECT public.wait_durable();
SELECT view, event_time, payload FROM flowstate.late_events
 WHERE view::text LIKE 'tap_users%' ORDER BY event_time;
SELECT public.differences('public.tap_users', $q$
    SELECT w.window_start, count(*) AS taps, count(DISTINCT usr) AS users
      FROM public.taps, LATERAL flowstate.hop(taps.ts, '10 minutes', '4 minutes') w
     WHERE (ts, usr) NOT IN (SELECT (payload::jsonb ->> 'ts')::timestamptz, (payload::jsonb ->> 'usr')::int
                               FROM flowstate.late_events WHERE view::text LIKE 'tap_users%')
       AND w.window_start OPERATOR(pg_catalog.+) interval '10 minutes' > '2026-01-01 00:30:00+00'
     GROUP BY w.window_start $q$) AS tap_users_differences,
       (SELECT users FROM public.tap_users WHERE window_start = '2026-01-01 00:40:00+00') AS users_at_0040;
-- with retention, the windows that ended more than 30 minutes before the
-- watermark are gone, and so are the panes no window kept needs
SELECT min(window_start) AS first_window FROM public.tap_users;
SELECT min(k1) > '2026-01-01 00:18:00+00' AS old_panes_gone, count(*) > 0 AS panes_kept
  FROM public.tap_users_values;
SELECT public.try($$SELECT flowstate.create_view('public.m', 'SELECT w.window_start, count(DISTINCT usr) FROM public.taps, LATERAL flowstate.hop(taps.ts, ''10 minutes'', ''5 minutes'') w GROUP BY 1', allowed_lateness => '1 minute', retention => '5 minutes')$$);
DELETE FROM flowstate.late_events WHERE view::text LIKE 'tap_users%';
SELECT flowstate.drop_view('public.tap_users');
DROP TABLE public.taps;

-- drop_view drops the view and its values, and so does DROP VIEW
DROP VIEW public.check_multiset;
SELECT flowstate.drop_view('public.page_users');
SELECT to_regclass('public.page_users_values') AS values_after_drop;
DROP VIEW public.page_latency;
SELECT to_regclass('public.page_latency_values') AS values_after_drop_view;
SELECT flowstate.drop_view('public.user_pages');
SELECT flowstate.drop_view('public.page_users_hop');
SELECT flowstate.drop_view('public.users_so_far');
SELECT count(*) AS values_in_catalog FROM flowstate.view WHERE hop_view IS NOT NULL;
DROP FUNCTION public.differences(regclass, text);
DROP FUNCTION public.hits(int, float8);
DROP TABLE public.hits;
