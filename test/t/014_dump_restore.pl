# pg_dump of a database with continuous views is silent, and its restore
# rebuilds views that equal their batch queries.  The policy that serves a
# view's state only while its owner may read the source names the view:
# restored, it checks the restored view, and a view owned by a role that
# is not a superuser serves its owner and its readers as before.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FlowstateNode;

my $node = new_node('dump_restore', "timezone = 'UTC'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
	CREATE EXTENSION flowstate;
	CREATE TABLE orders (id int PRIMARY KEY, ts timestamptz, region text, amount numeric, ms float8);
	ALTER TABLE orders REPLICA IDENTITY FULL;
	INSERT INTO orders
	SELECT i, '2026-01-01'::timestamptz + i * interval '7 seconds',
	       'r' || (i % 5), i % 13, i / 3.0
	  FROM generate_series(1, 500) i;
	SELECT flowstate.create_view('per_region',
	    'SELECT region, count(*) AS n, sum(amount) AS total, max(ms) AS top FROM orders GROUP BY region');
	SELECT flowstate.create_view('per_minute',
	    $$SELECT date_bin('1 minute', ts, '2026-01-01') AS minute, count(*) AS n, avg(ms) AS mean
	        FROM orders GROUP BY 1$$);
	SELECT flowstate.create_view('everything', 'SELECT count(*) AS n, sum(amount) AS total FROM orders');
	CREATE ROLE alice;
	CREATE ROLE bob;
	GRANT CREATE ON SCHEMA public TO alice;
	GRANT SELECT ON orders TO alice;
	SET ROLE alice;
	SELECT flowstate.create_view('alice_per_region',
	    'SELECT region, count(*) AS n, sum(amount) AS total FROM orders GROUP BY region');
	GRANT SELECT ON alice_per_region TO bob;
	RESET ROLE;
	SELECT flowstate.wait_for();
	UPDATE orders SET amount = amount + 1 WHERE id % 7 = 0;
	DELETE FROM orders WHERE id % 11 = 0;
	SELECT flowstate.wait_for();});

# the dump: no warning, in particular no dependency loop
my $dump = $node->basedir . '/src.dump';
my ($stdout, $stderr) = run_command(
	[ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ]);
unlike($stderr, qr/dependency loop/, 'pg_dump finds no dependency loop');
is($stderr, '', 'pg_dump writes nothing on stderr');

# a plain-text dump, restored with psql, says the same
($stdout, $stderr) = run_command(
	[ 'pg_dump', '-f', $node->basedir . '/src.sql', '-d', $node->connstr('src') ]);
is($stderr, '', 'a plain-text pg_dump writes nothing on stderr either');

# the restore rebuilds the views from their tables
$node->safe_psql('postgres', 'CREATE DATABASE restored');
($stdout, $stderr) = run_command(
	[ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ]);
is($stderr, '', 'pg_restore succeeds without a message');
install_oracle($node, 'restored');
for my $view (qw(per_region per_minute everything alice_per_region))
{
	is(differences($node, 'restored', $view), '0',
		"restored view $view equals its batch query");
}
my $expected = $node->safe_psql('restored', q{
	SELECT string_agg(region || '=' || n, ' ' ORDER BY region) FROM per_region});
for my $role (qw(alice bob))
{
	is($node->safe_psql('restored', qq{
		SET ROLE $role;
		SELECT string_agg(region || '=' || n, ' ' ORDER BY region) FROM alice_per_region}),
		$expected, "restored, the view of a role that is not a superuser serves $role");
}
$node->safe_psql('restored', 'REVOKE SELECT ON orders FROM alice');
my ($ret, $out, $err) = $node->psql('restored', q{
	SET ROLE bob; SELECT count(*) FROM alice_per_region});
like($err, qr/permission denied for continuous view/,
	'once its owner may not read the table, the restored view serves nobody');
like($node->safe_psql('restored', q{
	SELECT pg_get_expr(p.polqual, p.polrelid) FROM pg_policy p
	  JOIN flowstate.view v ON v.state_table = p.polrelid
	 WHERE v.view = 'alice_per_region'::regclass}),
	qr/'alice_per_region'::regclass/, 'its state table\'s policy names the view, not its number');

# and keeps following its table
$node->safe_psql('restored', q{
	INSERT INTO orders VALUES (1001, '2026-01-01 00:03:00', 'r9', 5, 2.5);
	DELETE FROM orders WHERE id % 10 = 0;});
for my $view (qw(per_region per_minute everything))
{
	is(differences($node, 'restored', $view), '0',
		"restored view $view follows its table");
}
is($node->safe_psql('restored', q{SELECT n FROM per_region WHERE region = 'r9'}), '1',
	'a new group appears in a restored view');

# the restored objects hold together as the originals do: dropping the
# view drops its definition and state table
$node->safe_psql('restored', q{SELECT flowstate.drop_view('everything')});
is($node->safe_psql('restored', q{
	SELECT count(*) FROM flowstate.view WHERE view::text = 'everything'}), '0',
	'a restored view can be dropped');

$node->stop;
done_testing();
