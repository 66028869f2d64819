/* flowstate 0.5.0 -> 0.6.0 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION flowstate UPDATE TO '0.6.0'" to load this file. \quit

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

CREATE OR REPLACE VIEW flowstate.views AS
    SELECT f.*, v.time_zone
      FROM flowstate.views() f
      LEFT JOIN flowstate.view v ON v.view = f.view;
