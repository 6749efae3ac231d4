/*
 * test_blocking.c - invariant 4: blocking allocation sleeps, is woken by a
 * free (or a batch free, or a recovery) in another process, never loses a
 * wake-up, times out on its deadline, survives signals, and leaves nothing
 * stuck when the waiter is killed.
 *
 * Everything is bounded.  A waiter that expects a wake-up uses a long
 * timeout (WAIT_LONG) and the test requires the wake-up within WAKE_BOUND,
 * which is shorter: a lost wake-up, rescued only by the waiter's own
 * timeout, fails instead of passing late.  WAKE_BOUND is a liveness bound
 * (seconds, for a wake-up that takes microseconds), not a performance
 * assertion.  Waiting is detected through stats.waiters (polled with a
 * bound), never by sleeping a guessed amount of time.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define WAIT_LONG 15.0 /* a waiter's own timeout */
#define WAKE_BOUND 5.0 /* a wake-up later than this was lost */

/* Poll until stats.waiters >= @n or @timeout seconds pass; 1 if reached. */
static int wait_waiters(shmpool_t *p, uint64_t n, double timeout)
{
	return tu_wait_waiters(p, n, UINT64_MAX, timeout);
}

/* Poll until *@served reaches @n within WAKE_BOUND; 1 if it did. */
static int wait_served(_Atomic int *served, int n)
{
	double deadline = tu_now() + WAKE_BOUND;
	while (atomic_load(served) < n && tu_now() < deadline)
		tu_sleep(0.001);
	return atomic_load(served) >= n;
}

/* ---- woken by a free in another process ------------------------------------ */

struct holder {
	shmpool_t *p;
	int to_parent[2], to_child[2];
	uint64_t nfree_first; /* slots to free once a waiter sleeps */
	uint64_t nfree_second; /* then, after checking, these */
	int64_t expect_used_between; /* check used == this in between (-1: no) */
	uint64_t target_used; /* used once the waiter got its slots */
};

/*
 * Child: take every slot, say 'r', wait until the parent sleeps in alloc,
 * free some slots (reporting their indexes), optionally check that the
 * parent is still asleep, free more, then wait for 'x'.
 * Reports: 'r', then one byte flags (1: saw a waiter, 2: the between-check
 * held, 4: the waiter took the slots within WAKE_BOUND), then the freed
 * indexes.
 */
static int child_holder(void *arg)
{
	struct holder *h = arg;
	uint64_t cap = shmpool_capacity(h->p), held[64], n = 0;
	int64_t i;
	unsigned char flags = 0;

	while (n < cap && (i = shmpool_try_alloc(h->p)) >= 0)
		held[n++] = (uint64_t)i;
	CHILD_CHECK(n == cap, 2);
	/* ascending, so that the parent may free the lowest ones */
	for (uint64_t a = 1; a < n; a++)
		for (uint64_t b = a; b > 0 && held[b - 1] > held[b]; b--) {
			uint64_t x = held[b];
			held[b] = held[b - 1];
			held[b - 1] = x;
		}
	CHILD_CHECK(tu_signal_fd(h->to_parent[1], 'r') == 0, 3);
	if (wait_waiters(h->p, 1, 10))
		flags |= 1;
	tu_sleep(0.1); /* the parent is asleep: let it sleep a little */
	uint64_t k = 0;
	for (; k < h->nfree_first; k++)
		CHILD_CHECK(shmpool_free(h->p, held[n - 1 - k]) == 0, 4);
	if (h->expect_used_between >= 0) {
		/* Not enough for the batch: the waiter must still sleep and
		 * must not hold part of it. */
		tu_sleep(0.1);
		struct shmpool_stats st;
		CHILD_CHECK(shmpool_stats(h->p, &st) == 0, 5);
		if (st.used == (uint64_t)h->expect_used_between &&
		    st.waiters >= 1)
			flags |= 2;
	}
	for (uint64_t m = 0; m < h->nfree_second; m++, k++)
		CHILD_CHECK(shmpool_free(h->p, held[n - 1 - k]) == 0, 6);
	double deadline = tu_now() + WAKE_BOUND;
	while (shmpool_used(h->p) != h->target_used && tu_now() < deadline)
		tu_sleep(0.001);
	if (shmpool_used(h->p) == h->target_used)
		flags |= 4;
	CHILD_CHECK(tu_write_all(h->to_parent[1], &flags, 1) == 0, 7);
	CHILD_CHECK(tu_write_all(h->to_parent[1], &held[n - k],
				 k * sizeof(uint64_t)) == 0,
		    8);
	CHILD_CHECK(tu_wait_fd(h->to_child[0], 30) == 'x', 9);
	for (uint64_t m = 0; m < n - k; m++)
		if (shmpool_owner(h->p, held[m]) == getpid())
			CHILD_CHECK(shmpool_free(h->p, held[m]) == 0, 10);
	return 0;
}

struct reporter {
	shmpool_t *p;
	double timeout;
	int to_parent[2], to_child[2];
};

/* Child: block in alloc, report {index, errno}, free on 'x'. */
static int child_alloc_report(void *arg)
{
	struct reporter *r = arg;
	errno = 0;
	int64_t rep[2] = { shmpool_alloc(r->p, r->timeout), 0 };
	rep[1] = errno;
	CHILD_CHECK(tu_write_all(r->to_parent[1], rep, sizeof rep) == 0, 2);
	CHILD_CHECK(tu_wait_fd(r->to_child[0], 30) == 'x', 3);
	if (rep[0] >= 0)
		CHILD_CHECK(shmpool_free(r->p, (uint64_t)rep[0]) == 0, 4);
	return 0;
}

/*
 * A waiter (a child, so that a lost wake-up with timeout -1 costs a bounded
 * read here, not a hang) sleeps on a full pool; this process frees one slot
 * after seeing it asleep; the waiter must get exactly that slot.
 */
static void run_wake_by_free(double timeout)
{
	shmpool_t *p = assert_pool(shmpool_new(NULL, 4, 8));
	struct reporter r = { .p = p, .timeout = timeout };
	uint64_t mine[4];
	int64_t rep[2] = { -1, 0 };

	assert_int_equal(shmpool_alloc_n(p, mine, 4, 0), 4);
	struct shmpool_stats s0 = tu_stats(p);
	tu_pipe(r.to_parent);
	tu_pipe(r.to_child);
	pid_t pid = tu_fork(child_alloc_report, &r, 40);
	if (!wait_waiters(p, 1, 10))
		fail_msg("the child never slept in alloc(%g)", timeout);
	tu_sleep(0.1); /* let it sleep a little */
	assert_int_equal(shmpool_free(p, mine[2]), 0);
	if (tu_read_all(r.to_parent[0], rep, sizeof rep, WAKE_BOUND) != 0)
		fail_msg("alloc(%g) not woken %g s after a free: lost "
			 "wake-up",
			 timeout, WAKE_BOUND);
	if (rep[0] < 0)
		fail_msg("alloc(%g) while a free was coming: %s", timeout,
			 tu_errname((int)rep[1]));
	assert_int_equal(rep[0], mine[2]);
	assert_int_equal(shmpool_owner(p, mine[2]), pid);
	struct shmpool_stats s1 = tu_stats(p);
	assert_int_equal(s1.waits, s0.waits + 1);
	assert_int_equal(s1.timeouts, s0.timeouts);
	assert_int_equal(s1.waiters, 0);
	assert_int_equal(s1.used, 4);
	assert_int_equal(s1.allocs, s0.allocs + 1);
	assert_int_equal(tu_signal_fd(r.to_child[1], 'x'), 0);
	tu_wait_ok(pid, 20);
	assert_int_equal(shmpool_used(p), 3);
	shmpool_close(p);
}

/* The waiter is this process, the freer a child. */
static void test_wake_self(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 4, 8));
	struct holder h = { .p = p, .nfree_first = 1, .expect_used_between = -1,
			    .target_used = 4 };
	unsigned char flags = 0;
	uint64_t freed = UINT64_MAX;

	tu_pipe(h.to_parent);
	tu_pipe(h.to_child);
	pid_t pid = tu_fork(child_holder, &h, 40);
	assert_int_equal(tu_wait_fd(h.to_parent[0], 10), 'r');
	struct shmpool_stats s0 = tu_stats(p);
	assert_int_equal(s0.used, 4);

	int64_t i = shmpool_alloc(p, WAIT_LONG);
	int e = errno;
	if (i < 0)
		fail_msg("alloc(%g) while a free was coming: %s (%s)",
			 WAIT_LONG, tu_errname(e), shmpool_errmsg());
	assert_int_equal(tu_read_all(h.to_parent[0], &flags, 1, 10), 0);
	assert_int_equal(tu_read_all(h.to_parent[0], &freed, 8, 10), 0);
	assert_true(flags & 1); /* the child saw us waiting */
	if (!(flags & 4))
		fail_msg("not woken within %g s of the free: lost wake-up",
			 WAKE_BOUND);
	assert_int_equal(i, freed);
	assert_int_equal(shmpool_owner(p, (uint64_t)i), getpid());
	struct shmpool_stats s1 = tu_stats(p);
	assert_int_equal(s1.waits, s0.waits + 1);
	assert_int_equal(s1.timeouts, s0.timeouts);
	assert_int_equal(s1.waiters, 0);
	assert_int_equal(s1.used, 4);

	assert_int_equal(tu_signal_fd(h.to_child[1], 'x'), 0);
	tu_wait_ok(pid, 20);
	assert_int_equal(shmpool_used(p), 1);
	assert_int_equal(shmpool_free(p, (uint64_t)i), 0);
	shmpool_close(p);
}

static void test_wake_timeout(void **state)
{
	(void)state;
	run_wake_by_free(WAIT_LONG - 5);
}

static void test_wake_infinite(void **state)
{
	(void)state;
	run_wake_by_free(-1);
}

/* alloc_n waits for n slots, never holding part of them meanwhile. */
static void test_alloc_n_wait(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 8, 8));
	/* The child takes all 8 and frees 2 before we ask for 4: we sleep;
	 * it frees 1 (3 free: still not enough, used must stay 5), then 1
	 * more (4 free). */
	struct holder h = { .p = p, .nfree_first = 1, .nfree_second = 1,
			    .expect_used_between = 5, .target_used = 8 };
	uint64_t out[4], freed[2];
	unsigned char flags = 0;

	tu_pipe(h.to_parent);
	tu_pipe(h.to_child);
	pid_t pid = tu_fork(child_holder, &h, 40);
	assert_int_equal(tu_wait_fd(h.to_parent[0], 10), 'r');
	/* give 2 back from here, so 2 are free before the wait */
	uint64_t held[8];
	assert_int_equal(shmpool_allocated_slots(p, held, 8), 8);
	assert_int_equal(shmpool_free(p, held[0]), 0);
	assert_int_equal(shmpool_free(p, held[1]), 0);
	struct shmpool_stats s0 = tu_stats(p);

	int64_t r = shmpool_alloc_n(p, out, 4, WAIT_LONG);
	int e = errno;
	if (r < 0)
		fail_msg("alloc_n(4, %g): %s (%s)", WAIT_LONG, tu_errname(e),
			 shmpool_errmsg());
	assert_int_equal(r, 4);
	assert_int_equal(tu_read_all(h.to_parent[0], &flags, 1, 10), 0);
	assert_int_equal(tu_read_all(h.to_parent[0], freed, 16, 10), 0);
	assert_true(flags & 1);
	if (!(flags & 4))
		fail_msg("batch waiter not woken within %g s: lost wake-up",
			 WAKE_BOUND);
	if (!(flags & 2))
		fail_msg("with 3 of 4 slots free the batch waiter did not "
			 "sleep holding nothing (used != 5 or no waiter)");
	for (int k = 0; k < 4; k++) {
		assert_int_equal(shmpool_owner(p, out[k]), getpid());
		for (int m = 0; m < k; m++)
			assert_true(out[k] != out[m]);
	}
	/* exactly the four free slots: our two and the child's two */
	uint64_t want[4] = { held[0], held[1], freed[0], freed[1] };
	for (int k = 0; k < 4; k++) {
		int found = 0;
		for (int m = 0; m < 4; m++)
			found |= out[m] == want[k];
		assert_true(found);
	}
	struct shmpool_stats s1 = tu_stats(p);
	assert_int_equal(s1.waits, s0.waits + 1);
	assert_int_equal(s1.used, 8);
	assert_int_equal(tu_signal_fd(h.to_child[1], 'x'), 0);
	tu_wait_ok(pid, 20);
	assert_int_equal(shmpool_used(p), 4);
	assert_int_equal(shmpool_free_n(p, out, 4), 4);
	shmpool_close(p);
}

/* ---- timeouts ------------------------------------------------------------- */

static int child_hold_all(void *arg)
{
	struct holder *h = arg;
	uint64_t cap = shmpool_capacity(h->p);
	for (uint64_t k = 0; k < cap; k++)
		CHILD_CHECK(shmpool_try_alloc(h->p) >= 0, 2);
	CHILD_CHECK(tu_signal_fd(h->to_parent[1], 'r') == 0, 3);
	CHILD_CHECK(tu_wait_fd(h->to_child[0], 30) == 'x', 4);
	for (uint64_t k = 0; k < cap; k++)
		CHILD_CHECK(shmpool_free(h->p, k) == 0, 5);
	return 0;
}

static void test_timeout_expiry(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("to"), 3, 8));
	struct holder h = { .p = p };
	uint64_t out[2];

	tu_pipe(h.to_parent);
	tu_pipe(h.to_child);
	pid_t pid = tu_fork(child_hold_all, &h, 40);
	assert_int_equal(tu_wait_fd(h.to_parent[0], 10), 'r');
	struct shmpool_stats s0 = tu_stats(p);

	double t0 = tu_now();
	assert_fails(shmpool_alloc(p, 0.1), ETIMEDOUT);
	double dt = tu_now() - t0;
	if (dt < 0.1 - 1e-6)
		fail_msg("alloc(0.1) gave up after %.6f s", dt);
	struct shmpool_stats s1 = tu_stats(p);
	assert_int_equal(s1.timeouts, s0.timeouts + 1);
	assert_int_equal(s1.waits, s0.waits + 1);
	assert_int_equal(s1.waiters, 0);
	assert_int_equal(s1.used, 3);
	assert_int_equal(s1.allocs, s0.allocs);

	t0 = tu_now();
	assert_fails(shmpool_alloc_n(p, out, 2, 0.1), ETIMEDOUT);
	dt = tu_now() - t0;
	if (dt < 0.1 - 1e-6)
		fail_msg("alloc_n(0.1) gave up after %.6f s", dt);
	struct shmpool_stats s2 = tu_stats(p);
	assert_int_equal(s2.timeouts, s0.timeouts + 2);
	assert_int_equal(s2.waits, s0.waits + 2);
	assert_int_equal(s2.used, 3);

	/* A tiny timeout still times out (or waits), never succeeds. */
	assert_fails(shmpool_alloc(p, 1e-9), ETIMEDOUT);

	assert_int_equal(tu_signal_fd(h.to_child[1], 'x'), 0);
	tu_wait_ok(pid, 20);
	assert_int_equal(shmpool_used(p), 0);
	shmpool_close(p);
}

/* ---- many waiters ------------------------------------------------------------ */

struct waiter {
	shmpool_t *p;
	double timeout;
	_Atomic int *served; /* shared counter */
	int nwaiters;        /* hold until this many were served (0: no) */
	double hold;         /* seconds to hold the slot */
};

static int child_waiter(void *arg)
{
	struct waiter *w = arg;
	int64_t i = shmpool_alloc(w->p, w->timeout);
	CHILD_CHECK(i >= 0, 2); /* a lost wake-up ends here as ETIMEDOUT */
	CHILD_CHECK(shmpool_owner(w->p, (uint64_t)i) == getpid(), 3);
	atomic_fetch_add(w->served, 1);
	if (w->nwaiters) {
		/* Keep the slot until everyone has one: each must have been
		 * woken by the parent's frees, not by another waiter's. */
		double deadline = tu_now() + 10;
		while (atomic_load(w->served) < w->nwaiters &&
		       tu_now() < deadline)
			tu_sleep(0.001);
		CHILD_CHECK(atomic_load(w->served) >= w->nwaiters, 4);
	}
	tu_sleep(w->hold);
	CHILD_CHECK(shmpool_free(w->p, (uint64_t)i) == 0, 5);
	return 0;
}

static void test_many_waiters(void **state)
{
	(void)state;
	enum { NW = 3 };
	shmpool_t *p = assert_pool(shmpool_new(NULL, 2, 8));
	_Atomic int *served = tu_shared_mem(4096);
	struct waiter w = { p, WAIT_LONG, served, 0, 0.02 };
	pid_t pid[NW];
	uint64_t mine[2];

	assert_int_equal(shmpool_alloc_n(p, mine, 2, 0), 2);
	struct shmpool_stats s0 = tu_stats(p);
	for (int k = 0; k < NW; k++)
		pid[k] = tu_fork(child_waiter, &w, 30);
	if (!wait_waiters(p, NW, 10))
		fail_msg("stats.waiters never reached %d (now %llu)", NW,
			 (unsigned long long)tu_stats(p).waiters);
	/* A stream of frees: ours, then each waiter's own. */
	assert_int_equal(shmpool_free(p, mine[0]), 0);
	tu_sleep(0.02);
	assert_int_equal(shmpool_free(p, mine[1]), 0);
	if (!wait_served(served, NW))
		fail_msg("only %d of %d waiters served: lost wake-up",
			 atomic_load(served), NW);
	for (int k = 0; k < NW; k++)
		tu_wait_ok(pid[k], 30);
	assert_int_equal(atomic_load(served), NW);
	struct shmpool_stats s1 = tu_stats(p);
	assert_int_equal(s1.used, 0);
	assert_int_equal(s1.waiters, 0);
	assert_true(s1.waits >= s0.waits + NW);
	assert_int_equal(s1.timeouts, s0.timeouts);
	assert_int_equal(s1.allocs, s0.allocs + NW);
	tu_shared_free((void *)served, 4096);
	shmpool_close(p);
}

/* One free_n of 3 slots must wake 3 sleepers (each keeps its slot). */
static void test_free_n_wakes_all(void **state)
{
	(void)state;
	enum { NW = 3 };
	shmpool_t *p = assert_pool(shmpool_new(NULL, NW, 8));
	_Atomic int *served = tu_shared_mem(4096);
	struct waiter w = { p, WAIT_LONG, served, NW, 0 };
	pid_t pid[NW];
	uint64_t mine[NW];

	assert_int_equal(shmpool_alloc_n(p, mine, NW, 0), NW);
	for (int k = 0; k < NW; k++)
		pid[k] = tu_fork(child_waiter, &w, 30);
	if (!wait_waiters(p, NW, 10))
		fail_msg("stats.waiters never reached %d", NW);
	assert_int_equal(shmpool_free_n(p, mine, NW), NW);
	if (!wait_served(served, NW))
		fail_msg("free_n of %d slots woke %d of %d waiters", NW,
			 atomic_load(served), NW);
	for (int k = 0; k < NW; k++) {
		int st = tu_wait(pid[k], 30);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("waiter %d: %s (exit 2: never woken, 4: not "
				 "all woken by free_n)",
				 k, tu_status_str(st));
	}
	assert_int_equal(atomic_load(served), NW);
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(tu_stats(p).waiters, 0);
	tu_shared_free((void *)served, 4096);
	shmpool_close(p);
}

/* Several frees in a row, one per waiter, each waiter keeping its slot. */
static void test_frees_wake_each(void **state)
{
	(void)state;
	enum { NW = 3 };
	shmpool_t *p = assert_pool(shmpool_new(NULL, NW, 8));
	_Atomic int *served = tu_shared_mem(4096);
	struct waiter w = { p, WAIT_LONG, served, NW, 0 };
	pid_t pid[NW];
	uint64_t mine[NW];

	assert_int_equal(shmpool_alloc_n(p, mine, NW, 0), NW);
	for (int k = 0; k < NW; k++)
		pid[k] = tu_fork(child_waiter, &w, 30);
	if (!wait_waiters(p, NW, 10))
		fail_msg("stats.waiters never reached %d", NW);
	/* Back-to-back single frees: wake-ups must not be merged away. */
	for (int k = 0; k < NW; k++)
		assert_int_equal(shmpool_free(p, mine[k]), 0);
	if (!wait_served(served, NW))
		fail_msg("%d frees woke %d of %d waiters", NW,
			 atomic_load(served), NW);
	for (int k = 0; k < NW; k++)
		tu_wait_ok(pid[k], 30);
	assert_int_equal(atomic_load(served), NW);
	assert_int_equal(shmpool_used(p), 0);
	tu_shared_free((void *)served, 4096);
	shmpool_close(p);
}

/* ---- stats.waiters, killed waiters, recovery wakes ------------------------ */

static int child_block_forever(void *arg)
{
	shmpool_t *p = arg;
	int64_t i = shmpool_alloc(p, -1);
	CHILD_CHECK(i >= 0, 2);
	CHILD_CHECK(shmpool_free(p, (uint64_t)i) == 0, 3);
	return 0;
}

static void test_waiters_stat(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("ws"), 1, 8));
	int64_t i = assert_ok(shmpool_alloc(p, 0));
	assert_int_equal(tu_stats(p).waiters, 0);
	pid_t pid = tu_fork(child_block_forever, p, 30);
	if (!wait_waiters(p, 1, 10))
		fail_msg("stats.waiters stayed 0 while a child sleeps in "
			 "alloc");
	assert_int_equal(tu_stats(p).waiters, 1);
	assert_int_equal(shmpool_free(p, (uint64_t)i), 0);
	tu_wait_ok(pid, WAKE_BOUND);
	assert_true(tu_wait_waiters(p, 0, 0, 5));
	assert_int_equal(shmpool_used(p), 0);
	shmpool_close(p);
}

/* A pool of one slot, held by us (*@slot), and a waiter SIGKILLed in its
 * sleep on it. */
static shmpool_t *pool_with_dead_waiter(int64_t *slot)
{
	shmpool_t *p = assert_pool(shmpool_new(NULL, 1, 8));

	*slot = assert_ok(shmpool_alloc(p, 0));
	pid_t pid = tu_fork(child_block_forever, p, 30);
	if (!wait_waiters(p, 1, 10))
		fail_msg("no waiter seen");
	kill(pid, SIGKILL);
	assert_true(WIFSIGNALED(tu_wait(pid, 10)));
	assert_int_equal(tu_stats(p).waiters, 1);
	return p;
}

/* After a dead waiter: a new waiter on @p is woken by the free of the
 * slot @i we hold; then @p is closed. */
static void live_waiter_woken(shmpool_t *p, int64_t i)
{
	pid_t pid = tu_fork(child_block_forever, p, 30);

	if (!wait_waiters(p, 1, 10))
		fail_msg("no second waiter seen");
	assert_int_equal(shmpool_free(p, (uint64_t)i), 0);
	tu_wait_ok(pid, WAKE_BOUND);
	assert_int_equal(shmpool_used(p), 0);
	shmpool_close(p);
}

static void test_waiter_killed(void **state)
{
	(void)state;
	int64_t i;
	shmpool_t *p = pool_with_dead_waiter(&i);
	/* The dead waiter held no slot; after recovery nothing of it is
	 * left: no waiter counted, no slot lost. */
	assert_int_equal(shmpool_recover_stale(p), 0);
	struct shmpool_stats s = tu_stats(p);
	assert_int_equal(s.waiters, 0);
	assert_int_equal(s.used, 1);
	assert_int_equal(shmpool_owner(p, (uint64_t)i), getpid());

	live_waiter_woken(p, i);
}

/*
 * Without any recovery, frees clear the bit of a waiter killed in its
 * sleep once their FUTEX_WAKEs keep finding nobody (IDLE_WAKES in the
 * library, 16): after that a free makes no syscall for it.
 */
static void test_dead_waiter_bit_cleared_by_frees(void **state)
{
	(void)state;
	int64_t i;
	shmpool_t *p = pool_with_dead_waiter(&i);

	for (int k = 0; k < 32; k++) {
		assert_int_equal(shmpool_free(p, (uint64_t)i), 0);
		i = assert_ok(shmpool_alloc(p, 0));
	}
	struct shmpool_stats s = tu_stats(p);
	assert_int_equal(s.waiters, 0);
	assert_int_equal(s.used, 1);
	assert_int_equal(s.recoveries, 0); /* no recovery ran */

	live_waiter_woken(p, i);
}

static int child_take_all_and_die(void *arg)
{
	struct holder *h = arg;
	uint64_t cap = shmpool_capacity(h->p);
	for (uint64_t k = 0; k < cap; k++)
		CHILD_CHECK(shmpool_try_alloc(h->p) >= 0, 2);
	CHILD_CHECK(tu_signal_fd(h->to_parent[1], 'r') == 0, 3);
	for (;;)
		pause(); /* killed */
}

static int child_wait_long(void *arg)
{
	shmpool_t *p = arg;
	int64_t i = shmpool_alloc(p, WAIT_LONG);
	CHILD_CHECK(i >= 0, 2);
	CHILD_CHECK(shmpool_owner(p, (uint64_t)i) == getpid(), 3);
	return 0;
}

static void test_recover_wakes_waiter(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 2, 8));
	struct holder h = { .p = p };
	tu_pipe(h.to_parent);
	pid_t k = tu_fork(child_take_all_and_die, &h, 30);
	assert_int_equal(tu_wait_fd(h.to_parent[0], 10), 'r');
	kill(k, SIGKILL);
	assert_true(WIFSIGNALED(tu_wait(k, 10)));
	assert_int_equal(shmpool_used(p), 2);

	pid_t w = tu_fork(child_wait_long, p, 40);
	if (!wait_waiters(p, 1, 10))
		fail_msg("no waiter seen");
	assert_int_equal(shmpool_recover_stale(p), 2);
	tu_wait_ok(w, WAKE_BOUND); /* woken by the recovery, got a slot */
	/* w exited holding its slot: one more recovery frees it */
	assert_int_equal(shmpool_recover_stale(p), 1);
	assert_int_equal(shmpool_used(p), 0);
	shmpool_close(p);
}

/* ---- signals ------------------------------------------------------------------ */

static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig)
{
	(void)sig;
	got_usr1++;
}

struct pester {
	pid_t target;
	double duration;
	shmpool_t *p;
	double free_after; /* < 0: never */
};

static int child_pester(void *arg)
{
	struct pester *a = arg;
	double t0 = tu_now();
	int freed = 0;
	while (tu_now() - t0 < a->duration) {
		kill(a->target, SIGUSR1);
		if (!freed && a->free_after >= 0 &&
		    tu_now() - t0 >= a->free_after) {
			CHILD_CHECK(shmpool_free(a->p, 0) == 0, 2);
			freed = 1;
		}
		tu_sleep(0.005);
	}
	if (!freed && a->free_after >= 0) {
		/* off the CPU for the whole window (a loaded machine): free
		 * now, or the waiter would wait out its timeout */
		CHILD_CHECK(shmpool_free(a->p, 0) == 0, 2);
		freed = 1;
	}
	if (freed) { /* the waiter must take it, despite the signals */
		double deadline = tu_now() + WAKE_BOUND;
		while (shmpool_is_allocated(a->p, 0) != 1 &&
		       tu_now() < deadline) {
			kill(a->target, SIGUSR1); /* signals go on meanwhile */
			tu_sleep(0.001);
		}
		CHILD_CHECK(shmpool_is_allocated(a->p, 0) == 1, 3);
	}
	return 0;
}

static void test_signals(void **state)
{
	(void)state;
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the futex wait sees EINTR */
	sigaction(SIGUSR1, &sa, &old);

	shmpool_t *p = assert_pool(shmpool_new(NULL, 1, 8));
	assert_int_equal(assert_ok(shmpool_alloc(p, 0)), 0);

	/* Signals neither shorten the timeout nor surface as EINTR. */
	struct pester a = { getpid(), 0.5, p, -1 };
	got_usr1 = 0;
	pid_t pid = tu_fork(child_pester, &a, 20);
	double t0 = tu_now();
	errno = 0;
	int64_t r = shmpool_alloc(p, 0.3);
	int e = errno;
	double dt = tu_now() - t0;
	tu_wait_ok(pid, 10);
	assert_true(got_usr1 > 0);
	assert_int_equal(r, -1);
	if (e != ETIMEDOUT)
		fail_msg("alloc under signals failed with %s", tu_errname(e));
	if (dt < 0.3 - 1e-6)
		fail_msg("alloc(0.3) under signals gave up after %.6f s", dt);

	/* A free amid the signals still wakes the waiter. */
	struct pester b = { getpid(), 0.4, p, 0.15 };
	got_usr1 = 0;
	pid = tu_fork(child_pester, &b, 20);
	r = shmpool_alloc(p, WAIT_LONG);
	e = errno;
	if (r < 0)
		fail_msg("alloc under signals with a free: %s", tu_errname(e));
	assert_int_equal(r, 0);
	tu_wait_ok(pid, 20); /* exit 3: the free did not wake us */
	sigaction(SIGUSR1, &old, NULL);
	shmpool_close(p);
}

/* ---- threads of one process -------------------------------------------------- */

struct thr_wait {
	shmpool_t *p;
	int64_t got;
	int err;
};

static void *thread_waiter(void *arg)
{
	struct thr_wait *t = arg;
	t->got = shmpool_alloc(t->p, WAIT_LONG);
	t->err = errno;
	return NULL;
}

static void test_thread_waiter(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 1, 8));
	struct thr_wait t = { p, -1, 0 };
	pthread_t th;
	int64_t i = assert_ok(shmpool_alloc(p, 0));
	assert_int_equal(pthread_create(&th, NULL, thread_waiter, &t), 0);
	if (!wait_waiters(p, 1, 10))
		fail_msg("the thread never waited");
	assert_int_equal(shmpool_free(p, (uint64_t)i), 0);
	double deadline = tu_now() + WAKE_BOUND;
	while (shmpool_is_allocated(p, (uint64_t)i) != 1 && tu_now() < deadline)
		tu_sleep(0.001);
	if (shmpool_is_allocated(p, (uint64_t)i) != 1)
		fail_msg("thread waiter not woken: lost wake-up");
	assert_int_equal(pthread_join(th, NULL), 0);
	if (t.got < 0)
		fail_msg("thread waiter: %s", tu_errname(t.err));
	assert_int_equal(t.got, i);
	assert_int_equal(shmpool_owner(p, (uint64_t)i), getpid());
	shmpool_close(p);
}

/* ---- a sleeping waiter uses no CPU ------------------------------------------- */

struct cpu_report {
	double cpu, wall;
	int err;
};

static int child_cpu(void *arg)
{
	void **a = arg;
	shmpool_t *p = a[0];
	struct cpu_report *rep = a[1];
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	double t0 = tu_now();
	errno = 0;
	int64_t i = shmpool_alloc(p, 0.5);
	rep->err = errno;
	rep->wall = tu_now() - t0;
	getrusage(RUSAGE_SELF, &r1);
	rep->cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) +
		   (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
		   (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) * 1e-6 +
		   (double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) * 1e-6;
	return i == -1 ? 0 : 2;
}

/*
 * A CPU-time bound, not a wall-clock one: a spinning waiter would burn
 * most of its 0.5 s; a sleeping one burns almost nothing.  The bound (half
 * the wait) is loose enough for any machine.
 */
static void test_sleeps_without_cpu(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 1, 8));
	struct cpu_report *rep = tu_shared_mem(4096);
	void *args[2] = { p, rep };
	assert_ok(shmpool_alloc(p, 0));
	int st = tu_run_child(child_cpu, args, 10);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(rep->err, ETIMEDOUT);
	assert_true(rep->wall >= 0.5 - 1e-6);
	if (rep->cpu > 0.25)
		fail_msg("a waiter burned %.3f s of CPU in a %.3f s wait",
			 rep->cpu, rep->wall);
	tu_shared_free(rep, 4096);
	shmpool_close(p);
}

/* ---- a waiter past the first word of the waiter mask --------------------- */

#define FAR_USER 70 /* user records taken before the waiter's */

/* Child: attach FAR_USER handles, then wait in alloc on one more: its
 * waiter bit is in the mask's second word. */
static int child_far_waiter(void *arg)
{
	const char *path = arg;
	shmpool_t *q[FAR_USER + 1];

	for (int i = 0; i <= FAR_USER; i++) {
		q[i] = shmpool_new(path, 1, 8);
		CHILD_CHECK(q[i] != NULL, 2);
		if (i < FAR_USER) /* attaches: a user record each */
			CHILD_CHECK(shmpool_try_alloc(q[i]) < 0 &&
					    errno == EAGAIN,
				    3);
	}
	CHILD_CHECK(shmpool_alloc(q[FAR_USER], WAIT_LONG) == 0, 4);
	return 0;
}

/*
 * A free looks at the waiter-mask words of every user ever attached, not
 * only the first 64: a waiter whose record is past them is woken too.
 */
static void test_waiter_past_first_mask_word(void **state)
{
	(void)state;
	const char *path = tu_path("far");
	shmpool_t *p = assert_pool(shmpool_new(path, 1, 8));

	assert_int_equal(assert_ok(shmpool_alloc(p, 0)), 0);
	pid_t pid = tu_fork(child_far_waiter, (void *)path, 40);
	assert_true(wait_waiters(p, 1, 20));
	/* its bit is set before its last look at the bitmap: a free right
	 * now could be found by that look, with no wake-up needed */
	tu_sleep(0.1);
	assert_true(tu_stats(p).users > 64); /* the waiter's index too */
	assert_int_equal(shmpool_free(p, 0), 0);
	double deadline = tu_now() + WAKE_BOUND;
	while (shmpool_owner(p, 0) != pid && tu_now() < deadline)
		tu_sleep(0.001);
	if (shmpool_owner(p, 0) != pid)
		fail_msg("a waiter with user index > 64 was not woken by the "
			 "free within %g s: lost wake-up", WAKE_BOUND);
	tu_wait_ok(pid, 20);
	shmpool_close(p);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup_dir, tu_teardown_dir)

int main(void)
{
	tu_init(200);
	const struct CMUnitTest tests[] = {
		T(test_wake_timeout),
		T(test_wake_infinite),
		T(test_wake_self),
		T(test_alloc_n_wait),
		T(test_timeout_expiry),
		T(test_many_waiters),
		T(test_free_n_wakes_all),
		T(test_frees_wake_each),
		T(test_waiters_stat),
		T(test_waiter_killed),
		T(test_dead_waiter_bit_cleared_by_frees),
		T(test_recover_wakes_waiter),
		T(test_signals),
		T(test_thread_waiter),
		T(test_sleeps_without_cpu),
		T(test_waiter_past_first_mask_word),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
