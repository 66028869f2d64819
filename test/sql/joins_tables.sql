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

-- rows of the source changed before the dimension in one transaction
BEGIN;
DELETE FROM public.shipments WHERE region = 'e' AND id % 2 = 0;
UPDATE public.shipments SET weight = weight + 1 WHERE region = 'e';
UPDATE public.regions SET manager = 'zed' WHERE code = 'e';
COMMIT;
-- a column added with a default; the key's index rebuilt concurrently
ALTER TABLE public.regions ADD COLUMN tier int NOT NULL DEFAULT 7;
SELECT flowstate.create_view('public.weight_by_tier', $$
    SELECT r.tier, count(*) AS n FROM shipments s JOIN regions r ON r.code = s.region GROUP BY r.tier $$) IS NOT NULL AS created;
REINDEX INDEX CONCURRENTLY public.regions_pkey;
INSERT INTO public.shipments SELECT i, (ARRAY['e', 'x', 'w'])[1 + i % 3], i FROM generate_series(50, 59) i;
SELECT flowstate.wait_for(timeout => '30s');
SELECT * FROM public.weight_by_manager ORDER BY 1;
SELECT * FROM public.weight_by_tier ORDER BY 1;
SELECT r.tier, count(*) AS n FROM shipments s JOIN regions r ON r.code = s.region GROUP BY r.tier ORDER BY 1;
SELECT * FROM pg_temp.check_views();
SELECT view, error, count(*) AS dead_letters FROM flowstate.dead_letters
 WHERE view IN ('public.weight_by_manager'::regclass, 'public.weight_by_name'::regclass,
                'public.weight_by_tier'::regclass)
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT flowstate.drop_view('public.weight_by_tier');

-- keys equal but not alike (numeric 1.0 and 1.00)
CREATE TABLE public.grades (code numeric PRIMARY KEY, label text NOT NULL) WITH (user_catalog_table = true);
ALTER TABLE public.grades REPLICA IDENTITY FULL;
CREATE TABLE public.marks (id int PRIMARY KEY, code numeric, points int NOT NULL);
ALTER TABLE public.marks REPLICA IDENTITY FULL;
CREATE INDEX ON public.marks (code);
INSERT INTO public.grades VALUES (1.0, 'one'), (2.0, 'two');
INSERT INTO public.marks VALUES (1, 1.00, 10), (2, 2, 20);
SELECT flowstate.create_view('public.points_by_label', $$
    SELECT g.label, count(*) AS n, sum(m.points) AS points FROM marks m JOIN grades g ON g.code = m.code GROUP BY g.label $$) IS NOT NULL AS created;
SELECT flowstate.wait_for(timeout => '30s');
UPDATE public.grades SET label = 'uno' WHERE code = 1.0;
DELETE FROM public.marks WHERE id = 1;
SELECT flowstate.wait_for(timeout => '30s');
SELECT * FROM public.points_by_label ORDER BY 1;
SELECT flowstate.drop_view('public.points_by_label');
DROP TABLE public.marks, public.grades;

-- a view of more groups than its memory holds: groups evicted to the state
-- table, then recomputed by a change of the dimension
CREATE TABLE public.labels (code int PRIMARY KEY, label text NOT NULL) WITH (user_catalog_table = true);
ALTER TABLE public.labels REPLICA IDENTITY FULL;
CREATE TABLE public.items (id int PRIMARY KEY, code int, w int NOT NULL);
ALTER TABLE public.items REPLICA IDENTITY FULL;
CREATE INDEX ON public.items (code);
INSERT INTO public.labels SELECT i, 'l' || i FROM generate_series(0, 999) i;
INSERT INTO public.items SELECT i, i % 1000, i FROM generate_series(1, 20000) i;
SELECT flowstate.create_view('public.per_item', $$
    SELECT i.id, count(*) AS n, max(l.label) AS label FROM items i JOIN labels l ON l.code = i.code GROUP BY i.id $$,
    memory_limit => '1MB') IS NOT NULL AS created;
SELECT flowstate.wait_for(timeout => '60s');
UPDATE public.labels SET label = 'zz' WHERE code < 100;
SELECT flowstate.wait_for(timeout => '60s');
SELECT count(*) AS differences FROM (
    (SELECT * FROM public.per_item EXCEPT ALL
     SELECT i.id, count(*), max(l.label) FROM items i JOIN labels l ON l.code = i.code GROUP BY i.id)
    UNION ALL
    (SELECT i.id, count(*), max(l.label) FROM items i JOIN labels l ON l.code = i.code GROUP BY i.id
     EXCEPT ALL SELECT * FROM public.per_item)) d;
SELECT status, last_error FROM flowstate.views WHERE view = 'public.per_item'::regclass;
SELECT flowstate.drop_view('public.per_item');
DROP TABLE public.items, public.labels;

-- a transaction large enough to be decoded while in progress: the views
-- that join rebuild after its commit
ALTER SYSTEM SET logical_decoding_work_mem = '64kB';
SELECT pg_reload_conf();
SELECT pg_sleep(1);
INSERT INTO public.shipments SELECT i, (ARRAY['e', 'x', 'w'])[1 + i % 3], i FROM generate_series(1000, 5999) i;
SELECT flowstate.wait_for(timeout => '60s');
ALTER SYSTEM RESET logical_decoding_work_mem;
SELECT pg_reload_conf();
SELECT * FROM public.weight_by_manager ORDER BY 1;
SELECT * FROM pg_temp.check_views();

-- the joined table's index built again while the decoder is behind (it
-- decodes transactions committed before, as of when that index was another)
SELECT format('INSERT INTO public.shipments SELECT i, (ARRAY[''e'', ''x'', ''w''])[1 + i %% 3], i %% 1000'
              ' FROM generate_series(%s, %s) i', k * 20000, k * 20000 + 19999)
  FROM generate_series(5, 19) k \gexec
REINDEX INDEX CONCURRENTLY public.regions_pkey;
SELECT flowstate.wait_for(timeout => '120s');
SELECT * FROM public.weight_by_manager ORDER BY 1;
SELECT * FROM pg_temp.check_views();
SELECT view, error, count(*) AS dead_letters FROM flowstate.dead_letters
 WHERE view IN ('public.weight_by_manager'::regclass, 'public.weight_by_name'::regclass)
 GROUP BY 1, 2 ORDER BY 1, 2;
DELETE FROM public.shipments WHERE id >= 100000;

-- the joined table keeps what the views need while they exist
SELECT public.try($$ALTER TABLE public.regions RESET (user_catalog_table)$$);
SELECT public.try($$ALTER TABLE public.regions SET (user_catalog_table = off, fillfactor = 90)$$);
SELECT public.try($$ALTER TABLE public.regions REPLICA IDENTITY DEFAULT$$);
ALTER TABLE public.regions SET (user_catalog_table = true, fillfactor = 90);

-- a user catalog table takes no INSERT ... ON CONFLICT
SELECT public.try($$INSERT INTO public.regions VALUES ('w', 'west', 'x') ON CONFLICT (code) DO NOTHING$$);

SELECT flowstate.drop_view('public.weight_by_manager');
SELECT flowstate.drop_view('public.weight_by_name');
DROP TABLE public.shipments, public.regions;
