# Launcher and managers follow CREATE/DROP EXTENSION and database DDL
# without a server restart, and come back after one.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FlowstateNode;
use Time::HiRes ();

my $node = new_node('lifecycle');
$node->start;

ok(defined wait_until(10, sub { launcher_pid($node) ne '' }),
	'the launcher runs after server start');
is(managers($node, 'postgres'), '0', 'no manager where the extension is not installed');

$node->safe_psql('postgres', 'CREATE EXTENSION flowstate');
ok(defined wait_until(10, sub { managers($node, 'postgres') eq '1' }),
	'a manager starts after CREATE EXTENSION');

# a second database, no restart: the commit wakes the launcher at once
$node->safe_psql('postgres', 'CREATE DATABASE db2');
$node->safe_psql('db2', 'CREATE EXTENSION flowstate');
my $took = wait_until(10, sub { managers($node, 'db2') eq '1' });
ok(defined $took, 'a manager starts in a second database without a restart');
cmp_ok($took // 99, '<', 2, 'and within two seconds');
note(sprintf('manager in db2 running %.2f s after CREATE EXTENSION', $took // -1));

# exactly one manager per database, however long we look
my $launcher = launcher_pid($node);
my $pid2 = manager_pid($node, 'db2');
for my $i (1 .. 10)
{
	usleep_ms(100);
	is($node->safe_psql('postgres', q{
		SELECT count(*) FROM pg_stat_activity
		 WHERE backend_type = 'flowstate manager' AND datname = 'db2'}),
		'1', "one manager in db2 (look $i)");
}
is(manager_pid($node, 'db2'), $pid2, 'the manager is stable');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM flowstate.workers WHERE kind = 'manager' AND datname = 'db2'}),
	'1', 'flowstate.workers shows one manager for db2');

# DROP EXTENSION stops the manager, and nothing starts one again
$node->safe_psql('db2', 'DROP EXTENSION flowstate');
ok(defined wait_until(10, sub { managers($node, 'db2') eq '0' }),
	'DROP EXTENSION stops the manager');
usleep_ms(1000);
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_stat_activity
	 WHERE backend_type = 'flowstate manager' AND datname = 'db2'}),
	'0', 'no manager comes back after DROP EXTENSION');

# DDL that needs a database free of connections is not blocked by its manager
$node->safe_psql('postgres', 'CREATE DATABASE tmpl');
$node->safe_psql('tmpl', 'CREATE EXTENSION flowstate');
ok(defined wait_until(10, sub { managers($node, 'tmpl') eq '1' }), 'manager in tmpl');

$node->safe_psql('postgres', 'CREATE DATABASE copy TEMPLATE tmpl');
ok(defined wait_until(10, sub { managers($node, 'copy') eq '1' }),
	'a database copied from a template with the extension gets a manager');
ok(defined wait_until(10, sub { managers($node, 'tmpl') eq '1' }),
	'the template keeps its manager');

$node->safe_psql('postgres', 'ALTER DATABASE copy RENAME TO copy2');
ok(defined wait_until(10, sub { managers($node, 'copy2') eq '1' }),
	'a renamed database keeps its manager');

$node->safe_psql('postgres', 'DROP DATABASE copy2');
ok(defined wait_until(10, sub {
	$node->safe_psql('postgres', q{
		SELECT count(*) FROM flowstate.workers
		 WHERE kind = 'manager' AND (datname = 'copy2' OR datname IS NULL)}) eq '0' }),
	'DROP DATABASE succeeds and leaves no manager behind');

# a database that stops accepting connections loses its manager for good,
# and gets it back when it accepts them again
$node->safe_psql('postgres', 'ALTER DATABASE tmpl ALLOW_CONNECTIONS false');
ok(defined wait_until(10, sub {
	$node->safe_psql('postgres', q{
		SELECT count(*) FROM flowstate.workers WHERE datname = 'tmpl'}) eq '0' }),
	'no manager, and no slot, in a database that refuses connections');
usleep_ms(1000);
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM flowstate.workers WHERE datname = 'tmpl'}),
	'0', 'and none is started again');
$node->safe_psql('postgres', 'ALTER DATABASE tmpl ALLOW_CONNECTIONS true');
ok(defined wait_until(10, sub { managers($node, 'tmpl') eq '1' }),
	'the manager is back once the database accepts connections');
is($node->safe_psql('postgres', q{
	SELECT failures FROM flowstate.workers WHERE datname = 'tmpl'}),
	'0', 'without any failure on the way');

# many databases at once: every one is probed, only those with the
# extension keep a manager, and no start fails for lack of worker processes
$node->safe_psql('postgres', "CREATE DATABASE many$_") for 1 .. 12;
$node->safe_psql("many$_", 'CREATE EXTENSION flowstate') for 1 .. 3;
# room for the launchers, five managers and a few starting workers, not for
# a probe of all 16 databases at once
$node->append_conf('postgresql.conf', 'max_worker_processes = 12');
my $log_offset = -s $node->logfile;
$node->restart;
ok(defined wait_until(20, sub {
	$node->safe_psql('postgres', q{
		SELECT count(*) FILTER (WHERE datname LIKE 'many%' AND state = 'running') = 3
		   AND count(*) FILTER (WHERE state <> 'running') = 0
		  FROM flowstate.workers}) eq 't' }),
	'after a restart with 13 more databases, exactly the 3 with the extension have managers');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM flowstate.workers WHERE datname LIKE 'many%' AND failures > 0}),
	'0', 'and none of them counts a failure');
unlike(slurp_file($node->logfile, $log_offset), qr/could not start \d+ workers/,
	'no lasting shortage of background worker slots is reported');
$node->safe_psql('postgres', "DROP DATABASE many$_") for 1 .. 12;

# continuous views survive pg_dump and restore
$node->safe_psql('tmpl', q{
	CREATE TABLE orders (ts timestamptz, amount numeric);
	ALTER TABLE orders REPLICA IDENTITY FULL;
	INSERT INTO orders VALUES ('2026-01-01', 10), ('2026-01-01', 5);
	SELECT flowstate.create_view('revenue', 'SELECT count(*) AS n, sum(amount) AS total FROM orders');
	SELECT flowstate.wait_for();});
my $dump = $node->basedir . '/tmpl.dump';
$node->command_ok(
	[ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('tmpl') ],
	'pg_dump of a database with the extension');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(
	[ 'pg_restore', '-d', $node->connstr('restored'), $dump ],
	'pg_restore into a new database');
is($node->safe_psql('restored',
	'SELECT view::text, source::text FROM flowstate.view'),
	'revenue|orders', 'pg_restore brings back the user declarations');
ok(defined wait_until(10, sub { managers($node, 'restored') eq '1' }),
	'the restored database gets a manager');
$node->safe_psql('restored', q{INSERT INTO orders VALUES ('2026-01-02', 1)});
is($node->safe_psql('restored', 'SELECT flowstate.wait_for(); SELECT n, total FROM revenue'),
	"t\n3|16", 'the restored continuous view follows its table');

# a server restart brings the launcher and the managers back
$node->restart;
ok(defined wait_until(10, sub {
	launcher_pid($node) ne ''
	  && managers($node, 'postgres') eq '1'
	  && managers($node, 'tmpl') eq '1'
	  && managers($node, 'restored') eq '1' }),
	'after a restart the launcher and every manager are back');
is(managers($node, 'db2'), '0', 'and none where the extension was dropped');

$node->stop;
done_testing();

sub usleep_ms { Time::HiRes::usleep($_[0] * 1000) }
