# Bad input never stops a Kafka worker and never vanishes: each kind of
# malformed message lands in flowstate.dead_letters with its reason, once,
# also when the worker consumes it again after a crash; the valid messages
# around them are all counted.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FlowstateNode;

my $kafka = kafka_start();
kafka_command($kafka, 'topic clicks 4');
kafka_command($kafka, 'topic lines 2');
kafka_command($kafka, 'topic numbers 1');

# a long flush interval: the crash below comes before the offsets are flushed
my $node = new_node('kafka_dead_letters', qq{
restart_after_crash = on
flowstate.flush_interval = 30s
});
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION flowstate;
CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers '$kafka->{bootstrap}');
CREATE FOREIGN TABLE clicks (
    ts      timestamptz NOT NULL,
    user_id int OPTIONS (field 'user') NOT NULL,
    ms      float4,
    page    varchar(8),
    tags    jsonb)
  SERVER kafka OPTIONS (topic 'clicks', format 'json');
CREATE FOREIGN TABLE lines (id int NOT NULL, amount numeric, note text)
  SERVER kafka OPTIONS (topic 'lines', format 'csv', delimiter ';');
SELECT flowstate.create_view('clicks_per_user', \$\$
    SELECT user_id, count(*) AS n, sum(ms) AS ms, count(tags) AS tagged
      FROM clicks GROUP BY user_id \$\$);
-- a view whose own expression fails on some rows
SELECT flowstate.create_view('ms_ratio', \$\$
    SELECT user_id, sum(1000 / ms) AS inverse FROM clicks GROUP BY user_id \$\$);
SELECT flowstate.create_view('line_totals', \$\$
    SELECT count(*) AS n, sum(amount) AS total FROM lines \$\$);
});

my $good = '{"ts":"2026-01-01T10:00:00Z","user":1,"ms":5,"page":"/a","tags":{"x":1}}';
# each malformed message, and the start of the reason it gets
my @bad = (
	[ 'not json at all',                                   'the message is not a JSON object' ],
	[ '[1, 2, 3]',                                         'the message is not a JSON object' ],
	[ '{"ts":"2026-01-01T10:00:00Z","user":1',             'the message is not valid JSON' ],
	[ '{"ts":"2026-01-01T10:00:00Z","user":1} trailing',   'the message is not valid JSON' ],
	[ '{"user":1,"ms":5}',                                 'field "ts" of NOT NULL column "ts" is missing or null' ],
	[ '{"ts":null,"user":1}',                              'field "ts" of NOT NULL column "ts" is missing or null' ],
	[ '{"ts":"yesterday at noon","user":1}',               'invalid input syntax for type timestamp with time zone' ],
	[ '{"ts":"2026-01-01T10:00:00Z","user":"one"}',        'invalid value "one" for integer column "user_id"' ],
	[ '{"ts":"2026-01-01T10:00:00Z","user":99999999999}',  'value "99999999999" is out of range for column "user_id"' ],
	[ '{"ts":"2026-01-01T10:00:00Z","user":1,"ms":1e50}',  '"1e50" is out of range for type real' ],
	[ '{"ts":"2026-01-01T10:00:00Z","user":1,"page":"/far/too/long"}', 'value too long for type character varying(8)' ],
	[ '{"ts":"2026-01-01T10:00:00Z","user":1,"tags":"{oops"}', 'invalid input syntax for type json' ],
	[ '{"ts":"2026-01-01T10:00:00Z","user":{"id":1}}',     'column "user_id" cannot take a JSON object' ],
	[ '{"ts":"2026-01-01T10:00:00Z","user":1,"page":"\x"}', 'the message has an invalid string escape' ],
	[ '\null',                                             'the message has no value' ],
);
my $dir = $node->basedir . '/messages';
mkdir $dir or die;
open my $f, '>', "$dir/clicks.json" or die;
my $n_good = 0;
for my $b (@bad)
{
	print $f "$good\n" for 1 .. 3;
	$n_good += 3;
	print $f "$b->[0]\n";
}
# invalid UTF-8, and a row the ms_ratio view cannot divide by
print $f qq({"ts":"2026-01-01T10:00:00Z","user":2,"page":"\xff\xfe"}\n);
print $f qq({"ts":"2026-01-01T10:00:00Z","user":3,"ms":0}\n);
print $f "$good\n" for 1 .. 3;
$n_good += 4;
close $f;
my $n_bad = @bad + 1;

open $f, '>', "$dir/lines.csv" or die;
print $f "1;10.5;first\n";
print $f "2;\"quoted; with delimiter\";x\n";      # numeric from quoted text: fails
print $f "3;2.25;\"said \"\"hi\"\"\"\n";
print $f "4;1;\"unclosed\n";
print $f ";5;missing id\n";
print $f "5;abc;not a number\n";
print $f "6;\"7\"x;text after the quote\n";
print $f "\n";
close $f;

is(kafka_command($kafka, "produce clicks $dir/clicks.json"), 'produced ' . ($n_good + $n_bad),
	'messages produced');
is(kafka_command($kafka, "produce lines $dir/lines.csv"), 'produced 8', 'CSV messages produced');
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't',
	'the views consumed them');

sub check
{
	my ($when) = @_;
	is($node->safe_psql('postgres', 'SELECT sum(n) FROM clicks_per_user'), $n_good,
		"$when: every valid message is counted once");
	is($node->safe_psql('postgres', q{
		SELECT count(*) FROM flowstate.dead_letters WHERE source = 'clicks'::regclass AND view IS NULL}),
		$n_bad, "$when: each malformed message is one dead letter");
	for my $b (@bad)
	{
		my $payload = $b->[0] eq '\null' ? undef : $b->[0];
		my $got = $node->safe_psql('postgres', qq{
			SELECT string_agg(error, ' / ') FROM flowstate.dead_letters
			 WHERE view IS NULL AND payload IS NOT DISTINCT FROM } .
			(defined $payload ? $node->safe_psql('postgres', "SELECT quote_literal(\$x\$$payload\$x\$)") : 'NULL'));
		like($got, qr/^\Q$b->[1]\E/, "$when: " . ($payload // 'a message without a value') . " => $b->[1]");
	}
	is($node->safe_psql('postgres', q{
		SELECT payload || ' | ' || error FROM flowstate.dead_letters
		 WHERE view IS NULL AND left(payload, 2) = '\x'}),
		'\x7b227473223a22323032362d30312d30315431303a30303a30305a222c2275736572223a322c2270616765223a22fffe227d | the message is not valid UTF-8',
		"$when: a message that is not UTF-8 is kept as its bytes");
	is($node->safe_psql('postgres', q{
		SELECT count(*) || ' ' || min(error) || ' ' || min(sqlstate) FROM flowstate.dead_letters
		 WHERE view = 'ms_ratio'::regclass}),
		'1 division by zero 22012', "$when: a row a view's expression fails on is that view's dead letter");
	is($node->safe_psql('postgres', q{SELECT n || ' ' || total FROM line_totals}), '2 12.75',
		"$when: the valid CSV lines are counted");
	is($node->safe_psql('postgres', q{
		SELECT string_agg(coalesce(payload, '') || ' => ' || error, E'\n' ORDER BY "offset", "partition")
		  FROM flowstate.dead_letters WHERE source = 'lines'::regclass}),
		join("\n",
			'2;"quoted; with delimiter";x => invalid input syntax for type numeric: "quoted; with delimiter"',
			'4;1;"unclosed => field 3 has an unclosed quote',
			';5;missing id => field 1 of NOT NULL column "id" is missing or empty',
			'5;abc;not a number => invalid input syntax for type numeric: "abc"',
			'6;"7"x;text after the quote => field 2 has text after its closing quote',
			' => field 1 of NOT NULL column "id" is missing or empty'),
		"$when: each malformed CSV line is a dead letter with its reason");
}
check('consumed');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM flowstate.sources WHERE kind = 'kafka' AND state = 'running'}), '2',
	'the workers kept running');

# a crash before the offsets are flushed: everything is consumed again.  At
# the kill, the view shows every valid message while the durable offsets of
# its partitions cover fewer messages than the topic holds.  (Reading the
# dead letters above may have flushed the views: three more valid messages,
# applied but not flushed, make sure something is not durable.)
open $f, '>', "$dir/more.json" or die;
print $f "$good\n" for 1 .. 3;
close $f;
$n_good += 3;
is(kafka_command($kafka, "produce clicks $dir/more.json"), 'produced 3', 'more messages produced');
ok(defined wait_until(30, sub {
	$node->safe_psql('postgres', 'SELECT sum(n) FROM clicks_per_user') == $n_good }),
	'they were applied');
my $log_offset = -s $node->logfile;
my $sample = kill9_sampled($node, 'postgres', q{
	SELECT s.pid, (SELECT sum(n) FROM clicks_per_user) || ' applied, ' ||
	       (SELECT coalesce(sum(next_offset), 0) FROM flowstate.stream_offsets o
	          JOIN flowstate.view v USING (view_id) WHERE v.view = 'clicks_per_user'::regclass) || ' durable'
	  FROM flowstate.sources s WHERE s.kind = 'kafka' AND s.source LIKE 'clicks %'});
note("at the kill: $sample");
my ($applied, $durable) = ($sample // '') =~ /^(\d+) applied, (\d+) durable$/;
ok(defined $durable && $applied == $n_good && $durable < $n_good + $n_bad,
	'the kill came before the offsets of all the messages applied were flushed');
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
like(slurp_file($node->logfile, $log_offset),
	qr/background worker "flowstate kafka" \(PID \d+\) was terminated by signal 9/,
	'the Kafka worker was killed');
ok(defined wait_until(30, sub { my @p = eval { kafka_pids($node, 'postgres') }; @p == 2 }),
	'the workers are back after kill -9');
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't',
	'they consumed the messages again');
check('consumed again after a crash');

# numbers convert exactly as PostgreSQL's input functions convert them
# (the decoder's fast path included): the view equals its batch query
my @numbers = qw(0 -0 1 -1 0.1 0.2 0.30000000000000004 2.675 4.35 1e22 1e23 1e-22 1e-23
	9007199254740992 9007199254740993 123456789012345678 1234567890123456789012
	0.000001 123.456e-7 1.7976931348623157e308 2.2250738585072014e-308 5e-324
	3.4028234e38 1.17549435e-38 16777217 0.333333333333333314829616256247);
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE numbers (d float8, r real, n numeric, b bigint) SERVER kafka
	    OPTIONS (topic 'numbers', format 'json');
	CREATE TABLE numbers_batch (t text, tr text);
	SELECT flowstate.create_view('number_counts',
	    'SELECT d, r, n, count(*) AS c FROM numbers GROUP BY 1, 2, 3');});
open $f, '>', "$dir/numbers.json" or die;
for my $x (@numbers)
{
	# real takes those within its range
	my $r = (abs($x) < 3.5e38 && ($x == 0 || abs($x) > 1e-40)) ? $x : undef;
	print $f qq({"d":$x,"n":$x) . (defined $r ? qq(,"r":$r) : '') . "}\n";
	$node->safe_psql('postgres', "INSERT INTO numbers_batch VALUES ('$x', " .
		(defined $r ? "'$r'" : 'NULL') . ")");
}
close $f;
is(kafka_command($kafka, "produce numbers $dir/numbers.json"), 'produced ' . scalar(@numbers),
	'numbers produced');
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't',
	'the numbers were consumed');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM ((TABLE number_counts EXCEPT ALL
	                       SELECT t::float8, tr::real, t::numeric, count(*) FROM numbers_batch GROUP BY 1, 2, 3)
	          UNION ALL (SELECT t::float8, tr::real, t::numeric, count(*) FROM numbers_batch GROUP BY 1, 2, 3
	                     EXCEPT ALL TABLE number_counts)) d}),
	'0', 'float8, real and numeric columns get the values their input functions give');
is($node->safe_psql('postgres', q{SELECT count(*) FROM flowstate.dead_letters WHERE source = 'numbers'::regclass}),
	'0', 'no number was refused');

# a stream cannot take a message back: one that would make a float sum
# overflow is refused whole, as that view's dead letter, and the view goes
# on with the others (the rows its batch query would sum without error)
kafka_command($kafka, 'topic amounts 1');
$node->safe_psql('postgres', q{
	CREATE FOREIGN TABLE amounts (k int, x float8) SERVER kafka
	    OPTIONS (topic 'amounts', format 'json');
	SELECT flowstate.create_view('amount_sums',
	    'SELECT k, count(*) AS n, sum(x) AS total, avg(x) AS mean FROM amounts GROUP BY k');});
open $f, '>', "$dir/amounts.json" or die;
print $f qq({"k":1,"x":$_}\n) for qw(1e308 1e308 -1e307);
print $f qq({"k":2,"x":$_}\n) for qw(1 2 3);
close $f;
is(kafka_command($kafka, "produce amounts $dir/amounts.json"), 'produced 6', 'amounts produced');
is($node->safe_psql('postgres', q{SELECT flowstate.wait_for(timeout => '60s')}), 't',
	'the amounts were consumed');
is($node->safe_psql('postgres', q{SELECT string_agg(k || ' ' || n || ' ' || total, ', ' ORDER BY k) FROM amount_sums}),
	'1 2 9e+307, 2 3 6', 'the message that would overflow is not counted, the others are');
is($node->safe_psql('postgres', q{
	SELECT string_agg(payload || ' ' || sqlstate || ' ' || error, E'\n') FROM flowstate.dead_letters
	 WHERE view = 'amount_sums'::regclass}),
	'{"k": 1, "x": 1e+308} 22003 value out of range: overflow', 'it is the view\'s dead letter');
is($node->safe_psql('postgres', q{
	SELECT status || ' ' || failed_rows FROM flowstate.views WHERE view = 'amount_sums'::regclass}),
	'running 1', 'the view keeps running, one row refused');

$node->stop;
$kafka->{h}->kill_kill;
done_testing();
