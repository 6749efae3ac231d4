# Data::Pool::Shared (raw): every method on file-backed, anonymous and memfd
# pools.
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use PoolTest;
use Data::Pool::Shared;

my $dir = tmpdir();
my $path = "$dir/raw.shm";

my $p = Data::Pool::Shared->new($path, 100, 64);
isa_ok($p, 'Data::Pool::Shared');
ok(-e $path, 'file created');
is((stat $path)[2] & 07777, 0600, 'file mode 0600');
is($p->capacity, 100, 'capacity');
is($p->elem_size, 64, 'elem_size');
is($p->used, 0, 'used 0');
is($p->available, 100, 'available 100');
is($p->path, $path, 'path');
is($p->memfd, -1, 'memfd -1 for a file');
is($p->variant, 'raw', 'variant');

# alloc / get / set / free
my $i = $p->alloc;
ok(defined $i && $i >= 0 && $i < 100, "alloc -> $i");
ok($p->is_allocated($i), 'is_allocated');
is($p->get($i), "\0" x 64, 'a new slot is zero-filled');
ok($p->set($i, 'hello world'), 'set returns true');
is($p->get($i), "hello world" . ("\0" x 53), 'raw get: whole slot, zero padded');
is(length $p->get($i), 64, 'get length elem_size');
$p->set($i, 'x' x 100);
is($p->get($i), 'x' x 64, 'over-long data is truncated to the slot');
$p->set($i, "a\0b");
is(substr($p->get($i), 0, 3), "a\0b", 'embedded NUL kept');
$p->set($i, 'long' x 16);
$p->set($i, 'short');
is($p->get($i), 'short' . ("\0" x 59), 'set zeroes the rest of the slot');
is($p->owner($i), $$, 'owner is this process');
is($p->used, 1, 'used 1');
is($p->available, 99, 'available 99');
ok($p->ptr($i) > 0, 'ptr');
is($p->ptr($i) - $p->data_ptr, $i * 64, 'ptr = data_ptr + idx * elem_size');
ok($p->adopt($i), 'adopt');
ok($p->free($i), 'free returns true');
ok(!$p->is_allocated($i), 'not allocated after free');
ok(!$p->free($i), 'free of a free slot returns false');
is($p->owner($i), 0, 'owner of a free slot is 0');

# try_alloc, alloc(0), alloc($timeout)
my @held;
while (defined(my $x = $p->try_alloc)) { push @held, $x }
is(scalar @held, 100, 'try_alloc fills the pool');
is($p->try_alloc, undef, 'try_alloc on a full pool: undef');
is($p->alloc(0), undef, 'alloc(0) on a full pool: undef');
is($p->alloc(0.05), undef, 'alloc(0.05) on a full pool: undef after the timeout');
is($p->available, 0, 'available 0');
is_deeply($p->allocated_slots, [0 .. 99], 'allocated_slots');
my @seen;
is($p->each_allocated(sub { push @seen, $_[0] }), 100, 'each_allocated count');
is_deeply(\@seen, [0 .. 99], 'each_allocated visits every slot in order');
@seen = ();
$p->each_allocated(sub { push @seen, $_[0]; $p->free($_[0] + 1) if $_[0] % 2 == 0 });
is_deeply(\@seen, [grep { $_ % 2 == 0 } 0 .. 99], 'each_allocated skips slots freed by the callback');
is($p->used, 50, 'callback frees took effect');
ok($p->reset, 'reset');
is($p->used, 0, 'reset frees every slot');
is_deeply($p->allocated_slots, [], 'allocated_slots empty');

# batches
my $slots = $p->alloc_n(10);
is(ref $slots, 'ARRAY', 'alloc_n returns an arrayref');
is(scalar @$slots, 10, 'alloc_n(10): 10 slots');
my %u = map { $_ => 1 } @$slots;
is(scalar keys %u, 10, 'alloc_n slots are distinct');
is($p->used, 10, 'used 10');
is($p->alloc_n(91, 0), undef, 'alloc_n more than available: undef');
is($p->used, 10, 'all or nothing: nothing allocated');
is($p->alloc_n(101), undef, 'alloc_n beyond capacity: undef at once');
is_deeply($p->alloc_n(0), [], 'alloc_n(0): empty arrayref');
my $more = $p->alloc_n(90, 0.5);
is(scalar @$more, 90, 'alloc_n(90, timeout) takes the rest');
is($p->free_n($more), 90, 'free_n returns the count');
is($p->free_n([@$slots, @$slots]), 10, 'free_n counts each slot once');
is($p->free_n($slots), 0, 'free_n of free slots: 0');
is($p->free_n([]), 0, 'free_n([]): 0');

# alloc_set / try_alloc_set
my $j = $p->alloc_set('payload');
is(substr($p->get($j), 0, 7), 'payload', 'alloc_set');
my $k = $p->alloc_set('x' x 80, 1);
is($p->get($k), 'x' x 64, 'alloc_set with timeout, truncated');
my $l = $p->try_alloc_set('try');
is(substr($p->get($l), 0, 3), 'try', 'try_alloc_set');
$p->reset;

# stats
my $s = $p->stats;
is_deeply([sort keys %$s],
	[sort qw(capacity elem_size used available waiters mmap_size allocs
		frees waits timeouts recoveries)], 'stats keys are the reference\'s');
is($s->{capacity}, 100, 'stats capacity');
is($s->{elem_size}, 64, 'stats elem_size');
is($s->{used}, 0, 'stats used');
is($s->{available}, 100, 'stats available');
is($s->{allocs}, $s->{frees}, 'stats allocs == frees when nothing is held');
ok($s->{timeouts} >= 1, 'stats timeouts: the timed-out alloc');
ok($s->{mmap_size} >= 100 * 64, 'stats mmap_size');
is($s->{waiters}, 0, 'stats waiters');
is($s->{recoveries}, 0, 'stats recoveries');
is($p->recover_stale, 0, 'recover_stale with nothing stale: 0');
ok($p->sync, 'sync');

# a second handle on the same file sees the same slots
my $q = Data::Pool::Shared->new($path, 100, 64);
my $m = $q->alloc;
$q->set($m, 'shared');
ok($p->is_allocated($m), 'second handle: same pool');
is(substr($p->get($m), 0, 6), 'shared', 'second handle: same data');
ok($p->free($m), 'freed through the other handle');

# unlink
ok($p->unlink, 'unlink');
ok(!-e $path, 'file gone');
ok(!$p->unlink, 'unlink again: false');
is($p->used, 0, 'pool still usable after unlink');
my $path2 = "$dir/raw2.shm";
my $r = Data::Pool::Shared->new($path2, 4, 8);
undef $r;
ok(Data::Pool::Shared->unlink($path2), 'Class->unlink($path)');
ok(!-e $path2, 'Class->unlink removed the file');

# anonymous
my $a = Data::Pool::Shared->new(undef, 8, 16);
is($a->path, undef, 'anonymous: path undef');
is($a->memfd, -1, 'anonymous: memfd -1');
ok(!$a->unlink, 'anonymous: unlink false');
my $ai = $a->alloc;
$a->set($ai, 'anon');
is(substr($a->get($ai), 0, 4), 'anon', 'anonymous pool works');

# memfd
my $mf = Data::Pool::Shared->new_memfd('rawtest', 8, 16);
ok($mf->memfd >= 0, 'memfd pool: fd');
is($mf->path, undef, 'memfd pool: path undef');
my $mfi = $mf->alloc;
$mf->set($mfi, 'memfd');
my $dup = Data::Pool::Shared->new_from_fd($mf->memfd);
is(substr($dup->get($mfi), 0, 5), 'memfd', 'new_from_fd sees the data');
is($dup->capacity, 8, 'new_from_fd capacity');
is($dup->elem_size, 16, 'new_from_fd elem_size');

# a subclass keeps its class
@My::Pool::ISA = ('Data::Pool::Shared');
my $sub = My::Pool->new(undef, 2, 8);
isa_ok($sub, 'My::Pool');
ok(defined $sub->alloc, 'subclass works');

done_testing;
