/*
 * scenario.c - scenario files: parsing with libinih, values, sweeps.
 *
 * inih gives no line numbers to the handler in the Debian build (it is
 * compiled without INI_HANDLER_LINENO), so the file is fed through
 * ini_parse_stream() with a reader that counts lines: inih calls the
 * handler for a line right after reading it, so the reader's count is the
 * handler's line.  The reader also sees the section headers, which inih
 * reports only through the keys under them, and so notices sections with
 * no keys and sections defined twice.
 *
 * A section's value for a key comes from, in order: the command line
 * (--duration, --repeat, --seed), the section, [global], the workload's
 * own defaults, the option table.  Every value is a list (`1,2,4`, `1..8`)
 * once variables are substituted; the run matrix of a section is the
 * cartesian product of its lists.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>
#include <numa.h>

#include "scenario.h"
#include "workload.h"

const struct opt_def options[NOPTS] = {
#define OPT(n, t, d, lo, hi, ch, h) \
	{ #n, OT_##t, d, lo, hi, ch, h, offsetof(struct config, n) },
#include "options.def"
#undef OPT
};

#define MAX_POINTS 100000
#define MAX_LINE 200 /* inih's INI_MAX_LINE */

/* Keys every workload reads. */
static const char common_keys[] =
	"workload workers ops duration warmup repeat deadline latency_sample "
	"pin mem seed mode hugepages prefault";

const char *opt_type_name(enum opt_type t)
{
	switch (t) {
	case OT_INT: return "integer";
	case OT_SIZE: return "size";
	case OT_DURATION: return "duration";
	case OT_ENUM: return "enum";
	case OT_OP: return "op";
	case OT_WORKLOAD: return "workload";
	case OT_PIN: return "pin";
	case OT_MEM: return "mem";
	}
	return "?";
}

size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t *row = calloc(lb + 1, sizeof(*row));
	if (row == NULL)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	size_t d = row[lb];
	free(row);
	return d;
}

/* Close enough to be a typo: 2 edits, or a third of the word. */
static bool near(const char *typo, const char *cand, size_t *best)
{
	size_t d = edit_distance(typo, cand);
	size_t len = strlen(typo);
	if (d > 2 && d > len / 3)
		return false;
	if (d >= *best)
		return false;
	*best = d;
	return true;
}

/* " (did you mean 'x'?)" for the closest of '|'- or ' '-separated @cands. */
static void suggest(const char *typo, const char *cands, const char *prefix,
		    char *buf, size_t len)
{
	char word[64], found[64] = "";
	size_t best = SIZE_MAX;
	const char *p = cands;
	buf[0] = '\0';
	while (*p) {
		size_t n = strcspn(p, "| ");
		if (n > 0 && n < sizeof(word)) {
			memcpy(word, p, n);
			word[n] = '\0';
			if (near(typo, word, &best))
				snprintf(found, sizeof(found), "%s", word);
		}
		p += n;
		p += strspn(p, "| ");
	}
	if (found[0])
		snprintf(buf, len, " (did you mean '%s%s'?)", prefix, found);
}

static bool word_in(const char *word, const char *list)
{
	size_t wl = strlen(word);
	const char *p = list;
	while (*p) {
		size_t n = strcspn(p, "| ");
		if (n == wl && strncmp(p, word, n) == 0)
			return true;
		p += n;
		p += strspn(p, "| ");
	}
	return false;
}

/* "a|b|c" -> "a, b, c" */
static void join_choices(const char *choices, char *buf, size_t len)
{
	size_t n = 0;
	for (const char *c = choices; *c && n + 3 < len; c++) {
		if (*c == '|') {
			buf[n++] = ',';
			buf[n++] = ' ';
		} else {
			buf[n++] = *c;
		}
	}
	buf[n] = '\0';
}

int allowed_cpus(int *cpus, int max)
{
	cpu_set_t set;
	int n = 0;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 0;
	for (int c = 0; c < CPU_SETSIZE && n < max; c++)
		if (CPU_ISSET(c, &set))
			cpus[n++] = c;
	return n;
}

int parse_cpulist(const char *s, int *cpus, int max, char *err, size_t errlen)
{
	int n = 0;
	const char *p = s;
	if (*p == '\0') {
		snprintf(err, errlen, "empty CPU list");
		return -1;
	}
	while (*p) {
		char *end;
		errno = 0;
		long a = strtol(p, &end, 10), b;
		if (end == p || a < 0 || a >= CPU_SETSIZE || errno) {
			snprintf(err, errlen, "bad CPU list '%s'", s);
			return -1;
		}
		b = a;
		p = end;
		if (*p == '-') {
			b = strtol(p + 1, &end, 10);
			if (end == p + 1 || b < a || b >= CPU_SETSIZE) {
				snprintf(err, errlen, "bad CPU list '%s'", s);
				return -1;
			}
			p = end;
		}
		for (long c = a; c <= b; c++) {
			if (n >= max) {
				snprintf(err, errlen, "CPU list '%s' too long", s);
				return -1;
			}
			cpus[n++] = (int)c;
		}
		if (*p == ',')
			p++;
		else if (*p) {
			snprintf(err, errlen, "bad CPU list '%s'", s);
			return -1;
		}
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* Values                                                              */
/* ------------------------------------------------------------------ */

struct val {
	int64_t i;
	char *s;
};

struct vlist {
	size_t n, cap;
	struct val *v;
	struct origin from;
};

static void vpush(struct vlist *l, int64_t i, const char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 8;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (l->v == NULL)
			abort();
	}
	l->v[l->n].i = i;
	l->v[l->n].s = s ? strdup(s) : NULL;
	l->n++;
}

static void vfree(struct vlist *l)
{
	for (size_t k = 0; k < l->n; k++)
		free(l->v[k].s);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/*
 * Messages are collected and printed sorted by line at the end of a file,
 * so that a file's problems read top to bottom whatever order the checks
 * ran in.
 */
struct msg {
	int line;
	size_t seq;
	char *text;
};
static struct msg *msgs;
static size_t nmsgs, capmsgs;

static void msg_add(int line, const char *prefix, const char *fmt, va_list ap)
{
	char body[1024];
	vsnprintf(body, sizeof(body), fmt, ap);
	if (nmsgs == capmsgs) {
		capmsgs = capmsgs ? 2 * capmsgs : 16;
		msgs = realloc(msgs, capmsgs * sizeof(*msgs));
		if (msgs == NULL)
			abort();
	}
	size_t len = strlen(prefix) + strlen(body) + 1;
	char *text = malloc(len);
	if (text == NULL)
		abort();
	snprintf(text, len, "%s%s", prefix, body);
	msgs[nmsgs] = (struct msg){ line, nmsgs, text };
	nmsgs++;
}

static int msg_cmp(const void *a, const void *b)
{
	const struct msg *x = a, *y = b;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void msg_flush(void)
{
	if (nmsgs) /* msgs is NULL until the first message */
		qsort(msgs, nmsgs, sizeof(*msgs), msg_cmp);
	for (size_t k = 0; k < nmsgs; k++) {
		fprintf(stderr, "%s\n", msgs[k].text);
		free(msgs[k].text);
	}
	nmsgs = 0;
}

/* Error context: where the value being parsed came from. */
struct ectx {
	int *errors;
	struct origin at;
	const char *key;
};

static void verr(const struct ectx *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void verr(const struct ectx *e, const char *fmt, ...)
{
	va_list ap;
	char prefix[512];
	if (e->at.line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d: key '%s': ",
			 e->at.file, e->at.line, e->key);
	else
		snprintf(prefix, sizeof(prefix), "%s: key '%s': ", e->at.file,
			 e->key);
	va_start(ap, fmt);
	msg_add(e->at.line, prefix, fmt, ap);
	va_end(ap);
	(*e->errors)++;
}

struct unit {
	const char *name;
	int64_t mult;
};

static const struct unit size_units[] = {
	{ "B", 1 }, { "KiB", 1ll << 10 }, { "MiB", 1ll << 20 },
	{ "GiB", 1ll << 30 }, { NULL, 0 } };
static const struct unit time_units[] = {
	{ "ns", 1 }, { "us", 1000 }, { "ms", 1000000 }, { "s", 1000000000 },
	{ NULL, 0 } };
static const struct unit count_units[] = {
	{ "k", 1000 }, { "M", 1000000 }, { "G", 1000000000 }, { NULL, 0 } };

static bool parse_number(const struct ectx *e, const struct opt_def *o,
			 const char *s, int64_t *out)
{
	const struct unit *units = o->type == OT_SIZE ? size_units :
		o->type == OT_DURATION ? time_units : count_units;
	const char *what = o->type == OT_SIZE ? "a size" :
		o->type == OT_DURATION ? "a duration" : "an integer";
	char *end;
	errno = 0;
	double d = strtod(s, &end);
	if (end == s || errno || !isdigit((unsigned char)s[0])) {
		verr(e, "'%s' is not %s", s, what);
		return false;
	}
	/* Integers are read exactly; strtod only for a fractional value. */
	long long ll = strtoll(s, NULL, 10);
	bool integral = end == s + strspn(s, "0123456789");
	const char *u = end;
	while (*u == ' ')
		u++;
	int64_t mult = o->type == OT_DURATION ? 1000000000 : 1;
	if (*u) {
		const struct unit *k;
		for (k = units; k->name; k++)
			if (strcmp(u, k->name) == 0)
				break;
		if (k->name == NULL) {
			char names[64] = "";
			for (k = units; k->name; k++) {
				strcat(names, k->name);
				if (k[1].name)
					strcat(names, ", ");
			}
			verr(e, "'%s': unknown unit '%s' (use %s)", s, u, names);
			return false;
		}
		mult = k->mult;
	}
	double v = integral ? (double)ll * (double)mult : d * (double)mult;
	if (v > 9.2e18) {
		verr(e, "'%s' is too large", s);
		return false;
	}
	int64_t iv = integral ? (int64_t)ll * mult : (int64_t)(v + 0.5);
	if (!integral && (double)iv != v && o->type != OT_DURATION) {
		verr(e, "'%s' is not a whole number", s);
		return false;
	}
	char lo[32], hi[32];
	if (iv < o->min || iv > o->max) {
		if (o->type == OT_SIZE) {
			format_size(o->min, lo, sizeof(lo));
			format_size(o->max, hi, sizeof(hi));
		} else if (o->type == OT_DURATION) {
			format_duration(o->min, lo, sizeof(lo));
			format_duration(o->max, hi, sizeof(hi));
		} else {
			snprintf(lo, sizeof(lo), "%lld", (long long)o->min);
			snprintf(hi, sizeof(hi), "%lld", (long long)o->max);
		}
		if (iv < o->min)
			verr(e, "'%s' is below the minimum %s", s, lo);
		else
			verr(e, "'%s' is above the maximum %s", s, hi);
		return false;
	}
	*out = iv;
	return true;
}

/* Validate one list item; numeric items may be ranges a..b. */
static void parse_item(const struct ectx *e, const struct opt_def *o,
		       const char *s, struct vlist *out)
{
	char msg[96];
	int64_t a, b;
	switch (o->type) {
	case OT_INT:
	case OT_SIZE:
	case OT_DURATION: {
		const char *dots = strstr(s, "..");
		if (dots == NULL) {
			if (parse_number(e, o, s, &a))
				vpush(out, a, NULL);
			return;
		}
		if (o->type != OT_INT) {
			verr(e, "'%s': ranges are for integer keys only", s);
			return;
		}
		char left[64];
		size_t n = (size_t)(dots - s);
		if (n >= sizeof(left)) {
			verr(e, "'%s' is not an integer", s);
			return;
		}
		memcpy(left, s, n);
		left[n] = '\0';
		if (!parse_number(e, o, left, &a) ||
		    !parse_number(e, o, dots + 2, &b))
			return;
		if (b < a) {
			verr(e, "range '%s' is empty", s);
			return;
		}
		if (b - a >= MAX_POINTS) {
			verr(e, "range '%s' is too long", s);
			return;
		}
		for (int64_t x = a; x <= b; x++)
			vpush(out, x, NULL);
		return;
	}
	case OT_ENUM:
		if (word_in(s, o->choices)) {
			vpush(out, 0, s);
			return;
		}
		suggest(s, o->choices, "", msg, sizeof(msg));
		{
			char list[128];
			join_choices(o->choices, list, sizeof(list));
			verr(e, "'%s' is not one of %s%s", s, list, msg);
		}
		return;
	case OT_OP: /* checked against the workload when points are made */
		vpush(out, 0, s);
		return;
	case OT_WORKLOAD:
		if (workload_find(s)) {
			vpush(out, 0, s);
			return;
		}
		{
			char names[512] = "";
			for (unsigned k = 0; k < nworkloads; k++) {
				strcat(names, workloads[k]->name);
				strcat(names, " ");
			}
			suggest(s, names, "", msg, sizeof(msg));
			verr(e, "unknown workload '%s'%s", s,
			     msg[0] ? msg : " (see stress --list)");
		}
		return;
	case OT_PIN:
		if (strcmp(s, "none") == 0 || strcmp(s, "compact") == 0 ||
		    strcmp(s, "scatter") == 0) {
			vpush(out, 0, s);
			return;
		}
		if (strncmp(s, "cpus:", 5) == 0) {
			int cpus[CPU_SETSIZE];
			char err[96];
			if (parse_cpulist(s + 5, cpus, CPU_SETSIZE, err,
					  sizeof(err)) < 0) {
				verr(e, "%s", err);
				return;
			}
			vpush(out, 0, s);
			return;
		}
		suggest(s, "none compact scatter", "", msg, sizeof(msg));
		verr(e, "'%s' is not none, compact, scatter or cpus:LIST%s", s,
		     msg);
		return;
	case OT_MEM:
		if (strcmp(s, "local") == 0 || strcmp(s, "interleave") == 0) {
			vpush(out, 0, s);
			return;
		}
		if (strncmp(s, "node:", 5) == 0) {
			char *end;
			long node = strtol(s + 5, &end, 10);
			if (end != s + 5 && *end == '\0' && node >= 0 &&
			    node < 4096) {
				vpush(out, node, s);
				return;
			}
			verr(e, "'%s': node:N needs a node number", s);
			return;
		}
		suggest(s, "local interleave", "", msg, sizeof(msg));
		verr(e, "'%s' is not local, interleave or node:N%s", s, msg);
		return;
	}
}

static int count_cpus(void)
{
	static int cpus[CPU_SETSIZE];
	return allowed_cpus(cpus, CPU_SETSIZE);
}

/* Substitute ${VAR} (environment) and $ncpus, $nodes; NULL on error. */
static char *substitute(const struct ectx *e, const char *raw)
{
	size_t cap = strlen(raw) + 64, n = 0;
	char *out = malloc(cap);
	if (out == NULL)
		abort();
	for (const char *p = raw; *p;) {
		char val[64];
		const char *v = NULL;
		if (*p != '$') {
			out[n++] = *p++;
			goto grow;
		}
		if (p[1] == '{') {
			const char *close = strchr(p + 2, '}');
			if (close == NULL) {
				verr(e, "unterminated '${' in '%s'", raw);
				goto fail;
			}
			char name[128];
			size_t len = (size_t)(close - p - 2);
			if (len == 0 || len >= sizeof(name)) {
				verr(e, "bad variable name in '%s'", raw);
				goto fail;
			}
			memcpy(name, p + 2, len);
			name[len] = '\0';
			v = getenv(name);
			if (v == NULL) {
				verr(e, "environment variable '%s' is not set",
				     name);
				goto fail;
			}
			p = close + 1;
		} else {
			size_t len = strspn(p + 1,
				"abcdefghijklmnopqrstuvwxyz"
				"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
			char name[64];
			if (len == 0 || len >= sizeof(name)) {
				verr(e, "stray '$' in '%s'", raw);
				goto fail;
			}
			memcpy(name, p + 1, len);
			name[len] = '\0';
			if (strcmp(name, "ncpus") == 0)
				snprintf(val, sizeof(val), "%d", count_cpus());
			else if (strcmp(name, "nodes") == 0)
				snprintf(val, sizeof(val), "%d",
					 numa_available() < 0 ? 1 :
					 numa_num_configured_nodes());
			else {
				char msg[96];
				suggest(name, "ncpus nodes", "$", msg,
					sizeof(msg));
				verr(e, "unknown variable '$%s'%s", name,
				     msg[0] ? msg : " (use $ncpus, $nodes or "
				     "${ENV_VAR})");
				goto fail;
			}
			v = val;
			p += 1 + len;
		}
		size_t vl = strlen(v);
		if (n + vl + 1 >= cap) {
			cap = 2 * (n + vl + 1);
			out = realloc(out, cap);
			if (out == NULL)
				abort();
		}
		memcpy(out + n, v, vl);
		n += vl;
		continue;
grow:
		if (n + 1 >= cap) {
			cap *= 2;
			out = realloc(out, cap);
			if (out == NULL)
				abort();
		}
	}
	out[n] = '\0';
	return out;
fail:
	free(out);
	return NULL;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* Expand @raw for key @o into @out (substitution, lists, ranges). */
static void expand(const struct ectx *e, const struct opt_def *o,
		   const char *raw, struct vlist *out)
{
	int before = *e->errors;
	char *s = substitute(e, raw);
	if (s == NULL)
		return;
	char *p = s;
	for (;;) {
		char *item = p;
		char *comma = strchr(p, ',');
		char *t = item;
		while (isspace((unsigned char)*t))
			t++;
		/* A cpus: list has commas of its own: it takes the rest. */
		if (o->type == OT_PIN && strncmp(t, "cpus:", 5) == 0)
			comma = NULL;
		if (comma)
			*comma = '\0';
		item = trim(item);
		if (*item == '\0') {
			if (o->type == OT_OP && out->n == 0 && comma == NULL)
				vpush(out, 0, ""); /* op = (the default) */
			else
				verr(e, "empty item in '%s'", raw);
		} else {
			parse_item(e, o, item, out);
		}
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	free(s);
	if (*e->errors == before && out->n > MAX_POINTS)
		verr(e, "too many values");
}

void format_duration(int64_t ns, char *buf, size_t len)
{
	if (ns == 0)
		snprintf(buf, len, "0");
	else if (ns % 1000000000 == 0)
		snprintf(buf, len, "%llds", (long long)(ns / 1000000000));
	else if (ns % 1000000 == 0)
		snprintf(buf, len, "%lldms", (long long)(ns / 1000000));
	else if (ns % 1000 == 0)
		snprintf(buf, len, "%lldus", (long long)(ns / 1000));
	else
		snprintf(buf, len, "%lldns", (long long)ns);
}

void format_size(int64_t b, char *buf, size_t len)
{
	if (b != 0 && b % (1ll << 30) == 0)
		snprintf(buf, len, "%lldGiB", (long long)(b >> 30));
	else if (b != 0 && b % (1ll << 20) == 0)
		snprintf(buf, len, "%lldMiB", (long long)(b >> 20));
	else if (b != 0 && b % (1ll << 10) == 0)
		snprintf(buf, len, "%lldKiB", (long long)(b >> 10));
	else
		snprintf(buf, len, "%lldB", (long long)b);
}

void option_format(const struct config *cfg, enum opt_id id, char *buf,
		   size_t len)
{
	const struct opt_def *o = &options[id];
	const char *base = (const char *)cfg + o->offset;
	int64_t v;
	switch (o->type) {
	case OT_INT:
		memcpy(&v, base, sizeof(v));
		snprintf(buf, len, "%lld", (long long)v);
		return;
	case OT_SIZE:
		memcpy(&v, base, sizeof(v));
		format_size(v, buf, len);
		return;
	case OT_DURATION:
		memcpy(&v, base, sizeof(v));
		format_duration(v, buf, len);
		return;
	default: {
		const char *s;
		memcpy(&s, base, sizeof(s));
		snprintf(buf, len, "%s", s ? s : "");
		return;
	}
	}
}

/* ------------------------------------------------------------------ */
/* Reading the file                                                    */
/* ------------------------------------------------------------------ */

struct rawsec {
	char *name;
	int line;
	char *raw[NOPTS];
	int line_of[NOPTS];
};

struct parse {
	const char *file;
	FILE *f;
	int line;
	bool at_line_start;
	struct rawsec *secs;
	size_t nsecs, cap;
	long cur;              /* index into secs; -1 before any, -2 junk */
	bool indented;         /* the current line starts with white space */
	bool had_key;          /* a key line was seen in this section */
	int long_line;         /* first line too long for inih, or 0 */
	int errors;
};

static void perr(struct parse *ps, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void perr(struct parse *ps, int line, const char *fmt, ...)
{
	va_list ap;
	char prefix[512];
	snprintf(prefix, sizeof(prefix), "%s:%d: ", ps->file, line);
	va_start(ap, fmt);
	msg_add(line, prefix, fmt, ap);
	va_end(ap);
	ps->errors++;
}

static void note_section(struct parse *ps, const char *chunk)
{
	const char *p = chunk;
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '[')
		return;
	const char *end = strchr(p + 1, ']');
	if (end == NULL)
		return; /* inih reports it */
	char *name = strndup(p + 1, (size_t)(end - p - 1));
	ps->had_key = false;
	for (size_t k = 0; k < ps->nsecs; k++) {
		if (strcmp(ps->secs[k].name, name) == 0) {
			perr(ps, ps->line,
			     "section '%s': defined twice (first at line %d)",
			     name, ps->secs[k].line);
			free(name);
			ps->cur = -2;
			return;
		}
	}
	if (ps->nsecs == ps->cap) {
		ps->cap = ps->cap ? 2 * ps->cap : 8;
		ps->secs = realloc(ps->secs, ps->cap * sizeof(*ps->secs));
		if (ps->secs == NULL)
			abort();
	}
	struct rawsec *s = &ps->secs[ps->nsecs];
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->line = ps->line;
	ps->cur = (long)ps->nsecs++;
}

static char *reader(char *str, int num, void *stream)
{
	struct parse *ps = stream;
	if (fgets(str, num, ps->f) == NULL)
		return NULL;
	size_t len = strlen(str);
	bool whole = len > 0 && str[len - 1] == '\n';
	if (ps->at_line_start) {
		ps->line++;
		/* inih joins an indented line to the key above it (its
		 * multi-line values); the handler must know. */
		size_t ws = strspn(str, " \t");
		ps->indented = ws > 0 && str[ws] != '\0' && str[ws] != '\n' &&
			str[ws] != '\r' && !strchr(";#[", str[ws]);
		if (!whole && !feof(ps->f) && ps->long_line == 0)
			ps->long_line = ps->line;
		note_section(ps, str);
	}
	ps->at_line_start = whole;
	return str;
}

static int handler(void *user, const char *section, const char *name,
		   const char *value)
{
	struct parse *ps = user;
	(void)section; /* the reader tracked it, with its line */
	if (ps->cur == -2)
		return 1;
	if (ps->cur == -1) {
		perr(ps, ps->line,
		     "key '%s': outside any section (put it under [global] or "
		     "an experiment section)", name);
		return 1;
	}
	if (ps->indented && ps->had_key) {
		perr(ps, ps->line,
		     "key '%s': an indented line continues the value above it; "
		     "multi-line values are not supported (remove the "
		     "indentation)", name);
		return 1;
	}
	ps->had_key = true;
	struct rawsec *s = &ps->secs[ps->cur];
	int id;
	for (id = 0; id < NOPTS; id++)
		if (strcmp(options[id].name, name) == 0)
			break;
	if (id == NOPTS) {
		char msg[96], all[1024] = "";
		for (int k = 0; k < NOPTS; k++) {
			strcat(all, options[k].name);
			strcat(all, " ");
		}
		suggest(name, all, "", msg, sizeof(msg));
		perr(ps, ps->line, "key '%s': unknown key%s", name,
		     msg[0] ? msg : " (see stress --help)");
		return 1;
	}
	if (s->raw[id]) {
		perr(ps, ps->line,
		     "key '%s': set twice in section '%s' (first at line %d)",
		     name, s->name, s->line_of[id]);
		return 1;
	}
	s->raw[id] = strdup(value);
	s->line_of[id] = ps->line;
	return 1;
}

/* ------------------------------------------------------------------ */
/* Expansion                                                           */
/* ------------------------------------------------------------------ */

static void add_point(struct scenario *sc, const struct point *pt)
{
	if (sc->npoints == sc->cap_points) {
		sc->cap_points = sc->cap_points ? 2 * sc->cap_points : 16;
		sc->points = realloc(sc->points,
				     sc->cap_points * sizeof(*sc->points));
		if (sc->points == NULL)
			abort();
	}
	sc->points[sc->npoints++] = *pt;
}

/* Value of key @id in "k=v k=v" @defs, or NULL. */
static char *wl_default(const char *defs, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = defs; p && *p;) {
		p += strspn(p, " ");
		size_t n = strcspn(p, " ");
		if (n > kl && strncmp(p, key, kl) == 0 && p[kl] == '=')
			return strndup(p + kl + 1, n - kl - 1);
		p += n;
	}
	return NULL;
}

static void expand_section(struct parse *ps, const struct rawsec *glob,
			   const struct rawsec *sec,
			   const struct overrides *ov, struct scenario *sc)
{
	int *errors = &ps->errors;
	struct ectx e = { errors, { ps->file, 0 }, "workload" };
	struct vlist wls = { 0 };

	/* The workload first: it brings defaults and the op list. */
	if (sec->raw[OPT_ID_workload]) {
		e.at.line = sec->line_of[OPT_ID_workload];
		expand(&e, &options[OPT_ID_workload],
		       sec->raw[OPT_ID_workload], &wls);
		wls.from = e.at;
	} else if (glob && glob->raw[OPT_ID_workload]) {
		e.at.line = glob->line_of[OPT_ID_workload];
		expand(&e, &options[OPT_ID_workload],
		       glob->raw[OPT_ID_workload], &wls);
		wls.from = e.at;
	} else if (workload_find(sec->name)) {
		vpush(&wls, 0, sec->name);
		wls.from = (struct origin){ ps->file, sec->line };
	} else {
		char names[512] = "global ", msg[96];
		for (unsigned k = 0; k < nworkloads; k++) {
			strcat(names, workloads[k]->name);
			strcat(names, " ");
		}
		suggest(sec->name, names, "", msg, sizeof(msg));
		perr(ps, sec->line,
		     "section '%s': not a workload, and no 'workload' key%s",
		     sec->name, msg[0] ? msg : " (see stress --list)");
		return;
	}

	for (size_t w = 0; w < wls.n; w++) {
		const struct workload_ops *wl = workload_find(wls.v[w].s);
		struct vlist lists[NOPTS];
		int before = *errors;
		memset(lists, 0, sizeof(lists));

		/* A key set in the section itself but ignored by its workload
		 * is almost certainly a mistake; from [global] it is not. */
		for (int id = 0; id < NOPTS; id++) {
			if (sec->raw[id] == NULL ||
			    word_in(options[id].name, common_keys) ||
			    word_in(options[id].name, wl->keys))
				continue;
			char bars[256], keys[384];
			snprintf(bars, sizeof(bars), "%s", wl->keys);
			for (char *c = bars; *c; c++)
				if (*c == ' ')
					*c = '|';
			join_choices(bars, keys, sizeof(keys));
			perr(ps, sec->line_of[id],
			     "key '%s': not used by workload '%s' (its own "
			     "keys: %s)", options[id].name, wl->name,
			     keys[0] ? keys : "none");
		}

		for (int id = 0; id < NOPTS; id++) {
			const struct opt_def *o = &options[id];
			const char *raw = NULL;
			char *owned = NULL;
			e.key = o->name;
			e.at = (struct origin){ ps->file, 0 };
			if (id == OPT_ID_workload) {
				vpush(&lists[id], 0, wl->name);
				lists[id].from = wls.from;
				continue;
			}
			if (id == OPT_ID_duration && ov->duration) {
				raw = ov->duration;
				e.at.file = "--duration";
			} else if (id == OPT_ID_repeat && ov->repeat) {
				raw = ov->repeat;
				e.at.file = "--repeat";
			} else if (id == OPT_ID_seed && ov->seed) {
				raw = ov->seed;
				e.at.file = "--seed";
			} else if (sec->raw[id]) {
				raw = sec->raw[id];
				e.at.line = sec->line_of[id];
			} else if (glob && glob->raw[id]) {
				raw = glob->raw[id];
				e.at.line = glob->line_of[id];
			} else {
				owned = wl_default(wl->defaults, o->name);
				raw = owned ? owned : o->def;
			}
			expand(&e, o, raw, &lists[id]);
			lists[id].from = e.at;
			free(owned);
			if (id == OPT_ID_op && wl->ops) {
				for (size_t k = 0; k < lists[id].n; k++) {
					struct val *v = &lists[id].v[k];
					if (v->s[0] == '\0') {
						free(v->s);
						v->s = strndup(wl->ops,
							strcspn(wl->ops, "|"));
					} else if (!word_in(v->s, wl->ops)) {
						char msg[96], list[128];
						suggest(v->s, wl->ops, "", msg,
							sizeof(msg));
						join_choices(wl->ops, list,
							     sizeof(list));
						verr(&e, "'%s' is not an op of "
						     "workload '%s' (use %s)%s",
						     v->s, wl->name, list, msg);
					}
				}
			}
		}
		if (*errors != before)
			goto next;

		size_t total = 1;
		for (int id = 0; id < NOPTS; id++) {
			total *= lists[id].n;
			if (total > MAX_POINTS) {
				perr(ps, sec->line,
				     "section '%s': more than %d runs",
				     sec->name, MAX_POINTS);
				goto next;
			}
		}

		size_t idx[NOPTS] = { 0 };
		bool reported = false;
		for (size_t k = 0; k < total; k++) {
			struct point pt;
			memset(&pt, 0, sizeof(pt));
			pt.wl = wl;
			pt.section = sec->name;
			for (int id = 0; id < NOPTS; id++) {
				const struct val *v = &lists[id].v[idx[id]];
				char *base = (char *)&pt.cfg +
					options[id].offset;
				if (options[id].type <= OT_DURATION)
					memcpy(base, &v->i, sizeof(v->i));
				else {
					const char *s = strdup(v->s);
					memcpy(base, &s, sizeof(s));
				}
				pt.where[id] = lists[id].from;
				pt.swept[id] = lists[id].n > 1;
			}
			const char *bad_key = NULL, *msg = NULL;
			if (wl->validate)
				msg = wl->validate(&pt.cfg, &bad_key);
			if (msg) {
				if (!reported) {
					int id;
					for (id = 0; id < NOPTS; id++)
						if (strcmp(options[id].name,
							   bad_key) == 0)
							break;
					int line = id < NOPTS &&
						pt.where[id].line ?
						pt.where[id].line : sec->line;
					perr(ps, line, "key '%s': %s (section "
					     "'%s')", bad_key, msg, sec->name);
				}
				reported = true;
				/* the point is dropped, and so are its strings
				 * (after the message, which may quote them) */
				for (int id = 0; id < NOPTS; id++) {
					char **str = (char **)((char *)&pt.cfg +
							       options[id].offset);
					if (options[id].type > OT_DURATION)
						free(*str);
				}
			} else {
				add_point(sc, &pt);
				if (pt.cfg.repeat > sc->max_repeat)
					sc->max_repeat = (int)pt.cfg.repeat;
			}
			/* Odometer: the last key turns fastest. */
			for (int id = NOPTS - 1; id >= 0; id--) {
				if (++idx[id] < lists[id].n)
					break;
				idx[id] = 0;
			}
		}
next:
		for (int id = 0; id < NOPTS; id++)
			vfree(&lists[id]);
	}
	vfree(&wls);
}

int scenario_load(const char *path, const struct overrides *ov,
		  struct scenario *sc)
{
	struct parse ps;
	memset(&ps, 0, sizeof(ps));
	memset(sc, 0, sizeof(*sc));
	ps.file = path;
	ps.cur = -1;
	ps.at_line_start = true;
	sc->path = strdup(path);
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	sc->name = strdup(base);
	size_t bl = strlen(sc->name);
	if (bl > 4 && strcmp(sc->name + bl - 4, ".ini") == 0)
		sc->name[bl - 4] = '\0';

	ps.f = fopen(path, "r");
	if (ps.f == NULL) {
		fprintf(stderr, "stress: %s: %s\n", path, strerror(errno));
		return 1;
	}
	int rc = ini_parse_stream(reader, &ps, handler, &ps);
	fclose(ps.f);
	if (ps.long_line)
		perr(&ps, ps.long_line, "line too long (at most %d characters)",
		     MAX_LINE - 2);
	else if (rc > 0)
		perr(&ps, rc, "syntax error (expected 'key = value' or "
		     "'[section]')");
	else if (rc < 0)
		perr(&ps, 0, "cannot read the file");

	const struct rawsec *glob = NULL;
	for (size_t k = 0; k < ps.nsecs; k++)
		if (strcmp(ps.secs[k].name, "global") == 0)
			glob = &ps.secs[k];
	if (glob) {
		/* Check [global] once, even where unused; a bad value is then
		 * dropped so that no section reports it again. */
		struct rawsec *g = (struct rawsec *)glob;
		for (int id = 0; id < NOPTS; id++) {
			if (!g->raw[id])
				continue;
			struct vlist l = { 0 };
			int before = ps.errors;
			struct ectx e = { &ps.errors, { path, g->line_of[id] },
					  options[id].name };
			expand(&e, &options[id], g->raw[id], &l);
			vfree(&l);
			if (ps.errors != before) {
				free(g->raw[id]);
				g->raw[id] = NULL;
			}
		}
	}
	bool any = false;
	for (size_t k = 0; k < ps.nsecs; k++) {
		if (&ps.secs[k] == glob)
			continue;
		any = true;
		expand_section(&ps, glob, &ps.secs[k], ov, sc);
	}
	if (!any && ps.errors == 0)
		perr(&ps, ps.line > 0 ? ps.line : 1,
		     "no experiment section (only [global])");
	msg_flush();
	for (size_t k = 0; k < ps.nsecs; k++) {
		for (int id = 0; id < NOPTS; id++)
			free(ps.secs[k].raw[id]);
		/* section names stay: points point at them */
	}
	free(ps.secs);
	return ps.errors;
}
