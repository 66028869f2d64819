# Brokers out of reach for 10 seconds in the middle of a stream: the Kafka
# worker shows the outage in flowstate.sources while it lasts, then goes on
# where it was, with no message lost and none counted twice.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use FlowstateNode;

my $kafka = kafka_start();
kafka_command($kafka, 'topic events 4');

my $node = new_node('kafka_outage', qq{
flowstate.flush_interval = 200ms
});
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION flowstate;
CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka
    OPTIONS (brokers '$kafka->{bootstrap}', "reconnect.backoff.max.ms" '1000');
-- a domain: its check runs per message, in a subtransaction, which keeps
-- the worker slower than the producer (so the outage comes mid-stream)
CREATE DOMAIN counted AS int CHECK (VALUE >= 0);
CREATE FOREIGN TABLE events (k int NOT NULL, v counted NOT NULL) SERVER kafka OPTIONS (topic 'events');
SELECT flowstate.create_view('per_k', 'SELECT k, count(*) AS n, sum(v) AS total FROM events GROUP BY k');
});

my $dir = $node->basedir . '/messages';
mkdir $dir or die;
my $next = 0;
sub chunk
{
	my ($name, $n) = @_;
	open my $f, '>', "$dir/$name.json" or die;
	for (1 .. $n)
	{
		print $f sprintf(qq({"k":%d,"v":%d}\n), $next % 50, $next);
		$next++;
	}
	close $f;
	return "$dir/$name.json";
}
sub state
{
	return $node->safe_psql('postgres', q{
		SELECT state || '|' || coalesce(last_error, '') FROM flowstate.sources WHERE kind = 'kafka'});
}

is(kafka_command($kafka, 'produce events ' . chunk('a', 20000)), 'produced 20000', 'first messages');
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't', 'consumed');
like(state(), qr/^running\|$/, 'the worker runs, without error');

# more messages, and the brokers go down while they are consumed
is(kafka_command($kafka, 'produce events ' . chunk('b', 100000)), 'produced 100000', 'more messages');
is(kafka_command($kafka, 'down'), 'ok', 'the brokers go down');
my $down_at = time;
# right after the outage began, some messages were not applied yet: it
# came in the middle of the stream
my $applied_at_outage = $node->safe_psql('postgres', 'SELECT sum(n) FROM per_k');
note("messages applied right after the brokers went down: $applied_at_outage of $next");
cmp_ok($applied_at_outage, '<', $next, 'the outage came before the messages were all consumed');
my $seen = wait_until(9, sub { state() =~ /^waiting for brokers\|.+/ });
ok(defined $seen, 'flowstate.sources shows the outage');
note('outage seen after ' . sprintf('%.1f s: ', $seen // -1) . state());
my $during = $node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '1s')});
is($during, 'f', 'meanwhile flowstate.wait_for does not claim the stream consumed');
usleep(1_000_000 * ($down_at + 10 - time)) if time < $down_at + 10;
like(state(), qr/^waiting for brokers\|.+/, 'the outage stays visible while it lasts');

is(kafka_command($kafka, 'up'), 'ok', 'the brokers are back');
is(kafka_command($kafka, 'produce events ' . chunk('c', 20000)), 'produced 20000', 'messages after the outage');
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't', 'all consumed');
like(state(), qr/^running\|/, 'the worker runs again');

is($node->safe_psql('postgres', q{SELECT sum(n) || ' ' || sum(total) FROM per_k}),
	"$next " . ($next * ($next - 1) / 2), 'every message counted exactly once');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT k, count(*) AS n FROM generate_series(0, } . ($next - 1) .
	q{) i CROSS JOIN LATERAL (SELECT i % 50 AS k) x GROUP BY k) b
	 FULL JOIN per_k USING (k) WHERE b.n IS DISTINCT FROM per_k.n}), '0', 'per key too');

$node->stop;
$kafka->{h}->kill_kill;
done_testing();
