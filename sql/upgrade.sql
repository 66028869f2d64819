-- ALTER EXTENSION ... UPDATE follows the chain of update scripts
SELECT extversion FROM pg_extension WHERE extname = 'flowstate';
SELECT source, target, path FROM pg_extension_update_paths('flowstate')
 WHERE path IS NOT NULL ORDER BY 1, 2;
ALTER EXTENSION flowstate UPDATE TO '9.9';

-- from the oldest version: install it, update, and find the current objects
DROP EXTENSION flowstate;
SELECT wait_for($$
    SELECT count(*) = 0 FROM pg_stat_activity
     WHERE backend_type = 'flowstate manager' AND datname = current_database()
$$) AS manager_gone;
CREATE EXTENSION flowstate VERSION '0.1.0';
SELECT to_regclass('flowstate.views') IS NULL AS no_views_yet,
       to_regprocedure('flowstate.create_view(text, text, interval, interval, text)') IS NULL
       AS no_create_view_yet;
ALTER EXTENSION flowstate UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'flowstate';
SELECT to_regclass('flowstate.views') IS NOT NULL AS has_views,
       to_regprocedure('flowstate.create_view(text, text, interval, interval, text)') IS NOT NULL
       AS has_create_view;

-- the updated extension works: a manager, and a continuous view
SELECT wait_for($$
    SELECT count(*) = 1 FROM flowstate.workers
     WHERE kind = 'manager' AND datname = current_database() AND state = 'running'
$$) AS manager_back;
CREATE TABLE public.upgraded (k int, v int);
ALTER TABLE public.upgraded REPLICA IDENTITY FULL;
INSERT INTO public.upgraded VALUES (1, 10), (1, 20), (2, 5);
SELECT flowstate.create_view('public.upgraded_sums', 'SELECT k, sum(v) AS total FROM public.upgraded GROUP BY k');
SELECT flowstate.wait_for();
SELECT * FROM public.upgraded_sums ORDER BY k;
DROP TABLE public.upgraded CASCADE;

-- and the catalog tables are dumped, the dropped 0.1.0 catalog table no more
SELECT cfg::regclass AS dumped
  FROM pg_extension, unnest(extconfig) AS u(cfg)
 WHERE extname = 'flowstate'
 ORDER BY 1::text;

-- from 0.2.0 with a continuous view of a plain role: after the update its
-- definition is its owner's, and its state is served only while the owner
-- may read the source
DROP EXTENSION flowstate;
SELECT wait_for($$
    SELECT count(*) = 0 FROM pg_stat_activity
     WHERE backend_type = 'flowstate manager' AND datname = current_database()
$$) AS manager_gone;
CREATE EXTENSION flowstate VERSION '0.2.0';
CREATE ROLE upgrader;
CREATE TABLE public.upgraded (k int, v int);
ALTER TABLE public.upgraded REPLICA IDENTITY FULL;
INSERT INTO public.upgraded VALUES (1, 10), (1, 20), (2, 5);
GRANT SELECT ON public.upgraded TO upgrader;
GRANT CREATE ON SCHEMA public TO upgrader;
SET ROLE upgrader;
SELECT flowstate.create_view('public.upgraded_sums', 'SELECT k, sum(v) AS total FROM public.upgraded GROUP BY k');
RESET ROLE;
SELECT d.relowner::regrole AS definition_owner, s.relrowsecurity AS state_policy
  FROM flowstate.view v JOIN pg_class d ON d.oid = v.definition JOIN pg_class s ON s.oid = v.state_table;
ALTER EXTENSION flowstate UPDATE;
SELECT d.relowner::regrole AS definition_owner, s.relrowsecurity AS state_policy
  FROM flowstate.view v JOIN pg_class d ON d.oid = v.definition JOIN pg_class s ON s.oid = v.state_table;
SELECT wait_for($$
    SELECT count(*) = 1 FROM flowstate.workers
     WHERE kind = 'manager' AND datname = current_database() AND state = 'running'
$$) AS manager_back;
SELECT flowstate.wait_for();
SET ROLE upgrader;
SELECT * FROM public.upgraded_sums ORDER BY k;
RESET ROLE;
REVOKE SELECT ON public.upgraded FROM upgrader;
SET ROLE upgrader;
\set VERBOSITY terse
SELECT * FROM public.upgraded_sums ORDER BY k;
\set VERBOSITY default
RESET ROLE;
DROP TABLE public.upgraded CASCADE;
REVOKE CREATE ON SCHEMA public FROM upgrader;
DROP ROLE upgrader;
