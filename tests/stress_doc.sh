#!/bin/sh
# stress_doc.sh - the generated documents are current: doc/scenario-format.md
# is `stress --doc`, doc/csv-schema.md is `stress --csv-doc`.  Regenerate
# them with those commands when this fails.  Prints TAP.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
stress=$top_builddir/stress
echo "1..2"
fail=0
if "$stress" --doc | diff -u "$top_srcdir/doc/scenario-format.md" - | sed 's/^/# /' | grep -q .; then
	"$stress" --doc | diff -u "$top_srcdir/doc/scenario-format.md" - | sed 's/^/# /'
	echo "not ok 1 - doc/scenario-format.md is stale: ./stress --doc > doc/scenario-format.md"
	fail=1
else
	echo "ok 1 - doc/scenario-format.md matches stress --doc"
fi
if "$stress" --csv-doc | diff -u "$top_srcdir/doc/csv-schema.md" - | sed 's/^/# /' | grep -q .; then
	"$stress" --csv-doc | diff -u "$top_srcdir/doc/csv-schema.md" - | sed 's/^/# /'
	echo "not ok 2 - doc/csv-schema.md is stale: ./stress --csv-doc > doc/csv-schema.md"
	fail=1
else
	echo "ok 2 - doc/csv-schema.md matches stress --csv-doc"
fi
exit $fail
