-- Shared memory per group.  A group's state is kept in shared memory in a
-- packed form: no padding, nothing only a delta needs, and each field once
-- where aggregates share an input (count(*) is the row count, sum and avg
-- of one argument keep one sum, min and max one count of inputs).  The
-- benchmark's view of count, sum, avg, min and max per key and minute takes
-- at most 160 bytes per group, its buckets included, and equals its batch
-- query.
SET TimeZone = 'UTC';

CREATE TABLE public.events (ts timestamptz NOT NULL, k int NOT NULL, v float8);
ALTER TABLE public.events REPLICA IDENTITY FULL;
SELECT flowstate.create_view('public.per_minute', $$
    SELECT k, date_bin('1 minute', ts, '2026-01-01') AS minute,
           count(*) AS n, sum(v) AS total, avg(v) AS mean, min(v) AS lo, max(v) AS hi
      FROM public.events GROUP BY 1, 2$$);

-- 1,000 keys x 60 minutes, two rows each, in 12 transactions
DO $$
BEGIN
    FOR b IN 0 .. 11 LOOP
        INSERT INTO public.events
        SELECT '2026-01-01'::timestamptz + (i % 60) * interval '1 minute' + (i / 60000) * interval '1 second',
               (i / 60) % 1000, (i % 9973) * 0.5
          FROM generate_series(b * 10000, b * 10000 + 9999) i;
        COMMIT;
    END LOOP;
END
$$;
SELECT flowstate.wait_for();

SELECT groups, groups_in_memory, memory_bytes / groups_in_memory <= 160 AS at_most_160_bytes
  FROM flowstate.views WHERE view = 'public.per_minute'::regclass;

-- the view equals its batch query, after deletes of minima and maxima too
CREATE FUNCTION public.differing() RETURNS bigint
LANGUAGE sql AS $$
    SELECT count(*) FROM public.per_minute v
      FULL JOIN (SELECT k, date_bin('1 minute', ts, '2026-01-01') AS minute,
                        count(*) AS n, sum(v) AS total, avg(v) AS mean, min(v) AS lo, max(v) AS hi
                   FROM public.events GROUP BY 1, 2) b USING (k, minute)
     WHERE (v.n, v.total, v.mean, v.lo, v.hi) IS DISTINCT FROM (b.n, b.total, b.mean, b.lo, b.hi)
$$;
SELECT public.differing();
DELETE FROM public.events WHERE k < 500 AND v = (SELECT max(v) FROM public.events);
DELETE FROM public.events WHERE k % 7 = 0 AND ts < '2026-01-01 00:30:00+00';
UPDATE public.events SET v = NULL WHERE k % 11 = 0;
SELECT flowstate.wait_for();
SELECT public.differing();
SELECT groups FROM flowstate.views WHERE view = 'public.per_minute'::regclass;

SELECT flowstate.drop_view('public.per_minute');
DROP FUNCTION public.differing();
DROP TABLE public.events;

-- group keys of any length: a text key of 70,000 bytes (more than a 16-bit
-- length holds) beside short ones
CREATE TABLE public.docs (body text, n int);
ALTER TABLE public.docs REPLICA IDENTITY FULL;
ALTER TABLE public.docs ALTER COLUMN body SET STORAGE EXTERNAL;
SELECT flowstate.create_view('public.per_body', $$
    SELECT body, count(*) AS n, sum(n) AS total, max(n) AS hi FROM public.docs GROUP BY body$$);
INSERT INTO public.docs SELECT repeat('x', 70000), i FROM generate_series(1, 3) i;
INSERT INTO public.docs SELECT 'short', i FROM generate_series(1, 4) i;
INSERT INTO public.docs SELECT repeat('y', 65536) || 'z', 7;
SELECT flowstate.wait_for();
SELECT length(body), n, total, hi FROM public.per_body ORDER BY 1;
DELETE FROM public.docs WHERE n = 3;
SELECT flowstate.wait_for();
SELECT length(body), n, total, hi FROM public.per_body ORDER BY 1;
SELECT length(body), count(*) AS n, sum(n) AS total, max(n) AS hi FROM public.docs GROUP BY body ORDER BY 1;
SELECT flowstate.drop_view('public.per_body');
DROP TABLE public.docs;
