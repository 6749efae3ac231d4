# The reference's SYNOPSIS, run unchanged except for three things, each
# marked "## test": its /tmp paths are files of a private directory, checks
# are added after the lines whose results the reference documents, and
# $idx is allocated again before slot_sv and ptr (the synopsis freed it
# above them, and both croak "slot N is not allocated" on a free slot, in
# the reference as here).
use strict;
use warnings;
use feature 'say';
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use PoolTest;

alarm 60;
my $dir = tmpdir(); ## test
my ($pool_shm, $ints_shm, $f_shm, $s_shm) = map { "$dir/$_" } ## test
	qw(pool.shm ints.shm f.shm s.shm); ## test
open my $out, '>', \my $said or die; ## test: capture what say prints
my $stdout = select $out; ## test
my $child_pid; ## test

{
    use Data::Pool::Shared;

    # Raw byte pool — 100 slots of 64 bytes each
    my $pool = Data::Pool::Shared->new($pool_shm, 100, 64);
    my $idx = $pool->alloc;           # allocate a slot
    $pool->set($idx, "hello world");  # write data
    my $data = $pool->get($idx);      # read data
    is($data, "hello world" . "\0" x 53, 'raw get'); ## test
    $pool->free($idx);                # release slot
    is($pool->used, 0, 'raw free'); ## test

    # Typed pools
    my $ints = Data::Pool::Shared::I64->new($ints_shm, 1000);
    my $i = $ints->alloc;
    $ints->set($i, 42);
    $ints->add($i, 8);            # atomic add, returns 50
    is($ints->get($i), 50, 'add'); ## test
    $ints->cas($i, 50, 99);       # atomic CAS
    is($ints->get($i), 99, 'cas'); ## test
    say $ints->get($i);           # 99

    my $floats = Data::Pool::Shared::F64->new($f_shm, 100);
    my $strs = Data::Pool::Shared::Str->new($s_shm, 100, 256);
    isa_ok($floats, 'Data::Pool::Shared::F64'); ## test
    is($strs->max_len, 256, 'Str pool'); ## test

    # Guard — auto-free on scope exit
    {
        my ($idx, $guard) = $pool->alloc_guard;
        $pool->set($idx, $data);
        # ... use slot ...
        is($pool->used, 1, 'guard holds a slot'); ## test
    }  # auto-freed
    is($pool->used, 0, 'guard freed the slot'); ## test

    # Lock-free primitives
    my $prev = $ints->cmpxchg($i, 99, 200);  # CAS returning old value
    is($prev, 99, 'cmpxchg'); ## test
    $prev = $ints->xchg($i, 300);            # atomic exchange
    is($prev, 200, 'xchg'); ## test

    # Batch operations
    my $slots = $pool->alloc_n(10);           # allocate 10 slots
    is(scalar @$slots, 10, 'alloc_n'); ## test
    $pool->free_n($slots);                    # batch free
    is($pool->used, 0, 'free_n'); ## test

    $idx = $pool->alloc; ## test
    # Zero-copy and raw pointers
    my $sv  = $pool->slot_sv($idx);           # read-only SV over slot memory
    my $ptr = $pool->ptr($idx);               # C pointer (UV) for FFI/OpenGL
    my @all = @{ $pool->allocated_slots };    # list all allocated indices
    is(length $sv, 64, 'slot_sv'); ## test
    is($ptr, $pool->data_ptr + $idx * 64, 'ptr'); ## test
    is_deeply(\@all, [$idx], 'allocated_slots'); ## test

    # Convenience
    my $j = $ints->alloc_set(42);         # alloc + set
    is($ints->get($j), 42, 'alloc_set'); ## test
    $j = $ints->try_alloc_set(42);        # non-blocking
    is($ints->get($j), 42, 'try_alloc_set'); ## test

    # Crash recovery
    my $n = $pool->recover_stale;         # free slots owned by dead PIDs
    is($n, 0, 'recover_stale: nobody died'); ## test

    # Cross-process via fork
    if (($child_pid = fork) == 0) { ## test: was "if (fork == 0) {"
        my $child = Data::Pool::Shared::I64->new($ints_shm, 1000);
        my $i = $child->alloc;
        $child->set($i, $$);
        exit;
    }
    is(reap($child_pid, 30), 0, 'child exited'); ## test
    my @vals = map { $ints->get($_) } @{ $ints->allocated_slots }; ## test
    ok((grep { $_ == $child_pid } @vals), 'the child stored its PID'); ## test

    # Anonymous (fork-inherited)
    $pool = Data::Pool::Shared::I64->new(undef, 100);
    is($pool->path, undef, 'anonymous'); ## test

    # memfd (fd-passable)
    $pool = Data::Pool::Shared::I64->new_memfd("my_pool", 100);
    my $fd = $pool->memfd;
    ok($fd >= 0, 'memfd'); ## test
}

select $stdout; ## test
is($said, "99\n", 'say $ints->get($i) printed 99'); ## test
ok(-d $dir, 'the child did not remove the test directory'); ## test
done_testing; ## test
