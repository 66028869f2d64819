-- On a server without flowstate in shared_preload_libraries, CREATE EXTENSION refuses
\set SHOW_CONTEXT never
SHOW shared_preload_libraries;
CREATE EXTENSION flowstate;

-- the same error, with its SQLSTATE
DO $$
DECLARE
    state text; msg text; hint text;
BEGIN
    CREATE EXTENSION flowstate;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            hint = PG_EXCEPTION_HINT;
    RAISE NOTICE 'sqlstate %: %', state, msg;
    RAISE NOTICE 'hint: %', hint;
END
$$;

-- nothing is left behind
SELECT count(*) AS installed FROM pg_extension WHERE extname = 'flowstate';
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname = 'flowstate';
