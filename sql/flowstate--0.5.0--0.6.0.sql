/* flowstate 0.5.0 -> 0.6.0 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION flowstate UPDATE TO '0.6.0'" to load this file. \quit

-- The catalog first, as flowstate's workers lock it before the state tables
-- and views: an update that took them first could deadlock with a worker.
LOCK TABLE flowstate.view IN ACCESS EXCLUSIVE MODE;

-------------------------------------------------------------------------------
-- Time zones: a view evaluates its expressions (WHERE, group keys, aggregate
-- arguments, FILTER) in the TimeZone of the session that created it, so that
-- date_trunc('day', ts) of a timestamptz and its kin are accepted and give
-- what the batch query gives in that zone.  Views made before have none:
-- their expressions cannot depend on it.
-------------------------------------------------------------------------------
ALTER TABLE flowstate.view ADD COLUMN time_zone text;

COMMENT ON COLUMN flowstate.view.time_zone IS
'TimeZone of the session that created the view, which its expressions are evaluated in';

-------------------------------------------------------------------------------
-- Final windows: flowstate.views shows up to where windows are final (the
-- watermark minus allowed_lateness), flowstate.is_final() whether a window
-- is.  Their groups leave shared memory once flushed (views over tables).
-------------------------------------------------------------------------------
CREATE OR REPLACE VIEW flowstate.views AS
    SELECT f.*, v.time_zone,
           f.watermark - pg_catalog.make_interval(secs => pg_catalog.date_part('epoch', v.allowed_lateness))
             AS final_up_to
      FROM flowstate.views() f
      LEFT JOIN flowstate.view v ON v.view = f.view;

CREATE FUNCTION flowstate.is_final(view regclass, window_start timestamptz)
RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT window_start + make_interval(secs => date_part('epoch', v.window_size)) <= f.final_up_to
      FROM flowstate.views f JOIN flowstate.view v ON v.view = f.view
     WHERE f.view = $1 AND v.window_size IS NOT NULL
$$;

COMMENT ON FUNCTION flowstate.is_final(regclass, timestamptz) IS
'whether the window of a continuous view that starts at window_start is final: it never changes again';

-------------------------------------------------------------------------------
-- Retention: the windows of a view that ended longer ago than its retention
-- (behind the watermark) leave its state table, in the flush that passes
-- them.  A new parameter of create_view.
-------------------------------------------------------------------------------
ALTER TABLE flowstate.view ADD COLUMN retention interval CHECK (retention > '0');

COMMENT ON COLUMN flowstate.view.retention IS
'windows that ended longer ago than this, behind the watermark, leave the state table (NULL: kept)';

-------------------------------------------------------------------------------
-- Windows that become final announce themselves: a NOTIFY on the view's
-- channel (its qualified name) per window, and rows in a changelog table
-- (<view>_changelog), in the flush that makes them final.  Both asked for
-- when the view is created: new parameters of create_view.
-------------------------------------------------------------------------------
ALTER TABLE flowstate.view ADD COLUMN notify boolean NOT NULL DEFAULT false;
ALTER TABLE flowstate.view ADD COLUMN changelog regclass;

COMMENT ON COLUMN flowstate.view.notify IS
'a NOTIFY on the channel named as the view (schema.name) for each window that becomes final';
COMMENT ON COLUMN flowstate.view.changelog IS
'the table that receives the rows of each window that becomes final (NULL: none)';

DROP FUNCTION flowstate.create_view(text, text, interval, interval, text);

CREATE FUNCTION flowstate.create_view(
    name text,
    query text,
    watermark_delay interval DEFAULT NULL,
    allowed_lateness interval DEFAULT NULL,
    memory_limit text DEFAULT NULL,
    retention interval DEFAULT NULL,
    notify boolean DEFAULT false,
    changelog boolean DEFAULT false)
RETURNS regclass
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'flowstate_create_view';

COMMENT ON FUNCTION flowstate.create_view(text, text, interval, interval, text, interval, boolean, boolean) IS
'create a continuous view: a view that always holds the result of an aggregate query over a table';

-------------------------------------------------------------------------------
-- Hopping and cumulating windows: flowstate.hop(ts, size, slide) and
-- flowstate.cumulate(ts, step, max_size) return the windows that hold ts.  A
-- continuous view grouped by them keeps its state per pane, in a continuous
-- view <name>_panes whose hop_view is the view users read.
-------------------------------------------------------------------------------
CREATE FUNCTION flowstate.hop(ts timestamptz, size interval, slide interval,
                              OUT window_start timestamptz, OUT window_end timestamptz)
RETURNS SETOF record
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 10
AS 'MODULE_PATHNAME', 'flowstate_hop';

COMMENT ON FUNCTION flowstate.hop(timestamptz, interval, interval) IS
'the hopping windows of length size, starting every slide from the Unix epoch, that hold ts';

CREATE FUNCTION flowstate.hop(ts timestamp, size interval, slide interval,
                              OUT window_start timestamp, OUT window_end timestamp)
RETURNS SETOF record
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 10
AS 'MODULE_PATHNAME', 'flowstate_hop';

COMMENT ON FUNCTION flowstate.hop(timestamp, interval, interval) IS
'the hopping windows of length size, starting every slide from 1970-01-01 00:00, that hold ts';

CREATE FUNCTION flowstate.cumulate(ts timestamptz, step interval, max_size interval,
                                   OUT window_start timestamptz, OUT window_end timestamptz)
RETURNS SETOF record
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 10
AS 'MODULE_PATHNAME', 'flowstate_cumulate';

COMMENT ON FUNCTION flowstate.cumulate(timestamptz, interval, interval) IS
'the cumulating windows that hold ts: from the multiple of max_size before ts, ending every step up to max_size';

CREATE FUNCTION flowstate.cumulate(ts timestamp, step interval, max_size interval,
                                   OUT window_start timestamp, OUT window_end timestamp)
RETURNS SETOF record
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 10
AS 'MODULE_PATHNAME', 'flowstate_cumulate';

COMMENT ON FUNCTION flowstate.cumulate(timestamp, interval, interval) IS
'the cumulating windows that hold ts: from the multiple of max_size before ts, ending every step up to max_size';

ALTER TABLE flowstate.view ADD COLUMN hop_view regclass;

COMMENT ON COLUMN flowstate.view.hop_view IS
'for the panes of a continuous view of hopping windows: that view, which combines them per window';
