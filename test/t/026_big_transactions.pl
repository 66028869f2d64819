# Large transactions decoded while they run: with logical_decoding_work_mem
# at its minimum (64kB), every transaction of more than a few hundred rows
# is streamed to the decoder before it commits, and its changes are
# gathered aside (flowstate.open_transaction_memory, small here, so that
# they also go to temporary files).  The views equal their batch queries
# after: a transaction of 2,000,000 rows; the same rolled back; one that
# deletes 1,900,000 rows; savepoints rolled back in
# the middle (rows of aborted subtransactions neither counted nor dead
# letters); a large transaction interleaved with small ones; the decoder
# restarting, and the server crashing, in the middle of one; kill -9 after
# one committed (the slot's restart point has passed it: it is not decoded
# again).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use FlowstateNode;

my $node = new_node('big_transactions', qq{
restart_after_crash = on
logical_decoding_work_mem = 64kB
flowstate.open_transaction_memory = 256kB
flowstate.flush_interval = 200ms
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION flowstate;
CREATE TABLE bids (
    id      bigserial PRIMARY KEY,
    auction int NOT NULL,
    bidder  int NOT NULL,
    price   numeric NOT NULL,
    channel text NOT NULL,
    ts      timestamptz NOT NULL);
ALTER TABLE bids REPLICA IDENTITY FULL;
-- each committed change of a row that ratio cannot evaluate (its old row,
-- its new row) is one dead letter
CREATE TABLE failing_changes (n int);
CREATE FUNCTION note_failing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.bidder % 7 = 0 THEN
        INSERT INTO failing_changes VALUES (1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.bidder % 7 = 0 THEN
        INSERT INTO failing_changes VALUES (1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER note_failing AFTER INSERT OR UPDATE OR DELETE ON bids
    FOR EACH ROW EXECUTE FUNCTION note_failing();
INSERT INTO bids (auction, bidder, price, channel, ts)
SELECT i % 1000, i % 977, (i % 5000) / 10.0, 'c' || (i % 5),
       '2026-01-01'::timestamptz + i * interval '10 ms'
  FROM generate_series(1, 1000) i;
-- columns added since those rows were written: their old rows, logged whole
-- by deletes, lack them (fast defaults)
ALTER TABLE bids ADD COLUMN tag int NOT NULL DEFAULT 7, ADD COLUMN note text;
CREATE TABLE other (k int);
ALTER TABLE other REPLICA IDENTITY FULL;
-- bid(n, start, seed): n bids from event time start on, 10 ms apart
CREATE FUNCTION public.bid(n int, start int, seed int)
RETURNS TABLE (auction int, bidder int, price numeric, channel text, ts timestamptz)
LANGUAGE sql AS $$
    SELECT (i * seed) % 50000, (i * 31 + seed) % 977, ((i * seed) % 99991) / 100.0,
           'c' || ((i + seed) % 5), '2026-01-01'::timestamptz + i * interval '10 ms'
      FROM generate_series(start, start + n - 1) i $$;
SELECT flowstate.create_view('per_window', $$
    SELECT flowstate.tumble(ts, '10 seconds') AS w, channel, count(*) AS n, max(price) AS hi,
           min(price) AS lo, sum(price) AS total, avg(price) AS mean, stddev_samp(price) AS sd
      FROM bids GROUP BY 1, 2 $$);
SELECT flowstate.create_view('per_auction', $$
    SELECT auction, count(*) AS n, sum(price) AS total, max(bidder) AS top_bidder
      FROM bids GROUP BY auction $$);
SELECT flowstate.create_view('ratio', $$
    SELECT auction % 10 AS k, count(*) AS n, sum(100 / (bidder % 7)) AS s
      FROM bids GROUP BY 1 $$);
SELECT flowstate.create_view('final_minutes', $$
    SELECT flowstate.tumble(ts, '1 minute') AS w, count(*) AS n, sum(price) AS total,
           sum(tag) AS tags, sum(length(note)) AS note_length
      FROM bids GROUP BY 1 $$, allowed_lateness => '1 day');
});
install_oracle($node, 'postgres');

# the rows of ratio that fail (division by zero) are dead letters
$node->safe_psql('postgres', q{
CREATE FUNCTION public.ratio_differences() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM (
      (SELECT * FROM ratio EXCEPT ALL
       SELECT auction % 10, count(*), sum(100 / (bidder % 7)) FROM bids WHERE bidder % 7 <> 0 GROUP BY 1)
      UNION ALL
      (SELECT auction % 10, count(*), sum(100 / (bidder % 7)) FROM bids WHERE bidder % 7 <> 0 GROUP BY 1
       EXCEPT ALL SELECT * FROM ratio)) d $$;
CREATE FUNCTION public.dead_letters_missing() RETURNS bigint LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM failing_changes) -
           (SELECT count(*) FROM flowstate.dead_letters WHERE view = 'ratio'::regclass) $$;
});

sub check_views
{
	my ($when) = @_;
	for my $view (qw(per_window per_auction final_minutes))
	{
		is(differences($node, 'postgres', $view), '0', "$when: $view equals its batch query");
	}
	is($node->safe_psql('postgres', 'SELECT public.ratio_differences()'), '0',
		"$when: ratio equals its batch query over the rows that do not fail");
	is($node->safe_psql('postgres', 'SELECT public.dead_letters_missing()'), '0',
		"$when: each committed change of a failing row is one dead letter, no more");
}

sub slot_stat
{
	my ($col) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT coalesce(sum($col), 0) FROM pg_stat_replication_slots WHERE slot_name LIKE 'flowstate%'});
}

sub sources
{
	my ($cols) = @_;
	return $node->safe_psql('postgres', qq{SELECT $cols FROM flowstate.sources WHERE kind = 'logical decoding'});
}

check_views('after the backfill');

# 1. a transaction of 2,000,000 rows
my $streamed = slot_stat('stream_txns');
$node->safe_psql('postgres', 'INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(2000000, 100000, 7)');
check_views('after a transaction of 2,000,000 rows');
cmp_ok(slot_stat('stream_txns'), '>', $streamed, 'the transaction was decoded while it ran');
is(slot_stat('spill_txns'), '0', 'no transaction spilled to the reorder buffer files');
my ($committed, $spilled, $peak) = split /\|/, sources('streamed_transactions, spilled_bytes, open_transaction_peak_bytes');
cmp_ok($committed, '>=', 1, 'flowstate.sources counts the streamed transaction');
cmp_ok($spilled, '>', 0, 'its deltas outgrew open_transaction_memory and went to a temporary file');
note("open transactions' peak memory: $peak bytes, spilled: $spilled bytes");
cmp_ok($peak, '<', 4 * 256 * 1024, 'the memory of open transactions stays near its bound');
is(sources('open_transactions || \' \' || open_transaction_bytes'), '0 0', 'nothing is left open');

# 2. the same, rolled back
$node->safe_psql('postgres', q{
BEGIN;
INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(2000000, 2100000, 11);
DELETE FROM bids WHERE id % 3 = 0;
ROLLBACK;
});
check_views('after a transaction of 2,000,000 rows rolled back');

# a transaction that deletes 1,900,000 rows: minima and maxima of many
# groups go, which are recomputed from the table at its commit
$node->safe_psql('postgres', 'DELETE FROM bids WHERE id > 1000 AND id % 20 <> 0');
check_views('after a transaction that deletes 1,900,000 rows');

# large values (stored out of line, rebuilt by the reorder buffer) and old
# rows that lack the columns added since, in a streamed transaction: the
# rows kept whole until its commit (final_minutes) keep their values
$node->safe_psql('postgres', q{
BEGIN;
INSERT INTO bids (auction, bidder, price, channel, ts, note)
SELECT b.*, (SELECT string_agg(md5((i * 100 + j)::text), '') FROM generate_series(1, 100) j)
  FROM public.bid(10000, 500000, 3) b, LATERAL (SELECT extract(epoch FROM b.ts)::bigint AS i) x;
DELETE FROM bids WHERE id <= 500;
UPDATE bids SET price = price + 1 WHERE id BETWEEN 501 AND 600;
INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(50000, 520000, 5);
COMMIT;
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM bids WHERE length(note) > 3000}), '10000',
	'large values were written');
check_views('after large values and rows older than the columns, in a streamed transaction');

# 3. savepoints rolled back in the middle; deletes and updates that move
# minima and maxima
$node->safe_psql('postgres', q{
BEGIN;
INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(50000, 600000, 13);
SAVEPOINT a;
INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(50000, 700000, 17);
SAVEPOINT a2;
DELETE FROM bids WHERE id % 5 = 0;
RELEASE a2;
UPDATE bids SET price = price + 1000 WHERE id % 7 = 1;
ROLLBACK TO a;
DELETE FROM bids WHERE id % 11 = 0;
SAVEPOINT b;
UPDATE bids SET price = price * 2, channel = 'moved', ts = ts + interval '1 hour' WHERE id % 13 = 2;
RELEASE b;
SAVEPOINT c;
INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(30000, 800000, 19);
ROLLBACK TO c;
INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(30000, 900000, 23);
COMMIT;
});
check_views('after savepoints rolled back in the middle of a large transaction');

# 4. a large transaction interleaved with small ones from other sessions
my $big = $node->background_psql('postgres');
$big->query_safe('BEGIN');
$big->query_safe('INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(60000, 1000000, 29)');
for my $i (1 .. 20)
{
	$node->safe_psql('postgres', "INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(50, 1100000 + $i * 50, 31)");
	$node->safe_psql('postgres', "DELETE FROM bids WHERE id = (SELECT max(id) FROM bids) - $i * 3");
}
ok(defined wait_until(30, sub { sources('open_transactions') eq '1' }),
	'the open transaction shows in flowstate.sources');
is(differences($node, 'postgres', 'per_window'), '0', 'the small ones are applied while it is open');
# views created while it is open: the one over its table rebuilds after its
# commit (it missed its first rows), the one over another table does not
$node->safe_psql('postgres', q{
SELECT flowstate.create_view('started_meanwhile', $$
    SELECT channel, count(*) AS n, sum(price) AS total FROM bids GROUP BY channel $$);
SELECT flowstate.create_view('elsewhere', $$ SELECT k, count(*) AS n FROM other GROUP BY k $$);
INSERT INTO other SELECT i % 3 FROM generate_series(1, 100) i;
});
my $meanwhile_offset = -s $node->logfile;
$big->query_safe('UPDATE bids SET price = price + 1 WHERE id % 17 = 0');
$big->query_safe('INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(60000, 1200000, 37)');
$big->query_safe('COMMIT');
check_views('after a large transaction interleaved with small ones');
is(differences($node, 'postgres', 'started_meanwhile'), '0',
	'a view created while it was open equals its batch query');
is(differences($node, 'postgres', 'elsewhere'), '0', 'so does the view over another table');
my $meanwhile_log = slurp_file($node->logfile, $meanwhile_offset);
like($meanwhile_log, qr/rebuilds continuous view "public.started_meanwhile": it started while a large transaction/,
	'the view over its table rebuilt');
unlike($meanwhile_log, qr/rebuilds continuous view "public.elsewhere"/, 'the view over another table did not');

# 5. the decoder restarts in the middle of a streamed transaction, which
# commits afterwards: the new decoder decodes it again from the start
$big->query_safe('BEGIN');
$big->query_safe('INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(80000, 1300000, 41)');
ok(defined wait_until(30, sub { sources('open_transactions') eq '1' }),
	'restart: the transaction is being decoded while it runs');
my $pid = decoder_pid($node, 'postgres');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok(defined wait_until(30, sub { my $p = decoder_pid($node, 'postgres'); $p ne '' && $p ne $pid }),
	'restart: the decoder is back');
$big->query_safe('INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(80000, 1400000, 43)');
$big->query_safe('COMMIT');
$big->quit;
check_views('after the decoder restarted in the middle of a streamed transaction');

# 6. the server crashes in the middle of a streamed transaction: it never
# commits
$big = $node->background_psql('postgres');
$big->query_safe('BEGIN');
$big->query_safe('INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(80000, 1500000, 47)');
ok(defined wait_until(30, sub { sources('open_transactions') eq '1' }),
	'crash: the transaction is being decoded while it runs');
my $log_offset = -s $node->logfile;
$pid = decoder_pid($node, 'postgres');
kill9_sampled($node, 'postgres', "SELECT $pid, 'x'");
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
eval { $big->quit };
ok(defined wait_until(30, sub { my $p = eval { decoder_pid($node, 'postgres') } // ''; $p ne '' && $p ne $pid }),
	'crash: the decoder is back');
$node->safe_psql('postgres', 'INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(1000, 1600000, 53)');
check_views('after a crash in the middle of a streamed transaction');
# the transaction the crash ended stays open for the decoding until a record
# of running transactions shows it gone: a checkpoint logs one, after which
# the slot's restart point moves on (else that transaction, read again from
# the WAL, could hold back what follows)
my $after_crash = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
my $polls = 0;
ok(defined wait_until(30, sub {
	$node->safe_psql('postgres', 'CHECKPOINT') if $polls++ % 10 == 0;
	$node->safe_psql('postgres', 'INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(1, 1800000, 57)');
	$node->safe_psql('postgres', qq{
		SELECT restart_lsn > '$after_crash' FROM pg_replication_slots WHERE slot_name LIKE 'flowstate%'}) eq 't';
}), 'crash: the slot moved past the transaction the crash ended');

# 7. kill -9 after a large transaction committed: once it is durable the
# slot's restart point passes it, so that a restart does not decode it again
$node->safe_psql('postgres', 'INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(200000, 1700000, 59)');
my $after_commit = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
is(differences($node, 'postgres', 'per_auction'), '0', 'kill -9 after commit: the view has the transaction');
# (the server logs the records of running transactions that let a slot's
# restart point move only every 15 s: flowstate logs one as soon as the
# transaction is durable)
ok(defined wait_until(5, sub {
	# small writes make the decoder flush (a flush confirms the slot)
	$node->safe_psql('postgres', 'INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(1, 1900000, 61)');
	$node->safe_psql('postgres', qq{
		SELECT restart_lsn > '$after_commit' FROM pg_replication_slots WHERE slot_name LIKE 'flowstate%'}) eq 't';
}), "kill -9 after commit: the slot's restart point passed the transaction");
$log_offset = -s $node->logfile;
$pid = decoder_pid($node, 'postgres');
kill9_sampled($node, 'postgres', "SELECT $pid, 'x'");
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
ok(defined wait_until(30, sub { my $p = eval { decoder_pid($node, 'postgres') } // ''; $p ne '' && $p ne $pid }),
	'kill -9 after commit: the decoder is back');
check_views('after kill -9 following a large transaction');
is(slot_stat('spill_txns'), '0', 'no transaction ever spilled to the reorder buffer files');

# a row later than its window allows, in the middle of a streamed
# transaction, is a late event, as if the transaction were decoded whole
my $late_before = $node->safe_psql('postgres',
	q{SELECT count(*) FROM flowstate.late_events WHERE view = 'final_minutes'::regclass});
$node->safe_psql('postgres', q{
BEGIN;
INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(20000, 3000000, 67);
INSERT INTO bids (auction, bidder, price, channel, ts) VALUES (1, 1, 1, 'late', '2025-12-01');
INSERT INTO bids (auction, bidder, price, channel, ts) SELECT * FROM public.bid(20000, 3020000, 71);
COMMIT;
});
# late events are written with the flush after the row
ok(defined wait_until(30, sub {
	$node->safe_psql('postgres',
		q{SELECT count(*) FROM flowstate.late_events WHERE view = 'final_minutes'::regclass}) > $late_before }),
	'the late row of a streamed transaction is a late event');
is($node->safe_psql('postgres', q{
	SELECT count(*) || ' ' || min(change) || ' ' || (min(event_time) AT TIME ZONE 'UTC')::date FROM flowstate.late_events
	 WHERE view = 'final_minutes'::regclass}) ,
	($late_before + 1) . ' insert 2025-12-01', '... one, the late insert');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  (SELECT * FROM final_minutes EXCEPT ALL
	   SELECT flowstate.tumble(ts, '1 minute'), count(*), sum(price), sum(tag), sum(length(note))
	     FROM bids WHERE channel <> 'late' GROUP BY 1)
	  UNION ALL
	  (SELECT flowstate.tumble(ts, '1 minute'), count(*), sum(price), sum(tag), sum(length(note))
	     FROM bids WHERE channel <> 'late' GROUP BY 1
	   EXCEPT ALL SELECT * FROM final_minutes)) d}), '0',
	'final_minutes equals its batch query without the late row');

$node->stop;
done_testing();
