/* flowstate 0.6.0 -> 0.7.0 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION flowstate UPDATE TO '0.7.0'" to load this file. \quit

-------------------------------------------------------------------------------
-- Large transactions are decoded while they run and their changes gathered
-- aside until they commit: flowstate.sources shows what the transactions
-- still open take.
-------------------------------------------------------------------------------
DROP VIEW flowstate.sources;
DROP FUNCTION flowstate.sources();

CREATE FUNCTION flowstate.sources(
    OUT source text,
    OUT kind text,
    OUT state text,
    OUT pid integer,
    OUT slot_name name,
    OUT applied_lsn pg_lsn,
    OUT durable_lsn pg_lsn,
    OUT lag_bytes numeric,
    OUT changes bigint,
    OUT transactions bigint,
    OUT changes_per_second double precision,
    OUT last_flush_at timestamptz,
    OUT last_error text,
    OUT last_error_at timestamptz,
    OUT partitions integer,
    OUT lag_messages bigint,
    OUT open_transactions integer,
    OUT open_transaction_bytes bigint,
    OUT open_transaction_peak_bytes bigint,
    OUT spilled_bytes bigint,
    OUT streamed_transactions bigint)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'flowstate_sources';

COMMENT ON FUNCTION flowstate.sources() IS
'one row per source worker of this database: position, lag and throughput';

CREATE VIEW flowstate.sources AS
    SELECT * FROM flowstate.sources();

COMMENT ON VIEW flowstate.sources IS
'source workers of this database: position, lag, throughput and errors';

GRANT SELECT ON flowstate.sources TO PUBLIC;
