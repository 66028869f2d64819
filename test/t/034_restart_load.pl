# A restart with many groups: the decoder serves new changes before the
# view's state table is in shared memory, and reads WAL again only from
# about its last flush.
#   - under a load of ordinary transactions the slot's restart point follows
#     the durable position within seconds, not at the server's records of
#     running transactions every 15 s;
#   - after an immediate stop and a start, a new row is visible while most
#     groups are still in the state table only; the rest load in the
#     background, and the view stays exact, its counts too;
#   - the decoder keeps the memory its batches and flushes freed while it
#     works, and hands it back to the kernel once it has been idle for a
#     second.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FlowstateNode;

my $keys_per_round = 200_000;
my $node = new_node('restart_load', qq{
flowstate.flush_interval = 200ms
max_wal_size = 4GB
checkpoint_timeout = 1h
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION flowstate;
CREATE TABLE events (k int NOT NULL, v float8);
ALTER TABLE events REPLICA IDENTITY FULL;
CREATE TABLE ticks (t int);
SELECT flowstate.create_view('per_key',
  $$ SELECT k, count(*) AS n, sum(v) AS total, min(v) AS lo, max(v) AS hi FROM events GROUP BY k $$);
});
install_oracle($node, 'postgres');
ok($node->poll_query_until('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 'the view runs');

# the rows' sums are exact: the view and its batch query compare exactly
sub differ
{
	return $node->safe_psql('postgres', q{
		SELECT CASE WHEN flowstate.wait_for(pg_current_wal_lsn(), '60s')
		            THEN public.differences('per_key', '{}') END});
}

# the decoder's anonymous resident memory, in kB (Linux), or undef
my $decoder = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'flowstate decoder'});
sub decoder_anon_kb
{
	return undef unless -r "/proc/$decoder/status";
	return slurp_file("/proc/$decoder/status") =~ /^RssAnon:\s+(\d+) kB/m ? $1 : undef;
}
my $busy_kb = 0;

# 1. rounds of 20 transactions of 10,000 new keys each, about 100 MB of
# WAL: once the view is fresh, the slot's restart point comes within a WAL
# segment of the round's end within 5 s (no checkpoint meanwhile; three
# rounds about 10 s apart: the server's own records of running
# transactions, 15 s apart, cannot serve all three)
for my $round (0 .. 2)
{
	my $start = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
	my $first = $round * $keys_per_round;
	$node->safe_psql('postgres', qq{
DO \$\$
BEGIN
	FOR b IN 0 .. $keys_per_round / 10000 - 1 LOOP
		INSERT INTO events SELECT $first + b * 10000 + i, (i % 97) * 0.5 FROM generate_series(0, 9999) i;
		COMMIT;
	END LOOP;
END \$\$});
	$node->safe_psql('postgres', q{SELECT flowstate.wait_for(pg_current_wal_lsn(), '60s')});
	my $kb = decoder_anon_kb() // 0;
	$busy_kb = $kb if $kb > $busy_kb;
	my $end = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
	my $took = wait_until(5, sub {
		# a commit makes the decoder flush and confirm again
		$node->safe_psql('postgres', 'INSERT INTO ticks VALUES (1)');
		$node->safe_psql('postgres', qq{
			SELECT pg_wal_lsn_diff('$end', restart_lsn) < pg_size_bytes(current_setting('wal_segment_size'))
			  FROM pg_replication_slots WHERE slot_name LIKE 'flowstate%'}) eq 't';
	});
	ok(defined $took, "round $round: the slot's restart point came within a WAL segment of the round's end within 5 s");
	note(sprintf("round %d: %s of WAL; restart point within a segment of the end after %.2f s", $round,
		$node->safe_psql('postgres', qq{SELECT pg_size_pretty(pg_wal_lsn_diff('$end', '$start'))}), $took // -1));
	is(differ(), '0', "round $round: the view is exact");
}

# 4 (before the restarts). the decoder's memory once it is idle: what its
# batches of new groups allocated, tens of megabytes, goes back
SKIP:
{
	skip 'no /proc/PID/status with RssAnon', 2 unless defined decoder_anon_kb();
	note("the decoder's anonymous memory after the rounds: $busy_kb kB");
	cmp_ok($busy_kb, '>', 32 * 1024, 'the batches of new groups took tens of megabytes');
	my $idle_kb;
	ok(defined wait_until(10, sub { ($idle_kb = decoder_anon_kb()) < 16 * 1024 }),
		'the decoder hands its freed memory back once idle');
	note("... and once idle: $idle_kb kB");
}

# 2. durable, then an immediate stop and a start
my $groups = 3 * $keys_per_round;
my $lsn = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
ok(defined wait_until(30, sub {
	$node->safe_psql('postgres', qq{SELECT durable_lsn >= '$lsn' FROM flowstate.sources}) eq 't' }),
	'the groups are durable');
$node->safe_psql('postgres', q{
CREATE FUNCTION first_sight() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	mem bigint;
	total bigint;
BEGIN
	FOR i IN 1 .. 6000 LOOP
		IF EXISTS (SELECT FROM per_key WHERE k = -1) THEN
			SELECT groups_in_memory, groups INTO mem, total
			  FROM flowstate.views WHERE view = 'per_key'::regclass;
			RETURN mem || ' ' || total;
		END IF;
		PERFORM pg_sleep(0.01);
	END LOOP;
	RETURN 'never';
END $$});
$node->stop('immediate');
$node->start;
$node->safe_psql('postgres', 'INSERT INTO events VALUES (-1, 1)');
my ($in_memory, $total) = split / /, $node->safe_psql('postgres', 'SELECT first_sight()');
note("when the new row was visible: $in_memory groups in shared memory of $total");
is($total, $groups + 1, 'the view counts every group from its first batch on');
cmp_ok($in_memory, '<', $groups / 2,
	'the new row was visible while most groups were in the state table only');

# the rest loads in the background
ok(defined wait_until(60, sub {
	$node->safe_psql('postgres', q{
		SELECT groups_in_memory >= groups FROM flowstate.views WHERE view = 'per_key'::regclass}) eq 't' }),
	'every group is back in shared memory');
is(differ(), '0', 'the view is exact after the restart');

# 3. another immediate stop, then changes to groups loaded or not yet
$node->stop('immediate');
$node->start;
$node->safe_psql('postgres', q{
UPDATE events SET v = v + 1 WHERE k % 7 = 0;
DELETE FROM events WHERE k % 11 = 0;
INSERT INTO events SELECT i, 2 FROM generate_series(-100, -2) i;
});
is(differ(), '0', 'changes right after a start are exact');
is($node->safe_psql('postgres', q{
	SELECT groups = (SELECT count(DISTINCT k) FROM events) FROM flowstate.views WHERE view = 'per_key'::regclass}),
	't', 'the view counts its groups exactly');
ok(defined wait_until(60, sub {
	$node->safe_psql('postgres', q{
		SELECT groups_in_memory >= groups FROM flowstate.views WHERE view = 'per_key'::regclass}) eq 't' }),
	'every group is back in shared memory again');
is(differ(), '0', 'the view is exact once loaded');

$node->stop;
done_testing();
