package PoolTest;
# Helpers shared by the tests: a private temporary directory, and children
# that cannot hang a test run.
use strict;
use warnings;
use Exporter 'import';
use File::Temp ();
use POSIX ();
use Time::HiRes ();

our @EXPORT = qw(tmpdir spawn reap);

my $dir;

# A directory removed when the test ends (in the process that made it).
sub tmpdir {
	$dir //= File::Temp::tempdir('dps-test-XXXXXX', TMPDIR => 1,
				     CLEANUP => 1);
	return $dir;
}

# spawn(sub { ... }): run the code in a forked child, which exits with the
# code's return value (0..255) without running END blocks or destructors
# of the parent's objects a second time; a die is exit status 255.
sub spawn {
	my ($code) = @_;
	my $pid = fork;
	die "fork: $!" unless defined $pid;
	return $pid if $pid;
	my $rc = eval { $code->() };
	if ($@) {
		print STDERR "# child $$: $@";
		$rc = 255;
	}
	POSIX::_exit($rc // 0);
}

# reap($pid, $seconds): wait for the child at most $seconds, then SIGKILL
# it; returns the wait status, or -1 if it had to be killed.
sub reap {
	my ($pid, $secs) = @_;
	my $deadline = Time::HiRes::time() + ($secs // 30);
	while (Time::HiRes::time() < $deadline) {
		my $r = waitpid($pid, POSIX::WNOHANG());
		return $? if $r == $pid;
		return -1 if $r < 0;
		Time::HiRes::sleep(0.01);
	}
	kill 'KILL', $pid;
	waitpid($pid, 0);
	return -1;
}

1;
