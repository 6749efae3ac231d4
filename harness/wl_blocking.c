/*
 * wl_blocking.c - more workers than slots: each worker takes a slot, holds
 * it for `hold`, frees it.  An alloc that finds the pool full counts as a
 * wait and sleeps in shmpool_alloc (on the pool's futex) for at most
 * `timeout`.
 *
 * Wake latency: the freer stamps the time just before each free; a waiter
 * that got a slot computes now - stamp.  With several frees in flight the
 * stamp may belong to another free than the one that woke it, so this is
 * the latency from the latest free, a slight underestimate under heavy
 * churn.  For this workload the lat_* columns are these wake latencies,
 * one per wait (latency_sample does not apply).
 */
#include <errno.h>
#include <stdatomic.h>
#include <time.h>

#include "workload.h"

struct blocking_shm {
	_Alignas(128) _Atomic uint64_t last_free_ns;
};

static int setup(struct run *r)
{
	if (run_shared(r, sizeof(struct blocking_shm)) != 0)
		return -1;
	return wl_make_pool(r, wl_variant(r->cfg->variant),
			    (uint64_t)r->cfg->capacity,
			    (uint64_t)r->cfg->elem_size);
}

static void hold_for(uint64_t ns)
{
	if (ns == 0)
		return;
	/* Short holds spin: a sleep would cost more than the hold. */
	if (ns < 20000) {
		uint64_t until = now_ns() + ns;
		while (now_ns() < until)
			;
		return;
	}
	struct timespec ts = { (time_t)(ns / 1000000000u),
			       (long)(ns % 1000000000u) };
	nanosleep(&ts, NULL);
}

static int worker(struct run *r, struct worker *w)
{
	struct blocking_shm *s = r->shared;
	shmpool_t *p = r->pool;
	double timeout = (double)r->cfg->timeout / 1e9;
	uint64_t hold = (uint64_t)r->cfg->hold;

	while (worker_running(w)) {
		int64_t idx = shmpool_try_alloc(p);
		if (idx < 0) {
			if (errno != EAGAIN) {
				wl_error(r, "try_alloc: %s", shmpool_errmsg());
				return 1;
			}
			uint64_t t0 = now_ns();
			idx = shmpool_alloc(p, timeout);
			if (idx < 0) {
				/* timeout = 0 fails at once with EAGAIN. */
				if (errno != ETIMEDOUT && errno != EAGAIN) {
					wl_error(r, "alloc: %s",
						 shmpool_errmsg());
					return 1;
				}
				if (w->measuring)
					w->sh->timeouts++;
				continue;
			}
			uint64_t t1 = now_ns();
			uint64_t freed = atomic_load_explicit(&s->last_free_ns,
						memory_order_relaxed);
			if (w->measuring) {
				w->sh->waits++;
				hist_add(&w->sh->hist,
					 t1 - (freed > t0 ? freed : t0));
			}
		}
		hold_for(hold);
		atomic_store_explicit(&s->last_free_ns, now_ns(),
				      memory_order_relaxed);
		if (shmpool_free(p, (uint64_t)idx) != 0) {
			wl_error(r, "free: %s", shmpool_errmsg());
			return 1;
		}
		worker_count(w, 1);
	}
	return 0;
}

static int verify(struct run *r)
{
	wl_check_idle_pool(r, wl_total_ops(r));
	return 0;
}

const struct workload_ops wl_blocking = {
	.name = "blocking",
	.help = "more workers than slots: take a slot, hold it, free it; "
		"counts waits and timeouts, lat_* = wake latency after a free",
	.keys = "variant capacity elem_size hold timeout backing cache",
	.defaults = "capacity=1 hold=100us",
	.ops = NULL,
	.setup = setup,
	.worker = worker,
	.verify = verify,
};
