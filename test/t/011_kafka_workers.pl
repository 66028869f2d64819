# Two workers sharing a stream of 8 partitions (each consumes 4) give the
# same views as one worker, also across a SIGKILL of one of them and the
# failure of the owner alone; views added to and dropped from a running
# stream.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use FlowstateNode;

my $kafka = kafka_start();
kafka_command($kafka, 'topic events 8');

my $node = new_node('kafka_workers', qq{
restart_after_crash = on
flowstate.flush_interval = 200ms
});
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION flowstate;
CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers '$kafka->{bootstrap}');
CREATE FOREIGN TABLE events_one (ts timestamptz NOT NULL, k int NOT NULL, v numeric)
    SERVER kafka OPTIONS (topic 'events', group_id 'one');
CREATE FOREIGN TABLE events_two (ts timestamptz NOT NULL, k int NOT NULL, v numeric)
    SERVER kafka OPTIONS (topic 'events', group_id 'two', workers '2');
SELECT flowstate.create_view('by_one', \$\$
    SELECT k, date_bin('10 seconds', ts, '2026-01-01') AS w, count(*) AS n, sum(v) AS total,
           min(v) AS lo, max(v) AS hi FROM events_one GROUP BY 1, 2 \$\$);
SELECT flowstate.create_view('by_two', \$\$
    SELECT k, date_bin('10 seconds', ts, '2026-01-01') AS w, count(*) AS n, sum(v) AS total,
           min(v) AS lo, max(v) AS hi FROM events_two GROUP BY 1, 2 \$\$);
});
ok(defined wait_until(30, sub {
	$node->safe_psql('postgres', q{
		SELECT string_agg(source || ':' || partitions, ' ' ORDER BY source) FROM flowstate.sources
		 WHERE kind = 'kafka' AND state = 'running'}) eq
	  'events_one (worker 0):8 events_two (worker 0):4 events_two (worker 1):4' }),
	'one worker consumes the 8 partitions of events_one, two share those of events_two');

my $dir = $node->basedir . '/messages';
mkdir $dir or die;
my $i = 0;
for my $c (1 .. 4)
{
	open my $f, '>', "$dir/chunk$c.json" or die;
	for (1 .. 50000)
	{
		printf $f qq({"ts":"2026-01-01T00:%02d:%02dZ","k":%d,"v":%d.%02d}\n),
		  int($i / 6000) % 60, int($i / 100) % 60, $i % 37, $i % 1000, $i % 100;
		$i++;
	}
	close $f;
	is(kafka_command($kafka, "produce events $dir/chunk$c.json"), 'produced 50000', "chunk $c produced");
	if ($c == 2)
	{
		my ($pid) = split /\n/, $node->safe_psql('postgres', q{
			SELECT pid FROM flowstate.sources WHERE source = 'events_two (worker 1)'});
		my $log_offset = -s $node->logfile;
		kill 'KILL', $pid;
		$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
		ok(defined wait_until(30, sub { my @p = eval { kafka_pids($node, 'postgres') }; @p == 3 }),
			'the three workers are back after kill -9 of one');
	}
	is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't', "chunk $c consumed");
}

is($node->safe_psql('postgres', 'SELECT sum(n) FROM by_one'), $i, 'one worker: every message once');
is($node->safe_psql('postgres', 'SELECT sum(n) FROM by_two'), $i, 'two workers: every message once');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM ((TABLE by_one EXCEPT ALL TABLE by_two) UNION ALL
	                      (TABLE by_two EXCEPT ALL TABLE by_one)) d}), '0',
	'two workers give the same view as one');

# views come and go while the stream runs: a new view starts from the
# stream's start (the earliest message) and catches up; dropping a view
# leaves the others running, without a failure
my $log_offset = -s $node->logfile;
my $failures = $node->safe_psql('postgres', q{
	SELECT sum(failures) FROM flowstate.workers WHERE kind = 'kafka'});
$node->safe_psql('postgres', q{
	SELECT flowstate.create_view('by_two_later', $$
	    SELECT k, date_bin('10 seconds', ts, '2026-01-01') AS w, count(*) AS n, sum(v) AS total,
	           min(v) AS lo, max(v) AS hi FROM events_two GROUP BY 1, 2 $$)});
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't',
	'a view added to the running stream catches up');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM ((TABLE by_two EXCEPT ALL TABLE by_two_later) UNION ALL
	                      (TABLE by_two_later EXCEPT ALL TABLE by_two)) d}), '0',
	'it read the stream from its start: it equals the view that was there');
$node->safe_psql('postgres', q{SELECT flowstate.drop_view('by_two')});
open my $f, '>', "$dir/chunk5.json" or die;
for (1 .. 50000)
{
	printf $f qq({"ts":"2026-01-01T00:%02d:%02dZ","k":%d,"v":%d.%02d}\n),
	  int($i / 6000) % 60, int($i / 100) % 60, $i % 37, $i % 1000, $i % 100;
	$i++;
}
close $f;
is(kafka_command($kafka, "produce events $dir/chunk5.json"), 'produced 50000', 'chunk 5 produced');
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't', 'chunk 5 consumed');
is($node->safe_psql('postgres', 'SELECT sum(n) FROM by_two_later'), $i,
	'after another view was dropped, the remaining one counts every message once');
is($node->safe_psql('postgres', 'SELECT sum(n) FROM by_one'), $i, 'so does the view of the other stream');
is($node->safe_psql('postgres', q{
	SELECT sum(failures) FROM flowstate.workers WHERE kind = 'kafka'}), $failures,
	'no Kafka worker failed meanwhile');
unlike(slurp_file($node->logfile, $log_offset), qr/ERROR|terminated by signal/,
	'nor logged an error');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM flowstate.stream_offsets o
	  LEFT JOIN flowstate.view v USING (view_id) WHERE v.view_id IS NULL}), '0',
	'the offsets of the dropped view went with it');

# the owner of a stream fails alone (pg_terminate_backend: the others keep
# running, having merged what the owner's durable state lacks): the others
# start over from that state, and wait_for waits for them
for my $round (1 .. 3)
{
	open my $g, '>', "$dir/chunk_t$round.json" or die;
	for (1 .. 50000)
	{
		printf $g qq({"ts":"2026-01-01T00:%02d:%02dZ","k":%d,"v":%d.%02d}\n),
		  int($i / 6000) % 60, int($i / 100) % 60, $i % 37, $i % 1000, $i % 100;
		$i++;
	}
	close $g;
	is(kafka_command($kafka, "produce events $dir/chunk_t$round.json"), 'produced 50000',
		"round $round: produced");
	# the other worker merges, the owner has not flushed it yet
	usleep(100_000 * $round);
	my $owner = $node->safe_psql('postgres', q{
		SELECT pid FROM flowstate.sources WHERE source = 'events_two (worker 0)'});
	is($node->safe_psql('postgres', "SELECT pg_terminate_backend($owner)"), 't',
		"round $round: the owner is terminated");
	is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't',
		"round $round: consumed");
	is($node->safe_psql('postgres', 'SELECT sum(n) FROM by_two_later'), $i,
		"round $round: every message counted once, as soon as wait_for returns");
}
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM ((TABLE by_one EXCEPT ALL TABLE by_two_later) UNION ALL
	                      (TABLE by_two_later EXCEPT ALL TABLE by_one)) d}), '0',
	'the view of the stream whose owner failed equals the other stream\'s');

# the durable offsets reach each stream's consumer group, for monitoring:
# every partition's, whichever worker consumes it
open my $g, '>', "$dir/chunk_last.json" or die;
for (1 .. 50000)
{
	printf $g qq({"ts":"2026-01-01T00:%02d:%02dZ","k":%d,"v":%d.%02d}\n),
	  int($i / 6000) % 60, int($i / 100) % 60, $i % 37, $i % 1000, $i % 100;
	$i++;
}
close $g;
is(kafka_command($kafka, "produce events $dir/chunk_last.json"), 'produced 50000', 'last chunk produced');
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't', 'last chunk consumed');
for my $group ('one', 'two')
{
	my $got;
	ok(defined wait_until(30, sub {
		$got = kafka_command($kafka, "committed $group events");
		$got eq "committed $i" }),
		"consumer group $group has the offsets of every message ($got)");
}

$node->stop;
$kafka->{h}->kill_kill;
done_testing();
