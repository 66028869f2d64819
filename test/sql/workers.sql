-- flowstate.workers: the launcher, one manager per database, state and last error
SELECT wait_for($$
    SELECT activity = 'managing 0 views, 0 streams, 0 histories' FROM flowstate.workers
     WHERE kind = 'manager' AND datname = current_database()
$$) AS manager_idle;
SELECT kind, datname = current_database() AS here, pid IS NOT NULL AS has_pid,
       state, failures, last_error, retry_at IS NULL AS no_retry, activity
  FROM flowstate.workers
 WHERE kind = 'launcher' OR datname = current_database()
 ORDER BY kind;

-- the launcher's pid is the one pg_stat_activity shows
SELECT (SELECT pid FROM flowstate.workers WHERE kind = 'launcher') =
       (SELECT pid FROM pg_stat_activity WHERE backend_type = 'flowstate launcher')
       AS same_launcher;

-- a manager that fails is restarted with backoff and its error is shown
ALTER TABLE flowstate.history RENAME TO history_moved;
SELECT wait_for($$
    SELECT failures >= 2 AND state IN ('backoff', 'starting')
      FROM flowstate.workers
     WHERE kind = 'manager' AND datname = current_database()
$$) AS failing;
SELECT last_error, last_error_at IS NOT NULL AS has_error_time
  FROM flowstate.workers
 WHERE kind = 'manager' AND datname = current_database();

-- once the cause is gone it runs again (it has read its catalog: a worker
-- is 'running' as soon as it attaches); the failure count stays visible
SELECT failures AS failures_seen FROM flowstate.workers
 WHERE kind = 'manager' AND datname = current_database() \gset
ALTER TABLE flowstate.history_moved RENAME TO history;
SELECT wait_for($$
    SELECT state = 'running' AND activity = 'managing 0 views, 0 streams, 0 histories'
      FROM flowstate.workers
     WHERE kind = 'manager' AND datname = current_database()
$$) AS recovered;
SELECT failures >= :failures_seen AS failures_kept FROM flowstate.workers
 WHERE kind = 'manager' AND datname = current_database();
