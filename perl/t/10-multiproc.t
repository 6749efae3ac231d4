# Several processes allocate and free the same pool at once: every slot is
# held by one process at a time (the owner and the value in the slot say
# so), and the counters agree at the end.
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use PoolTest;
use Data::Pool::Shared;

alarm 120;
my $dir = tmpdir();
my $workers = 4;
my $rounds = 3000;
my $cap = 8;

for my $kind ('file', 'anon') {
	my $path = $kind eq 'file' ? "$dir/mp.shm" : undef;
	my $p = Data::Pool::Shared::I64->new($path, $cap);
	my $errors = Data::Pool::Shared::I64->new(undef, 1);
	my $e = $errors->alloc;
	my @pids = map {
		spawn(sub {
			# a file pool is opened again, as separate programs would
			my $q = $kind eq 'file'
				? Data::Pool::Shared::I64->new($path, $cap) : $p;
			for my $r (1 .. $rounds) {
				my $s = $r % 7 ? $q->alloc(10) : undef;
				my @idx = defined $s ? ($s) : @{ $q->alloc_n(2, 10) || [] };
				$errors->incr($e), next unless @idx;
				for my $x (@idx) {
					$errors->incr($e) unless $q->owner($x) == $$;
					$q->set($x, $$);
				}
				for my $x (@idx) {
					$errors->incr($e) unless $q->get($x) == $$;
					$errors->incr($e) unless $q->owner($x) == $$;
				}
				if (@idx == 1) {
					$errors->incr($e) unless $q->free($idx[0]);
				} else {
					$errors->incr($e) unless $q->free_n(\@idx) == 2;
				}
			}
			return 0;
		})
	} 1 .. $workers;
	is(reap($_, 90), 0, "$kind: worker $_ finished") for @pids;
	is($errors->get($e), 0, "$kind: no slot was seen held by two processes");
	is($p->used, 0, "$kind: used 0 at the end");
	my $s = $p->stats;
	is($s->{allocs}, $s->{frees}, "$kind: allocs == frees");
	ok($s->{allocs} >= $workers * $rounds, "$kind: allocs counted ($s->{allocs})");
	is($p->recover_stale, 0, "$kind: nothing to recover");
}

done_testing;
