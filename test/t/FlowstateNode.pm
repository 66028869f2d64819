# Helpers shared by flowstate's TAP tests: a preloaded node and worker probes.
package FlowstateNode;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use Test::More;
use Time::HiRes qw(time usleep);
use Exporter 'import';

our @EXPORT = qw(new_node managers manager_pid launcher_pid wait_until);

# new_node(name, extra conf): a logical-decoding node with flowstate preloaded
sub new_node
{
	my ($name, $conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => 'logical');
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'flowstate'
max_worker_processes = 32
flowstate.naptime = 200ms
flowstate.restart_delay = 200ms

});
	$node->append_conf('postgresql.conf', $conf) if defined $conf;
	return $node;
}

# managers(node, db): managers of db that have read their catalog
sub managers
{
	my ($node, $db) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT count(*) FROM pg_stat_activity
		 WHERE backend_type = 'flowstate manager' AND datname = '$db'
		   AND query LIKE 'managing%'});
}

sub manager_pid
{
	my ($node, $db) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT pid FROM pg_stat_activity
		 WHERE backend_type = 'flowstate manager' AND datname = '$db'
		   AND query LIKE 'managing%'});
}

sub launcher_pid
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'flowstate launcher'});
}

# wait_until(timeout_s, sub): poll every 50 ms; return seconds taken, or undef
sub wait_until
{
	my ($timeout, $check) = @_;
	my $start = time;
	while (time - $start < $timeout)
	{
		return time - $start if $check->();
		usleep(50_000);
	}
	return undef;
}

1;
