-- The oracle's comparison, for pg_regress (sql/oracle.sql) and TAP
-- (FlowstateNode::install_oracle): a view against its defining query run as
-- a batch query.

-- approx(x): floats to 9 significant digits, for variances and deviations
CREATE FUNCTION public.approx(x float8) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN x IS NULL OR x = 0 OR x IN ('NaN', 'Infinity', '-Infinity') THEN x::numeric
                ELSE round(x::numeric, 8 - floor(log(abs(x::numeric)))::int) END
$$;

-- differences(view, approximate): rows one side has and the other lacks;
-- the float columns named in approximate are compared with approx(), every
-- float column when it is NULL (data whose float sums depend on the order
-- of addition)
CREATE FUNCTION public.differences(v regclass, approximate text[] DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    def regclass := (SELECT definition FROM flowstate.view WHERE view = v);
    cols text;
    n bigint;
BEGIN
    SELECT string_agg(CASE WHEN atttypid IN ('float4'::regtype, 'float8'::regtype)
                                AND (approximate IS NULL OR attname = ANY (approximate))
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

-- type_differences(view): columns of the view whose name or type (with its
-- modifier and collation) differs from that of the batch query's column
CREATE FUNCTION public.type_differences(v regclass) RETURNS bigint
LANGUAGE sql AS $$
    WITH def AS (SELECT definition FROM flowstate.view WHERE view = v),
         cols AS (SELECT a.attrelid = v AS of_view, a.attnum, a.attname,
                         format_type(a.atttypid, a.atttypmod) AS type, a.attcollation
                    FROM pg_attribute a
                   WHERE a.attrelid IN (v, (SELECT definition FROM def))
                     AND a.attnum > 0 AND NOT a.attisdropped)
    SELECT count(*) FROM cols x FULL JOIN cols y
        ON x.attnum = y.attnum AND x.of_view AND NOT y.of_view
     WHERE (x.of_view OR x.of_view IS NULL) AND (NOT y.of_view OR y.of_view IS NULL)
       AND (x.attname, x.type, x.attcollation) IS DISTINCT FROM (y.attname, y.type, y.attcollation)
$$;
