# Misuse croaks with the reference's wording (its users match on it), and
# nothing is changed by a call that croaks.
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use PoolTest;
use Data::Pool::Shared;

my $dir = tmpdir();

sub dies_like {
	my ($code, $re, $name) = @_;
	local $@;
	my $ok = eval { $code->(); 1 };
	ok(!$ok, "$name: croaks") or return;
	like($@, $re, "$name: message");
}

my %pools = (
	raw => Data::Pool::Shared->new(undef, 4, 8),
	I64 => Data::Pool::Shared::I64->new(undef, 4),
	I32 => Data::Pool::Shared::I32->new(undef, 4),
	F64 => Data::Pool::Shared::F64->new(undef, 4),
	Str => Data::Pool::Shared::Str->new(undef, 4, 8),
);

my $range = qr/^slot 4 out of range \(capacity 4\) at /;
my $free = qr/^slot 1 is not allocated at /;
for my $name (sort keys %pools) {
	my $p = $pools{$name};
	my $atomic = $p->can('cas');
	# every data call, with its arguments after the index
	my %data = (get => [], set => [1], slot_sv => [], ptr => [], adopt => []);
	%data = (%data, cas => [0, 1], cmpxchg => [0, 1], xchg => [1],
		 add => [1], incr => [], decr => []) if $atomic;
	# out of range: every call taking an index
	for my $m (sort(keys %data), qw(free is_allocated owner)) {
		my @args = @{ $data{$m} || [] };
		dies_like(sub { $p->$m(4, @args) }, $range, "$name $m out of range");
	}
	dies_like(sub { $p->get(-1) }, qr/^slot -1 out of range \(capacity 4\)/,
		  "$name negative index");
	dies_like(sub { $p->get(2**64) }, qr/^slot \d+ out of range \(capacity 4\)/,
		  "$name huge index");
	# not allocated: every data call
	for my $m (sort keys %data) {
		my @args = @{ $data{$m} };
		dies_like(sub { $p->$m(1, @args) }, $free, "$name $m on a free slot");
	}
	ok(!$p->free(1), "$name free of a free slot: false, no croak");
	is($p->used, 0, "$name: nothing allocated by the failed calls");

	# free_n
	dies_like(sub { $p->free_n(1) }, qr/^free_n: expected arrayref at /,
		  "$name free_n(scalar)");
	dies_like(sub { $p->free_n({}) }, qr/^free_n: expected arrayref at /,
		  "$name free_n(hashref)");
	my $i = $p->alloc;
	dies_like(sub { $p->free_n([$i, undef]) },
		  qr/^free_n: undef slot at index 1 at /, "$name free_n undef");
	dies_like(sub { $p->free_n([$i, 4]) }, $range, "$name free_n out of range");
	ok($p->is_allocated($i), "$name free_n that croaks frees nothing");
	ok($p->free($i), "$name cleanup");
}

# destroyed objects
{
	my $p = Data::Pool::Shared::I64->new(undef, 2);
	my $i = $p->alloc;
	$p->DESTROY;
	my $msg = qr/^Attempted to use a destroyed Data::Pool::Shared object at /;
	for my $m (qw(alloc try_alloc capacity used available stats
		allocated_slots recover_stale path memfd sync eventfd fileno
		notify eventfd_consume data_ptr elem_size reset)) {
		dies_like(sub { $p->$m }, $msg, "destroyed: $m");
	}
	for my $m (qw(get free is_allocated owner ptr slot_sv incr decr)) {
		dies_like(sub { $p->$m(0) }, $msg, "destroyed: $m");
	}
	dies_like(sub { $p->set(0, 1) }, $msg, 'destroyed: set');
	dies_like(sub { $p->free_n([0]) }, $msg, 'destroyed: free_n');
	dies_like(sub { $p->alloc_n(1) }, $msg, 'destroyed: alloc_n');
	dies_like(sub { $p->each_allocated(sub { }) }, $msg, 'destroyed: each_allocated');
	dies_like(sub { $p->alloc_guard }, $msg, 'destroyed: alloc_guard');
	dies_like(sub { $p->alloc_set(1) }, $msg, 'destroyed: alloc_set');
	$p->DESTROY; # twice is harmless
	pass('DESTROY twice');
}

# not an object
dies_like(sub { Data::Pool::Shared->alloc },
	  qr/^Data::Pool::Shared method called on something that is not a Data::Pool::Shared object/,
	  'class method call of an object method');
dies_like(sub { Data::Pool::Shared::get(bless({}, 'Data::Pool::Shared'), 0) },
	  qr/not a Data::Pool::Shared object/, 'forged object');

# constructors: "Class->method: reason", with the class actually called
dies_like(sub { Data::Pool::Shared->new(undef, 4, 0) },
	  qr/^Data::Pool::Shared->new: elem_size must be > 0 at /, 'elem_size 0');
dies_like(sub { Data::Pool::Shared->new(undef, 0, 8) },
	  qr/^Data::Pool::Shared->new: capacity must be > 0 at /, 'capacity 0');
dies_like(sub { Data::Pool::Shared::I64->new(undef, -3) },
	  qr/^Data::Pool::Shared::I64->new: capacity must be > 0 at /, 'negative capacity');
dies_like(sub { Data::Pool::Shared::F64->new_memfd('x', 0) },
	  qr/^Data::Pool::Shared::F64->new_memfd: capacity must be > 0 at /, 'new_memfd capacity 0');
dies_like(sub { Data::Pool::Shared::Str->new(undef, 4, 0) },
	  qr/^max_len must be > 0 at /, 'Str max_len 0');
dies_like(sub { Data::Pool::Shared::Str->new_memfd('s', 4, 0) },
	  qr/^max_len must be > 0 at /, 'Str new_memfd max_len 0');
dies_like(sub { Data::Pool::Shared::Str->new(undef, 4) },
	  qr/^max_len must be > 0 at /, 'Str without max_len');
dies_like(sub { Data::Pool::Shared::I32->new("$dir/nodir/x.shm", 4) },
	  qr/^Data::Pool::Shared::I32->new: .*No such file or directory/i, 'missing directory');

my $f = "$dir/i64.shm";
my $keep = Data::Pool::Shared::I64->new($f, 8);
dies_like(sub { Data::Pool::Shared::I64->new($f, 16) },
	  qr/^Data::Pool::Shared::I64->new: .*capacity/, 'reopen with another capacity');
dies_like(sub { Data::Pool::Shared::Str->new($f, 8, 8) },
	  qr/^Data::Pool::Shared::Str->new: .*(variant|i64)/, 'reopen as another variant');
open my $fh, '>', "$dir/junk" or die;
print $fh 'x' x 4096;
close $fh;
dies_like(sub { Data::Pool::Shared->new("$dir/junk", 4, 8) },
	  qr/^Data::Pool::Shared->new: /, 'not a pool file');
symlink($f, "$dir/link") or die "symlink: $!";
dies_like(sub { Data::Pool::Shared::I64->new("$dir/link", 8) },
	  qr/^Data::Pool::Shared::I64->new: .*(symbolic link|Too many levels)/i, 'symlink refused');

my $m = Data::Pool::Shared::I64->new_memfd('m', 4);
dies_like(sub { Data::Pool::Shared::Str->new_from_fd($m->memfd) },
	  qr/^Data::Pool::Shared::Str->new_from_fd: .*(variant|i64)/, 'new_from_fd of another variant');
dies_like(sub { Data::Pool::Shared->new_from_fd($m->memfd) },
	  qr/^Data::Pool::Shared->new_from_fd: /, 'raw new_from_fd of an I64 pool');
dies_like(sub { Data::Pool::Shared::I64->new_from_fd('zero') },
	  qr/^Data::Pool::Shared::I64->new_from_fd: fd must be a file descriptor number at /,
	  'new_from_fd of a non-number');
dies_like(sub { Data::Pool::Shared::I64->new_from_fd(999) },
	  qr/^Data::Pool::Shared::I64->new_from_fd: /, 'new_from_fd of a closed fd');
open my $null, '<', '/dev/null' or die;
dies_like(sub { Data::Pool::Shared::I64->new_from_fd(fileno $null) },
	  qr/^Data::Pool::Shared::I64->new_from_fd: /, 'new_from_fd of /dev/null');

# alloc_n argument
dies_like(sub { $keep->alloc_n(-1) }, qr/^alloc_n: n must be >= 0 \(got -1\) at /, 'alloc_n(-1)');

# the croak comes from the caller's line, not from inside the module
my $line = __LINE__ + 1;
eval { $keep->get(100) };
like($@, qr/ at \Q$0\E line $line\.$/, 'errors name the caller\'s file and line');

done_testing;
