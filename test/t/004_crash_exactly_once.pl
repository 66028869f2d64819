# Exactly-once across crashes: while pgbench keeps writing (inserts, updates
# that move rows between groups and windows, deletes), the decoding worker is
# killed with SIGKILL, and separately the server is stopped in immediate
# mode, several times each.  After every recovery the views (native
# aggregates; DISTINCT and percentiles over tumbling and hopping windows;
# aggregates kept through their support functions) equal their defining
# queries run as batch queries: nothing lost, nothing counted twice.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);
use FlowstateNode;

my $node = new_node('exactly_once', qq{
restart_after_crash = on
flowstate.flush_interval = 100ms
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION flowstate;
CREATE TABLE readings (
    id     bigserial PRIMARY KEY,
    sensor int NOT NULL,
    ts     timestamptz NOT NULL,
    value  numeric,
    temp   float8,
    label  text,
    ok     boolean);
ALTER TABLE readings REPLICA IDENTITY FULL;
INSERT INTO readings (sensor, ts, value, temp, label, ok)
SELECT i % 40, '2026-01-01'::timestamptz + (i % 7200) * interval '1 second',
       CASE WHEN i % 11 = 0 THEN NULL ELSE (i % 997) / 10.0 END,
       (i % 113) * 0.25, 'l' || (i % 53), i % 5 <> 0
  FROM generate_series(1, 20000) i;
});
install_oracle($node, 'postgres');

install_decoder_unflushed($node, 'postgres');

# created over rows that are already there: they are backfilled
$node->safe_psql('postgres', q{
SELECT flowstate.create_view('per_minute', $$
    SELECT sensor, date_bin('1 minute', ts, '2026-01-01') AS minute,
           count(*) AS n, count(value) AS n_value, sum(value) AS total,
           avg(value) AS mean, min(value) AS lo, max(value) AS hi,
           sum(temp) AS temp_sum, max(temp) AS temp_max
      FROM readings GROUP BY 1, 2 $$);
SELECT flowstate.create_view('per_sensor', $$
    SELECT sensor, count(*) AS n, sum(value) AS total, min(label) AS first_label,
           max(label) AS last_label, bool_and(ok) AS all_ok, bool_or(ok) AS any_ok,
           stddev_samp(value) AS sd, var_pop(value) AS var
      FROM readings WHERE sensor % 3 <> 0 GROUP BY sensor $$);
SELECT flowstate.create_view('totals', $$
    SELECT count(*) AS n, sum(value) AS total, min(ts) AS first_ts, max(ts) AS last_ts
      FROM readings $$);
-- aggregates over the multiset of the labels
SELECT flowstate.create_view('labels', $$
    SELECT sensor % 10 AS s10, count(*) AS n, count(DISTINCT label) AS labels,
           string_agg(DISTINCT label, ',') AS all_labels,
           percentile_disc(0.9) WITHIN GROUP (ORDER BY label) AS p90,
           mode() WITHIN GROUP (ORDER BY label) AS common
      FROM readings GROUP BY 1 $$);
CREATE VIEW labels_batch AS
    SELECT sensor % 10 AS s10, count(*) AS n, count(DISTINCT label) AS labels,
           string_agg(DISTINCT label, ',') AS all_labels,
           percentile_disc(0.9) WITHIN GROUP (ORDER BY label) AS p90,
           mode() WITHIN GROUP (ORDER BY label) AS common
      FROM readings GROUP BY 1;
-- the same over hopping windows (the labels kept per pane)
SELECT flowstate.create_view('labels_hop', $$
    SELECT w.window_start, sensor % 5 AS s5, count(*) AS n, count(DISTINCT label) AS labels,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY label) AS median,
           array_agg(label ORDER BY label) AS every_label
      FROM readings, LATERAL flowstate.hop(readings.ts, '30 minutes', '10 minutes') w
     GROUP BY w.window_start, sensor % 5 $$);
CREATE VIEW labels_hop_batch AS
    SELECT w.window_start, sensor % 5 AS s5, count(*) AS n, count(DISTINCT label) AS labels,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY label) AS median,
           array_agg(label ORDER BY label) AS every_label
      FROM readings, LATERAL flowstate.hop(readings.ts, '30 minutes', '10 minutes') w
     GROUP BY w.window_start, sensor % 5;
-- aggregates kept through their support functions: a row that leaves a
-- group recomputes it from the table, a row lost or counted twice shows
SELECT flowstate.create_view('generic', $$
    SELECT sensor, bit_xor(id) AS x, sum(make_interval(secs => temp::float8)) AS secs,
           regr_count(value::float8, temp::float8) AS pairs
      FROM readings GROUP BY 1 $$);
CREATE VIEW generic_batch AS
    SELECT sensor, bit_xor(id) AS x, sum(make_interval(secs => temp::float8)) AS secs,
           regr_count(value::float8, temp::float8) AS pairs
      FROM readings GROUP BY 1;
});
my @views = qw(per_minute per_sensor totals);

# each pgbench transaction inserts, moves a row to another sensor and minute,
# changes a value, and deletes a row: the minimum and maximum of a group are
# deleted often
my $script = $node->basedir . '/writes.sql';
PostgreSQL::Test::Utils::append_to_file($script, q{
\set sensor random(0, 39)
\set other random(0, 39)
\set id random(1, 20000)
\set second random(0, 7199)
\set value random(0, 99999)
BEGIN;
INSERT INTO readings (sensor, ts, value, temp, label, ok)
  VALUES (:sensor, '2026-01-01'::timestamptz + :second * interval '1 second',
          nullif(:value % 13, 0) * :value / 100.0, :value * 0.125, 'l' || (:value % 61), :value % 7 <> 0);
UPDATE readings SET sensor = :other, ts = ts + interval '90 seconds' WHERE id = :id;
UPDATE readings SET value = value + 1, label = label || 'x' WHERE id = :id + 1;
DELETE FROM readings WHERE id = (:id * 7) % 20000 + 1;
COMMIT;
});

# pgbench in the background; it stops on its own when the server goes away
sub start_writers
{
	my ($seconds) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', $seconds, '--max-tries', '50',
		  '-f', $script, '-h', $node->host, '-p', $node->port, 'postgres' ],
		'>', \$out, '2>', \$err);
	return $h;
}

sub rows_written
{
	return $node->safe_psql('postgres', 'SELECT max(id) FROM readings');
}

# flushes of all views since the decoder started
sub flushes
{
	return $node->safe_psql('postgres', 'SELECT sum(flushes) FROM flowstate.views');
}

sub check_views
{
	my ($when) = @_;
	for my $view (@views)
	{
		is(differences($node, 'postgres', $view), '0', "$when: $view equals its batch query");
	}
	for my $view (qw(labels labels_hop generic))
	{
		is($node->safe_psql('postgres', qq{
			SELECT count(*) FROM ((TABLE $view EXCEPT ALL TABLE ${view}_batch)
			                UNION ALL (TABLE ${view}_batch EXCEPT ALL TABLE $view)) d}),
			'0', "$when: $view equals its batch query");
	}
}

check_views('after the backfill');

for my $round (1 .. 3)
{
	my $before = rows_written();
	my $writers = start_writers(60);
	# let the writers and several flushes run, then kill the decoder
	ok(defined wait_until(30, sub { rows_written() > $before + 300 }),
		"round $round: pgbench is writing");
	# between flushes, at a different point each round
	my $flushes = flushes();
	ok(defined wait_until(30, sub { flushes() > $flushes + 2 }), "round $round: the decoder flushes");
	usleep(37_000 * $round);
	my $pid = decoder_pid($node, 'postgres');
	my $log_offset = -s $node->logfile;
	unflushed_at_crash("round $round", kill9_sampled($node, 'postgres', qq{
		SELECT $pid, public.decoder_unflushed()}));
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
	$writers->finish;    # the crash ended its sessions
	ok(defined decoder_back($node, 'postgres', $pid), "round $round: the decoder is back after kill -9");
	unlike(slurp_file($node->logfile, $log_offset), qr/backfilling/,
		"round $round: the views resume from their state tables, not from a new backfill");

	# writers again while the decoder catches up with what it had not flushed
	$before = rows_written();
	$writers = start_writers(2);
	$writers->finish;
	cmp_ok(rows_written(), '>', $before, "round $round: writes after the crash");
	check_views("after kill -9 of the decoder, round $round");
}

for my $round (1 .. 3)
{
	my $before = rows_written();
	my $writers = start_writers(60);
	ok(defined wait_until(30, sub { rows_written() > $before + 300 }),
		"immediate stop $round: pgbench is writing");
	usleep(150_000 * $round);
	my $log_offset = -s $node->logfile;
	my ($postmaster) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
	unflushed_at_crash("immediate stop $round", kill9_sampled($node, 'postgres', qq{
		SELECT $postmaster, public.decoder_unflushed()}, 'QUIT'));
	$node->stop('immediate', fail_ok => 1);
	$writers->finish;
	$node->start;
	check_views("after immediate stop $round");
	unlike(slurp_file($node->logfile, $log_offset), qr/backfilling/,
		"immediate stop $round: the views resume from their state tables");
}

# steady updates do not bloat a state table: per_sensor's few groups are
# rewritten by every flush, as HOT updates whose dead versions the writer's
# page pruning reclaims
my $pages_sql = q{
	SELECT pg_relation_size(state_table) / current_setting('block_size')::int
	  FROM flowstate.view WHERE view = 'per_sensor'::regclass};
my $pages_before = $node->safe_psql('postgres', $pages_sql);
my $flushes_before = flushes();
my $rewritten = 0;
# (writers for 4 s at a time until every view flushed ten times more)
for (my $i = 0; $i < 8 && $rewritten < 10; $i++)
{
	start_writers(4)->finish;
	$rewritten = (flushes() - $flushes_before) / scalar(@views);
}
my $pages_after = $node->safe_psql('postgres', $pages_sql);
note("per_sensor: $pages_before pages, then $pages_after after $rewritten more flushes");
cmp_ok($rewritten, '>=', 10, 'the views were flushed again and again');
cmp_ok($pages_after, '<=', $pages_before + 2, "per_sensor's state table did not grow with them");

$node->stop;
done_testing();
