/*
 * wl_crash_recover.c - kill workers while they use the pool, recover, and
 * check every invariant.
 *
 * Workers allocate and free at random, holding at most `slots` slots each.
 * Beside the pool, a harness-owned table holder[slot] records who holds
 * what: a worker claims holder[idx] (0 -> its token) right after its alloc
 * and releases it right before its free, and writes the token into the
 * slot.  The token names the worker and its incarnation.
 *
 * The supervisor (the parent, in tick) SIGKILLs a random worker at random
 * times (uniform in 0..2 x kill_interval), then:
 *   1. clears the dead incarnation's holder entries - before recovery, so
 *      that no slot it held can be reallocated to someone whose claim
 *      would then collide with a stale entry;
 *   2. runs shmpool_recover_stale();
 *   3. parks every live worker between two ops (their state is then
 *      consistent) and checks: used == number of holder entries, allocs -
 *      frees == used + cached; every
 *      allocated slot has a holder and every holder's slot is allocated;
 *      every held slot still carries its holder's token (no slot held
 *      twice);
 *   4. resumes them and respawns the victim.
 * At the end (every worker freed what it held and exited): used == 0 and
 * allocs - frees == used + cached (with cache > 0, slots parked in the
 * workers' caches, a killed worker's freed by the recovery).  Workers themselves report a failed holder claim
 * (the slot was given to them while someone held it) or a token changed
 * under them.
 *
 * SHMPOOL_STRESS_FAULT=skip_free (testing the checker only): workers
 * release their holder entry but skip shmpool_free, so slots leak while
 * their owner lives; the checks above must report it.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

#define MAX_REPORTS 10

struct crash_priv {
	uint64_t next_kill;
	uint64_t rng;
	uint64_t *list; /* [capacity] for allocated_slots */
	unsigned reports;
};

static _Atomic uint64_t *holders(struct run *r)
{
	return r->shared;
}

static uint64_t token(unsigned index, unsigned generation)
{
	return ((uint64_t)(generation + 1) << 32) | (index + 1);
}

static const char *validate(const struct config *c, const char **key)
{
	if (c->elem_size < 8) {
		*key = "elem_size";
		return "is below 8 bytes: the owner token needs 8";
	}
	if (c->ops > 0) {
		*key = "ops";
		return "must be 0: crash_recover runs for a duration";
	}
	if (strcmp(c->mode, "threads") == 0) {
		*key = "mode";
		return "crash_recover needs mode = processes: it SIGKILLs "
			"workers and recovers the slots of dead processes, and "
			"a thread cannot be killed alone";
	}
	return NULL;
}

static int setup(struct run *r)
{
	struct crash_priv *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -1;
	r->priv = c;
	c->rng = r->seed * 0x9E3779B97F4A7C15ull + 1;
	c->list = calloc((size_t)r->cfg->capacity, sizeof(*c->list));
	if (c->list == NULL)
		return -1;
	c->next_kill = now_ns() + (uint64_t)r->cfg->warmup +
		rng_next(&c->rng) % (2 * (uint64_t)r->cfg->kill_interval);
	if (run_shared(r, (size_t)r->cfg->capacity * sizeof(uint64_t)) != 0)
		return -1;
	return wl_make_pool(r, SHMPOOL_RAW, (uint64_t)r->cfg->capacity,
			    (uint64_t)r->cfg->elem_size);
}

/* Count a violation a worker saw; print only the first few. */
#define say(w, ...)                                                     \
	do {                                                            \
		if ((w)->sh->violations++ < MAX_REPORTS)                \
			wl_error((w)->run, __VA_ARGS__);                \
	} while (0)

static int worker(struct run *r, struct worker *w)
{
	shmpool_t *p = r->pool;
	_Atomic uint64_t *holder = holders(r);
	uint64_t me = token(w->index, w->generation);
	unsigned max = (unsigned)r->cfg->slots, n = 0;
	double timeout = (double)r->cfg->timeout / 1e9;
	int64_t *held = calloc(max, sizeof(*held));
	if (held == NULL)
		return 1;

	while (worker_running(w)) {
		worker_park(w);
		uint64_t t = lat_begin(w);
		if (n < max && (n == 0 || (rng_next(&w->rng) & 1))) {
			int64_t idx = shmpool_alloc(p, timeout);
			if (idx < 0) {
				if (errno == ETIMEDOUT || errno == EAGAIN) {
					w->sh->timeouts++;
					continue;
				}
				wl_error(r, "alloc: %s", shmpool_errmsg());
				return 1;
			}
			uint64_t prev = 0;
			if (!atomic_compare_exchange_strong(&holder[idx], &prev,
							    me)) {
				say(w, "violation: slot %lld allocated while "
				    "held by token %#llx", (long long)idx,
				    (unsigned long long)prev);
				continue;
			}
			memcpy(shmpool_ptr(p, (uint64_t)idx), &me, sizeof(me));
			held[n++] = idx;
		} else {
			unsigned k = (unsigned)(rng_next(&w->rng) % n);
			int64_t idx = held[k];
			uint64_t seen;
			memcpy(&seen, shmpool_ptr(p, (uint64_t)idx),
			       sizeof(seen));
			if (seen != me)
				say(w, "violation: slot %lld overwritten by "
				    "token %#llx while held", (long long)idx,
				    (unsigned long long)seen);
			uint64_t prev = me;
			if (!atomic_compare_exchange_strong(&holder[idx], &prev,
							    0))
				say(w, "violation: holder of slot %lld changed "
				    "to %#llx while held", (long long)idx,
				    (unsigned long long)prev);
			if (!r->fault_skip_free &&
			    shmpool_free(p, (uint64_t)idx) != 0) {
				wl_error(r, "free %lld: %s", (long long)idx,
					 shmpool_errmsg());
				return 1;
			}
			held[k] = held[--n];
		}
		lat_end(w, t);
		worker_count(w, 1);
	}
	/* Stop: give everything back, as a well-behaved user would. */
	while (n > 0) {
		int64_t idx = held[--n];
		atomic_store(&holder[idx], 0);
		if (!r->fault_skip_free)
			shmpool_free(p, (uint64_t)idx);
	}
	free(held);
	return 0;
}

/* Count a violation the supervisor saw; print only the first few. */
#define report(r, ...)                                                  \
	do {                                                            \
		struct crash_priv *c_ = (r)->priv;                      \
		if (c_->reports++ < MAX_REPORTS)                        \
			wl_violation((r), __VA_ARGS__);                 \
		else                                                    \
			(r)->violations++;                              \
	} while (0)

/* With every live worker parked: the pool agrees with the holder table. */
static void check_consistent(struct run *r)
{
	struct crash_priv *c = r->priv;
	_Atomic uint64_t *holder = holders(r);
	uint64_t cap = (uint64_t)r->cfg->capacity, held = 0;
	for (uint64_t i = 0; i < cap; i++)
		held += atomic_load(&holder[i]) != 0;
	uint64_t used = shmpool_used(r->pool);
	struct shmpool_stats st;
	if (shmpool_stats(r->pool, &st) == 0 &&
	    st.allocs - st.frees != st.used + st.cached)
		report(r, "after recovery allocs - frees = %llu but used + "
		       "cached = %llu", (unsigned long long)(st.allocs - st.frees),
		       (unsigned long long)(st.used + st.cached));
	if (used != held)
		report(r, "used is %llu after recovery, but %llu slots have "
		       "live holders", (unsigned long long)used,
		       (unsigned long long)held);
	int64_t n = shmpool_allocated_slots(r->pool, c->list, cap);
	for (int64_t k = 0; k < n && (uint64_t)k < cap; k++)
		if (atomic_load(&holder[c->list[k]]) == 0)
			report(r, "slot %llu is allocated but nobody holds it "
			       "(leaked)", (unsigned long long)c->list[k]);
	for (uint64_t i = 0; i < cap; i++) {
		uint64_t t = atomic_load(&holder[i]);
		if (t == 0)
			continue;
		if (shmpool_is_allocated(r->pool, i) != 1) {
			report(r, "slot %llu is held (token %#llx) but free "
			       "in the pool", (unsigned long long)i,
			       (unsigned long long)t);
			continue;
		}
		uint64_t seen;
		memcpy(&seen, shmpool_ptr(r->pool, i), sizeof(seen));
		if (seen != t)
			report(r, "slot %llu holds token %#llx of another "
			       "holder (held twice)", (unsigned long long)i,
			       (unsigned long long)seen);
	}
}

static void tick(struct run *r, uint64_t now)
{
	struct crash_priv *c = r->priv;
	_Atomic uint64_t *holder = holders(r);
	if (now < c->next_kill)
		return;
	c->next_kill = now + rng_next(&c->rng) %
		(2 * (uint64_t)r->cfg->kill_interval);

	unsigned i = (unsigned)(rng_next(&c->rng) % r->nworkers);
	if (r->pids[i] <= 0 || runner_kill_worker(r, i) != 0)
		return;
	uint64_t dead = token(i, r->generation[i]);
	for (int64_t k = 0; k < r->cfg->capacity; k++) {
		uint64_t t = dead;
		atomic_compare_exchange_strong(&holder[k], &t, 0);
	}
	int64_t freed = shmpool_recover_stale(r->pool);
	if (freed < 0)
		report(r, "recover_stale failed: %s", shmpool_errmsg());
	else
		r->recoveries += (uint64_t)freed;
	if (runner_pause(r) == 0)
		check_consistent(r);
	else
		report(r, "workers did not park within 5s");
	runner_resume(r);
	if (runner_respawn_worker(r, i) != 0)
		report(r, "cannot respawn worker %u", i);
}

static int verify(struct run *r)
{
	/* Before any recovery: a clean exit must leave nothing behind. */
	wl_check_idle_pool(r, UINT64_MAX);
	int64_t freed = shmpool_recover_stale(r->pool);
	if (freed > 0)
		r->recoveries += (uint64_t)freed;
	return 0;
}

static void teardown(struct run *r)
{
	struct crash_priv *c = r->priv;
	if (c == NULL)
		return;
	free(c->list);
	free(c);
	r->priv = NULL;
}

const struct workload_ops wl_crash_recover = {
	.name = "crash_recover",
	.help = "workers hold slots with owner tokens; the supervisor "
		"SIGKILLs them at random, recovers, and checks that nothing "
		"leaked or was held twice",
	.keys = "capacity elem_size slots timeout kill_interval backing cache",
	.defaults = "slots=4 timeout=100ms",
	.ops = NULL,
	.validate = validate,
	.setup = setup,
	.worker = worker,
	.tick = tick,
	.verify = verify,
	.teardown = teardown,
};
