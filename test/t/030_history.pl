# SCD type-2 history exactly once across crashes: while pgbench changes the
# rows of a table (inserts, updates of tracked, untracked and type-1
# columns, updates of the key, deletes, several changes of one key per
# transaction), the decoding worker is killed with SIGKILL, and separately
# the server is stopped in immediate mode, several times each.  After every
# recovery the history equals, row for row, a reference computed from a
# change log that a row trigger wrote in the writers' own transactions: the
# state each committed transaction left each key in, at its commit time
# (track_commit_timestamp), folded into versions with window functions.  A
# continuous view over the history equals its query after every kill of
# the decoder too.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);
use FlowstateNode;

my $node = new_node('history', qq{
restart_after_crash = on
track_commit_timestamp = on
flowstate.flush_interval = 100ms
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION flowstate;
CREATE TABLE accounts (
    id      int PRIMARY KEY,
    owner   text NOT NULL,
    tier    text,
    balance int NOT NULL DEFAULT 0,
    email   text,
    notes   text);
ALTER TABLE accounts REPLICA IDENTITY FULL;

-- the change log: what each transaction did to each key, in order
CREATE TABLE account_log (
    seq   bigserial PRIMARY KEY,
    xid   xid8 NOT NULL DEFAULT pg_current_xact_id(),
    op    text NOT NULL,
    id    int NOT NULL,
    owner text,
    tier  text,
    email text,
    committed timestamptz);     -- filled in by check_history()
CREATE FUNCTION log_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') AND (TG_OP = 'DELETE' OR OLD.id <> NEW.id) THEN
        INSERT INTO account_log (op, id) VALUES ('D', OLD.id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO account_log (op, id, owner, tier, email)
        VALUES ('U', NEW.id, NEW.owner, NEW.tier, NEW.email);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER log_account AFTER INSERT OR UPDATE OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION log_account();

-- rows before the history: its backfill makes them version 1
INSERT INTO accounts (id, owner, tier, email, notes)
SELECT i, 'o' || (i % 7), CASE WHEN i % 5 = 0 THEN NULL ELSE 't' || (i % 3) END,
       'e' || i, repeat('n', 3000 + i)
  FROM generate_series(1, 300) i;
UPDATE accounts SET tier = 'gold' WHERE id <= 10;

SELECT flowstate.create_history('account_history', 'accounts', '{id}',
                                tracked => '{owner,tier}', type1 => '{email}');
-- a continuous view over the history: the decoder decodes its own writes
ALTER TABLE account_history REPLICA IDENTITY FULL;
-- (sums and counts: no group of it is recomputed from the table)
SELECT flowstate.create_view('versions_per_tier', $$
    SELECT tier, is_current, count(*) AS versions, sum(version) AS version_sum,
           count(email) AS emails
      FROM account_history GROUP BY tier, is_current $$);

-- the reference: the state each committed transaction left each key in, at
-- its commit time (the rows before the history at its start), then a
-- version wherever a key appears or its tracked columns change, ending
-- where the next begins or the key is deleted; type-1 columns as the key's
-- last state has them
CREATE VIEW expected_history AS
WITH started AS (
    SELECT started_at FROM flowstate.history WHERE history = 'account_history'::regclass
), per_txn AS (
    SELECT DISTINCT ON (l.id, l.xid) l.id, l.xid, l.op, l.owner, l.tier, l.email,
           l.committed
      FROM account_log l ORDER BY l.id, l.xid, l.seq DESC
), states AS (
    SELECT DISTINCT ON (p.id, greatest(p.committed, s.started_at)) p.*,
           greatest(p.committed, s.started_at) AS ts
      FROM per_txn p, started s
     ORDER BY p.id, greatest(p.committed, s.started_at), p.committed DESC
), ordered AS (
    SELECT *, lag(op) OVER w AS prev_op, lag(owner) OVER w AS prev_owner,
           lag(tier) OVER w AS prev_tier
      FROM states WINDOW w AS (PARTITION BY id ORDER BY ts)
), marks AS (
    SELECT id, ts, owner, tier,
           CASE WHEN op = 'U' AND (prev_op IS DISTINCT FROM 'U'
                                   OR (owner, tier) IS DISTINCT FROM (prev_owner, prev_tier)) THEN 'begin'
                WHEN op = 'D' AND prev_op = 'U' THEN 'end' END AS mark
      FROM ordered
), versions AS (
    SELECT id, owner, tier, mark, ts AS valid_from,
           coalesce(lead(ts) OVER (PARTITION BY id ORDER BY ts), 'infinity') AS valid_to,
           (count(*) FILTER (WHERE mark = 'begin') OVER (PARTITION BY id ORDER BY ts))::int AS version
      FROM marks WHERE mark IS NOT NULL
), last_email AS (
    SELECT DISTINCT ON (id) id, email FROM states WHERE op = 'U' ORDER BY id, ts DESC
)
SELECT v.id, v.owner, v.tier, e.email, v.valid_from, v.valid_to,
       v.valid_to = 'infinity' AS is_current, v.version
  FROM versions v JOIN last_email e USING (id)
 WHERE v.mark = 'begin';
});

is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't',
	'the history caught up with its backfill');
is($node->safe_psql('postgres', q{SELECT status, versions_written FROM flowstate.histories}),
	'running|300', 'the backfill wrote a version per row');

# the view over the history is checked across the kills of the decoder
# (it is dropped before the immediate stops, which sample for a decoder
# holding unflushed changes: one that decodes its own flushes too has
# more to do)
my $with_view = 1;

sub check_history
{
	my ($when) = @_;
	is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't',
		"$when: the history caught up");
	$node->safe_psql('postgres', q{
		UPDATE account_log SET committed = pg_xact_commit_timestamp(xid::text::xid)
		 WHERE committed IS NULL;
		ANALYZE account_log, account_history});
	my $diff = $node->safe_psql('postgres', q{
		WITH h AS (SELECT id, owner, tier, email, valid_from, valid_to, is_current, version
		             FROM account_history)
		SELECT count(*) FROM ((TABLE h EXCEPT ALL TABLE expected_history)
		                UNION ALL (TABLE expected_history EXCEPT ALL TABLE h)) d});
	is($diff, '0', "$when: the history equals the reference, row for row");
	is($node->safe_psql('postgres', q{
		WITH q AS (SELECT tier, is_current, count(*) AS versions, sum(version) AS version_sum,
		                  count(email) AS emails
		             FROM account_history GROUP BY tier, is_current)
		SELECT count(*) FROM ((TABLE versions_per_tier EXCEPT ALL TABLE q)
		                UNION ALL (TABLE q EXCEPT ALL TABLE versions_per_tier)) d}),
		'0', "$when: a view over the history equals its query")
	  if $with_view;
	if ($diff ne '0')
	{
		diag($node->safe_psql('postgres', q{
			WITH h AS (SELECT id, owner, tier, email, valid_from, valid_to, is_current, version
			             FROM account_history)
			(SELECT 'history' AS side, * FROM (TABLE h EXCEPT ALL TABLE expected_history) d
			 UNION ALL
			 SELECT 'reference', * FROM (TABLE expected_history EXCEPT ALL TABLE h) d)
			ORDER BY id, version, side LIMIT 20}));
	}
}

check_history('after the backfill');

# each transaction changes a few keys of a small key space, some more than
# once: tracked columns, an untracked one (balance), the type-1 email, a
# large untracked value left unchanged (TOASTed), the key itself, deletes
# and inserts of deleted keys
my $script = $node->basedir . '/changes.sql';
PostgreSQL::Test::Utils::append_to_file($script, q{
\set a random(1, 400)
\set b random(1, 400)
\set c random(1, 400)
\set v random(0, 99)
BEGIN;
INSERT INTO accounts (id, owner, tier, email) VALUES (:a, 'o' || :v % 7, 't' || :v % 4, 'e' || :v)
    ON CONFLICT (id) DO UPDATE SET tier = 't' || :v % 4;
UPDATE accounts SET balance = balance + :v WHERE id = :b;
UPDATE accounts SET owner = 'o' || :v % 7 WHERE id = :b;
UPDATE accounts SET email = 'm' || :v WHERE id = :c;
UPDATE accounts SET tier = CASE WHEN :v % 3 = 0 THEN NULL ELSE tier || 'x' END WHERE id = :a;
UPDATE accounts SET tier = 't0' WHERE id = :a AND :v % 5 = 0;
DELETE FROM accounts WHERE id = :c AND :v % 4 = 0;
UPDATE accounts SET id = id + 400 WHERE id = :b AND :v % 9 = 0
    AND NOT EXISTS (SELECT 1 FROM accounts WHERE id = :b + 400);
DELETE FROM accounts WHERE id > 400 AND :v % 7 = 0 AND id % 7 = :v % 7;
COMMIT;
});

sub start_writers
{
	my ($seconds) = @_;
	my ($out, $err) = ('', '');
	return IPC::Run::start(
		[ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', $seconds, '--max-tries', '100',
		  '-f', $script, '-h', $node->host, '-p', $node->port, 'postgres' ],
		'>', \$out, '2>', \$err);
}

sub changes_logged
{
	return $node->safe_psql('postgres', 'SELECT count(*) FROM account_log');
}

sub versions_written
{
	return $node->safe_psql('postgres', 'SELECT versions_written FROM flowstate.histories');
}

install_decoder_unflushed($node, 'postgres');

for my $round (1 .. 3)
{
	my $before = changes_logged();
	my $versions = versions_written();
	my $writers = start_writers(60);
	ok(defined wait_until(30, sub { changes_logged() > $before + 500 }),
		"round $round: pgbench is writing");
	ok(defined wait_until(30, sub { versions_written() > $versions + 50 }),
		"round $round: the history is written meanwhile");
	usleep(37_000 * $round);
	my $pid = decoder_pid($node, 'postgres');
	my $log_offset = -s $node->logfile;
	unflushed_at_crash("round $round", kill9_sampled($node, 'postgres', qq{
		SELECT $pid, public.decoder_unflushed()}));
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
	$writers->finish;
	ok(defined decoder_back($node, 'postgres', $pid), "round $round: the decoder is back after kill -9");
	unlike(slurp_file($node->logfile, $log_offset), qr/backfilled history/,
		"round $round: the history resumes, not backfilled again");
	start_writers(2)->finish;
	check_history("after kill -9 of the decoder, round $round");
}

$node->safe_psql('postgres', q{SELECT flowstate.drop_view('versions_per_tier')});
$with_view = 0;
for my $round (1 .. 2)
{
	my $before = changes_logged();
	my $writers = start_writers(60);
	ok(defined wait_until(30, sub { changes_logged() > $before + 500 }),
		"immediate stop $round: pgbench is writing");
	# flushes far apart: the decoder holds what it applied since the last
	# one, however busy the machine keeps it
	set_flush_interval($node, '10s');
	usleep(150_000 * $round);
	my ($postmaster) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
	unflushed_at_crash("immediate stop $round", kill9_sampled($node, 'postgres', qq{
		SELECT $postmaster, public.decoder_unflushed()}, 'QUIT'));
	$node->stop('immediate', fail_ok => 1);
	$writers->finish;
	$node->start;
	set_flush_interval($node, undef);
	start_writers(2)->finish;
	check_history("after immediate stop $round");
}

# the workload did what it is meant to: versions of every kind
my ($keys, $closed, $several, $reinserted, $moved) = split /\|/, $node->safe_psql('postgres', q{
	SELECT count(DISTINCT id),
	       count(*) FILTER (WHERE NOT is_current),
	       (SELECT count(*) FROM (SELECT id FROM account_history GROUP BY id HAVING count(*) >= 3) k),
	       (SELECT count(DISTINCT id) FROM account_history h
	         WHERE version > 1 AND NOT EXISTS (SELECT 1 FROM account_history p
	                                            WHERE p.id = h.id AND p.valid_to = h.valid_from)),
	       count(DISTINCT id) FILTER (WHERE id > 400)
	  FROM account_history});
note("history: $keys keys, $closed closed versions, $several keys with 3 versions or more, "
	  . "$reinserted keys inserted again after a delete, $moved keys from updates of the key");
cmp_ok($several, '>', 20, 'keys went through several versions');
cmp_ok($reinserted, '>', 5, 'deleted keys were inserted again (a gap between versions)');
cmp_ok($moved, '>', 5, 'updates of the key opened histories of new keys');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM account_history a JOIN account_history b
	    ON a.id = b.id AND a.version < b.version AND a.valid_to > b.valid_from}),
	'0', 'the versions of a key never overlap');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM account_history h JOIN accounts a USING (id)
	 WHERE h.is_current AND (h.owner, h.tier, h.email) IS DISTINCT FROM (a.owner, a.tier, a.email)}),
	'0', 'the current versions are the rows of the table');

$node->stop;
done_testing();
