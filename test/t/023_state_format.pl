# A state that cannot be read stops only its view: a state whose bytes were
# changed (its checksum), a state written for another layout (copied from
# another view's table: its fingerprint), read when the worker starts or
# when a group is read back on demand, over a table or a Kafka stream, make
# that view report the error in flowstate.views and fail its reads, while
# the worker and the other views go on.  Dropped and created again, the
# view is exact again.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FlowstateNode;

my $kafka = kafka_start();
is(kafka_command($kafka, 'topic clicks 4'), 'ok', 'the mock cluster has a topic');

my $node = new_node('state_format', qq{
flowstate.flush_interval = 200ms
});
$node->start;

# view_sql(name): the defining query of each view
my %view_sql = (
	corrupt => q{SELECT k, count(*) AS n, sum(x) AS total, max(note) AS top FROM events GROUP BY k},
	other => q{SELECT k, count(*) AS n, min(x) AS low FROM events GROUP BY k},
	alien => q{SELECT k, count(*) AS n, avg(x) AS mean FROM events GROUP BY k},
	ondemand => q{SELECT g, count(*) AS n, max(note) AS top FROM events GROUP BY g},
	clicks_bad => q{SELECT u, count(*) AS n, sum(v) AS total FROM clicks GROUP BY u},
	clicks_good => q{SELECT u, count(*) AS n, max(v) AS top FROM clicks GROUP BY u});

sub create_view
{
	my ($name) = @_;
	my $limit = $name eq 'ondemand' ? q{, memory_limit => '1MB'} : '';
	$node->safe_psql('postgres', qq{
		SELECT flowstate.create_view('$name', \$\$ $view_sql{$name} \$\$ $limit)});
}

$node->safe_psql('postgres', q{
CREATE EXTENSION flowstate;
CREATE TABLE events (id bigserial PRIMARY KEY, k int, g int, x float8, note text);
ALTER TABLE events REPLICA IDENTITY FULL;
INSERT INTO events (k, g, x, note)
SELECT i % 10, i, i * 0.5, 'n' || (i % 97) FROM generate_series(1, 20000) i;
});
create_view($_) for qw(corrupt other alien ondemand);

# a stream read by two workers, with two views
$node->safe_psql('postgres', qq{
CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers '$kafka->{bootstrap}');
CREATE FOREIGN TABLE clicks (u int, v int) SERVER kafka OPTIONS (topic 'clicks', format 'json', workers '2');
});
create_view($_) for qw(clicks_bad clicks_good);
my $dir = $node->basedir . '/messages';
mkdir $dir or die;
# produce(name, from, to): messages {"u": i % 7, "v": i} for i in from..to
sub produce
{
	my ($name, $from, $to) = @_;
	open my $f, '>', "$dir/$name.json" or die;
	print $f qq({"u":@{[$_ % 7]},"v":$_}\n) for $from .. $to;
	close $f;
	return kafka_command($kafka, "produce clicks $dir/$name.json");
}
# clicks(view, n): the view counts n messages, within 180 s
sub clicks
{
	my ($name, $n) = @_;
	return $node->poll_query_until('postgres', "SELECT coalesce(sum(n), 0) = $n FROM $name");
}
is(produce('first', 1, 1000), 'produced 1000', 'messages produced');
ok(clicks($_, 1000), "$_ counts every message") for qw(clicks_bad clicks_good);
install_oracle($node, 'postgres');
is(differences($node, 'postgres', $_), '0', "$_ equals its batch query") for qw(corrupt other alien ondemand);

# every group is in its state table
my %groups = (corrupt => 10, other => 10, alien => 10, ondemand => 20000,
	clicks_bad => 7, clicks_good => 7);
for my $name (sort keys %groups)
{
	my $table = state_table($node, 'postgres', $name);
	ok($node->poll_query_until('postgres', "SELECT count(*) = $groups{$name} FROM $table"),
		"$name is in its state table");
}

# read_error(view): the error a read of the view raises, or 'ok'
sub read_error
{
	my ($name) = @_;
	my ($stdout, $stderr);
	$node->psql('postgres', "SELECT count(*) FROM $name", stdout => \$stdout, stderr => \$stderr);
	my ($error) = $stderr =~ /ERROR:\s+(.*)/;
	my ($hint) = $stderr =~ /HINT:\s+(.*)/;
	return defined $error ? "$error | $hint" : 'ok';
}

# one byte of one state of "corrupt" changed, one state of "alien"
# replaced by a state of "other"; neither group changes before the restart
my $corrupt_table = state_table($node, 'postgres', 'corrupt');
my $alien_table = state_table($node, 'postgres', 'alien');
my $other_table = state_table($node, 'postgres', 'other');
$node->safe_psql('postgres', qq{
	UPDATE $corrupt_table SET state = set_byte(state, 12, get_byte(state, 12) # 1)
	 WHERE gid = (SELECT min(gid) FROM $corrupt_table);
	UPDATE $alien_table SET state = (SELECT state FROM $other_table ORDER BY gid LIMIT 1)
	 WHERE gid = (SELECT min(gid) FROM $alien_table);
});
my $clicks_table = state_table($node, 'postgres', 'clicks_bad');
$node->safe_psql('postgres', qq{
	UPDATE $clicks_table SET state = set_byte(state, 30, get_byte(state, 30) # 128)
	 WHERE gid = (SELECT max(gid) FROM $clicks_table);
});
$node->restart;

ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 3 FROM flowstate.views WHERE status = 'running'}), 'the other views run');
ok($node->poll_query_until('postgres', q{
	SELECT status = 'error' FROM flowstate.views WHERE view = 'clicks_bad'::regclass}),
	'the view over the stream with a corrupt state stops');
like(view_status($node, 'postgres', 'clicks_bad'),
	qr/^error \/ state of continuous view "public.clicks_bad" cannot be read: its checksum does not match its bytes$/,
	'flowstate.views says why');
is(produce('second', 1001, 2000), 'produced 1000', 'more messages produced');
ok(clicks('clicks_good', 2000), 'the other view over the stream counts them');
like(read_error('clicks_bad'), qr/^state of continuous view "public.clicks_bad" cannot be read/,
	'reads of the view over the stream fail');
like(view_status($node, 'postgres', 'corrupt'), qr/^error \/ state of continuous view "public.corrupt" cannot be read: its checksum does not match its bytes$/,
	'flowstate.views shows the corrupt state');
like(view_status($node, 'postgres', 'alien'),
	qr/^error \/ state of continuous view "public.alien" cannot be read: it was written for another layout \(fingerprint [0-9a-f]{8}, the view's is [0-9a-f]{8}\)$/,
	'flowstate.views shows the state of another layout');
like(read_error('corrupt'), qr/^state of continuous view "public.corrupt" cannot be read: its checksum does not match its bytes \| Drop the continuous view with flowstate.drop_view\(\) and create it again.$/,
	'reads of the corrupt view fail, with a hint');
like(read_error('alien'), qr/cannot be read: it was written for another layout/, 'reads of the other layout\'s view fail');
like(slurp_file($node->logfile), qr/WARNING:  state of continuous view "public.corrupt" cannot be read/,
	'the worker logs it');

my $decoder = decoder_pid($node, 'postgres');

# on demand: a group of "ondemand" that is not in shared memory is corrupt
# (the last row of its table: loading at start stopped before it); a change
# of that group reads it back and stops the view, not the worker
ok($node->safe_psql('postgres', q{
	SELECT groups_in_memory < groups FROM flowstate.views WHERE view = 'ondemand'::regclass}) eq 't',
	'ondemand keeps most groups in its state table only');
my $ondemand_table = state_table($node, 'postgres', 'ondemand');
my $g = $node->safe_psql('postgres', qq{
	UPDATE $ondemand_table SET state = set_byte(state, 20, get_byte(state, 20) # 16)
	 WHERE ctid = (SELECT max(ctid) FROM $ondemand_table) RETURNING k1});
ok($g ne '', "group $g of ondemand corrupted");
$node->safe_psql('postgres', qq{INSERT INTO events (k, g, x, note) VALUES (1, $g, 1, 'late')});
ok($node->poll_query_until('postgres', q{
	SELECT status = 'error' FROM flowstate.views WHERE view = 'ondemand'::regclass}),
	'reading the group back stops ondemand');
like(view_status($node, 'postgres', 'ondemand'), qr/^error \/ state of continuous view "public.ondemand" cannot be read: its checksum does not match its bytes$/,
	'flowstate.views says why');

# the worker and the other views go on
$node->safe_psql('postgres', q{
	INSERT INTO events (k, g, x, note) SELECT i % 10, i, i * 0.5, 'm' || i FROM generate_series(20001, 20100) i;
	UPDATE events SET x = x + 1 WHERE id % 1000 = 0;});
is(differences($node, 'postgres', 'other'), '0', 'other counts the new rows');
is($node->safe_psql('postgres', q{SELECT sum(n) FROM other}), '20101', 'other has every row');
is(decoder_pid($node, 'postgres'), $decoder, 'the decoding worker went on');
like(view_status($node, 'postgres', 'corrupt'), qr/^error \//, 'corrupt stays in error');

# dropped and created again, each view is exact again
for my $name (qw(alien corrupt ondemand clicks_bad))
{
	$node->safe_psql('postgres', qq{SELECT flowstate.drop_view('$name')});
	create_view($name);
}
is(differences($node, 'postgres', $_), '0', "$_ created again equals its batch query") for qw(alien corrupt ondemand other);
ok(clicks($_, 2000), "$_ counts every message") for qw(clicks_bad clicks_good);
is($node->safe_psql('postgres', q{
	SELECT string_agg(status, ',' ORDER BY view::text) FROM flowstate.views}),
	'running,running,running,running,running,running', 'every view runs');
$node->restart;
is(differences($node, 'postgres', $_), '0', "$_ exact after a restart") for qw(alien corrupt ondemand other);
ok(clicks($_, 2000), "$_ exact after a restart") for qw(clicks_bad clicks_good);
is($node->safe_psql('postgres', q{
	SELECT string_agg(status, ',' ORDER BY view::text) FROM flowstate.views}),
	'running,running,running,running,running,running', 'every view reads its state back');

$node->stop;
done_testing();
