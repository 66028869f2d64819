# A stream shared by two workers, with little shared memory for its view:
# the batches of the worker that does not own the view often find shared
# memory full.  Such a batch changes nothing until the owner made room,
# then goes in whole: at the end the view equals its defining query run
# over the same messages loaded into a table, every message counted once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FlowstateNode;

my $kafka = kafka_start();
is(kafka_command($kafka, 'topic wide 2'), 'ok', 'a topic of 2 partitions');

my $node = new_node('kafka_full_memory', qq{
flowstate.flush_interval = 1s
flowstate.memory_limit = 1MB
});
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION flowstate;
CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers '$kafka->{bootstrap}');
CREATE FOREIGN TABLE wide (k int NOT NULL, v int NOT NULL)
    SERVER kafka OPTIONS (topic 'wide', format 'json', workers '2');
CREATE TABLE wide_batch (k int NOT NULL, v int NOT NULL);
SELECT flowstate.create_view('per_k', 'SELECT k, count(*) AS n, sum(v) AS total FROM wide GROUP BY k');
});
ok(defined wait_until(30, sub {
	$node->safe_psql('postgres', q{
		SELECT count(*) FROM flowstate.sources WHERE kind = 'kafka' AND state = 'running'}) eq '2' }),
	'two workers consume the stream');

# 300,000 messages, most of them of a key of their own
my $dir = $node->basedir . '/messages';
mkdir $dir or die;
open my $csv, '>', "$dir/all.csv" or die;
my $i = 0;
for my $c (1 .. 3)
{
	open my $json, '>', "$dir/chunk$c.json" or die;
	for (1 .. 100_000)
	{
		my ($k, $v) = ($i % 250_000, $i % 13);
		print $json qq({"k":$k,"v":$v}\n);
		print $csv "$k,$v\n";
		$i++;
	}
	close $json;
	is(kafka_command($kafka, "produce wide $dir/chunk$c.json"), 'produced 100000', "chunk $c produced");
}
close $csv;
$node->safe_psql('postgres', "COPY wide_batch FROM '$dir/all.csv' (FORMAT csv)");
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '180s')}), 't',
	'the messages are consumed');

note($node->safe_psql('postgres', q{
	SELECT (SELECT sum(n) FROM per_k) || ' ' || (SELECT count(*) FROM per_k) || ' ' ||
	       (SELECT string_agg(n || ':' || c, ',') FROM (SELECT n, count(*) c FROM per_k GROUP BY n) x)}));
note($node->safe_psql('postgres', q{SELECT string_agg(source || ' ' || state || ' ' || coalesce(lag_messages::text, '?') || ' ' || coalesce(last_error, ''), E'\n') FROM flowstate.sources}));
sleep 5;
note($node->safe_psql('postgres', q{
	SELECT (SELECT sum(n) FROM per_k) || ' ' || (SELECT count(*) FROM per_k)}));
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM ((TABLE per_k EXCEPT ALL
	                       SELECT k, count(*), sum(v) FROM wide_batch GROUP BY k)
	            UNION ALL (SELECT k, count(*), sum(v) FROM wide_batch GROUP BY k
	                       EXCEPT ALL TABLE per_k)) d}), '0',
	'the view equals its query over the same messages: each counted once');
cmp_ok($node->safe_psql('postgres', q{
	SELECT max(memory_bytes) FROM flowstate.views}), '<=', 2 * 1024 * 1024,
	'the view keeps within twice its memory');

$node->stop;
done_testing();
