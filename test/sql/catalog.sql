-- The catalog: declarations that pg_dump keeps, readable by all, written by flowstate
SELECT c.relname, c.relkind, c.relpersistence
  FROM pg_depend d JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'flowstate')
   AND d.deptype = 'e'
 ORDER BY c.relname;

-- every catalog table and its sequence is dumped with its rows
SELECT cfg::regclass AS dumped, coalesce(nullif(cond, ''), '(all rows)') AS condition
  FROM pg_extension, unnest(extconfig, extcondition) AS u(cfg, cond)
 WHERE extname = 'flowstate'
 ORDER BY 1::text;

SELECT table_name, column_name, data_type, is_nullable
  FROM information_schema.columns
 WHERE table_schema = 'flowstate'
   AND table_name IN ('view', 'stream', 'history', 'dead_letters', 'late_events')
 ORDER BY table_name, ordinal_position;

-- shapes are checked (terse: the failing rows hold creation times)
\set VERBOSITY terse
CREATE TABLE public.orders (ts timestamptz, region text, amount numeric);
INSERT INTO flowstate.view (view, definition, state_table, source, query, window_kind)
VALUES ('public.orders', 'public.orders', 'public.orders', 'public.orders', 'SELECT 1', 'sliding');
INSERT INTO flowstate.view (view, definition, state_table, source, query, status)
VALUES ('public.orders', 'public.orders', 'public.orders', 'public.orders', 'SELECT 1', 'paused');
INSERT INTO flowstate.view (view, definition, state_table, source, query, allowed_lateness)
VALUES ('public.orders', 'public.orders', 'public.orders', 'public.orders', 'SELECT 1', '-1 s');
INSERT INTO flowstate.stream_offsets (view_id, "partition", next_offset) VALUES (1, -1, 0);
INSERT INTO flowstate.history (history_schema, history_name, source, key_columns, tracked_columns)
VALUES ('public', 'h', 'public.orders', '{}', '{region}');
\set VERBOSITY default

-- other roles read the catalog and the monitoring views, and write neither
CREATE ROLE flowstate_reader;
SET ROLE flowstate_reader;
SELECT count(*) FROM flowstate.view;
SELECT count(*) FROM flowstate.dead_letters;
SELECT count(*) > 0 AS sees_workers FROM flowstate.workers;
SELECT count(*) AS views FROM flowstate.views;
SELECT count(*) AS sources FROM flowstate.sources;
INSERT INTO flowstate.stream_offsets (view_id, "partition", next_offset) VALUES (1, 0, 0);
DELETE FROM flowstate.history;
DELETE FROM flowstate.dead_letters;
RESET ROLE;
DROP ROLE flowstate_reader;
DROP TABLE public.orders;
