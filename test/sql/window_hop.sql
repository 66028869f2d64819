-- Hopping and cumulating windows.  flowstate.hop(ts, size, slide) returns
-- the windows of length size, starting every slide from the Unix epoch,
-- that hold ts; flowstate.cumulate(ts, step, max_size) the windows that
-- start at the multiple of max_size before ts and end every step up to it.
-- A continuous view grouped by them keeps its state per pane (the greatest
-- common divisor of size and slide; the step) in <name>_panes, and equals
-- its defining query run as a batch query.
SET TimeZone = 'UTC';
SET datestyle = 'ISO, YMD';

SELECT * FROM flowstate.hop('2026-01-01 00:07:30+00'::timestamptz, '10 minutes', '5 minutes');
SELECT * FROM flowstate.hop('2026-01-01 00:08:00'::timestamp, '10 minutes', '4 minutes');
SELECT count(*) FROM flowstate.hop(now(), '1 hour', '1 minute');
-- wrong calls
SELECT public.try($$SELECT * FROM flowstate.hop(now(), '1 minute', '5 minutes')$$);
SELECT public.try($$SELECT * FROM flowstate.hop(now(), '0 minutes', '0 minutes')$$);
SELECT public.try($$SELECT * FROM flowstate.hop(now(), '1 month', '1 day')$$);

SELECT * FROM flowstate.cumulate('2026-01-01 00:25:00+00'::timestamptz, '10 minutes', '1 hour');
SELECT * FROM flowstate.cumulate('2026-01-01 00:59:59'::timestamp, '15 minutes', '1 hour');
SELECT public.try($$SELECT * FROM flowstate.cumulate(now(), '7 minutes', '1 hour')$$);
SELECT public.try($$SELECT * FROM flowstate.cumulate(now(), '-1 minutes', '1 hour')$$);

CREATE TABLE public.bids (id serial PRIMARY KEY, ts timestamptz NOT NULL, auction int, price numeric(10, 2));
ALTER TABLE public.bids REPLICA IDENTITY FULL;
-- bids(n, seed): n bids over 40 minutes
CREATE FUNCTION public.bids(n int, seed float8) RETURNS void
LANGUAGE sql AS $$
    SELECT setseed(seed);
    INSERT INTO public.bids (ts, auction, price)
    SELECT '2026-01-01'::timestamptz + (random() * 2400)::int * interval '1 second',
           (random() * 5)::int, round((random() * 100)::numeric, 2)
      FROM generate_series(1, n);
$$;
SELECT public.bids(300, 0.1);

-- size 10 minutes, slide 4 minutes (panes of 2 minutes); created over rows
SELECT flowstate.create_view('public.bids_hop', $$
    SELECT w.window_start, w.window_end, b.auction, count(*) AS n, max(b.price) AS top,
           sum(b.price) AS total, max(b.price) - min(b.price) AS spread
      FROM public.bids b, LATERAL flowstate.hop(b.ts, '10 minutes', '4 minutes') w
     GROUP BY w.window_start, w.window_end, b.auction $$);
-- size 15 minutes, slide 5 minutes, no key, HAVING, no window_end
SELECT flowstate.create_view('public.busy', $$
    SELECT w.window_start, count(*) AS n, avg(price) AS mean
      FROM public.bids, LATERAL flowstate.hop(bids.ts, '15 minutes', '5 minutes') AS w
     WHERE price > 10
     GROUP BY w.window_start HAVING count(*) > 20 $$);
-- cumulating: every 5 minutes of each quarter hour, per auction
SELECT flowstate.create_view('public.bids_cum', $$
    SELECT w.window_start, w.window_end, auction, count(*) AS n, sum(price) AS total
      FROM public.bids, LATERAL flowstate.cumulate(bids.ts, '5 minutes', '15 minutes') w
     GROUP BY w.window_start, w.window_end, auction $$);
SELECT view, window_kind FROM flowstate.views ORDER BY view::text;

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
CREATE VIEW public.check_hop AS
SELECT public.differences('public.bids_hop', $q$
    SELECT w.window_start, w.window_end, b.auction, count(*) AS n, max(b.price) AS top,
           sum(b.price) AS total, max(b.price) - min(b.price) AS spread
      FROM public.bids b, LATERAL flowstate.hop(b.ts, '10 minutes', '4 minutes') w
     GROUP BY w.window_start, w.window_end, b.auction $q$) AS bids_hop,
       public.differences('public.busy', $q$
    SELECT w.window_start, count(*) AS n, avg(price) AS mean
      FROM public.bids, LATERAL flowstate.hop(bids.ts, '15 minutes', '5 minutes') AS w
     WHERE price > 10
     GROUP BY w.window_start HAVING count(*) > 20 $q$) AS busy,
       public.differences('public.bids_cum', $q$
    SELECT w.window_start, w.window_end, auction, count(*) AS n, sum(price) AS total
      FROM public.bids, LATERAL flowstate.cumulate(bids.ts, '5 minutes', '15 minutes') w
     GROUP BY w.window_start, w.window_end, auction $q$) AS bids_cum,
       (SELECT count(*) FROM public.bids_hop) AS bids_hop_rows,
       (SELECT count(*) FROM public.busy) AS busy_rows,
       (SELECT count(*) FROM public.bids_cum) AS bids_cum_rows;

SELECT flowstate.wait_for();
SELECT * FROM public.check_hop;

-- inserts, updates that move bids between windows and auctions, deletes of
-- maxima
SELECT public.bids(200, 0.2);
UPDATE public.bids SET ts = ts + interval '3 minutes', auction = (auction + 1) % 5 WHERE id % 7 = 0;
DELETE FROM public.bids WHERE price > 90;
DELETE FROM public.bids WHERE id % 11 = 0;
SELECT flowstate.wait_for();
SELECT * FROM public.check_hop;
SELECT window_start, window_end, n, top FROM public.bids_hop WHERE auction = 2 ORDER BY 1 LIMIT 4;
-- TRUNCATE, then rows again
TRUNCATE public.bids;
SELECT flowstate.wait_for();
SELECT * FROM public.check_hop;
SELECT public.bids(150, 0.3);
SELECT flowstate.wait_for();
SELECT * FROM public.check_hop;
SELECT window_start, window_end, n FROM public.bids_cum WHERE auction = 2 ORDER BY 1, 2 LIMIT 4;

-- a role reads the view only if it may read its panes too (and the source)
CREATE ROLE hop_reader;
GRANT SELECT ON public.bids_hop TO hop_reader;
SET ROLE hop_reader;
SELECT public.try('SELECT count(*) FROM public.bids_hop');
RESET ROLE;
GRANT SELECT ON public.bids_hop_panes TO hop_reader;
SET ROLE hop_reader;
SELECT count(*) AS rows_read FROM public.bids_hop;
RESET ROLE;
REVOKE ALL ON public.bids_hop, public.bids_hop_panes FROM hop_reader;
DROP ROLE hop_reader;

-- what a view of hopping windows does not take
SELECT public.try($$SELECT flowstate.create_view('public.h', 'SELECT w.window_start, count(*) FROM public.bids, LATERAL flowstate.hop(bids.ts, ''10 minutes'', ''4 minutes'') w GROUP BY w.window_start', changelog => true)$$);
SELECT public.try($$SELECT flowstate.create_view('public.h', 'SELECT w.window_end, count(*) FROM public.bids, LATERAL flowstate.hop(bids.ts, ''10 minutes'', ''4 minutes'') w GROUP BY w.window_end')$$);
SELECT public.try($$SELECT flowstate.create_view('public.h', 'SELECT w.window_start, count(*) FROM public.bids, LATERAL flowstate.hop(bids.ts, ''10 minutes'', ''4 minutes'') w WHERE w.window_start > now() GROUP BY w.window_start')$$);
SELECT public.try($$SELECT flowstate.create_view('public.h', 'SELECT w.window_start, count(*) FROM public.bids, LATERAL flowstate.hop(bids.ts, ''1 minute'', ''4 minutes'') w GROUP BY w.window_start')$$);
SELECT public.try($$SELECT flowstate.create_view('public.h', 'SELECT w.window_start, count(*) FROM public.bids, LATERAL flowstate.cumulate(bids.ts, ''5 minutes'', ''15 minutes'') w GROUP BY w.window_start')$$);
SELECT public.try($$SELECT flowstate.create_view('public.h', 'SELECT w.window_start, count(*) FROM public.bids, LATERAL flowstate.hop(bids.ts, ''10 minutes'', ''5 minutes'') w GROUP BY w.window_start ORDER BY 1 LIMIT 3')$$);
SELECT public.try($$SELECT flowstate.create_view('public.h', 'SELECT DISTINCT w.window_start, count(*) FROM public.bids, LATERAL flowstate.hop(bids.ts, ''10 minutes'', ''5 minutes'') w GROUP BY w.window_start')$$);

-- drop_view drops the view and its panes, and so does DROP VIEW
DROP VIEW public.check_hop;
SELECT flowstate.drop_view('public.bids_hop');
SELECT to_regclass('public.bids_hop_panes') AS panes_after_drop;
DROP VIEW public.busy;
SELECT flowstate.drop_view('public.bids_cum');
SELECT to_regclass('public.busy_panes') AS panes_after_drop_view;
SELECT count(*) AS panes_in_catalog FROM flowstate.view WHERE hop_view IS NOT NULL;
DROP FUNCTION public.differences(regclass, text);
DROP FUNCTION public.bids(int, float8);
DROP TABLE public.bids;
