# A manager that fails with an error is restarted with exponential backoff,
# its error is shown, and nothing else in the server is disturbed.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use FlowstateNode;

my $delay_ms = 200;
my $node = new_node('backoff');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION flowstate; CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION flowstate');
ok(defined wait_until(10, sub {
	managers($node, 'postgres') eq '1' && managers($node, 'other') eq '1' }),
	'managers run in both databases');

my $launcher = launcher_pid($node);
my $other = manager_pid($node, 'other');
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

# break the manager's catalog: every start now fails with an error
$node->safe_psql('postgres', 'ALTER TABLE flowstate.history RENAME TO history_moved');

# watch the backoff: for each failure count, when the failure happened and
# when the launcher scheduled the next start
my (%error_at, %retry_at);
my $ok = wait_until(60, sub {
	my $row = $node->safe_psql('postgres', q{
		SELECT failures, state, extract(epoch FROM last_error_at),
		       extract(epoch FROM retry_at)
		  FROM flowstate.workers WHERE kind = 'manager' AND datname = 'postgres'});
	my ($failures, $state, $error_at, $retry_at) = split /\|/, $row;
	if ($state eq 'backoff' && $retry_at ne '')
	{
		$error_at{$failures} = $error_at;
		$retry_at{$failures} = $retry_at;
	}
	return exists $retry_at{5} && exists $retry_at{4};
});
ok(defined $ok, 'the failing manager is restarted again and again');

my @seen = sort { $a <=> $b } keys %retry_at;
note('scheduled delays: ' . join(', ',
	map { sprintf('%d => %.0f ms', $_, 1000 * ($retry_at{$_} - $error_at{$_})) } @seen));
for my $n (@seen)
{
	my $expected = $delay_ms * 2**($n - 1);
	my $scheduled = 1000 * ($retry_at{$n} - $error_at{$n});
	cmp_ok(abs($scheduled - $expected), '<=', 20,
		"after $n failures the next start is scheduled ${expected} ms later");
	next unless exists $error_at{ $n + 1 };
	cmp_ok($error_at{ $n + 1 }, '>=', $retry_at{$n},
		"and failure " . ($n + 1) . " came from a start no earlier than that");
}

like($node->safe_psql('postgres', q{
	SELECT last_error FROM flowstate.workers
	 WHERE kind = 'manager' AND datname = 'postgres'}),
	qr/relation "flowstate\.history" does not exist/,
	'flowstate.workers shows the error the manager died of');

# the error text can name relations: other databases' errors are shown only
# to pg_read_all_stats, as pg_stat_activity does with queries
$node->safe_psql('postgres', 'CREATE ROLE watcher LOGIN; CREATE ROLE reader LOGIN IN ROLE pg_read_all_stats');
my $as = sub {
	my ($role, $db) = @_;
	return $node->safe_psql($db, qq{SET ROLE $role;
		SELECT last_error FROM flowstate.workers
		 WHERE kind = 'manager' AND datname = 'postgres'});
};
is($as->('watcher', 'other'), '<insufficient privilege>',
	'a plain role in another database does not see the error text');
like($as->('watcher', 'postgres'), qr/does not exist/,
	'a plain role in the same database does');
like($as->('reader', 'other'), qr/does not exist/,
	'pg_read_all_stats members see every error');

# the rest of the server is untouched
is(launcher_pid($node), $launcher, 'the launcher kept running');
is(manager_pid($node, 'other'), $other, 'the other database kept its manager');
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $started,
	'the postmaster did not reinitialize');
is($node->safe_psql('other', 'SELECT 42'), '42', 'sessions keep working');

# fix the cause: the manager comes back on its next retry
$node->safe_psql('postgres', 'ALTER TABLE flowstate.history_moved RENAME TO history');
ok(defined wait_until(30, sub { managers($node, 'postgres') eq '1' }),
	'the manager runs again once the cause is fixed');

# a manager terminated by an administrator is restarted too
my $pid = manager_pid($node, 'postgres');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok(defined wait_until(10, sub {
	my $now = manager_pid($node, 'postgres');
	$now ne '' && $now ne $pid }),
	'a terminated manager is restarted');
like($node->safe_psql('postgres', q{
	SELECT last_error FROM flowstate.workers
	 WHERE kind = 'manager' AND datname = 'postgres'}),
	qr/terminating background worker .* due to administrator command/,
	'and the termination is reported');

# a launcher that fails is restarted by the postmaster and adopts the
# running managers instead of starting new ones
my $manager = manager_pid($node, 'other');
$launcher = launcher_pid($node);
$node->safe_psql('postgres', "SELECT pg_terminate_backend($launcher)");
ok(defined wait_until(10, sub {
	my $now = launcher_pid($node);
	$now ne '' && $now ne $launcher }),
	'a terminated launcher is restarted');
is(manager_pid($node, 'other'), $manager, 'the managers keep running meanwhile');
$node->safe_psql('other', 'DROP EXTENSION flowstate');
ok(defined wait_until(10, sub { managers($node, 'other') eq '0' }),
	'the new launcher still serves the adopted manager');
is($node->safe_psql('postgres', q{
	SELECT state FROM flowstate.workers WHERE kind = 'manager' AND datname = 'other'}),
	'', 'and frees its slot when it leaves');

$node->stop;
done_testing();
