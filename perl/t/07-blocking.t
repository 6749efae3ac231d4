# Blocking allocation: timeouts, wake-up by a free in another process.
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use PoolTest;
use Time::HiRes qw(time sleep);
use Data::Pool::Shared;

alarm 60;
my $p = Data::Pool::Shared::I64->new(undef, 1);
my $i = $p->alloc;

my $t0 = time;
is($p->alloc(0.2), undef, 'alloc(0.2) on a full pool: undef');
my $dt = time - $t0;
ok($dt >= 0.19, sprintf('waited the timeout (%.3f s)', $dt));
ok($dt < 5, 'and not much longer');
is($p->alloc_n(1, 0.1), undef, 'alloc_n timeout: undef');
is($p->stats->{timeouts}, 2, 'stats: two timeouts');
ok($p->stats->{waits} >= 2, 'stats: waits');

# a waiter in a child is woken by our free
my $pid = spawn(sub {
	my $j = $p->alloc(20);
	return 3 unless defined $j;
	return $p->owner($j) == $$ ? 0 : 4;
});
my $deadline = time + 10;
sleep 0.01 while $p->stats->{waiters} < 1 && time < $deadline;
is($p->stats->{waiters}, 1, 'the child is waiting');
ok($p->free($i), 'free wakes it');
is(reap($pid, 30), 0, 'the child got the slot and owned it');

# alloc() without a timeout blocks until a slot comes back
$p->recover_stale;  # the child exited holding the slot
is($p->used, 0, 'recovered the exited child\'s slot');
$i = $p->alloc;
$t0 = time;  # before the fork: the child's 0.2 s count from about here
my $pid2 = spawn(sub {
	sleep 0.2;
	return $p->free($i) ? 0 : 5;  # hand-off: any process may free
});
my $j = $p->alloc;
ok(defined $j, 'alloc() blocked until the child freed');
is(reap($pid2, 30), 0, 'child freed');
ok(time - $t0 >= 0.1, 'it did wait');

done_testing;
