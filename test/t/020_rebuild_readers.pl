# Readers of a view being rebuilt.  The database's replication slot is
# dropped while its decoder is down: the decoder creates it again and
# rebuilds its view with a backfill.  A reader polling the view meanwhile
# sees its previous state until the backfill commits, then the new one:
# never both at once (each group twice), never part of the table.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FlowstateNode;

my $node = new_node('rebuild_readers', qq{
flowstate.flush_interval = 100ms
flowstate.restart_delay = 2s
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION flowstate;
CREATE TABLE t (id int PRIMARY KEY, k int NOT NULL, v int NOT NULL);
ALTER TABLE t REPLICA IDENTITY FULL;
INSERT INTO t SELECT g, g % 50000, 1 FROM generate_series(1, 400000) g;
SELECT flowstate.create_view('per_k', 'SELECT k, count(*) AS n, sum(v) AS total FROM t GROUP BY k');
});
install_oracle($node, 'postgres');
$node->safe_psql('postgres', 'SELECT flowstate.wait_for()');
is($node->safe_psql('postgres', q{SELECT count(*) || ' ' || sum(n) FROM per_k}), '50000 400000',
	'the view starts with 50,000 groups of 400,000 rows');

ok(defined wait_until(60, sub {
	$node->safe_psql('postgres', q{SELECT status FROM flowstate.view}) eq 'running' }),
	'the backfill is durable');

# the slot goes while the decoder is down; a row changes meanwhile
ok(drop_decoder_slot($node), 'the replication slot is dropped');
$node->safe_psql('postgres', 'DELETE FROM t WHERE id = 1');
my (%seen, $samples);
my $took = wait_until(120, sub {
	my $state = $node->safe_psql('postgres', q{SELECT count(*) || ' ' || sum(n) FROM per_k});
	$samples++;
	$seen{$state}++;
	return $state eq '50000 399999' &&
	  slurp_file($node->logfile) =~ /finished backfilling continuous view "public.per_k".*finished backfilling continuous view "public.per_k"/s;
});
ok(defined $took, 'the rebuilt view shows the table');
note("samples: $samples; states seen: " . join(', ', map { "$_ x$seen{$_}" } sort keys %seen));
my @others = grep { $_ ne '50000 400000' && $_ ne '50000 399999' } keys %seen;
is(join(', ', @others), '', 'readers saw the previous state or the new one, nothing else');
like(slurp_file($node->logfile), qr/continuous view "public.per_k" is rebuilt: replication slot/,
	'the view was rebuilt');
is(differences($node, 'postgres', 'per_k'), '0', 'it equals its batch query');

$node->stop;
done_testing();
