-- Float sums that overflow.  Where the batch query raises "value out of
-- range: overflow" (22003), the view's group is out of range: every read of
-- the view raises the same error, flowstate.views says so, and the group
-- follows its rows, so that deleting or correcting them brings the view
-- back, equal to its batch query.  Infinite and NaN inputs sum as in
-- PostgreSQL, without error.

SET TimeZone = 'UTC';

-- outcome(v): whether the view and its defining query run as a batch query
-- both fail (and how), or both succeed with the same rows
CREATE FUNCTION public.outcome(v regclass) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    def regclass := (SELECT definition FROM flowstate.view WHERE view = v);
    view_says text := 'ok';
    batch_says text := 'ok';
BEGIN
    BEGIN
        EXECUTE format('SELECT array_agg(t) FROM %s t', v);
    EXCEPTION WHEN OTHERS THEN
        view_says := SQLSTATE || ': ' || SQLERRM;
    END;
    BEGIN
        EXECUTE format('SELECT array_agg(t) FROM %s t', def);
    EXCEPTION WHEN OTHERS THEN
        batch_says := SQLSTATE || ': ' || SQLERRM;
    END;
    IF view_says = 'ok' AND batch_says = 'ok' THEN
        RETURN CASE WHEN public.same(v) = 0 THEN 'equal' ELSE 'different' END;
    END IF;
    RETURN 'view ' || view_says || ' | batch ' || batch_says;
END
$$;

-- the batch query's errors
SELECT public.try($$SELECT sum(x) FROM (VALUES (1e308::float8), (1e308)) v (x)$$);
SELECT public.try($$SELECT sum(x) FROM (VALUES (3e38::float4), (3e38)) v (x)$$);
SELECT public.try($$SELECT var_samp(x) FROM (VALUES (1e200::float8), (-1e200)) v (x)$$);
SELECT public.try($$SELECT sum(x) FROM (VALUES ('Infinity'::float8), (1e308), (1e308)) v (x)$$);

CREATE TABLE public.measures (id int PRIMARY KEY, g int, x float8, y float4, z float8);
ALTER TABLE public.measures REPLICA IDENTITY FULL;
SELECT flowstate.create_view('public.measure_sums', $$
    SELECT g, count(*) AS n, sum(x) AS sx, sum(y) AS sy, avg(z) AS az
      FROM public.measures GROUP BY g $$);
SELECT flowstate.create_view('public.measure_spread', $$
    SELECT g, count(*) AS n, var_samp(x) AS vx, stddev_pop(x) AS dx
      FROM public.measures GROUP BY g $$);
SELECT flowstate.create_view('public.measure_counts', $$
    SELECT g, count(*) AS n FROM public.measures GROUP BY g $$);
SELECT flowstate.wait_for();

-- across transactions
INSERT INTO public.measures VALUES (1, 1, 1e308, 1, 1);
INSERT INTO public.measures VALUES (2, 1, 1e308, 1, 1);
-- in one transaction
INSERT INTO public.measures VALUES (3, 2, -1e308, 1, 1), (4, 2, -1e308, 1, 1), (5, 2, 5, 1, 1);
-- float4: 3e38 + 3e38 is beyond its range
INSERT INTO public.measures VALUES (6, 3, 1, 3e38, 1), (7, 3, 1, 3e38, 1);
-- the variance's sum of squares overflows long before the sum
INSERT INTO public.measures VALUES (8, 4, 1e200, 1, 1), (9, 4, -1e200, 1, 1);
-- infinite inputs: no overflow, as in PostgreSQL
INSERT INTO public.measures VALUES (10, 5, 'Infinity', 1, 1), (11, 5, 1e308, 1, 1),
                                   (12, 5, 1e308, 1, 1), (13, 6, 'NaN', 1, 1),
                                   (14, 6, 1, 1, 1);
SELECT flowstate.wait_for();

-- reads fail as the batch query does, saying how many groups are out of
-- range; a view without float sums is not concerned; no row is refused
SELECT public.outcome('public.measure_sums');
SELECT public.outcome('public.measure_spread');
SELECT public.outcome('public.measure_counts');
SELECT public.try('SELECT * FROM public.measure_sums WHERE g = 6');
SELECT view, status, last_error, failed_rows FROM flowstate.views
 WHERE view::text LIKE 'measure%' ORDER BY 1;
SELECT count(*) AS dead_letters FROM flowstate.dead_letters WHERE view::text LIKE 'measure%';

-- deleting a row of a group out of range recomputes the group from the
-- table: group 1 keeps one row, and both of its counts
DELETE FROM public.measures WHERE id = 2;
-- correcting one: group 3's float4 sum comes back in range (no recompute
-- needed: its state is its exact sum)
UPDATE public.measures SET y = 1 WHERE id = 7;
SELECT flowstate.wait_for();
SELECT public.outcome('public.measure_sums');
DELETE FROM public.measures WHERE id = 4;
SELECT flowstate.wait_for();
SELECT public.outcome('public.measure_sums');
SELECT * FROM public.measure_sums ORDER BY g;
SELECT recomputed_groups AS recomputed FROM flowstate.views
 WHERE view = 'public.measure_sums'::regclass;

-- var_samp over -1e308 and 5 still overflows, in the batch query too
SELECT public.outcome('public.measure_spread');
DELETE FROM public.measures WHERE id IN (3, 5, 9);
SELECT flowstate.wait_for();
SELECT public.outcome('public.measure_spread');
SELECT view, status, last_error FROM flowstate.views
 WHERE view::text LIKE 'measure%' ORDER BY 1;

-- the order of the rows: in range, out of range once a row leaves, in
-- range again once a second one does
INSERT INTO public.measures VALUES (20, 7, 1e308, 1, 1), (21, 7, -1e308, 1, 1);
INSERT INTO public.measures VALUES (22, 7, -1e308, 1, 1);
SELECT flowstate.wait_for();
SELECT public.outcome('public.measure_sums');
DELETE FROM public.measures WHERE id = 20;
SELECT flowstate.wait_for();
SELECT public.outcome('public.measure_sums');
DELETE FROM public.measures WHERE id = 21;
SELECT flowstate.wait_for();
SELECT public.outcome('public.measure_sums');
SELECT g, n, sx FROM public.measure_sums WHERE g = 7;

-- rows that overflow and leave in one transaction
BEGIN;
INSERT INTO public.measures VALUES (30, 8, 1e308, 1, 1), (31, 8, 1e308, 1, 1);
DELETE FROM public.measures WHERE id = 30;
COMMIT;
SELECT flowstate.wait_for();
SELECT public.outcome('public.measure_sums');
SELECT g, n, sx FROM public.measure_sums WHERE g = 8;

-- a TRUNCATE empties every group, out of range or not
INSERT INTO public.measures VALUES (40, 9, 1e308, 1, 1), (41, 9, 1e308, 1, 1);
SELECT flowstate.wait_for();
SELECT public.outcome('public.measure_sums');
TRUNCATE public.measures;
SELECT flowstate.wait_for();
SELECT public.outcome('public.measure_sums');
SELECT view, status FROM flowstate.views WHERE view::text LIKE 'measure%' ORDER BY 1;

-- a group recomputed for another reason (a deleted maximum) is out of
-- range again if its rows are; a view created over such rows too
CREATE TABLE public.peaks (id int, g int, x float8, m int);
ALTER TABLE public.peaks REPLICA IDENTITY FULL;
INSERT INTO public.peaks VALUES (1, 1, 1e308, 1), (2, 1, 1e308, 2), (3, 1, 1, 3);
SELECT flowstate.create_view('public.peak_sums', $$
    SELECT g, count(*) AS n, sum(x) AS sx, max(m) AS top FROM public.peaks GROUP BY g $$);
SELECT flowstate.wait_for();
SELECT public.outcome('public.peak_sums');
DELETE FROM public.peaks WHERE id = 3;
SELECT flowstate.wait_for();
SELECT public.outcome('public.peak_sums');
DELETE FROM public.peaks WHERE id = 2;
SELECT flowstate.wait_for();
SELECT public.outcome('public.peak_sums');
SELECT * FROM public.peak_sums;

-- precision: a sum that loses its large terms would keep the rounding
-- errors they made (1e20 + 1 - 1e20 is 0 in floats); the group is
-- recomputed from the rows left instead, as the batch query sums them
INSERT INTO public.measures VALUES (50, 10, 1e20, 1, 1e20), (51, 10, 1, 1, 1), (52, 10, 2, 1, 2);
INSERT INTO public.measures VALUES (53, 11, 1e10, 1, 1e10), (54, 11, 1, 1, 1), (55, 11, 2, 1, 2);
SELECT flowstate.wait_for();
DELETE FROM public.measures WHERE id IN (50, 53);
BEGIN;
INSERT INTO public.measures VALUES (56, 12, 3, 1, 3), (57, 12, 1e20, 1, 1e20);
DELETE FROM public.measures WHERE id = 57;
COMMIT;
SELECT flowstate.wait_for();
SELECT g, n, sx, az FROM public.measure_sums WHERE g >= 10 ORDER BY g;
SELECT g, n, vx, dx FROM public.measure_spread WHERE g >= 10 ORDER BY g;
SELECT public.outcome('public.measure_sums'), public.outcome('public.measure_spread');

DROP TABLE public.measures CASCADE;
DROP TABLE public.peaks CASCADE;
DROP FUNCTION public.outcome(regclass);
