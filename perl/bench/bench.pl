#!/usr/bin/perl
# bench.pl - the reference's BENCHMARKS rows, measured with this module.
#
#   perl -Mblib bench/bench.pl [--ops N] [--workers N]
#
# Prints each row of Data::Pool::Shared's BENCHMARKS section with the rate
# measured here next to the figure the reference publishes (Perl 5.40 on
# "a single-socket x86_64 Linux system": another machine, so compare the
# shape, not the digits).  --ops is the number of operations of the
# single-process rows (default 1000000, as the reference); each of the
# --workers processes (default 8) of the multi-process rows does ops/5
# (200K by default, as the reference), on a pool of capacity 64; the batch
# rows run ops/10 batches.  On a machine with fewer cores than workers the
# workers take turns, and the aggregate shows it.
use strict;
use warnings;
use Getopt::Long;
use POSIX ();
use Time::HiRes qw(time);
use Data::Pool::Shared;

my $ops = 1_000_000;
my $workers = 8;
GetOptions('ops=i' => \$ops, 'workers=i' => \$workers)
	or die "usage: $0 [--ops N] [--workers N]\n";
die "$0: --ops and --workers must be > 0\n" unless $ops > 0 && $workers > 0;
my $mp_ops = int($ops / 5) || 1;
my $batches = int($ops / 10) || 1;

sub rate {
	my ($n, $secs) = @_;
	my $r = $n / ($secs > 0 ? $secs : 1e-9);
	return $r >= 1e6 ? sprintf('%.1fM/s', $r / 1e6)
	     : $r >= 1e3 ? sprintf('%.0fK/s', $r / 1e3)
	     : sprintf('%.0f/s', $r);
}

sub row {
	my ($label, $ours, $ref) = @_;
	printf "  %-24s %-32s %s\n", $label, $ours, $ref;
}

# time $n iterations of $code
sub timed {
	my ($n, $code) = @_;
	my $t = time;
	$code->($n);
	return rate($n, time - $t);
}

my $ncpu = 0;
if (open my $fh, '<', '/proc/cpuinfo') {
	$ncpu = grep { /^processor\s*:/ } <$fh>;
}
printf "Data::Pool::Shared %s (libshmpool %s), perl %vd, %d CPUs\n",
	$Data::Pool::Shared::VERSION, Data::Pool::Shared::lib_version(), $^V,
	$ncpu;
printf "  %-24s %-32s %s\n", '', 'here', 'reference (published)';

print "\nSingle process ($ops ops):\n";
{
	my $p = Data::Pool::Shared::I64->new(undef, 64);
	row('I64 alloc + free', timed($ops, sub {
		for (1 .. $_[0]) { my $i = $p->alloc; $p->free($i) }
	}), '3.3M/s');
	my $i = $p->alloc;
	row('I64 get/set', timed($ops, sub {
		for (1 .. $_[0] / 2) { $p->set($i, $_); my $v = $p->get($i) }
	}), '~10M/s');
	row('I64 add/incr', timed($ops, sub {
		for (1 .. $_[0] / 2) { $p->add($i, 2); $p->incr($i) }
	}), '~10M/s');
	row('I64 cas', timed($ops, sub {
		$p->set($i, 0);
		for (1 .. $_[0]) { $p->cas($i, $_ - 1, $_) }
	}), '9.8M/s');
	my $s = Data::Pool::Shared::Str->new(undef, 64, 64);
	my $j = $s->alloc;
	my $str = 'x' x 48;
	row('Str set (48B)', timed($ops, sub {
		for (1 .. $_[0]) { $s->set($j, $str) }
	}), '~10M/s');
	row('Str get (48B)', timed($ops, sub {
		for (1 .. $_[0]) { my $v = $s->get($j) }
	}), '7.5M/s');
	$p->free($i);
	row('alloc_set + free', timed($ops, sub {
		for (1 .. $_[0]) { my $k = $p->alloc_set($_); $p->free($k) }
	}), '1.9M/s');
}

# Run $body($pool, $arg, $n) in each of $workers processes at once,
# released together; the aggregate rate over the wall time of them all.
sub multi {
	my ($pool, $arg, $body) = @_;
	pipe(my $r, my $w) or die "pipe: $!";
	my @pids;
	for (1 .. $workers) {
		my $pid = fork;
		die "fork: $!" unless defined $pid;
		if (!$pid) {
			close $w;
			sysread $r, my $buf, 1;  # the start gate
			$body->($pool, $arg, $mp_ops);
			POSIX::_exit(0);
		}
		push @pids, $pid;
	}
	close $r;
	my $t = time;
	close $w;  # open the gate
	for (@pids) {
		waitpid($_, 0);
		die "bench worker failed\n" if $?;
	}
	return rate($workers * $mp_ops, time - $t);
}

# a worker of the alloc/set/get/free rows: $value is what it stores
sub alloc_set_get_free {
	my ($q, $value, $n) = @_;
	for (1 .. $n) {
		my $i = $q->alloc;
		$q->set($i, $value);
		my $v = $q->get($i);
		$q->free($i);
	}
}

print "\nMulti-process ($workers workers, $mp_ops ops each, cap=64):\n";
print "  (more workers than the $ncpu CPUs here: they take turns)\n"
	if $ncpu && $workers > $ncpu;
{
	my $p = Data::Pool::Shared::I64->new(undef, 64);
	row('I64 alloc/free', multi($p, undef, sub {
		my ($q, undef, $n) = @_;
		for (1 .. $n) { my $i = $q->alloc; $q->free($i) }
	}), '4.7M/s aggregate');
	row('I64 alloc/set/get/free', multi($p, 42, \&alloc_set_get_free),
	    '5.1M/s aggregate');
	my $c = $p->alloc;
	row('I64 atomic add', multi($p, $c, sub {
		my ($q, $slot, $n) = @_;
		for (1 .. $n) { $q->add($slot, 1) }
	}), '22.9M/s aggregate');
	die "bench: lost atomic adds\n" unless $p->get($c) == $workers * $mp_ops;
	$p->free($c);
	my $s = Data::Pool::Shared::Str->new(undef, 64, 64);
	row('Str alloc/set/get/free', multi($s, 'y' x 48, \&alloc_set_get_free),
	    '4.9M/s aggregate');
}

print "\nBatch (single process, alloc_n + free_n, $batches batches):\n";
{
	my $p = Data::Pool::Shared::I64->new(undef, 64);
	my %ref = (1 => '~2.3M/s', 16 => '~400K/s  (vs ~200K individual)',
		   64 => '~110K/s  (vs ~50K individual, 2x gain)');
	for my $b (1, 16, 64) {
		my $n = $b == 1 ? $batches : int($batches / $b * 4) || 1;
		my $batched = timed($n, sub {
			for (1 .. $_[0]) { $p->free_n($p->alloc_n($b)) }
		});
		my $single = timed($n, sub {
			for (1 .. $_[0]) {
				my @i = map { $p->alloc } 1 .. $b;
				$p->free($_) for @i;
			}
		});
		row("batch=$b", $b == 1 ? $batched : "$batched  (vs $single individual)",
		    $ref{$b});
	}
}
