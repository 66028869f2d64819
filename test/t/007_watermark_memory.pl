# A view's watermark survives a restart: a row whose window closed longer
# than the allowed lateness ago is still late after an immediate stop.  And a
# view larger than its memory_limit keeps only part of its groups in shared
# memory, loads the others from its state table when they change, and
# still equals its batch query, also after a restart; a long snapshot that
# keeps flushed groups in memory (here, the batch query's while it waits)
# does not stop it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FlowstateNode;

my $node = new_node('watermark_memory', qq{
flowstate.flush_interval = 100ms
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION flowstate;
CREATE TABLE clicks (id bigserial PRIMARY KEY, ts timestamptz NOT NULL, page int NOT NULL);
ALTER TABLE clicks REPLICA IDENTITY FULL;
SELECT flowstate.create_view('clicks_per_minute', $$
    SELECT date_bin('1 minute', ts, '2026-01-01') AS minute, count(*) AS n
      FROM clicks GROUP BY 1 $$, allowed_lateness => '0');
});
install_oracle($node, 'postgres');

# event time reaches 10:30; flushed
$node->safe_psql('postgres', q{
INSERT INTO clicks (ts, page) VALUES ('2026-01-01 10:00:00+00', 1), ('2026-01-01 10:30:00+00', 2)});
ok(defined wait_until(30, sub {
	$node->safe_psql('postgres', q{
		SELECT max_event_time = '2026-01-01 10:30:00+00' FROM flowstate.view}) eq 't' }),
	'the largest event time is flushed with the state');

$node->stop('immediate');
$node->start;

# 10:05 is long closed: still late after the restart, though no row since
# has moved event time
$node->safe_psql('postgres', q{
INSERT INTO clicks (ts, page) VALUES ('2026-01-01 10:05:00+00', 3), ('2026-01-01 10:30:30+00', 4)});
$node->safe_psql('postgres', 'SELECT flowstate.wait_for()');
is($node->safe_psql('postgres', q{SELECT string_agg(minute::time || '=' || n, ' ' ORDER BY minute)
	FROM clicks_per_minute}), '10:00:00=1 10:30:00=2',
	'after a restart, a row of a closed window is not applied');
ok(defined wait_until(30, sub {
	$node->safe_psql('postgres', q{
		SELECT count(*) FROM flowstate.late_events WHERE event_time = '2026-01-01 10:05:00+00'}) eq '1' }),
	'it is a late event');

# a rebuild (its replication slot went missing) keeps the windows that were
# final: the late row, in the table, is not applied now either
ok(defined wait_until(60, sub {
	$node->safe_psql('postgres', q{
		SELECT max_event_time = '2026-01-01 10:30:30+00' FROM flowstate.view}) eq 't' }),
	'the watermark is flushed');
ok(drop_decoder_slot($node), 'the replication slot is dropped while the decoder is down');
$node->safe_psql('postgres', q{
INSERT INTO clicks (ts, page) VALUES ('2026-01-01 10:31:00+00', 5)});
ok(defined wait_until(60, sub {
	slurp_file($node->logfile) =~ /continuous view "public.clicks_per_minute" is rebuilt/ &&
	  $node->safe_psql('postgres', q{SELECT flowstate.wait_for()}) eq 't' }),
	'the view is rebuilt');
is($node->safe_psql('postgres', q{SELECT string_agg(minute::time || '=' || n, ' ' ORDER BY minute)
	FROM clicks_per_minute}), '10:00:00=1 10:30:00=2 10:31:00=1',
	'the rebuilt view keeps its final windows: the late row is still not applied');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM flowstate.late_events WHERE event_time = '2026-01-01 10:05:00+00'}), '1',
	'and it is recorded once');
$node->safe_psql('postgres', q{SELECT flowstate.drop_view('clicks_per_minute')});

# --- memory: 30,000 groups, room for a few thousand ---
$node->safe_psql('postgres', q{
CREATE TABLE visits (id int PRIMARY KEY, visitor int NOT NULL, ms int NOT NULL);
ALTER TABLE visits REPLICA IDENTITY FULL;
CREATE INDEX ON visits (visitor);
INSERT INTO visits SELECT i, i % 30000, i % 977 FROM generate_series(1, 60000) i;
SELECT flowstate.create_view('per_visitor', $$
    SELECT visitor, count(*) AS n, sum(ms) AS total, min(ms) AS fastest, max(ms) AS slowest
      FROM visits GROUP BY visitor $$, memory_limit => '2MB');
});
sub memory
{
	return $node->safe_psql('postgres', q{
		SELECT groups || ' ' || groups_in_memory || ' ' || memory_bytes || ' ' || status
		  FROM flowstate.views WHERE view = 'per_visitor'::regclass});
}
ok(defined wait_until(60, sub {
	my ($groups, $in_memory, $bytes, $status) = split / /, memory(), 4;
	return $status eq 'running' && $groups == 30000 && $in_memory < $groups;
}), 'a view larger than its memory keeps part of its groups in memory');
note('groups, in memory, bytes, status: ' . memory());
is(differences($node, 'postgres', 'per_visitor'), '0', 'it equals its batch query');

# change groups that left memory: they come back from the state table,
# minima and maxima deleted included
$node->safe_psql('postgres', q{
UPDATE visits SET ms = ms + 1000 WHERE id % 7 = 0;
DELETE FROM visits WHERE id % 11 = 0;
INSERT INTO visits SELECT i, i % 31000, i % 13 FROM generate_series(60001, 70000) i;
});
is(differences($node, 'postgres', 'per_visitor'), '0', 'after changes to evicted groups, it equals its batch query');
# over the limit while a snapshot older than the flushes holds the flushed
# groups; back under it once that snapshot is gone
my ($in, $out) = ('', '');
my $holder = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $node->connstr('postgres') ], '<', \$in, '>', \$out);
$in .= "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 'holding', count(*) FROM visits;\n";
$holder->pump until $out =~ /holding/;
$node->safe_psql('postgres', q{
INSERT INTO visits SELECT i, i, 1 FROM generate_series(100001, 140000) i});
ok(defined wait_until(60, sub {
	my ($groups, $in_memory, $bytes, $status) = split / /, memory(), 4;
	return $bytes > 2 * 1024 * 1024 && $status eq 'over memory limit';
}), 'a snapshot older than the flushes keeps the view over its limit, which its status says');
note('groups, in memory, bytes, status: ' . memory());
$in .= "COMMIT;\n\\q\n";
$holder->finish;
ok(defined wait_until(30, sub {
	my ($groups, $in_memory, $bytes, $status) = split / /, memory(), 4;
	return $bytes <= 2 * 1024 * 1024 && $status eq 'running';
}), 'its shared memory goes back within the limit');
note('groups, in memory, bytes, status: ' . memory());

$node->stop('immediate');
$node->start;
$node->safe_psql('postgres', q{UPDATE visits SET visitor = visitor + 1 WHERE id % 5 = 0});
is(differences($node, 'postgres', 'per_visitor'), '0', 'after a restart and more changes, it equals its batch query');

$node->stop;
done_testing();
