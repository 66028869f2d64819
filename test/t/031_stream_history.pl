# SCD type-2 histories of Kafka streams: each message is the whole state of
# its key, sequenced by a column of the message.  One change log (updates
# of tracked columns, no-op updates, type-1 changes, deletes by a column
# and by messages without value, re-inserts of deleted keys) goes to one
# topic in order and to another shuffled, the shuffled one in chunks with
# the worker killed (SIGKILL) between them while it holds messages it has
# not flushed.  The histories of both topics are equal, row for row, and
# equal a reference folded from the log with window functions; a message
# whose key is missing is a dead letter with the history's reason.  A
# continuous view over a table of events joins the shuffled history by
# each event's time: the late messages that split versions the events
# already joined re-aggregate them, and the view equals its batch query.
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
kafka_command($kafka, 'topic ordered 3');
kafka_command($kafka, 'topic shuffled 3');

my $node = new_node('stream_history', qq{
restart_after_crash = on
flowstate.flush_interval = 100ms
});
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION flowstate;
CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers '$kafka->{bootstrap}');
CREATE FOREIGN TABLE customers_ordered (
    id      text OPTIONS (metadata 'key'),
    name    text,
    tier    text,
    region  text,
    changed timestamptz,
    deleted boolean)
  SERVER kafka OPTIONS (topic 'ordered', format 'json', start 'earliest');
CREATE FOREIGN TABLE customers_shuffled (
    id      text OPTIONS (metadata 'key'),
    name    text,
    tier    text,
    region  text,
    changed timestamptz,
    deleted boolean)
  SERVER kafka OPTIONS (topic 'shuffled', format 'json', start 'earliest');
SELECT flowstate.create_history('h_ordered', 'customers_ordered', '{id}',
                                tracked => '{name,tier}', type1 => '{region}',
                                sequence_column => 'changed', delete_column => 'deleted');
SELECT flowstate.create_history('h_shuffled', 'customers_shuffled', '{id}',
                                tracked => '{name,tier}', type1 => '{region}',
                                sequence_column => 'changed', delete_column => 'deleted');
-- sequenced by the messages' timestamps
SELECT flowstate.create_history('t_ordered', 'customers_ordered', '{id}',
                                tracked => '{tier}', on_delete => 'tombstone',
                                delete_column => 'deleted');
SELECT flowstate.create_history('t_shuffled', 'customers_shuffled', '{id}',
                                tracked => '{tier}', on_delete => 'tombstone',
                                delete_column => 'deleted');
CREATE TABLE change_log (id text, changed timestamptz, is_delete boolean,
                         name text, tier text, region text);
-- events at times within the change log's, joined to the version of then
ALTER TABLE h_shuffled SET (user_catalog_table = true);
ALTER TABLE h_shuffled REPLICA IDENTITY FULL;
CREATE TABLE events (id int PRIMARY KEY, cid text, at timestamptz NOT NULL, amount int NOT NULL);
ALTER TABLE events REPLICA IDENTITY FULL;
CREATE INDEX ON events (cid);
INSERT INTO events
SELECT i, (1 + i % 300)::text, to_timestamp(1700000000 + (i * 37) % 500), i % 100 FROM generate_series(1, 6000) i;
SELECT flowstate.create_view('by_tier', \$q\$
    SELECT h.tier, count(*) AS n, sum(e.amount) AS total, max(e.amount) AS top
      FROM events e JOIN h_shuffled h ON h.id = e.cid AND h.valid_from <= e.at AND e.at < h.valid_to
     GROUP BY h.tier \$q\$);
});
install_oracle($node, 'postgres');

# the change log: per key, events one second apart or more (distinct times)
srand(31);
my @log;
my @tiers = qw(bronze silver gold);
for my $id (1 .. 300)
{
	my $t = 1_700_000_000 + int(rand(100));
	my ($name, $tier, $region) = ("c$id", $tiers[$id % 3], 'eu');
	my $live = 0;
	for my $e (1 .. 4 + int(rand(12)))
	{
		$t += 1 + int(rand(50));
		my $r = rand();
		my $kind;
		if ($live && $r < 0.12) { $kind = 'delete'; }
		elsif ($live && $r < 0.2) { $kind = 'tombstone'; }
		else
		{
			$kind = 'upsert';
			my $c = rand();
			if (!$live) { }    # a (re-)insert, maybe with the same values
			elsif ($c < 0.3) { }    # a no-op: nothing tracked changes
			elsif ($c < 0.5) { $region = ('eu', 'us', 'apac')[ int(rand(3)) ]; }    # type 1
			elsif ($c < 0.8) { $tier = $tiers[ int(rand(3)) ]; }
			else { $name = "c$id-" . int(rand(1000)); }
		}
		$live = $kind eq 'upsert';
		push @log, { id => $id, t => $t, kind => $kind, name => $name, tier => $tier, region => $region };
	}
}
my $n_messages = scalar @log;
my %kinds;
$kinds{ $_->{kind} }++ for @log;
note "change log: $n_messages messages, "
  . join(', ', map { "$kinds{$_} ${_}s" } sort keys %kinds);

sub ts
{
	my ($t) = @_;
	my @g = gmtime($t);
	return sprintf('%04d-%02d-%02dT%02d:%02d:%02dZ', $g[5] + 1900, $g[4] + 1, @g[ 3, 2, 1, 0 ]);
}

sub line
{
	my ($e) = @_;
	# the message's timestamp is the time of the change, as the column says
	return "$e->{t}000\t$e->{id}\t\\null" if $e->{kind} eq 'tombstone';
	return sprintf(qq{%d000\t%d\t{"name":"%s","tier":"%s","region":"%s","changed":"%s","deleted":%s}},
		$e->{t}, $e->{id}, $e->{name}, $e->{tier}, $e->{region}, ts($e->{t}),
		$e->{kind} eq 'delete' ? 'true' : 'false');
}

my $dir = $node->basedir . '/messages';
mkdir $dir or die;
sub produce
{
	my ($topic, $name, @events) = @_;
	open my $f, '>', "$dir/$name" or die;
	print $f line($_), "\n" for @events;
	close $f;
	is(kafka_command($kafka, "produce $topic $dir/$name timed"), 'produced ' . scalar(@events),
		"$name produced");
}

# the log, as a table, for the reference
open my $csv, '>', "$dir/log.csv" or die;
for my $e (@log)
{
	print $csv join(',', $e->{id}, ts($e->{t}), $e->{kind} eq 'upsert' ? 'f' : 't',
		$e->{name}, $e->{tier}, $e->{region}), "\n";
}
close $csv;
$node->safe_psql('postgres', "COPY change_log FROM '$dir/log.csv' (FORMAT csv)");

# in order: sorted by time
produce('ordered', 'ordered', sort { $a->{t} <=> $b->{t} || $a->{id} <=> $b->{id} } @log);

# shuffled, in four chunks; after each but the first, the worker is killed
# once it has consumed the chunk but before it flushed it (a long flush
# interval around the kills)
my @shuffled = shuffle(@log);
my $chunk = int(@shuffled / 4) + 1;
my $kills = 0;
my $worker = q{SELECT pid || ' ' || changes FROM flowstate.sources
                WHERE source = 'customers_shuffled (worker 0)' AND state = 'running' AND pid IS NOT NULL};
my $offsets = q{SELECT coalesce(sum(next_offset), 0) FROM flowstate.history_offsets o
                  JOIN flowstate.history h USING (history_id) WHERE h.history = 'h_shuffled'::regclass};
for my $c (0 .. 3)
{
	my @part = grep { defined } @shuffled[ $c * $chunk .. ($c + 1) * $chunk - 1 ];
	if ($c == 0)
	{
		produce('shuffled', "shuffled$c", @part);
		next;
	}
	set_flush_interval($node, '10s');
	ok($node->safe_psql('postgres', "SELECT flowstate.wait_for(timeout => '60 s')") eq 't',
		"chunk $c: the history has what came before");
	my ($pid, $changes);
	wait_until(30, sub { ($pid, $changes) = split / /, $node->safe_psql('postgres', $worker); defined $changes });
	my $before = $node->safe_psql('postgres', $offsets);
	produce('shuffled', "shuffled$c", @part);
	my $consumed = wait_until(30, sub {
		my ($p, $n) = split / /, $node->safe_psql('postgres', $worker);
		return defined $n && $p == $pid && $n >= $changes + @part;
	});
	if (defined $consumed && $node->safe_psql('postgres', $offsets) == $before)
	{
		kill 'KILL', $pid;
		$kills++;
		$node->poll_query_until('postgres', 'SELECT true', 't');
	}
	set_flush_interval($node, undef);
}
cmp_ok($kills, '>=', 2, 'the worker was killed holding unflushed messages');

# a message whose key is missing is a dead letter, with the history's reason
open my $bad, '>', "$dir/bad" or die;
print $bad qq({"name":"x","tier":"gold","region":"eu","changed":"2030-01-01T00:00:00Z","deleted":false}\n);
close $bad;
is(kafka_command($kafka, "produce shuffled $dir/bad keyed"), 'produced 1', 'keyless message produced');

ok($node->safe_psql('postgres', "SELECT flowstate.wait_for(timeout => '120 s')") eq 't',
	'wait_for returns once the histories have every message');
is($node->safe_psql('postgres', q{
	SELECT string_agg(history::text || ' ' || status || coalesce(' ' || last_error, ''), ', ' ORDER BY history::text)
	  FROM flowstate.histories}),
	'h_ordered running, h_shuffled running, t_ordered running, t_shuffled running',
	'every history running');

# the reference: versions folded from the log
my $reference = q{
WITH e AS (
    SELECT *, lag(is_delete) OVER w AS prev_delete,
           lag(name) OVER w AS prev_name, lag(tier) OVER w AS prev_tier,
           row_number() OVER w AS n
      FROM change_log WINDOW w AS (PARTITION BY id ORDER BY changed)
), bounds AS (
    -- where a version begins, and the deletes that end one
    SELECT id, changed, is_delete, name, tier
      FROM e
     WHERE is_delete
        OR n = 1 OR prev_delete OR (name, tier) IS DISTINCT FROM (prev_name, prev_tier)
), versions AS (
    SELECT id, name, tier, changed AS valid_from,
           coalesce(lead(changed) OVER (PARTITION BY id ORDER BY changed), 'infinity') AS valid_to,
           is_delete
      FROM bounds
)
SELECT v.id, v.name, v.tier,
       (SELECT l.region FROM change_log l WHERE l.id = v.id AND NOT l.is_delete
         ORDER BY l.changed DESC LIMIT 1) AS region,
       v.valid_from, v.valid_to, v.valid_to = 'infinity' AS is_current,
       row_number() OVER (PARTITION BY v.id ORDER BY v.valid_from)::int AS version
  FROM versions v
 WHERE NOT v.is_delete
};
my $columns = 'id, name, tier, region, valid_from, valid_to, is_current, version';

# the view joining the shuffled history: its late versions re-aggregated
# the events they cover
is(differences($node, 'postgres', 'by_tier'), 0, 'a view joining the history by time equals its batch query');
cmp_ok($node->safe_psql('postgres', q{SELECT recomputed_groups FROM flowstate.views WHERE view = 'by_tier'::regclass}),
	'>', 0, 'the versions of the history recomputed its groups');
cmp_ok($node->safe_psql('postgres', q{
	SELECT count(*) FROM events e JOIN h_shuffled h
	    ON h.id = e.cid AND h.valid_from <= e.at AND e.at < h.valid_to WHERE NOT h.is_current}),
	'>', 1000, 'events joined versions that are no longer current');
for my $h ('h_ordered', 'h_shuffled')
{
	is($node->safe_psql('postgres', qq{
		SELECT count(*) FROM (
			(SELECT $columns FROM $h EXCEPT ALL SELECT * FROM ($reference) r)
			UNION ALL
			(SELECT * FROM ($reference) r EXCEPT ALL SELECT $columns FROM $h)) d}),
		'0', "$h equals the reference folded from the change log")
	  or diag($node->safe_psql('postgres', qq{
		WITH d AS ((SELECT 'history' AS side, $columns FROM $h EXCEPT ALL SELECT 'history', * FROM ($reference) r)
		           UNION ALL
		           (SELECT 'reference', * FROM ($reference) r EXCEPT ALL SELECT 'reference', $columns FROM $h))
		SELECT d.*, (SELECT string_agg(changed_at || ' ' || is_delete || ' ' || tier || ' ' || name, '; ' ORDER BY changed_at)
		               FROM ${h}_changes c WHERE c.id = d.id) AS messages
		  FROM d WHERE id = (SELECT min(id) FROM d) ORDER BY side, valid_from}));
}
my $stats = $node->safe_psql('postgres', q{
	SELECT count(*) || ' versions, ' || count(DISTINCT id) FILTER (WHERE version >= 3) || ' keys with 3 or more, '
	       || count(*) FILTER (WHERE NOT is_current AND valid_to <> 'infinity') || ' closed'
	  FROM h_ordered});
note "h_ordered: $stats";
my ($versions) = $stats =~ /^(\d+)/;
cmp_ok($versions, '>', 1000, 'the history has many versions');

# tombstones: the shuffled history equals the ordered one
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
		(SELECT * FROM t_ordered EXCEPT ALL SELECT * FROM t_shuffled)
		UNION ALL
		(SELECT * FROM t_shuffled EXCEPT ALL SELECT * FROM t_ordered)) d}),
	'0', 'with tombstones, shuffled equals in order');
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM t_ordered WHERE is_deleted'), '>', 50,
	'tombstone versions were written');

# versions of a key never overlap, and follow each other
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM h_shuffled a JOIN h_shuffled b
	    ON a.id = b.id AND a.version < b.version
	   AND a.valid_from < b.valid_to AND b.valid_from < a.valid_to}),
	'0', 'no two versions of a key overlap');

# the messages are kept once each: none twice after the kills
is($node->safe_psql('postgres', 'SELECT count(*) FROM h_shuffled_changes'), $n_messages,
	'each message kept exactly once');

# the keyless message
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM flowstate.dead_letters
	 WHERE error LIKE 'history %: key column "id" of the message is null'}),
	'1', 'a message without key is a dead letter of the history');

# drop_history removes the changes table with it
$node->safe_psql('postgres', "SELECT flowstate.drop_view('by_tier')");
$node->safe_psql('postgres', "SELECT flowstate.drop_history('h_shuffled')");
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_class WHERE relname LIKE 'h_shuffled%'}),
	'0', 'drop_history drops the history, its view and its changes');

$node->stop;
$kafka->{h}->kill_kill;
done_testing();
