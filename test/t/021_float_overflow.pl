# A group whose float sum is out of range makes every read of its view fail
# as the batch query does, wherever the group is: in shared memory, evicted
# to its state table (a small memory_limit), or read back after a crash.
# Deleting its rows brings the view back, equal to its batch query.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FlowstateNode;

my $node = new_node('float_overflow', qq{
restart_after_crash = on
flowstate.flush_interval = 200ms
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION flowstate;
CREATE TABLE readings (id bigserial PRIMARY KEY, sensor int, x float8);
ALTER TABLE readings REPLICA IDENTITY FULL;
SELECT flowstate.create_view('sensor_totals', $$
    SELECT sensor, count(*) AS n, sum(x) AS total, max(x) AS top
      FROM readings GROUP BY sensor $$, memory_limit => '1MB');
});
install_oracle($node, 'postgres');

# outcome(): how a read of the view ends, how its batch query ends, and
# the detail of the view's error
sub outcome
{
	my ($stdout, $stderr);
	$node->psql('postgres', 'SELECT array_agg(t) FROM sensor_totals t',
		stdout => \$stdout, stderr => \$stderr);
	my ($view) = $stderr =~ /ERROR:\s+(.*)/;
	my ($detail) = $stderr =~ /DETAIL:\s+(.*)/;
	$node->psql('postgres', q{SELECT array_agg(b) FROM (SELECT sensor, count(*), sum(x), max(x)
	                            FROM readings GROUP BY sensor) b},
		stdout => \$stdout, stderr => \$stderr);
	my ($batch) = $stderr =~ /ERROR:\s+(.*)/;
	return ($view // 'ok') . ' | ' . ($batch // 'ok') . ' | ' . ($detail // '');
}

# three sensors out of range among 30,000; the view keeps about a third in
# memory: the others, those three among them, are in the state table only
$node->safe_psql('postgres', q{
	INSERT INTO readings (sensor, x) SELECT s, s FROM generate_series(1, 30000) s;
	INSERT INTO readings (sensor, x) SELECT s, 1e308 FROM unnest('{5, 6, 7}'::int[]) s, generate_series(1, 2);
	INSERT INTO readings (sensor, x) SELECT s, s FROM generate_series(10, 30000) s;});
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '120s')}), 't', 'the view caught up');
ok(defined wait_until(60, sub {
	$node->safe_psql('postgres', q{
		SELECT groups_in_memory < groups / 2 FROM flowstate.views WHERE view = 'sensor_totals'::regclass}) eq 't' }),
	'most groups left shared memory');
is(outcome(), 'value out of range: overflow | value out of range: overflow | '
	. '3 groups of continuous view "sensor_totals" have a float sum or variance out of range, or an aggregate whose partial states could not be combined.',
	'reads fail as the batch query does, counting the groups out of range');
is($node->safe_psql('postgres', q{
	SELECT status || ' / ' || last_error FROM flowstate.views WHERE view = 'sensor_totals'::regclass}),
	'out of range / value out of range: overflow in 3 groups', 'flowstate.views says why');

# a crash: the groups out of range are found again in the state table
my $log_offset = -s $node->logfile;
kill 'KILL', decoder_pid($node, 'postgres');
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
ok($node->poll_query_until('postgres', q{SELECT flowstate.wait_for(timeout => '120s')}), 'back after kill -9');
is(outcome(), 'value out of range: overflow | value out of range: overflow | '
	. '3 groups of continuous view "sensor_totals" have a float sum or variance out of range, or an aggregate whose partial states could not be combined.',
	'after kill -9, the same three groups are out of range');

# rows leave: the groups are read back from the state table and recomputed
$node->safe_psql('postgres', q{DELETE FROM readings WHERE id IN (SELECT min(id) FROM readings
                                WHERE sensor IN (5, 6) AND x = 1e308 GROUP BY sensor)});
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't', 'deletes applied');
is(outcome(), 'value out of range: overflow | value out of range: overflow | '
	. '1 group of continuous view "sensor_totals" has a float sum or variance out of range, or an aggregate whose partial states could not be combined.',
	'two groups are back in range');
$node->safe_psql('postgres', q{DELETE FROM readings WHERE sensor = 7 AND x = 1e308});
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't', 'deletes applied');
is(outcome(), 'ok | ok | ', 'no group is out of range');
is(differences($node, 'postgres', 'sensor_totals'), '0', 'the view equals its batch query');
is($node->safe_psql('postgres', q{
	SELECT n || ' ' || total FROM sensor_totals WHERE sensor = 5}), '2 1e+308',
	'a group keeps its rows in range');
is($node->safe_psql('postgres', q{
	SELECT status FROM flowstate.views WHERE view = 'sensor_totals'::regclass}),
	'running', 'the view is running again');

$node->stop;
done_testing();
