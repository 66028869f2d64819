-- Partial states in SQL: a view's groups with their partial states
-- (flowstate.partial_states), merged (flowstate.combine) and finalized
-- (flowstate.finalize) into coarser windows equal the batch query at that
-- window, for every native aggregate, from durable groups and from groups
-- only shared memory holds; states of another view are refused; only
-- those who may read the view read its states.  And reads of one key's
-- windows take those groups only, by their keys.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE TABLE public.sales (
    id serial PRIMARY KEY,
    ts timestamptz NOT NULL,
    region text,
    i2 int2, i4 int4, i8 int8,
    f4 float4, f8 float8,
    n numeric,
    b bool,
    tx text COLLATE "C",
    d date
);
ALTER TABLE public.sales REPLICA IDENTITY FULL;
CREATE INDEX ON public.sales (region, ts);

-- sales(first, last, start, step): rows first..last, one every step from
-- start, over four regions (one NULL); floats are exact sums of eighths
CREATE FUNCTION public.sales(first int, last int, start timestamptz, step interval)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO public.sales (ts, region, i2, i4, i8, f4, f8, n, b, tx, d)
    SELECT start + (i - first) * step,
           (ARRAY['north', 'south', 'east', NULL])[1 + i % 4],
           CASE WHEN i % 7 = 0 THEN NULL ELSE i % 200 - 100 END,
           (i * 7919) % 100000 - 50000,
           i::int8 * 1000000007,
           CASE WHEN i % 11 = 0 THEN NULL ELSE (i % 1000) / 4.0 END,
           (i * 31 % 100000) / 8.0,
           round(i * 3.14159, i % 4),
           CASE WHEN i % 13 = 0 THEN NULL ELSE i % 3 <> 0 END,
           CASE WHEN i % 5 = 0 THEN NULL ELSE md5(i::text) END,
           '2026-01-01'::date + i % 40
      FROM generate_series(first, last) AS i
$$;

-- approx9(x): floats to 9 significant digits (variances of floats depend
-- on the order of addition)
CREATE FUNCTION public.approx9(x float8) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN x IS NULL OR x = 0 OR x IN ('NaN', 'Infinity', '-Infinity') THEN x::numeric
                ELSE round(x::numeric, 8 - floor(log(abs(x::numeric)))::int) END
$$;

-- every native aggregate over every input type it takes; fv_*: variances
-- of floats
\set aggs 'count(*) AS n, count(i4) AS n_i4, sum(i2) AS s_i2, sum(i4) AS s_i4, sum(i8) AS s_i8, sum(f4) AS s_f4, sum(f8) AS s_f8, sum(n) AS s_n, avg(i2) AS a_i2, avg(i4) AS a_i4, avg(i8) AS a_i8, avg(f4) AS a_f4, avg(f8) AS a_f8, avg(n) AS a_n, min(i2) AS lo_i2, max(i4) AS hi_i4, min(i8) AS lo_i8, max(f4) AS hi_f4, min(f8) AS lo_f8, max(n) AS hi_n, min(tx) AS lo_tx, max(tx) AS hi_tx, min(ts) AS lo_ts, max(d) AS hi_d, variance(i2) AS v_i2, var_samp(i4) AS vs_i4, var_pop(i8) AS vp_i8, variance(n) AS v_n, stddev(i4) AS sd_i4, stddev_samp(i8) AS sds_i8, stddev_pop(i2) AS sdp_i2, stddev_pop(n) AS sdp_n, variance(f4) AS fv_v_f4, var_pop(f8) AS fv_vp_f8, stddev(f8) AS fv_sd_f8, stddev_pop(f4) AS fv_sdp_f4, bool_and(b) AS all_b, bool_or(b) AS any_b, every(i4 > 0) AS all_pos, max(i4) - min(i4) AS spread_i4'

-- the view: per region and minute
SELECT flowstate.create_view('public.per_minute',
    'SELECT region, flowstate.tumble(ts, ''1 minute'') AS minute, ' || :'aggs' ||
    ' FROM public.sales GROUP BY 1, 2');

-- the batch query at one hour, and the view's partial states combined by
-- region and hour
CREATE VIEW public.hourly_batch AS
SELECT region, flowstate.tumble(ts, '1 hour') AS hour, :aggs
  FROM public.sales GROUP BY 1, 2;
SELECT string_agg(format('(f).%I', attname), ', ' ORDER BY attnum) AS fcols,
       string_agg(CASE WHEN attname LIKE 'fv\_%' THEN format('public.approx9(%I)', attname)
                       ELSE quote_ident(attname) END, ', ' ORDER BY attnum) AS cols
  FROM pg_attribute WHERE attrelid = 'public.per_minute'::regclass AND attnum > 2 \gset
CREATE VIEW public.hourly_combined AS
SELECT region, hour, :fcols
  FROM (SELECT (p.keys).region, flowstate.tumble((p.keys).minute, '1 hour') AS hour,
               flowstate.finalize(flowstate.combine(p.state), NULL::public.per_minute) AS f
          FROM flowstate.partial_states(NULL::public.per_minute) AS p
         GROUP BY 1, 2) c;

-- check(): rows the two do not share, and columns whose name or type differ
CREATE FUNCTION public.check_hourly(OUT rows bigint, OUT differences bigint,
                                    OUT type_differences bigint)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT count(*) INTO rows FROM public.hourly_combined;
    EXECUTE format('SELECT count(*) FROM ((SELECT region, hour, %1$s FROM public.hourly_combined
                                           EXCEPT ALL SELECT region, hour, %1$s FROM public.hourly_batch)
                                          UNION ALL
                                          (SELECT region, hour, %1$s FROM public.hourly_batch
                                           EXCEPT ALL SELECT region, hour, %1$s FROM public.hourly_combined)) d',
                   (SELECT string_agg(CASE WHEN attname LIKE 'fv\_%' THEN format('public.approx9(%I)', attname)
                                           ELSE quote_ident(attname) END, ', ' ORDER BY attnum)
                      FROM pg_attribute WHERE attrelid = 'public.per_minute'::regclass AND attnum > 2))
       INTO differences;
    SELECT count(*) INTO type_differences
      FROM ((SELECT attnum, attname, atttypid, attcollation FROM pg_attribute
              WHERE attrelid = 'public.hourly_combined'::regclass AND attnum > 0
             EXCEPT SELECT attnum, attname, atttypid, attcollation FROM pg_attribute
              WHERE attrelid = 'public.hourly_batch'::regclass AND attnum > 0)
            UNION ALL
            (SELECT attnum, attname, atttypid, attcollation FROM pg_attribute
              WHERE attrelid = 'public.hourly_batch'::regclass AND attnum > 0
             EXCEPT SELECT attnum, attname, atttypid, attcollation FROM pg_attribute
              WHERE attrelid = 'public.hourly_combined'::regclass AND attnum > 0)) t;
END
$$;

-- caught_up(): the view shows every row of the table, waited for without
-- flowstate.wait_for(), which asks for a flush
CREATE FUNCTION public.caught_up() RETURNS boolean
LANGUAGE sql AS $$
    SELECT public.wait_for($q$
        SELECT (SELECT (sum(n)::bigint, sum(s_i4)::bigint) FROM public.per_minute) IS NOT DISTINCT FROM
               (SELECT (count(*), sum(i4)) FROM public.sales) $q$)
$$;

-- durable groups: four hours of rows, flushed (every group in the state
-- table: the flush must come before the interval below grows to an hour)
SELECT public.sales(1, 400, '2026-11-30 06:00:00+00', '37 seconds');
SELECT flowstate.wait_for();
SELECT public.wait_durable();
SELECT state_table AS per_minute_state FROM flowstate.view WHERE view = 'public.per_minute'::regclass \gset
SELECT public.wait_for(format($q$
    SELECT (SELECT count(*) FROM %s) = (SELECT groups FROM flowstate.views
                                         WHERE view = 'public.per_minute'::regclass) $q$,
    :'per_minute_state')) AS all_groups_durable;
SELECT * FROM public.check_hourly();

-- then no more flushes: the next changes stay in shared memory, changing
-- durable groups and adding new ones
ALTER SYSTEM SET flowstate.flush_interval = '1h';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT public.sales(401, 700, '2026-11-30 07:00:13+00', '61 seconds');
DELETE FROM public.sales WHERE id % 17 = 0;
UPDATE public.sales SET ts = ts + interval '30 minutes', i4 = i4 + 1 WHERE id % 19 = 0;
SELECT public.caught_up();
SELECT state_table, definition FROM flowstate.view WHERE view = 'public.per_minute'::regclass \gset
SELECT count(*) FILTER (WHERE gid IS NOT NULL) > 0 AS durable_groups_changed,
       count(*) FILTER (WHERE gid IS NULL) > 0 AS new_groups
  FROM flowstate.unflushed_states(:'state_table'::regclass)
       AS u(gid bigint, live boolean, k1 text, k2 timestamptz, i bigint);
SELECT * FROM public.check_hourly();
-- the view itself, too
SELECT count(*) AS view_differences
  FROM ((SELECT region, minute, :cols FROM public.per_minute
         EXCEPT ALL SELECT region, minute, :cols FROM :definition)
        UNION ALL
        (SELECT region, minute, :cols FROM :definition
         EXCEPT ALL SELECT region, minute, :cols FROM public.per_minute)) d;

-- partial_states: the key columns of each group, aggregates left NULL;
-- finalize: the aggregate columns, keys left NULL
SELECT (p.keys).region, (p.keys).minute, (p.keys).n, (p.keys).spread_i4,
       (flowstate.finalize(p.state, NULL::public.per_minute)).n AS n,
       (flowstate.finalize(p.state, NULL::public.per_minute)).spread_i4 AS spread_i4,
       (flowstate.finalize(p.state, NULL::public.per_minute)).region AS no_region
  FROM flowstate.partial_states(NULL::public.per_minute) AS p
 WHERE (p.keys).region = 'north'
 ORDER BY 2 LIMIT 3;
-- the whole view combined: one group, as the batch query over every row
SELECT (f).n, (f).s_n, (f).a_i4, (f).lo_tx, (f).hi_d, (f).sd_i4, (f).all_b, (f).any_b
  FROM (SELECT flowstate.finalize(flowstate.combine(state), NULL::public.per_minute) AS f
          FROM flowstate.partial_states(NULL::public.per_minute)) c;
SELECT count(*) AS n, sum(n) AS s_n, avg(i4) AS a_i4, min(tx) AS lo_tx, max(d) AS hi_d,
       stddev(i4) AS sd_i4, bool_and(b) AS all_b, bool_or(b) AS any_b
  FROM public.sales;
-- no states, no state; a NULL state, a NULL row
SELECT flowstate.combine(state) IS NULL AS no_state
  FROM flowstate.partial_states(NULL::public.per_minute) WHERE false;
SELECT flowstate.finalize(NULL, NULL::public.per_minute) IS NULL AS no_row;

-- a read of one region's minutes passes the region to the view's functions,
-- which take that region's groups only; it equals the batch query
-- plan_calls(query): the calls of flowstate.durable() and
-- flowstate.unflushed_states() in the query's plan
CREATE FUNCTION public.plan_calls(query text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    line text;
    call text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || query LOOP
        call := substring(line FROM 'flowstate\.(?:durable|unflushed_states)\([^)]*\)');
        IF call IS NOT NULL THEN
            RETURN NEXT regexp_replace(call, 'view_[0-9]+_state', 'view_N_state', 'g');
        END IF;
    END LOOP;
END
$$;
SELECT * FROM public.plan_calls($$SELECT * FROM public.per_minute WHERE region = 'north'
                                   ORDER BY minute DESC LIMIT 60$$);
SELECT count(*) AS point_differences
  FROM ((SELECT minute, :cols FROM public.per_minute WHERE region = 'north'
         EXCEPT ALL SELECT minute, :cols FROM :definition WHERE region = 'north')
        UNION ALL
        (SELECT minute, :cols FROM :definition WHERE region = 'north'
         EXCEPT ALL SELECT minute, :cols FROM public.per_minute WHERE region = 'north')) d;
-- minutes and rows of a region: in the view, in the table
SELECT count(*) AS minutes, sum(n) AS rows FROM public.per_minute WHERE region = 'north';
SELECT count(DISTINCT flowstate.tumble(ts, '1 minute')) AS minutes, count(*) AS rows
  FROM public.sales WHERE region = 'north';
-- NULL keys are a group of their own (IS NULL is no condition passed on)
SELECT count(*) AS minutes, sum(n) AS rows FROM public.per_minute WHERE region IS NULL;
SELECT count(DISTINCT flowstate.tumble(ts, '1 minute')) AS minutes, count(*) AS rows
  FROM public.sales WHERE region IS NULL;
SELECT count(*) AS minutes, sum(n) AS rows FROM public.per_minute WHERE region = NULL;
-- a parameter of a prepared statement, too
PREPARE region_minutes(text) AS
    SELECT count(*) AS minutes, sum(n) AS rows FROM public.per_minute WHERE region = $1;
SET plan_cache_mode = force_generic_plan;
SELECT * FROM public.plan_calls('EXECUTE region_minutes(''south'')');
EXECUTE region_minutes('south');
SELECT count(DISTINCT flowstate.tumble(ts, '1 minute')) AS minutes, count(*) AS rows
  FROM public.sales WHERE region = 'south';
RESET plan_cache_mode;
DEALLOCATE region_minutes;
-- in a transaction snapshot, reads take every group of the view at once
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) AS minutes, sum(n) AS rows FROM public.per_minute WHERE region = 'east';
SELECT public.sales(701, 720, '2026-11-30 06:00:07+00', '13 seconds');
SELECT count(*) AS minutes, sum(n) AS rows FROM public.per_minute WHERE region = 'east';
COMMIT;
SELECT public.caught_up();
SELECT count(*) AS minutes, sum(n) AS rows FROM public.per_minute WHERE region = 'east';
SELECT count(DISTINCT flowstate.tumble(ts, '1 minute')) AS minutes, count(*) AS rows
  FROM public.sales WHERE region = 'east';

-- states of another view are refused, not misread; so is what is no state
SELECT flowstate.create_view('public.per_minute_too',
    'SELECT region, flowstate.tumble(ts, ''1 minute'') AS minute, ' || :'aggs' ||
    ' FROM public.sales GROUP BY 1, 2');
SELECT flowstate.wait_for();
-- (terse: the messages' details name the views' ids)
\set VERBOSITY terse
SELECT flowstate.finalize(state, NULL::public.per_minute_too)
  FROM flowstate.partial_states(NULL::public.per_minute) LIMIT 1;
SELECT flowstate.combine(state)
  FROM (SELECT state FROM flowstate.partial_states(NULL::public.per_minute)
        UNION ALL
        SELECT state FROM flowstate.partial_states(NULL::public.per_minute_too)) s;
\set VERBOSITY default
SELECT flowstate.finalize('\x0102030405060708090a0b0c0d0e0f10'::bytea, NULL::public.per_minute);
SELECT flowstate.combine('\x01'::bytea);
-- a state of the view with bytes added, or cut
SELECT flowstate.finalize(state || '\x00'::bytea, NULL::public.per_minute)
  FROM flowstate.partial_states(NULL::public.per_minute)
 WHERE (keys).region = 'north' ORDER BY (keys).minute LIMIT 1;
\set VERBOSITY terse
SELECT flowstate.finalize(substr(state, 1, length(state) - 1), NULL::public.per_minute)
  FROM flowstate.partial_states(NULL::public.per_minute)
 WHERE (keys).region = 'north' ORDER BY (keys).minute LIMIT 1;
\set VERBOSITY default
SELECT flowstate.partial_states(NULL::public.hourly_batch);
SELECT flowstate.finalize(NULL, 1);

-- back to flushing: every group durable, and the same results
ALTER SYSTEM RESET flowstate.flush_interval;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT flowstate.wait_for();
SELECT public.wait_durable();
SELECT * FROM public.check_hourly();

-- who may read the states: those who may read the view, while its owner
-- may read the source
CREATE ROLE ps_owner;
CREATE ROLE ps_reader;
CREATE ROLE ps_nobody;
CREATE SCHEMA ps AUTHORIZATION ps_owner;
GRANT SELECT ON public.sales TO ps_owner;
SET ROLE ps_owner;
SELECT flowstate.create_view('ps.counts',
    'SELECT region, flowstate.tumble(ts, ''1 hour'') AS hour, count(*) AS n FROM public.sales GROUP BY 1, 2');
GRANT USAGE ON SCHEMA ps TO ps_reader, ps_nobody;
GRANT SELECT ON ps.counts TO ps_reader;
RESET ROLE;
SELECT flowstate.wait_for();
SET ROLE ps_reader;
SELECT (flowstate.finalize(flowstate.combine(state), NULL::ps.counts)).n
  FROM flowstate.partial_states(NULL::ps.counts);
RESET ROLE;
SET ROLE ps_nobody;
\set VERBOSITY terse
SELECT count(*) FROM flowstate.partial_states(NULL::ps.counts);
RESET ROLE;
-- the owner may no longer read the source: nobody reads the states
REVOKE SELECT ON public.sales FROM ps_owner;
SET ROLE ps_reader;
SELECT count(*) FROM flowstate.partial_states(NULL::ps.counts);
SELECT count(*) FROM ps.counts;
RESET ROLE;
SET ROLE ps_owner;
SELECT count(*) FROM flowstate.partial_states(NULL::ps.counts);
RESET ROLE;
\set VERBOSITY default

DROP SCHEMA ps CASCADE;
DROP ROLE ps_owner, ps_reader, ps_nobody;
DROP VIEW public.hourly_combined, public.hourly_batch;
DROP FUNCTION public.check_hourly(), public.plan_calls(text), public.sales(int, int, timestamptz, interval),
    public.approx9(float8), public.caught_up();
DROP TABLE public.sales CASCADE;
