# Joins of a Kafka stream to dimension tables: a lookup join on a
# customer's key, a LEFT JOIN with more conditions in ON, and a temporal
# join to a history (the version valid at the message's time).
#
# 1. With the dimensions unchanged, 24,000 orders (some for customers that
#    do not exist, some without customer) are produced in 3 chunks while
#    the Kafka worker is killed with SIGKILL once, before a flush: every
#    view equals its defining query run over the same messages loaded
#    into a table.
# 2. The dimensions change (segments, a deleted customer, a new one, a
#    deactivated one, a new version of an account): the views keep what
#    the earlier messages joined, and the later messages join the new
#    rows, which is exactly the batch query over the earlier messages with
#    the dimensions as they were plus the later ones with the dimensions
#    as they are.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use List::Util qw(shuffle);
use FlowstateNode;

my $kafka = kafka_start();
is(kafka_command($kafka, 'topic orders 4'), 'ok', 'the mock cluster has a topic of 4 partitions');

my $node = new_node('stream_joins', qq{
restart_after_crash = on
flowstate.flush_interval = 200ms
});
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION flowstate;
CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers '$kafka->{bootstrap}');
CREATE FOREIGN TABLE orders (ts timestamptz NOT NULL, cid int, amount numeric)
    SERVER kafka OPTIONS (topic 'orders', format 'json');
CREATE TABLE orders_before (ts timestamptz NOT NULL, cid int, amount numeric);
CREATE TABLE orders_after (LIKE orders_before);

CREATE TABLE customers (id int PRIMARY KEY, note text, segment text NOT NULL, region text, active boolean NOT NULL);
INSERT INTO customers
SELECT i, 'note', 'segment ' || (i % 7), CASE WHEN i % 5 > 0 THEN 'region ' || (i % 3) END, i % 11 > 0
  FROM generate_series(1, 400) i;
-- a dimension keyed by an array (the index's type is anyarray)
CREATE TABLE pairs (ids int[] PRIMARY KEY, label text NOT NULL);
INSERT INTO pairs VALUES ('{0}', 'zero'), ('{1}', 'one'), ('{2}', 'two');

CREATE TABLE accounts (id int PRIMARY KEY, tier text NOT NULL);
ALTER TABLE accounts REPLICA IDENTITY FULL;
INSERT INTO accounts SELECT i, 'bronze' FROM generate_series(1, 400) i;
SELECT flowstate.create_history('account_history', 'accounts', key => ARRAY['id']);
CREATE FUNCTION public.label(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS \$\$
BEGIN
    RETURN upper(t);
END \$\$;
});
# versions of the accounts, each committed at its own time
for my $round (1 .. 3)
{
	$node->safe_psql('postgres', qq{
		UPDATE accounts SET tier = CASE WHEN (id + $round) % 3 = 0 THEN 'gold' ELSE 'silver $round' END
		 WHERE id % $round = 0});
	select(undef, undef, undef, 0.05);
}
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't',
	'the history caught up');
my $versions = $node->safe_psql('postgres', q{SELECT count(*) FROM account_history});
ok($versions > 800, "the accounts have several versions ($versions)");

# the views, written over a placeholder for their source
my %views = (
	by_segment => q{
		SELECT c.segment, count(*) AS n, sum(o.amount) AS total
		  FROM SOURCE o JOIN customers c ON c.id = o.cid
		 GROUP BY c.segment},
	by_pair => q{
		SELECT p.label, count(*) AS n FROM SOURCE o JOIN pairs p ON p.ids = ARRAY[o.cid % 3] GROUP BY 1},
	# the equality of an unindexed column first: the key is id all the same
	by_segment_check => q{
		SELECT c.segment, count(*) AS n
		  FROM SOURCE o JOIN customers c ON c.segment = 'segment ' || (o.cid % 7)::text AND c.id = o.cid
		 GROUP BY 1},
	by_region => q{
		SELECT c.region, flowstate.tumble(o.ts, '1 minute') AS minute, count(*) AS n,
		       sum(o.amount) AS total, max(c.id) AS top, count(c.segment) AS matched
		  FROM SOURCE o LEFT JOIN customers c ON o.cid = c.id AND c.active
		 WHERE o.amount > 1
		 GROUP BY 1, 2},
	# a function of its own: each message evaluated in a subtransaction
	by_segment_fn => q{
		SELECT public.label(c.segment) AS label, count(*) AS n, sum(o.amount) AS total
		  FROM SOURCE o JOIN customers c ON c.id = o.cid
		 GROUP BY 1},
	by_tier => q{
		SELECT h.tier, count(*) AS n, sum(o.amount) AS total, min(h.version) AS first_version
		  FROM SOURCE o JOIN account_history h
		    ON h.id = o.cid AND h.valid_from <= o.ts AND o.ts < h.valid_to
		 GROUP BY h.tier},
);
for my $v (sort keys %views)
{
	(my $q = $views{$v}) =~ s/SOURCE/orders/;
	$node->safe_psql('postgres', "SELECT flowstate.create_view('$v', \$q\$ $q \$q\$)");
}
install_stream_progress($node, 'postgres');

# the messages: a time in one of the versions of the account (midway
# through it; an hour into the current one), a customer of 1..420 (401..420
# exist in neither table) or none
my @ranges = split /\n/, $node->safe_psql('postgres', q{
	SELECT id, to_char(CASE WHEN valid_from = '-infinity' THEN valid_to - interval '1 hour'
	                        WHEN valid_to = 'infinity' THEN valid_from + interval '1 hour'
	                        ELSE valid_from + (valid_to - valid_from) / 2 END AT TIME ZONE 'UTC',
	                   'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
	  FROM account_history ORDER BY id, version});
my %times;
for (@ranges)
{
	my ($id, $at) = split /\|/;
	push @{ $times{$id} }, $at;
}
srand(32);
my $dir = $node->basedir . '/messages';
mkdir $dir or die;

sub chunk
{
	my ($name, $count, $table) = @_;
	my (@json, @csv);
	for my $i (1 .. $count)
	{
		my $cid = int(rand(420)) + 1;
		my $known = $times{ $cid <= 400 ? $cid : 1 };
		my $at = $known->[ int(rand(@$known)) ];
		my $amount = int(rand(10000)) / 100;
		my $null = $i % 97 == 0;
		push @json, $null ? qq({"ts":"$at","cid":null,"amount":$amount}\n)
		  : qq({"ts":"$at","cid":$cid,"amount":$amount}\n);
		push @csv, $null ? "$at,,$amount\n" : "$at,$cid,$amount\n";
	}
	open my $j, '>', "$dir/$name.json" or die;
	print $j $_ for shuffle @json;
	close $j;
	open my $c, '>', "$dir/$name.csv" or die;
	print $c @csv;
	close $c;
	$node->safe_psql('postgres', "COPY $table FROM '$dir/$name.csv' (FORMAT csv)");
	return $count;
}

# rows the view and a batch query over table do not share
sub differences_over
{
	my ($view, $batch) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT count(*) FROM ((SELECT * FROM $view EXCEPT ALL SELECT * FROM ($batch) b)
		                UNION ALL (SELECT * FROM ($batch) b EXCEPT ALL SELECT * FROM $view)) d});
}

sub caught_up
{
	return $node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')});
}

# 1. unchanged dimensions, a kill -9 before a flush
my $produced = 0;
for my $c (0 .. 2)
{
	my $n = chunk("before$c", 8_000, 'orders_before');
	# chunk 1 stays unflushed until the kill (a flush every 200 ms could
	# come before the sample below, the chunk consumed in less)
	hold_flushes($node) if $c == 1;
	is(kafka_command($kafka, "produce orders $dir/before$c.json"), "produced $n", "chunk $c produced");
	$produced += $n;
	if ($c == 1)
	{
		my $log_offset = -s $node->logfile;
		my $sample = kill_unflushed($node, 'postgres', 'by_tier',
			q{SELECT pid FROM flowstate.sources WHERE kind = 'kafka'});
		ok(@$sample == 2 && $sample->[0] > $sample->[1],
			"chunk 1: the kill came while by_tier held messages not flushed (@$sample)");
		$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
		ok(defined wait_until(30, sub { my @p = eval { kafka_pids($node, 'postgres') }; @p > 0 }),
			'the Kafka worker is back after kill -9');
		set_flush_interval($node, undef);
	}
}
is(caught_up(), 't', 'the views caught up with the first chunks');
for my $v (sort keys %views)
{
	(my $q = $views{$v}) =~ s/SOURCE/orders_before/;
	is(differences_over($v, $q), 0, "$v equals its batch query over the same messages");
}
is($node->safe_psql('postgres', q{SELECT sum(n) FROM by_region}),
	$node->safe_psql('postgres', q{SELECT count(*) FROM orders_before WHERE amount > 1}),
	'by_region (LEFT JOIN) keeps the messages without a match');
ok($node->safe_psql('postgres', q{SELECT sum(n) FROM by_segment})
	  < $node->safe_psql('postgres', q{SELECT count(*) FROM orders_before}),
	'by_segment (JOIN) drops the messages without a customer');
is($node->safe_psql('postgres', q{SELECT count(*) FROM flowstate.dead_letters}), 0, 'no dead letters');

# a role's view is served while the role may read the dimension
$node->safe_psql('postgres', q{
	CREATE ROLE analyst;
	GRANT SELECT ON orders, customers TO analyst;
	GRANT CREATE ON SCHEMA public TO analyst;
	SET ROLE analyst;
	SELECT flowstate.create_view('analyst_segments', $$
	    SELECT c.segment, count(*) AS n FROM orders o JOIN customers c ON c.id = o.cid GROUP BY 1 $$);
});
is(caught_up(), 't', 'the role\'s view caught up');
is($node->safe_psql('postgres', q{SET ROLE analyst; SELECT sum(n) FROM analyst_segments}),
	$node->safe_psql('postgres', q{SELECT sum(n) FROM by_segment}), 'the role reads its view');
$node->safe_psql('postgres', q{REVOKE SELECT ON customers FROM analyst});
my ($ret, $out, $err) = $node->psql('postgres', q{SET ROLE analyst; SELECT sum(n) FROM analyst_segments});
like($err, qr/permission denied for continuous view public.analyst_segments/,
	'once it may no longer read the dimension, its view is not served');
$node->safe_psql('postgres', q{GRANT SELECT (id, segment) ON customers TO analyst});
is($node->safe_psql('postgres', q{SET ROLE analyst; SELECT sum(n) FROM analyst_segments}),
	$node->safe_psql('postgres', q{SELECT sum(n) FROM by_segment}), 'with SELECT on the columns it uses, it is again');
$node->safe_psql('postgres', q{SELECT flowstate.drop_view('analyst_segments')});

# 2. the dimensions change, then more messages come
$node->safe_psql('postgres', q{
	CREATE TABLE customers_then AS SELECT * FROM customers;
	CREATE TABLE account_history_then AS SELECT * FROM account_history;
	-- a rewrite that changes the row type, in a column no view uses
	ALTER TABLE customers ALTER COLUMN note TYPE int8 USING length(note);
	UPDATE customers SET segment = 'moved ' || segment, region = 'region 9' WHERE id % 10 = 3;
	UPDATE customers SET active = NOT active WHERE id % 13 = 0;
	DELETE FROM customers WHERE id % 50 = 7;
	INSERT INTO customers SELECT i, 4, 'late segment', 'region 8', true FROM generate_series(401, 410) i;
	UPDATE accounts SET tier = 'platinum' WHERE id % 4 = 1;
});
is(caught_up(), 't', 'the history took the new versions');
ok($node->safe_psql('postgres', q{SELECT count(*) FROM account_history WHERE tier = 'platinum'}) > 0,
	'the accounts have a new version');
my $n = chunk('after', 8_000, 'orders_after');
is(kafka_command($kafka, "produce orders $dir/after.json"), "produced $n", 'the later chunk produced');
is(caught_up(), 't', 'the views caught up with the later chunk');

for my $v (sort keys %views)
{
	# the batch query over each part of the messages, with the dimensions
	# each part was joined with, aggregated together
	(my $then = $views{$v}) =~ s/SOURCE/orders_before/;
	$then =~ s/customers c/customers_then c/;
	$then =~ s/account_history h/account_history_then h/;
	# written out in full for each view below
	my %expected = (
		by_segment => q{
			SELECT segment, count(*) AS n, sum(amount) AS total FROM (
			    SELECT c.segment, o.amount FROM orders_before o JOIN customers_then c ON c.id = o.cid
			    UNION ALL
			    SELECT c.segment, o.amount FROM orders_after o JOIN customers c ON c.id = o.cid) x
			 GROUP BY segment},
		by_pair => q{
			SELECT p.label, count(*) AS n
			  FROM (SELECT * FROM orders_before UNION ALL SELECT * FROM orders_after) o
			  JOIN pairs p ON p.ids = ARRAY[o.cid % 3] GROUP BY 1},
		by_segment_check => q{
			SELECT segment, count(*) AS n FROM (
			    SELECT c.segment FROM orders_before o JOIN customers_then c
			        ON c.segment = 'segment ' || (o.cid % 7)::text AND c.id = o.cid
			    UNION ALL
			    SELECT c.segment FROM orders_after o JOIN customers c
			        ON c.segment = 'segment ' || (o.cid % 7)::text AND c.id = o.cid) x
			 GROUP BY 1},
		by_segment_fn => q{
			SELECT public.label(segment) AS label, count(*) AS n, sum(amount) AS total FROM (
			    SELECT c.segment, o.amount FROM orders_before o JOIN customers_then c ON c.id = o.cid
			    UNION ALL
			    SELECT c.segment, o.amount FROM orders_after o JOIN customers c ON c.id = o.cid) x
			 GROUP BY 1},
		by_region => q{
			SELECT region, flowstate.tumble(ts, '1 minute') AS minute, count(*) AS n,
			       sum(amount) AS total, max(id) AS top, count(segment) AS matched FROM (
			    SELECT c.region, o.ts, o.amount, c.id, c.segment
			      FROM orders_before o LEFT JOIN customers_then c ON o.cid = c.id AND c.active
			     WHERE o.amount > 1
			    UNION ALL
			    SELECT c.region, o.ts, o.amount, c.id, c.segment
			      FROM orders_after o LEFT JOIN customers c ON o.cid = c.id AND c.active
			     WHERE o.amount > 1) x
			 GROUP BY 1, 2},
		by_tier => q{
			SELECT tier, count(*) AS n, sum(amount) AS total, min(version) AS first_version FROM (
			    SELECT h.tier, o.amount, h.version FROM orders_before o JOIN account_history_then h
			        ON h.id = o.cid AND h.valid_from <= o.ts AND o.ts < h.valid_to
			    UNION ALL
			    SELECT h.tier, o.amount, h.version FROM orders_after o JOIN account_history h
			        ON h.id = o.cid AND h.valid_from <= o.ts AND o.ts < h.valid_to) x
			 GROUP BY tier},
	);
	is(differences_over($v, $expected{$v}), 0,
		"$v: the earlier messages keep the dimension they were joined with, the later join the new one");
	isnt(differences_over($v, "SELECT * FROM ($then) a"), 0,
		"$v differs from the earlier messages alone (the later ones count)");
}
# the change is visible: a segment only the later messages can reach
ok($node->safe_psql('postgres', q{SELECT n FROM by_segment WHERE segment = 'late segment'}) > 0,
	'the later messages reached the new customers');
ok($node->safe_psql('postgres', q{
	SELECT count(*) FROM by_segment v JOIN (
	    SELECT c.segment, count(*) AS n FROM orders_before o JOIN customers c ON c.id = o.cid
	     GROUP BY 1) now USING (segment) WHERE v.n <> now.n}) > 0,
	'the earlier messages were not joined again with the changed customers');

# 3. the index a view joins on is dropped: its messages are dead letters
# that say so, the other views go on; once the index is back, they join
# again
$node->safe_psql('postgres', q{
	CREATE TABLE labels (id int NOT NULL, label text);
	CREATE UNIQUE INDEX labels_id ON labels (id);
	INSERT INTO labels SELECT i, 'label ' || i FROM generate_series(0, 9) i;
	SELECT flowstate.create_view('by_label', $$
	    SELECT l.label, count(*) AS n FROM orders o JOIN labels l ON l.id = o.cid % 10 GROUP BY 1 $$);
});
is(caught_up(), 't', 'by_label caught up with the messages so far');
my $before = $node->safe_psql('postgres', q{
	SELECT (SELECT sum(n) FROM by_label) || ' ' || (SELECT sum(n) FROM by_segment)});
my ($label_n, $segment_n) = split / /, $before;
is($label_n, $node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT * FROM orders_before UNION ALL SELECT * FROM orders_after) o
	 WHERE cid IS NOT NULL}), 'by_label joined every message with a customer');
$node->safe_psql('postgres', 'DROP INDEX labels_id');
$n = chunk('no_index', 200, 'orders_after');
is(kafka_command($kafka, "produce orders $dir/no_index.json"), "produced $n", 'messages produced without the index');
is(caught_up(), 't', 'the views caught up');
is($node->safe_psql('postgres', q{
	SELECT count(*) || ' ' || min(sqlstate) || ' ' || bool_and(error LIKE '%has no index on column "id" that continuous view public.by_label can join on any more%')
	  FROM flowstate.dead_letters WHERE view = 'by_label'::regclass}),
	'200 55000 true', 'without the index, every message of by_label is a dead letter that says why');
is($node->safe_psql('postgres', q{SELECT sum(n) FROM by_label}), $label_n, 'by_label counted none of them');
ok($node->safe_psql('postgres', q{SELECT sum(n) FROM by_segment}) > $segment_n, 'by_segment went on');
$node->safe_psql('postgres', 'CREATE UNIQUE INDEX labels_id ON labels (id)');
$n = chunk('index_back', 200, 'orders_after');
is(kafka_command($kafka, "produce orders $dir/index_back.json"), "produced $n", 'messages produced with the index back');
is(caught_up(), 't', 'the views caught up');
is($node->safe_psql('postgres', q{SELECT sum(n) FROM by_label}) - $label_n,
	$node->safe_psql('postgres', qq{SELECT count(*) FROM (SELECT * FROM orders_after ORDER BY ctid DESC LIMIT 200) o
	                                 WHERE cid IS NOT NULL}),
	'with the index back, by_label joins the new messages');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'flowstate kafka'}),
	1, 'one Kafka worker, running');

$node->stop;
$kafka->{h}->kill_kill;
done_testing();
