#!/bin/sh
# stress_crash.sh - crash_recover kills workers, recovers and finds no
# violation (exit 0); with the test-only fault SHMPOOL_STRESS_FAULT=
# skip_free the checker must report violations and exit 1; the same with
# slot caches.  A worker that dies on its own and a run that hangs past its
# deadline fail too.  Prints TAP.  About 8 seconds.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
stress=$top_builddir/stress
ini=$top_srcdir/tests/data/scenarios/crash-short.ini
tmp=${TMPDIR:-/tmp}/stress_crash.$$
mkdir -p "$tmp" || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0
echo "1..8"

col() { # col NAME FILE: the value of column NAME in the first row
	awk -F, -v name="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i }
		NR == 2 { print $c }' "$2"
}

unset SHMPOOL_STRESS_FAULT
"$stress" -q -o "$tmp/ok.csv" "$ini" 2>"$tmp/err"
rc=$?
if [ "$rc" = 0 ] && [ "$(col violations "$tmp/ok.csv")" = 0 ]; then
	echo "ok 1 - crash run: exit 0, zero violations"
else
	sed 's/^/# /' "$tmp/err"
	echo "not ok 1 - crash run: exit 0, zero violations (got $rc)"
	fail=1
fi
kills=$(col kills "$tmp/ok.csv")
if [ "${kills:-0}" -gt 0 ]; then
	echo "ok 2 - workers were killed ($kills) and respawned"
else
	echo "not ok 2 - no worker was killed"
	fail=1
fi

SHMPOOL_STRESS_FAULT=skip_free "$stress" -q -o "$tmp/bad.csv" "$ini" 2>"$tmp/err"
rc=$?
v=$(col violations "$tmp/bad.csv")
if [ "$rc" = 1 ] && [ "${v:-0}" -gt 0 ] && [ "$(col status "$tmp/bad.csv")" = violations ]; then
	echo "ok 3 - skip_free fault: exit 1, $v violations"
else
	sed 's/^/# /' "$tmp/err"
	echo "not ok 3 - skip_free fault: exit 1 with violations (got $rc, ${v:-none})"
	fail=1
fi
if grep -q "violation: .*leaked\|still allocated" "$tmp/err"; then
	echo "ok 4 - the leak is reported on stderr"
else
	sed 's/^/# /' "$tmp/err"
	echo "not ok 4 - the leak is reported on stderr"
	fail=1
fi
# A worker that dies on its own fails the run, whatever the workload.
printf '[floor]\nworkers = 2\nduration = 100ms\n' >"$tmp/die.ini"
SHMPOOL_STRESS_FAULT=worker_dies "$stress" -q -o "$tmp/die.csv" "$tmp/die.ini" 2>"$tmp/err"
rc=$?
if [ "$rc" = 1 ] && [ "$(col status "$tmp/die.csv")" = worker_died ] &&
   grep -q "killed by signal" "$tmp/err"; then
	echo "ok 5 - a worker dying unexpectedly fails the run: exit 1"
else
	sed 's/^/# /' "$tmp/err"
	echo "not ok 5 - a worker dying unexpectedly fails the run (got $rc)"
	fail=1
fi

# A run that outlives its deadline is killed and fails as hung.
printf '[blocking]\nworkers = 2\ncapacity = 1\nhold = 5s\nwarmup = 0\nduration = 100ms\ndeadline = 1s\n' >"$tmp/hung.ini"
"$stress" -q -o "$tmp/hung.csv" "$tmp/hung.ini" 2>"$tmp/err"
rc=$?
if [ "$rc" = 1 ] && [ "$(col status "$tmp/hung.csv")" = hung ] &&
   grep -q "exceeded its deadline" "$tmp/err"; then
	echo "ok 6 - a hung run is killed at its deadline: exit 1"
else
	sed 's/^/# /' "$tmp/err"
	echo "not ok 6 - a hung run is killed at its deadline (got $rc)"
	fail=1
fi
# With slot caches: killed workers leave parked slots that recovery (or
# an allocator that finds the bitmap empty) takes back; a leak is still
# found.
sed 's/^kill_interval = .*/&\ncache = 4/' "$ini" >"$tmp/cache.ini"
"$stress" -q -o "$tmp/cok.csv" "$tmp/cache.ini" 2>"$tmp/err"
rc=$?
if [ "$rc" = 0 ] && [ "$(col violations "$tmp/cok.csv")" = 0 ] &&
   [ "$(col cache "$tmp/cok.csv")" = 4 ] && [ "$(col kills "$tmp/cok.csv")" -gt 0 ]; then
	echo "ok 7 - crash run with caches: exit 0, zero violations"
else
	sed 's/^/# /' "$tmp/err"
	echo "not ok 7 - crash run with caches: exit 0, zero violations (got $rc)"
	fail=1
fi
SHMPOOL_STRESS_FAULT=skip_free "$stress" -q -o "$tmp/cbad.csv" "$tmp/cache.ini" 2>"$tmp/err"
rc=$?
if [ "$rc" = 1 ] && [ "$(col violations "$tmp/cbad.csv")" -gt 0 ]; then
	echo "ok 8 - skip_free fault with caches: exit 1 with violations"
else
	sed 's/^/# /' "$tmp/err"
	echo "not ok 8 - skip_free fault with caches: exit 1 with violations (got $rc)"
	fail=1
fi
exit $fail
