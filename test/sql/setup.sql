-- Installing flowstate starts a manager in this database, within seconds
CREATE EXTENSION flowstate;

SELECT n.nspname AS schema, e.extversion, e.extrelocatable
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'flowstate';

-- wait_for(query) polls a boolean query for up to 20 seconds
CREATE FUNCTION public.wait_for(query text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '20 seconds';
    ok boolean;
BEGIN
    LOOP
        PERFORM pg_stat_clear_snapshot();
        EXECUTE query INTO ok;
        IF ok OR clock_timestamp() > deadline THEN
            RETURN coalesce(ok, false);
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;

-- wait_durable() waits until the decoding worker has flushed everything
-- committed: the state tables, and the dead letters and late events
CREATE FUNCTION public.wait_durable() RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    target pg_lsn := pg_current_wal_lsn();
BEGIN
    FOR i IN 1 .. 600 LOOP
        IF (SELECT bool_and(durable_lsn >= target) FROM flowstate.sources) THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN false;
END
$$;

SELECT wait_for($$
    SELECT count(*) = 1 FROM flowstate.workers
     WHERE kind = 'manager' AND datname = current_database() AND state = 'running'
$$) AS manager_running;

SELECT backend_type, datname = current_database() AS here
  FROM pg_stat_activity
 WHERE backend_type LIKE 'flowstate%'
   AND (datname IS NULL OR datname = current_database())
 ORDER BY 1;

-- installing twice is refused as for any extension
CREATE EXTENSION flowstate;

-- configuration: one prefix, reserved, with units
SELECT name, setting, unit, context
  FROM pg_settings WHERE name LIKE 'flowstate.%' ORDER BY name;
SET flowstate.naptime = '1s';
SET flowstate.max_workers = 8;
SET flowstate.no_such_setting = 1;
