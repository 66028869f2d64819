# Session windows across crashes.  Over a table: a click that bridges two
# sessions of a user merges them, its deletion (after kill -9 of the
# decoder) splits them again; then pgbench inserts, moves clicks in time
# and between users, changes and deletes them, a TRUNCATE comes in the
# middle, while the decoder is killed with SIGKILL several times and the
# server stopped in immediate mode once.  Over a Kafka stream of two
# workers: clicks shuffled within the watermark delay, bridges that merge
# sessions seen before, the workers killed with SIGKILL while they hold
# messages not yet flushed.  At every step the session views equal their
# defining queries run as batch queries (over the table, or over the
# messages loaded into a table): nothing lost, nothing counted twice, no
# session left merged or split wrongly.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use List::Util qw(shuffle sum);
use FlowstateNode;

srand(28);

my $node = new_node('sessions', qq{
restart_after_crash = on
flowstate.flush_interval = 100ms
});
$node->start;

# the views' defining queries: per user, sessions of 2 minutes; all users
# together, sessions of 100 seconds of the dearer clicks
my %query = (
	visits => q{
    SELECT usr, session_start, count(*) AS clicks, max(ts) AS last_click,
           sum(amount) AS spent, min(amount) AS least
      FROM (SELECT usr, ts, amount,
                   flowstate.session(ts, '2 minutes') OVER (PARTITION BY usr ORDER BY ts) AS session_start
              FROM public.clicks) s
     GROUP BY usr, session_start},
	spells => q{
    SELECT session_start AS spell, count(*) AS clicks, max(ts) - session_start AS span,
           sum(amount) AS spent
      FROM (SELECT ts, amount,
                   flowstate.session(ts, '100 seconds') OVER (ORDER BY ts) AS session_start
              FROM public.clicks WHERE amount >= 95) s
     GROUP BY session_start});

$node->safe_psql('postgres', q{
CREATE EXTENSION flowstate;
CREATE TABLE clicks (id bigserial PRIMARY KEY, ts timestamptz NOT NULL, usr int NOT NULL,
                     amount numeric(6, 2) NOT NULL);
ALTER TABLE clicks REPLICA IDENTITY FULL;
CREATE INDEX ON clicks (usr, ts);
-- 2,000 clicks of 20 users over 3 hours: about one a gap per user
SELECT setseed(0.28);
INSERT INTO clicks (ts, usr, amount)
SELECT '2026-01-01 00:00+00'::timestamptz + (random() * 10800)::int * interval '1 second',
       (random() * 19)::int, round((random() * 100)::numeric, 2)
  FROM generate_series(1, 2000);

-- session_differences(view, query): the rows the view and the query do not share
CREATE FUNCTION public.session_differences(v regclass, q text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM ((TABLE %s EXCEPT ALL (%s)) UNION ALL ((%s) EXCEPT ALL TABLE %s)) d',
                   v, q, q, v) INTO n;
    RETURN n;
END $$;
});
install_decoder_unflushed($node, 'postgres');
# created over rows already there: backfilled
for my $view (sort keys %query)
{
	$node->safe_psql('postgres', "SELECT flowstate.create_view('public.$view', \$q\$ $query{$view} \$q\$)");
}

# check_views(when): after wait_for, each view equals its batch query
sub check_views
{
	my ($when) = @_;
	is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't',
		"$when: the views caught up");
	for my $view (sort keys %query)
	{
		is($node->safe_psql('postgres', "SELECT public.session_differences('$view', \$q\$ $query{$view} \$q\$)"),
			'0', "$when: $view equals its batch query");
	}
}

sub query
{
	return $node->safe_psql('postgres', $_[0]);
}

check_views('after the backfill');
# (the comparison tells sessions of another gap apart)
cmp_ok(query("SELECT public.session_differences('visits', \$q\$ @{[ $query{visits} =~ s/'2 minutes'/'3 minutes'/r ]} \$q\$)"),
	'>', 0, 'visits differs from the batch query of sessions of 3 minutes');
cmp_ok(query('SELECT count(*) FROM visits'), '>', 100, 'the users have many sessions');
cmp_ok(query('SELECT count(*) FROM spells WHERE clicks > 1'), '>', 0, 'some spells hold several clicks');

# user 100: two sessions, 10:00 to 10:01 and 10:04 to 10:05 (3 minutes
# apart); user 101 one, at noon.  Of the clicks of 95 or more, all users
# together: three spells, 10:00, 10:04 and 12:00
query(q{
INSERT INTO clicks (ts, usr, amount) VALUES
    ('2026-01-02 10:00:00+00', 100, 96), ('2026-01-02 10:01:00+00', 100, 97),
    ('2026-01-02 10:04:00+00', 100, 98), ('2026-01-02 10:05:00+00', 100, 99),
    ('2026-01-02 12:00:00+00', 101, 95.5), ('2026-01-02 12:00:30+00', 101, 95.5)});
my $user100 = q{SELECT count(*) || ' sessions, clicks ' || string_agg(clicks::text, ',' ORDER BY session_start)
                       || ', spent ' || string_agg(spent::text, ',' ORDER BY session_start)
                       || ', least ' || string_agg(least::text, ',' ORDER BY session_start)
                       || ', last ' || string_agg(to_char(last_click AT TIME ZONE 'UTC', 'HH24:MI:SS'), ','
                                                  ORDER BY session_start)
                  FROM visits WHERE usr = 100};
my $spells_day2 = q{SELECT count(*) || ' spells, clicks ' || string_agg(clicks::text, ',' ORDER BY spell)
                           || ', span ' || string_agg(span::text, ',' ORDER BY spell)
                      FROM spells WHERE spell >= '2026-01-02 00:00+00'};
check_views('two sessions');
is(query($user100), '2 sessions, clicks 2,2, spent 193.00,197.00, least 96.00,98.00, last 10:01:00,10:05:00',
	'user 100 has two sessions');
is(query($spells_day2), '3 spells, clicks 2,2,2, span 00:01:00,00:01:00,00:00:30',
	'three spells on the second day');

# a click at 10:02:30, 90 seconds from each: one session of 5 clicks, and
# the spells of 10:00 and 10:04 become one
query(q{INSERT INTO clicks (ts, usr, amount) VALUES ('2026-01-02 10:02:30+00', 100, 95)});
check_views('after the bridge');
is(query($user100), '1 sessions, clicks 5, spent 485.00, least 95.00, last 10:05:00',
	'the bridge merged the two sessions of user 100 into one');
is(query($spells_day2), '2 spells, clicks 5,2, span 00:05:00,00:00:30',
	'and the two spells into one');

# kill -9 of the decoder; the bridge deleted as soon as the server is back
my $pid = decoder_pid($node, 'postgres');
my $log_offset = -s $node->logfile;
kill 'KILL', $pid;
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
ok(defined wait_until(30, sub {
	eval { $node->safe_psql('postgres', q{DELETE FROM clicks WHERE usr = 100 AND amount = 95}); 1 } }),
	'the bridge is deleted after kill -9 of the decoder');
ok(defined decoder_back($node, 'postgres', $pid), 'the decoder is back after kill -9');
check_views('after the bridge was deleted');
is(query($user100), '2 sessions, clicks 2,2, spent 193.00,197.00, least 96.00,98.00, last 10:01:00,10:05:00',
	'user 100 has two sessions again');
is(query($spells_day2), '3 spells, clicks 2,2,2, span 00:01:00,00:01:00,00:00:30',
	'and the spells are split again');
unlike(slurp_file($node->logfile, $log_offset), qr/backfilling/,
	'the views resumed from their panes, not from a new backfill');

# churn: each pgbench transaction inserts a click (of 40 users over 6
# hours: the table keeps gaps between sessions as it grows), moves another
# by up to 150 seconds either way (and, one time in three, to another
# user), changes the amount of a third (in and out of the spells), and
# deletes a fourth: first, last and middle clicks of sessions
my $script = $node->basedir . '/churn.sql';
PostgreSQL::Test::Utils::append_to_file($script, q{
\set usr random(0, 39)
\set other random(0, 39)
\set id random(:lo, :hi)
\set second random(0, 21599)
\set shift random(-150, 150)
\set amount random(0, 9999)
BEGIN;
INSERT INTO clicks (ts, usr, amount)
  VALUES ('2026-01-01 00:00+00'::timestamptz + :second * interval '1 second', :usr, :amount / 100.0);
UPDATE clicks SET ts = ts + :shift * interval '1 second',
                  usr = CASE WHEN :amount % 3 = 0 THEN :other ELSE usr END
 WHERE id = :id;
UPDATE clicks SET amount = (:amount % 1000) / 10.0 + 5 WHERE id = :id + 1;
DELETE FROM clicks WHERE id = :id + 2;
COMMIT;
});

sub rows_written
{
	return query('SELECT last_value FROM clicks_id_seq');
}

# pgbench in the background over the ids there are; it stops on its own
# when the server goes away
sub start_writers
{
	my ($seconds) = @_;
	my ($lo, $hi) = split /\|/, query('SELECT min(id), max(id) FROM clicks');
	my ($out, $err) = ('', '');
	return IPC::Run::start(
		[ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', $seconds, '--max-tries', '50',
		  '-D', "lo=$lo", '-D', "hi=$hi",
		  '-f', $script, '-h', $node->host, '-p', $node->port, 'postgres' ],
		'>', \$out, '2>', \$err);
}

for my $round (1 .. 5)
{
	my $immediate = $round == 5;
	my $when = $immediate ? 'immediate stop' : "kill -9 $round";
	my $before = rows_written();
	my $writers = start_writers(60);
	ok(defined wait_until(30, sub { rows_written() > $before + 300 }), "$when: pgbench is writing");
	if ($round == 3)
	{
		# TRUNCATE while pgbench writes, and clicks again: the crash comes
		# while the decoder applies them
		query('TRUNCATE clicks');
		query(q{
			INSERT INTO clicks (ts, usr, amount)
			SELECT '2026-01-01 00:00+00'::timestamptz + (random() * 10800)::int * interval '1 second',
			       (random() * 19)::int, round((random() * 100)::numeric, 2)
			  FROM generate_series(1, 1500)});
	}
	my $log_offset = -s $node->logfile;
	if ($immediate)
	{
		my ($postmaster) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
		unflushed_at_crash($when, kill9_sampled($node, 'postgres', qq{
			SELECT $postmaster, public.decoder_unflushed()}, 'QUIT'));
		$node->stop('immediate', fail_ok => 1);
		$writers->finish;
		$node->start;
	}
	else
	{
		my $pid = decoder_pid($node, 'postgres');
		unflushed_at_crash($when, kill9_sampled($node, 'postgres', qq{
			SELECT $pid, public.decoder_unflushed()}));
		$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
		$writers->finish;    # the crash ended its sessions
		ok(defined decoder_back($node, 'postgres', $pid), "$when: the decoder is back");
	}
	# more writes while the decoder catches up with what it had not flushed
	$before = rows_written();
	start_writers(1)->finish;
	cmp_ok(rows_written(), '>', $before, "$when: writes after the crash");
	check_views("after $when");
	unlike(slurp_file($node->logfile, $log_offset), qr/backfilling/,
		"$when: the views resumed from their panes");
}
my ($sessions, $users, $longest, $clicks) = split /\|/,
  query('SELECT count(*), count(DISTINCT usr), max(clicks), sum(clicks) FROM visits');
note("after the churn: $clicks clicks, $sessions sessions of $users users, the longest of $longest clicks");
is($clicks, query('SELECT count(*) FROM clicks'), 'visits counts every click once');
cmp_ok($sessions, '>', 5 * $users, 'users have several sessions each');
cmp_ok($longest, '>', 2, 'some sessions hold several clicks');
my ($spells, $dear, $widest) = split /\|/,
  query('SELECT count(*), sum(clicks), max(clicks) FROM spells');
note("after the churn: $spells spells of $dear clicks, the widest of $widest");
is($dear, query('SELECT count(*) FROM clicks WHERE amount >= 95'), 'spells counts every dear click once');
cmp_ok($spells, '>', 3, 'the dear clicks make several spells');

######################################################################
# A Kafka stream of 4 partitions shared by two workers.  Chunk c holds the
# clicks of minutes 5c to 5c + 5 in bursts: each user's clicks of seconds
# 0 to 40 and 150 to 190 of the chunk (shifted by the user), two sessions;
# then, in chunk c + 1, for one user in three, a bridge at second 95 that
# merges those two, and in chunk c + 2, for one in four, one at second 245
# that merges the second with the first of chunk c + 1.  Each chunk is
# shuffled: a click lags the largest event time consumed by 11 minutes at
# most, within the watermark delay of 15 minutes, so that with
# allowed_lateness 0 none is late.
######################################################################
my $kafka = kafka_start();
is(kafka_command($kafka, 'topic clicks 4'), 'ok', 'a topic of 4 partitions');
$node->safe_psql('postgres', qq{
CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers '$kafka->{bootstrap}');
CREATE FOREIGN TABLE click_stream (ts timestamptz NOT NULL, usr int NOT NULL, v bigint NOT NULL)
    SERVER kafka OPTIONS (topic 'clicks', format 'json', workers '2');
CREATE TABLE click_batch (ts timestamptz NOT NULL, usr int NOT NULL, v bigint NOT NULL);
});
my $stream_query = q{
    SELECT usr, session_start, count(*) AS n, max(ts) AS last_click, sum(v) AS total
      FROM (SELECT usr, ts, v,
                   flowstate.session(ts, '1 minute') OVER (PARTITION BY usr ORDER BY ts) AS session_start
              FROM public.click_stream) s
     GROUP BY usr, session_start};
(my $batch_query = $stream_query) =~ s/public\.click_stream/public.click_batch/;
$node->safe_psql('postgres', qq{
SELECT flowstate.create_view('public.stream_visits', \$q\$ $stream_query \$q\$,
                             watermark_delay => '15 minutes', allowed_lateness => '0');
});
install_stream_progress($node, 'postgres');
ok(defined wait_until(30, sub {
	query(q{SELECT count(*) FROM flowstate.sources WHERE kind = 'kafka' AND state = 'running'}) eq '2' }),
	'two workers consume the stream');

my $dir = $node->basedir . '/messages';
mkdir $dir or die;
my $chunks = 8;
my $users_k = 40;
my (@chunk, $produced, $total);
my $serial = 0;

sub stamp
{
	my ($ms) = @_;
	return sprintf('2026-01-01T%02d:%02d:%02d.%03dZ',
		int($ms / 3_600_000), int($ms / 60_000) % 60, int($ms / 1000) % 60, $ms % 1000);
}
for my $c (0 .. $chunks - 1)
{
	for my $u (0 .. $users_k - 1)
	{
		my $base = $c * 300_000 + ($u % 7) * 1000;
		my $k = 10 + ($u * 7 + $c) % 25;
		for my $burst (0, 150_000)
		{
			for my $j (0 .. $k - 1)
			{
				push @{ $chunk[$c] }, [ $base + $burst + int($j * 40_000 / ($k - 1)), $u, $serial++ ];
			}
		}
		push @{ $chunk[ $c + 1 ] }, [ $base + 95_000, $u, 1_000_000 + $serial++ ]
		  if $u % 3 == 0 && $c + 1 < $chunks;
		push @{ $chunk[ $c + 2 ] }, [ $base + 245_000, $u, 1_000_000 + $serial++ ]
		  if $u % 4 == 1 && $c + 2 < $chunks;
	}
}

# sessions(usr, before): the sessions of usr starting before minute 'before'
sub sessions
{
	my ($usr, $minutes) = @_;
	return query(qq{SELECT count(*) FROM stream_visits
	                 WHERE usr = $usr AND session_start < '2026-01-01 00:00+00'::timestamptz
	                                                      + interval '$minutes minutes'});
}
sub stream_check
{
	my ($when) = @_;
	is(query(q{SELECT flowstate.wait_for(timeout => '60s')}), 't', "$when: consumed");
	is(query("SELECT public.session_differences('stream_visits', \$q\$ $batch_query \$q\$)"), '0',
		"$when: stream_visits equals its defining query over the messages loaded into a table");
}

my %kill = (2 => 'click_stream (worker 0)', 5 => 'click_stream (worker 1)');
for my $c (0 .. $chunks - 1)
{
	my @messages = shuffle @{ $chunk[$c] };
	open my $json, '>', "$dir/chunk$c.json" or die;
	open my $csv, '>', "$dir/chunk$c.csv" or die;
	for my $m (@messages)
	{
		my $ts = stamp($m->[0]);
		print $json qq({"ts":"$ts","usr":$m->[1],"v":$m->[2]}\n);
		print $csv "$ts,$m->[1],$m->[2]\n";
	}
	close $json;
	close $csv;
	$produced += @messages;
	$total += sum(map { $_->[2] } @messages);
	query("COPY click_batch FROM '$dir/chunk$c.csv' (FORMAT csv)");
	my $file = "$dir/chunk$c.json";
	if (my $source = $kill{$c})
	{
		# killed while the panes hold messages of the chunk whose offsets are
		# not durable: the sampling runs before the chunk is produced, and
		# flushes wait meanwhile
		set_flush_interval($node, '10s');
		my $log_offset = -s $node->logfile;
		my ($in, $out, $err) = ('', '', '');
		my $psql = IPC::Run::start([ 'psql', '-X', '-At', '-d', $node->connstr('postgres') ],
			'<', \$in, '>', \$out, '2>', \$err);
		$in .= qq{SELECT (SELECT pid FROM flowstate.sources WHERE source = '$source') AS victim,
		                 public.stream_progress('public.stream_visits', true) AS sample \\gset
\\echo sample: :sample
\\set cmd 'kill -KILL ' :victim
COPY (SELECT) TO PROGRAM :'cmd';
};
		ok(defined wait_until(10, sub {
			$psql->pump_nb;
			query(q{SELECT count(*) FROM pg_stat_activity
			         WHERE query LIKE '%stream_progress(''public.stream_visits'', true)%' AND pid <> pg_backend_pid()}) eq '1' }),
			"chunk $c: the sampling runs");
		is(kafka_command($kafka, "produce clicks $file"), 'produced ' . scalar(@messages), "chunk $c produced");
		$psql->finish;
		my ($sample) = $out =~ /^sample: (.*)$/m;
		my @sample = split / /, $sample // '';
		note("chunk $c: at the kill of $source, the view showed $sample[0] messages, "
			  . 'its durable offsets covered ' . ($sample[1] // '?'));
		ok(@sample == 2 && $sample[0] > $sample[1],
			"chunk $c: $source was killed while the view held messages whose offsets were not flushed");
		$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
		ok(defined wait_until(30, sub { my @p = eval { kafka_pids($node, 'postgres') }; @p == 2 }),
			"chunk $c: the two Kafka workers are back");
		set_flush_interval($node, undef);
	}
	else
	{
		is(kafka_command($kafka, "produce clicks $file"), 'produced ' . scalar(@messages), "chunk $c produced");
	}
	stream_check("chunk $c");
	if ($c == 0)
	{
		is(sessions(0, 5), '2', 'chunk 0: user 0 has two sessions in minutes 0 to 5');
		is(sessions(1, 10), '2', 'chunk 0: user 1 has two sessions in minutes 0 to 10');
	}
	elsif ($c == 1)
	{
		is(sessions(0, 5), '1', 'chunk 1: its bridge merged the two sessions of user 0');
		is(sessions(1, 10), '4', 'chunk 1: user 1 has four sessions in minutes 0 to 10');
	}
	elsif ($c == 2)
	{
		is(sessions(1, 10), '3', 'chunk 2: its bridge merged the second and third sessions of user 1');
	}
}

my ($n, $sum) = split /\|/, query('SELECT sum(n), sum(total) FROM stream_visits');
is($n, $produced, 'stream_visits counts every message once');
is($sum, $total, '... and so for the sum of their values');
is(query(q{SELECT count(*) FROM flowstate.late_events}), '0', 'no message was late');
is(query(q{SELECT count(*) FROM flowstate.dead_letters}), '0', 'no message was refused');
# the bridges (values from 1,000,000) merged sessions: the batch query
# without them finds more
my $sessions_k = query('SELECT count(*) FROM stream_visits');
my $without_bridges = query(qq{
	SELECT count(*) FROM (@{[ $batch_query =~ s/FROM public\.click_batch\)/FROM public.click_batch WHERE v < 1000000)/r ]}) q});
note("stream_visits: $sessions_k sessions, $without_bridges without the bridges");
cmp_ok($sessions_k, '<', $without_bridges, 'the bridges merged sessions');
my ($final, $open) = split /\|/, query(q{
	SELECT count(*) FILTER (WHERE flowstate.is_final('stream_visits', last_click)),
	       count(*) FILTER (WHERE NOT flowstate.is_final('stream_visits', last_click))
	  FROM stream_visits});
note("stream_visits: $final final sessions, $open open");
ok($final > 0 && $open > 0, 'the sessions behind the watermark are final, the recent ones not');

# and the views of the table are intact after the crashes of the stream's workers
check_views('at the end');

$node->stop;
$kafka->{h}->kill_kill;
done_testing();
