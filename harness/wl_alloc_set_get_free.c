/*
 * wl_alloc_set_get_free.c - data path per variant.
 *
 *   cycle      alloc, set, get, check, free (one op)
 *   set_get    set + get + check on a slot the worker holds
 *   set, get   one call on a slot the worker holds
 *   alloc_set  alloc_set + free
 *
 * Every value written carries the worker and a sequence number, and every
 * get checks it: a torn or foreign value is a violation, not just a number.
 *
 * With `backend` = mutex, urcu or floor (raw variant, op cycle) the slots
 * come from that free list (backend.h) and set/get are memcpy into and
 * out of the backend's slot memory: the data path of a hand-made pool.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "workload.h"

struct asgf {
	enum shmpool_variant variant;
	size_t len;   /* bytes written per set (raw, str) */
	char op;      /* 'c'ycle, 's'et_get / 's'et, 'g'et, 'a'lloc_set */
	bool set_only;
};

static const char *validate(const struct config *c, const char **key)
{
	bool held = strcmp(c->op, "set_get") == 0 ||
		strcmp(c->op, "set") == 0 || strcmp(c->op, "get") == 0;
	static char msg[96];
	if (held && c->workers > c->capacity) {
		*key = "capacity";
		snprintf(msg, sizeof(msg), "%lld is below workers (%lld): op "
			 "%s holds one slot per worker", (long long)c->capacity,
			 (long long)c->workers, c->op);
		return msg;
	}
	if ((strcmp(c->variant, "raw") == 0 || strcmp(c->variant, "str") == 0)
	    && c->elem_size < 8) {
		*key = "elem_size";
		return "is below 8 bytes: the check value needs 8";
	}
	if (backend_kind(c->backend) != BACKEND_SHMPOOL &&
	    (strcmp(c->variant, "raw") != 0 || strcmp(c->op, "cycle") != 0)) {
		*key = "backend";
		snprintf(msg, sizeof(msg), "%s runs only variant = raw and op "
			 "= cycle (it stores bytes, nothing typed)",
			 c->backend);
		return msg;
	}
	return backend_validate(c, key);
}

static int setup(struct run *r)
{
	const struct config *c = r->cfg;
	struct asgf *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -1;
	r->priv = a;
	a->variant = wl_variant(c->variant);
	a->len = (size_t)c->elem_size;
	a->op = strcmp(c->op, "set") == 0 ? 'S' : c->op[0];
	return backend_setup(r, (uint64_t)c->capacity,
			     (uint64_t)c->elem_size);
}

/* cycle over an alternative backend: alloc, memcpy in, memcpy out and
 * check, free. */
static int worker_backend(struct run *r, struct worker *w)
{
	const struct asgf *a = r->priv;
	struct backend *b = r->be;
	size_t es = (size_t)r->cfg->elem_size;
	char *buf = calloc(1, a->len + 8);
	uint64_t seq = ((uint64_t)(w->index + 1) << 40) |
		((uint64_t)w->generation << 32);
	if (buf == NULL)
		return 1;
	memset(buf, 'x', a->len);
	while (worker_running(w)) {
		uint64_t t = lat_begin(w), v = ++seq, idx, x;
		if (backend_alloc_n(b, &idx, 1, 1.0) != 0) {
			if (errno == EAGAIN) {
				w->sh->waits++;
				sched_yield();
				continue;
			}
			wl_error(r, "%s backend: alloc failed (%s)",
				 r->cfg->backend, strerror(errno));
			free(buf);
			return 1;
		}
		char *slot = (char *)b->data + idx * es;
		memcpy(buf, &v, sizeof(v));
		memcpy(slot, buf, a->len);
		memcpy(buf, slot, a->len);
		memcpy(&x, buf, sizeof(x));
		if (backend_free_n(b, &idx, 1) != 0) {
			wl_error(r, "%s backend: free failed", r->cfg->backend);
			free(buf);
			return 1;
		}
		lat_end(w, t);
		if (x != v && w->sh->violations++ == 0)
			wl_error(r, "violation: slot %llu read back a value "
				 "this worker did not write",
				 (unsigned long long)idx);
		worker_count(w, 1);
	}
	free(buf);
	return 0;
}

static int set_val(shmpool_t *p, const struct asgf *a, uint64_t idx,
		   uint64_t v, char *buf)
{
	switch (a->variant) {
	case SHMPOOL_I64: return shmpool_i64_set(p, idx, (int64_t)v);
	case SHMPOOL_I32: return shmpool_i32_set(p, idx, (int32_t)v);
	case SHMPOOL_F64: return shmpool_f64_set(p, idx, (double)(v >> 12));
	case SHMPOOL_STR:
		memcpy(buf, &v, sizeof(v));
		return shmpool_str_set(p, idx, buf, a->len);
	default:
		memcpy(buf, &v, sizeof(v));
		return shmpool_set(p, idx, buf, a->len);
	}
}

static int64_t alloc_set(shmpool_t *p, const struct asgf *a, uint64_t v,
			 char *buf, double timeout)
{
	switch (a->variant) {
	case SHMPOOL_I64: return shmpool_i64_alloc_set(p, (int64_t)v, timeout);
	case SHMPOOL_I32: return shmpool_i32_alloc_set(p, (int32_t)v, timeout);
	case SHMPOOL_F64:
		return shmpool_f64_alloc_set(p, (double)(v >> 12), timeout);
	case SHMPOOL_STR:
		memcpy(buf, &v, sizeof(v));
		return shmpool_str_alloc_set(p, buf, a->len, timeout);
	default:
		memcpy(buf, &v, sizeof(v));
		return shmpool_alloc_set(p, buf, a->len, timeout);
	}
}

/* 0: value read back is @v; 1: it is not; -1: the call failed. */
static int get_check(shmpool_t *p, const struct asgf *a, uint64_t idx,
		     uint64_t v, char *buf)
{
	switch (a->variant) {
	case SHMPOOL_I64: {
		int64_t x;
		if (shmpool_i64_get(p, idx, &x) != 0)
			return -1;
		return (uint64_t)x != v;
	}
	case SHMPOOL_I32: {
		int32_t x;
		if (shmpool_i32_get(p, idx, &x) != 0)
			return -1;
		return x != (int32_t)v;
	}
	case SHMPOOL_F64: {
		double x;
		if (shmpool_f64_get(p, idx, &x) != 0)
			return -1;
		return x != (double)(v >> 12);
	}
	case SHMPOOL_STR: {
		int64_t n = shmpool_str_get(p, idx, buf, a->len);
		if (n < 0)
			return -1;
		uint64_t x;
		memcpy(&x, buf, sizeof(x));
		return (size_t)n != a->len || x != v;
	}
	default: {
		if (shmpool_get(p, idx, buf, a->len) < 0)
			return -1;
		uint64_t x;
		memcpy(&x, buf, sizeof(x));
		return x != v;
	}
	}
}

static int worker(struct run *r, struct worker *w)
{
	const struct asgf *a = r->priv;
	shmpool_t *p = r->pool;
	double timeout = 1.0;
	char *buf = calloc(1, a->len + 8);
	int64_t held = -1;
	int rc = 0;
	/* Values stay unique per worker and never repeat in a run. */
	uint64_t seq = ((uint64_t)(w->index + 1) << 40) |
		((uint64_t)w->generation << 32);
	if (buf == NULL)
		return 1;
	if (((struct backend *)r->be)->kind != BACKEND_SHMPOOL) {
		free(buf);
		return worker_backend(r, w);
	}
	memset(buf, 'x', a->len);
	if (a->op != 'c' && a->op != 'a') {
		held = shmpool_alloc(p, timeout);
		if (held < 0 || set_val(p, a, (uint64_t)held, seq, buf) != 0) {
			wl_error(r, "alloc/set: %s", shmpool_errmsg());
			free(buf);
			return 1;
		}
	}
	while (worker_running(w)) {
		uint64_t t = lat_begin(w), v = ++seq;
		int64_t idx = held;
		int bad = 0;
		switch (a->op) {
		case 'c':
			idx = shmpool_alloc(p, timeout);
			if (idx < 0)
				goto fail;
			if (set_val(p, a, (uint64_t)idx, v, buf) != 0)
				goto fail;
			if ((bad = get_check(p, a, (uint64_t)idx, v, buf)) < 0)
				goto fail;
			if (shmpool_free(p, (uint64_t)idx) != 0)
				goto fail;
			break;
		case 'a':
			idx = alloc_set(p, a, v, buf, timeout);
			if (idx < 0 || shmpool_free(p, (uint64_t)idx) != 0)
				goto fail;
			break;
		case 's':
			if (set_val(p, a, (uint64_t)idx, v, buf) != 0)
				goto fail;
			if ((bad = get_check(p, a, (uint64_t)idx, v, buf)) < 0)
				goto fail;
			break;
		case 'S':
			if (set_val(p, a, (uint64_t)idx, v, buf) != 0)
				goto fail;
			break;
		default: /* get: the value set at the start */
			v = seq = ((uint64_t)(w->index + 1) << 40) |
				((uint64_t)w->generation << 32);
			if ((bad = get_check(p, a, (uint64_t)idx, v, buf)) < 0)
				goto fail;
			break;
		}
		lat_end(w, t);
		if (bad) {
			/* Count it and say once: a flood helps nobody. */
			if (w->sh->violations++ == 0)
				wl_error(r, "violation: slot %lld read back a "
					 "value this worker did not write",
					 (long long)idx);
		}
		worker_count(w, 1);
	}
	goto out;
fail:
	if (errno == ETIMEDOUT) {
		wl_error(r, "alloc timed out with workers <= capacity");
	} else {
		wl_error(r, "%s: %s", r->cfg->op, shmpool_errmsg());
	}
	rc = 1;
out:
	if (held >= 0)
		shmpool_free(p, (uint64_t)held);
	free(buf);
	return rc;
}

static int verify(struct run *r)
{
	const struct asgf *a = r->priv;
	if (((struct backend *)r->be)->kind != BACKEND_SHMPOOL) {
		backend_check_idle(r);
		return 0;
	}
	/* cycle and alloc_set allocate once per op; the others once. */
	uint64_t expect = a->op == 'c' || a->op == 'a' ? wl_total_ops(r) :
		r->nworkers;
	wl_check_idle_pool(r, expect);
	return 0;
}

static void teardown(struct run *r)
{
	free(r->priv);
	r->priv = NULL;
	backend_teardown(r);
}

const struct workload_ops wl_alloc_set_get_free = {
	.name = "alloc_set_get_free",
	.help = "data path per variant: cycle = alloc+set+get+free, set_get, "
		"set, get on a held slot, alloc_set = alloc_set+free; every "
		"get is checked; backend = mutex, urcu, floor: cycle over "
		"that free list with memcpy (variant raw)",
	.keys = "variant op capacity elem_size backing backend cache",
	.defaults = "variant=i64",
	.ops = "cycle|set_get|set|get|alloc_set",
	.validate = validate,
	.setup = setup,
	.worker = worker,
	.verify = verify,
	.teardown = teardown,
};
