-- The catalog: declarations that pg_dump keeps, readable by all, written by flowstate
SELECT c.relname, c.relkind, c.relpersistence
  FROM pg_depend d JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'flowstate')
 ORDER BY c.relname;

-- every catalog table and its sequence is dumped with its rows
SELECT cfg::regclass AS dumped, coalesce(nullif(cond, ''), '(all rows)') AS condition
  FROM pg_extension, unnest(extconfig, extcondition) AS u(cfg, cond)
 WHERE extname = 'flowstate'
 ORDER BY 1::text;

SELECT table_name, column_name, data_type, is_nullable
  FROM information_schema.columns
 WHERE table_schema = 'flowstate' AND table_name IN ('view', 'stream', 'history')
 ORDER BY table_name, ordinal_position;

-- shapes are checked (terse: the failing rows hold creation times)
\set VERBOSITY terse
CREATE TABLE public.orders (ts timestamptz, region text, amount numeric);
INSERT INTO flowstate.view (view_schema, view_name, source, query, window_kind)
VALUES ('public', 'v', 'public.orders', 'SELECT 1', 'sliding');
INSERT INTO flowstate.stream (relation, workers) VALUES ('public.orders', 0);
INSERT INTO flowstate.history (history_schema, history_name, source, key_columns, tracked_columns)
VALUES ('public', 'h', 'public.orders', '{}', '{region}');
INSERT INTO flowstate.view (view_schema, view_name, source, query)
VALUES ('public', 'v', 'public.orders', 'SELECT 1'),
       ('public', 'v', 'public.orders', 'SELECT 2');
\set VERBOSITY default

-- the manager reports what the catalog holds
INSERT INTO flowstate.view (view_schema, view_name, source, query)
VALUES ('public', 'v', 'public.orders', 'SELECT 1');
SELECT wait_for($$
    SELECT activity = 'managing 1 views, 0 streams, 0 histories' FROM flowstate.workers
     WHERE kind = 'manager' AND datname = current_database()
$$) AS manager_saw_view;
DELETE FROM flowstate.view;

-- other roles read the catalog and the monitoring view, and write neither
CREATE ROLE flowstate_reader;
SET ROLE flowstate_reader;
SELECT count(*) FROM flowstate.view;
SELECT count(*) > 0 AS sees_workers FROM flowstate.workers;
INSERT INTO flowstate.stream (relation) VALUES ('public.orders');
DELETE FROM flowstate.history;
RESET ROLE;
DROP ROLE flowstate_reader;
DROP TABLE public.orders;
