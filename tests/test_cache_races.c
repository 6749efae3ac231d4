/*
 * test_cache_races.c - interleavings of the slot-cache protocol that a
 * review found and that random churn rarely hits, replayed exactly.
 *
 * Built against the crash-point build of the library (like test_crash): its
 * hook, called at every shared store with the function's name, lets a test
 * stop a thread at a chosen point of an operation (pause_at) while other
 * threads or processes act, then let it go on.
 *
 *   - a refill in transit: a waiter arrives while another thread has taken
 *     slots from the bitmap into its cache but not yet published them; the
 *     refill must then give them back and wake the waiter;
 *   - a thief killed while it holds the cache of a thread that is in the
 *     middle of a pop: recovery must let go of that cache even though its
 *     owner is busy, or the owner could never use it again;
 *   - a waiter that finds another thief on a cache must look again when
 *     that thief gives up, instead of sleeping beside the parked slots.
 *
 * Every wait is bounded (watchdog, timeouts), and a waiter that expects a
 * wake-up must get it well before its own timeout.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

void shmpool__crash_arm(int n, long hits,
			void (*seen)(unsigned, int, const char *));

#define WAKE_BOUND 2.0 /* a wake-up later than this was lost */

/* ---- stopping a thread inside the library --------------------------- */

struct pause {
	const char *fn; /* stop at the first crash point in it (NULL: any) */
	sem_t at, go;
};

static __thread struct pause *tl_pause;
static const char *die_in; /* a forked thief: SIGKILL itself in this */

static void hook(unsigned n, int line, const char *fn)
{
	struct pause *q = tl_pause;

	(void)n;
	(void)line;
	if (die_in && strcmp(fn, die_in) == 0)
		kill(getpid(), SIGKILL);
	if (q && (!q->fn || strcmp(fn, q->fn) == 0)) {
		tl_pause = NULL;
		sem_post(&q->at);
		while (sem_wait(&q->go) != 0)
			;
	}
}

static void pause_init(struct pause *q, const char *fn)
{
	q->fn = fn;
	assert_int_equal(sem_init(&q->at, 0, 0), 0);
	assert_int_equal(sem_init(&q->go, 0, 0), 0);
}

/* Wait (bounded) until the paused thread has stopped. */
static void pause_reached(struct pause *q)
{
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 10;
	assert_int_equal(sem_timedwait(&q->at, &dl), 0);
}

/* ---- a refill in transit --------------------------------------------- */

struct waiter {
	shmpool_t *p;
	double timeout;
	int64_t got;
	double took;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	double t0 = tu_now();

	w->got = shmpool_alloc(w->p, w->timeout);
	w->took = tu_now() - t0;
	return NULL;
}

struct refiller {
	shmpool_t *p;
	struct pause *stop;
	int64_t got;
};

static void *refill_thread(void *arg)
{
	struct refiller *r = arg;

	tl_pause = r->stop;
	r->got = shmpool_alloc(r->p, 0);
	return NULL;
}

static void test_refill_in_transit(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(tu_cache_pool(NULL, 4, 4));
	uint64_t held[4];
	struct pause stop;
	struct refiller r = { p, &stop, -1 };
	struct waiter w = { p, 30, -1, 0 };
	pthread_t rt, wt;

	pause_init(&stop, "cache_refill");
	assert_int_equal(assert_ok(shmpool_alloc_n(p, held, 4, 0)), 4);
	assert_int_equal(assert_ok(shmpool_free_n(p, held, 2)), 2);
	/* r claims both free slots into its cache and stops before it
	 * publishes them: for the waiter the pool is full, every cache empty */
	assert_int_equal(pthread_create(&rt, NULL, refill_thread, &r), 0);
	pause_reached(&stop);
	assert_int_equal(pthread_create(&wt, NULL, wait_thread, &w), 0);
	assert_true(tu_wait_waiters(p, 1, 1, 10));
	tu_sleep(0.05); /* asleep for good, if nothing wakes it */
	double t0 = tu_now();
	sem_post(&stop.go); /* r takes one slot, one stays in its cache */
	assert_int_equal(pthread_join(rt, NULL), 0);
	assert_true(r.got >= 0);
	assert_int_equal(pthread_join(wt, NULL), 0);
	assert_true(w.got >= 0);
	assert_true(w.got != r.got);
	if (tu_now() - t0 > WAKE_BOUND)
		fail_msg("the waiter slept %.2f s beside a freshly cached slot",
			 tu_now() - t0);
	shmpool_close(p);
}

/* ---- a thief killed holding a busy owner's cache --------------------- */

struct owner {
	shmpool_t *p;
	struct pause parked, stop, again;
	int64_t popped, later;
	int later_err;
};

/* Park two slots, stop in the middle of the next pop, finish it, then
 * allocate once more, which needs its own cache (the bitmap is empty). */
static void *owner_thread(void *arg)
{
	struct owner *o = arg;
	int64_t x = shmpool_alloc(o->p, 0), y = shmpool_alloc(o->p, 0);

	if (x < 0 || y < 0 || shmpool_free(o->p, (uint64_t)x) ||
	    shmpool_free(o->p, (uint64_t)y))
		return (void *)1;
	sem_post(&o->parked.at);
	sem_wait(&o->parked.go);
	tl_pause = &o->stop;
	o->popped = shmpool_alloc(o->p, 0);
	sem_post(&o->again.at);
	sem_wait(&o->again.go);
	errno = 0;
	o->later = shmpool_try_alloc(o->p);
	o->later_err = errno;
	return NULL;
}

static int thief_child(void *arg)
{
	shmpool_t *q = tu_cache_pool(arg, 0, 0);

	if (!q)
		return 2;
	die_in = "steal_caches"; /* dies holding the owner's cache */
	shmpool_try_alloc(q);
	return 3; /* not reached: the bitmap is empty, it must steal */
}

static void test_dead_thief_busy_owner(void **state)
{
	(void)state;
	const char *path = tu_path("pool");
	shmpool_t *p = assert_pool(tu_cache_pool(path, 4, 4));
	uint64_t held[2];
	struct owner o = { .p = p };
	pthread_t ot;
	void *rv;

	pause_init(&o.parked, NULL);
	pause_init(&o.stop, NULL);
	pause_init(&o.again, NULL);
	assert_int_equal(assert_ok(shmpool_alloc_n(p, held, 2, 0)), 2);
	assert_int_equal(pthread_create(&ot, NULL, owner_thread, &o), 0);
	pause_reached(&o.parked); /* two slots parked, the bitmap empty */
	sem_post(&o.parked.go);
	pause_reached(&o.stop); /* the owner is in the middle of a pop */
	int st = tu_run_child(thief_child, (void *)path, 10);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	/* the owner is still busy: recovery cannot empty its cache, and
	 * must let go of it all the same */
	assert_ok(shmpool_recover_stale(p));
	sem_post(&o.stop.go);
	pause_reached(&o.again);
	assert_ok(shmpool_recover_stale(p));
	sem_post(&o.again.go);
	assert_int_equal(pthread_join(ot, &rv), 0);
	assert_null(rv);
	assert_true(o.popped >= 0);
	if (o.later < 0)
		fail_msg("the owner could not use its own cache after the "
			 "recovery: %s", tu_errname(o.later_err));
	struct shmpool_stats s = tu_stats(p);
	assert_int_equal(s.used, 4);
	assert_int_equal(s.allocs - s.frees, s.used + s.cached);
	shmpool_close(p);
}

/* ---- a waiter beside another thief ----------------------------------- */

struct thief {
	shmpool_t *p;
	struct pause stop;
	int64_t got;
};

static void *thief_thread(void *arg)
{
	struct thief *t = arg;

	tl_pause = &t->stop;
	t->got = shmpool_try_alloc(t->p);
	return NULL;
}

static void test_waiter_beside_thief(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(tu_cache_pool(NULL, 4, 4));
	uint64_t held[2];
	struct owner o = { .p = p };
	struct thief t = { .p = p };
	struct waiter w = { p, 30, -1, 0 };
	pthread_t ot, tt, wt;

	pause_init(&o.parked, NULL);
	pause_init(&o.stop, NULL);
	pause_init(&o.again, NULL);
	pause_init(&t.stop, "steal_caches");
	assert_int_equal(assert_ok(shmpool_alloc_n(p, held, 2, 0)), 2);
	assert_int_equal(pthread_create(&ot, NULL, owner_thread, &o), 0);
	pause_reached(&o.parked);
	sem_post(&o.parked.go);
	pause_reached(&o.stop); /* owner busy, two slots parked */
	assert_int_equal(pthread_create(&tt, NULL, thief_thread, &t), 0);
	pause_reached(&t.stop); /* the thief holds the owner's cache */
	assert_int_equal(pthread_create(&wt, NULL, wait_thread, &w), 0);
	assert_true(tu_wait_waiters(p, 1, 1, 10));
	tu_sleep(0.05);
	sem_post(&t.stop.go); /* the owner is busy: the thief gives up */
	assert_int_equal(pthread_join(tt, NULL), 0);
	double t0 = tu_now();
	sem_post(&o.stop.go); /* the owner pops one; one stays parked */
	pause_reached(&o.again);
	assert_int_equal(pthread_join(wt, NULL), 0);
	assert_true(w.got >= 0);
	if (tu_now() - t0 > WAKE_BOUND)
		fail_msg("the waiter slept %.2f s beside a parked slot",
			 tu_now() - t0);
	sem_post(&o.again.go);
	assert_int_equal(pthread_join(ot, NULL), 0);
	shmpool_close(p);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup_dir, tu_teardown_dir)

int main(void)
{
	tu_init(120);
	shmpool__crash_arm(-1, -1, hook);
	const struct CMUnitTest tests[] = {
		T(test_refill_in_transit),
		T(test_dead_thief_busy_owner),
		T(test_waiter_beside_thief),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
