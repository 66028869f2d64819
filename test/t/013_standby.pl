# On a streaming standby, continuous views read as their state tables'
# replay brings them; the functions that change views or wait for their
# workers say at once that they belong on the primary.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FlowstateNode;

my $primary = new_node('primary', 'flowstate.flush_interval = 100ms');
$primary->start;
$primary->safe_psql('postgres', q{
CREATE EXTENSION flowstate;
CREATE TABLE t (k int, v int);
ALTER TABLE t REPLICA IDENTITY FULL;
INSERT INTO t VALUES (1, 10), (2, 20);
SELECT flowstate.create_view('public.sums', 'SELECT k, sum(v) AS total FROM t GROUP BY k');
});

# until the primary's views are durable up to now
sub durable
{
	is($primary->safe_psql('postgres', 'SELECT flowstate.wait_for()'), 't', 'the view is up to date');
	ok(defined wait_until(20, sub {
		$primary->safe_psql('postgres', q{
			SELECT bool_and(durable_lsn >= pg_current_wal_lsn()) FROM flowstate.sources}) eq 't' }),
		'and durable');
}
durable();

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;

$primary->safe_psql('postgres', 'INSERT INTO t VALUES (1, 1), (3, 30)');
durable();
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', 'SELECT k, total FROM sums ORDER BY k'),
	"1|11\n2|20\n3|30", 'the standby reads the view as replayed');

for my $call (
	[ 'flowstate.create_view()', q{SELECT flowstate.create_view('public.counts', 'SELECT count(*) FROM t')} ],
	[ 'flowstate.drop_view()',   q{SELECT flowstate.drop_view('public.sums')} ],
	[ 'flowstate.wait_for()',    q{SELECT flowstate.wait_for(timeout => '20s')} ])
{
	my ($function, $sql) = @$call;
	my $start = time;
	my ($ret, $stdout, $stderr) = $standby->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	isnt($ret, 0, "$function fails on the standby");
	like($stderr, qr/ERROR:  25006: \Q$function\E cannot run on a standby/,
		"$function says why (25006)");
	like($stderr, qr/HINT:  Call \Q$function\E on the primary\./, "$function names the fix");
	cmp_ok(time - $start, '<', 10, "$function does not wait for its timeout");
}

$standby->stop;
$primary->stop;
done_testing();
