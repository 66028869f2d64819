-- Every built-in aggregate that has a combine function works in a view.
-- The test enumerates them in pg_aggregate; for each whose argument types
-- are in the fixed list below (polymorphic ones with a concrete type), it
-- creates views over a table, churns the table with random INSERT, UPDATE
-- and DELETE, and compares each view with its defining query run as a
-- batch query: floating-point results within a relative 1e-9 (float4:
-- 1e-5) of the batch's, every other result equal.  It prints each
-- aggregate it covered and each it did not, with the reason.  Aggregates
-- with no native form run through their own support functions (generic.c);
-- the others take their native form.
SET TimeZone = 'UTC';
SET datestyle = 'ISO, YMD';
SET extra_float_digits = 0;

CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE public.g (
    id serial PRIMARY KEY, k int,
    i2 int2, i4 int4, i8 int8, n numeric, f4 float4, f8 float8, f8b float8,
    iv interval, m money, b bool, t text, c char(3), d date, tm time, ttz timetz,
    ts timestamp, tstz timestamptz, o oid, bt bit(8), ip inet, lsn pg_lsn, x8 xid8,
    ti tid, arr int4[], en public.mood, r int4range, mr int4multirange);
ALTER TABLE public.g REPLICA IDENTITY FULL;

-- the column each argument type reads
CREATE TABLE public.g_columns (argtype regtype PRIMARY KEY, col text NOT NULL);
INSERT INTO public.g_columns VALUES
    ('int2', 'i2'), ('int4', 'i4'), ('int8', 'i8'), ('numeric', 'n'), ('float4', 'f4'),
    ('float8', 'f8'), ('interval', 'iv'), ('money', 'm'), ('bool', 'b'), ('text', 't'),
    ('bpchar', 'c'), ('date', 'd'), ('time', 'tm'), ('timetz', 'ttz'), ('timestamp', 'ts'),
    ('timestamptz', 'tstz'), ('oid', 'o'), ('bit', 'bt'), ('inet', 'ip'), ('pg_lsn', 'lsn'),
    ('xid8', 'x8'), ('tid', 'ti'), ('anyarray', 'arr'), ('anyenum', 'en'),
    ('anyrange', 'r'), ('anymultirange', 'mr'), ('"any"', 'i4');

-- g_rows(n, seed): n random rows over 6 groups, about 5% NULLs per column
CREATE FUNCTION public.g_rows(n int, seed float8) RETURNS void
LANGUAGE sql AS $$
    SELECT setseed(seed);
    INSERT INTO public.g (k, i2, i4, i8, n, f4, f8, f8b, iv, m, b, t, c, d, tm, ttz, ts, tstz,
                          o, bt, ip, lsn, x8, ti, arr, en, r, mr)
    SELECT (random() * 5)::int,
           nullif((random() * 2000 - 1000)::int2, 7),
           nullif((random() * 2e6 - 1e6)::int4, 7),
           nullif((random() * 2e12 - 1e12)::int8, 7),
           CASE WHEN random() < 0.05 THEN NULL ELSE round((random() * 2000 - 1000)::numeric, (random() * 4)::int) END,
           CASE WHEN random() < 0.05 THEN NULL ELSE (random() * 1000)::float4 END,
           CASE WHEN random() < 0.05 THEN NULL ELSE random() * 1000 - 300 END,
           CASE WHEN random() < 0.05 THEN NULL ELSE random() * 50 END,
           CASE WHEN random() < 0.05 THEN NULL ELSE (random() * 1e6)::int * interval '1 second' END,
           CASE WHEN random() < 0.05 THEN NULL ELSE ((random() * 1e5)::int / 100.0)::numeric::money END,
           CASE WHEN random() < 0.05 THEN NULL ELSE random() < 0.7 END,
           CASE WHEN random() < 0.05 THEN NULL ELSE md5(random()::text) END,
           CASE WHEN random() < 0.05 THEN NULL ELSE substr(md5(random()::text), 1, 3) END,
           CASE WHEN random() < 0.05 THEN NULL ELSE date '2026-01-01' + (random() * 300)::int END,
           CASE WHEN random() < 0.05 THEN NULL ELSE time '00:00' + (random() * 86000)::int * interval '1 second' END,
           CASE WHEN random() < 0.05 THEN NULL ELSE (time '00:00' + (random() * 86000)::int * interval '1 second')::timetz END,
           CASE WHEN random() < 0.05 THEN NULL ELSE timestamp '2026-01-01' + (random() * 1e7)::int * interval '1 second' END,
           CASE WHEN random() < 0.05 THEN NULL ELSE timestamptz '2026-01-01' + (random() * 1e7)::int * interval '1 second' END,
           CASE WHEN random() < 0.05 THEN NULL ELSE (random() * 1e9)::int8::oid END,
           CASE WHEN random() < 0.05 THEN NULL ELSE ((random() * 255)::int)::bit(8) END,
           CASE WHEN random() < 0.05 THEN NULL ELSE ('10.0.' || (random() * 255)::int || '.' || (random() * 255)::int)::inet END,
           CASE WHEN random() < 0.05 THEN NULL ELSE ('0/' || to_hex((random() * 1e9)::int))::pg_lsn END,
           CASE WHEN random() < 0.05 THEN NULL ELSE ((random() * 1e9)::int8)::text::xid8 END,
           CASE WHEN random() < 0.05 THEN NULL ELSE ('(' || (random() * 100)::int || ',' || (random() * 50)::int || ')')::tid END,
           CASE WHEN random() < 0.05 THEN NULL ELSE ARRAY[(random() * 10)::int, (random() * 10)::int] END,
           CASE WHEN random() < 0.05 THEN NULL ELSE (ARRAY['sad', 'ok', 'happy'])[1 + (random() * 2)::int]::public.mood END,
           CASE WHEN random() < 0.05 THEN NULL ELSE int4range((random() * 40)::int, 60 + (random() * 40)::int) END,
           CASE WHEN random() < 0.05 THEN NULL ELSE int4multirange(int4range((random() * 40)::int, 60 + (random() * 40)::int)) END
      FROM generate_series(1, n);
$$;
SELECT public.g_rows(1500, 0.31);

-- the aggregates: built in, with a combine function, normal kind
CREATE TABLE public.g_aggs AS
SELECT a.aggfnoid::regprocedure AS agg, p.proname AS name, p.pronargs AS nargs,
       p.proargtypes::regtype[] AS argtypes,
       (SELECT array_agg(c.col ORDER BY x.i)
          FROM unnest(p.proargtypes::regtype[]) WITH ORDINALITY AS x(t, i)
          LEFT JOIN public.g_columns c ON c.argtype = x.t) AS cols
  FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
 WHERE a.aggcombinefn <> 0 AND a.aggkind = 'n' AND a.aggfnoid < 16384;

-- what is not covered, and why
SELECT agg, 'argument type not in the list' AS not_covered
  FROM public.g_aggs WHERE array_position(cols, NULL) IS NOT NULL ORDER BY agg::text;

-- the call of each covered aggregate; the two arguments of the regression
-- family differ
ALTER TABLE public.g_aggs ADD COLUMN call text, ADD COLUMN alias text, ADD COLUMN sig text;
UPDATE public.g_aggs
   SET call = CASE WHEN nargs = 0 THEN name || '(*)'
                   WHEN nargs = 2 THEN name || '(f8, f8b)'
                   ELSE name || '(' || array_to_string(cols, ', ') || ')' END,
       sig = array_to_string(cols, '_')
 WHERE array_position(cols, NULL) IS NULL;
UPDATE public.g_aggs a SET alias = 'a' || x.n
  FROM (SELECT agg, row_number() OVER (ORDER BY agg::text) AS n FROM public.g_aggs WHERE call IS NOT NULL) x
 WHERE x.agg = a.agg;

-- one view per argument signature, with every aggregate over it; each
-- aggregate also with a FILTER
DO $$
DECLARE
    s record;
BEGIN
    FOR s IN SELECT coalesce(sig, 'none') AS sig,
                    string_agg(call || ' AS ' || alias || ', ' || call || ' FILTER (WHERE id % 3 = 0) AS ' || alias || 'f',
                               ', ' ORDER BY alias) AS calls
               FROM public.g_aggs WHERE call IS NOT NULL GROUP BY 1
    LOOP
        PERFORM flowstate.create_view('public.gv_' || s.sig,
            format('SELECT k, %s FROM public.g GROUP BY k', s.calls));
    END LOOP;
END
$$;

-- churn: inserts, updates of every column of some rows, deletes
SELECT public.g_rows(1000, 0.32);
UPDATE public.g SET f8 = f8 * 1.5, i4 = i4 + 1, n = n - 1, iv = iv + interval '1 hour', t = t || 'x',
                    arr = arr || 1, en = 'happy', m = m + 1::money, b = NOT b, bt = ~bt
 WHERE id % 7 = 0;
UPDATE public.g SET k = (k + 1) % 6 WHERE id % 11 = 0;
DELETE FROM public.g WHERE id % 13 = 0;
SELECT public.g_rows(500, 0.33);
DELETE FROM public.g WHERE id % 17 = 0;
SELECT flowstate.wait_for();

-- each aggregate: the groups where the view and the batch query differ
CREATE FUNCTION public.g_compare(a public.g_aggs, filtered bool) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    col text := a.alias || CASE WHEN filtered THEN 'f' ELSE '' END;
    expr text := a.call || CASE WHEN filtered THEN ' FILTER (WHERE id % 3 = 0)' ELSE '' END;
    restype regtype := (SELECT prorettype FROM pg_proc WHERE oid = a.agg::oid);
    same text;
    diffs bigint;
BEGIN
    same := CASE
        WHEN restype = 'float8'::regtype THEN
            'v.x = b.x OR (v.x IS NULL AND b.x IS NULL) OR abs(v.x - b.x) <= 1e-9 * greatest(abs(v.x), abs(b.x))'
        WHEN restype = 'float4'::regtype THEN
            'v.x = b.x OR (v.x IS NULL AND b.x IS NULL) OR abs(v.x - b.x) <= 1e-5 * greatest(abs(v.x), abs(b.x))'
        WHEN restype = 'float8[]'::regtype THEN
            'v.x::text IS NOT DISTINCT FROM b.x::text'
        ELSE 'v.x::text IS NOT DISTINCT FROM b.x::text' END;
    EXECUTE format($q$
        SELECT count(*) FROM (SELECT k, %1$s AS x FROM public.gv_%2$s) v
          FULL JOIN (SELECT k, %3$s AS x FROM public.g GROUP BY k) b USING (k)
         WHERE v.k IS NULL OR b.k IS NULL OR NOT coalesce(%4$s, false) $q$,
        col, coalesce(a.sig, 'none'), expr, same) INTO diffs;
    RETURN diffs;
END
$$;
SELECT agg, public.g_compare(a, false) AS differing_groups, public.g_compare(a, true) AS differing_filtered
  FROM public.g_aggs a WHERE call IS NOT NULL ORDER BY agg::text;
SELECT count(*) AS covered FROM public.g_aggs WHERE call IS NOT NULL;

-- the views hold every group
SELECT count(*) AS groups FROM public.gv_f8;

-- rows that only arrive: the groups' states and the batch's are combined
SELECT public.g_rows(400, 0.35);
SELECT flowstate.wait_for();
SELECT count(*) AS aggregates,
       count(*) FILTER (WHERE public.g_compare(a, false) + public.g_compare(a, true) > 0) AS differing
  FROM public.g_aggs a WHERE call IS NOT NULL;

-- the partial states of all groups combined into one and finalized equal
-- the batch query over the whole table
CREATE FUNCTION public.g_compare_combined(a public.g_aggs) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    restype regtype := (SELECT prorettype FROM pg_proc WHERE oid = a.agg::oid);
    same text;
    ok boolean;
BEGIN
    same := CASE
        WHEN restype IN ('float8'::regtype, 'float4'::regtype) THEN
            'v.x = b.x OR (v.x IS NULL AND b.x IS NULL) OR abs(v.x - b.x) <= 1e-5 * greatest(abs(v.x), abs(b.x))'
        ELSE 'v.x::text IS NOT DISTINCT FROM b.x::text' END;
    EXECUTE format($q$
        SELECT coalesce(%4$s, false)
          FROM (SELECT (flowstate.finalize(flowstate.combine(state), NULL::public.gv_%2$s)).%1$s AS x
                  FROM flowstate.partial_states(NULL::public.gv_%2$s)) v,
               (SELECT %3$s AS x FROM public.g) b $q$,
        a.alias, coalesce(a.sig, 'none'), a.call, same) INTO ok;
    RETURN ok;
END
$$;
SELECT agg FROM public.g_aggs a
 WHERE call IS NOT NULL AND NOT public.g_compare_combined(a) ORDER BY agg::text;
SELECT count(*) AS combined_equal FROM public.g_aggs a
 WHERE call IS NOT NULL AND public.g_compare_combined(a);

DO $$
DECLARE
    s record;
BEGIN
    FOR s IN SELECT DISTINCT coalesce(sig, 'none') AS sig FROM public.g_aggs WHERE call IS NOT NULL LOOP
        PERFORM flowstate.drop_view('public.gv_' || s.sig);
    END LOOP;
END
$$;
DROP FUNCTION public.g_compare(public.g_aggs, bool), public.g_compare_combined(public.g_aggs);
DROP TABLE public.g, public.g_aggs, public.g_columns;
DROP FUNCTION public.g_rows(int, float8);
DROP TYPE public.mood;
