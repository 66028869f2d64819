/* flowstate 0.6.0 -> 0.7.0 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION flowstate UPDATE TO '0.7.0'" to load this file. \quit

-- The catalog first, as flowstate's workers lock it before the state tables
-- and views: an update that took them first could deadlock with a worker.
LOCK TABLE flowstate.view IN ACCESS EXCLUSIVE MODE;

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

-------------------------------------------------------------------------------
-- Hopping and cumulating windows take allowed_lateness: the catalog keeps,
-- for their panes, the windows they belong to, which decide when a pane is
-- final (once the earliest window holding it is).  flowstate.is_final
-- answers for the views that combine panes too.
-------------------------------------------------------------------------------
ALTER TABLE flowstate.view
    ADD COLUMN hop_kind text CHECK (hop_kind IN ('hop', 'cumulate')),
    ADD COLUMN hop_size interval,
    ADD COLUMN hop_slide interval;

COMMENT ON COLUMN flowstate.view.hop_kind IS
'for the panes of a continuous view of hopping or cumulating windows: hop or cumulate';
COMMENT ON COLUMN flowstate.view.hop_size IS
'for those panes: the size of the hopping windows, or the largest cumulating window';
COMMENT ON COLUMN flowstate.view.hop_slide IS
'for those panes: the slide of the hopping windows, or the step of the cumulating ones';

-- a window of a view is final once it ends, plus allowed_lateness, behind
-- the watermark; for a view of hopping windows, the windows of hop_size;
-- of cumulating windows, all those starting at window_start (the largest
-- ends last); for the panes of hopping windows, once the earliest window
-- holding the pane is final
CREATE OR REPLACE FUNCTION flowstate.is_final(view regclass, window_start timestamptz)
RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
             WHEN v.hop_view = $1 THEN
               $2 + make_interval(secs => date_part('epoch', v.hop_size))
             WHEN v.hop_kind = 'hop' THEN
               flowstate.tumble($2 + make_interval(secs => date_part('epoch', v.window_size - v.hop_size))
                                - interval '1 microsecond', v.hop_slide)
               + make_interval(secs => date_part('epoch', v.hop_slide + v.hop_size))
             ELSE $2 + make_interval(secs => date_part('epoch', v.window_size))
           END <= f.final_up_to
      FROM flowstate.views f JOIN flowstate.view v ON v.view = f.view
     WHERE (f.view = $1 OR v.hop_view = $1) AND v.window_size IS NOT NULL
$$;
