# The module loads, every class exists and answers every method of the
# reference.
use strict;
use warnings;
use Test::More;

use_ok('Data::Pool::Shared') or BAIL_OUT('cannot load Data::Pool::Shared');

ok(defined $Data::Pool::Shared::VERSION, "version $Data::Pool::Shared::VERSION");
like(Data::Pool::Shared::lib_version(), qr/\A\d+\.\d+/, 'libshmpool version');

my @common = qw(new new_memfd new_from_fd alloc try_alloc free alloc_n free_n
	allocated_slots get set ptr data_ptr slot_sv is_allocated capacity
	elem_size used available owner recover_stale reset alloc_guard
	try_alloc_guard alloc_set try_alloc_set each_allocated path memfd sync
	unlink stats eventfd eventfd_set fileno notify eventfd_consume);
my @atomic = qw(cas cmpxchg xchg add incr decr);

for my $class (map { "Data::Pool::Shared$_" } '', qw(::I64 ::I32 ::F64 ::Str)) {
	can_ok($class, @common);
	ok($class->isa('Data::Pool::Shared'), "$class isa Data::Pool::Shared");
}
can_ok("Data::Pool::Shared::$_", @atomic) for qw(I64 I32);
ok(!Data::Pool::Shared::F64->can($_), "F64 has no $_") for @atomic;
ok(!Data::Pool::Shared->can('cas'), 'raw pools have no atomics');
can_ok('Data::Pool::Shared::Str', 'max_len');
ok(!Data::Pool::Shared::I64->can('max_len'), 'max_len is Str only');

done_testing;
