-- The security model of continuous views: a view evaluates as its owner,
-- read-only, and never shows a role more than its owner's batch query
-- would; one role's view cannot harm another's; the internal objects grant
-- nothing the view itself would not.
SET TimeZone = 'UTC';
\set VERBOSITY terse

CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE ROLE carol LOGIN;
CREATE ROLE dave LOGIN;
CREATE SCHEMA alice AUTHORIZATION alice;
CREATE SCHEMA bob AUTHORIZATION bob;
CREATE SCHEMA dave AUTHORIZATION dave;
GRANT USAGE ON SCHEMA alice, bob, dave TO PUBLIC;

-- a table anyone may read, with a column (ssn) no view uses
CREATE TABLE public.payroll (id int PRIMARY KEY, dept text, amount int, ssn text);
ALTER TABLE public.payroll REPLICA IDENTITY FULL;
GRANT SELECT ON public.payroll TO PUBLIC;
INSERT INTO public.payroll VALUES (1, 'a', 10, '111-11-1111'), (2, 'b', 20, '222-22-2222');
-- a table nobody but the superuser may read
CREATE TABLE public.secret (s text);
INSERT INTO public.secret VALUES ('TOPSECRET');
REVOKE ALL ON public.secret FROM PUBLIC;

--
-- 1. Privilege escalation: a function of alice's view that makes her
-- superuser, directly or through an IMMUTABLE wrapper, fails as alice's
-- own statement would, read-only; its rows are dead letters.
--
SET ROLE alice;
CREATE FUNCTION alice.promote_volatile(x int) RETURNS int LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    ALTER ROLE alice SUPERUSER;
    RETURN x;
END $$;
CREATE FUNCTION alice.promote(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM alice.promote_volatile(x);
    RETURN x;
END $$;
CREATE FUNCTION alice.promote_wrapper(x int) RETURNS int LANGUAGE sql IMMUTABLE AS $$
    SELECT alice.promote(x) $$;
-- the rows already there are backfilled, the later ones decoded
SELECT flowstate.create_view('alice.direct', $$
    SELECT alice.promote(amount) AS k, count(*) AS n FROM public.payroll GROUP BY 1 $$);
SELECT flowstate.create_view('alice.wrapped', $$
    SELECT dept, sum(alice.promote_wrapper(amount)) AS total FROM public.payroll GROUP BY 1 $$);
RESET ROLE;
SELECT flowstate.wait_for();
INSERT INTO public.payroll VALUES (3, 'a', 30, '333-33-3333');
SELECT flowstate.wait_for();
SELECT rolsuper FROM pg_roles WHERE rolname = 'alice';
SELECT * FROM alice.direct;
SELECT * FROM alice.wrapped;
SELECT public.wait_durable();
SELECT view, count(*) AS rows, min(sqlstate) AS sqlstate, min(error) AS error
  FROM flowstate.dead_letters WHERE view IN ('alice.direct'::regclass, 'alice.wrapped'::regclass)
 GROUP BY view ORDER BY view::text;

--
-- 2. A function of the view reads a table its owner cannot: refused as in
-- the owner's own query, nothing of the table shows.
--
SET ROLE alice;
CREATE FUNCTION alice.peek(x int) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT string_agg(s, ',') FROM public.secret $$;
SELECT alice.peek(1);
SELECT flowstate.create_view('alice.peeked', $$
    SELECT alice.peek(amount) AS leak, count(*) AS n FROM public.payroll GROUP BY 1 $$);
RESET ROLE;
SELECT flowstate.wait_for();
INSERT INTO public.payroll VALUES (4, 'b', 40, '444-44-4444');
SELECT flowstate.wait_for();
SELECT count(*) AS leaked FROM alice.peeked WHERE leak LIKE '%TOPSECRET%';
SELECT public.wait_durable();
SELECT count(*) AS rows, min(sqlstate) AS sqlstate, bool_or(error LIKE '%TOPSECRET%') AS leaked
  FROM flowstate.dead_letters WHERE view = 'alice.peeked'::regclass;

--
-- 3. One role's failing view does not stop another's: bob's view keeps
-- equal to its batch query while alice's functions try to write, and the
-- decoding worker does not restart.
--
SET ROLE alice;
CREATE TABLE alice.log (x int);
CREATE FUNCTION alice.write_log(x int) RETURNS void LANGUAGE sql VOLATILE AS $$
    INSERT INTO alice.log VALUES (x) $$;
CREATE FUNCTION alice.bump(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM alice.write_log(x);
    RETURN x;
END $$;
CREATE FUNCTION alice.xid(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM pg_current_xact_id();
    RETURN x;
END $$;
SELECT flowstate.create_view('alice.bumped', $$
    SELECT alice.bump(amount) AS k, count(*) AS n FROM public.payroll GROUP BY 1 $$);
SELECT flowstate.create_view('alice.xids', $$
    SELECT alice.xid(amount) AS k, count(*) AS n FROM public.payroll GROUP BY 1 $$);
SET ROLE bob;
SELECT flowstate.create_view('bob.per_dept', $$
    SELECT dept, count(*) AS n, sum(amount) AS total FROM public.payroll GROUP BY dept $$);
RESET ROLE;
SELECT flowstate.wait_for();
SELECT pid AS decoder_pid FROM flowstate.sources WHERE kind = 'logical decoding' \gset
INSERT INTO public.payroll SELECT i, chr(97 + i % 3), i, 'x' FROM generate_series(5, 104) i;
UPDATE public.payroll SET amount = amount + 1 WHERE id % 7 = 0;
DELETE FROM public.payroll WHERE id % 11 = 0;
SELECT flowstate.wait_for();
INSERT INTO public.payroll SELECT i, chr(97 + i % 3), i, 'x' FROM generate_series(105, 154) i;
SELECT flowstate.wait_for();
SELECT pid = :decoder_pid AS same_decoder FROM flowstate.sources WHERE kind = 'logical decoding';
SELECT public.same('bob.per_dept') AS differences;
SELECT count(*) AS logged FROM alice.log;
SELECT count(*) AS shown FROM alice.bumped;
SELECT count(*) AS shown FROM alice.xids;
SELECT public.wait_durable();
SELECT view, count(*) AS rows, min(sqlstate) AS sqlstate, min(error) AS error
  FROM flowstate.dead_letters WHERE view IN ('alice.bumped'::regclass, 'alice.xids'::regclass)
 GROUP BY view ORDER BY view::text;
SELECT view, status FROM flowstate.views
 WHERE view IN ('alice.bumped'::regclass, 'alice.xids'::regclass, 'bob.per_dept'::regclass)
 ORDER BY view::text;

-- a function that never returns: its row is a dead letter once it took
-- longer than flowstate.evaluation_timeout (1s), and the decoding goes on
SET ROLE alice;
CREATE FUNCTION alice.stall(x int) RETURNS int LANGUAGE sql IMMUTABLE AS $$
    SELECT x FROM pg_sleep(3600) $$;
SELECT flowstate.create_view('alice.stalled', $$
    SELECT alice.stall(amount) AS k, count(*) AS n FROM public.payroll
     WHERE id BETWEEN 3000 AND 3999 GROUP BY 1 $$);
RESET ROLE;
SELECT flowstate.wait_for();
INSERT INTO public.payroll VALUES (3000, 'a', 1, 'x'), (3001, 'b', 2, 'x');
INSERT INTO public.payroll VALUES (4000, 'c', 3, 'x');
SELECT flowstate.wait_for();
SELECT pid = :decoder_pid AS same_decoder FROM flowstate.sources WHERE kind = 'logical decoding';
SELECT public.same('bob.per_dept') AS differences;
SELECT public.wait_durable();
SELECT count(*) AS rows, min(sqlstate) AS sqlstate,
       bool_and(error LIKE 'evaluating the row took longer than flowstate.evaluation_timeout (%') AS timed_out
  FROM flowstate.dead_letters WHERE view = 'alice.stalled'::regclass;

--
-- 4. Dead letters and late events: only for roles that can read the
-- source, and only the columns the view uses.
--
SELECT count(*) AS with_ssn FROM flowstate.dead_letters WHERE payload LIKE '%-%-%';
SELECT payload FROM flowstate.dead_letters WHERE view = 'alice.direct'::regclass ORDER BY id LIMIT 1;
SET ROLE carol;
SELECT count(*) > 0 AS seen FROM flowstate.dead_letters WHERE source = 'public.payroll'::regclass;
RESET ROLE;
REVOKE SELECT ON public.payroll FROM PUBLIC;
SET ROLE carol;
SELECT count(*) AS seen FROM flowstate.dead_letters;
SELECT count(*) AS seen FROM flowstate.late_events;
RESET ROLE;
GRANT SELECT ON public.payroll TO alice, bob;
SET ROLE alice;
SELECT count(*) > 0 AS seen FROM flowstate.dead_letters WHERE view = 'alice.bumped'::regclass;
RESET ROLE;

--
-- 5. REVOKE: once the owner cannot read the source (the table, or a column
-- the view uses), neither the view nor its internal objects serve its state.
--
SET ROLE bob;
SELECT flowstate.create_view('bob.dept_amounts', $$
    SELECT dept, sum(amount) AS total FROM public.payroll GROUP BY dept $$);
-- deleting a maximum recomputes its group from the table: as bob, by a
-- query while he may read it, else by a scan of the rows
CREATE FUNCTION bob.initial(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT upper(t) || CASE WHEN current_user = 'bob' THEN '' ELSE ' as ' || current_user END $$;
SELECT flowstate.create_view('bob.dept_max', $$
    SELECT bob.initial(dept) AS dept, max(amount) AS top FROM public.payroll GROUP BY 1 $$);
RESET ROLE;
SELECT definition AS bob_definition, state_table AS bob_state
  FROM flowstate.view WHERE view = 'bob.dept_amounts'::regclass \gset
SELECT public.wait_durable();
SELECT relowner::regrole AS definition_owner FROM pg_class WHERE oid = :'bob_definition'::regclass;
SET ROLE bob;
SELECT count(*) AS groups FROM bob.dept_amounts;
SELECT count(*) AS groups FROM :bob_state;
GRANT SELECT ON bob.dept_amounts TO carol;
SET ROLE carol;
SELECT count(*) AS groups FROM bob.dept_amounts;
\set VERBOSITY sqlstate
SELECT count(*) FROM :bob_state;
SELECT count(*) FROM :bob_definition;
\set VERBOSITY terse
RESET ROLE;
DELETE FROM public.payroll WHERE amount = (SELECT max(amount) FROM public.payroll WHERE dept = 'a');
SELECT flowstate.wait_for();
SET ROLE bob;
SELECT * FROM bob.dept_max ORDER BY dept;
RESET ROLE;
SELECT view, recomputed_groups > 0 AS recomputed FROM flowstate.views
 WHERE view = 'bob.dept_max'::regclass;
-- table privilege revoked by the superuser
REVOKE SELECT ON public.payroll FROM bob;
INSERT INTO public.payroll VALUES (1000, 'z', 1, 'x');
DELETE FROM public.payroll WHERE amount = (SELECT max(amount) FROM public.payroll WHERE dept = 'b');
SELECT public.wait_durable();
SET ROLE bob;
SELECT count(*) FROM bob.dept_amounts;
SELECT count(*) FROM bob.per_dept;
SELECT count(*) FROM :bob_state;
SELECT count(*) FROM :bob_definition;
SELECT count(*) FROM flowstate.unflushed(:'bob_state') AS u(gid int8, live bool, k1 text, a1 int8);
SET ROLE carol;
SELECT count(*) FROM bob.dept_amounts;
RESET ROLE;
-- a column grant: the view uses dept and amount
GRANT SELECT (dept, amount) ON public.payroll TO bob;
SET ROLE bob;
SELECT count(*) AS groups FROM bob.dept_amounts;
SELECT public.same('bob.dept_max') AS differences;
RESET ROLE;
REVOKE SELECT (amount) ON public.payroll FROM bob;
SET ROLE bob;
SELECT count(*) FROM bob.dept_amounts;
RESET ROLE;
-- by a table owner who is not a superuser
SET ROLE dave;
CREATE TABLE dave.sales (region text, amount int);
ALTER TABLE dave.sales REPLICA IDENTITY FULL;
INSERT INTO dave.sales VALUES ('n', 1), ('s', 2);
GRANT SELECT ON dave.sales TO alice;
SET ROLE alice;
SELECT flowstate.create_view('alice.region_totals', $$
    SELECT region, sum(amount) AS total FROM dave.sales GROUP BY region $$);
RESET ROLE;
SELECT flowstate.wait_for();
SET ROLE alice;
SELECT * FROM alice.region_totals ORDER BY region;
SET ROLE dave;
REVOKE SELECT ON dave.sales FROM alice;
INSERT INTO dave.sales VALUES ('n', 5);
RESET ROLE;
SELECT flowstate.wait_for();
SET ROLE alice;
SELECT * FROM alice.region_totals ORDER BY region;
SET ROLE dave;
GRANT SELECT ON dave.sales TO alice;
SET ROLE alice;
SELECT * FROM alice.region_totals ORDER BY region;
RESET ROLE;

--
-- 6. Row-level security: a view is refused over a table whose policies
-- apply to its owner, as a batch query of the owner would see fewer rows;
-- the table's owner (without FORCE) and BYPASSRLS roles may.
--
SET ROLE dave;
CREATE TABLE dave.tickets (who name, amount int);
ALTER TABLE dave.tickets REPLICA IDENTITY FULL;
ALTER TABLE dave.tickets ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON dave.tickets USING (who = current_user);
GRANT SELECT ON dave.tickets TO alice;
INSERT INTO dave.tickets VALUES ('alice', 1), ('dave', 2);
SET ROLE alice;
SELECT count(*) AS rows_alice_sees FROM dave.tickets;
SELECT flowstate.create_view('alice.tickets', $$
    SELECT count(*) AS n FROM dave.tickets $$);
SET ROLE dave;
SELECT flowstate.create_view('dave.tickets_total', $$
    SELECT count(*) AS n, sum(amount) AS total FROM dave.tickets $$);
ALTER TABLE dave.tickets FORCE ROW LEVEL SECURITY;
SELECT flowstate.create_view('dave.tickets_forced', $$
    SELECT count(*) AS n FROM dave.tickets $$);
RESET ROLE;
ALTER ROLE carol BYPASSRLS;
GRANT SELECT ON dave.tickets TO carol;
GRANT CREATE ON SCHEMA dave TO carol;
SET ROLE carol;
SELECT flowstate.create_view('dave.tickets_carol', $$
    SELECT count(*) AS n FROM dave.tickets $$);
RESET ROLE;
SELECT flowstate.wait_for();
SET ROLE carol;
SELECT * FROM dave.tickets_carol;
-- policies that come to apply to the owner later: reading fails
SET ROLE dave;
SELECT * FROM dave.tickets_total;
RESET ROLE;
ALTER ROLE carol NOBYPASSRLS;
SET ROLE carol;
SELECT * FROM dave.tickets_carol;
SET ROLE dave;
SELECT * FROM dave.tickets_total;
RESET ROLE;

--
-- 7. DDL that would silently detach a continuous view is refused.
--
SELECT definition AS defn, state_table AS state
  FROM flowstate.view WHERE view = 'bob.per_dept'::regclass \gset
CREATE OR REPLACE VIEW bob.per_dept AS SELECT 'x'::text AS dept, 0::int8 AS n, 0::int8 AS total;
\set VERBOSITY sqlstate
CREATE OR REPLACE VIEW :defn AS SELECT 1;
ALTER VIEW :defn RENAME TO renamed;
ALTER TABLE :state RENAME TO renamed;
ALTER TABLE :state ADD COLUMN x int;
ALTER VIEW :defn OWNER TO carol;
\set VERBOSITY terse
-- the user's view itself may be renamed, moved and given away
ALTER VIEW bob.per_dept RENAME TO per_department;
ALTER VIEW bob.per_department OWNER TO alice;
SELECT relowner::regrole AS definition_owner FROM pg_class WHERE oid = :'defn'::regclass;
INSERT INTO public.payroll VALUES (2000, 'a', 1, 'x');
SELECT flowstate.wait_for();
SET ROLE alice;
SELECT public.same('bob.per_department') AS differences;
RESET ROLE;

\set VERBOSITY sqlstate
CREATE OR REPLACE RULE "_RETURN" AS ON SELECT TO bob.per_department DO INSTEAD
    SELECT 'x'::text AS dept, 0::int8 AS n, 0::int8 AS total;
ALTER TABLE :defn OWNER TO carol;
\set VERBOSITY terse
-- flowstate.check_view_rights() of relations that are no continuous view
SELECT flowstate.check_view_rights('pg_class'::regclass, 'pg_class'::regclass);

--
-- 8. flowstate's own statements cannot be diverted: names resolve in
-- pg_catalog, not in a schema the caller put first on the search_path, and
-- the literals of a defining query are read with the caller's rights.
--
SET ROLE alice;
CREATE FUNCTION alice.evil_eq(a oid, b regclass) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        ALTER ROLE alice SUPERUSER;
    END IF;
    RETURN a = b::oid;
END $$;
CREATE OPERATOR alice.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = alice.evil_eq);
CREATE FUNCTION alice.evil_check(x int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        ALTER ROLE alice SUPERUSER;
    END IF;
    RETURN true;
END $$;
CREATE DOMAIN alice.evil_int AS int CHECK (alice.evil_check(VALUE));
CREATE TABLE alice.scratch (x int);
SET search_path = alice, pg_catalog;
REASSIGN OWNED BY alice TO alice;
DROP TABLE alice.scratch;
SELECT flowstate.create_view('alice.literal', $$
    SELECT count(*) AS n FROM public.payroll WHERE amount = ANY ('{1,2}'::alice.evil_int[]) $$);
RESET search_path;
RESET ROLE;
SELECT rolsuper FROM pg_roles WHERE rolname = 'alice';
-- a domain's CHECK per row, with a query of its own: in a subtransaction
SET ROLE alice;
CREATE FUNCTION alice.at_least(x int) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT x >= (SELECT coalesce(min(x), 0) FROM alice.log) $$;
CREATE DOMAIN alice.checked AS int CHECK (alice.at_least(VALUE));
SELECT flowstate.create_view('alice.by_checked', $$
    SELECT amount::alice.checked AS amount, count(*) AS n FROM public.payroll GROUP BY 1 $$);
RESET ROLE;
INSERT INTO public.payroll VALUES (5000, 'a', 7, 'x');
SELECT flowstate.wait_for();
SELECT rolsuper FROM pg_roles WHERE rolname = 'alice';
SET ROLE alice;
SELECT public.same('alice.by_checked') AS differences;
SELECT * FROM alice.literal;
RESET ROLE;

-- clean up
DROP TABLE public.payroll, dave.sales, dave.tickets CASCADE;
DROP SCHEMA alice, bob, dave CASCADE;
DROP TABLE public.secret;
DROP ROLE alice, bob, carol, dave;
