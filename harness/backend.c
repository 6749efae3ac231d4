/*
 * backend.c - the alternatives to the library that alloc_free can measure
 * (see backend.h for what each one is).
 *
 * Layout of the shared mapping of an alternative: the free-list structure
 * first, then, from the next page, capacity x elem_size bytes of slot
 * data, so every backend maps as much memory as the pool's data region
 * and the memory options (mem, hugepages, prefault) act on the same size.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HAVE_URCU
#include <urcu/lfstack.h>
#endif

#include "backend.h"

/*
 * mutex: the robust mutex guards top and stack; a waiter for an empty
 * stack sleeps on the condition variable (CLOCK_MONOTONIC deadline) and
 * every free that finds a waiter signals it.
 */
struct mx_shm {
	pthread_mutex_t lock;
	pthread_cond_t nonempty;
	uint32_t top;         /* stack[0..top) are free */
	uint32_t waiters;
	uint64_t owner_deaths; /* EOWNERDEAD seen (a holder died) */
	uint32_t stack[];
};

static size_t page_up(size_t n)
{
	return (n + 4095) & ~(size_t)4095;
}

enum backend_kind backend_kind(const char *name)
{
	if (strcmp(name, "mutex") == 0)
		return BACKEND_MUTEX;
	if (strcmp(name, "urcu") == 0)
		return BACKEND_URCU;
	if (strcmp(name, "floor") == 0)
		return BACKEND_FLOOR;
	return BACKEND_SHMPOOL;
}

const char *backend_validate(const struct config *c, const char **key)
{
	if (c->cache && backend_kind(c->backend) != BACKEND_SHMPOOL) {
		*key = "cache";
		return "a slot cache is a shmpool option: use backend = shmpool "
			"or cache = 0";
	}
	if (backend_kind(c->backend) != BACKEND_URCU)
		return NULL;
	*key = "backend";
#ifndef HAVE_URCU
	return "urcu is not available: this stress was built without liburcu "
		"(install liburcu-dev, re-run configure and make)";
#else
	if (strcmp(c->mode, "threads") != 0)
		return "urcu needs mode = threads: cds_lfs nodes hold absolute "
			"pointers and liburcu's pop mutex and RCU grace periods "
			"are per process, so forked workers cannot share its "
			"stack";
	return NULL;
#endif
}

/* Lock the robust mutex; a holder that died leaves it consistent again
 * (the stack's invariants hold between any two of its stores that matter:
 * a pop or push interrupted halfway loses at most the slot in flight). */
static int mx_lock(struct mx_shm *m)
{
	int rc = pthread_mutex_lock(&m->lock);
	if (rc == EOWNERDEAD) {
		m->owner_deaths++;
		rc = pthread_mutex_consistent(&m->lock);
	}
	return rc;
}

static int mx_setup(struct run *r, struct backend *b, uint64_t elem_size)
{
	size_t head = page_up(sizeof(struct mx_shm) +
			      b->capacity * sizeof(uint32_t));
	if (run_shared(r, head + b->capacity * elem_size) != 0)
		return -1;
	struct mx_shm *m = r->shared;
	b->mx = m;
	b->data = (char *)r->shared + head;
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_condattr_init(&ca);
	pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = pthread_mutex_init(&m->lock, &ma);
	if (rc == 0)
		rc = pthread_cond_init(&m->nonempty, &ca);
	pthread_mutexattr_destroy(&ma);
	pthread_condattr_destroy(&ca);
	if (rc != 0) {
		wl_error(r, "mutex backend: %s", strerror(rc));
		return -1;
	}
	/* Lowest index on top, as the pool hands out low slots first. */
	for (uint64_t i = 0; i < b->capacity; i++)
		m->stack[i] = (uint32_t)(b->capacity - 1 - i);
	m->top = (uint32_t)b->capacity;
	return 0;
}

static int mx_alloc_n(struct backend *b, uint64_t *idx, uint64_t n,
		      double timeout)
{
	struct mx_shm *m = b->mx;
	struct timespec until;
	bool have_until = false;
	int rc = mx_lock(m);
	if (rc != 0)
		goto broken;
	while (m->top < n) {
		if (timeout <= 0) {
			pthread_mutex_unlock(&m->lock);
			errno = EAGAIN;
			return -1;
		}
		if (!have_until) {
			clock_gettime(CLOCK_MONOTONIC, &until);
			double s = (double)until.tv_sec +
				(double)until.tv_nsec / 1e9 + timeout;
			until.tv_sec = (time_t)s;
			until.tv_nsec = (long)((s - (double)until.tv_sec) * 1e9);
			have_until = true;
		}
		m->waiters++;
		rc = pthread_cond_timedwait(&m->nonempty, &m->lock, &until);
		m->waiters--;
		if (rc == EOWNERDEAD) {
			m->owner_deaths++;
			rc = pthread_mutex_consistent(&m->lock);
		}
		if (rc == ETIMEDOUT) {
			pthread_mutex_unlock(&m->lock);
			errno = ETIMEDOUT;
			return -1;
		}
		if (rc != 0)
			goto broken;
	}
	for (uint64_t k = 0; k < n; k++)
		idx[k] = m->stack[--m->top];
	pthread_mutex_unlock(&m->lock);
	return 0;
broken:
	fprintf(stderr, "stress: mutex backend: lock: %s\n", strerror(rc));
	errno = rc;
	return -1;
}

static int mx_free_n(struct backend *b, const uint64_t *idx, uint64_t n)
{
	struct mx_shm *m = b->mx;
	int rc = mx_lock(m);
	if (rc != 0) {
		fprintf(stderr, "stress: mutex backend: lock: %s\n",
			strerror(rc));
		return -1;
	}
	if (m->top + n > b->capacity) {
		pthread_mutex_unlock(&m->lock);
		fprintf(stderr, "stress: mutex backend: free of %llu slot(s) "
			"overflows the free list (double free)\n",
			(unsigned long long)n);
		return -1;
	}
	for (uint64_t k = 0; k < n; k++)
		m->stack[m->top++] = (uint32_t)idx[k];
	/* Signal under the lock: a waiter cannot miss it between its check
	 * and its sleep. */
	if (m->waiters)
		pthread_cond_signal(&m->nonempty);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

#ifdef HAVE_URCU
static int ur_setup(struct run *r, struct backend *b, uint64_t elem_size)
{
	size_t head = page_up(128 + b->capacity * sizeof(struct cds_lfs_node));
	if (run_shared(r, head + b->capacity * elem_size) != 0)
		return -1;
	/* The stack head on a line of its own, then the nodes: node i is
	 * slot i, found by pointer arithmetic. */
	struct cds_lfs_stack *s = r->shared;
	struct cds_lfs_node *nodes = (void *)((char *)r->shared + 128);
	b->lfs = s;
	b->nodes = nodes;
	b->data = (char *)r->shared + head;
	cds_lfs_init(s);
	for (uint64_t i = b->capacity; i-- > 0;) {
		cds_lfs_node_init(&nodes[i]);
		cds_lfs_push(s, &nodes[i]);
	}
	return 0;
}
#endif

int backend_setup(struct run *r, uint64_t capacity, uint64_t elem_size)
{
	struct backend *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return -1;
	r->be = b;
	b->kind = backend_kind(r->cfg->backend);
	b->capacity = capacity;
	switch (b->kind) {
	case BACKEND_SHMPOOL:
		return wl_make_pool(r, wl_variant(r->cfg->variant), capacity,
				    elem_size);
	case BACKEND_MUTEX:
		return mx_setup(r, b, elem_size);
	case BACKEND_URCU:
#ifdef HAVE_URCU
		return ur_setup(r, b, elem_size);
#else
		wl_error(r, "built without liburcu");
		return -1;
#endif
	case BACKEND_FLOOR: {
		b->nwords = (unsigned)((capacity + 63) / 64);
		unsigned rest = (unsigned)(capacity % 64);
		b->last_full = rest ? (1ull << rest) - 1 : ~0ull;
		/* The words on a line of their own, as wl_floor's word. */
		size_t head = page_up(b->nwords * sizeof(uint64_t));
		if (run_shared(r, head + capacity * elem_size) != 0)
			return -1;
		b->words = r->shared;
		b->data = (char *)r->shared + head;
		return 0;
	}
	}
	return -1;
}

int backend_alloc_n(struct backend *b, uint64_t *idx, uint64_t n,
		    double timeout)
{
	switch (b->kind) {
	case BACKEND_MUTEX:
		return mx_alloc_n(b, idx, n, timeout);
	case BACKEND_URCU:
#ifdef HAVE_URCU
		for (uint64_t k = 0; k < n; k++) {
			struct cds_lfs_node *node =
				cds_lfs_pop_blocking(b->lfs);
			if (node == NULL) {
				/* Give back what this call took. */
				for (uint64_t j = 0; j < k; j++)
					cds_lfs_push(b->lfs,
						&((struct cds_lfs_node *)
						  b->nodes)[idx[j]]);
				errno = EAGAIN;
				return -1;
			}
			idx[k] = (uint64_t)(node -
				(struct cds_lfs_node *)b->nodes);
		}
		return 0;
#else
		errno = ENOSYS;
		return -1;
#endif
	case BACKEND_FLOOR:
		for (uint64_t k = 0; k < n; k++) {
			int64_t i = backend_floor_claim(b);
			if (i < 0) {
				for (uint64_t j = 0; j < k; j++)
					backend_floor_release(b, idx[j]);
				errno = EAGAIN;
				return -1;
			}
			idx[k] = (uint64_t)i;
		}
		return 0;
	case BACKEND_SHMPOOL:
		break;
	}
	errno = EINVAL;
	return -1;
}

int backend_free_n(struct backend *b, const uint64_t *idx, uint64_t n)
{
	switch (b->kind) {
	case BACKEND_MUTEX:
		return mx_free_n(b, idx, n);
	case BACKEND_URCU:
#ifdef HAVE_URCU
		for (uint64_t k = 0; k < n; k++)
			cds_lfs_push(b->lfs,
				     &((struct cds_lfs_node *)b->nodes)[idx[k]]);
		return 0;
#else
		return -1;
#endif
	case BACKEND_FLOOR:
		for (uint64_t k = 0; k < n; k++)
			backend_floor_release(b, idx[k]);
		return 0;
	case BACKEND_SHMPOOL:
		break;
	}
	return -1;
}

/* Mark @i seen; a second sighting or an index out of range is a
 * violation. */
static void seen_once(struct run *r, uint8_t *seen, uint64_t cap, uint64_t i,
		      unsigned *reports)
{
	if (i >= cap || seen[i]) {
		if ((*reports)++ < 10)
			wl_violation(r, "slot %llu is in the free list %s",
				     (unsigned long long)i,
				     i >= cap ? "but out of range" : "twice");
		else
			r->violations++;
		return;
	}
	seen[i] = 1;
}

void backend_check_idle(struct run *r)
{
	struct backend *b = r->be;
	if (b == NULL || b->kind == BACKEND_SHMPOOL) {
		/* The pool's own counters say how many allocations it made;
		 * the workers counted slots, one allocation each. */
		wl_check_idle_pool(r, wl_total_ops(r));
		return;
	}
	uint64_t cap = b->capacity, back = 0;
	unsigned reports = 0;
	uint8_t *seen = calloc(cap ? cap : 1, 1);
	if (seen == NULL)
		abort();
	switch (b->kind) {
	case BACKEND_MUTEX:
		if (b->mx->owner_deaths)
			wl_violation(r, "the mutex owner died %llu time(s)",
				     (unsigned long long)b->mx->owner_deaths);
		for (uint32_t k = 0; k < b->mx->top && k < cap; k++, back++)
			seen_once(r, seen, cap, b->mx->stack[k], &reports);
		break;
	case BACKEND_URCU:
#ifdef HAVE_URCU
	{
		struct cds_lfs_head *head = cds_lfs_pop_all_blocking(b->lfs);
		struct cds_lfs_node *node, *next;
		if (head == NULL)
			break;
		cds_lfs_for_each_safe(head, node, next) {
			seen_once(r, seen, cap, (uint64_t)(node -
				(struct cds_lfs_node *)b->nodes), &reports);
			back++;
			if (back > cap)
				break; /* a cycle: reported as twice */
		}
	}
#endif
		break;
	case BACKEND_FLOOR:
		for (unsigned k = 0; k < b->nwords; k++) {
			uint64_t w = atomic_load(&b->words[k]);
			for (unsigned bit = 0; bit < 64; bit++) {
				uint64_t i = (uint64_t)k * 64 + bit;
				if (i < cap && !(w & (1ull << bit)))
					back++;
			}
		}
		break;
	case BACKEND_SHMPOOL:
		break;
	}
	if (back != cap)
		wl_violation(r, "%llu of %llu slot(s) back in the %s free list "
			     "after every worker freed its slots and exited",
			     (unsigned long long)back, (unsigned long long)cap,
			     r->cfg->backend);
	free(seen);
}

void backend_teardown(struct run *r)
{
	struct backend *b = r->be;
	if (b == NULL)
		return;
	if (b->kind == BACKEND_MUTEX) {
		pthread_cond_destroy(&b->mx->nonempty);
		pthread_mutex_destroy(&b->mx->lock);
	}
#ifdef HAVE_URCU
	if (b->kind == BACKEND_URCU)
		cds_lfs_destroy(b->lfs);
#endif
	free(b);
	r->be = NULL;
}
