-- ALTER EXTENSION ... UPDATE: one version so far, so no update path yet
SELECT extversion FROM pg_extension WHERE extname = 'flowstate';
SELECT source, target, path FROM pg_extension_update_paths('flowstate') ORDER BY 1, 2;
ALTER EXTENSION flowstate UPDATE;
ALTER EXTENSION flowstate UPDATE TO '0.1.0';
ALTER EXTENSION flowstate UPDATE TO '9.9';

-- dropping and creating again at the named version gives back the manager
DROP EXTENSION flowstate;
SELECT wait_for($$
    SELECT count(*) = 0 FROM pg_stat_activity
     WHERE backend_type = 'flowstate manager' AND datname = current_database()
$$) AS manager_gone;
CREATE EXTENSION flowstate VERSION '0.1.0';
SELECT wait_for($$
    SELECT count(*) = 1 FROM flowstate.workers
     WHERE kind = 'manager' AND datname = current_database() AND state = 'running'
$$) AS manager_back;
