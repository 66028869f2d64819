/* flowstate 0.4.0 -> 0.5.0 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION flowstate UPDATE TO '0.5.0'" to load this file. \quit

-- The catalog first, as flowstate's workers lock it before the state tables
-- and views: an update that took them first could deadlock with a worker.
LOCK TABLE flowstate.view IN ACCESS EXCLUSIVE MODE;

-------------------------------------------------------------------------------
-- State format 2: each group's partial state is written field by field in
-- network byte order, with the layout's fingerprint and a checksum, instead
-- of the memory image of its block (format 1).  The states already written
-- are converted, in this transaction; the workers write format 2 once it
-- commits.  The function is only for this update.
-------------------------------------------------------------------------------
CREATE FUNCTION flowstate.convert_states()
RETURNS bigint
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'flowstate_convert_states';

SELECT flowstate.convert_states();

DROP FUNCTION flowstate.convert_states();
-------------------------------------------------------------------------------
-- end of state format 2
-------------------------------------------------------------------------------

------------------------------------------------------------------------------
-- Partial states in SQL, and reads that finalize only the groups they keep
------------------------------------------------------------------------------

-- what users call: a view's groups with their partial states, their merge,
-- and their results (README.md, "Partial states")

CREATE FUNCTION flowstate.partial_states(view anyelement)
RETURNS TABLE (keys anyelement, state bytea)
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'flowstate_partial_states';

COMMENT ON FUNCTION flowstate.partial_states(anyelement) IS
'the groups of a continuous view (pass NULL::view), each with its key columns and its partial state';

CREATE FUNCTION flowstate.combine_step(internal, bytea)
RETURNS internal
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'flowstate_combine_step';

COMMENT ON FUNCTION flowstate.combine_step(internal, bytea) IS
'transition function of flowstate.combine()';

CREATE FUNCTION flowstate.combine_final(internal)
RETURNS bytea
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'flowstate_combine_final';

COMMENT ON FUNCTION flowstate.combine_final(internal) IS
'final function of flowstate.combine()';

CREATE AGGREGATE flowstate.combine(state bytea) (
    SFUNC = flowstate.combine_step,
    STYPE = internal,
    FINALFUNC = flowstate.combine_final
);

COMMENT ON AGGREGATE flowstate.combine(bytea) IS
'the merge of partial states of one continuous view, as one partial state';

CREATE FUNCTION flowstate.finalize(state bytea, view anyelement)
RETURNS anyelement
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'flowstate_finalize';

COMMENT ON FUNCTION flowstate.finalize(bytea, anyelement) IS
'a row of the view''s type (pass NULL::view) with the columns it computes from the aggregates of a partial state';

-- what the views call: a state table's rows the reader takes, the groups of
-- shared memory with their keys, and the aggregates of one of them

CREATE FUNCTION flowstate.durable(state_table regclass, gid bigint)
RETURNS boolean
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'flowstate_durable';

COMMENT ON FUNCTION flowstate.durable(regclass, bigint) IS
'whether a row of a state table is the newest state of its group the reader sees (used by the views)';

CREATE FUNCTION flowstate.unflushed_states(state_table regclass)
RETURNS SETOF record
LANGUAGE C STABLE STRICT ROWS 10
AS 'MODULE_PATHNAME', 'flowstate_unflushed_states';

COMMENT ON FUNCTION flowstate.unflushed_states(regclass) IS
'keys of the groups of a continuous view whose newest state is in shared memory only (used by the views)';

-- the same, for a read with conditions on every key but the window: the
-- values of those keys follow (passed by the planner, see read_filter.c)

CREATE FUNCTION flowstate.durable(state_table regclass, gid bigint, VARIADIC keys "any")
RETURNS boolean
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'flowstate_durable';

COMMENT ON FUNCTION flowstate.durable(regclass, bigint, "any") IS
'whether a row of a state table is the newest state of its group the reader sees, for the given keys (used by the views)';

CREATE FUNCTION flowstate.unflushed_states(state_table regclass, VARIADIC keys "any")
RETURNS SETOF record
LANGUAGE C STABLE ROWS 10
AS 'MODULE_PATHNAME', 'flowstate_unflushed_states';

COMMENT ON FUNCTION flowstate.unflushed_states(regclass, "any") IS
'keys of the groups of a continuous view with the given keys whose newest state is in shared memory only (used by the views)';

CREATE FUNCTION flowstate.unflushed_aggregates(state_table regclass, i bigint)
RETURNS record
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'flowstate_unflushed_aggregates';

COMMENT ON FUNCTION flowstate.unflushed_aggregates(regclass, bigint) IS
'the aggregates of one group of flowstate.unflushed_states() (used by the views)';

COMMENT ON FUNCTION flowstate.unflushed(regclass) IS
'groups of a continuous view whose newest state is in shared memory only (used by the views of versions before 0.5.0)';

-- the continuous views made until now read flowstate.unflushed(): their
-- query is written again, in place (the views keep their relations, owners,
-- privileges and dependents)

CREATE FUNCTION flowstate.rewrite_view(view regclass)
RETURNS void
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'flowstate_rewrite_view';

COMMENT ON FUNCTION flowstate.rewrite_view(regclass) IS
'write the query of a continuous view again, as flowstate.create_view() writes it (used by ALTER EXTENSION UPDATE)';

REVOKE ALL ON FUNCTION flowstate.rewrite_view(regclass) FROM PUBLIC;

DO $$
DECLARE
    v record;
BEGIN
    FOR v IN SELECT f.view FROM flowstate.view f
               JOIN pg_catalog.pg_class c ON c.oid = f.view
              ORDER BY f.view_id
    LOOP
        PERFORM flowstate.rewrite_view(v.view);
    END LOOP;
END
$$;

------------------------------------------------------------------------------
-- end of: partial states in SQL
------------------------------------------------------------------------------
