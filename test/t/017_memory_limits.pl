# Memory limits hold.  Views of 1 MB and 32 MB take 2,000,000 groups, fed
# in transactions of 5,000 rows, then a view of 1 MB is backfilled over
# them: sampled all along, a view's shared memory stays within twice its
# limit, its status says "over memory limit" exactly when it holds more than
# its limit, another database's view stays fresh, and every view equals its
# batch query at the end.  Then a long snapshot keeps a view from evicting
# while flowstate.memory_limit runs out: decoding pauses and says so, and
# resumes when the snapshot ends.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use FlowstateNode;

my $node = new_node('memory_limits', qq{
flowstate.flush_interval = 200ms
flowstate.memory_limit = 96MB
shared_buffers = 128MB
max_wal_size = 2GB
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE other');
for my $db ('postgres', 'other')
{
	$node->safe_psql($db, 'CREATE EXTENSION flowstate');
	install_oracle($node, $db);
}
$node->safe_psql('postgres', q{
CREATE TABLE events (id bigserial PRIMARY KEY, k int NOT NULL, v int NOT NULL);
ALTER TABLE events REPLICA IDENTITY FULL;
SELECT flowstate.create_view('per_key_1mb', $$
    SELECT k, count(*) AS n, sum(v) AS total FROM events GROUP BY k $$, memory_limit => '1MB');
SELECT flowstate.create_view('per_key_32mb', $$
    SELECT k, count(*) AS n, max(v) AS top FROM events GROUP BY k $$, memory_limit => '32MB');
CREATE PROCEDURE load(batches int, size int) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 0 .. batches - 1 LOOP
        INSERT INTO events (k, v)
        SELECT g, g % 97 FROM generate_series(i * size + 1, (i + 1) * size) g;
        COMMIT;
    END LOOP;
END $$;
CREATE PROCEDURE touch(batches int) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 0 .. batches - 1 LOOP
        UPDATE events SET v = v + 1 WHERE id % 400 = i;
        COMMIT;
    END LOOP;
END $$;
});
$node->safe_psql('other', q{
CREATE TABLE ticks (id serial PRIMARY KEY, g int NOT NULL);
ALTER TABLE ticks REPLICA IDENTITY FULL;
SELECT flowstate.create_view('per_g', 'SELECT g, count(*) AS n FROM ticks GROUP BY g');
});
$node->safe_psql('postgres', 'SELECT flowstate.wait_for()');

my %limit = (per_key_1mb => 1024 * 1024, per_key_32mb => 32 * 1024 * 1024,
	backfilled_1mb => 1024 * 1024);
my (%peak, %untrue, $samples, $probes, $stale_probes);

# sample the views' memory and status while psql runs statements in the
# background, each in a transaction of its own
sub sample_while
{
	my @statements = @_;
	my ($out, $err) = ('', '');
	my $sql = join('; ', @statements);
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
		  map { ('-c', $_) } @statements ],
		'>', \$out, '2>', \$err);
	my $last_probe = 0;
	while ($h->pumpable)
	{
		for my $row (split /\n/, $node->safe_psql('postgres', q{
			SELECT view::text || ' ' || memory_bytes || ' ' || memory_limit || ' ' || status
			  FROM flowstate.views WHERE memory_bytes IS NOT NULL}))
		{
			my ($view, $bytes, $limit, $status) = split / /, $row, 4;
			$samples++;
			$peak{$view} = $bytes if !defined $peak{$view} || $bytes > $peak{$view};
			$untrue{$view}++
			  if $status =~ /^(running|over memory limit)$/
			  && (($bytes > $limit) != ($status eq 'over memory limit'));
		}
		if (time - $last_probe > 2)
		{
			# the other database's view follows its table meanwhile
			$probes++;
			$stale_probes++ unless $node->safe_psql('other', q{
				INSERT INTO ticks (g) SELECT g FROM generate_series(1, 10) g;
				SELECT flowstate.wait_for(timeout => '20s')}) eq 't';
			$last_probe = time;
		}
		usleep(20_000);
		$h->pump_nb;
	}
	ok($h->finish, "ran: $sql") or diag($err);
}

sample_while('CALL load(400, 5000)', q{SELECT flowstate.wait_for(timeout => '300s')});
sample_while('CALL touch(20)', q{SELECT flowstate.wait_for(timeout => '300s')});
$node->safe_psql('postgres', q{
SELECT flowstate.create_view('backfilled_1mb', $$
    SELECT k, count(*) AS n, min(v) AS low FROM events GROUP BY k $$, memory_limit => '1MB')});
sample_while(q{SELECT flowstate.wait_for(timeout => '300s')});

note("samples: $samples; probes of the other database: $probes");
for my $view (sort keys %limit)
{
	note("$view: peak $peak{$view} bytes, limit $limit{$view}");
	cmp_ok($peak{$view}, '<=', 2 * $limit{$view}, "$view stays within twice its memory limit");
	is($untrue{$view} // 0, 0, "$view: its status says whether it is over its limit");
}
is($node->safe_psql('postgres', q{
	SELECT string_agg(view || '=' || groups, ' ' ORDER BY view::text) FROM flowstate.views}),
	'backfilled_1mb=2000000 per_key_1mb=2000000 per_key_32mb=2000000',
	'every view has its 2,000,000 groups');
cmp_ok($node->safe_psql('postgres', q{
	SELECT max(groups_in_memory) FROM flowstate.views WHERE memory_limit = 1024 * 1024}),
	'<', 100000, 'views of 1 MB keep a small part of their groups in memory');
cmp_ok($probes, '>=', 3, 'the other database was probed while the load ran');
is($stale_probes // 0, 0, "the other database's view never fell behind meanwhile");
for my $view (sort keys %limit)
{
	is(differences($node, 'postgres', $view), '0', "$view equals its batch query");
}
is(differences($node, 'other', 'per_g'), '0', "the other database's view equals its batch query");

# --- a paused decoder says so ---
# a snapshot older than every flush keeps flushed groups in memory; with
# little memory for the server, decoding pauses
$node->safe_psql('postgres', q{
SELECT flowstate.drop_view('per_key_32mb');
SELECT flowstate.drop_view('backfilled_1mb');
CREATE TABLE more (id int PRIMARY KEY, k int NOT NULL);
ALTER TABLE more REPLICA IDENTITY FULL;
SELECT flowstate.create_view('per_more', 'SELECT k, count(*) AS n FROM more GROUP BY k');
CREATE PROCEDURE fill(batches int, size int) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 0 .. batches - 1 LOOP
        INSERT INTO more SELECT g, g FROM generate_series(i * size + 1, (i + 1) * size) g;
        COMMIT;
    END LOOP;
END $$;
ALTER SYSTEM SET flowstate.memory_limit = '4MB';
SELECT pg_reload_conf();
});
$node->safe_psql('postgres', 'SELECT flowstate.wait_for()');
my ($in, $out) = ('', '');
my $holder = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $node->connstr('postgres') ], '<', \$in, '>', \$out);
$in .= "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 'holding', count(*) FROM more;\n";
$holder->pump until $out =~ /holding/;
$node->safe_psql('postgres', q{
CALL fill(10, 10000)});
ok(defined wait_until(60, sub {
	$node->safe_psql('postgres', q{
		SELECT state = 'paused for memory' AND last_error LIKE 'decoding paused%'
		  FROM flowstate.sources}) eq 't' }),
	'decoding that pauses for memory says so in flowstate.sources');
like(slurp_file($node->logfile), qr/WARNING:  flowstate decoding paused/,
	'and once in the log');
is($node->safe_psql('postgres', q{
	SELECT status FROM flowstate.views WHERE view = 'per_more'::regclass}),
	'over memory limit', 'the view that holds the memory says it is over its limit');
$in .= "COMMIT;\n\\q\n";
$holder->finish;
ok(defined wait_until(60, sub {
	$node->safe_psql('postgres', q{
		SELECT state = 'running' FROM flowstate.sources}) eq 't' }),
	'decoding resumes once the snapshot is gone');
is(differences($node, 'postgres', 'per_more'), '0', 'and the view equals its batch query');
is(differences($node, 'postgres', 'per_key_1mb'), '0', 'so does the other view');

$node->stop;
done_testing();
