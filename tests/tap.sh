# tap.sh - sourced by the shell tests: a private temporary directory and
# the TAP result helpers they share.
#
#   tap_tmp NAME       $tmp: a new directory under $TMPDIR, removed at exit
#   ok DESC            "ok N - DESC"
#   not_ok DESC        "not ok N - DESC", and $fail becomes 1
#   skip DESC WHY      "ok N - DESC # SKIP WHY"
#   check STATUS DESC  ok when STATUS is 0; otherwise what the command
#                      under test printed ($tmp/out, $tmp/err) as TAP
#                      comments, then not ok
#
# $n counts the results printed so far.

n=0
fail=0

tap_tmp() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || exit 1
	trap 'rm -rf "$tmp"' EXIT
}

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}

not_ok() {
	n=$((n + 1))
	fail=1
	echo "not ok $n - $1"
}

skip() {
	n=$((n + 1))
	echo "ok $n - $1 # SKIP $2"
}

check() {
	if [ "$1" = 0 ]; then
		ok "$2"
	else
		sed 's/^/# /' "$tmp/out" "$tmp/err" 2>/dev/null
		not_ok "$2"
	fi
}
