# A memfd pool passed to another program: across fork, and across exec
# (the memfd is close-on-exec: the parent clears FD_CLOEXEC to pass it).
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use PoolTest;
use Fcntl qw(F_GETFD F_SETFD FD_CLOEXEC);
use POSIX ();
use Data::Pool::Shared;

alarm 60;
my $p = Data::Pool::Shared::Str->new_memfd('exec-test', 8, 32);
my $fd = $p->memfd;
ok($fd >= 0, 'memfd');
open my $fh, '+<&=', $fd or die "fdopen $fd: $!";
ok(fcntl($fh, F_GETFD, 0) & FD_CLOEXEC, 'the memfd is close-on-exec');
my $i = $p->alloc;
$p->set($i, 'from parent');

# fork: the child may reopen the fd (or just use $p)
my $pid = spawn(sub {
	my $q = Data::Pool::Shared::Str->new_from_fd($fd);
	return 1 unless $q->get($i) eq 'from parent';
	my $j = $q->alloc;
	$q->set($j, "fork $$");
	return 0;
});
is(reap($pid, 30), 0, 'forked child opened the memfd');
is(scalar @{ $p->allocated_slots }, 2, 'its slot is visible');

# exec: a new perl process opens the pool by its fd number
my $flags = fcntl($fh, F_GETFD, 0);
fcntl($fh, F_SETFD, $flags & ~FD_CLOEXEC) or die "fcntl: $!";
my $code = <<'CODE';
use Data::Pool::Shared;
my $fd = shift;
my $q = Data::Pool::Shared::Str->new_from_fd($fd);
my ($first) = grep { $q->get($_) eq 'from parent' } @{ $q->allocated_slots };
die "parent's slot not found\n" unless defined $first;
my $j = $q->alloc;
$q->set($j, "exec $$");
$q->set($first, 'seen by exec');
exit 0;
CODE
my $xpid = fork;
die "fork: $!" unless defined $xpid;
if (!$xpid) {
	exec($^X, (map { "-I$_" } grep { !ref } @INC), '-e', $code, $fd)
		or POSIX::_exit(127);
}
is(reap($xpid, 30), 0, 'exec\'d program opened the pool from the fd');
fcntl($fh, F_SETFD, $flags) or die "fcntl: $!";
is($p->get($i), 'seen by exec', 'its write is visible');
my @vals = map { $p->get($_) } @{ $p->allocated_slots };
ok((grep { /^exec \d+$/ } @vals), 'its allocation is visible');
is($p->used, 3, 'used 3');
is($p->recover_stale, 2, 'both exited children\'s slots are recovered');

done_testing;
