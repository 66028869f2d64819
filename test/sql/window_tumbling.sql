-- flowstate.tumble(ts, size): the start of the epoch-aligned tumbling window
SET timezone = 'UTC';

SELECT flowstate.tumble('2026-11-25 10:17:42.5+00'::timestamptz, '1 minute') AS minute,
       flowstate.tumble('2026-11-25 10:17:42.5+00'::timestamptz, '15 minutes') AS quarter,
       flowstate.tumble('2026-11-25 10:17:42.5+00'::timestamptz, '1 hour') AS hour,
       flowstate.tumble('2026-11-25 10:17:42.5+00'::timestamptz, '1 day') AS day;

-- windows are aligned to the epoch, not to the session time zone
SET timezone = 'Asia/Kolkata';
SELECT flowstate.tumble('2026-11-25 10:17:42+05:30'::timestamptz, '1 day') AS day_in_utc;
SET timezone = 'UTC';

-- boundaries belong to the window they open; instants before the epoch work
SELECT ts, flowstate.tumble(ts, '10 seconds') AS w
  FROM unnest(ARRAY['2026-11-25 10:00:09.999999+00', '2026-11-25 10:00:10+00',
                    '1969-12-31 23:59:55+00']::timestamptz[]) AS ts
 ORDER BY ts;

-- timestamp without time zone
SELECT flowstate.tumble('2026-11-25 10:17:42'::timestamp, '5 minutes') AS local_window;

-- NULL in, NULL out
SELECT flowstate.tumble(NULL::timestamptz, '1 minute') IS NULL AS null_ts,
       flowstate.tumble(now(), NULL) IS NULL AS null_size;

-- the same windows kept by continuous views, one per size: each view agrees
-- with its query run as a batch query, through a backfill, inserts, updates
-- that move rows across windows and across the epochs, and deletes of the
-- first and last instants of windows (which recompute those windows from the
-- table); every instant lies in its window
CREATE TABLE public.instants (id int PRIMARY KEY, ts timestamptz NOT NULL, local_ts timestamp);
ALTER TABLE public.instants REPLICA IDENTITY FULL;
-- with an index on the event time, a window whose first or last instant is
-- deleted is recomputed by a query over its range of event time
CREATE INDEX ON public.instants (ts);
CREATE INDEX ON public.instants (local_ts);
-- instants every 7 minutes 13.5 seconds over two days, and every 47.25
-- seconds around the Unix epoch and around 2000-01-01 (PostgreSQL's own epoch)
INSERT INTO public.instants (id, ts)
SELECT row_number() OVER (ORDER BY ts), ts
  FROM (SELECT generate_series('2026-01-01'::timestamptz, '2026-01-03', '7 minutes 13.5 seconds')
        UNION ALL
        SELECT generate_series('1969-12-31 23:00:00+00'::timestamptz, '1970-01-01 01:00:00+00',
                               '47.25 seconds')
        UNION ALL
        SELECT generate_series('1999-12-31 23:00:00+00'::timestamptz, '2000-01-01 01:00:00+00',
                               '47.25 seconds')) AS i(ts);
-- edges(ts): instants on and next to window boundaries, ids from 1000001;
-- the changes below leave them alone
CREATE TABLE public.edges (ts timestamptz);
INSERT INTO public.edges
VALUES ('1900-01-01 00:00:00+00'), ('1969-12-31 23:52:46.499999+00'), ('1969-12-31 23:52:46.5+00'),
       ('1969-12-31 23:59:59.999999+00'), ('1970-01-01 00:00:00+00'),
       ('1999-12-31 23:57:49.499999+00'), ('1999-12-31 23:57:49.5+00'),
       ('1999-12-31 23:59:59.999999+00'), ('2000-01-01 00:00:00+00'),
       ('2026-11-25 10:00:09.999999+00'), ('2026-11-25 10:00:10+00');
INSERT INTO public.instants (id, ts)
SELECT 1000000 + row_number() OVER (ORDER BY ts), ts FROM public.edges;
UPDATE public.instants SET local_ts = ts AT TIME ZONE 'UTC';

-- windowed(size, view, ts): the sizes tested, their views, and the column
-- each groups (local_ts: the timestamp overload)
CREATE TABLE public.windowed (size interval, view text, ts text);
INSERT INTO public.windowed VALUES
    ('1 second', 'public.per_second', 'ts'),
    ('1 minute', 'public.per_minute', 'ts'),
    ('90 seconds', 'public.per_90_seconds', 'ts'),
    ('7 minutes 13.5 seconds', 'public.per_433_5_seconds', 'ts'),
    ('1 hour', 'public.per_hour', 'ts'),
    ('6 hours', 'public.per_6_hours', 'ts'),
    ('1 day', 'public.per_day', 'ts'),
    ('7 minutes 13.5 seconds', 'public.per_433_5_seconds_local', 'local_ts');
SELECT format($$SELECT flowstate.create_view(%L, $q$SELECT flowstate.tumble(%I, %L) AS w, count(*) AS n,
                   min(%2$I) AS first, max(%2$I) AS last FROM public.instants GROUP BY 1$q$)$$,
              view, ts, size)
  FROM public.windowed ORDER BY view \gexec

-- window_check(): per view, its rows, the rows it and its query run as a
-- batch query do not share, and its windows whose instants lie outside them
CREATE FUNCTION public.window_check()
RETURNS TABLE (view text, size interval, rows bigint, differences bigint, outside bigint)
LANGUAGE plpgsql AS $$
DECLARE
    w record;
    batch text;
BEGIN
    FOR w IN SELECT * FROM public.windowed ORDER BY windowed.view LOOP
        batch := format('SELECT flowstate.tumble(%1$I, %2$L), count(*), min(%1$I), max(%1$I)
                           FROM public.instants GROUP BY 1', w.ts, w.size);
        view := w.view;
        size := w.size;
        EXECUTE format('SELECT count(*), count(*) FILTER (WHERE NOT (w <= first AND last < w + %2$L))
                          FROM %1$s', w.view, w.size) INTO rows, outside;
        EXECUTE format('SELECT count(*) FROM ((TABLE %1$s EXCEPT ALL %2$s)
                                               UNION ALL (%2$s EXCEPT ALL TABLE %1$s)) d',
                       w.view, batch) INTO differences;
        RETURN NEXT;
    END LOOP;
END
$$;

SELECT flowstate.wait_for();
SELECT * FROM public.window_check();

-- rows move to later windows, across the Unix epoch and across 2000-01-01,
-- and onto boundaries; the first instant of each 6-hour window and the last
-- of each hour are deleted; new rows come on boundaries
UPDATE public.instants SET ts = ts + interval '45 seconds' WHERE id % 5 = 0 AND id < 1000000;
UPDATE public.instants SET ts = ts - interval '30 years'
 WHERE id % 7 = 0 AND ts > '2026-01-01' AND id < 1000000;
UPDATE public.instants SET ts = '2000-01-01 00:00:00+00'
 WHERE id % 11 = 0 AND ts < '1970-01-01' AND id < 1000000;
UPDATE public.instants SET ts = '1969-12-31 23:58:30+00'
 WHERE id % 13 = 0 AND ts BETWEEN '1996-01-01' AND '2000-01-01' AND id < 1000000;
DELETE FROM public.instants
 WHERE id < 1000000
   AND ts IN (SELECT min(ts) FROM public.instants GROUP BY flowstate.tumble(ts, '6 hours')
              UNION ALL
              SELECT max(ts) FROM public.instants GROUP BY flowstate.tumble(ts, '1 hour'));
INSERT INTO public.instants (id, ts)
VALUES (100001, '1969-12-31 23:45:33+00'), (100002, '1999-12-31 23:58:30+00'),
       (100003, '2026-01-02 00:00:00+00');
UPDATE public.instants SET local_ts = ts AT TIME ZONE 'UTC' WHERE local_ts IS DISTINCT FROM ts AT TIME ZONE 'UTC';
SELECT flowstate.wait_for();
SELECT * FROM public.window_check();

-- the windows of the edge instants, as the views hold them (the window
-- whose first and last instants enclose it)
SELECT e.ts,
       (SELECT w FROM public.per_second WHERE e.ts BETWEEN first AND last) AS second,
       (SELECT w FROM public.per_90_seconds WHERE e.ts BETWEEN first AND last) AS "90 seconds",
       (SELECT w FROM public.per_433_5_seconds WHERE e.ts BETWEEN first AND last) AS "433.5 seconds",
       (SELECT w FROM public.per_day WHERE e.ts BETWEEN first AND last) AS day
  FROM public.edges e
 ORDER BY e.ts;
SELECT e.ts AT TIME ZONE 'UTC' AS local_ts, w AS "433.5 seconds"
  FROM public.edges e JOIN public.per_433_5_seconds_local
    ON e.ts AT TIME ZONE 'UTC' BETWEEN first AND last
 ORDER BY 1;

DROP TABLE public.instants CASCADE;
DROP TABLE public.windowed, public.edges;
DROP FUNCTION public.window_check();

-- a tumbling aggregate written with it runs as an ordinary batch query
CREATE TABLE public.clicks (ts timestamptz, user_id int);
INSERT INTO public.clicks
SELECT '2026-11-25 10:00:00+00'::timestamptz + i * interval '17 seconds', i % 3
  FROM generate_series(0, 19) AS i;
SELECT flowstate.tumble(ts, '1 minute') AS window_start, user_id, count(*)
  FROM public.clicks
 GROUP BY 1, 2
 ORDER BY 1, 2;
DROP TABLE public.clicks;

-- sizes date_bin cannot bin by are refused
SELECT flowstate.tumble(now(), '1 month');
SELECT flowstate.tumble(now(), '0 seconds');
