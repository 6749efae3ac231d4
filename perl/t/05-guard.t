# Guards: the slot is freed when the guard goes away, even after the pool
# object; release/detach; never by a forked child or a thread's copy.
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use PoolTest;
use Data::Pool::Shared;

alarm 60;
my $p = Data::Pool::Shared::I64->new(undef, 2);

{
	my ($idx, $guard) = $p->alloc_guard;
	ok(defined $idx, "alloc_guard -> $idx");
	isa_ok($guard, 'Data::Pool::Shared::Guard');
	is($guard->idx, $idx, 'guard idx');
	ok($p->is_allocated($idx), 'slot allocated');
	$p->set($idx, 7);
	is($p->get($idx), 7, 'slot usable');
}
is($p->used, 0, 'freed at scope exit');

{
	my ($a, $ga) = $p->alloc_guard(1);
	my ($b, $gb) = $p->try_alloc_guard;
	ok(defined $a && defined $b, 'alloc_guard($timeout), try_alloc_guard');
	my @none = $p->try_alloc_guard;
	is(scalar @none, 0, 'try_alloc_guard on a full pool: empty list');
	my ($c, $gc) = $p->alloc_guard(0.05);
	ok(!defined $c && !defined $gc, 'alloc_guard timeout: (undef, undef)');
	is(scalar($p->try_alloc_guard), undef, 'scalar context, full: undef');
}
is($p->used, 0, 'both freed');

{
	my $g = $p->alloc_guard;
	isa_ok($g, 'Data::Pool::Shared::Guard', 'scalar context returns the guard');
	is($p->used, 1, 'held');
}
is($p->used, 0, 'scalar-context guard freed');

{
	my ($idx, $g) = $p->alloc_guard;
	ok($g->release, 'release frees');
	ok(!$p->is_allocated($idx), 'released');
	ok(!$g->release, 'release twice: false');
	is($g->idx, undef, 'idx undef after release');
}

my $kept;
{
	my ($idx, $g) = $p->alloc_guard;
	$kept = $g->detach;
	is($kept, $idx, 'detach returns the index');
}
ok($p->is_allocated($kept), 'detached slot survives the guard');
$p->free($kept);

# a guard outlives its pool object and still frees the slot
{
	my $q = Data::Pool::Shared->new_memfd('g', 1, 8);
	my $check = Data::Pool::Shared->new_from_fd($q->memfd);
	my ($idx, $g) = $q->alloc_guard;
	undef $q;
	is($check->used, 1, 'pool object gone, slot still held');
	undef $g;
	is($check->used, 0, 'guard freed it through its own reference');
}

# a forked child that inherits a guard does not free the parent's slot
{
	my ($idx, $g) = $p->alloc_guard;
	my $pid = spawn(sub { undef $g; 0 });
	is(reap($pid, 30), 0, 'child exited');
	ok($p->is_allocated($idx), 'child\'s copy of the guard freed nothing');
	my $pid2 = spawn(sub { exit 0 });  # normal exit: global destruction
	is(reap($pid2, 30), 0, 'child exited through global destruction');
	ok($p->is_allocated($idx), 'still held by the parent');
}
is($p->used, 0, 'parent guard freed it');

# die inside the guarded scope still frees
eval {
	my ($idx, $g) = $p->alloc_guard;
	die "boom\n";
};
is($@, "boom\n", 'died');
is($p->used, 0, 'slot freed while unwinding');

done_testing;
