/*
 * scenario.h - scenario files: the option table, parsing, sweep expansion.
 */
#ifndef STRESS_SCENARIO_H
#define STRESS_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum opt_type {
	OT_INT,
	OT_SIZE,
	OT_DURATION,
	OT_ENUM,
	OT_OP,
	OT_WORKLOAD,
	OT_PIN,
	OT_MEM,
};

/* Numeric keys are int64_t (bytes, ns), the others strings. */
#define OPT_FIELD_INT(n) int64_t n;
#define OPT_FIELD_SIZE(n) int64_t n;
#define OPT_FIELD_DURATION(n) int64_t n;
#define OPT_FIELD_ENUM(n) const char *n;
#define OPT_FIELD_OP(n) const char *n;
#define OPT_FIELD_WORKLOAD(n) const char *n;
#define OPT_FIELD_PIN(n) const char *n;
#define OPT_FIELD_MEM(n) const char *n;

/* One point of the run matrix: every key resolved to one value. */
struct config {
#define OPT(name, type, def, lo, hi, choices, help) OPT_FIELD_##type(name)
#include "options.def"
#undef OPT
};

enum opt_id {
#define OPT(name, type, def, lo, hi, choices, help) OPT_ID_##name,
#include "options.def"
#undef OPT
	NOPTS
};

struct opt_def {
	const char *name;
	enum opt_type type;
	const char *def;
	int64_t min, max;
	const char *choices;
	const char *help;
	size_t offset; /* into struct config; every key has one */
};

extern const struct opt_def options[NOPTS];

/* Where a value came from, for error messages. */
struct origin {
	const char *file;
	int line; /* 0: the built-in default or a command-line override */
};

/* One run of the matrix. */
struct point {
	struct config cfg;
	const struct workload_ops *wl;
	const char *section;
	struct origin where[NOPTS];
	bool swept[NOPTS];      /* the key has more than one value here */
};

struct scenario {
	char *path;
	char *name; /* basename without .ini */
	struct point *points;
	size_t npoints, cap_points;
	int max_repeat;
};

/* Command-line overrides, applied after [global] and the sections. */
struct overrides {
	const char *duration; /* as written, or NULL */
	const char *repeat;
	const char *seed;
};

/*
 * scenario_load - parse @path and expand its sweeps.  Errors go to stderr
 * as "file:line: key 'x': what is wrong"; returns the number of errors
 * (the scenario is usable only if 0).
 */
int scenario_load(const char *path, const struct overrides *ov,
		  struct scenario *sc);

/* Format the value of key @id of @cfg canonically ("500ms", "4KiB"). */
void option_format(const struct config *cfg, enum opt_id id, char *buf,
		   size_t len);
const char *opt_type_name(enum opt_type t);
void format_duration(int64_t ns, char *buf, size_t len);
void format_size(int64_t bytes, char *buf, size_t len);

/* Levenshtein distance, for did-you-mean suggestions. */
size_t edit_distance(const char *a, const char *b);

/* CPUs this process may run on (sched_getaffinity), for $ncpus and pin. */
int allowed_cpus(int *cpus, int max);

/* Parse "0-3,8" into @cpus; returns the count or -1 (message in @err). */
int parse_cpulist(const char *s, int *cpus, int max, char *err, size_t errlen);

#endif
