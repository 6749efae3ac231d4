"""stresscsv - read the CSV that `stress` writes (doc/csv-schema.md).

Shared by scripts/plot, scripts/gate and scripts/compare-hosts; Python 3
standard library only.  Columns are found by header name, never by
position (the schema only ever appends columns).  Every problem with an
input file is raised as InputError with a "file:line: what" message, which
the scripts print and turn into their "bad input" exit status.
"""

import csv
import math
import statistics

# The configuration of a run: rows that agree on all of these are
# repetitions of the same experiment.  The first ten are always present
# (the list); pin, mem, backing, hold_ns, and the backend, mode,
# pool memory and slot cache options of later schema additions, can be
# swept too, so they are part of the configuration (and tell plot lines
# apart) when the file has them.
CONFIG_KEYS = ("scenario", "section", "workload", "variant", "op", "workers",
               "batch", "capacity", "elem_size", "slots")
EXTRA_CONFIG_KEYS = ("hold_ns", "pin", "mem", "backing", "backend", "mode",
                     "hugepages", "prefault", "cache")

# Which floor op is the hardware limit of each workload: one alloc+free is
# a claim and a release of a bit (the pool's own loop shape); a typed
# atomic op is a fetch_add on a shared counter.  Documented in
# doc/ci-gate.md and doc/hardware-studies.md.
FLOOR_OP = {
    "alloc_free": "claim_release",
    "alloc_set_get_free": "claim_release",
    "blocking": "claim_release",
    "crash_recover": "claim_release",
    "atomic": "add",
}
# Floor rows closest to the row being normalised: same host and workers
# always; then, among those, the ones that also match these keys, when
# there are any (floor.ini sweeps pin, capacity and slots).
FLOOR_MATCH = {"claim_release": ("pin", "capacity"), "add": ("pin", "slots")}


class InputError(Exception):
    """A bad input file; str() is a complete "file:line: problem" text."""


class Table:
    """The rows of one or more CSV files.  Each row is a dict keyed by
    column name, plus '_file' and '_line' (where it came from)."""

    def __init__(self):
        self.columns = None  # columns common to every file read
        self.rows = []
        self.files = []

    def excluded(self):
        return [r for r in self.rows if r.get("status", "ok") != "ok"]

    def ok_rows(self):
        return [r for r in self.rows if r.get("status", "ok") == "ok"]


def read(paths, required=()):
    """Read CSV files into one Table.  Raises InputError for a missing or
    empty file, a row with the wrong number of fields, or a missing
    required column."""
    t = Table()
    for path in paths:
        header, rows = _read_one(path)
        missing = [c for c in required if c not in header]
        if missing:
            raise InputError("%s:1: missing column%s %s (a stress CSV has "
                             "them; see doc/csv-schema.md)"
                             % (path, "s" if len(missing) > 1 else "",
                                ", ".join("'%s'" % c for c in missing)))
        if t.columns is None:
            t.columns = list(header)
        else:
            t.columns = [c for c in t.columns if c in header]
        t.rows.extend(rows)
        t.files.append(path)
    return t


def _read_one(path):
    try:
        f = open(path, newline="", encoding="utf-8")
    except OSError as e:
        raise InputError("%s: %s" % (path, e.strerror)) from None
    with f:
        reader = csv.reader(f)
        header = None
        rows = []
        try:
            for fields in reader:
                line = reader.line_num
                if header is None:
                    if not fields or all(not x.strip() for x in fields):
                        continue
                    header = [x.strip() for x in fields]
                    if len(set(header)) != len(header):
                        raise InputError("%s:%d: a column name appears twice "
                                         "in the header" % (path, line))
                    continue
                if not fields:
                    continue  # blank line
                if [x.strip() for x in fields] == header:
                    continue  # header repeated by concatenating files
                if len(fields) != len(header):
                    raise InputError("%s:%d: %d fields, the header has %d"
                                     % (path, line, len(fields),
                                        len(header)))
                row = dict(zip(header, fields))
                row["_file"] = path
                row["_line"] = line
                rows.append(row)
        except csv.Error as e:
            raise InputError("%s:%d: %s" % (path, reader.line_num, e)) \
                from None
        except UnicodeDecodeError as e:
            raise InputError("%s: not UTF-8 text (%s)" % (path, e)) from None
    if header is None:
        raise InputError("%s: empty file (no header line)" % path)
    if not rows:
        raise InputError("%s: no data rows, only a header" % path)
    return header, rows


def number(row, col):
    """The value of @col in @row as a float; InputError names file:line."""
    v = row.get(col)
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise InputError("%s:%d: column '%s': '%s' is not a number"
                         % (row["_file"], row["_line"], col, v)) from None
    if math.isnan(x) or math.isinf(x):
        raise InputError("%s:%d: column '%s': '%s' is not a finite number"
                         % (row["_file"], row["_line"], col, v))
    return x


def config_keys(columns):
    return CONFIG_KEYS + tuple(k for k in EXTRA_CONFIG_KEYS if k in columns)


def median(xs):
    return statistics.median(xs)


def floor_value(row, floor_rows, metric):
    """Median @metric of the floor rows (of the same file) that are the
    hardware limit of @row's workload: same host and workers, op from
    FLOOR_OP, narrowed to those that also match FLOOR_MATCH keys when any
    do.  None when the workload has no floor or the file has no such
    rows."""
    op = FLOOR_OP.get(row["workload"])
    if op is None:
        return None
    cand = [f for f in floor_rows
            if f["_file"] == row["_file"] and f["op"] == op
            and f["host"] == row["host"] and f["workers"] == row["workers"]]
    for key in FLOOR_MATCH[op]:
        if key in row:
            same = [f for f in cand if f.get(key) == row[key]]
            if same:
                cand = same
    if not cand:
        return None
    return median([number(f, metric) for f in cand])


def higher_is_better(metric):
    """Direction of a metric from its name: throughputs (ops_per_s, any
    *_per_s, ops) are better higher; times, latencies, counts of waits and
    switches and the fairness cv are better lower.  None if unknown."""
    if metric.endswith("_per_s") or metric == "ops":
        return True
    if (metric.startswith("lat_") or metric.endswith("_ns")
            or metric in ("ns_per_op", "fairness_cv", "user_s", "sys_s",
                          "vol_cs", "invol_cs", "waits", "timeouts",
                          "duration_s")):
        return False
    return None
