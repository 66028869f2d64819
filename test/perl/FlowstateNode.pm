# Helpers shared by flowstate's TAP tests: a preloaded node and worker probes.
package FlowstateNode;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils qw(slurp_file);
use Test::More;
use Time::HiRes qw(time usleep);
use IPC::Run;
use FindBin;
use Exporter 'import';

our @EXPORT = qw(new_node set_flush_interval hold_flushes install_decoder_unflushed unflushed_at_crash managers manager_pid launcher_pid decoder_pid decoder_back wait_until drop_decoder_slot
  install_oracle differences state_table view_status kafka_start kafka_command kafka_pids kill9_sampled install_stream_progress kill_unflushed messages_accounted);

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

# decoder_back(node, db, old_pid): once (at most 30 s) a decoding worker of
# db other than old_pid runs, the seconds it took; undef if none did
sub decoder_back
{
	my ($node, $db, $old) = @_;
	return wait_until(30, sub {
		my $pid = eval { decoder_pid($node, $db) } // '';
		return $pid ne '' && $pid ne $old;
	});
}

# decoder_pid(node, db): the decoding worker of db, or ''
sub decoder_pid
{
	my ($node, $db) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT pid FROM pg_stat_activity
		 WHERE backend_type = 'flowstate decoder' AND datname = '$db'});
}

# install_oracle(node, db): test/oracle.sql, whose public.differences(view)
# counts the rows that the view and its defining query, run as a plain
# batch query, do not share (EXCEPT ALL both ways).  Floats are compared to
# 9 significant digits: the view adds them in commit order, the batch query
# in scan order.
sub install_oracle
{
	my ($node, $db) = @_;
	$node->safe_psql($db, slurp_file("$FindBin::RealBin/../oracle.sql"));
}

# differences(node, db, view): after flowstate.wait_for() on the current WAL
# position, the rows the view and its batch query do not share ('' when the
# view did not catch up within 60 s)
sub differences
{
	my ($node, $db, $view) = @_;
	return $node->safe_psql($db, qq{
		SELECT CASE WHEN flowstate.wait_for(pg_current_wal_lsn(), '60s')
		            THEN public.differences('$view') END});
}

# state_table(node, db, view): the view's state table, qualified
sub state_table
{
	my ($node, $db, $view) = @_;
	return $node->safe_psql($db, qq{
		SELECT state_table::regclass FROM flowstate.view WHERE view = '$view'::regclass});
}

# view_status(node, db, view): 'status / last_error' of the view in
# flowstate.views
sub view_status
{
	my ($node, $db, $view) = @_;
	return $node->safe_psql($db, qq{
		SELECT status || ' / ' || coalesce(last_error, '') FROM flowstate.views
		 WHERE view = '$view'::regclass});
}

# kafka_start(): librdkafka's mock cluster (test/kafka_mock); returns a
# handle whose {bootstrap} is the brokers' list
sub kafka_start
{
	my $k = { in => '', out => '', err => '' };
	my $program = "$FindBin::RealBin/../kafka_mock";
	die "$program is missing: run make test/kafka_mock" unless -x $program;
	$k->{h} = IPC::Run::start([$program], '<', \$k->{in}, '>', \$k->{out}, '2>', \$k->{err});
	$k->{h}->pump until $k->{out} =~ /^ready (\S+)\n/m;
	$k->{bootstrap} = $1;
	$k->{out} = '';
	return $k;
}

# kafka_command(handle, command): run a command of test/kafka_mock, return
# its answer
sub kafka_command
{
	my ($k, $command) = @_;
	$k->{in} .= "$command\n";
	$k->{h}->pump until $k->{out} =~ /\n/;
	my ($answer) = $k->{out} =~ /^(.*)\n/;
	$k->{out} = '';
	return $answer;
}

# kafka_pids(node, db): the Kafka workers of db
sub kafka_pids
{
	my ($node, $db) = @_;
	return split /\n/, $node->safe_psql('postgres', qq{
		SELECT pid FROM pg_stat_activity
		 WHERE backend_type = 'flowstate kafka' AND datname = '$db' ORDER BY pid});
}

# kill9_sampled(node, db, query, signal): in one psql session, run query,
# which returns one row: the pid of a process and a sample of its progress
# (text), then send that process signal (default KILL) from the server
# (COPY TO PROGRAM) at once; returns the sample (undef if the query
# returned no row).  The sample shows what the process had not yet made
# durable when it died.
sub kill9_sampled
{
	my ($node, $db, $query, $signal) = @_;
	$signal //= 'KILL';
	my ($ret, $out, $err) = $node->psql($db,
		"SELECT victim, sample FROM ($query) q(victim, sample) \\gset\n" .
		  qq{\\echo sample: :sample
\\set cmd 'kill -$signal ' :victim
COPY (SELECT) TO PROGRAM :'cmd';
});
	my ($sample) = $out =~ /^sample: (.*)$/m;
	return $sample;
}

# install_stream_progress(node, db): public.stream_progress(view, wait),
# for kill_unflushed(): the messages a view over a stream (whose count is
# n) shows or recorded as late events, and those its durable offsets cover,
# as 'applied durable', in one snapshot; with wait, once the first exceed
# the second (at most 10 s).  For a view that keeps its state in
# <view>_panes, the panes' late events and offsets.
sub install_stream_progress
{
	my ($node, $db) = @_;
	$node->safe_psql($db, q{
CREATE FUNCTION public.stream_progress(view regclass, wait_unflushed boolean)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '10 seconds';
    state regclass := coalesce(to_regclass(view::text || '_panes'), view);
    applied bigint;
    durable bigint;
BEGIN
    LOOP
        EXECUTE format('SELECT (SELECT coalesce(sum(n), 0) FROM %s)
                             + (SELECT count(*) FROM flowstate.late_events WHERE view = %L::regclass),
                               (SELECT coalesce(sum(next_offset), 0) FROM flowstate.stream_offsets o
                                  JOIN flowstate.view v USING (view_id) WHERE v.view = %L::regclass)',
                       view, state, state) INTO applied, durable;
        EXIT WHEN NOT wait_unflushed OR applied > durable OR clock_timestamp() > deadline;
        PERFORM pg_sleep(0.001);
    END LOOP;
    RETURN applied || ' ' || durable;
END $$});
}

# messages_accounted(node, db, view, produced): once the view over a stream
# (of count n and sum total of the messages' v) and its late events hold
# produced messages (at most 30 s), (whether they did, messages in the
# view, late events, sum of v over both)
sub messages_accounted
{
	my ($node, $db, $view, $produced) = @_;
	my $held = defined wait_until(30, sub {
		$node->safe_psql($db, qq{
			SELECT (SELECT coalesce(sum(n), 0) FROM $view)
			     + (SELECT count(*) FROM flowstate.late_events WHERE view = '$view'::regclass)})
		  >= $produced });
	return ($held, split /\|/, $node->safe_psql($db, qq{
		SELECT (SELECT sum(n) FROM $view),
		       (SELECT count(*) FROM flowstate.late_events WHERE view = '$view'::regclass),
		       (SELECT sum(total) FROM $view)
		     + (SELECT coalesce(sum((payload::jsonb ->> 'v')::bigint), 0) FROM flowstate.late_events
		         WHERE view = '$view'::regclass)}));
}

# kill_unflushed(node, db, view, pid_sql, signal): wait (up to 10 s) until
# the view over a stream (whose count is n) shows messages its durable
# offsets do not cover yet, then signal the process pid_sql returns (a
# Kafka worker; the postmaster with QUIT: an immediate stop) at once.
# Returns [messages the view showed, messages the durable offsets covered]
# at the last look before the signal ([] when no process was signalled).
sub kill_unflushed
{
	my ($node, $db, $view, $pid_sql, $signal) = @_;
	my $sample = kill9_sampled($node, $db,
		"SELECT ($pid_sql), public.stream_progress('$view', true)", $signal);
	return [ split / /, $sample // '' ];
}

# install_decoder_unflushed(node, db): public.decoder_unflushed(), which
# returns 'applied_lsn durable_lsn' of the decoder once (at most 10 s) it has
# applied past its durable position: a crash right after it must decode
# again what lies between
sub install_decoder_unflushed
{
	my ($node, $db) = @_;
	$node->safe_psql($db, q{
CREATE FUNCTION public.decoder_unflushed() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '10 seconds';
    s record;
BEGIN
    LOOP
        SELECT applied_lsn, durable_lsn INTO s FROM flowstate.sources WHERE kind = 'logical decoding';
        EXIT WHEN s.applied_lsn > s.durable_lsn OR clock_timestamp() > deadline;
        PERFORM pg_sleep(0.001);
    END LOOP;
    RETURN s.applied_lsn || ' ' || s.durable_lsn;
END $$});
	return;
}

# unflushed_at_crash(when, sample): passes when the sample of
# decoder_unflushed() shows the crash came with decoded changes not flushed
sub unflushed_at_crash
{
	my ($when, $sample) = @_;
	note("$when: applied and durable positions at the crash: " . ($sample // 'none'));
	my ($applied, $durable) = map { my ($hi, $lo) = split m{/}; hex($hi) * 2**32 + hex($lo) }
	  grep { m{^[0-9A-F]+/[0-9A-F]+$} } split / /, $sample // '';
	ok(defined $durable && $applied > $durable,
		"$when: the crash came while the decoder had applied changes it had not flushed");
}

# set_flush_interval(node, interval): flowstate.flush_interval for the
# whole server from now on (ALTER SYSTEM and a reload; undef resets it).
# A test that must catch a view holding what is not durable yet widens the
# window so, instead of racing the flushes.
sub set_flush_interval
{
	my ($node, $interval) = @_;
	$node->safe_psql('postgres',
		defined $interval ? "ALTER SYSTEM SET flowstate.flush_interval = '$interval'"
		  : 'ALTER SYSTEM RESET flowstate.flush_interval');
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	return;
}

# hold_flushes(node): flushes 10 s apart from now on, the one under way
# (at most the 200 ms the tests' configuration sets) ended: what the
# workers consume next stays unflushed for a while, as a test of a crash
# before the flush needs.  set_flush_interval(node, undef) ends it.
sub hold_flushes
{
	my ($node) = @_;
	set_flush_interval($node, '10s');
	usleep(300_000);
	return;
}

# drop_decoder_slot(node): terminate the decoding worker and drop its
# replication slot before it starts again (it then rebuilds its views);
# true once dropped within 60 s
sub drop_decoder_slot
{
	my ($node) = @_;
	return defined wait_until(60, sub {
		$node->safe_psql('postgres', q{
			SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			 WHERE backend_type = 'flowstate decoder'});
		return $node->safe_psql('postgres', q{
			SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots
			 WHERE slot_name LIKE 'flowstate%' AND NOT active}) eq '1';
	});
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
