#!/bin/sh
# stress_backends.sh - the alloc_free backends and the thread mode: the run
# matrix of scenarios/compare.ini; a short run of every backend in both
# modes exits 0 with ops > 0 and every slot back (the verify step); a
# leaked slot fails the verify step of every backend; the combinations
# that cannot work are scenario errors with exact messages; hugepages = on
# is refused while no huge page is reserved and, as root with a few pages
# added to /proc/sys/vm/nr_hugepages (taken away again on exit), runs every
# backend.  Prints TAP.  A few seconds; no timing is asserted.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
stress=$(cd "$top_builddir" && pwd)/stress
. "$top_srcdir/tests/tap.sh"
tap_tmp stress_backends
cd "$top_srcdir" || exit 1
data=tests/data/scenarios
nr=/proc/sys/vm/nr_hugepages
added=0 # huge pages this script added to $nr
# Take back what this script added, whatever happened meanwhile.
release_pages() {
	if [ "$added" -gt 0 ]; then
		cur=$(cat "$nr")
		echo $((cur > added ? cur - added : 0)) >"$nr"
		added=0
	fi
}
trap 'release_pages; rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM


# Value of column $2 in every row of CSV $1, one per line.
col() {
	awk -F, -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next }
		{ print $k }' "$1"
}

echo "1..10"

# Built with liburcu?  Then a urcu point in thread mode is valid.
printf '[alloc_free]\nmode = threads\nbackend = urcu\n' >"$tmp/urcu.ini"
if "$stress" --check "$tmp/urcu.ini" >/dev/null 2>&1; then
	have_urcu=yes
else
	have_urcu=no
fi

# 1. compare.ini's matrix, exactly, on one CPU (workers = 1..$ncpus).
cpu=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*\([0-9]*\).*/\1/p' /proc/self/status)
if [ "$have_urcu" = no ]; then
	skip "compare.ini: run matrix as expected" "stress built without liburcu"
elif ! command -v taskset >/dev/null 2>&1 || [ -z "$cpu" ]; then
	skip "compare.ini: run matrix as expected" "no taskset"
else
	taskset -c "$cpu" "$stress" --check scenarios/compare.ini >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" = 0 ] && [ ! -s "$tmp/err" ] &&
	   diff -u "$data/compare.check" "$tmp/out" >"$tmp/diff"; then
		ok "compare.ini: run matrix as expected"
	else
		sed 's/^/# /' "$tmp/diff" "$tmp/err"
		not_ok "compare.ini: run matrix as expected (got $rc)"
	fi
fi

# 2. ... and on every CPU here: 10 points per worker count, 3 repeats.
if [ "$have_urcu" = yes ]; then
	ncpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) # as $ncpus
	"$stress" --check scenarios/compare.ini >"$tmp/out" 2>"$tmp/err"
	rc=$?
	want="scenarios/compare.ini: $((10 * ncpus)) points, $((30 * ncpus)) runs,"
	if [ "$rc" = 0 ] && head -n 1 "$tmp/out" | grep -q "^$want"; then
		ok "compare.ini: 10 x $ncpus points"
	else
		head -n 1 "$tmp/out" | sed 's/^/# got: /'
		echo "# want: $want"
		not_ok "compare.ini: 10 x $ncpus points (got $rc)"
	fi
else
	skip "compare.ini: 10 points per worker count" "stress built without liburcu"
fi

# 3-5. Every backend in both modes, briefly: exit 0, every row ok with
# ops > 0 (the verify step found every slot back), and the new columns.
bk=$data/backends.ini
if [ "$have_urcu" = no ]; then
	# Without liburcu the urcu points are errors: drop them.
	sed 's/, urcu//; /^\[ops\]/,$d' "$bk" >"$tmp/backends.ini"
	bk=$tmp/backends.ini
fi
"$stress" -q --no-plot -o "$tmp/b.csv" "$bk" >"$tmp/out" 2>"$tmp/err"
rc=$?
runs=$("$stress" --check "$bk" | sed -n 's/.* \([0-9]*\) runs*, about.*/\1/p')
rows=$(($(wc -l <"$tmp/b.csv") - 1))
if [ "$rc" = 0 ] && [ "$rows" = "$runs" ] && [ "$rows" -gt 0 ]; then
	ok "backends.ini: $rows runs, exit 0"
else
	sed 's/^/# /' "$tmp/err"
	not_ok "backends.ini: exit 0 and one row per run (got $rc, $rows rows of $runs)"
fi
col "$tmp/b.csv" status >"$tmp/status"
col "$tmp/b.csv" ops >"$tmp/ops"
col "$tmp/b.csv" violations >"$tmp/viol"
bad=$(paste -d' ' "$tmp/status" "$tmp/ops" "$tmp/viol" |
	awk '$1 != "ok" || $2 <= 0 || $3 != 0')
if [ -s "$tmp/status" ] && [ -z "$bad" ]; then
	ok "every backend run is ok, with ops > 0 and no violation"
else
	echo "$bad" | sed 's/^/# status ops violations: /'
	not_ok "every backend run is ok, with ops > 0 and no violation"
fi
for c in backend mode hugepages prefault; do
	col "$tmp/b.csv" $c >"$tmp/c.$c"
done
got=$(paste -d/ "$tmp/c.backend" "$tmp/c.mode" "$tmp/c.hugepages" \
	"$tmp/c.prefault" | sort -u | tr '\n' ' ')
want="floor/processes/off/off floor/threads/off/off mutex/processes/off/off mutex/threads/off/off shmpool/processes/off/off shmpool/threads/off/off "
[ "$have_urcu" = yes ] &&
	want="floor/processes/off/off floor/threads/off/off mutex/processes/off/off mutex/threads/off/off shmpool/processes/off/off shmpool/threads/off/off urcu/threads/off/off urcu/threads/thp/on "
if [ "$got" = "$want" ]; then
	ok "CSV records backend, mode, hugepages and prefault"
else
	echo "# got:  $got"
	echo "# want: $want"
	not_ok "CSV records backend, mode, hugepages and prefault"
fi

# 6. A leaked slot fails the verify step of every alternative backend.
SHMPOOL_STRESS_FAULT=skip_free "$stress" -q --no-plot -o "$tmp/leak.csv" \
	"$bk" >"$tmp/out" 2>"$tmp/err"
rc=$?
col "$tmp/leak.csv" backend >"$tmp/lb"
col "$tmp/leak.csv" status >"$tmp/ls"
# shmpool's own loop has no fault hook: its rows stay ok.
bad=$(paste -d' ' "$tmp/lb" "$tmp/ls" |
	awk '($1 == "shmpool") != ($2 == "ok")')
if [ "$rc" = 1 ] && [ -s "$tmp/ls" ] && [ -z "$bad" ] &&
   grep -q "slot(s) back in the mutex free list" "$tmp/err" &&
   grep -q "slot(s) back in the floor free list" "$tmp/err" &&
   { [ "$have_urcu" = no ] ||
     grep -q "slot(s) back in the urcu free list" "$tmp/err"; }; then
	ok "a leaked slot fails the verify step of mutex, urcu and floor (exit 1)"
else
	echo "$bad" | sed 's/^/# backend status: /'
	sed 's/^/# /' "$tmp/err" | head -n 20
	not_ok "a leaked slot fails the verify step (got $rc)"
fi

# 7. The combinations that cannot work: exact messages, exit 2.
"$stress" --check "$data/bad-modes.ini" >"$tmp/out" 2>"$tmp/err"
rc=$?
grep -v '^stress: [0-9]* errors*, nothing run$' "$tmp/err" >"$tmp/msgs"
expect=$data/bad-modes.err
if [ "$have_urcu" = no ]; then
	sed "s/key 'backend': urcu needs mode = threads:.*(section/key 'backend': urcu is not available: this stress was built without liburcu (install liburcu-dev, re-run configure and make) (section/" \
		"$expect" >"$tmp/expect"
	expect=$tmp/expect
fi
if [ "$rc" = 2 ] && [ ! -s "$tmp/out" ] &&
   diff -u "$expect" "$tmp/msgs" >"$tmp/diff"; then
	ok "bad-modes.ini: urcu with processes and crash_recover with threads refused, exit 2"
else
	sed 's/^/# /' "$tmp/diff"
	not_ok "bad-modes.ini: expected messages, exit 2 (got $rc)"
fi

# 8. Every other workload runs in thread mode too.
cat >"$tmp/threads.ini" <<'EOF'
[global]
mode = threads
workers = 2
warmup = 0
duration = 100ms
[alloc_set_get_free]
[atomic]
[blocking]
capacity = 1
[floor]
op = claim_release, add
EOF
"$stress" -q --no-plot -o "$tmp/t.csv" "$tmp/threads.ini" >"$tmp/out" 2>"$tmp/err"
rc=$?
col "$tmp/t.csv" status >"$tmp/ts"
col "$tmp/t.csv" mode >"$tmp/tm"
if [ "$rc" = 0 ] && [ "$(sort -u "$tmp/ts")" = ok ] &&
   [ "$(sort -u "$tmp/tm")" = threads ] && [ "$(wc -l <"$tmp/ts")" = 5 ]; then
	ok "alloc_set_get_free, atomic, blocking, floor run as threads"
else
	sed 's/^/# /' "$tmp/err"
	not_ok "every workload runs as threads (got $rc)"
fi

# 9-10. hugepages = on.  nr_hugepages is global: hold the lock that
# tests/test_hugetlb holds for its whole run, so neither sees the other's
# pages (flock(1) is util-linux; without it the run is unserialised).
meminfo() { sed -n "s/^$1:[[:space:]]*\([0-9]*\).*/\1/p" /proc/meminfo; }
lockf=/tmp/.shmpool-nr_hugepages.lock
# (a failed redirection on exec would end the script: try it first)
if (: >>"$lockf") 2>/dev/null && command -v flock >/dev/null 2>&1; then
	exec 9>>"$lockf"
	flock -w 200 9
fi
printf '[alloc_free]\nhugepages = on\n' >"$tmp/huge-check.ini"
if [ -z "$(meminfo Hugepagesize)" ]; then
	skip "hugepages = on refused while no huge page is reserved" \
		"kernel without huge pages"
elif [ "$(meminfo HugePages_Total)" != 0 ] ||
     [ "$(cat /proc/sys/vm/nr_overcommit_hugepages)" != 0 ]; then
	skip "hugepages = on refused while no huge page is reserved" \
		"huge pages are reserved on this machine ($nr = $(cat "$nr"))"
else
	"$stress" --check "$tmp/huge-check.ini" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" = 3 ] && [ ! -s "$tmp/out" ] &&
	   grep -q "huge-check.ini:2: key 'hugepages': on needs reserved huge pages.*echo N > /proc/sys/vm/nr_hugepages" "$tmp/err"; then
		ok "hugepages = on refused while no huge page is reserved (exit 3)"
	else
		sed 's/^/# /' "$tmp/err"
		not_ok "hugepages = on refused while no huge page is reserved (got $rc)"
	fi
fi

# Every backend on explicit huge pages: the pool (SHMPOOL_HUGETLB) and the
# alternatives' shared memory (MAP_HUGETLB), one huge page each at least.
want_pages=8
reason=
if [ -z "$(meminfo Hugepagesize)" ]; then
	reason="kernel without huge pages"
elif [ "$(id -u)" != 0 ]; then
	reason="not root: cannot reserve huge pages in $nr"
else
	cur=$(cat "$nr")
	if echo $((cur + want_pages)) 2>"$tmp/err" >"$nr"; then
		added=$(($(cat "$nr") - cur))
		[ "$added" -lt 0 ] && added=0
		free=$(($(meminfo HugePages_Free) - $(meminfo HugePages_Rsvd)))
		[ "$free" -lt 4 ] &&
			reason="the kernel gave $added of $want_pages huge pages asked for ($free free)"
	else
		reason="cannot write $nr: $(cat "$tmp/err")"
	fi
fi
cat >"$tmp/huge.ini" <<'EOF'
[global]
workload = alloc_free
hugepages = on
workers = 2
warmup = 0
duration = 100ms
[processes]
backend = shmpool, mutex, floor
backing = anon, memfd
[threads]
mode = threads
backend = shmpool, urcu
EOF
[ "$have_urcu" = no ] && sed -i 's/, urcu//' "$tmp/huge.ini"
if [ -n "$reason" ]; then
	skip "hugepages = on: every backend runs on huge pages" "$reason"
else
	"$stress" -q --no-plot -o "$tmp/h.csv" "$tmp/huge.ini" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	col "$tmp/h.csv" status >"$tmp/hs"
	col "$tmp/h.csv" hugepages >"$tmp/hh"
	rows=$(wc -l <"$tmp/hs")
	if [ "$rc" = 0 ] && [ "$(sort -u "$tmp/hs")" = ok ] &&
	   [ "$(sort -u "$tmp/hh")" = on ] && [ "$rows" -ge 6 ]; then
		ok "hugepages = on: every backend runs on huge pages ($rows runs)"
	else
		sed 's/^/# /' "$tmp/err"
		not_ok "hugepages = on: every backend runs (got $rc, $rows rows)"
	fi
fi
release_pages
exec 9>&-
exit $fail
