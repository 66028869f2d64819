# Reads of one key's windows take that key's groups from shared memory by
# their keys (read_filter.c, the chains of state_store.c): they never see
# part of a transaction, nor a group twice or not at all, while pgbench
# keeps moving rows between windows and the decoding worker flushes in
# slices between its batches.  Every transaction keeps each key's row count
# and total of v: every read of one key must show exactly those.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FlowstateNode;

my $node = new_node('point_reads', qq{
flowstate.flush_interval = 100ms
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION flowstate;
CREATE TABLE items (id int PRIMARY KEY, k int NOT NULL, ts timestamptz NOT NULL, v int NOT NULL);
ALTER TABLE items REPLICA IDENTITY FULL;
INSERT INTO items
SELECT i, i % 100, '2026-01-01 00:00:00+00'::timestamptz + (i % 500) * interval '1 minute', i % 1000
  FROM generate_series(1, 200000) i;
SELECT flowstate.create_view('per_k_minute', $$
    SELECT k, flowstate.tumble(ts, '1 minute') AS minute, count(*) AS n, sum(v) AS total
      FROM items GROUP BY 1, 2$$);
});
install_oracle($node, 'postgres');
$node->safe_psql('postgres', 'SELECT flowstate.wait_for()');

my %expected;
for my $k (7, 42)
{
	$expected{$k} = $node->safe_psql('postgres',
		"SELECT count(*) || '|' || sum(v) FROM items WHERE k = $k");
	is($node->safe_psql('postgres',
			"SELECT sum(n) || '|' || sum(total) FROM per_k_minute WHERE k = $k"),
		$expected{$k}, "the backfilled view has the totals of key $k");
}
like($node->safe_psql('postgres',
		'EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM per_k_minute WHERE k = 7'),
	qr/flowstate\.unflushed_states\('flowstate\.view_\d+_state'::regclass, 7\)/,
	'a read of one key passes it to the view\'s functions');

# each transaction moves 200 rows to other minutes of their key, some into
# new ones, and moves some of v from one row of key 7 to another: the keys'
# totals stay
my $script = $node->basedir . '/moves.sql';
PostgreSQL::Test::Utils::append_to_file($script, q{
\set a random(1, 199800)
\set d random(-30, 30)
\set b random(1, 1999)
\set c random(1, 1999)
BEGIN;
UPDATE items SET ts = ts + :d * interval '1 minute' WHERE id BETWEEN :a AND :a + 199;
UPDATE items SET v = v + 5 WHERE id = :b * 100 + 7;
UPDATE items SET v = v - 5 WHERE id = :c * 100 + 7;
COMMIT;
});
my ($out, $err) = ('', '');
my $writers = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '2', '-j', '2', '-T', '600', '--max-tries', '50', '-f', $script,
	  '-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \$out, '2>', \$err);

# read one key at a time while they write, from a client that keeps one
# session: with constants, and with a prepared statement's parameter
my ($in, $rout, $rerr) = ('', '', '');
my $reader = IPC::Run::start(
	[ 'psql', '-X', '-At', '-h', $node->host, '-p', $node->port, 'postgres' ],
	'<', \$in, '>', \$rout, '2>', \$rerr);
my $flushes_before = $node->safe_psql('postgres', 'SELECT flushes FROM flowstate.views');
my $reads = 200;
$in .= "SET plan_cache_mode = force_generic_plan;\n";
$in .= "PREPARE one(int) AS SELECT 'p' || \$1 || ':' || sum(n) || '|' || sum(total) FROM per_k_minute WHERE k = \$1;\n";
$in .= ("SELECT '7:' || sum(n) || '|' || sum(total) FROM per_k_minute WHERE k = 7;\n"
	  . "SELECT '42:' || sum(n) || '|' || sum(total) FROM per_k_minute WHERE k = 42;\n"
	  . "EXECUTE one(7);\n"
	  . "SELECT pg_sleep(0.02);\n") x $reads;
$in .= "\\q\n";
$reader->finish;
my @seen = grep { /^p?\d+:/ } split /\n/, $rout;
my @wrong = grep { my ($k, $v) = /^p?(\d+):(.*)$/; $v ne $expected{$k} } @seen;
is(scalar(@seen), 3 * $reads, 3 * $reads . " reads of one key while pgbench moved rows");
is(scalar(@wrong), 0, 'every read showed its key\'s totals: no partial transaction, no group twice')
  or diag('wrong reads: ' . join(', ', @wrong[0 .. ($#wrong < 9 ? $#wrong : 9)]) . " $rerr");
my $flushes = $node->safe_psql('postgres', 'SELECT flushes FROM flowstate.views') - $flushes_before;
cmp_ok($flushes, '>=', 5, "the worker flushed meanwhile ($flushes flushes)");
$writers->kill_kill;

is(differences($node, 'postgres', 'per_k_minute'), '0', 'the view equals its batch query');

$node->stop;
done_testing();
