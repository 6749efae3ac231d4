#!/bin/sh
# icount.sh - scripts/icount: callgrind counts the instructions of every
# fast path, the same count twice, in the order the design promises (a
# cached pair below an uncached one, a slot of a batch below a single
# pair); against a baseline a rise beyond the tolerance fails (exit 1) and
# is named, a baseline of another compiler is refused (exit 3), a bad CSV
# is exit 2 with its line; a sanitizer build is refused (exit 5) and its
# counting checks are skipped.  Then the gate on the committed counts of
# tests/data/icount-baseline.csv.  Counts, not timings.  Prints TAP.
# Under 20 s.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
export top_builddir
icount=$top_srcdir/scripts/icount
. "$top_srcdir/tests/tap.sh"
tap_tmp icount_test
echo "1..14"

run() { # run ARGS...: $rc, $tmp/out, $tmp/err
	"$icount" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}

# field F (1-based) of the CSV row of OP
field() { awk -F, -v op="$2" -v f="$3" '$1 == op { print $f }' "$1"; }
count() { field "$1" "$2" 3; }
# is A < B (decimal numbers)?
less() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

# Input errors come before any counting, in every build.
printf 'op,unit,instructions\nalloc_free,pair,100\n' >"$tmp/bad.csv"
run alloc_free --baseline "$tmp/bad.csv"
[ "$rc" = 2 ] && grep -q "bad.csv:1: not an icount CSV" "$tmp/err"
check $? "a CSV of something else: exit 2, file:line (got $rc)"

printf 'op,unit,instructions,calls,build,cc,cflags\n' >"$tmp/nan.csv"
printf 'alloc_free,pair,many,1,b,cc,-O2\n' >>"$tmp/nan.csv"
printf 'i64_add,call,nan,1,b,cc,-O2\n' >>"$tmp/nan.csv"
run alloc_free --baseline "$tmp/nan.csv"
rc1=$rc
grep -q "nan.csv:2: instructions 'many' is not a positive number" "$tmp/err"
e1=$?
sed -i 2d "$tmp/nan.csv" # now the nan row is line 2
run alloc_free --baseline "$tmp/nan.csv"
[ "$rc1" = 2 ] && [ "$e1" = 0 ] && [ "$rc" = 2 ] &&
	grep -q "nan.csv:2: instructions 'nan' is not a positive number" "$tmp/err"
check $? "counts 'many' and 'nan': exit 2, file:line (got $rc1, $rc)"

run no_such_op
rc1=$rc
run alloc_free --tolerance nan
rc2=$rc
run alloc_free -o "$tmp/no/such/dir/out.csv"
rc3=$rc
run alloc_free --calls 0
[ "$rc1" = 2 ] && [ "$rc2" = 2 ] && [ "$rc3" = 2 ] && [ "$rc" = 2 ] &&
	grep -q -- "--calls must be at least 1" "$tmp/err"
check $? "unknown op, --tolerance nan, unwritable -o, --calls 0: exit 2 (got $rc1, $rc2, $rc3, $rc)"

# valgrind cannot run a sanitizer build (CI makes one): refused, exit 5
if grep -q '^CFLAGS = .*-fsanitize' "$top_builddir/Makefile"; then
	run alloc_free
	[ "$rc" = 5 ] && grep -q "this build has sanitizers" "$tmp/err"
	check $? "a sanitizer build is refused: exit 5 (got $rc)"
	for i in 1 2 3 4 5 6 7 8 9 10; do
		skip "counting (check $i of 10)" "sanitizer build: valgrind cannot run it"
	done
	exit $fail
fi

run -o "$tmp/a.csv"
ops=$("$icount" --list | wc -l)
rows=$(($(wc -l <"$tmp/a.csv") - 1))
[ "$rc" = 0 ] && [ "$ops" -ge 8 ] && [ "$rows" = "$ops" ] &&
	head -1 "$tmp/a.csv" | grep -qx 'op,unit,instructions,calls,build,cc,cflags'
check $? "every op counted, one CSV row each (exit $rc, $rows rows, $ops ops)"

bad=$(awk -F, 'NR > 1 && !($3 + 0 > 0) { print $1 }' "$tmp/a.csv")
[ -z "$bad" ]
check $? "every count is positive${bad:+ (not: $bad)}"

run alloc_free i64_add -o "$tmp/b.csv"
[ "$rc" = 0 ] &&
	[ "$(count "$tmp/a.csv" alloc_free)" = "$(count "$tmp/b.csv" alloc_free)" ] &&
	[ "$(count "$tmp/a.csv" i64_add)" = "$(count "$tmp/b.csv" i64_add)" ]
check $? "a second run counts exactly the same"

less "$(count "$tmp/a.csv" alloc_free_cache)" "$(count "$tmp/a.csv" alloc_free)"
check $? "a pair through a slot cache costs fewer instructions than without ($(count "$tmp/a.csv" alloc_free_cache) vs $(count "$tmp/a.csv" alloc_free))"

less "$(count "$tmp/a.csv" batch64)" "$(count "$tmp/a.csv" i64_alloc_free)"
check $? "a slot of a batch of 64 costs fewer than a single pair ($(count "$tmp/a.csv" batch64) vs $(count "$tmp/a.csv" i64_alloc_free))"

less "$(count "$tmp/a.csv" i64_add)" "$(count "$tmp/a.csv" i64_alloc_free)"
check $? "an atomic add costs fewer than an alloc + free pair"

# the same counts as baseline: nothing moved
run alloc_free i64_add --baseline "$tmp/b.csv"
[ "$rc" = 0 ] && [ "$(grep -c ' unchanged$' "$tmp/out")" = 2 ]
check $? "against its own counts: exit 0, both unchanged (got $rc)"

# a baseline 10% below today's alloc_free: that is a 10% rise
awk -F, -v OFS=, 'NR > 1 && $1 == "alloc_free" { $3 = $3 * 0.9 } { print }' \
	"$tmp/b.csv" >"$tmp/low.csv"
run alloc_free i64_add --baseline "$tmp/low.csv"
[ "$rc" = 1 ] && grep -q '^alloc_free .*REGRESSED$' "$tmp/out" &&
	grep -q '^i64_add .* unchanged$' "$tmp/out"
check $? "a 10% rise: exit 1, alloc_free REGRESSED, i64_add not (got $rc)"

run alloc_free --baseline "$tmp/low.csv" --tolerance 15
[ "$rc" = 0 ]
check $? "the same rise within --tolerance 15: exit 0 (got $rc)"

awk -F, -v OFS=, 'NR > 1 { $6 = "cc 0.1" } { print }' "$tmp/b.csv" >"$tmp/cc.csv"
run alloc_free --baseline "$tmp/cc.csv"
[ "$rc" = 3 ] && grep -q "cc 'cc 0.1'" "$tmp/err"
check $? "a baseline of another compiler: exit 3, named (got $rc)"

# The gate itself, on the committed counts of the fast paths (made by
# "scripts/icount -o tests/data/icount-baseline.csv" on Debian 12's gcc
# 12.2 with the default -g -O2, as CI builds).  A change that makes a fast
# path longer by more than 3% fails here; if it is meant, write the file
# again and say why in the commit.  Another compiler or flags: no gate.
run --baseline "$top_srcdir/tests/data/icount-baseline.csv" --tolerance 3
if [ "$rc" = 3 ]; then
	skip "the fast paths within 3% of tests/data/icount-baseline.csv" \
		"this build's compiler or flags are not the baseline's"
else
	[ "$rc" = 0 ]
	check $? "the fast paths within 3% of tests/data/icount-baseline.csv (exit $rc)"
fi

exit $fail
