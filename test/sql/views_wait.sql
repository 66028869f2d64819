-- flowstate.wait_for() returns once the rows it waited for are in the views,
-- and their dead letters and late events in their tables: a client reads
-- them right after it, without waiting for the next flush.

SET TimeZone = 'UTC';

-- flushes an hour apart: side rows are written when a wait_for needs them
ALTER SYSTEM SET flowstate.flush_interval = '1h';
SELECT pg_reload_conf();

CREATE TABLE public.payments (id int PRIMARY KEY, ts timestamptz, amount int, parts int);
ALTER TABLE public.payments REPLICA IDENTITY FULL;
SELECT flowstate.create_view('public.shares', $$
    SELECT count(*) AS n, sum(amount / parts) AS share FROM public.payments $$);
SELECT flowstate.create_view('public.per_minute', $$
    SELECT date_bin('1 minute', ts, '2026-01-01') AS minute, count(*) AS n
      FROM public.payments GROUP BY 1 $$,
    watermark_delay => '0 seconds', allowed_lateness => '0 seconds');
SELECT flowstate.wait_for();

INSERT INTO public.payments VALUES
    (1, '2026-01-01 10:00:10', 10, 2),
    (2, '2026-01-01 10:00:20', 10, 0),      -- division by zero
    (3, '2026-01-01 10:05:00', 6, 3);       -- closes the 10:00 window
SELECT flowstate.wait_for();
SELECT * FROM public.shares;
SELECT view, payload, error, sqlstate FROM flowstate.dead_letters
 WHERE view::text IN ('shares', 'per_minute') ORDER BY id;

-- in a later transaction: the side rows of what the call waited for
INSERT INTO public.payments VALUES (4, '2026-01-01 10:00:30', 1, 1);   -- late
INSERT INTO public.payments VALUES (5, '2026-01-01 10:05:10', 7, 0);   -- division by zero
SELECT flowstate.wait_for();
SELECT * FROM public.per_minute ORDER BY minute;
SELECT view, payload, error, sqlstate FROM flowstate.dead_letters
 WHERE view::text IN ('shares', 'per_minute') ORDER BY id;
SELECT view, event_time, watermark, change, payload FROM flowstate.late_events
 WHERE view::text IN ('shares', 'per_minute') ORDER BY id;

-- with no side rows, wait_for does not wait for a flush
INSERT INTO public.payments VALUES (6, '2026-01-01 10:06:00', 4, 4);
SELECT flowstate.wait_for(timeout => '10s');
SELECT * FROM public.shares;

DROP TABLE public.payments CASCADE;
ALTER SYSTEM RESET flowstate.flush_interval;
SELECT pg_reload_conf();
