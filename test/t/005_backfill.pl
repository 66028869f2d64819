# A view created over a table that already holds 1,000,000 rows, while
# pgbench keeps inserting (and deleting) rows: the backfill reads the table
# under a snapshot handed over to the decoding at the slot's position, so
# the view equals its batch query, with no row missed or counted twice.
# Writers are not blocked meanwhile, and the backfill's progress shows in
# flowstate.views.
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

my $node = new_node('backfill', qq{
flowstate.flush_interval = 200ms
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION flowstate;
CREATE TABLE events (
    id    bigserial PRIMARY KEY,
    ts    timestamptz NOT NULL,
    k     int NOT NULL,
    v     float8,
    amount numeric);
ALTER TABLE events REPLICA IDENTITY FULL;
-- serves the recompute of a group whose minimum or maximum is deleted
CREATE INDEX ON events (k, ts);
INSERT INTO events (ts, k, v, amount)
SELECT '2026-01-01'::timestamptz + (i % 86400) * interval '1 second', i % 1000,
       (i % 9973) / 7.0, CASE WHEN i % 17 = 0 THEN NULL ELSE (i % 5000) / 100.0 END
  FROM generate_series(1, 1000000) i;
});
install_oracle($node, 'postgres');

my $script = $node->basedir . '/inserts.sql';
PostgreSQL::Test::Utils::append_to_file($script, q{
\set k random(0, 999)
\set second random(0, 86399)
\set id random(1, 1000000)
BEGIN;
INSERT INTO events (ts, k, v, amount)
  SELECT '2026-01-01'::timestamptz + (:second + g) * interval '1 second', (:k + g) % 1000,
         :second / 3.0, (:second % 777) / 10.0
    FROM generate_series(0, 9) g;
DELETE FROM events WHERE id = :id;
COMMIT;
});
my ($out, $err) = ('', '');
my $writers = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '3', '-j', '3', '-T', '600', '-f', $script,
	  '-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \$out, '2>', \$err);

sub rows_written
{
	return $node->safe_psql('postgres', 'SELECT max(id) FROM events');
}
my $before = rows_written();
ok(defined wait_until(30, sub { rows_written() > $before + 1000 }), 'pgbench is writing');

# created in the middle of the writes
$node->safe_psql('postgres', q{
SELECT flowstate.create_view('per_hour', $$
    SELECT k, date_bin('1 hour', ts, '2026-01-01') AS hour,
           count(*) AS n, sum(v) AS total, avg(v) AS mean, min(v) AS lo, max(v) AS hi,
           sum(amount) AS amount
      FROM events GROUP BY 1, 2 $$);
SELECT flowstate.create_view('per_key', $$
    SELECT k, count(*) AS n, count(amount) AS n_amount, sum(amount) AS amount,
           min(ts) AS first_ts, max(ts) AS last_ts, variance(v) AS var
      FROM events GROUP BY k $$);
});

# watch the backfill: its progress, and the writers' commits during it.
# Each look takes a snapshot, reads the views' status, then takes another
# snapshot.  A commit visible to the snapshot taken just before the last look
# that shows a view backfilling, and not to the one taken just after the
# first look that shows it, came while that view was backfilling: the status
# changes once, from backfilling to running.
my (%progress, %first, %last);
my $start_id = rows_written();
my $done = wait_until(300, sub {
	my ($before, $rows, $after) = split /\n/, $node->safe_psql('postgres', q{
		SELECT pg_current_snapshot();
		SELECT string_agg(view || ':' || status || ':' || coalesce(backfill_rows, -1)
		                  || ':' || coalesce(backfill_total, -1), ',' ORDER BY view::text)
		  FROM flowstate.views;
		SELECT pg_current_snapshot();});
	my $running = 1;
	for my $v (split /,/, $rows)
	{
		my ($view, $status, $done_rows, $total) = split /:/, $v;
		$progress{"$view $done_rows"} = $total
		  if $status eq 'backfilling' && $done_rows > 0 && $done_rows < $total;
		if ($status eq 'backfilling')
		{
			$first{$view} //= $after;
			$last{$view} = $before;
		}
		$running = 0 if $status ne 'running';
	}
	return $running;
});
ok(defined $done, 'both views finished their backfill');
note(sprintf('backfill took %.1f s; progress seen: %s', $done // -1,
	join(', ', sort keys %progress)));
ok(scalar(keys %progress) > 0, 'flowstate.views showed a backfill part-way through');
for my $view (qw(per_hour per_key))
{
	# the writers' transactions, by the xmin of the rows they inserted
	# (never deleted: the deletes hit the first 1,000,000 rows), as an xid8
	# of the cluster's first epoch
	my $commits = 0;
	$commits = $node->safe_psql('postgres', qq{
		SELECT count(DISTINCT xmin::text)
		  FROM events
		 WHERE id > $start_id
		   AND pg_visible_in_snapshot(xmin::text::xid8, '$last{$view}')
		   AND NOT pg_visible_in_snapshot(xmin::text::xid8, '$first{$view}')})
	  if defined $first{$view};
	note("$view: $commits writers' commits while it was backfilling");
	cmp_ok($commits, '>', 0, "the writers kept committing while $view was backfilling");
}

# more writes after the backfill, then stop the writers
$before = rows_written();
ok(defined wait_until(30, sub { rows_written() > $before + 1000 }), 'pgbench is still writing');
$writers->kill_kill;

for my $view (qw(per_hour per_key))
{
	is(differences($node, 'postgres', $view), '0', "$view equals its batch query");
}
my $rows = $node->safe_psql('postgres', 'SELECT sum(n) FROM per_key');
is($rows, $node->safe_psql('postgres', 'SELECT count(*) FROM events'),
	"per_key counts every one of the table's $rows rows");

$node->stop;
done_testing();
