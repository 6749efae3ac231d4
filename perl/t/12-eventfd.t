# eventfd integration: create, notify, consume, use an existing fd.
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use PoolTest;
use Data::Pool::Shared;

my $p = Data::Pool::Shared::I64->new(undef, 4);
is($p->fileno, -1, 'no eventfd yet: fileno -1');
ok(!$p->notify, 'notify without an eventfd: false');
is($p->eventfd_consume, undef, 'consume without an eventfd: undef');

my $fd = $p->eventfd;
ok($fd >= 0, "eventfd -> $fd");
is($p->eventfd, $fd, 'eventfd again: the same fd');
is($p->fileno, $fd, 'fileno');
is($p->eventfd_consume, 0, 'nothing pending: 0');
ok($p->notify, 'notify') for 1 .. 3;
is($p->eventfd_consume, 3, 'consume returns the count');
is($p->eventfd_consume, 0, 'and resets it');

# select() sees the eventfd readable after notify
open my $efh, '<&=', $fd or die "fdopen: $!";
my $rin = '';
vec($rin, $fd, 1) = 1;
is(select(my $rout = $rin, undef, undef, 0), 0, 'not readable before notify');
$p->notify;
is(select($rout = $rin, undef, undef, 1), 1, 'readable after notify');
is($p->eventfd_consume, 1, 'consumed');

# a forked child notifies the parent through the inherited eventfd
my $pid = spawn(sub { $p->notify ? 0 : 1 });
is(reap($pid, 30), 0, 'child notified');
is($p->eventfd_consume, 1, 'parent sees the child\'s notification');

# an eventfd of our own (here a second pool's)
my $q = Data::Pool::Shared::I64->new(undef, 4);
my $other = $q->eventfd;
ok($p->eventfd_set($other), 'eventfd_set');
is($p->fileno, $other, 'fileno is the one set');
$p->notify;
is($q->eventfd_consume, 1, 'notify goes to the fd that was set');
ok($p->eventfd_set(undef), 'eventfd_set(undef) clears');
is($p->fileno, -1, 'cleared');
is($q->fileno, $other, 'the fd stays open for its owner');

done_testing;
