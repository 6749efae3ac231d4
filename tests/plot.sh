#!/bin/sh
# plot.sh - scripts/plot on the fixtures writes every expected figure as a
# valid, non-blank PNG (tests/check-png decodes it) and an SVG; bad input
# is a clear error (exit 2); ./stress plots at the end of a run unless
# --no-plot; legends name an option only where it is on.  Skipped without
# gnuplot.  Prints TAP.  About 15 seconds.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
plot=$top_srcdir/scripts/plot
check_png=$top_srcdir/tests/check-png
data=$top_srcdir/tests/data/gate
stress=$top_builddir/stress
. "$top_srcdir/tests/tap.sh"
tap_tmp plot_test
echo "1..8"

if ! command -v gnuplot >/dev/null 2>&1; then
	for i in 1 2 3 4 5 6 7 8; do
		echo "ok $i # SKIP gnuplot is not installed"
	done
	exit 0
fi

figures() { # figures DIR NAME...: each DIR/NAME.png valid and not blank, and an SVG
	dir=$1
	shift
	for f in "$@"; do
		if [ ! -s "$dir/$f.png" ] || ! grep -q '<svg' "$dir/$f.svg" 2>/dev/null; then
			echo "missing: $dir/$f.png or .svg" >>"$tmp/err"
			return 1
		fi
		set -- "$@" "$dir/$f.png"
		shift
	done
	"$check_png" "$@" 2>>"$tmp/err"
}

"$plot" "$data/baseline.csv" -o "$tmp/one" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 0 ] && grep -q '11 figures (PNG and SVG)' "$tmp/out" &&
	grep -q '1 rows whose status is not ok left out' "$tmp/out"
check $? "one host: exit 0, 11 figures, the failed row left out (got $rc)"

figures "$tmp/one" throughput-alloc_free throughput-atomic throughput-floor \
	nsop-alloc_free nsop-atomic nsop-floor latency-alloc_free \
	latency-atomic latency-floor floor-alloc_free floor-atomic
check $? "one host: every figure is a valid, non-blank PNG, with an SVG"

"$plot" "$data/baseline.csv" "$data/host2.csv" -o "$tmp/two" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 0 ] && figures "$tmp/two" hosts-alloc_free hosts-atomic hosts-floor \
	throughput-alloc_free-ci-a throughput-alloc_free-ci-b floor-atomic-ci-b
check $? "two hosts: host-against-host and per-host figures (got $rc)"

grep -q 'AMD EPYC 7B13' "$tmp/one/throughput-alloc_free.svg" &&
	grep -q 'Mops/s' "$tmp/one/throughput-alloc_free.svg" &&
	grep -q 'host ci-a' "$tmp/one/throughput-alloc_free.svg"
check $? "titles and axes name the host, the CPU and the units"

: >"$tmp/empty.csv"
cut -d, -f1-31,33-50 "$data/baseline.csv" >"$tmp/noops.csv"
"$plot" "$tmp/empty.csv" -o "$tmp/x" >"$tmp/out" 2>"$tmp/err"
rc1=$?
"$plot" "$tmp/noops.csv" -o "$tmp/x" >"$tmp/out" 2>>"$tmp/err"
rc2=$?
"$plot" "$data/malformed.csv" -o "$tmp/x" >"$tmp/out" 2>>"$tmp/err"
rc3=$?
[ "$rc1" = 2 ] && [ "$rc2" = 2 ] && [ "$rc3" = 2 ] &&
	grep -q 'empty.csv: empty file' "$tmp/err" &&
	grep -q "noops.csv:1: missing column 'ops_per_s'" "$tmp/err" &&
	grep -q 'malformed.csv:7:' "$tmp/err"
check $? "empty file, missing column, malformed row: exit 2, clear errors"

printf '[floor]\nworkers = 1,2\nwarmup = 10ms\nduration = 50ms\n' >"$tmp/tiny.ini"
"$stress" -o "$tmp/run.csv" "$tmp/tiny.ini" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 0 ] && grep -q "^# plots: $tmp/run-plots/\$" "$tmp/out" &&
	figures "$tmp/run-plots" throughput-floor nsop-floor
check $? "./stress plots at the end of a run and says where (got $rc)"

"$stress" --no-plot -o "$tmp/np.csv" "$tmp/tiny.ini" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 0 ] && [ ! -e "$tmp/np-plots" ] && ! grep -q '^# plots' "$tmp/out"
check $? "./stress --no-plot makes no plots (got $rc)"
printf '[alloc_free]\nworkers = 1\nwarmup = 10ms\nduration = 50ms\ncache = 0, 4\n' >"$tmp/cache.ini"
"$stress" -q --no-plot -o "$tmp/cache.csv" "$tmp/cache.ini" >"$tmp/out" 2>"$tmp/err" &&
	"$plot" "$tmp/cache.csv" -o "$tmp/cache" >"$tmp/out" 2>>"$tmp/err"
rc=$?
svg=$tmp/cache/throughput-alloc_free.svg
[ "$rc" = 0 ] && grep -q '>cache=4<' "$svg" && grep -q '>alloc_free<' "$svg" &&
	! grep -q 'cache=0' "$svg"
check $? "legend: cache=4 beside the workload's name, never cache=0 (got $rc)"
exit $fail
