/* flowstate 0.7.0 -> 0.8.0 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION flowstate UPDATE TO '0.8.0'" to load this file. \quit

-- The catalog first, as flowstate's workers lock it before the state tables
-- and views: an update that took them first could deadlock with a worker.
LOCK TABLE flowstate.view IN ACCESS EXCLUSIVE MODE;

-------------------------------------------------------------------------------
-- Session windows: flowstate.session(ts, gap) OVER (PARTITION BY keys ORDER
-- BY ts) numbers each partition's rows by session (the session's first
-- event time).  A continuous view grouped by it keeps its state per pane of
-- length gap, in a continuous view <name>_panes whose hop_kind is session.
-------------------------------------------------------------------------------
CREATE FUNCTION flowstate.session(ts timestamptz, gap interval)
RETURNS timestamptz
LANGUAGE C IMMUTABLE WINDOW PARALLEL SAFE
AS 'MODULE_PATHNAME', 'flowstate_session';

COMMENT ON FUNCTION flowstate.session(timestamptz, interval) IS
'window function: the start (first event time) of the current row''s session, a run of events each less than gap after the one before; use OVER (PARTITION BY keys ORDER BY ts)';

CREATE FUNCTION flowstate.session(ts timestamp, gap interval)
RETURNS timestamp
LANGUAGE C IMMUTABLE WINDOW PARALLEL SAFE
AS 'MODULE_PATHNAME', 'flowstate_session';

COMMENT ON FUNCTION flowstate.session(timestamp, interval) IS
'window function: the start (first event time) of the current row''s session, a run of events each less than gap after the one before; use OVER (PARTITION BY keys ORDER BY ts)';

ALTER TABLE flowstate.view DROP CONSTRAINT view_hop_kind_check;
ALTER TABLE flowstate.view ADD CONSTRAINT view_hop_kind_check
    CHECK (hop_kind IN ('hop', 'cumulate', 'session'));

COMMENT ON COLUMN flowstate.view.hop_kind IS
'for the panes of a continuous view of hopping, cumulating or session windows: hop, cumulate or session';
COMMENT ON COLUMN flowstate.view.hop_size IS
'for those panes: the size of the hopping windows, the largest cumulating window, or the gap of the sessions';
COMMENT ON COLUMN flowstate.view.hop_slide IS
'for those panes: the slide of the hopping windows, the step of the cumulating ones, or the gap of the sessions';

-- a window of a view is final once it ends, plus allowed_lateness, behind
-- the watermark; for a view of hopping windows, the windows of hop_size;
-- of cumulating windows, all those starting at window_start (the largest
-- ends last); for the panes of hopping windows, once the earliest window
-- holding the pane is final; for a view of session windows, given the
-- session's last event time, once the pane after the one holding it is
-- final (no row that is not late can join the session then)
CREATE OR REPLACE FUNCTION flowstate.is_final(view regclass, window_start timestamptz)
RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
             WHEN v.hop_view = $1 AND v.hop_kind = 'session' THEN
               flowstate.tumble($2, v.hop_size) + make_interval(secs => 2 * date_part('epoch', v.hop_size))
             WHEN v.hop_view = $1 AND v.hop_kind IS NULL THEN
               $2 + make_interval(secs => date_part('epoch', v.window_size))
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

-------------------------------------------------------------------------------
-- A stream's watermark goes by its partitions: the least, over the
-- partitions that are not idle (the foreign table's idle_timeout option), of
-- the largest event time of each.  stream_offsets keeps each partition's, as
-- of the view's state table, for the watermark after a restart.
-------------------------------------------------------------------------------
ALTER TABLE flowstate.stream_offsets ADD COLUMN max_event_time timestamptz;

COMMENT ON COLUMN flowstate.stream_offsets.max_event_time IS
'the largest event time of the view''s messages of the partition before next_offset: its share of the view''s watermark';

-------------------------------------------------------------------------------
-- The windows of a view over a stream become final by the event time every
-- worker of the stream judges lateness with: final_event_time records it as
-- of the view's last flush, which announces (notify, changelog) and expires
-- (retention) the windows it makes final.
-------------------------------------------------------------------------------
ALTER TABLE flowstate.view ADD COLUMN final_event_time timestamptz;

COMMENT ON COLUMN flowstate.view.final_event_time IS
'views over a stream: the event time every worker of the stream judged lateness with as the last flush began; the windows final by it were announced';

-------------------------------------------------------------------------------
-- Views of hopping, cumulating and session windows take retention, notify
-- and changelog: their panes' flush announces the windows of the view that
-- become final through a function made with the view, <name>_final(lo, hi).
-------------------------------------------------------------------------------
ALTER TABLE flowstate.view ADD COLUMN final_function regprocedure;

COMMENT ON COLUMN flowstate.view.final_function IS
'for the panes of a view of hopping, cumulating or session windows with notify or changelog: the function that gives the rows of its windows made final';

-------------------------------------------------------------------------------
-- Views with DISTINCT and ordered-set aggregates (count(DISTINCT x),
-- percentile_cont, mode...) keep, per group and value, its rows and the
-- other aggregates in a continuous view <name>_values whose hop_view is the
-- view users read (hop_kind NULL).
-------------------------------------------------------------------------------
COMMENT ON COLUMN flowstate.view.hop_view IS
'for the panes of a view of hopping, cumulating or session windows, or the values of a view with DISTINCT or ordered-set aggregates: the view users read';
