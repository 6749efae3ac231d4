/*
 * wl_alloc_free.c - alloc + free churn; batch > 1 uses alloc_n/free_n.
 * One op is one slot allocated and freed, so batches compare per slot.
 * `capacity` against workers x batch decides whether workers fight over
 * slots or only over the bitmap's cache lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

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
	return NULL;
}

static int setup(struct run *r)
{
	return wl_make_pool(r, wl_variant(r->cfg->variant),
			    (uint64_t)r->cfg->capacity,
			    (uint64_t)r->cfg->elem_size);
}

static int worker(struct run *r, struct worker *w)
{
	shmpool_t *p = r->pool;
	uint64_t batch = (uint64_t)r->cfg->batch;
	double timeout = (double)r->cfg->timeout / 1e9;

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
	wl_check_idle_pool(r, wl_total_ops(r));
	return 0;
}

const struct workload_ops wl_alloc_free = {
	.name = "alloc_free",
	.help = "shmpool_alloc + shmpool_free in a loop (alloc_n/free_n when "
		"batch > 1); ops count slots; latency is per call",
	.keys = "variant capacity elem_size batch timeout backing",
	.defaults = "",
	.ops = NULL,
	.validate = validate,
	.setup = setup,
	.worker = worker,
	.verify = verify,
};
