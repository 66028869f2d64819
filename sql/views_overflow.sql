-- Float sums that overflow: where the batch query raises "value out of
-- range: overflow" (22003), the view refuses the row that would overflow
-- its group's state, records it as a dead letter, and keeps the group's
-- state without it.  Infinite and NaN inputs sum as in PostgreSQL.

SET TimeZone = 'UTC';

-- the batch query's errors
SELECT public.try($$SELECT sum(x) FROM (VALUES (1e308::float8), (1e308)) v (x)$$);
SELECT public.try($$SELECT sum(x) FROM (VALUES (3e38::float4), (3e38)) v (x)$$);
SELECT public.try($$SELECT var_samp(x) FROM (VALUES (1e200::float8), (-1e200)) v (x)$$);
SELECT public.try($$SELECT sum(x) FROM (VALUES ('Infinity'::float8), (1e308), (1e308)) v (x)$$);

CREATE TABLE public.measures (id int PRIMARY KEY, g int, x float8, y float4, z float8);
ALTER TABLE public.measures REPLICA IDENTITY FULL;
SELECT flowstate.create_view('public.measure_sums', $$
    SELECT g, count(*) AS n, sum(x) AS sx, sum(y) AS sy, sum(z) AS sz
      FROM public.measures GROUP BY g $$);
SELECT flowstate.create_view('public.measure_spread', $$
    SELECT g, count(*) AS n, var_samp(x) AS vx, stddev_pop(x) AS dx
      FROM public.measures GROUP BY g $$);
SELECT flowstate.create_view('public.measure_counts', $$
    SELECT g, count(*) AS n FROM public.measures GROUP BY g $$);
SELECT flowstate.wait_for();

-- across transactions: the second row is refused for every aggregate of
-- the view (n and sz too), and applied by the view that does not overflow
INSERT INTO public.measures VALUES (1, 1, 1e308, 1, 1);
INSERT INTO public.measures VALUES (2, 1, 1e308, 1, 1);
-- in one transaction (one batch)
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
SELECT * FROM public.measure_sums ORDER BY g;
SELECT * FROM public.measure_spread ORDER BY g;
SELECT * FROM public.measure_counts ORDER BY g;
SELECT view, payload, error, sqlstate FROM flowstate.dead_letters
 WHERE view::text LIKE 'measure%' ORDER BY view::text, id;
SELECT view, failed_rows FROM flowstate.views WHERE view::text LIKE 'measure%' ORDER BY 1;

-- retraction: deleting an applied row subtracts it; a delete whose
-- subtraction would overflow (the rows left overflow the batch query too)
-- is refused likewise, and the row stays in the group
INSERT INTO public.measures VALUES (20, 7, 1e308, 1, 1), (21, 7, -1e308, 1, 1);
INSERT INTO public.measures VALUES (22, 7, -1e308, 1, 1);
SELECT flowstate.wait_for();
SELECT g, n, sx FROM public.measure_sums WHERE g = 7;
DELETE FROM public.measures WHERE id = 5;
DELETE FROM public.measures WHERE id = 20;
SELECT flowstate.wait_for();
SELECT g, n, sx FROM public.measure_sums WHERE g IN (2, 7) ORDER BY g;
SELECT public.try('SELECT sum(x) FROM public.measures WHERE g = 7');
SELECT payload, error, sqlstate FROM flowstate.dead_letters
 WHERE view = 'public.measure_sums'::regclass AND payload LIKE '%"g": 7%' ORDER BY id;

-- a group recomputed from its table (a deleted maximum) refuses the same
-- rows again, without recording them twice
CREATE TABLE public.peaks (id int, g int, x float8, m int);
ALTER TABLE public.peaks REPLICA IDENTITY FULL;
SELECT flowstate.create_view('public.peak_sums', $$
    SELECT g, count(*) AS n, sum(x) AS sx, max(m) AS top FROM public.peaks GROUP BY g $$);
INSERT INTO public.peaks VALUES (1, 1, 1e308, 1), (2, 1, 1e308, 2), (3, 1, 1, 3);
SELECT flowstate.wait_for();
DELETE FROM public.peaks WHERE id = 3;
SELECT flowstate.wait_for();
SELECT * FROM public.peak_sums;
SELECT recomputed_groups > 0 AS recomputed, failed_rows FROM flowstate.views
 WHERE view = 'public.peak_sums'::regclass;

DROP TABLE public.measures CASCADE;
DROP TABLE public.peaks CASCADE;
