-- A table joined to a dimension table: the view follows the changes of
-- both, and equals its defining query run as a batch query after each
-- (test/t/033_table_joins.pl does the same under churn and crashes).
SET client_min_messages = warning;
SET TimeZone = 'UTC';

CREATE TABLE public.regions (code text PRIMARY KEY, name text NOT NULL, manager text)
    WITH (user_catalog_table = true);
ALTER TABLE public.regions REPLICA IDENTITY FULL;
CREATE TABLE public.shipments (id int PRIMARY KEY, region text, weight numeric NOT NULL);
ALTER TABLE public.shipments REPLICA IDENTITY FULL;
CREATE INDEX ON public.shipments (region);
INSERT INTO public.regions VALUES ('n', 'north', 'ann'), ('s', 'south', 'bob'), ('e', 'east', NULL);
INSERT INTO public.shipments SELECT i, (ARRAY['n', 's', 'e', 'w'])[1 + i % 4], i FROM generate_series(1, 40) i;

SELECT flowstate.create_view('public.weight_by_manager', $$
    SELECT r.manager, count(*) AS n, sum(s.weight) AS total, max(s.weight) AS heaviest
      FROM shipments s JOIN regions r ON r.code = s.region GROUP BY r.manager $$) IS NOT NULL AS created;
SELECT flowstate.create_view('public.weight_by_name', $$
    SELECT r.name, count(*) AS n, min(s.weight) AS lightest
      FROM shipments s LEFT JOIN regions r ON r.code = s.region AND r.manager IS NOT NULL
     GROUP BY r.name $$) IS NOT NULL AS created;

-- the view, then the rows it and its batch query do not share
CREATE FUNCTION pg_temp.check_views() RETURNS TABLE (view text, differences bigint)
LANGUAGE sql AS $$
    SELECT 'weight_by_manager', count(*) FROM (
        (SELECT * FROM public.weight_by_manager EXCEPT ALL
         SELECT r.manager, count(*), sum(s.weight), max(s.weight) FROM shipments s JOIN regions r ON r.code = s.region GROUP BY 1)
        UNION ALL
        (SELECT r.manager, count(*), sum(s.weight), max(s.weight) FROM shipments s JOIN regions r ON r.code = s.region GROUP BY 1
         EXCEPT ALL SELECT * FROM public.weight_by_manager)) d
    UNION ALL
    SELECT 'weight_by_name', count(*) FROM (
        (SELECT * FROM public.weight_by_name EXCEPT ALL
         SELECT r.name, count(*), min(s.weight) FROM shipments s LEFT JOIN regions r ON r.code = s.region AND r.manager IS NOT NULL GROUP BY 1)
        UNION ALL
        (SELECT r.name, count(*), min(s.weight) FROM shipments s LEFT JOIN regions r ON r.code = s.region AND r.manager IS NOT NULL GROUP BY 1
         EXCEPT ALL SELECT * FROM public.weight_by_name)) d
$$;

SELECT flowstate.wait_for(timeout => '30s');
SELECT * FROM public.weight_by_manager ORDER BY 1;
SELECT * FROM pg_temp.check_views();

-- a manager changes: the groups of the region's shipments move
UPDATE public.regions SET manager = 'cid' WHERE code = 'n';
SELECT flowstate.wait_for(timeout => '30s');
SELECT * FROM public.weight_by_manager ORDER BY 1;
SELECT * FROM pg_temp.check_views();

-- a region appears (its shipments join it), one goes, one gets a manager
INSERT INTO public.regions VALUES ('w', 'west', 'dee');
DELETE FROM public.regions WHERE code = 's';
UPDATE public.regions SET manager = 'eve' WHERE code = 'e';
SELECT flowstate.wait_for(timeout => '30s');
SELECT * FROM public.weight_by_manager ORDER BY 1;
SELECT * FROM public.weight_by_name ORDER BY 1;
SELECT * FROM pg_temp.check_views();

-- both tables in one transaction: the heaviest shipment of a region moves
-- out as the region changes hands, another comes in
BEGIN;
UPDATE public.shipments SET region = 'e' WHERE id = 40;
UPDATE public.regions SET manager = 'ann' WHERE code = 'w';
INSERT INTO public.shipments VALUES (41, 'w', 100);
DELETE FROM public.shipments WHERE region = 'n' AND id > 30;
COMMIT;
-- a region's key changes: its shipments join nothing, another region's
UPDATE public.regions SET code = 'x' WHERE code = 'n';
UPDATE public.shipments SET region = 'x' WHERE id IN (1, 5);
SELECT flowstate.wait_for(timeout => '30s');
SELECT * FROM public.weight_by_manager ORDER BY 1;
SELECT * FROM pg_temp.check_views();
SELECT view, status, recomputed_groups > 0 AS recomputed FROM flowstate.views ORDER BY view::text;

-- the dimension emptied and filled again: the views start over from it
BEGIN;
TRUNCATE public.regions;
INSERT INTO public.regions VALUES ('e', 'east', 'fay'), ('x', 'north', 'gus');
COMMIT;
SELECT flowstate.wait_for(timeout => '30s');
SELECT * FROM public.weight_by_manager ORDER BY 1;
SELECT * FROM pg_temp.check_views();

-- a user catalog table takes no INSERT ... ON CONFLICT
SELECT public.try($$INSERT INTO public.regions VALUES ('w', 'west', 'x') ON CONFLICT (code) DO NOTHING$$);

SELECT flowstate.drop_view('public.weight_by_manager');
SELECT flowstate.drop_view('public.weight_by_name');
DROP TABLE public.shipments, public.regions;
