# Joins of a table to a dimension table, exact under churn of both: while
# pgbench changes orders (inserts, updates of the amount and of the
# customer, deletes) and customers (segments, regions, deactivations,
# deletes, re-inserts: a user catalog table takes no INSERT ... ON
# CONFLICT) in the same transactions, the decoding worker is
# killed with SIGKILL twice and the server stopped in immediate mode once.
# After every recovery, four views (an inner join, a LEFT JOIN with a
# condition in ON, a tumbling window over a join, a temporal join to the
# customers' history by the time of each order) equal their defining
# queries run as batch queries: each change of a customer re-aggregated
# the groups of its orders, before and after, and each version the
# decoder wrote to the history, those of the orders of its time.
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

my $node = new_node('table_joins', qq{
restart_after_crash = on
flowstate.flush_interval = 100ms
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION flowstate;
CREATE TABLE customers (id int PRIMARY KEY, segment text NOT NULL, region text, active boolean NOT NULL)
    WITH (user_catalog_table = true);
ALTER TABLE customers REPLICA IDENTITY FULL;
INSERT INTO customers SELECT i, 's' || (i % 5), 'r' || (i % 3), i % 7 > 0 FROM generate_series(1, 300) i;
SELECT flowstate.create_history('customer_history', 'customers', '{id}', tracked => '{segment,region}');
SELECT flowstate.wait_for();
ALTER TABLE customer_history SET (user_catalog_table = true);
ALTER TABLE customer_history REPLICA IDENTITY FULL;
-- at: when the order was placed (now, or a day far ahead for some)
CREATE TABLE orders (id serial PRIMARY KEY, cid int, amount int NOT NULL, ts timestamptz NOT NULL,
                     at timestamptz NOT NULL DEFAULT clock_timestamp());
ALTER TABLE orders REPLICA IDENTITY FULL;
CREATE INDEX ON orders (cid);
INSERT INTO orders (cid, amount, ts)
SELECT 1 + i % 320, i % 1000, '2026-01-01'::timestamptz + i * interval '1 second' FROM generate_series(1, 4000) i;
UPDATE orders SET at = '2200-01-01' WHERE id % 10 = 0;
});
install_oracle($node, 'postgres');
my %views = (
	j_segment => q{
		SELECT c.segment, count(*) AS n, sum(o.amount) AS total, max(o.amount) AS top
		  FROM orders o JOIN customers c ON c.id = o.cid GROUP BY c.segment},
	j_region => q{
		SELECT c.region, count(*) AS n, min(o.amount) AS low, count(c.id) AS matched
		  FROM orders o LEFT JOIN customers c ON c.id = o.cid AND c.active GROUP BY c.region},
	j_minute => q{
		SELECT c.segment, flowstate.tumble(o.ts, '1 minute') AS minute, count(*) AS n, sum(o.amount) AS total
		  FROM orders o JOIN customers c ON o.cid = c.id WHERE o.amount > 10 GROUP BY 1, 2},
	j_history => q{
		SELECT h.region, h.segment, count(*) AS n, sum(o.amount) AS total, max(o.amount) AS top
		  FROM orders o JOIN customer_history h
		    ON h.id = o.cid AND h.valid_from <= o.at AND o.at < h.valid_to GROUP BY 1, 2},
);
for my $v (sort keys %views)
{
	$node->safe_psql('postgres', "SELECT flowstate.create_view('$v', \$q\$ $views{$v} \$q\$)");
}

sub check_views
{
	my ($when) = @_;
	for my $v (sort keys %views)
	{
		is(differences($node, 'postgres', $v), 0, "$when: $v equals its batch query");
	}
}
check_views('after the backfill');

my $script = $node->basedir . '/churn.sql';
open my $fh, '>', $script or die;
print $fh q{
\set c random(1, 320)
\set d random(1, 320)
\set o random(1, 6000)
\set v random(1, 1000)
BEGIN;
INSERT INTO orders (cid, amount, ts) VALUES (:c, :v, '2026-01-01'::timestamptz + :o * interval '1 second');
UPDATE orders SET amount = amount + 1, at = CASE WHEN :v % 9 = 0 THEN '2200-01-01' ELSE at END WHERE id = :o;
UPDATE orders SET cid = :d WHERE id = :o + 1 AND :v % 3 = 0;
DELETE FROM orders WHERE id = :o + 2 AND :v % 4 = 0;
UPDATE customers SET segment = 's' || (:v % 6) WHERE id = :c AND :v % 2 = 0;
UPDATE customers SET active = NOT active, region = CASE WHEN :v % 7 = 0 THEN NULL ELSE 'r' || (:v % 4) END
 WHERE id = :d AND :v % 5 = 0;
DELETE FROM customers WHERE id = :d AND :v % 11 = 0;
SELECT pg_advisory_xact_lock(:c);
INSERT INTO customers SELECT :c, 's' || (:v % 6), 'r1', true WHERE NOT EXISTS (SELECT 1 FROM customers WHERE id = :c);
COMMIT;
};
close $fh;

sub start_writers
{
	my ($seconds) = @_;
	my ($out, $err) = ('', '');
	return IPC::Run::start(
		[ 'pgbench', '-n', '-c', '3', '-j', '2', '-T', $seconds, '-R', '200', '--max-tries', '100',
		  '-f', $script, '-h', $node->host, '-p', $node->port, 'postgres' ],
		'>', \$out, '2>', \$err);
}

sub orders_count
{
	return $node->safe_psql('postgres', 'SELECT count(*) FROM orders');
}

install_decoder_unflushed($node, 'postgres');
my $recomputed_before = $node->safe_psql('postgres', 'SELECT sum(recomputed_groups) FROM flowstate.views');

for my $round (1 .. 2)
{
	my $before = orders_count();
	my $writers = start_writers(60);
	ok(defined wait_until(30, sub { orders_count() > $before + 300 }), "round $round: pgbench is writing");
	usleep(41_000 * $round);
	my $pid = decoder_pid($node, 'postgres');
	my $log_offset = -s $node->logfile;
	unflushed_at_crash("round $round", kill9_sampled($node, 'postgres', qq{
		SELECT $pid, public.decoder_unflushed()}));
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
	$writers->finish;
	ok(defined decoder_back($node, 'postgres', $pid), "round $round: the decoder is back after kill -9");
	start_writers(3)->finish;
	check_views("after kill -9 of the decoder, round $round");
}

{
	my $before = orders_count();
	my $writers = start_writers(60);
	ok(defined wait_until(30, sub { orders_count() > $before + 300 }), 'immediate stop: pgbench is writing');
	set_flush_interval($node, '10s');
	usleep(150_000);
	my ($postmaster) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
	unflushed_at_crash('immediate stop', kill9_sampled($node, 'postgres', qq{
		SELECT $postmaster, public.decoder_unflushed()}, 'QUIT'));
	$node->stop('immediate', fail_ok => 1);
	$writers->finish;
	$node->start;
	set_flush_interval($node, undef);
	start_writers(3)->finish;
	check_views('after an immediate stop');
}

# the workload did what it is meant to: customers changed under their
# orders, and their groups were recomputed
my ($segments, $missing) = split /\|/, $node->safe_psql('postgres', q{
	SELECT (SELECT count(DISTINCT segment) FROM customers),
	       (SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = o.cid))});
ok($segments == 6, "customers moved to a segment none had at first ($segments segments)");
ok($missing > 0, "orders whose customer is gone ($missing)");
ok($node->safe_psql('postgres', 'SELECT sum(recomputed_groups) FROM flowstate.views') > $recomputed_before,
	'the changes of customers recomputed groups');
my ($versions, $past) = split /\|/, $node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM customer_history WHERE NOT is_current),
	       (SELECT count(*) FROM orders o JOIN customer_history h
	            ON h.id = o.cid AND h.valid_from <= o.at AND o.at < h.valid_to WHERE NOT h.is_current)});
ok($versions > 100, "the history closed versions ($versions)");
ok($past > 0, "orders joined a version that is no longer current ($past)");
is($node->safe_psql('postgres', q{SELECT count(*) FROM flowstate.histories WHERE status <> 'running'}), 0,
	'the history runs');
is($node->safe_psql('postgres', 'SELECT count(*) FROM flowstate.dead_letters'), 0, 'no dead letters');
is($node->safe_psql('postgres', q{SELECT count(*) FROM flowstate.views WHERE status <> 'running'}), 0,
	'every view runs');

$node->stop;
done_testing();
