# I64, I32, F64 and Str pools: every method, value ranges, exact doubles,
# embedded NULs.
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use PoolTest;
use Data::Pool::Shared;

my $dir = tmpdir();

for my $v (['I64', 8, 'i64'], ['I32', 4, 'i32']) {
	my ($name, $size, $vname) = @$v;
	my $class = "Data::Pool::Shared::$name";
	my $p = $class->new("$dir/$name.shm", 16);
	isa_ok($p, $class);
	is($p->elem_size, $size, "$name elem_size $size");
	is($p->variant, $vname, "$name variant");
	my $i = $p->alloc;
	is($p->get($i), 0, "$name new slot is 0");
	ok($p->set($i, 42), "$name set");
	is($p->get($i), 42, "$name get");
	is($p->add($i, 8), 50, "$name add returns the new value");
	is($p->add($i, -60), -10, "$name add negative");
	ok($p->cas($i, -10, 99), "$name cas succeeds");
	ok(!$p->cas($i, -10, 5), "$name cas fails on a wrong expectation");
	is($p->get($i), 99, "$name value after cas");
	is($p->cmpxchg($i, 99, 200), 99, "$name cmpxchg returns the old value (hit)");
	is($p->cmpxchg($i, 1, 300), 200, "$name cmpxchg returns the old value (miss)");
	is($p->get($i), 200, "$name cmpxchg miss leaves the value");
	is($p->xchg($i, 300), 200, "$name xchg returns the old value");
	is($p->incr($i), 301, "$name incr returns the new value");
	is($p->decr($i), 300, "$name decr returns the new value");
	my $j = $p->alloc_set(-7);
	is($p->get($j), -7, "$name alloc_set");
	my $k = $p->try_alloc_set(8);
	is($p->get($k), 8, "$name try_alloc_set");
	my $l = $p->alloc_set(9, 0.1);
	is($p->get($l), 9, "$name alloc_set with timeout");
	my $sv = $p->slot_sv($i);
	is(length $sv, $size, "$name slot_sv length");
	is(unpack($size == 8 ? 'q' : 'l', $sv), 300, "$name slot_sv holds the native value");
	is($p->stats->{elem_size}, $size, "$name stats elem_size");
}

# I64 range, I32 wrap-around
{
	my $p = Data::Pool::Shared::I64->new(undef, 2);
	my $i = $p->alloc;
	$p->set($i, 9223372036854775807);
	is($p->get($i), 9223372036854775807, 'I64 max');
	is($p->incr($i), -9223372036854775808, 'I64 incr wraps (two\'s complement)');
	$p->set($i, -9223372036854775808);
	is($p->get($i), -9223372036854775808, 'I64 min');
	my $q = Data::Pool::Shared::I32->new(undef, 2);
	my $j = $q->alloc;
	$q->set($j, 2147483647);
	is($q->get($j), 2147483647, 'I32 max');
	is($q->incr($j), -2147483648, 'I32 incr wraps');
	$q->set($j, 4294967297);
	is($q->get($j), 1, 'I32 set keeps the low 32 bits');
}

# F64: exact round trip
{
	my $p = Data::Pool::Shared::F64->new("$dir/f.shm", 16);
	is($p->elem_size, 8, 'F64 elem_size');
	is($p->variant, 'f64', 'F64 variant');
	my $i = $p->alloc;
	is($p->get($i), 0, 'F64 new slot is 0');
	for my $x (0.1, 1 / 3, -2.5e-308, 1.7976931348623157e308, 4.9e-324,
		   3.141592653589793, -0.0, 9**9**9, -9**9**9) {
		$p->set($i, $x);
		is(pack('d', $p->get($i)), pack('d', $x), "F64 exact: $x");
	}
	my $inf = 9**9**9;
	$p->set($i, $inf - $inf);
	my $nan = $p->get($i);
	ok($nan != $nan, 'F64 NaN');
	my $j = $p->alloc_set(2.75);
	is($p->get($j), 2.75, 'F64 alloc_set');
	my $k = $p->try_alloc_set(-1.5);
	is($p->get($k), -1.5, 'F64 try_alloc_set');
}

# Str
{
	my $p = Data::Pool::Shared::Str->new("$dir/s.shm", 16, 8);
	is($p->max_len, 8, 'Str max_len');
	is($p->variant, 'str', 'Str variant');
	my $i = $p->alloc;
	is($p->get($i), '', 'Str new slot is empty');
	$p->set($i, "hi");
	is($p->get($i), 'hi', 'Str get');
	$p->set($i, "a\0b\0");
	is($p->get($i), "a\0b\0", 'Str keeps embedded NULs (and trailing ones)');
	is(length $p->get($i), 4, 'Str length with NULs');
	$p->set($i, '0123456789');
	is($p->get($i), '01234567', 'Str truncates to max_len');
	$p->set($i, '');
	is($p->get($i), '', 'Str empty string');
	my $j = $p->alloc_set('abcdefghijk');
	is($p->get($j), 'abcdefgh', 'Str alloc_set truncates');
	my $k = $p->try_alloc_set("x\0y");
	is($p->get($k), "x\0y", 'Str try_alloc_set');
	my $sv = $p->slot_sv($k);
	is($sv, "x\0y", 'Str slot_sv is the string');
	my $u = "\x{263a}";
	$p->set($i, $u);
	is($p->get($i), "\xe2\x98\xba", 'Str stores the UTF-8 bytes of a wide string');
	my $m = Data::Pool::Shared::Str->new_memfd('strs', 4, 32);
	is($m->max_len, 32, 'Str new_memfd');
	my $from = Data::Pool::Shared::Str->new_from_fd($m->memfd);
	is($from->max_len, 32, 'Str new_from_fd keeps max_len');
}

# typed memfd and from_fd
for my $name (qw(I64 I32 F64)) {
	my $class = "Data::Pool::Shared::$name";
	my $m = $class->new_memfd("t$name", 4);
	ok($m->memfd >= 0, "$name new_memfd");
	my $i = $m->alloc_set(3);
	my $f = $class->new_from_fd($m->memfd);
	is($f->get($i), 3, "$name new_from_fd sees the value");
	my $a = $class->new(undef, 4);
	is($a->path, undef, "$name anonymous");
}

done_testing;
