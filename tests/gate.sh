#!/bin/sh
# gate.sh - scripts/gate on the fixtures in tests/data/gate (made by
# tests/data/gate/gen-fixtures): a 20% drop in one group fails (exit 1)
# and is named; identical, noisy-but-unchanged and too-short samples pass
# (exit 0, the last with a warning); a malformed CSV is exit 2 with its
# line.  Also checks the exact Mann-Whitney p-values against brute-force
# enumeration.  No live timings.  Prints TAP.  A few seconds.
set -u
top_srcdir=${top_srcdir:-.}
gate=$top_srcdir/scripts/gate
data=$top_srcdir/tests/data/gate
. "$top_srcdir/tests/tap.sh"
tap_tmp gate_test
echo "1..16"

run() { # run ARGS...: $rc, $tmp/out, $tmp/err
	"$gate" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}

run "$data/baseline.csv" "$data/drop20.csv" --markdown "$tmp/report.md"
[ "$rc" = 1 ]; check $? "20% drop: exit 1 (got $rc)"
regressed=$(grep -c '^| \*\*REGRESSED\*\*' "$tmp/out")
grep -q '^regressed: ci:alloc_free alloc_free raw workers=2 ' "$tmp/out" &&
	[ "$regressed" = 1 ]
check $? "20% drop: exactly one group regressed, alloc_free workers=2, named"
cmp -s "$tmp/out" "$tmp/report.md"
check $? "--markdown FILE holds the same report"
grep -q '1 excluded: status worker_died' "$tmp/out" &&
	grep -q '| ci:alloc_free alloc_free raw workers=1 | 10 |' "$tmp/out"
check $? "the baseline's failed row is excluded from the statistics"

run "$data/baseline.csv" "$data/drop20.csv" --metric ns_per_op
[ "$rc" = 1 ] && grep -q '^regressed: ci:alloc_free alloc_free raw workers=2 ' "$tmp/out"
check $? "ns_per_op (higher is worse) finds the same regression (got $rc)"

run "$data/baseline.csv" "$data/same.csv"
[ "$rc" = 0 ] && grep -q '0 regressed, 0 improved, 8 unchanged' "$tmp/out"
check $? "identical distributions: exit 0, all unchanged (got $rc)"

run "$data/baseline.csv" "$data/noisy.csv"
[ "$rc" = 0 ] && grep -q '^\*\*OK\*\*: 0 regressed' "$tmp/out"
check $? "noisy but unchanged: exit 0 (got $rc)"

run "$data/baseline.csv" "$data/few.csv"
[ "$rc" = 0 ] && grep -q '8 insufficient data' "$tmp/out" &&
	grep -q 'warning: .*insufficient data: 10 baseline and 2 current' "$tmp/err"
check $? "2 repetitions: insufficient data, exit 0, warning on stderr (got $rc)"

run "$data/baseline.csv" "$data/few.csv" --min-reps 2
[ "$rc" = 0 ] && grep -q 'can never be called regressed (needs 5+' "$tmp/err"
check $? "a group that cannot reach alpha 0.01 is warned about (got $rc)"

run "$data/baseline.csv" "$data/malformed.csv"
[ "$rc" = 2 ] && grep -q 'malformed.csv:7: 30 fields, the header has 50' "$tmp/err"
check $? "malformed CSV: exit 2 naming file:line (got $rc)"

: >"$tmp/empty.csv"
cut -d, -f1-49 "$data/baseline.csv" >"$tmp/nostatus.csv"
run "$data/baseline.csv" "$tmp/empty.csv"
rc1=$rc
grep -q 'empty.csv: empty file' "$tmp/err"
e1=$?
run "$tmp/nostatus.csv" "$data/baseline.csv"
[ "$rc1" = 2 ] && [ "$e1" = 0 ] && [ "$rc" = 2 ] &&
	grep -q "nostatus.csv:1: missing column 'status'" "$tmp/err"
check $? "empty file and missing column: exit 2 with a clear error"

run "$data/baseline.csv" "$data/drop20.csv" --metric kills
rc1=$rc
run "$data/baseline.csv" "$data/drop20.csv" --min-effect 5
[ "$rc1" = 2 ] && [ "$rc" = 2 ] && grep -q 'write a percentage' "$tmp/err"
check $? "usage errors (metric of unknown direction, bare --min-effect 5): exit 2"

run "$data/baseline.csv" "$data/host2.csv"
rc1=$rc
run "$data/baseline.csv" "$data/host2.csv" --normalize floor
[ "$rc1" = 1 ] && [ "$rc" = 0 ] && grep -q '0 regressed, 0 improved, 4 unchanged' "$tmp/out"
check $? "a 30% slower host: regressed as is, unchanged as a fraction of its floor"

run --calibrate "$data/baseline.csv" "$data/noisy.csv"
[ "$rc" = 0 ] && grep -q '^\*\*suggested --min-effect [0-9]*%\*\*' "$tmp/out"
check $? "--calibrate reports the noise and suggests --min-effect (got $rc)"

run "$data/baseline.csv" "$data/drop20.csv" --min-effect 25%
[ "$rc" = 0 ] && grep -q 'significant, below min-effect' "$tmp/out"
check $? "a significant change below --min-effect is not a regression"

# The exact test: p-values against enumerating every split, with ties.
python3 - "$gate" >"$tmp/out" 2>"$tmp/err" <<'PY'
import importlib.machinery, importlib.util, itertools, random, sys
sys.dont_write_bytecode = True
loader = importlib.machinery.SourceFileLoader("gate", sys.argv[1])
spec = importlib.util.spec_from_loader("gate", loader)
g = importlib.util.module_from_spec(spec)
loader.exec_module(g)
assert g.mann_whitney([1, 2, 3], [4, 5, 6])[1] == 0.1
assert abs(g.mann_whitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])[1] - 2 / 252) < 1e-15
assert [g.min_reps_for(a) for a in (0.1, 0.05, 0.01, 0.001)] == [3, 4, 5, 7]
rnd = random.Random(7)
for _ in range(200):
    x = [rnd.randint(0, 5) for _ in range(rnd.randint(1, 6))]
    y = [rnd.randint(0, 6) for _ in range(rnd.randint(1, 6))]
    r2 = g.midranks(x + y)
    w = sum(r2[:len(x)])
    sums = [sum(r2[i] for i in c)
            for c in itertools.combinations(range(len(r2)), len(x))]
    lo = sum(s <= w for s in sums)
    hi = sum(s >= w for s in sums)
    want = min(1, 2 * min(lo, hi) / len(sums))
    got = g.mann_whitney(x, y)[1]
    assert abs(got - want) < 1e-12, (x, y, got, want)
print("exact p-values match enumeration")
PY
check $? "exact Mann-Whitney p-values match brute-force enumeration"
exit $fail
