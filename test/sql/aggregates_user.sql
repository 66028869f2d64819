-- User-defined aggregates and the sketches of other extensions in views:
-- any aggregate with a combine function is kept through its own support
-- functions, which run as the role that owns them, read-only.  hll's
-- unions are exact (the same sketch as the batch query's); a t-digest
-- depends on the order its values are merged in, so the view's digest is
-- checked by the rank error of its quantiles among the window's values:
-- at most two points above that of the batch query's own digest (with a few
-- hundred values per window, the latter reaches 2% at the median).
SET TimeZone = 'UTC';
SET datestyle = 'ISO, YMD';
SET extra_float_digits = 0;
CREATE EXTENSION hll;
CREATE EXTENSION tdigest;

CREATE TABLE public.visits (id serial PRIMARY KEY, ts timestamptz NOT NULL, site text,
                            usr int, ms float8);
ALTER TABLE public.visits REPLICA IDENTITY FULL;
CREATE FUNCTION public.visits(n int, seed float8) RETURNS void
LANGUAGE sql AS $$
    SELECT setseed(seed);
    INSERT INTO public.visits (ts, site, usr, ms)
    SELECT '2026-01-01'::timestamptz + (random() * 7200)::int * interval '1 second',
           's' || (random() * 2)::int, (random() * 2000)::int,
           CASE WHEN random() < 0.03 THEN NULL ELSE round((random() * random() * 900)::numeric, 2)::float8 END
      FROM generate_series(1, n);
$$;
SELECT public.visits(6000, 0.5);

-- a user-defined aggregate in SQL, with a combine function: the sum of
-- squares; and one without
CREATE FUNCTION public.sq_step(int8, int) RETURNS int8
LANGUAGE sql IMMUTABLE STRICT AS 'SELECT $1 + $2::int8 * $2';
CREATE FUNCTION public.sq_combine(int8, int8) RETURNS int8
LANGUAGE sql IMMUTABLE STRICT AS 'SELECT $1 + $2';
CREATE AGGREGATE public.sum_sq(int) (SFUNC = public.sq_step, STYPE = int8,
                                     COMBINEFUNC = public.sq_combine, INITCOND = '0');
CREATE AGGREGATE public.sum_sq_nocombine(int) (SFUNC = public.sq_step, STYPE = int8, INITCOND = '0');
-- an internal state without serialization functions
CREATE AGGREGATE public.avg_noserial(int8) (SFUNC = int8_avg_accum, STYPE = internal,
                                            COMBINEFUNC = int8_avg_combine,
                                            FINALFUNC = numeric_poly_avg);

-- refused, with the reason and a hint
CREATE FUNCTION public.refusal(statement text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    state text;
    message text;
    detail text;
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL;
    RETURN state || ': ' || message || E'\n' || detail;
END
$$;
SELECT public.refusal($$SELECT flowstate.create_view('public.nope', $v$
    SELECT site, public.sum_sq_nocombine(usr) FROM public.visits GROUP BY site $v$)$$);
SELECT public.refusal($$SELECT flowstate.create_view('public.nope', $v$
    SELECT site, public.avg_noserial(usr) FROM public.visits GROUP BY site $v$)$$);
SELECT public.try($$SELECT flowstate.create_view('public.nope', $v$
    SELECT site, string_agg(site, ',') FROM public.visits GROUP BY site $v$)$$);

-- per site and 10 minutes: distinct users (hll), a digest of the latency
-- and its 95th percentile, the user-defined aggregate
SELECT flowstate.create_view('public.site_stats', $$
    SELECT site, flowstate.tumble(ts, '10 minutes') AS w, count(*) AS n,
           hll_add_agg(hll_hash_integer(usr)) AS users,
           hll_cardinality(hll_add_agg(hll_hash_integer(usr))) AS approx_users,
           tdigest(ms, 100) AS digest, tdigest_percentile(ms, 100, 0.95) AS p95,
           public.sum_sq(usr) AS usr_sq
      FROM public.visits GROUP BY 1, 2 $$);
-- hopping windows of 30 minutes every 10: hll and t-digest combine panes
SELECT flowstate.create_view('public.site_hop', $$
    SELECT w.window_start, v.site, count(*) AS n,
           hll_add_agg(hll_hash_integer(v.usr)) AS users, tdigest(v.ms, 100) AS digest,
           public.sum_sq(v.usr) AS usr_sq
      FROM public.visits v, LATERAL flowstate.hop(v.ts, '30 minutes', '10 minutes') w
     GROUP BY 1, 2 $$);

-- churn
SELECT public.visits(3000, 0.6);
UPDATE public.visits SET ms = ms * 2, usr = usr + 1 WHERE id % 9 = 0;
DELETE FROM public.visits WHERE id % 11 = 0;
SELECT public.visits(2000, 0.7);
SELECT flowstate.wait_for();

-- rank_error(digest, values, q): how far the rank of the digest's q
-- quantile among the values is from q; close(d, batch digest, values):
-- whether d's rank errors at the median, 95th and 99th percentiles exceed
-- the batch digest's by at most 0.02
CREATE FUNCTION public.quantile(d tdigest, q float8) RETURNS float8
LANGUAGE sql AS 'SELECT tdigest_percentile(d, q)';
CREATE FUNCTION public.rank_error(d tdigest, vals float8[], q numeric) RETURNS float8
LANGUAGE sql AS $$
    SELECT abs((SELECT count(*) FILTER (WHERE v <= public.quantile(d, q::float8))::float8 / count(*)
                  FROM unnest(vals) v WHERE v IS NOT NULL) - q::float8)
$$;
CREATE FUNCTION public.close(d tdigest, bd tdigest, vals float8[]) RETURNS boolean
LANGUAGE sql AS $$
    SELECT bool_and(public.rank_error(d, vals, q) <= public.rank_error(bd, vals, q) + 0.02)
      FROM unnest(ARRAY[0.5, 0.95, 0.99]) q
$$;

-- the tumbling view against the batch query: hll identical, user-defined
-- aggregate equal, digests' quantiles within 1% of rank
WITH b AS (
    SELECT site, flowstate.tumble(ts, '10 minutes') AS w, count(*) AS n,
           hll_add_agg(hll_hash_integer(usr)) AS users, public.sum_sq(usr) AS usr_sq,
           tdigest(ms, 100) AS digest, array_agg(ms) AS vals
      FROM public.visits GROUP BY 1, 2)
SELECT count(*) AS windows,
       count(*) FILTER (WHERE v.n IS DISTINCT FROM b.n) AS n_differ,
       count(*) FILTER (WHERE v.users::text IS DISTINCT FROM b.users::text) AS hll_differ,
       count(*) FILTER (WHERE v.approx_users IS DISTINCT FROM hll_cardinality(b.users)) AS card_differ,
       count(*) FILTER (WHERE v.usr_sq IS DISTINCT FROM b.usr_sq) AS udf_differ,
       count(*) FILTER (WHERE NOT public.close(v.digest, b.digest, b.vals)) AS digest_worse,
       count(*) FILTER (WHERE abs(v.p95 - public.quantile(v.digest, 0.95)) > 1e-9) AS p95_not_digest
  FROM public.site_stats v FULL JOIN b USING (site, w);

-- coarser windows from the partial states: hours equal the batch query's
WITH h AS (
    SELECT (keys).site, flowstate.tumble((keys).w, '1 hour') AS hour,
           flowstate.finalize(flowstate.combine(state), NULL::public.site_stats) AS f
      FROM flowstate.partial_states(NULL::public.site_stats) GROUP BY 1, 2),
b AS (
    SELECT site, flowstate.tumble(ts, '1 hour') AS hour, count(*) AS n,
           hll_add_agg(hll_hash_integer(usr)) AS users, public.sum_sq(usr) AS usr_sq,
           tdigest(ms, 100) AS digest, array_agg(ms) AS vals
      FROM public.visits GROUP BY 1, 2)
SELECT count(*) AS hours,
       count(*) FILTER (WHERE (h.f).n IS DISTINCT FROM b.n) AS n_differ,
       count(*) FILTER (WHERE (h.f).users::text IS DISTINCT FROM b.users::text) AS hll_differ,
       count(*) FILTER (WHERE (h.f).usr_sq IS DISTINCT FROM b.usr_sq) AS udf_differ,
       count(*) FILTER (WHERE NOT public.close((h.f).digest, b.digest, b.vals)) AS digest_worse
  FROM h FULL JOIN b USING (site, hour);

-- the hopping view against its batch query
WITH b AS (
    SELECT w.window_start, v.site, count(*) AS n,
           hll_add_agg(hll_hash_integer(v.usr)) AS users, public.sum_sq(v.usr) AS usr_sq,
           tdigest(v.ms, 100) AS digest, array_agg(v.ms) AS vals
      FROM public.visits v, LATERAL flowstate.hop(v.ts, '30 minutes', '10 minutes') w
     GROUP BY 1, 2)
SELECT count(*) AS windows,
       count(*) FILTER (WHERE v.n IS DISTINCT FROM b.n) AS n_differ,
       count(*) FILTER (WHERE v.users::text IS DISTINCT FROM b.users::text) AS hll_differ,
       count(*) FILTER (WHERE v.usr_sq IS DISTINCT FROM b.usr_sq) AS udf_differ,
       count(*) FILTER (WHERE NOT public.close(v.digest, b.digest, b.vals)) AS digest_worse
  FROM public.site_hop v FULL JOIN b USING (window_start, site);

-- a group whose rows overflow sum(money) together (each row alone is fine)
-- is in error, as the batch query is; once the rows that overflow it
-- leave, it is recomputed and right again
CREATE TABLE public.pay (id int PRIMARY KEY, k int, m money);
ALTER TABLE public.pay REPLICA IDENTITY FULL;
INSERT INTO public.pay SELECT i, i % 2, 1000::money FROM generate_series(1, 10) i;
SELECT flowstate.create_view('public.pay_sums', $$
    SELECT k, count(*) AS n, sum(m) AS total FROM public.pay GROUP BY k $$);
INSERT INTO public.pay VALUES (11, 1, '90000000000000000'::money), (12, 1, '90000000000000000'::money);
SELECT flowstate.wait_for();
SELECT public.refusal('SELECT * FROM public.pay_sums');
SELECT public.refusal('SELECT k, count(*), sum(m) FROM public.pay GROUP BY k');
SELECT count(*) AS dead_letters FROM flowstate.dead_letters WHERE view = 'public.pay_sums'::regclass;
DELETE FROM public.pay WHERE id = 12;
SELECT flowstate.wait_for();
SELECT * FROM public.pay_sums ORDER BY k;
SELECT k, count(*) AS n, sum(m) AS total FROM public.pay GROUP BY k ORDER BY k;
SELECT flowstate.drop_view('public.pay_sums');
DROP TABLE public.pay;

-- support functions run as their owner, read-only: a transition function
-- that writes fails, and its rows become dead letters
CREATE TABLE public.spy (usr int);
CREATE FUNCTION public.spy_step(int8, int) RETURNS int8
LANGUAGE plpgsql STRICT AS $$
BEGIN
    INSERT INTO public.spy VALUES ($2);
    RETURN $1 + $2;
END
$$;
CREATE AGGREGATE public.spy_sum(int) (SFUNC = public.spy_step, STYPE = int8,
                                      COMBINEFUNC = public.sq_combine, INITCOND = '0');
SELECT flowstate.create_view('public.spied', $$
    SELECT site, count(*) AS n, public.spy_sum(usr) AS s FROM public.visits GROUP BY site $$);
INSERT INTO public.visits (ts, site, usr, ms) VALUES ('2026-01-01 03:00', 's9', 1, 1);
SELECT flowstate.wait_for();
SELECT public.wait_durable();
SELECT count(*) AS spied FROM public.spy;
SELECT count(*) AS groups_with_s9 FROM public.spied WHERE site = 's9';
SELECT sqlstate, error, count(*) = (SELECT count(*) FROM public.visits) AS every_row
  FROM flowstate.dead_letters WHERE view = 'public.spied'::regclass GROUP BY 1, 2;

DELETE FROM flowstate.dead_letters WHERE view = 'public.spied'::regclass;
SELECT flowstate.drop_view('public.spied');
SELECT flowstate.drop_view('public.site_hop');
SELECT flowstate.drop_view('public.site_stats');
DROP AGGREGATE public.spy_sum(int), public.sum_sq(int), public.sum_sq_nocombine(int),
               public.avg_noserial(int8);
DROP FUNCTION public.spy_step(int8, int), public.sq_step(int8, int), public.sq_combine(int8, int8),
              public.rank_error(tdigest, float8[], numeric), public.quantile(tdigest, float8),
              public.close(tdigest, tdigest, float8[]),
              public.visits(int, float8),
              public.refusal(text);
DROP TABLE public.visits, public.spy;
DROP EXTENSION tdigest;
DROP EXTENSION hll;
