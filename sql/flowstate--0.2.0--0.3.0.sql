/* flowstate 0.2.0 -> 0.3.0: the security model of continuous views */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION flowstate UPDATE TO '0.3.0'" to load this file. \quit

-- The catalog first, as flowstate's workers lock it before the state tables
-- and views: an update that took them first could deadlock with a worker.
LOCK TABLE flowstate.view IN ACCESS EXCLUSIVE MODE;

-- A continuous view evaluates as its owner (in the library); its state is
-- served while its owner may read its source (the policy of each state
-- table, and flowstate.unflushed); dead letters and late events are shown
-- to the roles that may read what they hold.  See README.md, "Security
-- model".

CREATE FUNCTION flowstate.check_view_rights(view oid, definition oid)
RETURNS boolean
LANGUAGE C STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'flowstate_check_view_rights';

COMMENT ON FUNCTION flowstate.check_view_rights(oid, oid) IS
'true while the owner of a continuous view may read what its defining query reads, else an error (the policy of its state table)';

CREATE FUNCTION flowstate.side_row_visible(source regclass, view regclass)
RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'flowstate_side_row_visible';

COMMENT ON FUNCTION flowstate.side_row_visible(regclass, regclass) IS
'whether the current role may read the source values a dead letter or late event holds';

ALTER TABLE flowstate.dead_letters ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable ON flowstate.dead_letters FOR SELECT
    USING (flowstate.side_row_visible(source, view));

ALTER TABLE flowstate.late_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable ON flowstate.late_events FOR SELECT
    USING (flowstate.side_row_visible(NULL, view));

-- the continuous views of 0.2.0: their definitions go to their owners, and
-- their state tables get the policy of the views created from now on
DO $$
DECLARE
    v record;
BEGIN
    FOR v IN SELECT c.oid AS view, c.relowner::regrole AS owner, f.definition, f.state_table
               FROM flowstate.view f JOIN pg_catalog.pg_class c ON c.oid = f.view
    LOOP
        EXECUTE format('ALTER VIEW %s OWNER TO %s', v.definition::regclass, v.owner);
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', v.state_table::regclass);
        EXECUTE format('CREATE POLICY owner_may_read ON %s FOR SELECT'
                       ' USING ((SELECT flowstate.check_view_rights(%s::pg_catalog.oid, %s::pg_catalog.oid)))',
                       v.state_table::regclass, v.view::oid, v.definition::oid);
    END LOOP;
END
$$;
