/*
 * test_cache.c - per-user slot caches (options.cache): a cached slot reads
 * as free everywhere, counters and stats agree with the slot states, slots
 * parked in idle, exited or killed processes' caches are taken back by an
 * allocator that finds the bitmap empty, a waiter is woken by a free that
 * parks a slot, recovery frees a dead process's cache, threads and close
 * hand caches on or back, and several processes churning a tiny pool never
 * hold one slot twice.  A process killed inside a cache operation (faked
 * here through the pool's internals; tests/test_crash.c kills real ones)
 * has its cache taken back without recover_stale, unless it died inside a
 * spill's release of bits, and a live busy owner keeps its cache.
 *
 * Everything is bounded (watchdog, child alarms, timeouts on every wait).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmpool-internal.h"

#define WAKE_BOUND 5.0 /* a wake-up later than this was lost */

/* Atomic add; the new value, or INT64_MIN when the call fails. */
static int64_t add(shmpool_t *p, uint64_t idx, int64_t d)
{
	int64_t v;

	return shmpool_i64_add(p, idx, d, &v) == 0 ? v : INT64_MIN;
}

/* Bits set in the bitmap = held + cached, and the stats agree. */
static void assert_consistent(shmpool_t *p, uint64_t held, uint64_t cached)
{
	struct shmpool_stats st = tu_stats(p);

	assert_int_equal(st.used, held);
	assert_int_equal(st.cached, cached);
	assert_int_equal(st.available, st.capacity - held);
	assert_int_equal(st.allocs - st.frees, held + cached);
	assert_int_equal(shmpool_allocated_slots(p, NULL, 0), (int64_t)held);
}

static void test_options(void **state)
{
	(void)state;
	const char *path = tu_path("pool");

	assert_fails_null(tu_cache_pool(NULL, 8, SHMPOOL_MAX_CACHE + 1), EINVAL);
	shmpool_t *p = assert_pool(tu_cache_pool(path, 8, 4));
	/* opening: 0 takes the file's size, another size is refused */
	shmpool_t *q = assert_pool(tu_cache_pool(path, 8, 0));
	assert_fails_null(tu_cache_pool(path, 8, 5), EINVAL);
	int64_t i = assert_ok(shmpool_alloc(q, 0));

	assert_ok(shmpool_free(q, (uint64_t)i));
	/* a refill takes half the cache: i and one more are parked */
	assert_int_equal(tu_stats(p).cached, 2);
	shmpool_close(q);
	/* close gives the cache back */
	assert_consistent(p, 0, 0);
	shmpool_close(p);
}

/* A freed slot is parked, reads as free, and comes back zeroed. */
static void test_parked_slot_is_free(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(tu_cache_pool(NULL, 100, 8));
	int64_t a = assert_ok(shmpool_alloc(p, 0));
	int64_t b = assert_ok(shmpool_alloc(p, 0));
	int64_t v;
	uint64_t out[4];

	assert_true(shmpool_is_allocated(p, (uint64_t)a));
	assert_ok(shmpool_i64_set(p, (uint64_t)a, 42));
	assert_ok(shmpool_free(p, (uint64_t)a));
	assert_false(shmpool_is_allocated(p, (uint64_t)a));
	assert_fails(shmpool_free(p, (uint64_t)a), ENOENT);
	assert_fails(shmpool_i64_get(p, (uint64_t)a, &v), ENOENT);
	assert_fails(shmpool_i64_add(p, (uint64_t)a, 1, NULL), ENOENT);
	assert_fails(shmpool_adopt(p, (uint64_t)a), ENOENT);
	assert_fails(shmpool_owner(p, (uint64_t)a), ENOENT);
	assert_null(shmpool_ptr(p, (uint64_t)a));
	assert_int_equal(shmpool_allocated_slots(p, out, 4), 1);
	assert_int_equal(out[0], (uint64_t)b);
	/* a refill took cache / 2 = 4 slots: a, b and two more */
	assert_consistent(p, 1, 3);
	/* last in, first out, and zeroed */
	assert_int_equal(assert_ok(shmpool_alloc(p, 0)), a);
	assert_ok(shmpool_i64_get(p, (uint64_t)a, &v));
	assert_int_equal(v, 0);
	assert_int_equal(shmpool_owner(p, (uint64_t)a), getpid());
	assert_ok(shmpool_free(p, (uint64_t)a));
	assert_ok(shmpool_free(p, (uint64_t)b));
	assert_consistent(p, 0, 4);
	shmpool_close(p);
}

/* Every slot can be allocated through the cache; a full cache gives half
 * back; try_alloc on a full pool fails; reset empties caches. */
static void test_fill_and_spill(void **state)
{
	(void)state;
	enum { CAP = 70, K = 8 };
	shmpool_t *p = assert_pool(tu_cache_pool(NULL, CAP, K));
	uint64_t held[CAP];

	for (int i = 0; i < CAP; i++)
		held[i] = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	assert_fails(shmpool_try_alloc(p), EAGAIN);
	assert_consistent(p, CAP, 0);
	for (int i = 0; i < CAP; i++)
		for (int j = 0; j < i; j++)
			assert_true(held[i] != held[j]);
	for (int i = 0; i < CAP; i++)
		assert_ok(shmpool_free(p, held[i]));
	/* K parked at most; the rest went back to the bitmap */
	struct shmpool_stats st = tu_stats(p);
	assert_true(st.cached >= 1 && st.cached <= K);
	assert_consistent(p, 0, st.cached);
	assert_ok(shmpool_reset(p));
	assert_consistent(p, 0, 0);
	shmpool_close(p);
}

/* free_n and alloc_n bypass the cache but take back what it holds. */
static void test_batches(void **state)
{
	(void)state;
	enum { CAP = 16, K = 8 };
	shmpool_t *p = assert_pool(tu_cache_pool(NULL, CAP, K));
	uint64_t idx[CAP];

	for (int i = 0; i < 6; i++) {
		int64_t r = assert_ok(shmpool_alloc(p, 0));

		assert_ok(shmpool_free(p, (uint64_t)r));
	}
	assert_true(tu_stats(p).cached > 0);
	/* all 16 at once: the parked ones must come back first */
	assert_int_equal(assert_ok(shmpool_alloc_n(p, idx, CAP, 0)), CAP);
	assert_consistent(p, CAP, 0);
	assert_int_equal(assert_ok(shmpool_free_n(p, idx, CAP)), CAP);
	assert_consistent(p, 0, 0);
	shmpool_close(p);
}

/* ---- other processes' caches ----------------------------------------- */

struct parker {
	shmpool_t *p;
	int to_parent[2], to_child[2];
	int park;     /* slots to allocate and free (they stay cached) */
	int die;      /* 0: idle until 'x'; 1: _exit; 2: SIGKILL itself */
	int hold;     /* further slots to keep allocated */
	int busy;     /* 1: stop as if inside a cache operation; 2: inside a
			 spill that published its pending record; 3: inside
			 a refill of an empty cache, its slots not stacked */
};

/* Slots whose owner word reads cached, by any user (the stats count the
 * stacks' depths instead). */
static int cached_owners(shmpool_t *h)
{
	struct shmpool *p = (struct shmpool *)h;
	int n = 0;

	for (uint64_t i = 0; i < p->capacity; i++)
		n += (atomic_load(&p->owner[i]) & OWNER_CACHED) != 0;
	return n;
}

/*
 * Leave the calling process's user record as if it stopped inside a cache
 * operation (@busy as in struct parker): busy set, as cache_enter() does;
 * for 2 also the long-form FREE record of a spill of the cache's bottom
 * entry, published before any of its owner stores (as release_word()
 * does); for 3 the depth 0, as in a refill of an empty cache that claimed
 * its slots (owners marked cached) and stacked none yet.
 */
static int fake_cache_op(shmpool_t *h, int busy)
{
	struct shmpool *p = (struct shmpool *)h;
	uint32_t hwm = atomic_load(&p->sh->user_hwm);

	for (uint32_t i = 0; i < hwm; i++) {
		struct pool_user *u = &p->users[i];
		_Atomic uint32_t *stk = p->cstack + (uint64_t)i * p->cstride;
		uint64_t idx = atomic_load(&stk[0]);

		if (atomic_load(&u->state) != USER_USED ||
		    atomic_load(&u->pid) != (int32_t)getpid())
			continue;
		atomic_store(&u->cst.h.busy, 1);
		if (busy == 3)
			atomic_store(&u->cst.h.depth, 0);
		if (busy == 2) {
			atomic_store(&u->pend_mask,
				     1ull << (idx % SLOTS_PER_WORD));
			atomic_store(&u->pend_snap, atomic_load(&u->nfree));
			atomic_store(&u->pend_op,
				     PEND(OP_FREE, idx / SLOTS_PER_WORD,
					  (i + 1) | OWNER_CACHED));
		}
		return 0;
	}
	return -1;
}

/* Child: allocate park + hold slots, free the first park (parked in its
 * cache), say 'r', then idle, exit or die. */
static int child_parker(void *arg)
{
	struct parker *k = arg;
	int64_t s[64];

	for (int i = 0; i < k->park + k->hold; i++)
		CHILD_CHECK((s[i] = shmpool_alloc(k->p, 0)) >= 0, 2);
	for (int i = 0; i < k->park; i++)
		CHILD_CHECK(shmpool_free(k->p, (uint64_t)s[i]) == 0, 3);
	if (k->busy)
		CHILD_CHECK(fake_cache_op(k->p, k->busy) == 0, 6);
	CHILD_CHECK(tu_signal_fd(k->to_parent[1], 'r') == 0, 4);
	if (k->die == 2)
		raise(SIGKILL);
	if (k->die == 1)
		return 0;
	CHILD_CHECK(tu_wait_fd(k->to_child[0], 30) == 'x', 5);
	return 0;
}

static pid_t start_parker(struct parker *k)
{
	tu_pipe(k->to_parent);
	tu_pipe(k->to_child);
	pid_t pid = tu_fork(child_parker, k, 0);
	assert_int_equal(tu_wait_fd(k->to_parent[0], 10), 'r');
	return pid;
}

static void take_all(shmpool_t *p, uint64_t n, uint64_t *out)
{
	for (uint64_t i = 0; i < n; i++) {
		int64_t r = shmpool_try_alloc(p);

		if (r < 0)
			fail_msg("allocation %llu of %llu failed: %s",
				 (unsigned long long)i, (unsigned long long)n,
				 shmpool_errmsg());
		out[i] = (uint64_t)r;
	}
	assert_fails(shmpool_try_alloc(p), EAGAIN);
}

/*
 * A child parks every slot of a pool in its cache, first stopping as
 * @busy says (0: idle, 1: inside a cache operation, 2: inside a spill with
 * its record published, 3: inside a refill with nothing stacked yet),
 * then idles (@die 0), exits (1) or kills itself
 * (2).  The parent must take every slot back without recover_stale,
 * except from a live busy child (it keeps its cache until it exits) and
 * from a spill in flight (recover_stale settles that one).
 */
static void run_steal(int die, int busy)
{
	enum { CAP = 8 };
	struct parker k = { .park = CAP, .die = die, .busy = busy };
	uint64_t got[CAP];

	k.p = assert_pool(tu_cache_pool(NULL, CAP, CAP));
	pid_t pid = start_parker(&k);
	if (die)
		tu_wait(pid, 10);
	/* the child's cache holds every slot; none is in the bitmap */
	assert_int_equal(tu_stats(k.p).cached, busy == 3 ? 0 : CAP);
	if (busy == 2 || (busy && !die)) {
		/* a waiter too, which takes more than a try */
		assert_fails(shmpool_alloc(k.p, 0.05), ETIMEDOUT);
		assert_int_equal(cached_owners(k.p), CAP);
	}
	if (busy == 2) {
		assert_int_equal(assert_ok(shmpool_recover_stale(k.p)), CAP);
		assert_consistent(k.p, 0, 0);
	}
	if (!die && busy) {
		/* it exits busy: dead now, its cache can be had */
		assert_ok(tu_signal_fd(k.to_child[1], 'x'));
		tu_wait_ok(pid, 10);
	}
	if (busy == 3) {
		/* only a waiter takes an empty cache whose owner is busy */
		assert_fails(shmpool_try_alloc(k.p), EAGAIN);
		got[0] = (uint64_t)assert_ok(shmpool_alloc(k.p, WAKE_BOUND));
		take_all(k.p, CAP - 1, got + 1);
	} else {
		take_all(k.p, CAP, got);
	}
	assert_consistent(k.p, CAP, 0);
	if (!die && !busy) {
		assert_ok(tu_signal_fd(k.to_child[1], 'x'));
		tu_wait_ok(pid, 10);
	}
	for (int i = 0; i < CAP; i++)
		assert_ok(shmpool_free(k.p, got[i]));
	/* parked in our cache now: nothing for recovery to do but retire the
	 * child's record */
	assert_int_equal(assert_ok(shmpool_recover_stale(k.p)), 0);
	assert_consistent(k.p, 0, CAP);
	shmpool_close(k.p);
}

/* run_steal() as a cmocka test: *state is a struct steal_case. */
struct steal_case {
	int die, busy;
};

static void test_steal(void **state)
{
	const struct steal_case *c = *state;

	run_steal(c->die, c->busy);
}

/* recover_stale frees a killed process's held and cached slots alike. */
static void test_recover_cache(void **state)
{
	(void)state;
	struct parker k = { .park = 3, .hold = 2, .die = 2 };

	k.p = assert_pool(tu_cache_pool(NULL, 20, 8));
	tu_wait(start_parker(&k), 10);
	struct shmpool_stats st = tu_stats(k.p);
	assert_int_equal(st.used, 2);
	assert_true(st.cached >= 3);
	assert_int_equal(assert_ok(shmpool_recover_stale(k.p)),
			 2 + (int64_t)st.cached);
	assert_consistent(k.p, 0, 0);
	shmpool_close(k.p);
}

/* Child: take every slot, say 'r', wait until the parent sleeps, free one
 * slot (parked in the cache: the free must see the waiter, give the cache
 * back and wake it), then wait for 'x'. */
static int child_full_then_free(void *arg)
{
	struct parker *k = arg;
	uint64_t cap = shmpool_capacity(k->p);
	int64_t s[64];

	for (uint64_t i = 0; i < cap; i++)
		CHILD_CHECK((s[i] = shmpool_alloc(k->p, 0)) >= 0, 2);
	CHILD_CHECK(tu_signal_fd(k->to_parent[1], 'r') == 0, 3);
	CHILD_CHECK(tu_wait_waiters(k->p, 1, UINT64_MAX, 10), 4);
	CHILD_CHECK(shmpool_free(k->p, (uint64_t)s[0]) == 0, 5);
	CHILD_CHECK(tu_wait_fd(k->to_child[0], 30) == 'x', 6);
	return 0;
}

static void test_push_wakes_waiter(void **state)
{
	(void)state;
	struct parker k = { 0 };

	k.p = assert_pool(tu_cache_pool(NULL, 4, 4));
	tu_pipe(k.to_parent);
	tu_pipe(k.to_child);
	pid_t pid = tu_fork(child_full_then_free, &k, 0);
	assert_int_equal(tu_wait_fd(k.to_parent[0], 10), 'r');
	double t0 = tu_now();
	int64_t r = shmpool_alloc(k.p, 30);
	assert_true(r >= 0);
	assert_true(tu_now() - t0 < WAKE_BOUND);
	assert_ok(tu_signal_fd(k.to_child[1], 'x'));
	tu_wait_ok(pid, 10);
	assert_ok(shmpool_free(k.p, (uint64_t)r));
	assert_ok(shmpool_recover_stale(k.p));
	assert_consistent(k.p, 0, tu_stats(k.p).cached);
	shmpool_close(k.p);
}

/* ---- threads and close ------------------------------------------------- */

struct churn_arg {
	shmpool_t *p;
	int rounds;
};

static void *thread_churn(void *arg)
{
	struct churn_arg *a = arg;

	for (int i = 0; i < a->rounds; i++) {
		int64_t r = shmpool_alloc(a->p, 5);

		if (r < 0 || shmpool_free(a->p, (uint64_t)r) < 0)
			return (void *)1;
	}
	return NULL;
}

/* A thread's cache outlives it (the next thread of the handle takes the
 * record); close gives every cache of the handle back. */
static void test_threads_and_close(void **state)
{
	(void)state;
	const char *path = tu_path("pool");
	shmpool_t *p = assert_pool(tu_cache_pool(path, 64, 16));
	struct churn_arg a = { p, 1000 };
	pthread_t th[3];
	void *rv;

	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, thread_churn,
						&a), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(th[i], &rv), 0);
		assert_null(rv);
	}
	assert_true(tu_stats(p).cached > 0);
	assert_consistent(p, 0, tu_stats(p).cached);
	shmpool_close(p);
	p = assert_pool(tu_cache_pool(path, 64, 16));
	assert_consistent(p, 0, 0);
	shmpool_close(p);
}

/* ---- no double allocation under churn ------------------------------------ */

struct churner {
	shmpool_t *p;
	double seconds; /* of churn, from the child's own start */
	_Atomic uint64_t *ops; /* shared: allocations done per child */
	int id;
};

/*
 * Child: allocate (blocking, bounded), add a marker to the slot, check that
 * the slot holds exactly the marker (a second holder would have added its
 * own), keep it a moment now and then, take the marker off, free.  Tiny
 * pools and caches make refills, spills, steals and waits frequent.
 */
static int child_churn(void *arg)
{
	struct churner *c = arg;
	int64_t mark = (int64_t)1 << (8 * c->id), got;
	uint64_t n = 0;
	int64_t keep[2] = { -1, -1 };
	double until = tu_now() + c->seconds;

	while (tu_now() < until) {
		int64_t r = shmpool_alloc(c->p, 5);

		CHILD_CHECK(r >= 0, 2);
		got = add(c->p, (uint64_t)r, mark);
		CHILD_CHECK(got == mark, 3);
		n++;
		if (n % 7 == 0 && keep[n % 2] < 0) {
			keep[n % 2] = r;
			continue;
		}
		CHILD_CHECK(add(c->p, (uint64_t)r, -mark) == 0, 4);
		CHILD_CHECK(shmpool_free(c->p, (uint64_t)r) == 0, 5);
		for (int k = 0; k < 2 && n % 5 == 0; k++)
			if (keep[k] >= 0) {
				CHILD_CHECK(add(c->p,
							    (uint64_t)keep[k],
							    -mark) == 0,
					    6);
				CHILD_CHECK(shmpool_free(c->p,
							 (uint64_t)keep[k]) ==
						    0,
					    7);
				keep[k] = -1;
			}
	}
	for (int k = 0; k < 2; k++)
		if (keep[k] >= 0) {
			CHILD_CHECK(add(c->p, (uint64_t)keep[k],
						    -mark) == 0,
				    8);
			CHILD_CHECK(shmpool_free(c->p, (uint64_t)keep[k]) == 0,
				    9);
		}
	c->ops[c->id] = n;
	return 0;
}

static void test_churn_no_double_allocation(void **state)
{
	(void)state;
	enum { NPROC = 4 };
	struct churner c[NPROC];
	pid_t pid[NPROC];
	_Atomic uint64_t *ops = tu_shared_mem(4096);
	shmpool_t *p = assert_pool(tu_cache_pool(NULL, 5, 2));

	for (int i = 0; i < NPROC; i++) {
		c[i] = (struct churner){ p, 1.0, ops, i };
		pid[i] = tu_fork(child_churn, &c[i], 0);
	}
	for (int i = 0; i < NPROC; i++)
		tu_wait_ok(pid[i], 20);
	for (int i = 0; i < NPROC; i++)
		assert_true(ops[i] > 0);
	/* the children exited with their caches full: recovery frees them */
	int64_t freed = assert_ok(shmpool_recover_stale(p));
	assert_true(freed >= 0);
	assert_consistent(p, 0, 0);
	tu_shared_free((void *)ops, 4096);
	shmpool_close(p);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup_dir, tu_teardown_dir)
/* run_steal(die, busy) under the name @name */
#define STEAL(name, die, busy)                                                \
	{ #name, test_steal, tu_setup_dir, tu_teardown_dir,                    \
	  &(struct steal_case){ die, busy } }

int main(void)
{
	tu_init(200);
	const struct CMUnitTest tests[] = {
		T(test_options),
		T(test_parked_slot_is_free),
		T(test_fill_and_spill),
		T(test_batches),
		STEAL(test_steal_from_idle, 0, 0),
		STEAL(test_steal_from_exited, 1, 0),
		STEAL(test_steal_from_killed, 2, 0),
		/* killed inside a cache operation: taken back all the same,
		 * before any recovery */
		STEAL(test_steal_from_killed_busy, 2, 1),
		/* killed inside a spill, its record published: recovery's to
		 * settle (else counted twice); recover_stale frees it all */
		STEAL(test_killed_in_spill_waits_for_recovery, 2, 2),
		/* killed inside a refill of its empty cache: the slots marked
		 * cached but in no stack are found by the drain's sweep */
		STEAL(test_steal_from_killed_in_refill, 2, 3),
		/* live owners that stay busy keep their slots */
		STEAL(test_live_busy_refill_keeps_slots, 0, 3),
		STEAL(test_live_busy_keeps_cache, 0, 1),
		T(test_recover_cache),
		T(test_push_wakes_waiter),
		T(test_threads_and_close),
		T(test_churn_no_double_allocation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
