# slot_sv: a read-only scalar over the slot's memory that shows later
# writes and keeps the pool mapped while it lives.
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use PoolTest;
use Data::Pool::Shared;

my $p = Data::Pool::Shared->new(undef, 4, 16);
my $i = $p->alloc;
$p->set($i, 'abc');

my $copy = $p->slot_sv($i);
is($copy, "abc" . "\0" x 13, 'raw slot_sv: the whole slot');

# a reference to the returned scalar is a live view (assignment copies)
my $view = \$p->slot_sv($i);
is($$view, "abc" . "\0" x 13, 'view');
$p->set($i, 'xyz');
is($$view, "xyz" . "\0" x 13, 'the view shows later writes');
is($copy, "abc" . "\0" x 13, 'an assigned copy does not');
ok(!eval { $$view = 'no'; 1 }, 'view is read-only');
like($@, qr/read-only/, 'read-only error');
is(length $$view, 16, 'raw view length is elem_size');
is(substr($$view, 0, 3), 'xyz', 'substr on the view');
ok($$view =~ /^xyz/, 'regex on the view');

# aliasing through foreach is a view too
for my $sv ($p->slot_sv($i)) {
	$p->set($i, 'loop');
	is(substr($sv, 0, 4), 'loop', 'foreach alias is a live view');
}

# Str views follow the current string and its length
my $s = Data::Pool::Shared::Str->new(undef, 2, 10);
my $j = $s->alloc;
$s->set($j, 'hello');
my $sview = \$s->slot_sv($j);
is($$sview, 'hello', 'Str view');
$s->set($j, "a\0b");
is($$sview, "a\0b", 'Str view follows the string, NULs included');
is(length $$sview, 3, 'Str view length follows');
$s->set($j, 'x' x 20);
is($$sview, 'x' x 10, 'Str view after a truncating set');

# the view outlives its pool object
{
	my $q = Data::Pool::Shared::Str->new(undef, 2, 8);
	my $k = $q->alloc;
	$q->set($k, 'alive');
	my $v = \$q->slot_sv($k);
	my $w = \$q->slot_sv($k);
	undef $q;
	is($$v, 'alive', 'view readable after the pool object is gone');
	undef $v;
	is($$w, 'alive', 'a second view still holds the mapping');
}
{
	my $q = Data::Pool::Shared::I64->new(undef, 2);
	my $k = $q->alloc_set(12345);
	my $v = \$q->slot_sv($k);
	$q->DESTROY;
	is(unpack('q', $$v), 12345, 'view readable after an explicit DESTROY');
}

# a view of a slot freed later still shows the memory (as the reference)
$p->free($i);
ok(defined $$view, 'view of a freed slot is still readable');

ok(!eval { $p->slot_sv($i); 1 }, 'slot_sv of a free slot croaks');
like($@, qr/^slot $i is not allocated/, 'with the reference\'s text');

done_testing;
