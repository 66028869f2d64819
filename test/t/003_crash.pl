# kill -9 of a manager or of the launcher makes the postmaster reinitialize
# shared memory; the launcher and every manager are back within 10 s.  So
# after an immediate-mode stop.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FlowstateNode;

my $node = new_node('crash', 'restart_after_crash = on');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION flowstate; CREATE DATABASE db2');
$node->safe_psql('db2', 'CREATE EXTENSION flowstate');

sub all_back
{
	return launcher_pid($node) ne ''
	  && managers($node, 'postgres') eq '1'
	  && managers($node, 'db2') eq '1';
}
ok(defined wait_until(10, \&all_back), 'launcher and two managers run');

for my $victim ('manager', 'launcher', 'manager')
{
	my $pid = $victim eq 'launcher' ? launcher_pid($node) : manager_pid($node, 'db2');
	my $log_offset = -s $node->logfile;
	kill 'KILL', $pid;
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
	my $took = wait_until(10, sub {
		my $ok = eval { all_back() };
		return $ok && manager_pid($node, 'db2') ne $pid;
	});
	ok(defined $took, "after kill -9 of the $victim everything is back within 10 s");
	note(sprintf('back %.2f s after the reinitialization', $took // -1));
}

$node->stop('immediate');
$node->start;
ok(defined wait_until(10, \&all_back), 'after an immediate stop and a start, everything is back');

$node->stop;
done_testing();
