-- With flowstate preloaded but wal_level below logical, CREATE EXTENSION refuses
\set SHOW_CONTEXT never
SHOW wal_level;
CREATE EXTENSION flowstate;

-- the same error, with its SQLSTATE
DO $$
DECLARE
    state text; msg text; detail text; hint text;
BEGIN
    CREATE EXTENSION flowstate;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RAISE NOTICE 'sqlstate %: %', state, msg;
    RAISE NOTICE 'detail: %', detail;
    RAISE NOTICE 'hint: %', hint;
END
$$;

SELECT count(*) AS installed FROM pg_extension WHERE extname = 'flowstate';

-- the launcher runs regardless: it is what will serve the extension once
-- wal_level is fixed
SELECT count(*) AS launchers FROM pg_stat_activity WHERE backend_type = 'flowstate launcher';
