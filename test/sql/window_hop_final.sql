-- Final windows of hopping and cumulating views.  A row is late only once
-- the earliest window holding it is final: for hop(10 min, 4 min), whose
-- panes are 2 minutes, the window that ends soonest after its pane; for
-- cumulate(2 min, 10 min), the 2-minute window that ends with its pane.
-- The catalog keeps the windows of the panes (hop_kind, hop_size,
-- hop_slide); flowstate.is_final() answers for the views and their panes.
SET TimeZone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE TABLE public.hits (id serial PRIMARY KEY, ts timestamptz NOT NULL, k int NOT NULL, v int);
ALTER TABLE public.hits REPLICA IDENTITY FULL;
SELECT flowstate.create_view('public.hits_hop', $$
    SELECT w.window_start, w.window_end, k, count(*) AS n, sum(v) AS total
      FROM public.hits, LATERAL flowstate.hop(hits.ts, '10 minutes', '4 minutes') w
     GROUP BY w.window_start, w.window_end, k $$, allowed_lateness => '1 minute');
SELECT flowstate.create_view('public.hits_cum', $$
    SELECT w.window_start, w.window_end, count(*) AS n, sum(v) AS total
      FROM public.hits, LATERAL flowstate.cumulate(hits.ts, '2 minutes', '10 minutes') w
     GROUP BY w.window_start, w.window_end $$, allowed_lateness => '1 minute');
SELECT view, hop_view, hop_kind, hop_size, hop_slide, window_size, allowed_lateness
  FROM flowstate.view WHERE hop_view IS NOT NULL ORDER BY view::text;

-- minutes 0 to 29, every 10 seconds, 3 keys
INSERT INTO public.hits (ts, k, v)
SELECT '2026-01-01'::timestamptz + i * interval '10 seconds', i % 3, i FROM generate_series(0, 179) i;
SELECT flowstate.wait_for();

-- the watermark is 00:29:50: windows ending by 00:28:50 are final
SELECT view, watermark, final_up_to FROM flowstate.views
 WHERE view::text LIKE 'hits%' ORDER BY view::text;
SELECT s AS window_start, flowstate.is_final('public.hits_hop', s)
  FROM generate_series('2026-01-01 00:12:00+00'::timestamptz, '2026-01-01 00:20:00+00', '4 minutes') s;
SELECT s AS window_start, flowstate.is_final('public.hits_cum', s)
  FROM generate_series('2026-01-01 00:10:00+00'::timestamptz, '2026-01-01 00:20:00+00', '10 minutes') s;
-- a pane of the hopping windows is final once the earliest window holding
-- it is: the pane at 00:26 lies in [00:20, 00:30) first, not final yet
SELECT s AS pane_start, flowstate.is_final('public.hits_hop_panes', s)
  FROM generate_series('2026-01-01 00:20:00+00'::timestamptz, '2026-01-01 00:28:00+00', '2 minutes') s;
SELECT s AS pane_start, flowstate.is_final('public.hits_cum_panes', s)
  FROM generate_series('2026-01-01 00:24:00+00'::timestamptz, '2026-01-01 00:28:00+00', '2 minutes') s;

-- once flushed, the groups of final panes leave shared memory: the hopping
-- panes at 00:26 and 00:28 stay (3 keys each), the cumulating pane at 00:28
CREATE PROCEDURE public.settle(view regclass, expected bigint, INOUT groups_in_memory bigint DEFAULT NULL)
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 100 LOOP
        SELECT v.groups_in_memory INTO groups_in_memory FROM flowstate.views v WHERE v.view = settle.view;
        EXIT WHEN groups_in_memory = expected;
        COMMIT;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
CALL public.settle('public.hits_hop_panes', 6);
CALL public.settle('public.hits_cum_panes', 1);

-- late rows: 00:26:30 only for the cumulating windows (its pane's first
-- window, [00:20, 00:28), is final); 00:25:00 for both; 00:28:10 for none
INSERT INTO public.hits (ts, k, v) VALUES
    ('2026-01-01 00:26:30+00', 0, 1000), ('2026-01-01 00:25:00+00', 1, 1001),
    ('2026-01-01 00:28:10+00', 2, 1002);
SELECT flowstate.wait_for();
CREATE PROCEDURE public.wait_late(expected bigint)
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 100 LOOP
        EXIT WHEN (SELECT count(*) FROM flowstate.late_events
                    WHERE view::text LIKE 'hits%') >= expected;
        COMMIT;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
CALL public.wait_late(3);
SELECT view, change, event_time, watermark, payload FROM flowstate.late_events
 WHERE view::text LIKE 'hits%' ORDER BY view::text, event_time;

-- each view equals its defining query over the rows it did not refuse
SELECT count(*) AS hop_differences FROM (
    (TABLE public.hits_hop EXCEPT ALL
     SELECT w.window_start, w.window_end, k, count(*), sum(v)
       FROM public.hits, LATERAL flowstate.hop(hits.ts, '10 minutes', '4 minutes') w
      WHERE v <> 1001 GROUP BY w.window_start, w.window_end, k)
    UNION ALL
    (SELECT w.window_start, w.window_end, k, count(*), sum(v)
       FROM public.hits, LATERAL flowstate.hop(hits.ts, '10 minutes', '4 minutes') w
      WHERE v <> 1001 GROUP BY w.window_start, w.window_end, k
     EXCEPT ALL TABLE public.hits_hop)) d;
SELECT count(*) AS cum_differences FROM (
    (TABLE public.hits_cum EXCEPT ALL
     SELECT w.window_start, w.window_end, count(*), sum(v)
       FROM public.hits, LATERAL flowstate.cumulate(hits.ts, '2 minutes', '10 minutes') w
      WHERE v NOT IN (1000, 1001) GROUP BY w.window_start, w.window_end)
    UNION ALL
    (SELECT w.window_start, w.window_end, count(*), sum(v)
       FROM public.hits, LATERAL flowstate.cumulate(hits.ts, '2 minutes', '10 minutes') w
      WHERE v NOT IN (1000, 1001) GROUP BY w.window_start, w.window_end
     EXCEPT ALL TABLE public.hits_cum)) d;
-- the windows that hold 00:26:30 and 00:28:10
SELECT * FROM public.hits_hop WHERE window_end > '2026-01-01 00:28:00+00' AND k IN (0, 2)
 ORDER BY window_start, k;

-- changelog, notify and retention: a view of hopping or cumulating windows
-- announces each of its windows once final (its end, plus allowed_lateness,
-- behind the watermark), with the rows the view shows (HAVING applies),
-- through <name>_final(lo, hi) made with it; retention removes the panes
-- no window kept needs, and the view shows the windows that ended less
-- than retention before the watermark
CREATE TABLE public.clicks (id serial PRIMARY KEY, ts timestamptz NOT NULL, k int NOT NULL);
ALTER TABLE public.clicks REPLICA IDENTITY FULL;
SELECT flowstate.create_view('public.clicks_hop', $$
    SELECT w.window_start AS ws, w.window_end AS we, k, count(*) AS n
      FROM public.clicks, LATERAL flowstate.hop(clicks.ts, '4 minutes', '2 minutes') w
     GROUP BY w.window_start, w.window_end, k HAVING count(*) > 6 $$,
    allowed_lateness => '1 minute', notify => true, changelog => true, retention => '10 minutes');
SELECT flowstate.create_view('public.clicks_cum', $$
    SELECT w.window_end, count(*) AS n
      FROM public.clicks, LATERAL flowstate.cumulate(clicks.ts, '1 minute', '3 minutes') w
     GROUP BY w.window_end $$,
    allowed_lateness => '0', changelog => true, retention => '6 minutes');
SELECT view, hop_kind, retention, notify, changelog, final_function FROM flowstate.view
 WHERE hop_view IN ('public.clicks_hop'::regclass, 'public.clicks_cum'::regclass) ORDER BY view::text;
-- minutes 0 to 29, every 10 seconds, 2 keys (key 1 every 20 seconds)
INSERT INTO public.clicks (ts, k)
SELECT '2026-01-01'::timestamptz + i * interval '10 seconds', CASE WHEN i % 2 = 0 THEN 0 ELSE i % 4 END
  FROM generate_series(0, 179) i;
SELECT flowstate.wait_for();
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
CREATE VIEW public.check_final AS
SELECT (SELECT count(*) FROM ((SELECT ws, we, k, n FROM public.clicks_hop_changelog
                               EXCEPT ALL
                               SELECT w.window_start, w.window_end, k, count(*)
                                 FROM public.clicks, LATERAL flowstate.hop(clicks.ts, '4 minutes', '2 minutes') w
                                GROUP BY w.window_start, w.window_end, k
                               HAVING count(*) > 6 AND w.window_end <= (SELECT final_up_to FROM flowstate.views
                                                                         WHERE view = 'public.clicks_hop_panes'::regclass))
                              UNION ALL
                              (SELECT w.window_start, w.window_end, k, count(*)
                                 FROM public.clicks, LATERAL flowstate.hop(clicks.ts, '4 minutes', '2 minutes') w
                                GROUP BY w.window_start, w.window_end, k
                               HAVING count(*) > 6 AND w.window_end <= (SELECT final_up_to FROM flowstate.views
                                                                         WHERE view = 'public.clicks_hop_panes'::regclass)
                               EXCEPT ALL
                               SELECT ws, we, k, n FROM public.clicks_hop_changelog)) d) AS hop_changelog_differences,
       (SELECT count(*) FROM ((SELECT window_end, n FROM public.clicks_cum_changelog
                               EXCEPT ALL
                               SELECT w.window_end, count(*)
                                 FROM public.clicks, LATERAL flowstate.cumulate(clicks.ts, '1 minute', '3 minutes') w
                                GROUP BY w.window_end
                               HAVING w.window_end <= (SELECT final_up_to FROM flowstate.views
                                                        WHERE view = 'public.clicks_cum_panes'::regclass))
                              UNION ALL
                              (SELECT w.window_end, count(*)
                                 FROM public.clicks, LATERAL flowstate.cumulate(clicks.ts, '1 minute', '3 minutes') w
                                GROUP BY w.window_end
                               HAVING w.window_end <= (SELECT final_up_to FROM flowstate.views
                                                        WHERE view = 'public.clicks_cum_panes'::regclass)
                               EXCEPT ALL
                               SELECT window_end, n FROM public.clicks_cum_changelog)) d) AS cum_changelog_differences,
       -- the views: their batch queries restricted to the windows kept
       public.differences('public.clicks_hop', $q$
           SELECT w.window_start, w.window_end, k, count(*)
             FROM public.clicks, LATERAL flowstate.hop(clicks.ts, '4 minutes', '2 minutes') w
            GROUP BY w.window_start, w.window_end, k
           HAVING count(*) > 6 AND w.window_end > (SELECT max_event_time - interval '10 minutes' FROM flowstate.view
                                                    WHERE view = 'public.clicks_hop_panes'::regclass) $q$) AS hop_differences,
       public.differences('public.clicks_cum', $q$
           SELECT w.window_end, count(*)
             FROM public.clicks, LATERAL flowstate.cumulate(clicks.ts, '1 minute', '3 minutes') w
            GROUP BY w.window_end
           HAVING w.window_end > (SELECT max_event_time - interval '6 minutes' FROM flowstate.view
                                   WHERE view = 'public.clicks_cum_panes'::regclass) $q$) AS cum_differences,
       (SELECT count(*) FROM (SELECT ws, k FROM public.clicks_hop_changelog GROUP BY ws, k HAVING count(*) > 1) d)
         + (SELECT count(*) FROM (SELECT window_end FROM public.clicks_cum_changelog GROUP BY window_end HAVING count(*) > 1) d)
         AS announced_twice;
-- (the changelog follows each flush: wait for the flush of the last rows)
CREATE PROCEDURE public.wait_final()
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 100 LOOP
        EXIT WHEN (SELECT hop_changelog_differences + cum_changelog_differences = 0 FROM public.check_final);
        COMMIT;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
-- the watermark is 00:29:50: hopping windows ending by 00:28:50 are final
-- (of key 0 only: HAVING), cumulating ones ending by 00:29:50
CALL public.wait_final();
SELECT * FROM public.check_final;
SELECT min(ws), max(ws), count(*) FROM public.clicks_hop_changelog;
SELECT min(ws), max(ws), count(*) FROM public.clicks_hop;
SELECT min(window_end), max(window_end), count(*) FROM public.clicks_cum;
-- the panes that retention removed: those no window kept needs
SELECT min((keys).window_start) AS first_pane_kept FROM flowstate.partial_states(NULL::public.clicks_hop_panes);
-- ten minutes more, and a late row: each window announced once
INSERT INTO public.clicks (ts, k)
SELECT '2026-01-01 00:30:00'::timestamptz + i * interval '10 seconds', CASE WHEN i % 2 = 0 THEN 0 ELSE i % 4 END
  FROM generate_series(0, 59) i;
INSERT INTO public.clicks (ts, k) VALUES ('2026-01-01 00:05:00+00', 0);
SELECT flowstate.wait_for();
-- (the late row is not in the views: out of the batch queries too)
DELETE FROM public.clicks WHERE ts = '2026-01-01 00:05:00+00' AND id > 180;
CALL public.wait_final();
SELECT * FROM public.check_final;
SELECT count(*) AS hop_announced, max(we) AS last_end FROM public.clicks_hop_changelog;

-- what they do not take
SELECT public.try($$SELECT flowstate.create_view('public.h', 'SELECT w.window_start, count(*) FROM public.hits, LATERAL flowstate.hop(hits.ts, ''10 minutes'', ''4 minutes'') w GROUP BY w.window_start', allowed_lateness => '0', retention => '9 minutes')$$);
SELECT public.try($$SELECT flowstate.create_view('public.h', 'SELECT w.window_start, w.window_end, count(*) FROM public.hits, LATERAL flowstate.cumulate(hits.ts, ''2 minutes'', ''10 minutes'') w GROUP BY w.window_start, w.window_end', notify => true)$$);
SELECT public.try($$SELECT flowstate.create_view('public.h', 'SELECT w.window_start, count(*) FROM public.hits, LATERAL flowstate.hop(hits.ts, ''10 minutes'', ''4 minutes'') w GROUP BY w.window_start', retention => '1 hour')$$);
DELETE FROM flowstate.late_events WHERE view::text LIKE 'clicks%';
DROP VIEW public.check_final;
DROP PROCEDURE public.wait_final();
DROP FUNCTION public.differences(regclass, text);
SELECT flowstate.drop_view('public.clicks_hop');
SELECT to_regclass('public.clicks_hop_changelog') AS changelog_after_drop,
       to_regprocedure('public.clicks_hop_final(timestamptz, timestamptz)') AS function_after_drop;
DROP VIEW public.clicks_cum;
DROP TABLE public.clicks;

DELETE FROM flowstate.late_events WHERE view::text LIKE 'hits%';
DROP PROCEDURE public.wait_late(bigint);
DROP PROCEDURE public.settle(regclass, bigint, bigint);
SELECT flowstate.drop_view('public.hits_hop');
SELECT flowstate.drop_view('public.hits_cum');
DROP TABLE public.hits;
