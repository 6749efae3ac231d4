#!/bin/sh
# compare_hosts.sh - scripts/compare-hosts merges the fixtures of two hosts
# (tests/data/gate: ci-b is 30% slower, floor included): a table per host,
# absolute and as a fraction of each host's floor, and host-against-host
# plots; one host only is exit 2.  Prints TAP.  A few seconds.
set -u
top_srcdir=${top_srcdir:-.}
compare=$top_srcdir/scripts/compare-hosts
check_png=$top_srcdir/tests/check-png
data=$top_srcdir/tests/data/gate
. "$top_srcdir/tests/tap.sh"
tap_tmp compare_hosts_test
echo "1..4"

"$compare" --no-plot --markdown "$tmp/t.md" "$data/baseline.csv" "$data/host2.csv" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 0 ] && grep -q '^| ci-a | AMD EPYC 7B13 |' "$tmp/out" &&
	grep -q '^| ci-b | Intel(R) Xeon(R) Platinum 8375C |' "$tmp/out" &&
	cmp -s "$tmp/out" "$tmp/t.md"
check $? "both hosts with their metadata; --markdown writes the same (got $rc)"

line=$(grep '^| section=alloc_free workload=alloc_free variant=raw workers=2 |' "$tmp/out")
case $line in
*"| 0.711 |"*"| 0.708 | 0.70x |") true ;;
*) echo "# $line"; false ;;
esac
check $? "alloc_free workers=2: 0.70x of ci-a absolute, the same fraction of floor"

"$compare" "$data/baseline.csv" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 2 ] && grep -q 'needs results from two or more machines' "$tmp/err"
check $? "one host only: exit 2 (got $rc)"

if command -v gnuplot >/dev/null 2>&1; then
	"$compare" -o "$tmp/plots" "$data/baseline.csv" "$data/host2.csv" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ "$rc" = 0 ] && "$check_png" "$tmp/plots/hosts-alloc_free.png" \
		"$tmp/plots/hosts-atomic.png" 2>>"$tmp/err"
	check $? "host-against-host plots are valid, non-blank PNGs (got $rc)"
else
	echo "ok 4 # SKIP gnuplot is not installed"
fi
exit $fail
