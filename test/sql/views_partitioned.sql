-- Partitioned tables as sources: the view follows every partition, whatever
-- its row type, through updates that move rows between partitions,
-- TRUNCATE of a partition, ATTACH, DETACH and DROP of partitions.
-- Each step ends with the view compared to its batch query (same()).

CREATE TABLE public.events (
    ts timestamptz NOT NULL,
    region text NOT NULL,
    kind text,
    amount int
) PARTITION BY RANGE (ts);
CREATE TABLE public.events_d1 PARTITION OF public.events
    FOR VALUES FROM ('2026-03-01 00:00+00') TO ('2026-03-02 00:00+00');
-- a day partitioned again, by region
CREATE TABLE public.events_d2 PARTITION OF public.events
    FOR VALUES FROM ('2026-03-02 00:00+00') TO ('2026-03-03 00:00+00') PARTITION BY LIST (region);
CREATE TABLE public.events_d2_north PARTITION OF public.events_d2 FOR VALUES IN ('north');
CREATE TABLE public.events_d2_rest PARTITION OF public.events_d2 DEFAULT;
-- a day whose table has its columns in another order, and a dropped one
CREATE TABLE public.events_d3 (amount int, junk text, kind text, region text NOT NULL, ts timestamptz NOT NULL);
ALTER TABLE public.events_d3 DROP COLUMN junk;
ALTER TABLE public.events_d3 REPLICA IDENTITY FULL;
ALTER TABLE public.events ATTACH PARTITION public.events_d3
    FOR VALUES FROM ('2026-03-03 00:00+00') TO ('2026-03-04 00:00+00');
CREATE TABLE public.events_other PARTITION OF public.events DEFAULT;

-- every partition must log whole old rows
SELECT public.try($$SELECT flowstate.create_view('public.by_region', 'SELECT region, count(*) FROM public.events GROUP BY region')$$);
ALTER TABLE public.events_d1 REPLICA IDENTITY FULL;
ALTER TABLE public.events_d2_north REPLICA IDENTITY FULL;
ALTER TABLE public.events_d2_rest REPLICA IDENTITY FULL;
ALTER TABLE public.events_other REPLICA IDENTITY FULL;
-- ONLY reads none of a partitioned table's rows
SELECT public.try($$SELECT flowstate.create_view('public.by_region', 'SELECT region, count(*) FROM ONLY public.events GROUP BY region')$$);

-- rows before the views: a backfill reads every partition
INSERT INTO public.events
SELECT '2026-03-01 00:00+00'::timestamptz + i * interval '21 minutes',
       (ARRAY['north', 'south', 'east'])[1 + i % 3],
       (ARRAY['click', 'view'])[1 + i % 2],
       (i * 7) % 100
  FROM generate_series(0, 199) AS i;
SELECT tableoid::regclass AS partition, count(*) FROM public.events GROUP BY 1 ORDER BY 1;

CREATE INDEX ON public.events (region);
SELECT flowstate.create_view('public.by_region', $$
    SELECT region, kind, count(*) AS n, sum(amount) AS total,
           min(amount) AS smallest, max(amount) AS largest
      FROM public.events GROUP BY region, kind $$);
SELECT flowstate.create_view('public.by_hour', $$
    SELECT flowstate.tumble(ts, '6 hours') AS bucket, count(*) AS n,
           min(amount) AS smallest, max(ts) AS latest
      FROM public.events WHERE kind = 'click' GROUP BY bucket $$);
SELECT flowstate.wait_for();
SELECT status FROM flowstate.views WHERE view = 'public.by_region'::regclass;
SELECT public.same('public.by_region') AS by_region, public.same('public.by_hour') AS by_hour;
SELECT * FROM public.by_region ORDER BY region, kind;

-- new rows in every partition, the default one too
INSERT INTO public.events VALUES
    ('2026-03-01 05:00+00', 'north', 'click', 1000),
    ('2026-03-02 05:00+00', 'north', 'click', -5),
    ('2026-03-02 06:00+00', 'west', 'click', 3),
    ('2026-03-03 07:00+00', 'east', 'view', 2000),
    ('2026-04-01 00:00+00', 'south', 'click', -50);
SELECT flowstate.wait_for();
SELECT public.same('public.by_region') AS by_region, public.same('public.by_hour') AS by_hour;

-- updates that move rows between partitions (a delete from one, an insert into the other)
UPDATE public.events SET ts = ts + interval '1 day' WHERE amount BETWEEN 10 AND 30 AND ts < '2026-03-03 00:00+00';
UPDATE public.events SET region = 'north' WHERE region = 'west';
UPDATE public.events SET ts = '2026-05-01 00:00+00', amount = amount + 1 WHERE ts >= '2026-03-03 00:00+00' AND kind = 'click';
SELECT tableoid::regclass AS partition, count(*) FROM public.events GROUP BY 1 ORDER BY 1;
SELECT flowstate.wait_for();
SELECT public.same('public.by_region') AS by_region, public.same('public.by_hour') AS by_hour;

-- deletes of minima and maxima: groups recomputed from every partition
DELETE FROM public.events WHERE amount IN (-50, -5, 0, 1000, 2000);
SELECT flowstate.wait_for();
SELECT public.same('public.by_region') AS by_region, public.same('public.by_hour') AS by_hour;
SELECT * FROM public.by_region ORDER BY region, kind;

-- TRUNCATE of one partition: the others' rows stay
TRUNCATE public.events_d1;
SELECT flowstate.wait_for();
SELECT public.same('public.by_region') AS by_region, public.same('public.by_hour') AS by_hour;

-- a new partition gets REPLICA IDENTITY FULL
CREATE TABLE public.events_d4 PARTITION OF public.events
    FOR VALUES FROM ('2026-03-04 00:00+00') TO ('2026-03-05 00:00+00');
SELECT relreplident FROM pg_class WHERE oid = 'public.events_d4'::regclass;
INSERT INTO public.events VALUES ('2026-03-04 01:00+00', 'south', 'click', 77);
UPDATE public.events SET amount = 78 WHERE amount = 77;

-- ATTACH of a table that holds rows: they join the view
CREATE TABLE public.events_d5 (kind text, ts timestamptz NOT NULL, amount int, region text NOT NULL);
INSERT INTO public.events_d5
SELECT 'click', '2026-03-05 00:00+00'::timestamptz + i * interval '1 hour', i - 3, 'east'
  FROM generate_series(0, 23) AS i;
SELECT public.try($$ALTER TABLE public.events ATTACH PARTITION public.events_d5 FOR VALUES FROM ('2026-03-05 00:00+00') TO ('2026-03-06 00:00+00')$$);
ALTER TABLE public.events_d5 REPLICA IDENTITY FULL;
ALTER TABLE public.events ATTACH PARTITION public.events_d5 FOR VALUES FROM ('2026-03-05 00:00+00') TO ('2026-03-06 00:00+00');
SELECT flowstate.wait_for();
SELECT public.same('public.by_region') AS by_region, public.same('public.by_hour') AS by_hour;
SELECT * FROM public.by_region WHERE region = 'east' ORDER BY kind;
DELETE FROM public.events WHERE amount = -3;
SELECT flowstate.wait_for();
SELECT public.same('public.by_region') AS by_region, public.same('public.by_hour') AS by_hour;

-- a partition's replica identity is the views' as the table's is
SELECT public.try($$ALTER TABLE public.events_d2_north REPLICA IDENTITY DEFAULT$$);

-- DETACH: its rows leave the view, and its later changes stay out of it
ALTER TABLE public.events DETACH PARTITION public.events_d2;
SELECT flowstate.wait_for();
SELECT public.same('public.by_region') AS by_region, public.same('public.by_hour') AS by_hour;
INSERT INTO public.events_d2 VALUES ('2026-03-02 10:00+00', 'north', 'click', -100);
SELECT flowstate.wait_for();
SELECT public.same('public.by_region') AS by_region, public.same('public.by_hour') AS by_hour;

-- DROP of a partition: its rows leave the view
DROP TABLE public.events_d3;
SELECT flowstate.wait_for();
SELECT public.same('public.by_region') AS by_region, public.same('public.by_hour') AS by_hour;

-- and the changes go on
INSERT INTO public.events VALUES ('2026-03-01 08:00+00', 'north', 'view', 5), ('2026-03-05 08:30+00', 'east', 'click', -7);
DELETE FROM public.events WHERE ts = '2026-03-05 02:00+00';
SELECT flowstate.wait_for();
SELECT public.same('public.by_region') AS by_region, public.same('public.by_hour') AS by_hour;
SELECT * FROM public.by_region ORDER BY region, kind;

-- a view over a partition of a partitioned table with its own views
SELECT flowstate.create_view('public.d5_count', $$SELECT count(*) AS n, min(amount) AS smallest FROM public.events_d5$$);
DELETE FROM public.events WHERE amount = -7;
SELECT flowstate.wait_for();
SELECT public.same('public.d5_count') AS d5_count, public.same('public.by_region') AS by_region;

-- the owner needs SELECT on the partitioned table only, as for the batch
-- query; a recompute reads the partitions through it
CREATE ROLE regress_part_owner;
GRANT SELECT ON public.events TO regress_part_owner;
GRANT CREATE ON SCHEMA public TO regress_part_owner;
SET ROLE regress_part_owner;
SELECT flowstate.create_view('public.owned', $$
    SELECT region, count(*) AS n, min(amount) AS smallest FROM public.events GROUP BY region $$);
RESET ROLE;
SELECT flowstate.wait_for();
DELETE FROM public.events
 WHERE region = 'south' AND amount = (SELECT min(amount) FROM public.events WHERE region = 'south');
SELECT flowstate.wait_for();
SET ROLE regress_part_owner;
SELECT public.same('public.owned') AS owned;
SELECT flowstate.drop_view('public.owned');
RESET ROLE;
REVOKE CREATE ON SCHEMA public FROM regress_part_owner;
REVOKE SELECT ON public.events FROM regress_part_owner;
DROP ROLE regress_part_owner;

SELECT flowstate.drop_view('public.d5_count');
SELECT flowstate.drop_view('public.by_hour');
DROP TABLE public.events CASCADE;
DROP TABLE public.events_d2;
SELECT count(*) FROM flowstate.view;
