/*
 * backend.h - what implements alloc and free for alloc_free: the library,
 * or one of the alternatives it is compared with (`backend` key).
 *
 *   shmpool  the library (r->pool); nothing here is used
 *   mutex    a process-shared robust pthread mutex around a stack of free
 *            slot indexes: what most people would write first
 *   urcu     liburcu's lock-free stack (cds_lfs) of one node per slot;
 *            push is lock-free, pop takes the stack's pop mutex
 *            (cds_lfs_pop_blocking).  Threads of one process only: see
 *            doc/backends.md
 *   floor    the floor workload's claim/release loop (CAS a bit in,
 *            fetch_and it out) over a bitmap of `capacity` bits
 *
 * Every alternative lives in one shared mapping (run_shared(), so `mem`,
 * `hugepages` and `prefault` apply to it) that also holds capacity x
 * elem_size bytes of slot data, the size of the pool's data region.
 * None of them counts anything per operation: the workers' own counters
 * are the figures, and the verify step checks that every slot came back.
 */
#ifndef STRESS_BACKEND_H
#define STRESS_BACKEND_H

#include <stdatomic.h>
#include <stdint.h>

#include "workload.h"

enum backend_kind {
	BACKEND_SHMPOOL,
	BACKEND_MUTEX,
	BACKEND_URCU,
	BACKEND_FLOOR,
};

struct mx_shm;

struct backend {
	enum backend_kind kind;
	uint64_t capacity;
	void *data;                /* the slots: capacity x elem_size bytes */
	/* floor: ceil(capacity / 64) words, the last one partly used */
	_Atomic uint64_t *words;
	unsigned nwords;
	uint64_t last_full;
	/* mutex */
	struct mx_shm *mx;
	/* urcu: a struct cds_lfs_stack and its nodes, one per slot */
	void *lfs;
	void *nodes;
};

enum backend_kind backend_kind(const char *name);

/* Scenario check of backend against mode and the build; NULL or a message
 * blaming *key. */
const char *backend_validate(const struct config *c, const char **key);

/* Parent, in setup: the pool (shmpool) or the shared free list; sets
 * r->be.  0, or -1 with a message. */
int backend_setup(struct run *r, uint64_t capacity, uint64_t elem_size);

/*
 * Allocate @n slots into @idx: 0; -1 with errno ETIMEDOUT (mutex: the
 * free list stayed empty for @timeout seconds) or EAGAIN (urcu, floor:
 * empty right now; they never block, the caller retries); other errno: a
 * broken backend (the message is printed).
 */
int backend_alloc_n(struct backend *b, uint64_t *idx, uint64_t n,
		    double timeout);
/* Free @n slots: 0; -1 on a broken backend or an index not allocated. */
int backend_free_n(struct backend *b, const uint64_t *idx, uint64_t n);

/* Parent, after the workers exited: every slot is back and none is in the
 * free list twice; adds what is wrong to r->violations. */
void backend_check_idle(struct run *r);
void backend_teardown(struct run *r);

/*
 * The floor backend inline, so that its loop is the floor workload's loop
 * and not a call: claim the lowest free bit of the first word that has
 * one.  At capacity 64 it is exactly wl_floor's claim_release.
 */
static inline int64_t backend_floor_claim(const struct backend *b)
{
	for (unsigned k = 0; k < b->nwords; k++) {
		uint64_t full = k + 1 == b->nwords ? b->last_full : ~0ull;
		uint64_t old = atomic_load_explicit(&b->words[k],
						    memory_order_relaxed);
		while (old != full) {
			unsigned bit = (unsigned)__builtin_ctzll(~old);
			if (atomic_compare_exchange_weak_explicit(&b->words[k],
					&old, old | (1ull << bit),
					memory_order_acquire,
					memory_order_relaxed))
				return (int64_t)k * 64 + bit;
		}
	}
	return -1;
}

static inline void backend_floor_release(const struct backend *b,
					 uint64_t idx)
{
	atomic_fetch_and_explicit(&b->words[idx / 64], ~(1ull << (idx % 64)),
				  memory_order_release);
}

#endif
