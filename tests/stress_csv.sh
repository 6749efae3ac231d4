#!/bin/sh
# stress_csv.sh - scenarios/smoke.ini runs every workload end to end and
# exits 0; the CSV has the documented header and one ok row per run.
# Prints TAP.  A few seconds.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
stress=$top_builddir/stress
tmp=${TMPDIR:-/tmp}/stress_csv.$$
mkdir -p "$tmp" || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0
echo "1..5"

"$stress" -o "$tmp/smoke.csv" "$top_srcdir/scenarios/smoke.ini" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" = 0 ]; then
	echo "ok 1 - smoke.ini exits 0"
else
	sed 's/^/# /' "$tmp/out" "$tmp/err"
	echo "not ok 1 - smoke.ini exits 0 (got $rc)"
	fail=1
fi

required="schema_version timestamp host cpu_model ncpus numa_nodes kernel
version scenario section workload variant op workers batch capacity elem_size
slots pin mem cpus rep duration_s ops ops_per_s ns_per_op lat_p50_ns
lat_p90_ns lat_p99_ns lat_p999_ns lat_max_ns fairness_cv waits timeouts kills
recoveries violations user_s sys_s vol_cs invol_cs status"
header=$(head -n 1 "$tmp/smoke.csv" 2>/dev/null)
missing=
for c in $required; do
	case ",$header," in
	*",$c,"*) ;;
	*) missing="$missing $c" ;;
	esac
done
if [ -n "$header" ] && [ -z "$missing" ]; then
	echo "ok 2 - CSV header has every required column"
else
	echo "not ok 2 - CSV header lacks:$missing"
	fail=1
fi

# Every header column is documented, in order.
doc_cols=$(sed -n 's/^| [0-9]* | `\([a-z0-9_]*\)` |.*/\1/p' "$top_srcdir/doc/csv-schema.md" | tr '\n' ',' | sed 's/,$//')
if [ "$doc_cols" = "$header" ]; then
	echo "ok 3 - doc/csv-schema.md documents the header, in order"
else
	echo "# header: $header"
	echo "# doc:    $doc_cols"
	echo "not ok 3 - doc/csv-schema.md documents the header, in order"
	fail=1
fi

runs=$("$stress" --check "$top_srcdir/scenarios/smoke.ini" | sed -n 's/.* \([0-9]*\) runs*, about.*/\1/p')
rows=$(($(wc -l <"$tmp/smoke.csv") - 1))
if [ -n "$runs" ] && [ "$rows" = "$runs" ]; then
	echo "ok 4 - one row per run ($rows)"
else
	echo "not ok 4 - one row per run (rows $rows, runs $runs)"
	fail=1
fi

# Every run ok (status found by name: columns are appended after it),
# and the same column count.
ncols=$(echo "$header" | awk -F, '{ print NF }')
bad=$(awk -F, -v n="$ncols" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "status") k = i; next }
	(k == 0 || $k != "ok" || NF != n)' "$tmp/smoke.csv")
if [ -z "$bad" ]; then
	echo "ok 5 - every row is complete and ok"
else
	echo "$bad" | sed 's/^/# /'
	echo "not ok 5 - every row is complete and ok"
	fail=1
fi
exit $fail
