/*
 * wl_floor.c - the hardware floor: the pool's loop shapes on plain shared
 * memory, without the pool.
 *
 * claim_release: CAS a free bit into one 64-bit word, fetch_and it out;
 * the two locked read-modify-writes an uncontended alloc+free cannot do
 * without.  add: fetch_add on `slots` counters, each on its own line, the
 * floor of the atomic workload.  Every CSV carries these rows, so a result
 * can be read as a fraction of what this machine can do at all.
 */
#include <stdatomic.h>

#include "workload.h"

struct floor_shm {
	_Alignas(128) _Atomic uint64_t word;
	_Alignas(128) struct {
		_Alignas(128) _Atomic uint64_t v;
	} counter[];
};

static bool is_claim(const struct config *c)
{
	return c->op[0] == 'c';
}

static const char *validate(const struct config *c, const char **key)
{
	if (is_claim(c) && c->capacity > 64) {
		*key = "capacity";
		return "is above 64: claim_release claims bits of one 64-bit "
			"word";
	}
	return NULL;
}

static int setup(struct run *r)
{
	return run_shared(r, sizeof(struct floor_shm) +
			  (size_t)r->cfg->slots * 128);
}

static int worker(struct run *r, struct worker *w)
{
	struct floor_shm *f = r->shared;

	if (is_claim(r->cfg)) {
		unsigned cap = (unsigned)r->cfg->capacity;
		uint64_t full = cap == 64 ? ~0ull : (1ull << cap) - 1;
		while (worker_running(w)) {
			uint64_t t = lat_begin(w);
			uint64_t old = atomic_load_explicit(
				&f->word, memory_order_relaxed);
			if (old == full)
				continue;
			uint64_t bit = 1ull << __builtin_ctzll(~old);
			if (!atomic_compare_exchange_weak_explicit(&f->word,
					&old, old | bit, memory_order_acquire,
					memory_order_relaxed))
				continue;
			atomic_fetch_and_explicit(&f->word, ~bit,
						  memory_order_release);
			lat_end(w, t);
			worker_count(w, 1);
		}
		return 0;
	}

	uint64_t slots = (uint64_t)r->cfg->slots;
	while (worker_running(w)) {
		uint64_t t = lat_begin(w);
		uint64_t k = slots == 1 ? 0 : rng_next(&w->rng) % slots;
		atomic_fetch_add_explicit(&f->counter[k].v, 1,
					  memory_order_relaxed);
		lat_end(w, t);
		worker_count(w, 1);
	}
	return 0;
}

static int verify(struct run *r)
{
	struct floor_shm *f = r->shared;
	if (is_claim(r->cfg)) {
		if (atomic_load(&f->word) != 0)
			wl_violation(r, "claim word is %#llx after the run, "
				     "expected 0",
				     (unsigned long long)atomic_load(&f->word));
		return 0;
	}
	uint64_t sum = 0;
	for (int64_t k = 0; k < r->cfg->slots; k++)
		sum += atomic_load(&f->counter[k].v);
	if (sum != wl_total_ops(r))
		wl_violation(r, "counters sum to %llu, workers counted %llu",
			     (unsigned long long)sum,
			     (unsigned long long)wl_total_ops(r));
	return 0;
}

const struct workload_ops wl_floor = {
	.name = "floor",
	.help = "the hardware floor without the pool: claim_release = CAS a "
		"bit into a shared word and fetch_and it out; add = "
		"fetch_add on `slots` shared counters",
	.keys = "op capacity slots",
	.defaults = "",
	.ops = "claim_release|add",
	.validate = validate,
	.setup = setup,
	.worker = worker,
	.verify = verify,
};
