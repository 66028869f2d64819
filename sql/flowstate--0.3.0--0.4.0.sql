/* flowstate 0.3.0 -> 0.4.0: state-table policies that survive a dump */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION flowstate UPDATE TO '0.4.0'" to load this file. \quit

-- The catalog first, as flowstate's workers lock it before the state tables
-- and views: an update that took them first could deadlock with a worker.
LOCK TABLE flowstate.view IN ACCESS EXCLUSIVE MODE;

-- the policy of each state table names its view and definition (a dump
-- restores it for the restored relations), instead of their numbers
DO $$
DECLARE
    v record;
BEGIN
    FOR v IN SELECT f.view, f.definition, f.state_table FROM flowstate.view f
    LOOP
        EXECUTE format('DROP POLICY IF EXISTS owner_may_read ON %s', v.state_table::regclass);
        EXECUTE format('CREATE POLICY owner_may_read ON %s FOR SELECT'
                       ' USING ((SELECT flowstate.check_view_rights(%L::pg_catalog.regclass,'
                       ' %L::pg_catalog.regclass)))',
                       v.state_table::regclass, v.view::regclass::text, v.definition::regclass::text);
    END LOOP;
END
$$;
