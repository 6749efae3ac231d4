package Data::Pool::Shared;
use strict;
use warnings;
use Carp ();

our $VERSION = '0.10';

require XSLoader;
XSLoader::load('Data::Pool::Shared', $VERSION);

# Values of enum shmpool_variant and enum shmpool_backing (shmpool.h).
sub _VARIANT () { 0 }   # raw
sub _SIZED ()   { 1 }   # the third constructor argument is used
use constant { _ANON => 0, _FILE => 1, _MEMFD => 2, _FD => 3 };

sub _ctor {
	my ($class, $method, $backing, $name, $capacity, $size, $fd) = @_;
	$class = ref($class) || $class;
	$size = 0 unless $class->_SIZED;
	my ($self, $err) = _open($class, $class->_VARIANT, $backing, $name,
				 $capacity, $size, $fd);
	return $self if $self;
	# the reference's own text, without the constructor prefix
	Carp::croak($err) if $err eq 'max_len must be > 0';
	Carp::croak("$class->$method: $err");
}

sub new {
	my ($class, $path, $capacity, $size) = @_;
	return $class->_ctor('new', defined $path ? _FILE : _ANON, $path,
			     $capacity, $size, -1);
}

sub new_memfd {
	my ($class, $name, $capacity, $size) = @_;
	$name = 'Data::Pool::Shared' unless defined $name && length $name;
	return $class->_ctor('new_memfd', _MEMFD, $name, $capacity, $size, -1);
}

sub new_from_fd {
	my ($class, $fd) = @_;
	my $c = ref($class) || $class;
	Carp::croak("$c->new_from_fd: fd must be a file descriptor number")
		unless defined $fd && $fd =~ /\A[0-9]+\z/;
	return $class->_ctor('new_from_fd', _FD, undef, undef, undef, $fd);
}

# $pool->unlink removes the pool's file; Class->unlink($path) removes a
# path (a pool that is not open here).
sub unlink {
	my ($self, $path) = @_;
	return CORE::unlink($path) ? 1 : 0 unless ref $self;
	return $self->_unlink;
}

# The typed classes: a variant and whether the third constructor argument
# (Str: max_len) is used; every method is inherited or comes from the XS.
for my $c (['I64', 1, 0], ['I32', 2, 0], ['F64', 3, 0], ['Str', 4, 1]) {
	my ($name, $variant, $sized) = @$c;
	my $pkg = "Data::Pool::Shared::$name";
	no strict 'refs';
	@{"${pkg}::ISA"} = ('Data::Pool::Shared');
	*{"${pkg}::_VARIANT"} = sub () { $variant };
	*{"${pkg}::_SIZED"} = sub () { $sized };
}

1;
__END__

=head1 NAME

Data::Pool::Shared - Fixed-size shared-memory object pool for Linux

=head1 SYNOPSIS

    use Data::Pool::Shared;

    # 100 slots of 64 bytes in a file that other processes open too
    my $pool = Data::Pool::Shared->new('/dev/shm/jobs.pool', 100, 64);
    my $idx  = $pool->alloc;              # waits while the pool is full
    $pool->set($idx, "payload");          # the rest of the slot is zeroed
    my $bytes = $pool->get($idx);         # 64 bytes
    $pool->free($idx);

    # typed slots with atomic operations
    my $counters = Data::Pool::Shared::I64->new(undef, 16);  # anonymous
    my $c = $counters->alloc;
    $counters->add($c, 5);                # returns the new value, 5
    $counters->cas($c, 5, 6) or warn "somebody else got there first";
    my $old = $counters->cmpxchg($c, 6, 7);   # returns the old value, 6

    my $prices = Data::Pool::Shared::F64->new_memfd('prices', 1000);
    my $names  = Data::Pool::Shared::Str->new('/dev/shm/names.pool', 1000, 200);

    {
        my ($slot, $guard) = $pool->alloc_guard(2.5);  # wait at most 2.5 s
        ...                                # the slot is freed at scope exit
    }

    my $batch = $pool->alloc_n(10, 0);    # 10 slots or undef, no waiting
    $pool->free_n($batch);

    # after a worker crashed
    my $freed = $pool->recover_stale;

=head1 DESCRIPTION

A pool is a fixed number of equal-sized slots in shared memory: a file, a
memfd or an anonymous mapping inherited by children forked afterwards.  Any
process that has the pool open allocates a slot, uses it and frees it; the
pool knows which slots are taken and by which process.  Allocation and
free are lock-free; an allocation from a full pool sleeps on a futex,
without using any CPU, until some process frees a slot or its timeout
expires.

This module is a drop-in replacement for the Perl module of the same name:
same classes, methods, arguments, return values and error texts, so that a
program written for it runs unchanged.  Underneath is libshmpool, the C
library of the shmpool project, which makes it faster (see L</PERFORMANCE>)
and able to recover from crashes that leave the original's pool with leaked
slots or wrong counters (see L</CRASH RECOVERY>).  L</DIFFERENCES FROM THE
ORIGINAL MODULE> lists what is not the same.

Linux only, 64-bit perl.

=head2 Variants

=over

=item Data::Pool::Shared

Raw slots of C<elem_size> bytes.

=item Data::Pool::Shared::I64

Signed 64-bit integers, with atomic C<get>, C<set>, C<cas>, C<cmpxchg>,
C<xchg>, C<add>, C<incr>, C<decr>.

=item Data::Pool::Shared::I32

Signed 32-bit integers, the same operations.  Values are stored modulo
2**32 (C<set($i, 2**32 + 1)> stores 1) and arithmetic wraps.

=item Data::Pool::Shared::F64

Doubles, stored bit for bit: what C<get> returns is exactly what C<set>
stored, NaN, infinities and negative zero included.

=item Data::Pool::Shared::Str

Byte strings of up to C<max_len> bytes; NUL bytes are kept like any other.

=back

The four typed classes inherit from C<Data::Pool::Shared>, so every method
of the raw class exists in them, and C<< $pool->isa('Data::Pool::Shared') >>
is true for every pool.

=head2 Allocation

Which slots are taken is kept in a bitmap; taking a slot is one
compare-and-swap on a bitmap word, freeing one is one atomic AND.  Each
slot also records which process took it.  A process waiting for a slot
sleeps on a futex and is woken by the next free, in any process.

=head2 Processes

Every process that opens the pool (or inherits it through C<fork>) is a
user of it, alive for as long as it keeps the pool open.  Slots it holds
when it dies stay taken until some other process calls L</Recovery>,
which frees them.

=head1 CONSTRUCTORS

    my $pool = Data::Pool::Shared->new($path, $capacity, $elem_size);
    my $pool = Data::Pool::Shared->new(undef, $capacity, $elem_size);
    my $pool = Data::Pool::Shared->new_memfd($name, $capacity, $elem_size);
    my $pool = Data::Pool::Shared->new_from_fd($fd);

    my $pool = Data::Pool::Shared::I64->new($path, $capacity);   # also I32, F64
    my $pool = Data::Pool::Shared::I64->new_memfd($name, $capacity);
    my $pool = Data::Pool::Shared::I64->new_from_fd($fd);

    my $pool = Data::Pool::Shared::Str->new($path, $capacity, $max_len);
    my $pool = Data::Pool::Shared::Str->new_memfd($name, $capacity, $max_len);
    my $pool = Data::Pool::Shared::Str->new_from_fd($fd);

=over

=item new($path, $capacity [, $elem_size | $max_len])

With a C<$path>, opens the pool in that file, creating it (mode 0600) if it
does not exist.  An existing file must hold a pool of the same variant,
capacity and slot size, else the constructor croaks.  Two processes
creating the same path at the same time get the same pool.  A symbolic link
at C<$path> is refused.

With C<undef>, the pool is anonymous: it is shared with the children forked
after it was made, and with nobody else.

=item new_memfd($name, $capacity [, $elem_size | $max_len])

The pool lives in a memfd called C<$name> (a label; it needs not be
unique).  Its file descriptor, C<memfd> (see L</Common Methods>), can be passed to other processes
(inherited across C<fork>, sent over a Unix socket, or kept open across
C<exec>: see L</new_from_fd>).

=item new_from_fd($fd)

Opens the pool behind file descriptor C<$fd>: a memfd pool's fd, or an fd
open on a pool file.  The fd is duplicated; the caller keeps its own.  The
pool must be of the class's variant (C<Data::Pool::Shared::Str-E<gt>new_from_fd>
croaks on an I64 pool, and the raw class opens raw pools only); capacity
and slot size come from the pool.

The memfd is created close-on-exec, so it is closed by C<exec> unless the
caller clears the flag first:

    use Fcntl qw(F_GETFD F_SETFD FD_CLOEXEC);
    my $fd = $pool->memfd;
    open my $fh, '+<&=', $fd or die;
    fcntl($fh, F_SETFD, fcntl($fh, F_GETFD, 0) & ~FD_CLOEXEC) or die;
    exec 'worker', $fd;        # the worker calls ...->new_from_fd($fd)

=back

Every constructor croaks on failure with C<< "Class->method: reason" >>,
the class being the one called (see L</ERRORS>).

=head1 METHODS

Slot indexes run from 0 to C<capacity - 1>.  A method given an index
outside that range croaks C<slot N out of range (capacity C)>; a data
method given a slot that is not allocated croaks C<slot N is not
allocated>.

=head2 Allocation

    my $idx = $pool->alloc;             # wait as long as it takes
    my $idx = $pool->alloc($timeout);   # wait at most $timeout seconds
    my $idx = $pool->alloc(0);          # do not wait
    my $idx = $pool->try_alloc;         # same as alloc(0)
    my $ok  = $pool->free($idx);

C<alloc> returns the index of a slot, zero-filled, or C<undef> when the
timeout expired (or, with 0, when the pool is full).  A negative or
C<undef> timeout waits forever.  The timeout is measured on the monotonic
clock; signals neither shorten nor extend it.

C<free> returns true, or false if the slot was not allocated (a double
free changes nothing).  Any process may free any allocated slot: a slot
can be handed from one process to another.

=head2 Batch Operations

    my $slots = $pool->alloc_n($n);            # wait
    my $slots = $pool->alloc_n($n, $timeout);
    my $slots = $pool->alloc_n($n, 0);         # do not wait
    my $count = $pool->free_n(\@indexes);
    my $slots = $pool->allocated_slots;

C<alloc_n> returns an array reference of C<$n> distinct indexes, or
C<undef>: all or nothing, never a part.  It never holds some slots while
it waits for the others, so two batch allocators cannot starve each other.
C<alloc_n(0)> returns C<[]>; C<$n> larger than the capacity returns
C<undef> at once.

C<free_n> frees the listed slots with one wake-up for all of them and
returns how many it freed; slots that were not allocated (or are listed
twice) are skipped and not counted.  Every index is checked before any
slot is freed: an index out of range croaks and frees nothing.

C<allocated_slots> returns an array reference of the allocated indexes in
ascending order (a snapshot).

=head2 Data Access

    my $value = $pool->get($idx);
    $pool->set($idx, $value);           # returns true

Raw pools: C<get> returns the whole slot, C<elem_size> bytes; C<set> writes
the bytes of C<$value> and zeroes the rest of the slot; longer data is cut
to C<elem_size> bytes.

Str pools: C<get> returns the stored string; C<set> stores at most
C<max_len> bytes of C<$value> and cuts longer strings.  Strings are stored
as bytes: a character string is stored as its UTF-8 bytes and comes back
as bytes (decode it with L<Encode> if needed).

    my $max = $pool->max_len;           # Str pools

I64 and I32 pools:

    my $ok  = $pool->cas($idx, $expected, $new);     # true if swapped
    my $old = $pool->cmpxchg($idx, $expected, $new); # the value before
    my $old = $pool->xchg($idx, $new);               # the value before
    my $now = $pool->add($idx, $delta);              # the value after
    my $now = $pool->incr($idx);                     # the value after
    my $now = $pool->decr($idx);                     # the value after

All are atomic and sequentially consistent, from any number of processes
and threads.  C<get> and C<set> of I64, I32 and F64 slots are atomic too;
C<get> and C<set> of raw and Str slots are not: two processes writing the
same slot, or one writing while another reads, must coordinate.

=head2 Raw Pointers

    my $addr = $pool->ptr($idx);        # address of the slot (an integer)
    my $base = $pool->data_ptr;         # slot i is at $base + i * elem_size

For FFI and XS code that needs a C<void *>.  The addresses are valid in
this process for as long as the pool object lives.

=head2 Zero-Copy Access

    my $view = \$pool->slot_sv($idx);   # a reference to a live view
    print length $$view;

C<slot_sv> returns a read-only scalar whose string is the slot's memory
itself: reading it copies nothing and shows the slot's current contents,
including writes made after C<slot_sv> was called, by any process.  For a
raw or typed pool the string is the whole slot (C<elem_size> bytes); for a
Str pool it is the stored string, its length following each C<set>.
Writing to it croaks ("Modification of a read-only value"); use C<set>.

The scalar keeps the pool mapped for as long as it lives, even after the
pool object is gone.  If the slot is freed and allocated again, the scalar
shows the new contents.

Perl copies a string when it is assigned: C<my $sv = $pool-E<gt>slot_sv($i)>
makes C<$sv> a plain copy of the slot as it is now.  To keep the live view,
keep a reference to the returned scalar (as above), alias it
(C<for my $sv ($pool-E<gt>slot_sv($i)) { ... }>), or pass the call's
result directly to the code that reads it.

=head2 Status

    my $yes = $pool->is_allocated($idx);
    my $n   = $pool->capacity;
    my $n   = $pool->elem_size;   # bytes per slot: 8, 4, 8, max_len + 4 for Str
    my $n   = $pool->used;        # slots allocated now
    my $n   = $pool->available;   # capacity - used
    my $pid = $pool->owner($idx); # PID of the process holding the slot, 0 if free
    my $v   = $pool->variant;     # 'raw', 'i64', 'i32', 'f64' or 'str'

C<used> and C<available> are exact when nothing else runs, a close
snapshot otherwise.  C<variant> is an addition of this module.

=head2 Recovery

    my $n = $pool->recover_stale;  # slots freed
    $pool->reset;                  # free every slot

C<recover_stale> frees the slots of processes that have died, and repairs
any allocation or free that a process was in the middle of when it died
(see L</CRASH RECOVERY>).  Slots of live processes are never touched.  It
may run in any process at any time, concurrently with anything.

C<reset> frees every slot.  It needs exclusive access: no other process or
thread may use the pool while it runs.

    $pool->adopt($idx);            # returns true

C<adopt> (an addition of this module) makes the calling process the owner
of an allocated slot.  A consumer that receives a slot from a producer
adopts it, so that recovery after the producer's death does not free a
slot the consumer still uses.

=head2 Guards

    my ($idx, $guard) = $pool->alloc_guard;           # wait
    my ($idx, $guard) = $pool->alloc_guard($timeout);
    my ($idx, $guard) = $pool->try_alloc_guard;       # do not wait

Allocates a slot and returns its index with a guard object that frees the
slot when it is destroyed: at the end of the scope, when an exception
unwinds it, or when the last reference goes.  On timeout the list is
empty.  In scalar context the guard alone is returned (or C<undef>).

The guard keeps the pool mapped, so it may outlive the pool object.  A copy
of a guard made by C<fork> (in the child) or by a new thread frees nothing:
only the process and thread that allocated the slot free it.

Additions of this module, on the guard:

    my $idx = $guard->idx;      # undef once released or detached
    $guard->release;            # free now; true if it freed the slot
    my $idx = $guard->detach;   # keep the slot: the guard no longer frees it

Do not C<free> a guarded slot by hand: the guard would free it again when
it goes, and by then the slot may belong to someone else.  Use
C<< $guard->release >>.

=head2 Convenience

    my $idx = $pool->alloc_set($value);            # wait
    my $idx = $pool->alloc_set($value, $timeout);
    my $idx = $pool->try_alloc_set($value);        # do not wait
    my $n   = $pool->each_allocated(sub { my ($idx) = @_; ... });

C<alloc_set> allocates a slot and stores C<$value> in it (as C<set> does),
returning the index or C<undef> like C<alloc>.

C<each_allocated> calls the code with each allocated index, in ascending
order, and returns the number of calls.  The code may free the slot it is
given, or others: a slot freed before its turn is skipped.

=head2 Common Methods

    my $path = $pool->path;       # the file; undef for memfd and anonymous pools
    my $fd   = $pool->memfd;      # the memfd (or from-fd) descriptor; -1 otherwise
    $pool->sync;                  # msync to the file; true on success
    $pool->unlink;                # remove the file; the pool stays usable
    Data::Pool::Shared->unlink($path);   # remove a pool file by path
    my $stats = $pool->stats;     # see STATS
    my $v = Data::Pool::Shared::lib_version();   # libshmpool's version

C<unlink> returns true if it removed the file, false otherwise (no file,
already removed: C<$!> says why for the class form).  Processes that
have the pool open keep using it; new opens of the path create a new pool.

=head2 eventfd Integration

    my $fd = $pool->eventfd;          # create it (once) and return it
    $pool->eventfd_set($fd);          # use this fd instead (undef: none)
    my $fd = $pool->fileno;           # the current one, -1 if none
    $pool->notify;                    # add 1; true on success
    my $n  = $pool->eventfd_consume;  # read and reset the count; 0 if none

An eventfd lets an event loop (EV, AnyEvent, IO::Async, select) wake up
when another process signals: producers call C<notify> after storing work,
the consumer watches C<fileno> for readability and calls
C<eventfd_consume>.  The eventfd belongs to this pool object (it is not in
shared memory); pass it to other processes by C<fork> or as any fd.  The
pool never signals it by itself.  The created eventfd is non-blocking;
C<notify> without an eventfd returns false and C<eventfd_consume> returns
C<undef>.

=head1 STATS

C<stats> returns a hash reference with the keys of the original module;
the values are a snapshot, approximate while other processes work.

=over

=item capacity

Number of slots.

=item elem_size

Bytes per slot (for Str pools C<max_len + 4>: the length is stored in the
slot).

=item used, available

Slots allocated now, and C<capacity - used>.

=item waiters

Threads (in any process) asleep in C<alloc> now.

=item mmap_size

Bytes of the mapping: slots plus the pool's own records.

=item allocs, frees

Successful allocations and frees since the pool was created; recovered
slots count as frees, so C<allocs - frees == used> when nothing runs.

=item waits, timeouts

C<alloc> calls that had to sleep, and those that gave up when their timeout
expired.

=item recoveries

Slots freed by C<recover_stale>.

=back

The C library counts more (the number of attached users, for one); see
C<shmpool_stats> in F<shmpool.h>.

A pool that a C program created with slot caches (C<shmpool_options.cache>)
works from Perl unchanged, and this process then keeps a cache of its own.
C<used> counts the slots callers hold, not those parked in caches, and
C<allocs> and C<frees> count slots taken from and given back to the shared
bitmap, so C<allocs - frees> is C<used> plus the parked slots.

=head1 ERRORS

Misuse croaks; the texts below are those of the original module where it
has one, and users may match them.  The message ends, as always with
C<croak>, with " at FILE line N." naming the caller's line.

    Text                                              When
    ------------------------------------------------  -------------------------------
    slot N out of range (capacity C)                  any method given an index
                                                      < 0 or >= capacity (free_n:
                                                      nothing is freed)
    slot N is not allocated                           get, set, cas, cmpxchg, xchg,
                                                      add, incr, decr, slot_sv, ptr,
                                                      adopt on a free slot
    Attempted to use a destroyed                      any method after an explicit
      Data::Pool::Shared object                         $pool->DESTROY
    free_n: expected arrayref                         free_n given anything else
    free_n: undef slot at index I                     element I of the list is undef
    Class->new: REASON                                constructor failure; Class is
    Class->new_memfd: REASON                            the class called, REASON says
    Class->new_from_fd: REASON                          what went wrong (below)
    max_len must be > 0                               Str->new or ->new_memfd with
                                                      max_len missing or < 1
    Class->new_from_fd: fd must be a                  new_from_fd given no number
      file descriptor number
    alloc_n: n must be >= 0 (got N)                   alloc_n with a negative count
    slot index is undef                               an undef index
    Data::Pool::Shared method called on something     a method called on a class
      that is not a Data::Pool::Shared object           name or a foreign object

Constructor reasons include C<capacity must be E<gt> 0>, C<elem_size must
be E<gt> 0>, a capacity or slot size different from an existing pool's,
another variant in the file or fd, a file that is not a pool (or is
truncated or corrupt), a symbolic link at the path, and system errors
(permission denied, no such file or directory ...).

C<alloc>, C<alloc_n>, C<alloc_set> and C<alloc_guard> croak with the
library's message if allocation fails for a reason other than a full pool
or a timeout (every attachment record of the pool taken by live
processes: 512 threads using the pool at once).  C<recover_stale>, C<reset>,
C<stats> and C<eventfd> croak with C<method: reason> on a system error.

C<free> of a slot that is not allocated returns false, C<sync>,
C<unlink> and C<notify> return false on failure: none of these croaks.

=head1 CRASH RECOVERY

A process can be killed at any instruction, including in the middle of an
C<alloc> or a C<free>.  Every operation on the pool first records what it
is about to do in a record of its own, so that C<recover_stale>, run later
by any surviving process, finds the slots of dead processes and finishes or
undoes their interrupted operation.  After it: no slot is leaked, no slot
held by a live process is taken away, and C<used>, C<available> and the
counters of C<stats> agree with the slots.

Whether a process is alive is not judged by its PID: a process is alive
while it has the pool open, which the kernel tracks with file locks.  A
reused PID, a zombie, or a process in another PID namespace are all judged
correctly.

A process that closes the pool (its last pool object is destroyed) while
it still holds slots remains their owner until it exits.

=head1 FORK, EXEC AND THREADS

After C<fork> the child keeps using the objects it inherited: it becomes a
new user of each pool, with its own identity.  Slots the parent allocated
stay the parent's (C<owner> reports the parent); slots the child allocates
are the child's, and are recovered when the child dies.  Guards inherited
by the child free nothing.

C<exec> ends the process's use of its pools; pass a path or a memfd's file
descriptor (see L</new_from_fd>) and open the pool again in the new
program.

With a threaded perl, pool objects, C<slot_sv> scalars and guards are
cloned into new threads like any other value.  Each copy holds its own
reference to the open pool, which is closed when the last one goes; a
thread may use its copies concurrently with other threads.  A thread's
copy of a guard frees nothing.

=head1 DIFFERENCES FROM THE ORIGINAL MODULE

=over

=item *

Crash recovery is complete: an allocation or free interrupted by the death
of a process is finished or undone, where the original can leak the slot
or leave C<used> wrong.  Liveness does not depend on PIDs (see
L</CRASH RECOVERY>).

=item *

C<owner> returns 0 for a free slot.

=item *

C<alloc_n($n)> with C<$n> larger than the capacity returns C<undef> at
once (it could never succeed), and C<alloc_n(0)> returns C<[]>.

=item *

C<free_n> checks every index before freeing anything, and counts a slot
listed twice once.

=item *

Allocation croaks, instead of returning C<undef>, when it fails for a
reason other than a full pool or a timeout.

=item *

C<new_from_fd> of a typed class, or of the raw class, opens only a pool of
that variant.

=item *

The memfd of C<new_memfd> is close-on-exec; clear the flag to pass it
across C<exec> (see L</new_from_fd>).

=item *

Files are created with mode 0600, and a symbolic link at the path is
refused.

=item *

Str slots: C<elem_size> is C<max_len + 4>.

=item *

Assigning the result of C<slot_sv> copies it, as any Perl assignment does:
keep a reference to the returned scalar for a live view (see
L</Zero-Copy Access>).

=item *

Additions: C<variant>, C<adopt>, C<lib_version>, and the guard methods
C<idx>, C<release>, C<detach>.

=back

=head1 SECURITY

Every process that can open the pool can write all of its memory.  The
library never reads a size or an offset back from shared memory to reach
memory (they are checked copies made at open), so a corrupted or hostile
pool makes calls fail or return wrong data but cannot make them read or
write outside the mapping.  It can still make them return wrong data, take
slots, or wake sleepers for nothing: share pools only with processes you
trust.  Pool files are created mode 0600 and opened without following
symbolic links; an anonymous pool, or a memfd passed only to chosen
processes, reaches nobody else.

=head1 PERFORMANCE

The original's BENCHMARKS rows measured with F<bench/bench.pl>
(C<perl -Mblib bench/bench.pl>, the median of three runs) on the machine
where this module is developed: 2 vCPUs (Intel Xeon, virtual machine), perl
5.36.  The original's published figures, from another machine with Perl
5.40, are beside them.

    Single process (1M ops)          here        original
      I64 alloc + free              11.1M/s      3.3M/s
      I64 get/set                   23.6M/s     ~10M/s
      I64 add/incr                  28.1M/s     ~10M/s
      I64 cas                       18.2M/s      9.8M/s
      Str set (48B)                 24.7M/s     ~10M/s
      Str get (48B)                 15.6M/s      7.5M/s
      alloc_set + free              10.3M/s      1.9M/s

    Multi-process (8 workers, 200K ops each, cap=64; 2 CPUs here)
      I64 alloc/free                11.5M/s      4.7M/s
      I64 alloc/set/get/free         5.7M/s      5.1M/s
      I64 atomic add (one slot)     24.0M/s     22.9M/s
      Str alloc/set/get/free         5.2M/s      4.9M/s

    Batch (alloc_n + free_n, batches/s)
      batch=1                        5.7M/s     ~2.3M/s
      batch=16                       2.3M/s     ~400K/s
        (16 single allocs + frees)   535K/s     ~200K/s
      batch=64                       830K/s     ~110K/s
        (64 single allocs + frees)   143K/s      ~50K/s

With 8 workers on 2 CPUs the workers take turns, so the multi-process
rows say more about this machine than about the pool.  In one process the
cost is mostly perl's method call: an alloc plus a free takes about 22 ns
in C (F<doc/performance.md>).

=over

=item *

An allocation is one compare-and-swap on a bitmap word, a free one atomic
AND; neither makes a system call or writes a counter shared by all
processes.

=item *

A full pool puts waiters to sleep on a futex; a free wakes one with one
system call, and only when someone waits.

=item *

C<free_n> frees slots of one bitmap word with one atomic operation and
wakes waiters once for the whole batch.

=item *

C<slot_sv> reads the slot without copying.

=back

=head1 SEE ALSO

The shmpool project: F<lib/shmpool.h> documents the C API this module is
built on (every function's arguments, errors, and which calls may run
concurrently), F<doc/api.md> maps each method of this module to it, and
F<doc/design.md> describes the shared-memory layout and the crash-recovery
protocol.

=cut
