#!/bin/sh
# stress_parser.sh - scenario parsing: every bad file gives exactly its
# expected messages and exit status 2, the environment check exits 3, and
# the sweep expansion of a good file (--check) is exactly as expected.
# Prints TAP.  Runs from the source tree so that messages name
# tests/data/scenarios/... whatever the build directory.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
stress=$(cd "$top_builddir" && pwd)/stress
. "$top_srcdir/tests/tap.sh"
tap_tmp stress_parser
cd "$top_srcdir" || exit 1
data=tests/data/scenarios

echo "1..12"

# Bad files: exact stderr (minus the closing count line), status 2.
for f in bad-keys bad-values bad-syntax bad-checks bad-indent; do
	"$stress" --check "$data/$f.ini" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	grep -v '^stress: [0-9]* errors*, nothing run$' "$tmp/err" >"$tmp/msgs"
	if [ "$rc" = 2 ] && [ ! -s "$tmp/out" ] &&
	   diff -u "$data/$f.err" "$tmp/msgs" >"$tmp/diff"; then
		ok "$f.ini: expected messages, exit 2"
	else
		sed 's/^/# /' "$tmp/diff"
		not_ok "$f.ini: expected messages, exit 2 (got $rc)"
	fi
done

# A CPU or node that does not exist is the environment's refusal: 3.
"$stress" --check "$data/bad-env.ini" >/dev/null 2>"$tmp/err"
rc=$?
if [ "$rc" = 3 ] &&
   grep -q "^$data/bad-env.ini:3: key 'pin': CPU 1000 does not exist" "$tmp/err" &&
   grep -q "^$data/bad-env.ini:4: key 'mem': NUMA node 999 does not exist" "$tmp/err"; then
	ok "bad-env.ini: CPU and node refused, exit 3"
else
	sed 's/^/# /' "$tmp/err"
	not_ok "bad-env.ini: CPU and node refused, exit 3 (got $rc)"
fi

# Sweep expansion: lists, ranges, ${VAR}, units, [global], products.
STRESS_TEST_WORKERS=1,2 "$stress" --check "$data/good-sweep.ini" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" = 0 ] && [ ! -s "$tmp/err" ] &&
   diff -u "$data/good-sweep.check" "$tmp/out" >"$tmp/diff"; then
	ok "good-sweep.ini: run matrix as expected"
else
	sed 's/^/# /' "$tmp/diff" "$tmp/err"
	not_ok "good-sweep.ini: run matrix as expected (got $rc)"
fi

# The same file without its variable: the unset ${VAR} is an error.
env -u STRESS_TEST_WORKERS "$stress" --check "$data/good-sweep.ini" >/dev/null 2>"$tmp/err"
rc=$?
if [ "$rc" = 2 ] && grep -q "^$data/good-sweep.ini:6: key 'workers': environment variable 'STRESS_TEST_WORKERS' is not set$" "$tmp/err"; then
	ok "unset \${VAR} is an error"
else
	sed 's/^/# /' "$tmp/err"
	not_ok "unset \${VAR} is an error (got $rc)"
fi

# Every shipped scenario parses (in a build without liburcu, a urcu
# backend is the one error allowed: compare.ini asks for it).
bad=
for f in scenarios/*.ini; do
	"$stress" --check "$f" >/dev/null 2>"$tmp/err" && continue
	if grep -v -e "urcu is not available" \
	   -e '^stress: [0-9]* errors*, nothing run$' "$tmp/err" | grep -q .; then
		bad="$bad $f"
	fi
done
if [ -z "$bad" ]; then
	ok "every scenarios/*.ini passes --check"
else
	not_ok "scenarios that fail --check:$bad"
fi

# Command line: usage errors are 2, --help/--list are 0.
"$stress" --no-such-option >/dev/null 2>&1
rc=$?
[ "$rc" = 2 ] && ok "unknown option: exit 2" || not_ok "unknown option: exit 2 (got $rc)"
"$stress" --check does-not-exist.ini >/dev/null 2>&1
rc=$?
[ "$rc" = 2 ] && ok "missing file: exit 2" || not_ok "missing file: exit 2 (got $rc)"
if "$stress" --help | grep -q '^  workers ' && "$stress" --list | grep -q '^crash_recover$'; then
	ok "--help lists the keys, --list the workloads"
else
	not_ok "--help lists the keys, --list the workloads"
fi
exit $fail
