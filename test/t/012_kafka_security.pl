# The security model of continuous views over Kafka streams: creating one
# needs SELECT on the stream's foreign table; its expressions are evaluated
# as the view's owner, in a read-only transaction, so a function that
# writes, or reads what the owner may not read, fails on every message (a
# dead letter of that view) without leaking anything and without stopping
# the other views of the stream; dead letters are visible only to roles
# that can read their source; messages are converted as the owner of the
# stream's foreign table.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FlowstateNode;

my $kafka = kafka_start();
kafka_command($kafka, 'topic clicks 2');

my $node = new_node('kafka_security', qq{
restart_after_crash = on
flowstate.flush_interval = 200ms
});
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION flowstate;
CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers '$kafka->{bootstrap}');
CREATE FOREIGN TABLE clicks (
    ts      timestamptz NOT NULL,
    user_id int OPTIONS (field 'user') NOT NULL,
    ms      float8)
  SERVER kafka OPTIONS (topic 'clicks', format 'json');
CREATE ROLE alice LOGIN NOSUPERUSER;
CREATE ROLE bob LOGIN NOSUPERUSER;
CREATE ROLE carol LOGIN NOSUPERUSER;
CREATE SCHEMA alice AUTHORIZATION alice;
CREATE SCHEMA bob AUTHORIZATION bob;
-- what alice's functions must not reveal
CREATE TABLE public.secret (s text);
INSERT INTO public.secret VALUES ('TOPSECRET');
REVOKE ALL ON public.secret FROM PUBLIC;
-- the batch side of bob's view: the same messages in an ordinary table
CREATE TABLE public.clicks_batch (ts timestamptz NOT NULL, user_id int NOT NULL, ms float8);
});

# as(role, sql): run sql as role, in a superuser's session after SET ROLE
sub as
{
	my ($role, $sql) = @_;
	return $node->safe_psql('postgres', "SET ROLE $role;\n$sql");
}

my $bumped_sql = 'SELECT alice.bump(user_id) AS u, count(*) AS n FROM clicks GROUP BY 1';
my $peeked_sql = 'SELECT alice.peek(user_id) AS leak, count(*) AS n FROM clicks GROUP BY 1';
my $per_user_sql = 'SELECT user_id, count(*) AS n, sum(ms) AS ms FROM clicks GROUP BY user_id';

as('alice', q{
CREATE TABLE alice.log (v int);
-- the write is in a volatile function: an INSERT directly in the body of
-- an immutable one is refused by PL/pgSQL itself (0A000, "INSERT is not
-- allowed in a non-volatile function"), whatever the transaction
CREATE FUNCTION alice.write_log(int) RETURNS void LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO alice.log VALUES ($1); END $$;
CREATE FUNCTION alice.bump(int) RETURNS int LANGUAGE plpgsql IMMUTABLE
    AS $$ BEGIN PERFORM alice.write_log($1); RETURN $1; END $$;
CREATE FUNCTION alice.peek(int) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT string_agg(s, ',') FROM public.secret $$;
});

# 1. without SELECT on the stream's foreign table, no continuous view over it
my ($ret, $stdout, $stderr) = $node->psql('postgres', qq{
SET ROLE alice;
\\set VERBOSITY verbose
SELECT flowstate.create_view('alice.bumped', '$bumped_sql');
});
isnt($ret, 0, 'without SELECT on clicks, alice cannot create a view over it');
like($stderr, qr/ERROR:  42501: permission denied for foreign table "?clicks"?/,
	'the refusal is 42501, permission denied for foreign table clicks');
is($node->safe_psql('postgres', q{SELECT to_regclass('alice.bumped') IS NULL
	AND NOT EXISTS (SELECT FROM flowstate.view)}), 't', 'the refused view left nothing behind');

$node->safe_psql('postgres', 'GRANT SELECT ON clicks TO alice, bob');
is(as('alice', qq{SET search_path = public;
	SELECT flowstate.create_view('alice.bumped', '$bumped_sql')}), 'alice.bumped',
	'with SELECT on clicks, alice creates a view over it');
as('alice', qq{SELECT flowstate.create_view('alice.peeked', '$peeked_sql')});
as('bob', qq{SELECT flowstate.create_view('bob.per_user', '$per_user_sql')});
is($node->safe_psql('postgres', q{
	SELECT string_agg(view::text || ':' || pg_get_userbyid(c.relowner), ' ' ORDER BY view::text)
	  FROM flowstate.view JOIN pg_class c ON c.oid = view}),
	'alice.bumped:alice alice.peeked:alice bob.per_user:bob', 'each view is owned by its creator');

# the stream's worker, running with the three views before any message
ok(defined wait_until(30, sub {
	$node->safe_psql('postgres', q{
		SELECT count(*) FROM flowstate.sources WHERE kind = 'kafka' AND state = 'running'}) eq '1' }),
	'the worker of clicks runs');
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '20s')}), 't',
	'the views are caught up with the empty topic');
my @pids_before = kafka_pids($node, 'postgres');
is(scalar(@pids_before), 1, 'one Kafka worker');
my $failures_before = $node->safe_psql('postgres', q{
	SELECT coalesce(sum(failures), 0) FROM flowstate.workers WHERE kind = 'kafka'});

# the messages, and the same rows in the batch table
my $n = 60;
my $dir = $node->basedir . '/messages';
mkdir $dir or die;
open my $f, '>', "$dir/clicks.json" or die;
my @values;
for my $i (0 .. $n - 1)
{
	my $ts = sprintf('2026-01-01T10:%02d:%02dZ', int($i / 60), $i % 60);
	my ($user, $ms) = ($i % 5 + 1, $i % 7 + 1);
	print $f qq({"ts":"$ts","user":$user,"ms":$ms}\n);
	push @values, "('$ts', $user, $ms)";
}
# and one that does not decode: a dead letter of the stream (view NULL)
print $f "not json\n";
close $f;
$node->safe_psql('postgres', 'INSERT INTO public.clicks_batch VALUES ' . join(', ', @values));
is(kafka_command($kafka, "produce clicks $dir/clicks.json"), 'produced ' . ($n + 1),
	'messages produced');
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '20s')}), 't',
	'the views consumed them');

# 3. bob's view over the same stream is exact, and the worker never restarted
is(as('bob', 'SELECT sum(n) FROM bob.per_user'), $n, "bob's view counts every valid message");
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM ((TABLE bob.per_user EXCEPT ALL
	                       SELECT user_id, count(*), sum(ms) FROM public.clicks_batch GROUP BY user_id)
	          UNION ALL (SELECT user_id, count(*), sum(ms) FROM public.clicks_batch GROUP BY user_id
	                     EXCEPT ALL TABLE bob.per_user)) d}),
	'0', "bob's view equals its defining query over the same messages");

# the dead letters are written with the flush that moves the views' durable
# offsets past their messages: wait for those offsets to reach every message
ok(defined wait_until(20, sub {
	$node->safe_psql('postgres', qq{
		SELECT count(*) FROM (SELECT view_id FROM flowstate.stream_offsets
		                       GROUP BY view_id HAVING sum(next_offset) = $n + 1) o}) eq '3' }),
	'the three views flushed their offsets past every message');

my @pids_after = kafka_pids($node, 'postgres');
is("@pids_after", "@pids_before", 'the Kafka worker is the same process (it never restarted)');
is($node->safe_psql('postgres', q{
	SELECT coalesce(sum(failures), 0) FROM flowstate.workers WHERE kind = 'kafka'}), $failures_before,
	'no Kafka worker failed');

# errors_of(view): its dead letters' distinct errors, for diagnostics
sub errors_of
{
	my ($view) = @_;
	return "dead letters of $view:\n" . $node->safe_psql('postgres', qq{
		SELECT count(*) || ' x ' || sqlstate || ': ' || error FROM flowstate.dead_letters
		 WHERE view = '$view'::regclass GROUP BY sqlstate, error ORDER BY 1});
}

# 2. a function that writes: evaluated as alice in a read-only transaction
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM flowstate.dead_letters WHERE view = 'alice.bumped'::regclass}), $n,
	'every valid message is a dead letter of alice.bumped');
is($node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT sqlstate, ',') FROM flowstate.dead_letters
	 WHERE view = 'alice.bumped'::regclass}), '25006',
	'each with SQLSTATE 25006 (read_only_sql_transaction)')
  or diag(errors_of('alice.bumped'));
is($node->safe_psql('postgres', 'SELECT count(*) FROM alice.log'), '0',
	'alice.bump wrote nothing into alice.log');
is($node->safe_psql('postgres', 'SELECT count(*) FROM alice.bumped'), '0', 'alice.bumped has no rows');

# 4. a function reading what alice cannot read: evaluated as alice
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM flowstate.dead_letters WHERE view = 'alice.peeked'::regclass}), $n,
	'every valid message is a dead letter of alice.peeked');
is($node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT sqlstate, ',') FROM flowstate.dead_letters
	 WHERE view = 'alice.peeked'::regclass}), '42501',
	'each with SQLSTATE 42501 (insufficient_privilege)')
  or diag(errors_of('alice.peeked'));
is(as('alice', q{SELECT count(*) FROM alice.peeked WHERE leak LIKE '%TOPSECRET%'}), '0',
	'the secret is nowhere in alice.peeked');
is(as('alice', 'SELECT count(*) FROM alice.peeked'), '0', 'alice.peeked has no rows');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM flowstate.dead_letters
	 WHERE error LIKE '%TOPSECRET%' OR payload LIKE '%TOPSECRET%'}), '0',
	'nor in any dead letter');

# 5. dead letters are visible only to roles that can read their source
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM flowstate.dead_letters WHERE source = 'clicks'::regclass AND view IS NULL}),
	'1', 'the message that did not decode is a dead letter of the stream');
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM flowstate.dead_letters'), '>', 0,
	'the superuser sees the dead letters');
is(as('carol', 'SELECT count(*) FROM flowstate.dead_letters'), '0',
	'carol, without SELECT on clicks, sees none of them');

# 6. a stream's messages are converted as its foreign table's owner,
# read-only: a domain whose CHECK tries to make alice superuser fails on
# every message, each a dead letter of the stream
kafka_command($kafka, 'topic alerts 1');
$node->safe_psql('postgres', 'GRANT USAGE ON FOREIGN SERVER kafka TO alice');
as('alice', q{
CREATE FUNCTION alice.promote() RETURNS void LANGUAGE plpgsql
    AS $$ BEGIN ALTER ROLE alice SUPERUSER; END $$;
CREATE FUNCTION alice.valid(int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE
    AS $$ BEGIN PERFORM alice.promote(); RETURN true; END $$;
CREATE DOMAIN alice.level AS int CHECK (alice.valid(VALUE));
CREATE FOREIGN TABLE alice.alerts (level alice.level)
    SERVER kafka OPTIONS (topic 'alerts', format 'json');
SELECT flowstate.create_view('alice.levels', 'SELECT level, count(*) AS n FROM alice.alerts GROUP BY level');
});
open $f, '>', "$dir/alerts.json" or die;
print $f qq({"level":$_}\n) for 1 .. 3;
close $f;
is(kafka_command($kafka, "produce alerts $dir/alerts.json"), 'produced 3', 'alerts produced');
ok(defined wait_until(30, sub {
	$node->safe_psql('postgres', q{
		SELECT count(*) FROM flowstate.dead_letters
		 WHERE source = 'alice.alerts'::regclass AND view IS NULL}) eq '3' }),
	'each alert is a dead letter of its stream')
  or diag($node->safe_psql('postgres', q{SELECT source, view, error FROM flowstate.dead_letters
	WHERE source = 'alice.alerts'::regclass}));
is($node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT sqlstate || ' ' || error, ',') FROM flowstate.dead_letters
	 WHERE source = 'alice.alerts'::regclass}),
	'25006 cannot execute ALTER ROLE in a read-only transaction',
	'refused as a write in a read-only transaction');
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'}), 'f',
	'alice is no superuser');

$node->stop;
$kafka->{h}->kill_kill;
done_testing();
