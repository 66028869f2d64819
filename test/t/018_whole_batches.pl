# A batch is written to shared memory whole or not at all.  One
# transaction changes more groups than flowstate.memory_limit can hold: a
# reader polling the view meanwhile sees it without any of them or with all
# of them, never part of them, and never goes back; the view is rebuilt
# from its table (a backfill keeps within its memory) and equals its batch
# query.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use FlowstateNode;

my $node = new_node('whole_batches', qq{
flowstate.flush_interval = 100ms
flowstate.memory_limit = 1MB
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION flowstate;
CREATE TABLE t (id serial PRIMARY KEY, k int NOT NULL);
ALTER TABLE t REPLICA IDENTITY FULL;
INSERT INTO t (k) SELECT g FROM generate_series(1, 1000) g;
SELECT flowstate.create_view('per_k', 'SELECT k, count(*) AS n FROM t GROUP BY k');
});
install_oracle($node, 'postgres');
$node->safe_psql('postgres', 'SELECT flowstate.wait_for()');
is($node->safe_psql('postgres', 'SELECT sum(n) FROM per_k'), '1000', 'the view starts with 1,000 rows');

# 80,000 new groups in one transaction: several times what 1 MB holds
$node->safe_psql('postgres', q{
INSERT INTO t (k) SELECT g FROM generate_series(1001, 81000) g});
my (%seen, $samples, $backward);
my $last = 0;
my $took = wait_until(180, sub {
	my $n = $node->safe_psql('postgres', 'SELECT coalesce(sum(n), 0) FROM per_k');
	$samples++;
	$seen{$n}++;
	$backward++ if $n < $last;
	$last = $n;
	return $n == 81000;
});
ok(defined $took, 'the view takes the whole transaction');
note("samples: $samples; totals seen: " . join(' ', map { "$_ x$seen{$_}" } sort { $a <=> $b } keys %seen));
is(join(' ', sort { $a <=> $b } keys %seen), '1000 81000',
	'readers see the view before the transaction or after it, never in between');
is($backward // 0, 0, 'and never going back');
like(slurp_file($node->logfile),
	qr/continuous view "public.per_k" is rebuilt: a transaction changed more of its groups than shared memory can hold/,
	'the view was rebuilt, and the log says why');
is(differences($node, 'postgres', 'per_k'), '0', 'it equals its batch query');

# the rebuilt view goes on
$node->safe_psql('postgres', q{
DELETE FROM t WHERE id % 50 = 0;
INSERT INTO t (k) SELECT g FROM generate_series(1, 500) g});
is(differences($node, 'postgres', 'per_k'), '0', 'after more changes, it equals its batch query');

$node->stop;
done_testing();
