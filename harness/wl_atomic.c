/*
 * wl_atomic.c - typed atomics on `slots` pre-allocated slots, picked at
 * random per op: slots = 1 makes every op collide, more slots spread them.
 * add, incr and cas each add 1, so the slots must sum to the ops counted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

struct atomic_priv {
	uint64_t *idx; /* the slots, inherited by the forked workers */
	bool i32;
	char op;       /* 'a'dd, 'c'as, 'x'chg, 'i'ncr */
};

static const char *validate(const struct config *c, const char **key)
{
	if (strcmp(c->variant, "i64") != 0 && strcmp(c->variant, "i32") != 0) {
		*key = "variant";
		return "must be i64 or i32 for atomic";
	}
	return NULL;
}

static int setup(struct run *r)
{
	const struct config *c = r->cfg;
	struct atomic_priv *a = calloc(1, sizeof(*a));
	uint64_t slots = (uint64_t)c->slots;
	uint64_t cap = (uint64_t)c->capacity > slots ?
		(uint64_t)c->capacity : slots;
	if (a == NULL)
		return -1;
	r->priv = a;
	a->i32 = strcmp(c->variant, "i32") == 0;
	a->op = c->op[0];
	a->idx = calloc(slots, sizeof(*a->idx));
	if (a->idx == NULL ||
	    wl_make_pool(r, a->i32 ? SHMPOOL_I32 : SHMPOOL_I64, cap, 0) != 0)
		return -1;
	for (uint64_t k = 0; k < slots; k++) {
		int64_t i = shmpool_try_alloc(r->pool);
		if (i < 0) {
			wl_error(r, "alloc: %s", shmpool_errmsg());
			return -1;
		}
		a->idx[k] = (uint64_t)i;
	}
	return 0;
}

/*
 * One op; @i32 and @op are constants in each of loop()'s copies, so the
 * switch folds away and the timed loop holds the library call alone, as
 * the floor's loop holds its bare instruction.
 */
static inline __attribute__((always_inline)) int
one_op(shmpool_t *p, bool i32, char op, uint64_t idx, int64_t token)
{
	if (i32) {
		int32_t v;
		switch (op) {
		case 'a': return shmpool_i32_add(p, idx, 1, NULL);
		case 'i': return shmpool_i32_incr(p, idx, NULL);
		case 'x': return shmpool_i32_xchg(p, idx, (int32_t)token, &v);
		default:
			do {
				if (shmpool_i32_get(p, idx, &v) != 0)
					return -1;
			} while (shmpool_i32_cas(p, idx, v,
				 (int32_t)((uint32_t)v + 1)) != 1);
			return 0;
		}
	}
	int64_t v;
	switch (op) {
	case 'a': return shmpool_i64_add(p, idx, 1, NULL);
	case 'i': return shmpool_i64_incr(p, idx, NULL);
	case 'x': return shmpool_i64_xchg(p, idx, token, &v);
	default:
		do {
			if (shmpool_i64_get(p, idx, &v) != 0)
				return -1;
		} while (shmpool_i64_cas(p, idx, v, v + 1) != 1);
		return 0;
	}
}

static inline __attribute__((always_inline)) int
loop(struct run *r, struct worker *w, bool i32, char op)
{
	shmpool_t *p = r->pool;
	const uint64_t *idx = ((const struct atomic_priv *)r->priv)->idx;
	uint64_t slots = (uint64_t)r->cfg->slots;
	while (worker_running(w)) {
		uint64_t t = lat_begin(w);
		uint64_t k = slots == 1 ? 0 : rng_next(&w->rng) % slots;
		if (one_op(p, i32, op, idx[k], (int64_t)w->index) != 0) {
			wl_error(r, "%s: %s", r->cfg->op, shmpool_errmsg());
			return 1;
		}
		lat_end(w, t);
		worker_count(w, 1);
	}
	return 0;
}

static int worker(struct run *r, struct worker *w)
{
	const struct atomic_priv *a = r->priv;
#define LOOPS(i32)                                                     \
	switch (a->op) {                                               \
	case 'a': return loop(r, w, i32, 'a');                         \
	case 'i': return loop(r, w, i32, 'i');                         \
	case 'x': return loop(r, w, i32, 'x');                         \
	default:  return loop(r, w, i32, 'c');                         \
	}
	if (a->i32)
		LOOPS(true)
	LOOPS(false)
#undef LOOPS
}

static int verify(struct run *r)
{
	const struct atomic_priv *a = r->priv;
	if (a->op == 'x')
		return 0;
	uint64_t sum = 0;
	for (int64_t k = 0; k < r->cfg->slots; k++) {
		if (a->i32) {
			int32_t v = 0;
			shmpool_i32_get(r->pool, a->idx[k], &v);
			sum += (uint32_t)v;
		} else {
			int64_t v = 0;
			shmpool_i64_get(r->pool, a->idx[k], &v);
			sum += (uint64_t)v;
		}
	}
	uint64_t want = wl_total_ops(r);
	if (a->i32) {
		sum &= 0xffffffffu;
		want &= 0xffffffffu;
	}
	if (sum != want)
		wl_violation(r, "slots sum to %llu, workers counted %llu "
			     "increments", (unsigned long long)sum,
			     (unsigned long long)want);
	return 0;
}

static void teardown(struct run *r)
{
	struct atomic_priv *a = r->priv;
	if (a == NULL)
		return;
	free(a->idx);
	free(a);
	r->priv = NULL;
}

const struct workload_ops wl_atomic = {
	.name = "atomic",
	.help = "typed atomic op on `slots` pre-allocated slots (1 = every op "
		"collides); add, incr and cas add 1 and are checked by sum",
	.keys = "variant op capacity slots backing",
	.defaults = "variant=i64",
	.ops = "add|cas|xchg|incr",
	.validate = validate,
	.setup = setup,
	.worker = worker,
	.verify = verify,
	.teardown = teardown,
};
