/* flowstate 0.4.0 -> 0.5.0 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION flowstate UPDATE TO '0.5.0'" to load this file. \quit

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
