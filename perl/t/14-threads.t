# ithreads: pool objects, views and guards are cloned into new threads
# safely (each copy is released once; the handle closes with the last).
use strict;
use warnings;
use Config;
use Test::More;
BEGIN {
	plan skip_all => 'this perl has no ithreads' unless $Config{useithreads};
}
use threads;
use Data::Pool::Shared;

alarm 60;
my $p = Data::Pool::Shared::I64->new(undef, 8);
my $counter = $p->alloc;
my $view = \$p->slot_sv($counter);
my ($gidx, $guard) = $p->alloc_guard;

my @t = map {
	threads->create(sub {
		my $n = 0;
		for (1 .. 2000) {
			my $i = $p->alloc;
			$p->set($i, threads->tid);
			$n++ if $p->get($i) == threads->tid;
			$p->free($i);
			$p->incr($counter);
		}
		# the thread's copies of the view and the guard are usable
		my $seen = unpack('q', $$view) > 0;
		return $n + ($seen ? 0 : -1);
	})
} 1 .. 3;
is($_->join, 2000, 'thread ' . $_->tid . ': each slot held by one thread') for @t;
is($p->get($counter), 6000, 'atomic increments from every thread');
ok($p->is_allocated($gidx), 'threads exiting did not free the guarded slot');
is($p->used, 2, 'used: the counter and the guarded slot');

# a pool made in a thread, its object returned... as an index only;
# the thread's pool closes when the thread ends
my $t = threads->create(sub {
	my $q = Data::Pool::Shared::I64->new(undef, 2);
	my $i = $q->alloc_set(5);
	return $q->get($i);
});
is($t->join, 5, 'a pool made and destroyed in a thread');

# the main thread's object destroyed while a thread still holds its copy
my $q = Data::Pool::Shared::I64->new(undef, 2);
my $qi = $q->alloc_set(11);
my $t2 = threads->create(sub { sleep 1; return $q->get($qi) });
undef $q;
is($t2->join, 11, 'the thread\'s copy outlives the main thread\'s object');

undef $guard;
is($p->used, 1, 'guard freed in the main thread');

done_testing;
