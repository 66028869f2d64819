-- Session windows.  flowstate.session(ts, gap) OVER (PARTITION BY keys
-- ORDER BY ts) gives each row the start of its session: a run of events of
-- its partition each less than gap after the one before.  A continuous view
-- that groups a subquery's rows by it keeps its state per pane of length
-- gap (<name>_panes, with the first and last event time of each), numbers
-- the sessions over the panes when it is read, and equals its defining
-- query run as a batch query: after merges, splits, updates and TRUNCATE.
SET TimeZone = 'UTC';
SET datestyle = 'ISO, YMD';

-- the window function alone: 2 sessions of user 1 (a gap of exactly 5
-- minutes starts a new one), 1 of user 2, NULL for a NULL time
SELECT u, ts, flowstate.session(ts, '5 minutes') OVER (PARTITION BY u ORDER BY ts) AS session_start
  FROM (VALUES (1, '2026-01-01 00:00:00'::timestamp), (1, '2026-01-01 00:04:59'),
               (1, '2026-01-01 00:09:59'), (2, '2026-01-01 00:01:00'),
               (2, '2026-01-01 00:03:00'), (2, NULL)) v(u, ts)
 ORDER BY u, ts;
-- wrong calls
SELECT public.try($$SELECT flowstate.session(ts, '5 minutes') OVER (ORDER BY ts DESC) FROM (VALUES (now()), (now() - interval '1 hour')) v(ts)$$);
SELECT public.try($$SELECT flowstate.session(ts, '5 minutes') OVER () FROM (VALUES (now()), (now() - interval '1 hour')) v(ts)$$);
SELECT public.try($$SELECT flowstate.session(now(), '0 minutes') OVER ()$$);
SELECT public.try($$SELECT flowstate.session(now(), '1 month') OVER ()$$);
SELECT public.try($$SELECT flowstate.session(now(), NULL) OVER ()$$);
SELECT public.try($$SELECT flowstate.session(42, '1 minute') OVER ()$$);

CREATE TABLE public.clicks (id serial PRIMARY KEY, ts timestamptz NOT NULL, usr int, page text, amount numeric(10, 2));
ALTER TABLE public.clicks REPLICA IDENTITY FULL;
-- clicks(n, seed): n clicks of 6 users over 3 hours, in bursts
CREATE FUNCTION public.clicks(n int, seed float8) RETURNS void
LANGUAGE sql AS $$
    SELECT setseed(seed);
    INSERT INTO public.clicks (ts, usr, page, amount)
    SELECT '2026-01-01'::timestamptz + (random() * 10800)::int * interval '1 second'
           * (CASE WHEN random() < 0.5 THEN 1 ELSE 0.25 END),
           (random() * 5)::int, 'p' || (random() * 3)::int, round((random() * 100)::numeric, 2)
      FROM generate_series(1, n);
$$;
SELECT public.clicks(300, 0.1);

-- per user, gap 2 minutes; created over rows
SELECT flowstate.create_view('public.visits', $$
    SELECT usr, session_start, count(*) AS clicks, max(ts) AS last_click,
           max(ts) - session_start AS duration, sum(amount) AS spent,
           count(*) FILTER (WHERE page = 'p0') AS home
      FROM (SELECT usr, ts, amount, page,
                   flowstate.session(ts, '2 minutes') OVER (PARTITION BY usr ORDER BY ts) AS session_start
              FROM public.clicks) s
     GROUP BY usr, session_start $$);
-- no partition, a WHERE inside, HAVING, the time an expression of timestamp
SELECT flowstate.create_view('public.busy_spells', $$
    SELECT session_start AS spell, count(*) AS n, avg(amount * 2) AS mean
      FROM (SELECT timezone('UTC', c.ts) AS t, c.amount,
                   flowstate.session(timezone('UTC', c.ts), '40 seconds') OVER (ORDER BY timezone('UTC', c.ts)) AS session_start
              FROM public.clicks c WHERE c.amount > 20) s
     GROUP BY session_start HAVING count(*) > 1 $$);
-- two keys, one of them an expression
SELECT flowstate.create_view('public.page_visits', $$
    SELECT usr, pg, session_start, count(*) AS n, min(amount) AS lo
      FROM (SELECT usr, upper(page) AS pg, ts, amount,
                   flowstate.session(ts, '5 minutes') OVER (PARTITION BY usr, upper(page) ORDER BY ts) AS session_start
              FROM public.clicks) s
     GROUP BY usr, pg, session_start $$);
SELECT view, window_kind FROM flowstate.views WHERE view::text LIKE '%visits%' OR view::text LIKE '%spells%'
 ORDER BY view::text;
SELECT view, hop_view, hop_kind, hop_size, hop_slide, window_size FROM flowstate.view
 WHERE hop_kind = 'session' ORDER BY view::text;

-- differences(view, query): rows the view and the query do not share
CREATE FUNCTION public.differences(v regclass, q text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM ((TABLE %s EXCEPT ALL %s) UNION ALL (%s EXCEPT ALL TABLE %s)) d',
                   v, q, q, v) INTO n;
    RETURN n;
END
$$;
CREATE VIEW public.check_sessions AS
SELECT public.differences('public.visits', $q$
    SELECT usr, session_start, count(*) AS clicks, max(ts) AS last_click,
           max(ts) - session_start AS duration, sum(amount) AS spent,
           count(*) FILTER (WHERE page = 'p0') AS home
      FROM (SELECT usr, ts, amount, page,
                   flowstate.session(ts, '2 minutes') OVER (PARTITION BY usr ORDER BY ts) AS session_start
              FROM public.clicks) s
     GROUP BY usr, session_start $q$) AS visits,
       public.differences('public.busy_spells', $q$
    SELECT session_start AS spell, count(*) AS n, avg(amount * 2) AS mean
      FROM (SELECT timezone('UTC', c.ts) AS t, c.amount,
                   flowstate.session(timezone('UTC', c.ts), '40 seconds') OVER (ORDER BY timezone('UTC', c.ts)) AS session_start
              FROM public.clicks c WHERE c.amount > 20) s
     GROUP BY session_start HAVING count(*) > 1 $q$) AS busy_spells,
       public.differences('public.page_visits', $q$
    SELECT usr, pg, session_start, count(*) AS n, min(amount) AS lo
      FROM (SELECT usr, upper(page) AS pg, ts, amount,
                   flowstate.session(ts, '5 minutes') OVER (PARTITION BY usr, upper(page) ORDER BY ts) AS session_start
              FROM public.clicks) s
     GROUP BY usr, pg, session_start $q$) AS page_visits,
       (SELECT count(*) FROM public.visits) AS visits_rows,
       (SELECT count(*) FROM public.busy_spells) AS spells_rows,
       (SELECT count(*) FROM public.page_visits) AS page_visits_rows;

SELECT flowstate.wait_for();
SELECT * FROM public.check_sessions;

-- user 9: three sessions (the third starts exactly a gap after the second
-- ends), then a click that bridges the first two merges them into one,
-- then its deletion splits them again
INSERT INTO public.clicks (ts, usr, page, amount) VALUES
    ('2026-01-02 00:00:00+00', 9, 'p0', 1), ('2026-01-02 00:01:30+00', 9, 'p1', 2),
    ('2026-01-02 00:05:00+00', 9, 'p2', 3), ('2026-01-02 00:06:00+00', 9, 'p0', 4),
    ('2026-01-02 00:08:00+00', 9, 'p0', 5);
SELECT flowstate.wait_for();
SELECT * FROM public.visits WHERE usr = 9 ORDER BY session_start;
INSERT INTO public.clicks (ts, usr, page, amount) VALUES ('2026-01-02 00:03:20+00', 9, 'p1', 10);
SELECT flowstate.wait_for();
SELECT * FROM public.visits WHERE usr = 9 ORDER BY session_start;
DELETE FROM public.clicks WHERE usr = 9 AND amount = 10;
SELECT flowstate.wait_for();
SELECT * FROM public.visits WHERE usr = 9 ORDER BY session_start;
-- moving the last click of the first session later extends it to the second
UPDATE public.clicks SET ts = '2026-01-02 00:03:10+00' WHERE usr = 9 AND amount = 2;
SELECT flowstate.wait_for();
SELECT * FROM public.visits WHERE usr = 9 ORDER BY session_start;
SELECT * FROM public.check_sessions;

-- churn: inserts, updates that move clicks in time and between users,
-- deletes that remove first, last and middle events of sessions
SELECT public.clicks(300, 0.2);
UPDATE public.clicks SET ts = ts + interval '90 seconds', usr = (usr + 1) % 6 WHERE id % 7 = 0;
UPDATE public.clicks SET amount = amount + 1 WHERE id % 5 = 0;
DELETE FROM public.clicks WHERE amount > 90;
DELETE FROM public.clicks WHERE id % 11 = 0;
SELECT flowstate.wait_for();
SELECT * FROM public.check_sessions;
-- TRUNCATE, then rows again
TRUNCATE public.clicks;
SELECT flowstate.wait_for();
SELECT * FROM public.check_sessions;
SELECT public.clicks(200, 0.3);
SELECT flowstate.wait_for();
SELECT * FROM public.check_sessions;

-- a role reads the view only if it may read its panes too
CREATE ROLE session_reader;
GRANT SELECT ON public.visits TO session_reader;
SET ROLE session_reader;
SELECT public.try('SELECT count(*) FROM public.visits');
RESET ROLE;
GRANT SELECT ON public.visits_panes TO session_reader;
SET ROLE session_reader;
SELECT count(*) > 0 AS rows_read FROM public.visits;
RESET ROLE;
REVOKE ALL ON public.visits, public.visits_panes FROM session_reader;
DROP ROLE session_reader;

-- final sessions: a row is late once the pane of length gap that holds it
-- is final (its end plus allowed_lateness behind the watermark); a session
-- is final once the pane after its last event is, as no row that is not
-- late can join it then (flowstate.is_final, given its last event time)
CREATE TABLE public.taps (id serial PRIMARY KEY, ts timestamptz NOT NULL, k int NOT NULL, v int);
ALTER TABLE public.taps REPLICA IDENTITY FULL;
SELECT flowstate.create_view('public.tap_sessions', $$
    SELECT k, session_start, count(*) AS n, max(ts) AS last_tap, sum(v) AS total
      FROM (SELECT k, ts, v,
                   flowstate.session(ts, '1 minute') OVER (PARTITION BY k ORDER BY ts) AS session_start
              FROM public.taps) s
     GROUP BY k, session_start $$, allowed_lateness => '30 seconds', notify => true, changelog => true);
INSERT INTO public.taps (ts, k, v)
SELECT '2026-01-01'::timestamptz + i * interval '20 seconds', 0, i FROM generate_series(0, 6) i;
INSERT INTO public.taps (ts, k, v) VALUES
    ('2026-01-01 00:05:00+00', 1, 10), ('2026-01-01 00:05:50+00', 1, 11),
    ('2026-01-01 00:08:10+00', 3, 30), ('2026-01-01 00:10:00+00', 2, 20);
SELECT flowstate.wait_for();
SELECT watermark, final_up_to FROM flowstate.views WHERE view = 'public.tap_sessions_panes'::regclass;
SELECT k, session_start, last_tap, flowstate.is_final('public.tap_sessions', last_tap)
  FROM public.tap_sessions ORDER BY k;
-- 00:03:00 of key 0 falls in a final pane: late; 00:09:05 of key 3 does not,
-- and joins the session of 00:08:10, not final yet
INSERT INTO public.taps (ts, k, v) VALUES ('2026-01-01 00:03:00+00', 0, 100), ('2026-01-01 00:09:05+00', 3, 31);
SELECT flowstate.wait_for();
CREATE PROCEDURE public.wait_late(expected bigint)
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 100 LOOP
        EXIT WHEN (SELECT count(*) FROM flowstate.late_events
                    WHERE view::text LIKE 'tap_sessions%') >= expected;
        COMMIT;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
CALL public.wait_late(1);
SELECT view, change, event_time, watermark FROM flowstate.late_events
 WHERE view::text LIKE 'tap_sessions%' ORDER BY event_time;
SELECT * FROM public.tap_sessions ORDER BY k, session_start;
-- the sessions final are in the changelog, once each, as the view shows them
SELECT k, session_start, n, last_tap, total FROM public.tap_sessions_changelog ORDER BY k, session_start;
SELECT count(*) AS differences FROM (SELECT k, session_start, n, last_tap, total FROM public.tap_sessions_changelog
                                     EXCEPT ALL
                                     SELECT * FROM public.tap_sessions WHERE flowstate.is_final('public.tap_sessions', last_tap)) d;
SELECT public.differences('public.tap_sessions', $q$
    SELECT k, session_start, count(*) AS n, max(ts) AS last_tap, sum(v) AS total
      FROM (SELECT k, ts, v,
                   flowstate.session(ts, '1 minute') OVER (PARTITION BY k ORDER BY ts) AS session_start
              FROM public.taps WHERE v <> 100) s
     GROUP BY k, session_start $q$) AS differences_but_late;
DELETE FROM flowstate.late_events WHERE view::text LIKE 'tap_sessions%';
DROP PROCEDURE public.wait_late(bigint);
SELECT flowstate.drop_view('public.tap_sessions');
DROP TABLE public.taps;

-- retention: the sessions that ended (their last event plus the gap)
-- longer than retention before the watermark leave the panes' state table,
-- whole, and the view; retention is at least twice the gap plus
-- allowed_lateness (such a session is final)
CREATE TABLE public.logins (id serial PRIMARY KEY, ts timestamptz NOT NULL, u int NOT NULL);
ALTER TABLE public.logins REPLICA IDENTITY FULL;
SELECT flowstate.create_view('public.login_sessions', $$
    SELECT u, session_start, count(*) AS n, max(ts) AS last_login
      FROM (SELECT u, ts, flowstate.session(ts, '1 minute') OVER (PARTITION BY u ORDER BY ts) AS session_start
              FROM public.logins) s
     GROUP BY u, session_start $$, allowed_lateness => '0', retention => '5 minutes');
-- every 3 minutes a burst of 6 logins 20 seconds apart, users 0 and 1 in
-- turn; user 2 every 30 seconds, one session of 28 minutes: it goes whole
-- or not at all.  In time order: the watermark follows the rows of a
-- transaction one by one, and allowed_lateness is 0
INSERT INTO public.logins (ts, u)
SELECT ts, u FROM (
    SELECT '2026-01-01'::timestamptz + m * interval '3 minutes' + s * interval '20 seconds' AS ts, m % 2 AS u
      FROM generate_series(0, 9) m, generate_series(0, 5) s
    UNION ALL
    SELECT '2026-01-01'::timestamptz + i * interval '30 seconds', 2 FROM generate_series(0, 56) i) l
 ORDER BY ts, u;
SELECT flowstate.wait_for();
-- (the flush that records the watermark expires the sessions)
DO $$
BEGIN
    FOR i IN 1 .. 100 LOOP
        EXIT WHEN (SELECT max_event_time FROM flowstate.view
                    WHERE view = 'public.login_sessions_panes'::regclass) = '2026-01-01 00:28:40+00';
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
-- the watermark is 00:28:40: the sessions that ended by 00:23:40 are gone
SELECT * FROM public.login_sessions ORDER BY session_start, u;
SELECT public.differences('public.login_sessions', $q$
    SELECT u, session_start, count(*) AS n, max(ts) AS last_login
      FROM (SELECT u, ts, flowstate.session(ts, '1 minute') OVER (PARTITION BY u ORDER BY ts) AS session_start
              FROM public.logins) s
     GROUP BY u, session_start
    HAVING max(ts) + interval '1 minute' > (SELECT max_event_time - interval '5 minutes' FROM flowstate.view
                                             WHERE view = 'public.login_sessions_panes'::regclass) $q$) AS differences_but_gone;
SELECT state_table AS login_state FROM flowstate.view WHERE view = 'public.login_sessions_panes'::regclass \gset
SELECT min(k1) AS first_pane_kept, count(*) AS panes_kept FROM :login_state;
SELECT count(*) AS late FROM flowstate.late_events WHERE view = 'public.login_sessions_panes'::regclass;
SELECT public.try($$SELECT flowstate.create_view('public.s', 'SELECT u, session_start, count(*) FROM (SELECT u, flowstate.session(ts, ''1 minute'') OVER (PARTITION BY u ORDER BY ts) AS session_start FROM public.logins) s GROUP BY u, session_start', allowed_lateness => '0', retention => '1 minute')$$);
SELECT flowstate.drop_view('public.login_sessions');
DROP TABLE public.logins;

-- what a view of session windows does not take
SELECT public.try($$SELECT flowstate.create_view('public.s', 'SELECT usr, session_start, count(*) FROM (SELECT usr, flowstate.session(ts, ''1 minute'') OVER (PARTITION BY usr) AS session_start FROM public.clicks) s GROUP BY usr, session_start')$$);
SELECT public.try($$SELECT flowstate.create_view('public.s', 'SELECT usr, session_start, count(*) FROM (SELECT usr, flowstate.session(ts, ''1 minute'') OVER (PARTITION BY usr ORDER BY ts DESC) AS session_start FROM public.clicks) s GROUP BY usr, session_start')$$);
SELECT public.try($$SELECT flowstate.create_view('public.s', 'SELECT usr, session_start, count(*) FROM (SELECT usr, flowstate.session(ts, ''1 minute'') OVER (PARTITION BY usr ORDER BY ts, id) AS session_start FROM public.clicks) s GROUP BY usr, session_start')$$);
SELECT public.try($$SELECT flowstate.create_view('public.s', 'SELECT session_start, count(*) FROM (SELECT usr, flowstate.session(ts, ''1 minute'') OVER (PARTITION BY usr ORDER BY ts) AS session_start FROM public.clicks) s GROUP BY session_start')$$);
SELECT public.try($$SELECT flowstate.create_view('public.s', 'SELECT usr, page, session_start, count(*) FROM (SELECT usr, page, flowstate.session(ts, ''1 minute'') OVER (PARTITION BY usr ORDER BY ts) AS session_start FROM public.clicks) s GROUP BY usr, page, session_start')$$);
SELECT public.try($$SELECT flowstate.create_view('public.s', 'SELECT usr, count(*) FROM (SELECT usr, flowstate.session(ts, ''1 minute'') OVER (PARTITION BY usr ORDER BY ts) AS session_start FROM public.clicks) s GROUP BY usr')$$);
SELECT public.try($$SELECT flowstate.create_view('public.s', 'SELECT usr, session_start, count(*) FROM (SELECT usr, amount, flowstate.session(ts, ''1 minute'') OVER (PARTITION BY usr ORDER BY ts) AS session_start FROM public.clicks) s WHERE amount > 3 GROUP BY usr, session_start')$$);
SELECT public.try($$SELECT flowstate.create_view('public.s', 'SELECT usr, session_start, count(*), min(session_start) FROM (SELECT usr, flowstate.session(ts, ''1 minute'') OVER (PARTITION BY usr ORDER BY ts) AS session_start FROM public.clicks) s GROUP BY usr, session_start')$$);
SELECT public.try($$SELECT flowstate.create_view('public.s', 'SELECT usr, session_start, count(*) FROM (SELECT usr, flowstate.session(ts, (''1 minute'')::interval * id) OVER (PARTITION BY usr ORDER BY ts) AS session_start FROM public.clicks) s GROUP BY usr, session_start')$$);
SELECT public.try($$SELECT flowstate.create_view('public.s', 'SELECT usr, session_start, count(*) FROM (SELECT usr, flowstate.session(ts, ''-1 minute'') OVER (PARTITION BY usr ORDER BY ts) AS session_start FROM public.clicks) s GROUP BY usr, session_start')$$);
SELECT public.try($$SELECT flowstate.create_view('public.s', 'SELECT usr, session_start, count(*) FROM (SELECT usr, flowstate.session(ts, ''1 minute'') OVER (PARTITION BY usr ORDER BY ts) AS session_start, row_number() OVER () AS r FROM public.clicks) s GROUP BY usr, session_start')$$);
SELECT public.try($$SELECT flowstate.create_view('public.s', 'SELECT usr, flowstate.session(max(ts), ''1 minute'') OVER (ORDER BY max(ts)) FROM public.clicks GROUP BY usr')$$);
SELECT public.try($$SELECT flowstate.create_view('public.s', 'SELECT c.usr, session_start, count(*) FROM (SELECT usr, flowstate.session(ts, ''1 minute'') OVER (PARTITION BY usr ORDER BY ts) AS session_start FROM public.clicks) s JOIN public.clicks c ON c.usr = s.usr GROUP BY c.usr, session_start')$$);
SELECT public.try($$SELECT flowstate.create_view('public.s', 'SELECT usr, session_start, count(*) FROM (SELECT usr, flowstate.session(ts, ''1 minute'') OVER (PARTITION BY usr ORDER BY ts) AS session_start FROM public.clicks) s GROUP BY usr, session_start ORDER BY 1')$$);

-- drop_view drops the view and its panes, and so does DROP VIEW
DROP VIEW public.check_sessions;
SELECT flowstate.drop_view('public.visits');
SELECT to_regclass('public.visits_panes') AS panes_after_drop;
DROP VIEW public.busy_spells;
SELECT to_regclass('public.busy_spells_panes') AS panes_after_drop_view;
SELECT flowstate.drop_view('public.page_visits');
SELECT count(*) AS panes_in_catalog FROM flowstate.view WHERE hop_view IS NOT NULL;
DROP FUNCTION public.differences(regclass, text);
DROP FUNCTION public.clicks(int, float8);
DROP TABLE public.clicks;
