# Two workers sharing a stream of 8 partitions (each consumes 4) give the
# same views as one worker, also across a SIGKILL of one of them and the
# failure of the owner alone, for native aggregates and for those kept
# through their support functions (one in SQL); views added to and dropped
# from a running stream.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
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
-- aggregates through their support functions, one of them in SQL (run in
-- a transaction by the workers, which combine their states)
CREATE FUNCTION sq_step(int8, int) RETURNS int8 LANGUAGE sql IMMUTABLE STRICT
    AS 'SELECT \$1 + \$2::int8 * \$2';
CREATE AGGREGATE sum_sq(int) (SFUNC = sq_step, STYPE = int8, COMBINEFUNC = int8pl, INITCOND = '0');
CREATE FUNCTION sq_combine(int8, int8) RETURNS int8 LANGUAGE sql IMMUTABLE STRICT
    AS 'SELECT \$1 + \$2';
CREATE AGGREGATE sum_sq_sql(int) (SFUNC = int4_sum, STYPE = int8, COMBINEFUNC = sq_combine);
SELECT flowstate.create_view('by_two_generic', \$\$
    SELECT k, count(*) AS n, sum_sq(k) AS sq, sum_sq_sql(k) AS s, bit_xor(k * 7919) AS x,
           sum(make_interval(secs => v)) AS secs, max(floor(v)::float8) + sum(floor(v)::float8) AS f
      FROM events_two GROUP BY k \$\$);
});
ok(defined wait_until(30, sub {
	$node->safe_psql('postgres', q{
		SELECT string_agg(source || ':' || partitions, ' ' ORDER BY source) FROM flowstate.sources
		 WHERE kind = 'kafka' AND state = 'running'}) eq
	  'events_one (worker 0):8 events_two (worker 0):4 events_two (worker 1):4' }),
	'one worker consumes the 8 partitions of events_one, two share those of events_two');

# every message produced is also loaded into events_batch: the views must
# equal their defining query run over it
$node->safe_psql('postgres', q{
CREATE TABLE events_batch (ts timestamptz NOT NULL, k int NOT NULL, v numeric);
CREATE FUNCTION batch_differences(v regclass) RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE
    n bigint;
BEGIN
    EXECUTE format($q$
        SELECT count(*) FROM ((TABLE %1$s EXCEPT ALL %2$s) UNION ALL (%2$s EXCEPT ALL TABLE %1$s)) d$q$,
        v, $b$SELECT k, date_bin('10 seconds', ts, '2026-01-01') AS w, count(*) AS n, sum(v) AS total,
                     min(v) AS lo, max(v) AS hi FROM events_batch GROUP BY 1, 2$b$) INTO n;
    RETURN n;
END $f$});
install_stream_progress($node, 'postgres');

my $dir = $node->basedir . '/messages';
mkdir $dir or die;
my $i = 0;
# chunk(name): 50,000 more messages in a file, also loaded into events_batch
sub chunk
{
	my ($name) = @_;
	open my $f, '>', "$dir/$name.json" or die;
	open my $csv, '>', "$dir/$name.csv" or die;
	for (1 .. 50000)
	{
		my ($ts, $k, $v) = (sprintf('2026-01-01T00:%02d:%02dZ', int($i / 6000) % 60, int($i / 100) % 60),
			$i % 37, sprintf('%d.%02d', $i % 1000, $i % 100));
		print $f qq({"ts":"$ts","k":$k,"v":$v}\n);
		print $csv "$ts,$k,$v\n";
		$i++;
	}
	close $f;
	close $csv;
	$node->safe_psql('postgres', "COPY events_batch FROM '$dir/$name.csv' (FORMAT csv)");
	return "$dir/$name.json";
}

for my $c (1 .. 4)
{
	# chunk 2 stays unflushed until the kill (a flush every 200 ms could
	# come before the sample, the chunk consumed in less)
	hold_flushes($node) if $c == 2;
	is(kafka_command($kafka, 'produce events ' . chunk("chunk$c")), 'produced 50000', "chunk $c produced");
	if ($c == 2)
	{
		# while by_two holds messages whose offsets are not durable
		my $log_offset = -s $node->logfile;
		my $sample = kill_unflushed($node, 'postgres', 'by_two', q{
			SELECT pid FROM flowstate.sources WHERE source = 'events_two (worker 1)'});
		note("at the kill, by_two showed $sample->[0] messages, its durable offsets covered "
			  . ($sample->[1] // '?'));
		ok(@$sample == 2 && $sample->[0] > $sample->[1],
			'worker 1 was killed while by_two held messages whose offsets were not flushed');
		$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
		ok(defined wait_until(30, sub { my @p = eval { kafka_pids($node, 'postgres') }; @p == 3 }),
			'the three workers are back after kill -9 of one');
		set_flush_interval($node, undef);
	}
	is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't', "chunk $c consumed");
}

is($node->safe_psql('postgres', q{SELECT batch_differences('by_one')}), '0',
	'one worker: the view equals its defining query over the messages loaded into a table');
is($node->safe_psql('postgres', q{SELECT batch_differences('by_two')}), '0',
	'two workers: the view equals its defining query over the messages loaded into a table');

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
is($node->safe_psql('postgres', q{SELECT batch_differences('by_two_later')}), '0',
	'it read the stream from its start: it equals its defining query over the messages so far');
$node->safe_psql('postgres', q{SELECT flowstate.drop_view('by_two')});
is(kafka_command($kafka, 'produce events ' . chunk('chunk5')), 'produced 50000', 'chunk 5 produced');
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't', 'chunk 5 consumed');
is($node->safe_psql('postgres', q{SELECT batch_differences('by_two_later')}), '0',
	'after another view was dropped, the remaining one equals its defining query over every message');
is($node->safe_psql('postgres', q{SELECT batch_differences('by_one')}), '0', 'so does the view of the other stream');
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
	hold_flushes($node);
	is(kafka_command($kafka, 'produce events ' . chunk("chunk_t$round")), 'produced 50000',
		"round $round: produced");
	# the other worker merges, the owner has not flushed it yet: the owner
	# is terminated (SIGTERM, as pg_terminate_backend) while by_two_later
	# holds messages whose offsets are not durable
	my $sample = kill_unflushed($node, 'postgres', 'by_two_later', q{
		SELECT pid FROM flowstate.sources WHERE source = 'events_two (worker 0)'}, 'TERM');
	note("round $round: at the termination, by_two_later showed $sample->[0] messages, "
		  . 'its durable offsets covered ' . ($sample->[1] // '?'));
	ok(@$sample == 2 && $sample->[0] > $sample->[1],
		"round $round: the owner is terminated while the view holds messages whose offsets were not flushed");
	set_flush_interval($node, undef);
	is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't',
		"round $round: consumed");
	is($node->safe_psql('postgres', q{SELECT batch_differences('by_two_later')}), '0',
		"round $round: every message counted once, as soon as wait_for returns");
}
is($node->safe_psql('postgres', q{SELECT batch_differences('by_one')}), '0',
	'the view of the other stream equals its defining query over every message too');
is($node->safe_psql('postgres', q{
	WITH b AS (SELECT k, count(*) AS n, sum_sq(k) AS sq, sum_sq_sql(k) AS s, bit_xor(k * 7919) AS x,
	                  sum(make_interval(secs => v)) AS secs, max(floor(v)::float8) + sum(floor(v)::float8) AS f
	             FROM events_batch GROUP BY k)
	SELECT count(*) FROM ((TABLE by_two_generic EXCEPT ALL TABLE b) UNION ALL
	                      (TABLE b EXCEPT ALL TABLE by_two_generic)) d}), '0',
	'two workers, aggregates through their support functions (one in SQL) and a float sum: the view equals its defining query');

# the durable offsets reach each stream's consumer group, for monitoring:
# every partition's, whichever worker consumes it
is(kafka_command($kafka, 'produce events ' . chunk('chunk_last')), 'produced 50000', 'last chunk produced');
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
