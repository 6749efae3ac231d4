# A child killed with SIGKILL while holding slots: recover_stale in the
# parent gives them back, leaves live holders alone, and the counters
# agree with the slots.
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use PoolTest;
use Time::HiRes qw(time sleep);
use Data::Pool::Shared;

alarm 60;
my $dir = tmpdir();
my $p = Data::Pool::Shared::I64->new("$dir/crash.shm", 16);
my $mine = $p->alloc;
$p->set($mine, 1);

pipe(my $r, my $w) or die "pipe: $!";
my $pid = spawn(sub {
	close $r;
	my $q = Data::Pool::Shared::I64->new("$dir/crash.shm", 16);
	my $a = $q->alloc_n(5);
	my $b = $q->alloc;
	$q->set($_, 99) for @$a, $b;
	syswrite $w, "ready\n";
	sleep 100;  # killed here
	return 1;
});
close $w;
my $line = <$r>;
is($line, "ready\n", 'child holds 6 slots');
is($p->used, 7, 'used 7');
my @theirs = grep { $_ != $mine } @{ $p->allocated_slots };
is(scalar @theirs, 6, 'six slots are the child\'s');
is($p->owner($_), $pid, "slot $_ owned by the child") for @theirs;
is($p->recover_stale, 0, 'recover_stale while the child lives: 0');
is($p->used, 7, 'nothing taken from a live process');

kill 'KILL', $pid;
isnt(reap($pid, 30), 0, 'child killed');
is($p->recover_stale, 6, 'recover_stale frees the dead child\'s 6 slots');
is($p->used, 1, 'used 1: only ours');
ok($p->is_allocated($mine), 'our slot untouched');
is($p->get($mine), 1, 'our value untouched');
ok(!$p->is_allocated($_), "slot $_ free again") for @theirs;
my $s = $p->stats;
is($s->{recoveries}, 6, 'stats recoveries 6');
is($s->{allocs} - $s->{frees}, $s->{used}, 'allocs - frees == used');
is($p->recover_stale, 0, 'second recovery: nothing left');

# a process killed in a tight alloc/free loop leaves nothing behind either
for my $round (1 .. 5) {
	my $pid2 = spawn(sub {
		my $q = Data::Pool::Shared::I64->new("$dir/crash.shm", 16);
		while (1) {
			my $x = $q->alloc_n(3);
			$q->free_n($x);
			my $y = $q->alloc;
			$q->free($y);
		}
	});
	sleep 0.02 + 0.03 * $round;
	kill 'KILL', $pid2;
	reap($pid2, 30);
	$p->recover_stale;
	is($p->used, 1, "round $round: killed mid-loop, used back to 1 after recovery");
}
my $all = $p->alloc_n(15, 1);
ok($all && @$all == 15, 'every other slot can be allocated');
$p->free_n($all);

done_testing;
