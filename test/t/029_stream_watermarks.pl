# The watermark of a Kafka stream goes by its partitions: four partitions
# read by two workers, a view of 1-minute windows with allowed_lateness 0.
#  - Partitions at different speeds: partition 0's event time runs four
#    times slower than the others'; the watermark is the least of the
#    partitions', so none of partition 0's messages is late.
#  - An idle partition: partition 0 stops; once it had no message for the
#    stream's idle_timeout, the watermark follows the others.  When it
#    comes back behind the watermark, its messages are late.
#  - Crashes: the workers killed with SIGKILL several times while they hold
#    messages not yet flushed; every message is in the view or a late
#    event, never both, and a window final before a crash is the same
#    after it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FlowstateNode;

my $kafka = kafka_start();
is(kafka_command($kafka, 'topic events 4'), 'ok', 'a topic of 4 partitions');

my $node = new_node('stream_watermarks', qq{
restart_after_crash = on
flowstate.flush_interval = 200ms
});
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION flowstate;
CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers '$kafka->{bootstrap}');
CREATE FOREIGN TABLE events (ts timestamptz NOT NULL, v bigint NOT NULL)
    SERVER kafka OPTIONS (topic 'events', format 'json', workers '2', idle_timeout '6s');
SELECT flowstate.create_view('per_minute', \$\$
    SELECT flowstate.tumble(ts, '1 minute') AS minute, count(*) AS n, sum(v) AS total
      FROM events GROUP BY 1 \$\$, allowed_lateness => '0', notify => true, changelog => true);
SELECT flowstate.create_view('recent', \$\$
    SELECT flowstate.tumble(ts, '1 minute') AS minute, count(*) AS n
      FROM events GROUP BY 1 \$\$, allowed_lateness => '0', retention => '5 minutes');
});
# a client that listens on the view's channel
my ($lin, $lout, $lerr) = ('', '', '');
my $timer = IPC::Run::timer(120);
my $listener = IPC::Run::start([ 'psql', '-X', '-At', '-d', $node->connstr('postgres') ],
	'<', \$lin, '>', \$lout, '2>', \$lerr, $timer);
$lin .= qq{LISTEN "public.per_minute";\nSELECT 'listening';\n};
$listener->pump until $lout =~ /listening/ || $timer->is_expired;
ok($lout =~ /listening/, 'a client listens on the channel public.per_minute');
install_stream_progress($node, 'postgres');

# produce(name, [partition, milliseconds after 2026-01-01, v], ...)
my $dir = $node->basedir . '/messages';
mkdir $dir or die;
my ($produced, $sum) = (0, 0);
sub produce
{
	my ($name, @messages) = @_;
	open my $out, '>', "$dir/$name" or die;
	for my $m (@messages)
	{
		my ($p, $ms, $v) = @$m;
		my $ts = sprintf('2026-01-01T%02d:%02d:%02d.%03dZ',
			int($ms / 3_600_000), int($ms / 60000) % 60, int($ms / 1000) % 60, $ms % 1000);
		print $out qq($p\t{"ts":"$ts","v":$v}\n);
		$produced++;
		$sum += $v;
	}
	close $out;
	return kafka_command($kafka, "produce events $dir/$name partitioned");
}
my $v = 0;
sub watermark
{
	return $node->safe_psql('postgres', q{
		SELECT to_char(watermark AT TIME ZONE 'UTC', 'HH24:MI:SS') FROM flowstate.views
		 WHERE view = 'per_minute'::regclass});
}
sub late_count
{
	return $node->safe_psql('postgres',
		q{SELECT count(*) FROM flowstate.late_events WHERE view = 'per_minute'::regclass});
}

# partitions at different speeds: 0 to 10 minutes in partition 0, 0 to 40
# in the others, in order within each
my @msgs;
for my $j (0 .. 1999)
{
	push @msgs, [ $_, $j * 1200, $v++ ] for (1, 2, 3);
	push @msgs, [ 0, $j * 300, $v++ ];
}
is(produce('speeds', @msgs), 'produced 8000', 'messages at four speeds produced');
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't', 'consumed');
# (each worker takes the flush's event time at its next batch)
wait_until(10, sub { watermark() ge '00:09:00' });
my $wm = watermark();
ok($wm ge '00:09:00' && $wm le '00:10:00',
	"the watermark is that of the slowest partition ($wm)");
is(late_count(), '0', 'no message of the slowest partition is late');
is($node->safe_psql('postgres', q{SELECT sum(n) FROM per_minute}), '8000', 'all in the view');

# partition 0 stops; the others go on, a message each a second (so that
# partition 0 alone goes idle: were they all idle, whichever came back
# first would lead the watermark), then to 50 minutes.  Once partition 0
# has been idle for 6 s, the watermark follows them.
for my $j (2000 .. 2006)
{
	is(produce("busy$j", map { [ $_, $j * 1200, $v++ ] } (1, 2, 3)), 'produced 3',
		"partitions 1 to 3 go on ($j)");
	sleep 1;
}
@msgs = ();
for my $j (2007 .. 2499)
{
	push @msgs, [ $_, $j * 1200, $v++ ] for (1, 2, 3);
}
is(produce('idle', @msgs), 'produced 1479', 'messages without partition 0 produced');
ok(defined wait_until(30, sub { watermark() ge '00:49:00' }),
	'an idle partition leaves the watermark: ' . watermark());
is(late_count(), '0', 'still nothing late');

# partition 0 comes back at 12 minutes, behind the watermark: late; a
# message of partition 1 at 55 minutes is not
is(produce('back', [ 0, 12 * 60_000, $v++ ], [ 1, 55 * 60_000, $v++ ]), 'produced 2', 'partition 0 is back');
ok(defined wait_until(30, sub { late_count() eq '1' }), 'its message is late');
is($node->safe_psql('postgres', q{
	SELECT extract(minute FROM event_time) FROM flowstate.late_events WHERE view = 'per_minute'::regclass}),
	'12', '... the one at 12 minutes');

# the windows final so far: each in the changelog once, announced once
ok(defined wait_until(30, sub { $node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM per_minute_changelog)
	     = (SELECT count(*) FROM per_minute WHERE flowstate.is_final('per_minute', minute))
	   AND (SELECT count(*) FROM per_minute_changelog) > 40}) eq 't' }),
	'the changelog holds the final windows');
my $announced = $node->safe_psql('postgres', q{SELECT count(*) FROM per_minute_changelog});
$lout = '';
$lin .= qq{SELECT 'poke';\nSELECT 'done';\n};
$listener->pump until $lout =~ /^done$/m || $timer->is_expired;
my @payloads = $lout =~ /^Asynchronous notification "public\.per_minute" with payload "(.*)" received from server process/mg;
is(scalar @payloads, $announced, "the client got one notification per final window ($announced)");
my %windows = map { (/"window_start" : "([^"]+)"/)[0] => 1 } @payloads;
is(scalar keys %windows, $announced, 'each for another window');
$lin .= "\\q\n";
$listener->finish;

# crashes: chunks of messages in all partitions, at 55 minutes on (the
# event time of partition 0 runs faster), a few of them 20 minutes back
# (late); the workers killed while they hold messages not flushed yet.  A
# window final before a kill is the same after.
$node->safe_psql('postgres', q{CREATE TABLE final_before (minute timestamptz PRIMARY KEY, n bigint, total numeric)});
my $base = 55 * 60_000;
my $behind = 0;
for my $c (0 .. 5)
{
	@msgs = ();
	for my $j (0 .. 19_999)
	{
		my $p = $j % 4;
		my $ms = $base + int($j / 4) * ($p == 0 ? 40 : 50);
		if ($j % 997 == 5)
		{
			$ms -= 20 * 60_000;
			$behind++;
		}
		push @msgs, [ $p, $ms, $v++ ];
	}
	$base += 5000 * 50;
	if ($c % 2 == 0)
	{
		is(produce("chunk$c", @msgs), 'produced 20000', "chunk $c produced");
		is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't',
			"chunk $c consumed");
		next;
	}

	$node->safe_psql('postgres', q{
		INSERT INTO final_before SELECT minute, n, total FROM per_minute
		 WHERE flowstate.is_final('per_minute', minute)
		ON CONFLICT (minute) DO UPDATE SET n = excluded.n, total = excluded.total});
	# the sampling runs before the chunk is produced (once what came before
	# is durable), then kills a worker while the view holds messages of it
	# not flushed yet
	ok(defined wait_until(10, sub { $node->safe_psql('postgres', q{
		SELECT (SELECT coalesce(sum(n), 0) FROM per_minute)
		     + (SELECT count(*) FROM flowstate.late_events WHERE view = 'per_minute'::regclass)
		     = (SELECT sum(next_offset) FROM flowstate.stream_offsets o
		          JOIN flowstate.view v USING (view_id) WHERE v.view = 'per_minute'::regclass)}) eq 't' }),
		"chunk $c: what came before is durable");
	set_flush_interval($node, '10s');
	my $log_offset = -s $node->logfile;
	my ($in, $out, $err) = ('', '', '');
	my $psql = IPC::Run::start([ 'psql', '-X', '-At', '-d', $node->connstr('postgres') ],
		'<', \$in, '>', \$out, '2>', \$err);
	$in .= qq{SELECT (SELECT min(pid) FROM flowstate.sources WHERE kind = 'kafka') AS victim,
	                 public.stream_progress('per_minute', true) AS sample \\gset
\\echo sample: :sample
\\set cmd 'kill -KILL ' :victim
COPY (SELECT) TO PROGRAM :'cmd';
};
	ok(defined wait_until(10, sub {
		$psql->pump_nb;
		$node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
		         WHERE query LIKE '%stream_progress(''per_minute'', true)%' AND pid <> pg_backend_pid()}) eq '1' }),
		"chunk $c: the sampling runs");
	is(produce("chunk$c", @msgs), 'produced 20000', "chunk $c produced");
	$psql->finish;
	my ($sample) = $out =~ /^sample: (.*)$/m;
	my @sample = split / /, $sample // '';
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
	ok(@sample == 2 && $sample[0] > $sample[1],
		"chunk $c: killed while messages were not flushed ($sample[0] against "
		  . ($sample[1] // '?') . ' durable)');
	ok(defined wait_until(30, sub { my @p = eval { kafka_pids($node, 'postgres') }; @p == 2 }),
		"chunk $c: the Kafka workers are back");
	set_flush_interval($node, undef);
	is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't',
		"chunk $c consumed after the crash");
	is($node->safe_psql('postgres', q{
		SELECT count(*) FROM final_before f LEFT JOIN per_minute v USING (minute)
		 WHERE v.n IS DISTINCT FROM f.n OR v.total IS DISTINCT FROM f.total}),
		'0', "chunk $c: the windows final before the crash did not change");
}
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't', 'all consumed');
cmp_ok($node->safe_psql('postgres', q{SELECT count(*) FROM final_before}), '>', 10,
	'windows were final before the crashes');

my ($held, $n, $late, $total) = messages_accounted($node, 'postgres', 'per_minute', $produced);
ok($held, 'every message is in the view or a late event');
note("messages in the view: $n, late events: $late");
is($late, $behind + 1, 'the messages 20 minutes back were late, and only they (and the one at 12 minutes)');
is($n + $late, $produced, 'the view and the late events hold each message once');
is($total, $sum, '... and so for the sum of their values: none in both');
# each final window once in the changelog, as the view shows it, across
# the crashes
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT minute FROM per_minute_changelog GROUP BY minute HAVING count(*) > 1) d}),
	'0', 'no window twice in the changelog');
ok(defined wait_until(30, sub { $node->safe_psql('postgres', q{
	SELECT count(*) FROM ((SELECT minute, n, total FROM per_minute_changelog
	                       EXCEPT SELECT * FROM per_minute WHERE flowstate.is_final('per_minute', minute))
	                      UNION ALL
	                      (SELECT * FROM per_minute WHERE flowstate.is_final('per_minute', minute)
	                       EXCEPT SELECT minute, n, total FROM per_minute_changelog)) d}) eq '0' }),
	'the changelog holds each final window as the view shows it');
# retention: the windows of "recent" that ended 5 minutes before its final
# event time are gone; the others are those of per_minute
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM recent, flowstate.view v
	 WHERE v.view = 'recent'::regclass AND minute <= v.final_event_time - interval '6 minutes'}),
	'0', 'retention removed the windows that ended 5 minutes before the final event time');
cmp_ok($node->safe_psql('postgres', q{SELECT count(*) FROM recent}), '<',
	$node->safe_psql('postgres', q{SELECT count(*) FROM per_minute}) - 50, '... most of them');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM recent r JOIN per_minute p USING (minute) WHERE r.n <> p.n}),
	'0', 'the windows kept equal those of a view without retention');
# stream_offsets keeps each partition's event time with its offset
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM flowstate.stream_offsets o JOIN flowstate.view v USING (view_id)
	 WHERE v.view = 'per_minute'::regclass AND o.max_event_time IS NOT NULL}),
	'4', 'each partition has its event time in flowstate.stream_offsets');

$node->stop;
done_testing();
