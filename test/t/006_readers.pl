# Readers never see part of a transaction, nor a group twice or not at all,
# while pgbench keeps moving rows between groups and the decoding worker
# writes large flushes in slices between its batches.  Every transaction
# keeps the total row count and the total of v: every read of the view
# must show exactly those totals.
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

my $node = new_node('readers', qq{
flowstate.flush_interval = 100ms
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION flowstate;
CREATE TABLE items (id int PRIMARY KEY, k int NOT NULL, v int NOT NULL);
ALTER TABLE items REPLICA IDENTITY FULL;
INSERT INTO items SELECT i, i % 50000, i % 1000 FROM generate_series(1, 200000) i;
SELECT flowstate.create_view('per_k', 'SELECT k, count(*) AS n, sum(v) AS total FROM items GROUP BY k');
});
install_oracle($node, 'postgres');
my $expected = $node->safe_psql('postgres', 'SELECT count(*) || \'|\' || sum(v) FROM items');
$node->safe_psql('postgres', 'SELECT flowstate.wait_for()');
is($node->safe_psql('postgres', q{SELECT sum(n) || '|' || sum(total) FROM per_k}), $expected,
	'the backfilled view has the totals');

# each transaction moves 200 rows to other groups and swaps values between
# two rows: the totals stay.  The two rows are locked before the swap reads
# them: a swap that read values another swap then changed would change the
# total of the table itself
my $script = $node->basedir . '/moves.sql';
PostgreSQL::Test::Utils::append_to_file($script, q{
\set a random(1, 199800)
\set d random(1, 49999)
\set b random(1, 200000)
\set c random(1, 200000)
BEGIN;
UPDATE items SET k = (k + :d) % 50000 WHERE id BETWEEN :a AND :a + 199;
SELECT FROM items WHERE id IN (:b, :c) ORDER BY id FOR UPDATE;
UPDATE items SET v = CASE id WHEN :b THEN (SELECT v FROM items WHERE id = :c)
                             ELSE (SELECT v FROM items WHERE id = :b) END
 WHERE id IN (:b, :c);
COMMIT;
});
my ($out, $err) = ('', '');
my $writers = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '2', '-j', '2', '-T', '600', '--max-tries', '50', '-f', $script,
	  '-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \$out, '2>', \$err);

# read while they write, from a client that keeps one session
my ($in, $rout, $rerr) = ('', '', '');
my $reader = IPC::Run::start(
	[ 'psql', '-X', '-At', '-h', $node->host, '-p', $node->port, 'postgres' ],
	'<', \$in, '>', \$rout, '2>', \$rerr);
my $flushes_before = $node->safe_psql('postgres', 'SELECT flushes FROM flowstate.views');
my $reads = 150;
$in .= "SELECT sum(n) || '|' || sum(total) FROM per_k; SELECT pg_sleep(0.01);\n" x $reads;
$in .= "\\q\n";
$reader->finish;
my @seen = grep { /\|/ } split /\n/, $rout;
my @wrong = grep { $_ ne $expected } @seen;
is(scalar(@seen), $reads, "$reads reads while pgbench moved rows");
is(scalar(@wrong), 0, 'every read showed the totals: no partial transaction, no group twice')
  or diag('wrong reads: ' . join(', ', @wrong[0 .. ($#wrong < 9 ? $#wrong : 9)]));
my $flushes = $node->safe_psql('postgres', 'SELECT flushes FROM flowstate.views') - $flushes_before;
cmp_ok($flushes, '>=', 5, "the worker flushed meanwhile ($flushes flushes)");
$writers->kill_kill;
is($node->safe_psql('postgres', 'SELECT count(*) || \'|\' || sum(v) FROM items'), $expected,
	'the writers kept the totals of the table');

is(differences($node, 'postgres', 'per_k'), '0', 'the view equals its batch query');

# A statement waiting in wait_for() that is the call alone holds back no
# pruning (no xmin): the workers' flushes stay HOT updates meanwhile.  Any
# other keeps its xmin, as its snapshot may be read after the wait.  Each
# waits for a position never reached, for 4 s.
my %waits = (
	alone => q{SELECT flowstate.wait_for('FFFFFFFF/0', '4s') /* alone */;},
	table => q{SELECT flowstate.wait_for('FFFFFFFF/0', '4s') /* table */ FROM items LIMIT 1;},
	cursor => q{BEGIN; DECLARE c CURSOR FOR SELECT * FROM items;
		SELECT flowstate.wait_for('FFFFFFFF/0', '4s') /* cursor */; FETCH 1 FROM c; COMMIT;},
	repeatable => q{BEGIN ISOLATION LEVEL REPEATABLE READ;
		SELECT flowstate.wait_for('FFFFFFFF/0', '4s') /* repeatable */; COMMIT;},
	function => q{DO $$ BEGIN PERFORM flowstate.wait_for('FFFFFFFF/0', '4s') /* function */; END $$;});
my %clients;
for my $case (sort keys %waits)
{
	my ($wout, $werr) = ('', '');
	$clients{$case} = [ IPC::Run::start(
		[ 'psql', '-X', '-At', '-h', $node->host, '-p', $node->port, '-c', $waits{$case}, 'postgres' ],
		'>', \$wout, '2>', \$werr), \$wout ];
}
my $xmins = sub {
	my %x = map { split /\|/ } split /\n/, $node->safe_psql('postgres', q{
		SELECT substring(query from '/\* (\w+) \*/'), coalesce(backend_xmin::text, 'none')
		  FROM pg_stat_activity
		 WHERE query LIKE '%flowstate.wait_for(''FFFFFFFF/0''%' AND wait_event = 'Extension'
		   AND pid <> pg_backend_pid()});
	return \%x;
};
ok(defined wait_until(10, sub { keys %{ $xmins->() } == keys %waits }), 'five statements wait');
my %held;
for (1 .. 10)
{
	my $x = $xmins->();
	$held{$_} ||= ($x->{$_} // 'none') ne 'none' for keys %waits;
	usleep(100_000);
}
ok(!$held{alone}, 'the call alone holds no xmin while it waits');
ok($held{$_}, "a wait $_ keeps its xmin") for qw(table cursor repeatable function);
for my $case (sort keys %waits)
{
	$clients{$case}[0]->finish;
	my $end = $case eq 'function' ? 'DO' : 'f';
	like(${ $clients{$case}[1] }, qr/^$end$/m, "the wait ($case) timed out");
}

$node->stop;
done_testing();
