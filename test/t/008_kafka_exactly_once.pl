# Exactly-once from Kafka: 1,000,000 JSON messages over 8 partitions,
# produced in chunks (each shuffled within the watermark delay of the
# hopping and cumulating views) while the Kafka worker is killed with
# SIGKILL three times and the server is stopped in immediate mode once.  At
# the end the views (tumbling, hopping, cumulating, running; native,
# multiset and generic aggregates) equal their defining queries run as
# batch queries over the same messages loaded into a table: nothing lost,
# nothing counted twice, nothing late.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use List::Util qw(shuffle);
use FlowstateNode;

my $kafka = kafka_start();
is(kafka_command($kafka, 'topic events 8'), 'ok', 'the mock cluster has a topic of 8 partitions');

my $node = new_node('kafka_exactly_once', qq{
restart_after_crash = on
flowstate.flush_interval = 200ms
});
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION flowstate;
CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers '$kafka->{bootstrap}');
CREATE FOREIGN TABLE events (ts timestamptz NOT NULL, k int NOT NULL, v float8)
    SERVER kafka OPTIONS (topic 'events', format 'json');
CREATE TABLE events_batch (ts timestamptz NOT NULL, k int NOT NULL, v float8);
SELECT flowstate.create_view('per_minute', \$\$
    SELECT k, flowstate.tumble(ts, '1 minute') AS minute, count(*) AS n, sum(v) AS total,
           min(v) AS lo, max(v) AS hi
      FROM events GROUP BY 1, 2 \$\$);
SELECT flowstate.create_view('per_key', \$\$
    SELECT k, count(*) AS n, avg(v) AS mean, max(ts) AS last FROM events GROUP BY k \$\$);
-- hopping windows of 2 minutes every 45 seconds, kept in panes of 15
-- seconds; final 3 minutes behind the event time (the messages of a chunk
-- come shuffled over 150 seconds: none is late)
SELECT flowstate.create_view('per_hop', \$\$
    SELECT w.window_start, w.window_end, k % 10 AS k10, count(*) AS n, sum(v) AS total
      FROM events, LATERAL flowstate.hop(events.ts, '2 minutes', '45 seconds') w
     GROUP BY w.window_start, w.window_end, k % 10 \$\$,
    watermark_delay => '3 minutes', allowed_lateness => '0');
-- cumulating windows: every 30 seconds of each 5 minutes
SELECT flowstate.create_view('per_cumulate', \$\$
    SELECT w.window_start, w.window_end, count(*) AS n, max(v) AS hi
      FROM events, LATERAL flowstate.cumulate(events.ts, '30 seconds', '5 minutes') w
     GROUP BY w.window_start, w.window_end \$\$,
    watermark_delay => '3 minutes', allowed_lateness => '0');
-- keys seen per minute, and their median: over the multiset of k
SELECT flowstate.create_view('per_minute_keys', \$\$
    SELECT flowstate.tumble(ts, '1 minute') AS minute, count(DISTINCT k) AS keys,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY k) AS median_k
      FROM events GROUP BY 1 \$\$);
-- aggregates kept through their own support functions (a message counted
-- twice flips bit_xor back, and shows in the sums)
SELECT flowstate.create_view('per_k10_generic', \$\$
    SELECT k % 10 AS k10, bit_xor(k) AS x, sum(make_interval(secs => k)) AS secs,
           regr_count(v, k) AS pairs
      FROM events GROUP BY 1 \$\$);
-- hours of India (UTC+05:30), which the Kafka worker (in UTC) evaluates too
SET TimeZone = 'Asia/Kolkata';
SELECT flowstate.create_view('per_local_hour', \$\$
    SELECT date_trunc('hour', ts) AS hour, k % 10 AS k10, count(*) AS n FROM events GROUP BY 1, 2 \$\$);
});

# the messages, in 20 chunks of 50,000 (each shuffled), and the same rows
# for the batch query
my $chunks = 20;
my $per_chunk = 50_000;
my $dir = $node->basedir . '/messages';
mkdir $dir or die;
srand(8);
open my $csv, '>', "$dir/all.csv" or die;
for my $c (0 .. $chunks - 1)
{
	my @lines;
	open my $json, '>', "$dir/chunk$c.json" or die;
	for my $j (0 .. $per_chunk - 1)
	{
		my $i = $c * $per_chunk + $j;
		my $ms = $i * 3;
		my $ts = sprintf('2026-01-01T00:%02d:%02d.%03dZ',
			int($ms / 60000) % 60, int($ms / 1000) % 60, $ms % 1000);
		my ($k, $v) = ($i % 100, ($i % 997) / 4);
		push @lines, qq({"ts":"$ts","k":$k,"v":$v}\n);
		print $csv "$ts,$k,$v\n";
	}
	print $json $_ for shuffle @lines;
	close $json;
}
close $csv;
install_stream_progress($node, 'postgres');
$node->safe_psql('postgres', "COPY events_batch FROM '$dir/all.csv' (FORMAT csv)");

sub caught_up
{
	return $node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')});
}

# each kill, and the immediate stop, comes while per_key shows messages
# whose offsets are not durable yet: they are consumed again after it
my %kill_after = (3 => 1, 8 => 1, 13 => 1);
my $killed = 0;
for my $c (0 .. $chunks - 1)
{
	# the chunk of a kill stays unflushed until it (a flush every 200 ms
	# could come before the sample, the chunk consumed in less)
	hold_flushes($node) if $kill_after{$c} || $c == 17;
	is(kafka_command($kafka, "produce events $dir/chunk$c.json"), "produced $per_chunk",
		"chunk $c produced") if $c % 5 == 0 || $kill_after{$c} || $c == 17;
	kafka_command($kafka, "produce events $dir/chunk$c.json") unless $c % 5 == 0 || $kill_after{$c} || $c == 17;
	my $sample;
	if ($kill_after{$c})
	{
		# while it consumes the chunk, or before the flush that follows
		my $log_offset = -s $node->logfile;
		$sample = kill_unflushed($node, 'postgres', 'per_key',
			q{SELECT pid FROM flowstate.sources WHERE kind = 'kafka'});
		$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
		$killed++;
		ok(defined wait_until(30, sub { my @p = eval { kafka_pids($node, 'postgres') }; @p > 0 }),
			"chunk $c: the Kafka worker is back after kill -9");
		ok(@$sample, "chunk $c: a Kafka worker ran and was killed");
	}
	elsif ($c == 17)
	{
		my ($postmaster) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
		$sample = kill_unflushed($node, 'postgres', 'per_key', $postmaster, 'QUIT');
		ok(@$sample, 'chunk 17: the server is stopped in immediate mode');
		$node->stop('immediate', fail_ok => 1);
		$node->start;
	}
	if (defined $sample)
	{
		note("chunk $c: at the crash, per_key showed $sample->[0] messages, its durable offsets covered "
			  . ($sample->[1] // '?'));
		ok(@$sample == 2 && $sample->[0] > $sample->[1],
			"chunk $c: the crash came while per_key held messages whose offsets were not flushed");
		set_flush_interval($node, undef);
	}
	is(caught_up(), 't', "chunk $c consumed") if $kill_after{$c} || $c == 17 || $c == $chunks - 1;
	caught_up() unless $kill_after{$c} || $c == 17 || $c == $chunks - 1;
}

is($node->safe_psql('postgres', 'SELECT sum(n) FROM per_key'), $chunks * $per_chunk,
	'per_key counts every message once');
is($node->safe_psql('postgres', 'SELECT count(*) FROM flowstate.late_events'), '0',
	'no message shuffled within the watermark delay is late');
my %batch = (
	per_minute => q{SELECT k, flowstate.tumble(ts, '1 minute') AS minute, count(*) AS n, sum(v) AS total,
	                       min(v) AS lo, max(v) AS hi FROM events_batch GROUP BY 1, 2},
	per_key => q{SELECT k, count(*) AS n, avg(v) AS mean, max(ts) AS last FROM events_batch GROUP BY k},
	per_minute_keys => q{SELECT flowstate.tumble(ts, '1 minute') AS minute, count(DISTINCT k) AS keys,
	                            percentile_disc(0.5) WITHIN GROUP (ORDER BY k) AS median_k
	                       FROM events_batch GROUP BY 1},
	per_k10_generic => q{SELECT k % 10 AS k10, bit_xor(k) AS x, sum(make_interval(secs => k)) AS secs,
	                            regr_count(v, k) AS pairs FROM events_batch GROUP BY 1},
	per_local_hour => q{SELECT date_trunc('hour', ts) AS hour, k % 10 AS k10, count(*) AS n
	                      FROM events_batch GROUP BY 1, 2},
	per_hop => q{SELECT w.window_start, w.window_end, k % 10 AS k10, count(*) AS n, sum(v) AS total
	               FROM events_batch, LATERAL flowstate.hop(events_batch.ts, '2 minutes', '45 seconds') w
	              GROUP BY w.window_start, w.window_end, k % 10},
	per_cumulate => q{SELECT w.window_start, w.window_end, count(*) AS n, max(v) AS hi
	                    FROM events_batch, LATERAL flowstate.cumulate(events_batch.ts, '30 seconds', '5 minutes') w
	                   GROUP BY w.window_start, w.window_end});
for my $view (sort keys %batch)
{
	# in the time zone per_local_hour was created in (the others do not depend on it)
	is($node->safe_psql('postgres', qq{
		SET TimeZone = 'Asia/Kolkata';
		SELECT count(*) FROM ((TABLE $view EXCEPT ALL ($batch{$view}))
		                UNION ALL (($batch{$view}) EXCEPT ALL TABLE $view)) d}),
		'0', "$view equals its defining query run over the messages loaded into a table");
}
is($node->safe_psql('postgres', q{SELECT count(*) FROM flowstate.dead_letters}), '0',
	'no message was refused');

$node->stop;
kafka_command($kafka, 'quit') if 0;
$kafka->{h}->kill_kill;
done_testing();
