# Windows that become final announce themselves, once: a client that
# LISTENs on the view's channel gets one notification per window, and the
# view's changelog table one row per group of each window, written with the
# flush that makes it final, also when the decoder is killed with SIGKILL
# while windows become final; for tumbling and hopping windows.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FlowstateNode;

my $node = new_node('final_windows', qq{
flowstate.flush_interval = 50ms
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION flowstate;
CREATE TABLE taps (id bigserial PRIMARY KEY, ts timestamptz NOT NULL, k int NOT NULL);
ALTER TABLE taps REPLICA IDENTITY FULL;
SELECT flowstate.create_view('per_minute', $$
    SELECT date_bin('1 minute', ts, '2026-01-01') AS minute, k, count(*) AS n
      FROM taps GROUP BY 1, 2 $$, allowed_lateness => '0', notify => true, changelog => true);
-- hopping windows announce themselves too, each once final
SELECT flowstate.create_view('taps_hop', $$
    SELECT w.window_start, w.window_end, count(*) AS n
      FROM taps, LATERAL flowstate.hop(taps.ts, '3 minutes', '1 minute') w
     GROUP BY w.window_start, w.window_end $$, allowed_lateness => '0', notify => true, changelog => true);
-- the hopping windows final by the view's watermark, as a batch query
CREATE VIEW taps_hop_final AS
    SELECT w.window_start, w.window_end, count(*) AS n
      FROM taps, LATERAL flowstate.hop(taps.ts, '3 minutes', '1 minute') w
     GROUP BY w.window_start, w.window_end
    HAVING w.window_end <= (SELECT final_up_to FROM flowstate.views WHERE view = 'taps_hop_panes'::regclass);
});

# minute(m): ten taps of minute m over three keys, in one transaction
sub minute
{
	my ($m) = @_;
	$node->safe_psql('postgres', qq{
		INSERT INTO taps (ts, k)
		SELECT '2026-01-01'::timestamptz + interval '1 minute' * $m + interval '1 second' * i, i % 3
		  FROM generate_series(0, 9) i});
}

# a client that listens on the view's channel
my ($in, $out, $err) = ('', '', '');
my $timer = IPC::Run::timer(60);
my $listener = IPC::Run::start(['psql', '-X', '-At', '-d', $node->connstr('postgres')],
	'<', \$in, '>', \$out, '2>', \$err, $timer);
$in .= qq{LISTEN "public.per_minute";\nLISTEN "public.taps_hop";\nSELECT 'listening';\n};
$listener->pump until $out =~ /listening/ || $timer->is_expired;
ok($out =~ /listening/, 'the client listens on the channel public.per_minute');

# minutes 0 to 29, then a row at 00:31: the windows of minutes 0 to 29 become final
minute($_) for 0 .. 29;
$node->safe_psql('postgres', q{INSERT INTO taps (ts, k) VALUES ('2026-01-01 00:31:00+00', 0)});
$node->safe_psql('postgres', 'SELECT flowstate.wait_for()');
ok(defined wait_until(30, sub {
	$node->safe_psql('postgres', 'SELECT count(*) FROM per_minute_changelog') eq '90' }),
	'the changelog holds the 90 groups of the 30 final windows');
ok(defined wait_until(30, sub {
	$node->safe_psql('postgres', 'SELECT count(*) FROM taps_hop_changelog') eq '31' }),
	'the changelog of the hopping windows holds the 31 final ones (ending by 00:31)');

# psql prints the notifications it has received after a query's result:
# after the first of these, so wait for the second
$out = '';
$in .= qq{SELECT 'poke';\nSELECT 'done';\n};
$listener->pump until $out =~ /^done$/m || $timer->is_expired;
my @payloads = $out =~ /^Asynchronous notification "public\.per_minute" with payload "(.*)" received from server process/mg;
is(scalar @payloads, 30, 'the client got one notification per final window');
my %windows = map { (/"window_start" : "([^"]+)"/)[0] => 1 } @payloads;
is(scalar keys %windows, 30, 'each for another window');
is(scalar(grep { /"groups" : 3\b/ && /"view" : "public\.per_minute"/ } @payloads), 30,
	'each names the view and counts the window\'s 3 groups');
ok($payloads[0] =~ /"window_start" : "2026-01-01T00:00:00\+00:00", "window_end" : "2026-01-01T00:01:00\+00:00"/,
	'the first is the first window, with its bounds') or diag($payloads[0]);
my @hops = $out =~ /^Asynchronous notification "public\.taps_hop" with payload "(.*)" received from server process/mg;
is(scalar @hops, 31, 'the client got one notification per final hopping window');
%windows = map { (/"window_start" : "([^"]+)"/)[0] => 1 } @hops;
is(scalar keys %windows, 31, 'each for another window');
ok($hops[0] =~ /"window_start" : "2025-12-31T23:58:00\+00:00", "window_end" : "2026-01-01T00:01:00\+00:00", "groups" : 1/,
	'the first is the first window, with its bounds') or diag($hops[0]);
$in .= "\\q\n";
$listener->finish;

# minutes 32 to 61, the decoder killed with SIGKILL every few minutes: each
# final window is in the changelog once
for my $m (32 .. 61)
{
	minute($m);
	if ($m % 7 == 0)
	{
		my $pid = decoder_pid($node, 'postgres');
		kill 'KILL', $pid if $pid ne '';
		wait_until(30, sub { eval { $node->safe_psql('postgres', 'SELECT 1') } // '' eq '1' });
		wait_until(30, sub { (eval { decoder_pid($node, 'postgres') } // '') ne '' });
	}
}
$node->safe_psql('postgres', q{INSERT INTO taps (ts, k) VALUES ('2026-01-01 01:05:00+00', 0)});
$node->safe_psql('postgres', 'SELECT flowstate.wait_for()');
ok(defined wait_until(30, sub {
	$node->safe_psql('postgres', 'SELECT count(*) FROM per_minute_changelog') eq '181' }),
	'after the kills the changelog holds the 181 groups of the 61 final windows (minute 31 has one)')
  or diag($node->safe_psql('postgres', 'SELECT count(*) FROM per_minute_changelog'));
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT minute, k FROM per_minute_changelog GROUP BY 1, 2 HAVING count(*) > 1) d}),
	'0', 'no group of a window twice');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM ((SELECT minute, k, n FROM per_minute_changelog
	                       EXCEPT ALL SELECT * FROM per_minute WHERE flowstate.is_final('per_minute', minute))
	                UNION ALL (SELECT * FROM per_minute WHERE flowstate.is_final('per_minute', minute)
	                       EXCEPT ALL SELECT minute, k, n FROM per_minute_changelog)) d}),
	'0', 'the changelog equals the view\'s final windows');
ok(defined wait_until(30, sub { $node->safe_psql('postgres', q{
	SELECT count(*) FROM ((SELECT window_start, window_end, n FROM taps_hop_changelog EXCEPT ALL TABLE taps_hop_final)
	                UNION ALL (TABLE taps_hop_final
	                       EXCEPT ALL SELECT window_start, window_end, n FROM taps_hop_changelog)) d}) eq '0' }),
	'the changelog of the hopping windows holds each final one once, as its batch query');

$node->stop;
done_testing();
