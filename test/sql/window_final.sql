-- Final windows.  A window is final once the watermark (the largest event
-- time minus watermark_delay) has passed its end by allowed_lateness: it
-- never changes again, a row for it is late (flowstate.late_events), and
-- its groups leave shared memory once flushed, the view reading them from
-- its state table.  flowstate.views shows up to where windows are final
-- (final_up_to), flowstate.is_final() whether one window is.
SET TimeZone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE TABLE public.taps (id serial PRIMARY KEY, ts timestamptz NOT NULL, k int NOT NULL, v int);
ALTER TABLE public.taps REPLICA IDENTITY FULL;
SELECT flowstate.create_view('public.taps_per_minute', $$
    SELECT date_bin('1 minute', ts, '2026-01-01') AS minute, k, count(*) AS n, sum(v) AS total,
           max(v) AS hi
      FROM public.taps GROUP BY 1, 2 $$, watermark_delay => '10 seconds', allowed_lateness => '30 seconds');

-- minutes 0 to 9, 20 keys each, in 10 transactions
DO $$
BEGIN
    FOR m IN 0 .. 9 LOOP
        INSERT INTO public.taps (ts, k, v)
        SELECT '2026-01-01'::timestamptz + m * interval '1 minute' + i * interval '1 second', i % 20, i
          FROM generate_series(0, 59) i;
        COMMIT;
    END LOOP;
END
$$;
SELECT flowstate.wait_for();

-- the watermark is 00:09:59 - 10 s: windows ending by 00:09:19 are final
SELECT watermark, final_up_to FROM flowstate.views WHERE view = 'public.taps_per_minute'::regclass;
SELECT m AS minute_start, flowstate.is_final('public.taps_per_minute', m)
  FROM generate_series('2026-01-01 00:07:00+00'::timestamptz, '2026-01-01 00:09:00+00', '1 minute') m;

-- once flushed, the groups of the final windows (minutes 0 to 8) leave
-- shared memory; minute 9's 20 keys stay
-- (a procedure that commits while it waits: a snapshot held open would keep
-- the groups, as it keeps any flushed group a reader may still need)
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
CALL public.settle('public.taps_per_minute', 20);
SELECT groups FROM flowstate.views WHERE view = 'public.taps_per_minute'::regclass;

-- differences(from): rows of the view, for windows starting at or after
-- from, that its batch query lacks, and the reverse
CREATE FUNCTION public.differences(since timestamptz) RETURNS bigint
LANGUAGE sql AS $$
    WITH v AS (SELECT * FROM public.taps_per_minute WHERE minute >= since),
         b AS (SELECT date_bin('1 minute', ts, '2026-01-01') AS minute, k, count(*) AS n,
                      sum(v) AS total, max(v) AS hi
                 FROM public.taps WHERE date_bin('1 minute', ts, '2026-01-01') >= since GROUP BY 1, 2)
    SELECT count(*) FROM ((TABLE v EXCEPT ALL TABLE b) UNION ALL (TABLE b EXCEPT ALL TABLE v)) d
$$;
-- the view reads the final windows from its state table: equal
SELECT public.differences('-infinity');
CREATE TABLE public.final_before AS
    SELECT * FROM public.taps_per_minute WHERE flowstate.is_final('public.taps_per_minute', minute);

-- rows for final windows are late: recorded, not applied, and no group of
-- theirs comes back into shared memory; rows of open windows are applied
INSERT INTO public.taps (ts, k, v) VALUES ('2026-01-01 00:03:30+00', 1, 1000), ('2026-01-01 00:09:30+00', 1, 1000);
DELETE FROM public.taps WHERE ts = '2026-01-01 00:02:05+00';
UPDATE public.taps SET v = v + 1 WHERE ts = '2026-01-01 00:08:05+00';
SELECT flowstate.wait_for();
SELECT public.wait_durable();
SELECT event_time, change, payload::jsonb ->> 'v' AS v FROM flowstate.late_events
 WHERE view = 'public.taps_per_minute'::regclass ORDER BY id;
CALL public.settle('public.taps_per_minute', 20);
-- final windows did not change; the open one equals its batch query
SELECT count(*) AS changed_final_rows FROM
    ((TABLE public.final_before EXCEPT ALL
      SELECT * FROM public.taps_per_minute WHERE minute < '2026-01-01 00:09:00+00')
     UNION ALL
     (SELECT * FROM public.taps_per_minute WHERE minute < '2026-01-01 00:09:00+00'
      EXCEPT ALL TABLE public.final_before)) d;
SELECT public.differences('2026-01-01 00:09:00+00');
SELECT minute, k, n, total, hi FROM public.taps_per_minute
 WHERE k = 1 AND minute IN ('2026-01-01 00:03:00+00', '2026-01-01 00:09:00+00') ORDER BY minute;

-- the watermark moves on: minute 9 becomes final and leaves too
INSERT INTO public.taps (ts, k, v) VALUES ('2026-01-01 00:12:00+00', 0, 1);
SELECT flowstate.wait_for();
SELECT flowstate.is_final('public.taps_per_minute', '2026-01-01 00:09:00+00') AS nine_final,
       flowstate.is_final('public.taps_per_minute', '2026-01-01 00:12:00+00') AS twelve_final;
CALL public.settle('public.taps_per_minute', 1);
SELECT public.differences('2026-01-01 00:09:00+00');

-- retention: the windows that ended longer ago than it, behind the
-- watermark, leave the state table (a new view's backfill, over minutes 0 to
-- 12: those ending by 00:07:00 go)
SELECT flowstate.create_view('public.taps_recent', $$
    SELECT date_bin('1 minute', ts, '2026-01-01') AS minute, count(*) AS n, sum(v) AS total
      FROM public.taps GROUP BY 1 $$, allowed_lateness => '30 seconds', retention => '5 minutes');
SELECT view, retention FROM flowstate.view WHERE view = 'public.taps_recent'::regclass;
CREATE PROCEDURE public.settle_rows(view regclass, expected bigint, INOUT n bigint DEFAULT NULL)
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 100 LOOP
        EXECUTE format('SELECT count(*) FROM %s', view) INTO n;
        EXIT WHEN n = expected;
        COMMIT;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT flowstate.wait_for();
CALL public.settle_rows('public.taps_recent', 4);
SELECT minute, n, total FROM public.taps_recent ORDER BY minute;
CREATE FUNCTION public.state_rows(v regclass) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s', (SELECT state_table FROM flowstate.view WHERE view = v)) INTO n;
    RETURN n;
END
$$;
SELECT public.state_rows('public.taps_recent');
SELECT groups FROM flowstate.views WHERE view = 'public.taps_recent'::regclass;
-- the windows kept equal the batch query's
SELECT count(*) AS differences FROM
    ((TABLE public.taps_recent EXCEPT ALL
      SELECT date_bin('1 minute', ts, '2026-01-01'), count(*), sum(v) FROM public.taps
       WHERE ts >= '2026-01-01 00:07:00+00' GROUP BY 1)
     UNION ALL
     (SELECT date_bin('1 minute', ts, '2026-01-01'), count(*), sum(v) FROM public.taps
       WHERE ts >= '2026-01-01 00:07:00+00' GROUP BY 1
      EXCEPT ALL TABLE public.taps_recent)) d;
-- the watermark moves on to 00:20: all but minute 20 go; a row of a window
-- gone is late, as any row of a final window
INSERT INTO public.taps (ts, k, v) VALUES ('2026-01-01 00:20:00+00', 0, 1);
INSERT INTO public.taps (ts, k, v) VALUES ('2026-01-01 00:08:10+00', 0, 1);
SELECT flowstate.wait_for();
CALL public.settle_rows('public.taps_recent', 1);
SELECT minute, n, total FROM public.taps_recent ORDER BY minute;
SELECT public.state_rows('public.taps_recent');
SELECT event_time, change FROM flowstate.late_events
 WHERE view = 'public.taps_recent'::regclass ORDER BY id;

-- a changelog: the rows of each window that becomes final, once, in the
-- view's columns, written with the flush that makes it final
SELECT flowstate.create_view('public.taps_final', $$
    SELECT date_bin('1 minute', ts, '2026-01-01') AS minute, k % 2 AS parity, count(*) AS n,
           sum(v) AS total
      FROM public.taps GROUP BY 1, 2 HAVING count(*) > 1 $$,
    allowed_lateness => '0', notify => true, changelog => true);
\d public.taps_final_changelog
SELECT view, notify, changelog FROM flowstate.view WHERE view = 'public.taps_final'::regclass;
SELECT flowstate.wait_for();
CALL public.settle_rows('public.taps_final_changelog', 20);
SELECT minute, parity, n, total FROM public.taps_final_changelog ORDER BY minute, parity;
-- the next window that becomes final adds its rows; no row comes twice
INSERT INTO public.taps (ts, k, v)
VALUES ('2026-01-01 00:21:00+00', 0, 1), ('2026-01-01 00:21:01+00', 2, 2), ('2026-01-01 00:22:30+00', 0, 3);
SELECT flowstate.wait_for();
CALL public.settle_rows('public.taps_final_changelog', 21);
SELECT minute, count(*) AS rows, sum(n) AS n FROM public.taps_final_changelog GROUP BY 1 ORDER BY 1;
-- the changelog equals the view's rows of its final windows
SELECT count(*) AS differences FROM
    ((SELECT minute, parity, n, total FROM public.taps_final_changelog
      EXCEPT ALL SELECT * FROM public.taps_final WHERE flowstate.is_final('public.taps_final', minute))
     UNION ALL
     (SELECT * FROM public.taps_final WHERE flowstate.is_final('public.taps_final', minute)
      EXCEPT ALL SELECT minute, parity, n, total FROM public.taps_final_changelog)) d;
-- consumers delete what they read; dropping the view drops its changelog
DELETE FROM public.taps_final_changelog WHERE minute < '2026-01-01 00:20:00+00';
SELECT flowstate.drop_view('public.taps_final');
SELECT to_regclass('public.taps_final_changelog') AS changelog_after_drop;

-- a view without allowed_lateness has no final windows
SELECT flowstate.create_view('public.taps_per_key', $$
    SELECT date_bin('1 minute', ts, '2026-01-01') AS minute, count(*) AS n FROM public.taps GROUP BY 1 $$);
SELECT flowstate.wait_for();
SELECT final_up_to, flowstate.is_final('public.taps_per_key', '2026-01-01 00:00:00+00') AS final
  FROM flowstate.views WHERE view = 'public.taps_per_key'::regclass;

DELETE FROM flowstate.late_events WHERE view = 'public.taps_per_minute'::regclass;
SELECT flowstate.drop_view('public.taps_per_minute');
SELECT flowstate.drop_view('public.taps_per_key');
DELETE FROM flowstate.late_events WHERE view = 'public.taps_recent'::regclass;
SELECT flowstate.drop_view('public.taps_recent');
DROP PROCEDURE public.settle_rows(regclass, bigint, bigint);
DROP FUNCTION public.state_rows(regclass);
DROP FUNCTION public.differences(timestamptz);
DROP TABLE public.final_before;
DROP PROCEDURE public.settle(regclass, bigint, bigint);
DROP TABLE public.taps;
