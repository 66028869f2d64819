-- The oracle's comparison, for pg_regress (sql/oracle.sql) and TAP
-- (FlowstateNode::install_oracle): a view against its defining query run as
-- a batch query.

-- approx(x): floats to 9 significant digits, for variances and deviations
CREATE FUNCTION public.approx(x float8) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN x IS NULL OR x = 0 OR x IN ('NaN', 'Infinity', '-Infinity') THEN x::numeric
                ELSE round(x::numeric, 8 - floor(log(abs(x::numeric)))::int) END
$$;

-- differences(view): rows one side has and the other lacks; float columns
-- are compared with approx()
CREATE FUNCTION public.differences(v regclass) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    def regclass := (SELECT definition FROM flowstate.view WHERE view = v);
    cols text;
    n bigint;
BEGIN
    SELECT string_agg(CASE WHEN atttypid IN ('float4'::regtype, 'float8'::regtype)
                           THEN format('public.approx(%I)', attname)
                           ELSE quote_ident(attname) END, ', ' ORDER BY attnum)
      INTO cols
      FROM pg_attribute WHERE attrelid = v AND attnum > 0 AND NOT attisdropped;
    EXECUTE format('SELECT count(*) FROM ((SELECT %1$s FROM %2$s EXCEPT ALL SELECT %1$s FROM %3$s)
                    UNION ALL (SELECT %1$s FROM %3$s EXCEPT ALL SELECT %1$s FROM %2$s)) d',
                   cols, v, def) INTO n;
    RETURN n;
END
$$;
