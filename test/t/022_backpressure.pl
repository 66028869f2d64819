# One memory policy for every source.  Two streams (one worker, and two
# workers sharing the partitions) and a table feed three views in a server
# whose flowstate.memory_limit holds a small part of their groups, while a
# snapshot older than every flush keeps flushed groups from leaving: each
# source worker stops reading and says so ('paused for memory' in
# flowstate.sources and flowstate.views), the groups of all views stay near
# the server-wide bound, no worker fails, and once the snapshot ends every
# view equals its batch query, each message and row counted once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use FlowstateNode;

my $limit = 4 * 1024 * 1024;
my $kafka = kafka_start();
is(kafka_command($kafka, 'topic one 2'), 'ok', 'a topic of 2 partitions for one worker');
is(kafka_command($kafka, 'topic two 2'), 'ok', 'a topic of 2 partitions for two workers');

my $node = new_node('backpressure', qq{
flowstate.flush_interval = 200ms
flowstate.memory_limit = 4MB
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION flowstate');
install_oracle($node, 'postgres');
$node->safe_psql('postgres', qq{
CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers '$kafka->{bootstrap}');
CREATE FOREIGN TABLE s_one (k int NOT NULL, v int NOT NULL)
    SERVER kafka OPTIONS (topic 'one', format 'json');
CREATE FOREIGN TABLE s_two (k int NOT NULL, v int NOT NULL)
    SERVER kafka OPTIONS (topic 'two', format 'json', workers '2');
CREATE TABLE batch_one (k int NOT NULL, v int NOT NULL);
CREATE TABLE batch_two (k int NOT NULL, v int NOT NULL);
CREATE TABLE events (id int PRIMARY KEY, k int NOT NULL, v int NOT NULL);
ALTER TABLE events REPLICA IDENTITY FULL;
SELECT flowstate.create_view('per_one', 'SELECT k, count(*) AS n, sum(v) AS total FROM s_one GROUP BY k');
SELECT flowstate.create_view('per_two', 'SELECT k, count(*) AS n, sum(v) AS total FROM s_two GROUP BY k');
SELECT flowstate.create_view('per_event', 'SELECT k, count(*) AS n, sum(v) AS total FROM events GROUP BY k');
CREATE PROCEDURE fill(batches int, size int) LANGUAGE plpgsql AS \$\$
BEGIN
    FOR i IN 0 .. batches - 1 LOOP
        INSERT INTO events SELECT g, g, g % 7 FROM generate_series(i * size + 1, (i + 1) * size) g;
        COMMIT;
    END LOOP;
END \$\$;
});
ok(defined wait_until(30, sub {
	$node->safe_psql('postgres', q{
		SELECT count(*) FROM flowstate.sources WHERE state = 'running'}) eq '4' }),
	'a decoder and three Kafka workers run');

# a snapshot older than every flush: no flushed group may leave
my ($in, $out) = ('', '');
my $holder = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $node->connstr('postgres') ], '<', \$in, '>', \$out);
$in .= "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 'holding', count(*) FROM events;\n";
$holder->pump until $out =~ /holding/;

# 100,000 messages per stream and 100,000 rows, each of a group of its own:
# far more groups than 4 MB hold
my $dir = $node->basedir . '/messages';
mkdir $dir or die;
for my $topic ('one', 'two')
{
	open my $json, '>', "$dir/$topic.json" or die;
	open my $csv, '>', "$dir/$topic.csv" or die;
	for my $i (1 .. 100_000)
	{
		my ($k, $v) = ($i, $i % 11);
		print $json qq({"k":$k,"v":$v}\n);
		print $csv "$k,$v\n";
	}
	close $json;
	close $csv;
	is(kafka_command($kafka, "produce $topic $dir/$topic.json"), 'produced 100000',
		"messages of topic $topic produced");
	$node->safe_psql('postgres', "COPY batch_$topic FROM '$dir/$topic.csv' (FORMAT csv)");
}
$node->safe_psql('postgres', 'CALL fill(50, 2000)');

# every source worker holds back, and says so; the views' memory stays
# near the server-wide bound meanwhile
my $peak = 0;
my $all_paused = wait_until(90, sub {
	my $bytes = $node->safe_psql('postgres', q{SELECT coalesce(sum(memory_bytes), 0) FROM flowstate.views});
	$peak = $bytes if $bytes > $peak;
	$node->safe_psql('postgres', q{
		SELECT count(*) FILTER (WHERE state = 'paused for memory' AND last_error LIKE '% paused: %')
		  FROM flowstate.sources}) eq '4' });
ok(defined $all_paused, 'every source worker pauses for memory and says so in flowstate.sources')
  or diag($node->safe_psql('postgres', q{
	SELECT string_agg(source || ': ' || state || ' ' || coalesce(last_error, ''), E'\n') FROM flowstate.sources}));
is($node->safe_psql('postgres', q{
	SELECT string_agg(view::text || ' ' || status, ', ' ORDER BY view::text) FROM flowstate.views
	 WHERE status NOT IN ('paused for memory', 'over memory limit')}), '',
	'every view says it is held back for memory in flowstate.views');
for (1 .. 20)
{
	my $bytes = $node->safe_psql('postgres', q{SELECT coalesce(sum(memory_bytes), 0) FROM flowstate.views});
	$peak = $bytes if $bytes > $peak;
	usleep(100_000);
}
note("peak shared memory of the views: $peak bytes, flowstate.memory_limit $limit bytes");
cmp_ok($peak, '<=', $limit * 3 / 2, 'the views of all sources keep near flowstate.memory_limit');
like(slurp_file($node->logfile), qr/WARNING:  flowstate consuming paused/,
	'the pause of a Kafka worker is logged');
like(slurp_file($node->logfile), qr/WARNING:  flowstate decoding paused/,
	'so is the pause of the decoder');

# wait_for does not wait out its timeout for a paused source: it says which
my ($waited, $wait_err) = ('', '');
my $wait_start = time;
$node->psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')},
	stdout => \$waited, stderr => \$wait_err);
is($waited, 'f', 'wait_for returns false while the source of a view is paused');
cmp_ok(time - $wait_start, '<', 30, 'at once, not after its timeout');
like($wait_err, qr/flowstate consumption of stream "s_one" is paused for memory/,
	'naming the paused stream of the first view it waits for');

# the pressure ends
$in .= "COMMIT;\n\\q\n";
$holder->finish;
ok(defined wait_until(120, sub {
	$node->safe_psql('postgres', q{
		SELECT count(*) FROM flowstate.sources WHERE state = 'running'}) eq '4' }),
	'every source worker resumes once the snapshot is gone');
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '180s')}), 't',
	'every message and row is applied');
for my $topic ('one', 'two')
{
	is($node->safe_psql('postgres', qq{
		SELECT count(*) FROM ((TABLE per_$topic EXCEPT ALL
		                       SELECT k, count(*), sum(v) FROM batch_$topic GROUP BY k)
		            UNION ALL (SELECT k, count(*), sum(v) FROM batch_$topic GROUP BY k
		                       EXCEPT ALL TABLE per_$topic)) d}), '0',
		"per_$topic equals its query over the same messages");
	is($node->safe_psql('postgres', "SELECT sum(n) FROM per_$topic"), '100000',
		"per_$topic counts each message once");
}
is(differences($node, 'postgres', 'per_event'), '0', 'per_event equals its batch query');

my $log = slurp_file($node->logfile);
unlike($log, qr/flowstate shared memory is full/, 'no batch is refused for memory');
unlike($log, qr/is rebuilt/, 'no view is rebuilt');
unlike($log, qr/"flowstate (kafka|decoder)" \(PID \d+\) exited with exit code/,
	'no source worker fails');

$node->stop;
done_testing();
