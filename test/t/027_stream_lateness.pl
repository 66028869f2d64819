# Lateness over a Kafka stream across crashes: two workers, four partitions
# whose event times lag one another (partition p runs (3 - p) x 20 s
# behind: the owner's partitions, 0 and 2, lag the other worker's) and a
# message in 997 five minutes behind its partition, a view of 1-minute
# windows with allowed_lateness 0, the workers killed with SIGKILL several
# times while they hold messages not yet flushed.  Every message ends
# either in the view or in flowstate.late_events, never both: the view's
# count plus the late events is the number of messages produced, and so
# for the sum of their values.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FlowstateNode;

my $kafka = kafka_start();
is(kafka_command($kafka, 'topic events 4'), 'ok', 'a topic of 4 partitions');

my $node = new_node('stream_lateness', qq{
restart_after_crash = on
flowstate.flush_interval = 200ms
});
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION flowstate;
CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers '$kafka->{bootstrap}');
CREATE FOREIGN TABLE events (ts timestamptz NOT NULL, k int NOT NULL, v bigint NOT NULL)
    SERVER kafka OPTIONS (topic 'events', format 'json', workers '2');
SELECT flowstate.create_view('per_minute', \$\$
    SELECT k, flowstate.tumble(ts, '1 minute') AS minute, count(*) AS n, sum(v) AS total
      FROM events GROUP BY 1, 2 \$\$, allowed_lateness => '0');
});
install_stream_progress($node, 'postgres');

# message i goes to partition i % 4; its event time runs 20 ms a message,
# (3 - i % 4) x 20 s behind, and 5 minutes more for one in 997
my $chunks = 12;
my $per_chunk = 40_000;
my $dir = $node->basedir . '/messages';
mkdir $dir or die;
for my $c (0 .. $chunks - 1)
{
	open my $json, '>', "$dir/chunk$c.json" or die;
	for my $j (0 .. $per_chunk - 1)
	{
		my $i = $c * $per_chunk + $j;
		my $ms = $i * 20 - (3 - $i % 4) * 20_000 + 60_000;
		$ms -= 300_000 if $i % 997 == 5 && $i > 20_000;
		my $ts = sprintf('2026-01-01T%02d:%02d:%02d.%03dZ',
			int($ms / 3_600_000), int($ms / 60000) % 60, int($ms / 1000) % 60, $ms % 1000);
		print $json qq({"ts":"$ts","k":@{[$i % 10]},"v":$i}\n);
	}
	close $json;
}
my $produced = $chunks * $per_chunk;
my $sum = $produced * ($produced - 1) / 2;

my %kill_after = (1 => 1, 3 => 1, 5 => 1, 7 => 1, 9 => 1);
for my $c (0 .. $chunks - 1)
{
	# a chunk consumed before the kill stays unflushed until it (on a slow
	# machine, the sample below could come after a flush of 200 ms)
	hold_flushes($node) if $kill_after{$c};
	is(kafka_command($kafka, "produce events $dir/chunk$c.json"), "produced $per_chunk", "chunk $c produced");
	# (the mock keeps a few MiB per partition: consume before producing more)
	unless ($kill_after{$c})
	{
		is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't',
			"chunk $c consumed");
		next;
	}
	my $log_offset = -s $node->logfile;
	# while the chunk is consumed, messages applied or late but not flushed
	my @sample = split / /, kill9_sampled($node, 'postgres',
		q{SELECT (SELECT min(pid) FROM flowstate.sources WHERE kind = 'kafka'), public.stream_progress('per_minute', true)}) // '';
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
	ok(@sample == 2 && $sample[0] > $sample[1],
		"chunk $c: killed while messages applied or late were not flushed ($sample[0] against "
		  . ($sample[1] // '?') . ' durable)');
	ok(defined wait_until(30, sub { my @p = eval { kafka_pids($node, 'postgres') }; @p == 2 }),
		"chunk $c: the Kafka workers are back");
	set_flush_interval($node, undef);
	is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't',
		"chunk $c consumed after the crash");
}
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't', 'all consumed');

# late events are written before the batch they belong to is applied
my ($held, $n, $late, $total) = messages_accounted($node, 'postgres', 'per_minute', $produced);
ok($held, 'every message is in the view or a late event');
note("messages in the view: $n, late events: $late");
cmp_ok($late, '>', 0, 'some messages were late');
is($n + $late, $produced, 'the view and the late events hold each message once');
is($total, $sum, '... and so for the sum of their values: none in both');

$node->stop;
done_testing();
