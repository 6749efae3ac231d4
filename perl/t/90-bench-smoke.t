# The benchmark still runs and prints every row of the reference's
# BENCHMARKS (a tiny run: no figure is checked, tests never time things).
use strict;
use warnings;
use Test::More;
use FindBin;

my $bench = "$FindBin::Bin/../bench/bench.pl";
ok(-f $bench, 'bench/bench.pl exists');
my @cmd = ($^X, (map { "-I$_" } grep { !ref } @INC), $bench,
	   '--ops', 2000, '--workers', 2);
local $SIG{ALRM} = sub { die "bench timed out\n" };
alarm 120;
my $out = `@{[ map { quotemeta } @cmd ]} 2>&1`;
alarm 0;
is($?, 0, 'bench exits 0') or diag($out);
my $rate = qr/\d+(?:\.\d+)?[MK]?\/s/;
for my $row ('I64 alloc + free', 'I64 get/set', 'I64 add/incr', 'I64 cas',
	     'Str set (48B)', 'Str get (48B)', 'alloc_set + free',
	     'I64 alloc/free', 'I64 alloc/set/get/free', 'I64 atomic add',
	     'Str alloc/set/get/free', 'batch=1', 'batch=16', 'batch=64') {
	like($out, qr/^  \Q$row\E\s+$rate\s+\S/m, "row: $row");
}
like($out, qr/^Multi-process \(2 workers, 400 ops each, cap=64\):/m,
     'multi-process header');
ok(!($out =~ /not ok|bench: /), 'no consistency failure');

done_testing;
