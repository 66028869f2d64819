-- What a continuous view does not apply, and where it goes: rows on which
-- an expression fails become dead letters, rows whose window closed longer
-- than the allowed lateness ago become late events; both are kept with the
-- reason and the row, written with the next flush.

SET TimeZone = 'UTC';

CREATE TABLE public.readings (id int PRIMARY KEY, ts timestamptz NOT NULL, sensor text,
                              value numeric, divisor int);
ALTER TABLE public.readings REPLICA IDENTITY FULL;

-- value / divisor fails on a zero divisor
SELECT flowstate.create_view('public.ratios', $$
    SELECT sensor, count(*) AS n, sum(value / divisor) AS ratio
      FROM public.readings GROUP BY sensor $$);
-- a minute's window is final 1 minute after it ended, by a watermark that
-- trails the largest event time by 30 seconds
SELECT flowstate.create_view('public.per_minute', $$
    SELECT date_bin('1 minute', ts, '2026-01-01') AS minute, count(*) AS n, sum(value) AS total
      FROM public.readings GROUP BY 1 $$,
    watermark_delay => '30 seconds', allowed_lateness => '1 minute');
SELECT flowstate.wait_for();

INSERT INTO public.readings VALUES
    (1, '2026-01-01 10:00:10', 'a', 10, 2),
    (2, '2026-01-01 10:00:20', 'a', 5, 0),      -- division by zero
    (3, '2026-01-01 10:05:00', 'b', 7, 7);      -- watermark: 10:04:30
SELECT flowstate.wait_for();
INSERT INTO public.readings VALUES
    (4, '2026-01-01 10:03:10', 'a', 1, 1),      -- 10:03 window final at 10:05: applied
    (5, '2026-01-01 10:02:59', 'a', 1, 1);      -- 10:02 window final at 10:04: late
DELETE FROM public.readings WHERE id = 1;       -- its 10:00 window is final: late
UPDATE public.readings SET divisor = 0 WHERE id = 3;  -- the new row fails
SELECT flowstate.wait_for();

-- the views: the failed and late rows are not in them
SELECT * FROM public.ratios ORDER BY sensor;
SELECT * FROM public.per_minute ORDER BY minute;
SELECT view, late_rows, failed_rows, watermark FROM flowstate.views ORDER BY view::text;

-- the rows themselves, with the reason, once flushed
SELECT public.wait_durable();
SELECT view, lsn IS NOT NULL AS has_lsn, payload, error, sqlstate
  FROM flowstate.dead_letters ORDER BY id;
SELECT view, event_time, watermark, change, payload, reason
  FROM flowstate.late_events ORDER BY id;

-- the watermark's base is kept with the state, for after a restart
SELECT view, max_event_time FROM flowstate.view ORDER BY view::text;

-- an immutable function of the user's that fails: its error is cleaned up
-- (each row is evaluated in a subtransaction) and the row is a dead letter
CREATE FUNCTION public.checked_ratio(v numeric, d int) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF d < 0 THEN
        RAISE EXCEPTION 'negative divisor % for %', d, v USING ERRCODE = '22023';
    END IF;
    RETURN v / nullif(d, 0);
END
$$;
SELECT flowstate.create_view('public.checked', $$
    SELECT sensor, sum(public.checked_ratio(value, divisor)) AS ratio
      FROM public.readings GROUP BY sensor $$);
SELECT flowstate.wait_for();
INSERT INTO public.readings VALUES (6, '2026-01-01 10:06:00', 'c', 3, -1), (7, '2026-01-01 10:06:01', 'c', 8, 4);
SELECT flowstate.wait_for();
SELECT * FROM public.checked ORDER BY sensor;
SELECT public.wait_durable();
SELECT view, payload, error, sqlstate FROM flowstate.dead_letters
 WHERE view = 'public.checked'::regclass ORDER BY id;

SELECT flowstate.drop_view('public.ratios');
SELECT flowstate.drop_view('public.per_minute');
SELECT flowstate.drop_view('public.checked');
DROP FUNCTION public.checked_ratio(numeric, int);
DROP TABLE public.readings;

-- nothing is lost: a transaction of more failing rows than a flush keeps
-- (a source flushes early instead)
CREATE TABLE public.many (i int);
ALTER TABLE public.many REPLICA IDENTITY FULL;
SELECT flowstate.create_view('public.many_failing', $$
    SELECT count(*) AS n, sum(1 / (i - i)) AS boom FROM public.many $$);
SELECT flowstate.wait_for();
INSERT INTO public.many SELECT generate_series(1, 25000);
SELECT flowstate.wait_for();
SELECT public.wait_durable();
SELECT count(*) AS dead_letters, count(DISTINCT payload) AS rows
  FROM flowstate.dead_letters WHERE view = 'public.many_failing'::regclass;
SELECT failed_rows FROM flowstate.views WHERE view = 'public.many_failing'::regclass;
DROP TABLE public.many CASCADE;

-- a recompute (a deleted maximum) evaluates the group's rows again: the
-- failing ones were recorded when they came, and are not recorded again
CREATE TABLE public.pairs (id int, g int, a int, b int);
ALTER TABLE public.pairs REPLICA IDENTITY FULL;
SELECT flowstate.create_view('public.top_ratio', $$
    SELECT g, max(a / b) AS top FROM public.pairs GROUP BY g $$);
INSERT INTO public.pairs VALUES (1, 1, 10, 1), (2, 1, 5, 1), (3, 1, 7, 0), (4, 1, 8, 0);
SELECT flowstate.wait_for();
DELETE FROM public.pairs WHERE id = 1;
SELECT flowstate.wait_for();
DELETE FROM public.pairs WHERE id = 2;
SELECT flowstate.wait_for();
SELECT * FROM public.top_ratio;
SELECT public.wait_durable();
SELECT recomputed_groups > 0 AS recomputed, failed_rows FROM flowstate.views
 WHERE view = 'public.top_ratio'::regclass;
SELECT payload, error FROM flowstate.dead_letters
 WHERE view = 'public.top_ratio'::regclass ORDER BY id;
DROP TABLE public.pairs CASCADE;

-- a view its worker cannot compile (its owner may not run its function):
-- every row is a dead letter with the error, and the worker goes on
CREATE ROLE side_owner;
CREATE SCHEMA side_owned AUTHORIZATION side_owner;
CREATE FUNCTION public.doubled(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
REVOKE EXECUTE ON FUNCTION public.doubled(int) FROM PUBLIC;
SET ROLE side_owner;
CREATE TABLE side_owned.t (k int, v int);
ALTER TABLE side_owned.t REPLICA IDENTITY FULL;
INSERT INTO side_owned.t VALUES (1, 1);
SELECT flowstate.create_view('side_owned.doubled', $$
    SELECT k, sum(public.doubled(v)) AS s FROM side_owned.t GROUP BY k $$);
INSERT INTO side_owned.t VALUES (2, 2);
SELECT flowstate.wait_for();
INSERT INTO side_owned.t VALUES (3, 3);
SELECT flowstate.wait_for();
SELECT count(*) FROM side_owned.doubled;
RESET ROLE;
SELECT public.wait_durable();
SELECT failed_rows FROM flowstate.views WHERE view = 'side_owned.doubled'::regclass;
SELECT payload, error, sqlstate FROM flowstate.dead_letters
 WHERE view = 'side_owned.doubled'::regclass ORDER BY id;
SELECT kind, state FROM flowstate.sources ORDER BY kind;
SELECT flowstate.drop_view('side_owned.doubled');
DROP TABLE side_owned.t;
DROP SCHEMA side_owned;
DROP FUNCTION public.doubled(int);
DROP ROLE side_owner;
