# DROP EXTENSION flowstate CASCADE while the sources are being written: the
# workers notice the extension is gone and leave without an error.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FlowstateNode;
use IPC::Run;
use Time::HiRes ();

my $node = new_node('drop_extension');
$node->start;

$node->safe_psql('postgres', q{
	CREATE TABLE events (ts timestamptz, g int, x float8);
	ALTER TABLE events REPLICA IDENTITY FULL;});
my $script = $node->basedir . '/insert.sql';
PostgreSQL::Test::Utils::append_to_file($script,
	"INSERT INTO events VALUES (clock_timestamp(), random() * 10, random());\n");

my $log_offset = -s $node->logfile;
for my $round (1 .. 4)
{
	# views with a window write their watermark to flowstate.view at each flush
	$node->safe_psql('postgres', q{
		CREATE EXTENSION flowstate;
		SELECT flowstate.create_view('per_minute',
		    $$SELECT date_bin('1 minute', ts, '2026-01-01') AS minute, g, count(*) AS n, sum(x) AS s
		        FROM events GROUP BY 1, 2$$);
		SELECT flowstate.create_view('per_second',
		    $$SELECT date_bin('1 second', ts, '2026-01-01') AS second, count(*) AS n
		        FROM events GROUP BY 1$$);
		SELECT flowstate.wait_for();});

	my ($out, $err) = ('', '');
	my $writers = IPC::Run::start(
		[ 'pgbench', '-n', '-c', '2', '-T', '3', '-f', $script,
		  '-h', $node->host, '-p', $node->port, 'postgres' ],
		'>', \$out, '2>', \$err);
	Time::HiRes::usleep(1_500_000);
	$node->safe_psql('postgres', 'DROP EXTENSION flowstate CASCADE');
	ok($writers->finish, "round $round: the writers ran throughout") or diag($err);

	ok(defined wait_until(10, sub { decoder_pid($node, 'postgres') eq '' }),
		"round $round: the decoder leaves after DROP EXTENSION");
	is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'flowstate%'}),
		'0', "round $round: and drops its slot");
}

my $log = slurp_file($node->logfile, $log_offset);
my @errors = grep { /ERROR:/ } split /\n/, $log;
is(join("\n", @errors), '', 'no worker logged an error');
my @failed = grep { /background worker "flowstate [a-z]+" \(PID \d+\) exited with exit code 1/ }
  split /\n/, $log;
is(join("\n", @failed), '', 'no flowstate worker exited with a failure');

$node->stop;
done_testing();
