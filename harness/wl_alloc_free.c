/*
 * wl_alloc_free.c - alloc + free churn; batch > 1 uses alloc_n/free_n.
 * One op is one slot allocated and freed, so batches compare per slot.
 * `capacity` against workers x batch decides whether workers fight over
 * slots or only over the bitmap's cache lines.
 *
 * `backend` swaps the library for an alternative over the same amount of
 * shared memory (backend.h): the loop stays the same, so the rows compare
 * the implementations.  urcu and floor never sleep: an empty free list is
 * retried after sched_yield() and counted in `waits`.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"
#include "workload.h"

static const char *validate(const struct config *c, const char **key)
{
	static char msg[96];
	if (c->batch > c->capacity) {
		*key = "batch";
		snprintf(msg, sizeof(msg), "%lld is larger than capacity %lld",
			 (long long)c->batch, (long long)c->capacity);
		return msg;
	}
	return backend_validate(c, key);
}

static int setup(struct run *r)
{
	return backend_setup(r, (uint64_t)r->cfg->capacity,
			     (uint64_t)r->cfg->elem_size);
}

/* The alternatives (backend != shmpool). */
static int worker_backend(struct run *r, struct worker *w)
{
	struct backend *b = r->be;
	uint64_t batch = (uint64_t)r->cfg->batch;
	double timeout = (double)r->cfg->timeout / 1e9;

	if (b->kind == BACKEND_FLOOR && batch == 1 && !r->fault_skip_free) {
		/* wl_floor's claim_release loop, inline. */
		while (worker_running(w)) {
			uint64_t t = lat_begin(w);
			int64_t i = backend_floor_claim(b);
			if (i < 0) {
				w->sh->waits++;
				sched_yield();
				continue;
			}
			backend_floor_release(b, (uint64_t)i);
			lat_end(w, t);
			worker_count(w, 1);
		}
		return 0;
	}

	uint64_t one, *idx = batch == 1 ? &one : malloc(batch * sizeof(*idx));
	if (idx == NULL)
		return 1;
	int rc = 0;
	/* SHMPOOL_STRESS_FAULT=skip_free (testing the checker): leak the
	 * first batch; verify must then find slots missing. */
	bool leak = r->fault_skip_free;
	while (worker_running(w)) {
		uint64_t t = lat_begin(w);
		if (backend_alloc_n(b, idx, batch, timeout) != 0) {
			if (errno == ETIMEDOUT) {
				w->sh->timeouts++;
				continue;
			}
			if (errno == EAGAIN) {
				w->sh->waits++;
				sched_yield();
				continue;
			}
			wl_error(r, "%s backend: alloc failed",
				 r->cfg->backend);
			rc = 1;
			break;
		}
		if (leak) {
			leak = false;
			continue;
		}
		if (backend_free_n(b, idx, batch) != 0) {
			wl_error(r, "%s backend: free failed", r->cfg->backend);
			rc = 1;
			break;
		}
		lat_end(w, t);
		worker_count(w, batch);
	}
	if (idx != &one)
		free(idx);
	return rc;
}

static int worker(struct run *r, struct worker *w)
{
	shmpool_t *p = r->pool;
	uint64_t batch = (uint64_t)r->cfg->batch;
	double timeout = (double)r->cfg->timeout / 1e9;

	if (((struct backend *)r->be)->kind != BACKEND_SHMPOOL)
		return worker_backend(r, w);
	if (batch == 1) {
		while (worker_running(w)) {
			uint64_t t = lat_begin(w);
			int64_t idx = shmpool_alloc(p, timeout);
			if (idx < 0) {
				if (errno == ETIMEDOUT || errno == EAGAIN) {
					w->sh->timeouts++;
					continue;
				}
				wl_error(r, "alloc: %s", shmpool_errmsg());
				return 1;
			}
			if (shmpool_free(p, (uint64_t)idx) != 0) {
				wl_error(r, "free: %s", shmpool_errmsg());
				return 1;
			}
			lat_end(w, t);
			worker_count(w, 1);
		}
		return 0;
	}

	uint64_t *idx = malloc(batch * sizeof(*idx));
	if (idx == NULL)
		return 1;
	while (worker_running(w)) {
		uint64_t t = lat_begin(w);
		if (shmpool_alloc_n(p, idx, batch, timeout) < 0) {
			if (errno == ETIMEDOUT || errno == EAGAIN) {
				w->sh->timeouts++;
				continue;
			}
			wl_error(r, "alloc_n: %s", shmpool_errmsg());
			free(idx);
			return 1;
		}
		if (shmpool_free_n(p, idx, batch) != (int64_t)batch) {
			wl_error(r, "free_n: %s", shmpool_errmsg());
			free(idx);
			return 1;
		}
		lat_end(w, t);
		worker_count(w, batch);
	}
	free(idx);
	return 0;
}

static int verify(struct run *r)
{
	backend_check_idle(r);
	return 0;
}

const struct workload_ops wl_alloc_free = {
	.name = "alloc_free",
	.help = "shmpool_alloc + shmpool_free in a loop (alloc_n/free_n when "
		"batch > 1), or the same over another backend (mutex, urcu, "
		"floor); ops count slots; latency is per call",
	.keys = "variant capacity elem_size batch timeout backing backend cache",
	.defaults = "",
	.ops = NULL,
	.validate = validate,
	.setup = setup,
	.worker = worker,
	.verify = verify,
	.teardown = backend_teardown,
};
