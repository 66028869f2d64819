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

-- what they still do not take
SELECT public.try($$SELECT flowstate.create_view('public.h', 'SELECT w.window_start, count(*) FROM public.hits, LATERAL flowstate.hop(hits.ts, ''10 minutes'', ''4 minutes'') w GROUP BY w.window_start', allowed_lateness => '0', retention => '1 hour')$$);
SELECT public.try($$SELECT flowstate.create_view('public.h', 'SELECT w.window_start, w.window_end, count(*) FROM public.hits, LATERAL flowstate.cumulate(hits.ts, ''2 minutes'', ''10 minutes'') w GROUP BY w.window_start, w.window_end', allowed_lateness => '0', notify => true)$$);

DELETE FROM flowstate.late_events WHERE view::text LIKE 'hits%';
DROP PROCEDURE public.wait_late(bigint);
DROP PROCEDURE public.settle(regclass, bigint, bigint);
SELECT flowstate.drop_view('public.hits_hop');
SELECT flowstate.drop_view('public.hits_cum');
DROP TABLE public.hits;
