-- The correctness contract: after any sequence of INSERT, UPDATE, DELETE and
-- TRUNCATE, every continuous view equals its defining query run as a batch
-- query over the same rows.  Every native aggregate, over every input type,
-- with every window form, NULLs, numerics of mixed scales, rows moving between
-- groups and windows, and deletes of the current minimum and maximum.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE TABLE public.readings (
    id serial PRIMARY KEY,
    ts timestamptz NOT NULL,
    lts timestamp NOT NULL,
    g text,
    h int,
    i2 int2, i4 int4, i8 int8,
    f4 float4, f8 float8,
    n numeric,
    b bool,
    d date,
    tx text COLLATE "C",
    tl text COLLATE "und-x-icu"
);
ALTER TABLE public.readings REPLICA IDENTITY FULL;

-- churn(ops, seed): a deterministic random mix of inserts (60%), updates that
-- move rows between groups, windows and days (20%) and deletes (20%); values
-- keep float sums exact, so floats compare exactly but for variances.
-- Timestamps fall on four New York days, one of them across the change to
-- daylight saving time (2026-03-08 02:00 local, 07:00 UTC).
CREATE FUNCTION public.churn(ops int, seed float8) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r float8;
    maxid int;
BEGIN
    PERFORM setseed(seed);
    FOR i IN 1 .. ops LOOP
        r := random();
        SELECT coalesce(max(id), 0) INTO maxid FROM public.readings;
        IF r < 0.6 OR maxid = 0 THEN
            INSERT INTO public.readings (ts, lts, g, h, i2, i4, i8, f4, f8, n, b, d, tx, tl)
            SELECT t, t AT TIME ZONE 'UTC',
                   (ARRAY['a', 'b', 'c', NULL])[1 + (random() * 3.99)::int],
                   (random() * 4)::int,
                   CASE WHEN random() < 0.1 THEN NULL ELSE (random() * 200 - 100)::int2 END,
                   CASE WHEN random() < 0.1 THEN NULL ELSE (random() * 2e6)::int4 - 1000000 END,
                   CASE WHEN random() < 0.1 THEN NULL ELSE (random() * 1e15)::int8 END,
                   CASE WHEN random() < 0.1 THEN NULL ELSE ((random() * 1000)::int / 4.0)::float4 END,
                   CASE WHEN random() < 0.1 THEN NULL ELSE ((random() * 1e6)::int / 8.0)::float8 END,
                   CASE WHEN random() < 0.1 THEN NULL
                        ELSE round((random() * 2000 - 1000)::numeric, (random() * 4)::int) END,
                   CASE WHEN random() < 0.1 THEN NULL ELSE random() < 0.7 END,
                   '2026-01-01'::date + (random() * 40)::int,
                   CASE WHEN random() < 0.1 THEN NULL ELSE substr(md5(random()::text), 1, 6) END,
                   (ARRAY['apple', 'Apple', '_apple', 'banana', 'Banana', 'éclair', 'eclair',
                          'Zebra', 'zebra', '10', '9', NULL])[1 + (random() * 11.99)::int]
              FROM (SELECT '2026-03-06 06:00:00+00'::timestamptz + (random() * 3)::int * interval '1 day'
                           + (random() * 5400)::int * interval '1 second' AS t) s;
        ELSIF r < 0.8 THEN
            UPDATE public.readings
               SET ts = ts + ((random() * 240)::int - 120) * interval '1 second'
                           + (random() * 1.6)::int * interval '1 day',
                   h = (random() * 4)::int,
                   d = d + (random() * 4)::int - 2,
                   tl = (ARRAY['apple', 'Apple', '_apple', 'Zebra', 'zebra', '9'])[1 + (random() * 5.99)::int],
                   lts = lts + ((random() * 240)::int - 120) * interval '1 second',
                   g = (ARRAY['a', 'b', 'c', NULL])[1 + (random() * 3.99)::int],
                   i4 = (random() * 2e6)::int4 - 1000000,
                   f8 = ((random() * 1e6)::int / 8.0)::float8,
                   n = round((random() * 2000 - 1000)::numeric, (random() * 4)::int),
                   b = random() < 0.5,
                   tx = substr(md5(random()::text), 1, 6)
             WHERE id = (SELECT id FROM public.readings
                          WHERE id >= (random() * maxid)::int ORDER BY id LIMIT 1);
        ELSE
            DELETE FROM public.readings
             WHERE id = (SELECT id FROM public.readings
                          WHERE id >= (random() * maxid)::int ORDER BY id LIMIT 1);
        END IF;
    END LOOP;
END
$$;

-- delete_extremes(): delete the rows holding the current minimum and maximum
-- of several columns in each group, the case deltas cannot settle alone
CREATE FUNCTION public.delete_extremes() RETURNS void
LANGUAGE sql AS $$
    DELETE FROM public.readings WHERE id IN (
        (SELECT DISTINCT ON (g) id FROM public.readings WHERE i4 IS NOT NULL ORDER BY g, i4)
        UNION (SELECT DISTINCT ON (g) id FROM public.readings WHERE f8 IS NOT NULL ORDER BY g, f8 DESC)
        UNION (SELECT DISTINCT ON (g) id FROM public.readings WHERE tx IS NOT NULL ORDER BY g, tx DESC)
        UNION (SELECT DISTINCT ON (g) id FROM public.readings WHERE n IS NOT NULL ORDER BY g, n DESC)
        UNION (SELECT DISTINCT ON (g) id FROM public.readings ORDER BY g, ts));
$$;

-- approx(x) and differences(view): the comparison with the batch query
\i test/oracle.sql

-- row_count(view): its rows
CREATE FUNCTION public.row_count(v regclass) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s', v) INTO n;
    RETURN n;
END
$$;

-- every view: rows that differ from the batch query (floats compared
-- exactly but for the variances of floats, which depend on the order of
-- addition), columns whose type differs from the batch query's, its rows
CREATE VIEW public.check_all AS
    SELECT view::text AS view,
           public.differences(view, CASE WHEN view::text = 'o_spread'
                                         THEN '{v_f4, vp_f8, sd_f8, sdp_f4}' ELSE '{}' END::text[])
             AS differences,
           public.type_differences(view) AS type_differences,
           public.row_count(view) AS rows
      FROM flowstate.view ORDER BY view_id;

SELECT public.churn(400, 0.11);

-- counts and sums over every numeric type; a group key that is NULL for some rows
SELECT flowstate.create_view('public.o_sums', $$
    SELECT g, count(*) AS n, count(i4) AS n_i4, sum(i2) AS s_i2, sum(i4) AS s_i4,
           sum(i8) AS s_i8, sum(f4) AS s_f4, sum(f8) AS s_f8, sum(n) AS s_n
      FROM public.readings GROUP BY g$$);
-- averages, in one-minute tumbling windows
SELECT flowstate.create_view('public.o_avgs', $$
    SELECT flowstate.tumble(ts, '1 minute') AS w, avg(i2) AS a_i2, avg(i4) AS a_i4,
           avg(i8) AS a_i8, avg(f4) AS a_f4, avg(f8) AS a_f8, avg(n) AS a_n
      FROM public.readings GROUP BY 1$$);
-- min and max of ordered types, with date_bin windows
SELECT flowstate.create_view('public.o_extremes', $$
    SELECT date_bin('15 minutes', ts, '2026-01-01') AS w, g,
           min(i2) AS lo_i2, max(i2) AS hi_i2, min(i4) AS lo_i4, max(i4) AS hi_i4,
           min(i8) AS lo_i8, max(i8) AS hi_i8, min(f4) AS lo_f4, max(f4) AS hi_f4,
           min(f8) AS lo_f8, max(f8) AS hi_f8, min(n) AS lo_n, max(n) AS hi_n,
           min(tx) AS lo_tx, max(tx) AS hi_tx, min(ts) AS lo_ts, max(ts) AS hi_ts,
           min(lts) AS lo_lts, max(lts) AS hi_lts, min(d) AS lo_d, max(d) AS hi_d
      FROM public.readings GROUP BY 1, 2$$);
-- min and max of text in collations other than "C": the column's (ICU) and
-- an expression's
SELECT flowstate.create_view('public.o_collations', $$
    SELECT h, min(tl) AS lo_tl, max(tl) AS hi_tl,
           min(g COLLATE "und-x-icu") AS lo_g, max(tl COLLATE "C") AS hi_tl_c
      FROM public.readings GROUP BY h$$);
-- the variance family over every input type
SELECT flowstate.create_view('public.o_spread', $$
    SELECT h, variance(i2) AS v_i2, var_samp(i4) AS vs_i4, var_pop(i8) AS vp_i8,
           variance(n) AS v_n, var_pop(n) AS vp_n, stddev(i4) AS sd_i4,
           stddev_samp(i8) AS sds_i8, stddev_pop(i2) AS sdp_i2, stddev(n) AS sd_n,
           variance(f4) AS v_f4, var_pop(f8) AS vp_f8, stddev(f8) AS sd_f8,
           stddev_pop(f4) AS sdp_f4
      FROM public.readings GROUP BY h$$);
-- booleans, FILTER, HAVING, expressions, and date_trunc windows of timestamps
SELECT flowstate.create_view('public.o_flags', $$
    SELECT date_trunc('hour', lts) AS hour, h % 2 AS parity, coalesce(g, '?') || '!' AS label,
           bool_and(b) AS all_b, bool_or(b) AS any_b, every(i4 > 0) AS all_pos,
           count(*) FILTER (WHERE i4 > 0) AS positives,
           sum(i8) FILTER (WHERE b) AS s_when_b
      FROM public.readings
     WHERE d <> '2026-01-05'
     GROUP BY 1, 2, 3
    HAVING count(*) > 3$$);
-- days of a named time zone, and expressions over aggregates
SELECT flowstate.create_view('public.o_days', $$
    SELECT date_trunc('day', ts AT TIME ZONE 'America/New_York') AS day, max(n) - min(n) AS range_n,
           round(avg(i4) * 2, 3) AS twice_avg, count(*) * 10 AS tens
      FROM public.readings GROUP BY 1$$);
-- no GROUP BY: one row
SELECT flowstate.create_view('public.o_total', $$
    SELECT count(*) AS n, sum(n) AS s_n, min(tx) AS lo_tx, max(f8) AS hi_f8,
           stddev(i4) AS sd_i4, bool_or(b) AS any_b
      FROM public.readings$$);
-- aggregates over one input, which keep shared fields once in shared
-- memory: count(*) and the row count, sum and avg, min and max, the
-- variance family, bool_and and bool_or, the same FILTER twice
SELECT flowstate.create_view('public.o_shared', $$
    SELECT g, count(*) AS n, count(f8) AS n_f8, sum(f8) AS s_f8, avg(f8) AS a_f8,
           min(f8) AS lo_f8, max(f8) AS hi_f8, sum(i4) AS s_i4, avg(i4) AS a_i4,
           sum(i4) FILTER (WHERE b) AS sb_i4, avg(i4) FILTER (WHERE b) AS ab_i4,
           count(*) FILTER (WHERE b) AS nb, count(*) FILTER (WHERE NOT b) AS nnb,
           min(i4) FILTER (WHERE b) AS lob_i4, max(i4) AS hi_i4, min(i4) AS lo_i4,
           bool_and(b) AS all_b, bool_or(b) AS any_b, sum(n) AS s_n, avg(n) AS a_n,
           min(tx) AS lo_tx, max(tx) AS hi_tx, variance(i2) AS v_i2, stddev(i2) AS sd_i2,
           sum(f4) AS s_f4, avg(f4) AS a_f4, var_pop(n) AS vp_n, stddev_pop(n) AS sdp_n
      FROM public.readings GROUP BY g$$);

SELECT flowstate.wait_for();
SELECT * FROM public.check_all;

-- inserts, updates and deletes
SELECT public.churn(1500, 0.22);
SELECT flowstate.wait_for();
SELECT * FROM public.check_all;

-- deletes of the current minima and maxima, again and again
SELECT public.delete_extremes();
SELECT public.delete_extremes();
SELECT public.churn(300, 0.33);
SELECT public.delete_extremes();
SELECT flowstate.wait_for();
SELECT * FROM public.check_all;
SELECT sum(recomputed_groups) > 0 AS recomputed FROM flowstate.views;

-- a transaction that inserts, moves and deletes the same rows
BEGIN;
SELECT public.churn(300, 0.44);
SELECT public.delete_extremes();
UPDATE public.readings SET g = 'b', ts = ts + interval '1 hour' WHERE g = 'a';
COMMIT;
SELECT flowstate.wait_for();
SELECT * FROM public.check_all;

-- TRUNCATE, rows after it in the same transaction, and more changes
BEGIN;
TRUNCATE public.readings;
SELECT public.churn(200, 0.55);
COMMIT;
SELECT flowstate.wait_for();
SELECT * FROM public.check_all;
SELECT public.churn(800, 0.66);
SELECT flowstate.wait_for();
SELECT * FROM public.check_all;

-- and the same once every view is flushed to its state table
SELECT pg_sleep(1.2);
SELECT * FROM public.check_all;
SELECT view, groups = public.row_count(view) OR view IN ('o_flags'::regclass) AS groups_ok,
       failed_rows, late_rows
  FROM flowstate.views ORDER BY view::text;

-- special float and numeric values come and go exactly as in the batch query
INSERT INTO public.readings (ts, lts, g, h, f4, f8, n)
VALUES ('2026-01-01 00:00:01+00', '2026-01-01 00:00:01', 'a', 1, 'Infinity', 'NaN', 'Infinity'),
       ('2026-01-01 00:00:02+00', '2026-01-01 00:00:02', 'a', 1, '-Infinity', 'Infinity', '-Infinity'),
       ('2026-01-01 00:00:03+00', '2026-01-01 00:00:03', 'b', 2, 'NaN', '-Infinity', 'NaN');
SELECT flowstate.wait_for();
SELECT * FROM public.check_all;
SELECT g, s_f4, s_f8, s_n FROM public.o_sums WHERE g IN ('a', 'b') ORDER BY g;
DELETE FROM public.readings WHERE n IN ('NaN', 'Infinity', '-Infinity');
SELECT flowstate.wait_for();
SELECT * FROM public.check_all;

-- the same values one transaction at a time: shared memory keeps whether a
-- sum has some, and the variance family how many (two NaNs and nothing
-- else: var_samp is NaN, not NULL)
INSERT INTO public.readings (ts, lts, g, h, f4, f8, n)
VALUES ('2026-01-01 00:00:04+00', '2026-01-01 00:00:04', 'c', 9, 'NaN', 'Infinity', 'NaN');
INSERT INTO public.readings (ts, lts, g, h, f4, f8, n)
VALUES ('2026-01-01 00:00:05+00', '2026-01-01 00:00:05', 'c', 9, 'NaN', 'Infinity', 'NaN');
INSERT INTO public.readings (ts, lts, g, h, f4, f8, n)
VALUES ('2026-01-01 00:00:06+00', '2026-01-01 00:00:06', 'c', 9, 'Infinity', '-Infinity', 'Infinity');
SELECT flowstate.wait_for();
SELECT * FROM public.check_all;
SELECT v_f4, vp_f8, v_n FROM public.o_spread WHERE h = 9;
DELETE FROM public.readings WHERE ts = '2026-01-01 00:00:06+00';
SELECT flowstate.wait_for();
SELECT * FROM public.check_all;
SELECT g, s_f4, s_f8, s_n FROM public.o_sums WHERE g = 'c';
DELETE FROM public.readings WHERE ts = '2026-01-01 00:00:05+00';
SELECT flowstate.wait_for();
SELECT * FROM public.check_all;
SELECT g, s_f4, s_f8, s_n FROM public.o_sums WHERE g = 'c';
DELETE FROM public.readings WHERE ts = '2026-01-01 00:00:04+00';
SELECT flowstate.wait_for();
SELECT * FROM public.check_all;

DROP VIEW public.check_all;
DROP TABLE public.readings CASCADE;
