/*
 * icount.c - the library's fast paths in a loop, for instruction counts.
 *
 *   harness/icount OP CALLS      run OP CALLS times
 *   harness/icount --list        one line per OP: name, unit, slots per
 *                                call, what it runs
 *
 * Each OP is one benchmark row's loop (the same pool shape as its
 * `./stress` row) on a pool of its own.  A warm-up of the same loop runs
 * first (it attaches the process, fills the cache, touches the pages), then
 * callgrind's collection is switched on for the CALLS measured calls and
 * off again, so that `valgrind --tool=callgrind --collect-atstart=no`
 * counts exactly those.  scripts/icount runs this under callgrind and
 * divides; outside valgrind the client requests are a few no-op
 * instructions and the program just runs.
 *
 * Instruction counts do not move with the machine's load, which is what
 * lets a shared, noisy machine compare two builds of the fast paths (see
 * doc/performance.md, "Instruction counts").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_VALGRIND_CALLGRIND_H
#include <valgrind/callgrind.h>
#else
/* nothing is collected: scripts/icount reports that it counted nothing */
#define CALLGRIND_TOGGLE_COLLECT do { } while (0)
#endif

#include "shmpool.h"

/* One measured loop.  @p is the pool made for it; @n the calls to make. */
struct op {
	const char *name;
	const char *unit;      /* what one call of the loop does */
	unsigned per_call;     /* units per call (batch: 64 slots) */
	enum shmpool_variant variant;
	uint64_t elem_size;    /* raw pools */
	unsigned cache;        /* slots per user cache, 0 = none */
	const char *what;
	int (*run)(shmpool_t *p, long n);
};

#define CAPACITY 64
#define BATCH 64 /* the largest batch */

static int fail(const char *what)
{
	fprintf(stderr, "icount: %s: %s\n", what, shmpool_errmsg());
	return -1;
}

static int pairs(shmpool_t *p, long n, bool try)
{
	for (long i = 0; i < n; i++) {
		int64_t x = try ? shmpool_try_alloc(p) : shmpool_alloc(p, -1);

		if (x < 0)
			return fail(try ? "try_alloc" : "alloc");
		if (shmpool_free(p, (uint64_t)x) != 0)
			return fail("free");
	}
	return 0;
}

static int alloc_free(shmpool_t *p, long n)
{
	return pairs(p, n, false);
}

static int try_alloc_free(shmpool_t *p, long n)
{
	return pairs(p, n, true);
}

static int batch(shmpool_t *p, long n, uint64_t size)
{
	uint64_t idx[BATCH];

	for (long i = 0; i < n; i++) {
		if (shmpool_alloc_n(p, idx, size, -1) != (int64_t)size)
			return fail("alloc_n");
		if (shmpool_free_n(p, idx, size) != (int64_t)size)
			return fail("free_n");
	}
	return 0;
}

static int batch16(shmpool_t *p, long n)
{
	return batch(p, n, 16);
}

static int batch64(shmpool_t *p, long n)
{
	return batch(p, n, 64);
}

/* The typed calls work on one slot the loop holds. */
static int64_t held(shmpool_t *p)
{
	static shmpool_t *pool;
	static int64_t slot = -1;

	if (pool != p) {
		pool = p;
		slot = shmpool_alloc(p, -1);
	}
	return slot;
}

static int i64_add(shmpool_t *p, long n)
{
	int64_t x = held(p);

	if (x < 0)
		return fail("alloc");
	for (long i = 0; i < n; i++)
		if (shmpool_i64_add(p, (uint64_t)x, 1, NULL) != 0)
			return fail("i64_add");
	return 0;
}

static int i64_get(shmpool_t *p, long n)
{
	int64_t x = held(p), v;

	if (x < 0)
		return fail("alloc");
	for (long i = 0; i < n; i++)
		if (shmpool_i64_get(p, (uint64_t)x, &v) != 0)
			return fail("i64_get");
	return 0;
}

static int i64_set(shmpool_t *p, long n)
{
	int64_t x = held(p);

	if (x < 0)
		return fail("alloc");
	for (long i = 0; i < n; i++)
		if (shmpool_i64_set(p, (uint64_t)x, i) != 0)
			return fail("i64_set");
	return 0;
}

static const struct op ops[] = {
	{ "alloc_free", "pair", 1, SHMPOOL_RAW, 64, 0,
	  "alloc + free, raw 64 B slots (the alloc_free rows)", alloc_free },
	{ "try_alloc_free", "pair", 1, SHMPOOL_RAW, 64, 0,
	  "try_alloc + free, raw 64 B slots", try_alloc_free },
	{ "i64_alloc_free", "pair", 1, SHMPOOL_I64, 0, 0,
	  "alloc + free, i64 slots (the seed i64 alloc/free row)",
	  alloc_free },
	{ "alloc_free_cache", "pair", 1, SHMPOOL_RAW, 64, 32,
	  "alloc + free, raw 64 B slots, caches of 32 (alloc_free-cache)",
	  alloc_free },
	{ "batch16", "slot", 16, SHMPOOL_I64, 0, 0,
	  "alloc_n + free_n of 16 i64 slots, counted per slot", batch16 },
	{ "batch64", "slot", BATCH, SHMPOOL_I64, 0, 0,
	  "alloc_n + free_n of 64 i64 slots, counted per slot", batch64 },
	{ "i64_add", "call", 1, SHMPOOL_I64, 0, 0,
	  "i64_add of 1 on a held slot (the atomic add rows)", i64_add },
	{ "i64_get", "call", 1, SHMPOOL_I64, 0, 0,
	  "i64_get of a held slot", i64_get },
	{ "i64_set", "call", 1, SHMPOOL_I64, 0, 0,
	  "i64_set of a held slot", i64_set },
};
#define NOPS (sizeof(ops) / sizeof(ops[0]))

/* As many warm-up calls as it takes to fill and cycle a cache twice. */
#define WARMUP 256

int main(int argc, char **argv)
{
	const struct op *o = NULL;
	struct shmpool_options opt = SHMPOOL_OPTIONS_INIT;
	shmpool_t *p;
	char *end;
	long n;
	int rc;

	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (size_t i = 0; i < NOPS; i++)
			printf("%s\t%s\t%u\t%s\n", ops[i].name, ops[i].unit,
			       ops[i].per_call, ops[i].what);
		return 0;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: icount OP CALLS | icount --list\n");
		return 2;
	}
	for (size_t i = 0; i < NOPS; i++)
		if (strcmp(argv[1], ops[i].name) == 0)
			o = &ops[i];
	errno = 0;
	n = strtol(argv[2], &end, 10);
	if (!o || errno || *end || end == argv[2] || n < 1) {
		fprintf(stderr, "icount: %s '%s' (icount --list names the "
			"ops; CALLS is a positive integer)\n",
			o ? "bad CALLS" : "unknown op", o ? argv[2] : argv[1]);
		return 2;
	}
	opt.variant = o->variant;
	opt.capacity = CAPACITY;
	opt.elem_size = o->variant == SHMPOOL_RAW ? o->elem_size : 0;
	opt.cache = o->cache;
	p = shmpool_open(&opt);
	if (!p) {
		fail("open");
		return 1;
	}
	if (o->run(p, WARMUP) != 0)
		return 1;
	CALLGRIND_TOGGLE_COLLECT;
	rc = o->run(p, n);
	CALLGRIND_TOGGLE_COLLECT;
	shmpool_close(p);
	return rc ? 1 : 0;
}
