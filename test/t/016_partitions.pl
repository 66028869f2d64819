# A partitioned events table with daily partitions: while pgbench inserts,
# moves rows between partitions, updates and deletes them, a new day holding
# rows is attached, an old day detached concurrently, and the decoding
# worker is killed with SIGKILL in the middle of its work.  Afterwards the
# views equal their defining queries run as batch queries: the attached
# day's rows count, the detached day's do not, nothing is lost or counted
# twice.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FlowstateNode;

my $node = new_node('partitions', qq{
restart_after_crash = on
flowstate.flush_interval = 500ms
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION flowstate;
CREATE TABLE events (
    id     bigint NOT NULL,
    ts     timestamptz NOT NULL,
    sensor int NOT NULL,
    v      int
) PARTITION BY RANGE (ts);
CREATE INDEX ON events (id);
CREATE SEQUENCE events_id;
ALTER TABLE events ALTER id SET DEFAULT nextval('events_id');
CREATE TABLE events_d1 PARTITION OF events FOR VALUES FROM ('2026-01-01 00:00+00') TO ('2026-01-02 00:00+00');
CREATE TABLE events_d2 PARTITION OF events FOR VALUES FROM ('2026-01-02 00:00+00') TO ('2026-01-03 00:00+00');
CREATE TABLE events_d3 PARTITION OF events FOR VALUES FROM ('2026-01-03 00:00+00') TO ('2026-01-04 00:00+00');
CREATE TABLE events_d4 PARTITION OF events FOR VALUES FROM ('2026-01-04 00:00+00') TO ('2026-01-05 00:00+00');
ALTER TABLE events_d1 REPLICA IDENTITY FULL;
ALTER TABLE events_d2 REPLICA IDENTITY FULL;
ALTER TABLE events_d3 REPLICA IDENTITY FULL;
ALTER TABLE events_d4 REPLICA IDENTITY FULL;
INSERT INTO events (ts, sensor, v)
SELECT '2026-01-01 00:00+00'::timestamptz + (i % 5760) * interval '1 minute', i % 20, i % 997
  FROM generate_series(1, 20000) i;

-- the day attached later, with its own column order and rows
CREATE TABLE events_d5 (v int, sensor int NOT NULL, ts timestamptz NOT NULL, id bigint NOT NULL);
ALTER TABLE events_d5 REPLICA IDENTITY FULL;
INSERT INTO events_d5 (id, ts, sensor, v)
SELECT nextval('events_id'), '2026-01-05 00:00+00'::timestamptz + (i % 1440) * interval '1 minute', i % 20, i % 991
  FROM generate_series(1, 3000) i;
});
install_oracle($node, 'postgres');

$node->safe_psql('postgres', q{
SELECT flowstate.create_view('per_hour', $$
    SELECT sensor, flowstate.tumble(ts, '1 hour') AS hour,
           count(*) AS n, sum(v) AS total, min(v) AS lo, max(v) AS hi
      FROM events GROUP BY 1, 2 $$);
SELECT flowstate.create_view('per_sensor', $$
    SELECT sensor, count(*) AS n, sum(v) AS total, min(ts) AS first_ts, max(ts) AS last_ts
      FROM events GROUP BY sensor $$);
});
my @views = qw(per_hour per_sensor);

sub check_views
{
	my ($when) = @_;
	for my $view (@views)
	{
		is(differences($node, 'postgres', $view), '0', "$when: $view equals its batch query");
	}
}

check_views('after the backfill of every partition');

# single-statement transactions: inserts into days 3 and 4 (always
# attached), rows moved between days 3 and 4 (a delete from one partition,
# an insert into another), values changed and rows deleted in any day
my $script = $node->basedir . '/writes.sql';
append_to_file($script, q{
\set sensor random(0, 19)
\set minute random(0, 2879)
\set id random(1, 24000)
\set v random(0, 9999)
INSERT INTO events (ts, sensor, v)
  VALUES ('2026-01-03 00:00+00'::timestamptz + :minute * interval '1 minute', :sensor, :v);
UPDATE events SET ts = ts + interval '1 day', sensor = :sensor
 WHERE id = :id AND ts >= '2026-01-03 00:00+00' AND ts < '2026-01-04 00:00+00';
UPDATE events SET ts = ts - interval '1 day'
 WHERE id = :id + 1 AND ts >= '2026-01-04 00:00+00' AND ts < '2026-01-05 00:00+00';
UPDATE events SET v = v + 1 WHERE id = :id + 2;
DELETE FROM events WHERE id = (:id * 7) % 24000 + 1;
});

sub start_writers
{
	my ($seconds) = @_;
	my ($out, $err) = ('', '');
	return IPC::Run::start(
		[ 'pgbench', '-n', '-c', '3', '-j', '2', '-T', $seconds, '--max-tries', '50',
		  '-f', $script, '-h', $node->host, '-p', $node->port, 'postgres' ],
		'>', \$out, '2>', \$err);
}

sub rows_written
{
	return $node->safe_psql('postgres', q{SELECT last_value FROM events_id});
}

my $before = rows_written();
my $writers = start_writers(60);
ok(defined wait_until(30, sub { rows_written() > $before + 200 }), 'pgbench is writing');

# a new day holding rows joins, an old day leaves, while pgbench writes
$node->safe_psql('postgres', q{
ALTER TABLE events ATTACH PARTITION events_d5 FOR VALUES FROM ('2026-01-05 00:00+00') TO ('2026-01-06 00:00+00')});
$node->safe_psql('postgres', q{ALTER TABLE events DETACH PARTITION events_d1 CONCURRENTLY});
# rows of the detached day change outside the partitioned table
$node->safe_psql('postgres', q{UPDATE events_d1 SET v = v + 1000 WHERE sensor = 3});

# kill the decoder while it has applied changes it has not flushed yet
my $mid_flight = wait_until(30, sub {
	$node->safe_psql('postgres', q{
		SELECT applied_lsn > durable_lsn FROM flowstate.sources WHERE kind = 'logical decoding'}) eq 't';
});
ok(defined $mid_flight, 'the decoder has applied changes that are not durable yet');
my $pid = decoder_pid($node, 'postgres');
my $log_offset = -s $node->logfile;
kill 'KILL', $pid;
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
$writers->finish;    # the crash ended its sessions
ok(defined wait_until(30, sub {
	my $new = eval { decoder_pid($node, 'postgres') } // '';
	return $new ne '' && $new ne $pid;
}), 'the decoder is back after kill -9');

# pgbench again while the decoder catches up, and one more day attached
$node->safe_psql('postgres', q{
CREATE TABLE events_d6 (LIKE events);
ALTER TABLE events_d6 REPLICA IDENTITY FULL;
INSERT INTO events_d6 (id, ts, sensor, v)
SELECT nextval('events_id'), '2026-01-06 00:00+00'::timestamptz + i * interval '1 minute', i % 20, i
  FROM generate_series(1, 500) i;
});
$before = rows_written();
$writers = start_writers(4);
ok(defined wait_until(30, sub { rows_written() > $before + 100 }), 'pgbench writes after the crash');
$node->safe_psql('postgres', q{
ALTER TABLE events ATTACH PARTITION events_d6 FOR VALUES FROM ('2026-01-06 00:00+00') TO ('2026-01-07 00:00+00')});
$writers->finish;
is($writers->result(0), 0, 'pgbench ran without errors');

check_views('after ATTACH, DETACH CONCURRENTLY and kill -9 under pgbench');
is($node->safe_psql('postgres', q{SELECT count(*) FROM events WHERE tableoid = 'events_d1'::regclass}),
	'0', 'the detached day is no longer part of events');
is($node->safe_psql('postgres', q{
	SELECT sum(n) = (SELECT count(*) FROM events) FROM per_sensor}), 't',
	'the views count the rows of the attached days');

$node->stop;
done_testing();
