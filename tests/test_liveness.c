/*
 * test_liveness.c - invariants 3 and 4 under conditions the other tests do
 * not create: owners and recoverers in different PID namespaces, a process
 * that exec()s while holding slots, two waiters of which one is SIGKILLed
 * in its sleep, and a lost-wake-up stress (many waiters and freers over a
 * pool of two slots) that ends with every waiter served.
 *
 * Zombie owners and forged PID reuse are in test_recovery.c; single killed
 * waiters and recovery wake-ups in test_blocking.c.  The protocol itself is
 * model-checked by tests/model.sh.
 *
 * Everything is bounded: children run under alarms, waits are polled with
 * deadlines, a wake-up later than WAKE_BOUND counts as lost.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define ES 16
#define WAIT_LONG 15.0 /* a waiter's own timeout */
#define WAKE_BOUND 5.0 /* a wake-up later than this was lost */

static void assert_consistent(shmpool_t *p)
{
	struct shmpool_stats st = tu_stats(p);
	int64_t n = shmpool_allocated_slots(p, NULL, 0);
	assert_int_equal(st.used, (uint64_t)n);
	assert_int_equal(st.available, st.capacity - st.used);
	assert_int_equal(st.allocs - st.frees, st.used);
}

/* ---- PID namespaces ----------------------------------------------------------- */

/*
 * Run @fn in a grandchild that is PID 1 of a new PID namespace: the child
 * unshares CLONE_NEWPID (which applies to its next child), forks, and exits
 * with the grandchild's status (or 77 when unshare is not permitted).
 */
struct nsrun {
	tu_child_fn fn;
	void *arg;
};

static int child_in_new_pidns(void *arg)
{
	struct nsrun *r = arg;
	int st;

	if (unshare(CLONE_NEWPID) < 0)
		return errno == EPERM || errno == EINVAL || errno == ENOSPC
			       ? 77
			       : 2;
	pid_t g = fork();
	if (g < 0)
		return 3;
	if (g == 0) {
		/* dies with its parent, which the tests' watchdog kills */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(TU_CHILD_ALARM);
		if (getpid() != 1)
			_exit(4);
		_exit(r->fn(r->arg) & 0xff);
	}
	while (waitpid(g, &st, 0) < 0)
		if (errno != EINTR)
			return 5;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static pid_t fork_in_new_pidns(struct nsrun *r)
{
	return tu_fork(child_in_new_pidns, r, 40);
}

struct nsowner {
	const char *path;
	int to_parent[2], to_child[2];
};

/* In the namespace: take two slots, report them, hold them until 'x'. */
static int ns_owner(void *arg)
{
	struct nsowner *a = arg;
	shmpool_t *p = tu_open_existing(a->path);
	uint64_t idx[2];

	CHILD_CHECK(p != NULL, 10);
	CHILD_CHECK(shmpool_alloc_n(p, idx, 2, 1.0) == 2, 11);
	CHILD_CHECK(tu_write_all(a->to_parent[1], idx, sizeof idx) == 0, 12);
	CHILD_CHECK(tu_wait_fd(a->to_child[0], 30) == 'x', 13);
	return 0; /* exits holding both */
}

/* A live owner in another PID namespace is never freed; once it exits its
 * slots come back. */
static void test_pidns_owner_inside(void **state)
{
	(void)state;
	const char *path = tu_path("nsown");
	shmpool_t *p = assert_pool(shmpool_new(path, 8, ES));
	struct nsowner a = { .path = path };
	struct nsrun r = { ns_owner, &a };
	uint64_t idx[2];

	tu_pipe(a.to_parent);
	tu_pipe(a.to_child);
	pid_t pid = fork_in_new_pidns(&r);
	if (tu_read_all(a.to_parent[0], idx, sizeof idx, 10) != 0) {
		int st = tu_wait(pid, 10);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
			skip(); /* not allowed to unshare (not root) */
		fail_msg("namespaced owner did not report: %s",
			 tu_status_str(st));
	}
	/* Its PID is 1 there, which here is init: liveness must not depend
	 * on that number. */
	assert_int_equal(shmpool_owner(p, idx[0]), 1);
	for (int k = 0; k < 3; k++)
		assert_int_equal(shmpool_recover_stale(p), 0);
	assert_int_equal(shmpool_is_allocated(p, idx[0]), 1);
	assert_int_equal(shmpool_is_allocated(p, idx[1]), 1);
	assert_int_equal(shmpool_used(p), 2);

	assert_int_equal(tu_signal_fd(a.to_child[1], 'x'), 0);
	tu_wait_ok(pid, 10);
	assert_int_equal(shmpool_recover_stale(p), 2);
	assert_int_equal(shmpool_is_allocated(p, idx[0]), 0);
	assert_int_equal(shmpool_is_allocated(p, idx[1]), 0);
	assert_int_equal(shmpool_used(p), 0);
	assert_consistent(p);
	shmpool_close(p);
}

struct nsrecov {
	const char *path;
	uint64_t live_idx, dead_idx[2];
};

/* In the namespace: recover; the dead outside owner's two slots come back,
 * the live outside owner's slot stays. */
static int ns_recoverer(void *arg)
{
	struct nsrecov *a = arg;
	shmpool_t *p = tu_open_existing(a->path);

	CHILD_CHECK(p != NULL, 10);
	CHILD_CHECK(shmpool_recover_stale(p) == 2, 11);
	CHILD_CHECK(shmpool_is_allocated(p, a->live_idx) == 1, 12);
	CHILD_CHECK(shmpool_is_allocated(p, a->dead_idx[0]) == 0, 13);
	CHILD_CHECK(shmpool_is_allocated(p, a->dead_idx[1]) == 0, 14);
	CHILD_CHECK(shmpool_recover_stale(p) == 0, 15);
	CHILD_CHECK(shmpool_used(p) == 1, 16);
	CHILD_CHECK(shmpool_close(p) == 0, 17);
	return 0;
}

static int child_take2_exit(void *arg)
{
	struct nsowner *a = arg;
	shmpool_t *p = tu_open_existing(a->path);
	uint64_t idx[2];

	CHILD_CHECK(p != NULL, 2);
	CHILD_CHECK(shmpool_alloc_n(p, idx, 2, 1.0) == 2, 3);
	CHILD_CHECK(tu_write_all(a->to_parent[1], idx, sizeof idx) == 0, 4);
	return 0; /* exits holding both */
}

/* The reverse: a recoverer inside a PID namespace judges owners outside
 * it (whose PIDs mean nothing there) correctly. */
static void test_pidns_recoverer_inside(void **state)
{
	(void)state;
	const char *path = tu_path("nsrec");
	shmpool_t *p = assert_pool(shmpool_new(path, 8, ES));
	struct nsowner a = { .path = path };
	struct nsrecov rc = { .path = path };
	struct nsrun r = { ns_recoverer, &rc };

	rc.live_idx = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	tu_pipe(a.to_parent);
	pid_t d = tu_fork(child_take2_exit, &a, 20);
	assert_int_equal(tu_read_all(a.to_parent[0], rc.dead_idx,
				     sizeof rc.dead_idx, 10),
			 0);
	tu_wait_ok(d, 10);
	assert_int_equal(shmpool_used(p), 3);

	pid_t pid = fork_in_new_pidns(&r);
	int st = tu_wait(pid, 20);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		skip();
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("namespaced recoverer: %s", tu_status_str(st));
	assert_int_equal(shmpool_owner(p, rc.live_idx), getpid());
	assert_int_equal(shmpool_used(p), 1);
	assert_consistent(p);
	assert_int_equal(shmpool_free(p, rc.live_idx), 0);
	shmpool_close(p);
}

/* ---- exec ------------------------------------------------------------------------ */

struct execer {
	const char *path;
	int inherit; /* use the handle inherited over fork */
	shmpool_t *p;
	int to_parent[2];
	int execd[2]; /* O_CLOEXEC: EOF for the parent once the child exec'd */
};

static int child_alloc_exec(void *arg)
{
	struct execer *a = arg;
	shmpool_t *p = a->inherit ? a->p : tu_open_existing(a->path);
	uint64_t idx[2];

	close(a->execd[0]);
	CHILD_CHECK(p != NULL, 2);
	CHILD_CHECK(shmpool_alloc_n(p, idx, 2, 1.0) == 2, 3);
	CHILD_CHECK(tu_write_all(a->to_parent[1], idx, sizeof idx) == 0, 4);
	close(a->to_parent[1]);
	execl("/bin/sleep", "sleep", "30", (char *)NULL);
	return 5;
}

/* A process that exec()s another program is no longer a pool user (its
 * descriptors are O_CLOEXEC): its slots are recoverable while it lives. */
static void run_exec(int inherit)
{
	const char *path = tu_path("exec");
	shmpool_t *p = assert_pool(shmpool_new(path, 8, ES));
	struct execer a = { .path = path, .inherit = inherit, .p = p };
	uint64_t idx[2];
	int64_t mine = assert_ok(shmpool_alloc(p, 0));

	tu_pipe(a.to_parent);
	assert_int_equal(pipe2(a.execd, O_CLOEXEC), 0);
	pid_t pid = tu_fork(child_alloc_exec, &a, 40);
	close(a.to_parent[1]);
	close(a.execd[1]);
	assert_int_equal(tu_read_all(a.to_parent[0], idx, sizeof idx, 10), 0);
	/* EOF on the close-on-exec pipe: the child exec'd (or died) */
	assert_int_equal(tu_wait_fd(a.execd[0], 10), -1);
	assert_int_equal(kill(pid, 0), 0);
	assert_int_equal(tu_is_zombie(pid), 0); /* alive, as another program */
	assert_int_equal(shmpool_owner(p, idx[0]), pid);

	/*
	 * exec() drops the pipe and the child's liveness lock in deferred
	 * final closes, in an order the kernel does not promise: the lock
	 * may go just after the EOF.  Poll, bounded.
	 */
	double deadline = tu_now() + 10;
	int64_t got;
	while ((got = shmpool_recover_stale(p)) == 0 && tu_now() < deadline)
		tu_sleep(0.005);
	assert_int_equal(got, 2);
	assert_int_equal(shmpool_is_allocated(p, idx[0]), 0);
	assert_int_equal(shmpool_is_allocated(p, idx[1]), 0);
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)mine), 1);
	assert_int_equal(shmpool_used(p), 1);
	assert_consistent(p);
	assert_int_equal(tu_is_zombie(pid), 0); /* still running */

	kill(pid, SIGKILL);
	tu_wait(pid, 10);
	assert_int_equal(shmpool_recover_stale(p), 0);
	assert_int_equal(shmpool_free(p, (uint64_t)mine), 0);
	close(a.to_parent[0]);
	close(a.execd[0]);
	shmpool_close(p);
}

static void test_exec_opened(void **state)
{
	(void)state;
	run_exec(0);
}

static void test_exec_inherited(void **state)
{
	(void)state;
	run_exec(1);
}

/* ---- a waiter SIGKILLed in its sleep, beside another waiter ------------------- */

struct waiter {
	shmpool_t *p;
	int to_parent[2];
};

/* Block in alloc; report the index; free it. */
static int child_waiter(void *arg)
{
	struct waiter *w = arg;
	int64_t i = shmpool_alloc(w->p, WAIT_LONG);
	CHILD_CHECK(tu_write_all(w->to_parent[1], &i, sizeof i) == 0, 2);
	CHILD_CHECK(i >= 0, 3);
	CHILD_CHECK(shmpool_owner(w->p, (uint64_t)i) == getpid(), 4);
	CHILD_CHECK(shmpool_free(w->p, (uint64_t)i) == 0, 5);
	return 0;
}

static void test_killed_waiter_beside_waiter(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("kw"), 1, 8));
	struct waiter a = { .p = p }, b = { .p = p };
	int64_t mine = assert_ok(shmpool_alloc(p, 0)), got = -1;

	tu_pipe(a.to_parent);
	tu_pipe(b.to_parent);
	pid_t pa = tu_fork(child_waiter, &a, 40);
	if (!tu_wait_waiters(p, 1, 1, 10))
		fail_msg("first waiter never slept");
	pid_t pb = tu_fork(child_waiter, &b, 40);
	if (!tu_wait_waiters(p, 2, 2, 10))
		fail_msg("second waiter never slept");

	kill(pa, SIGKILL);
	assert_true(WIFSIGNALED(tu_wait(pa, 10)));
	/* Its waiter bit is left behind until recovery... */
	assert_int_equal(tu_stats(p).waiters, 2);
	assert_int_equal(shmpool_recover_stale(p), 0);
	/* ...which clears it, and only it: the other one still sleeps. */
	struct shmpool_stats s = tu_stats(p);
	assert_int_equal(s.waiters, 1);
	assert_int_equal(s.used, 1);
	assert_int_equal(tu_wait_fd(b.to_parent[0], 0.2), -2); /* no report */
	assert_int_equal(kill(pb, 0), 0);

	/* One free: the live waiter gets the slot at once. */
	double t0 = tu_now();
	assert_int_equal(shmpool_free(p, (uint64_t)mine), 0);
	if (tu_read_all(b.to_parent[0], &got, sizeof got, WAKE_BOUND) != 0)
		fail_msg("the surviving waiter was not woken within %g s",
			 WAKE_BOUND);
	assert_true(got == mine);
	assert_true(tu_now() - t0 < WAKE_BOUND);
	tu_wait_ok(pb, 10);
	assert_true(tu_wait_waiters(p, 0, 0, 5));
	assert_int_equal(shmpool_used(p), 0);
	assert_consistent(p);
	shmpool_close(p);
}

/* ---- lost-wake-up stress ------------------------------------------------------------ */

#define NWAITERS 6
#define NFREERS 2
#define STRESS_SECS 2.0

struct stress {
	shmpool_t *p;
	_Atomic int go_final;  /* parent holds every slot: final round */
	_Atomic int stop;      /* churn phase over */
	_Atomic long timeouts; /* churn-phase allocs that timed out */
	_Atomic long served;   /* churn-phase allocs that succeeded */
	_Atomic long clash;    /* a slot's stamp changed under its holder */
	_Atomic int final_ok;  /* final allocs that succeeded */
	_Atomic int final_tmo; /* final allocs that timed out: lost wake-up */
	double final_t0;       /* when the parent started freeing */
	double final_lat[NWAITERS];
};

/* Hold slot @i briefly, checking that nobody else took it meanwhile. */
static void hold(struct stress *s, uint64_t i, int spin_us)
{
	uint64_t me = (uint64_t)getpid(), v = 0;

	shmpool_set(s->p, i, &me, sizeof me);
	for (volatile int k = 0; k < spin_us * 50; k++)
		;
	if (shmpool_get(s->p, i, &v, sizeof v) != sizeof v || v != me)
		atomic_fetch_add(&s->clash, 1);
}

/*
 * Churn: alloc with a short timeout (which may expire legitimately: others
 * keep winning), hold, free.  Then the final round: one alloc with a long
 * timeout, issued while the parent holds every slot; it must be served
 * once the parent frees them.
 */
static int child_stress_waiter(void *arg)
{
	struct stress *s = arg;
	unsigned seed = (unsigned)getpid();
	int id = -1;

	while (!atomic_load(&s->stop)) {
		double tmo = 0.001 * (1 + rand_r(&seed) % 50);
		int64_t i = shmpool_alloc(s->p, tmo);
		if (i < 0) {
			CHILD_CHECK(errno == ETIMEDOUT, 2);
			atomic_fetch_add(&s->timeouts, 1);
			continue;
		}
		atomic_fetch_add(&s->served, 1);
		hold(s, (uint64_t)i, rand_r(&seed) % 20);
		CHILD_CHECK(shmpool_free(s->p, (uint64_t)i) == 0, 3);
	}
	while (!atomic_load(&s->go_final))
		tu_sleep(0.001);
	int64_t i = shmpool_alloc(s->p, WAIT_LONG);
	if (i < 0) {
		atomic_fetch_add(&s->final_tmo, 1);
		return 4;
	}
	id = atomic_fetch_add(&s->final_ok, 1);
	if (id >= 0 && id < NWAITERS)
		s->final_lat[id] = tu_now() - s->final_t0;
	hold(s, (uint64_t)i, 10);
	CHILD_CHECK(shmpool_free(s->p, (uint64_t)i) == 0, 5);
	return 0;
}

/* Freer: grabs slots with try_alloc and frees them in bursts (free_n). */
static int child_stress_freer(void *arg)
{
	struct stress *s = arg;
	unsigned seed = (unsigned)getpid() * 7u;
	uint64_t held[2];

	while (!atomic_load(&s->stop)) {
		uint64_t n = 0;
		int64_t i;
		while (n < 2 && (i = shmpool_alloc(s->p, 0.002)) >= 0)
			held[n++] = (uint64_t)i;
		for (uint64_t k = 0; k < n; k++)
			hold(s, held[k], rand_r(&seed) % 50);
		if (n)
			CHILD_CHECK(shmpool_free_n(s->p, held, n) == (int64_t)n,
				    2);
		else
			CHILD_CHECK(errno == ETIMEDOUT, 3);
	}
	return 0;
}

static void test_lost_wakeup_stress(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("lw"), 2, 8));
	struct stress *s = tu_shared_mem(sizeof *s);
	pid_t w[NWAITERS], f[NFREERS];
	uint64_t mine[2];

	s->p = p;
	for (int k = 0; k < NWAITERS; k++)
		w[k] = tu_fork(child_stress_waiter, s, 60);
	for (int k = 0; k < NFREERS; k++)
		f[k] = tu_fork(child_stress_freer, s, 60);
	tu_sleep(STRESS_SECS);
	atomic_store(&s->stop, 1);
	for (int k = 0; k < NFREERS; k++)
		tu_wait_ok(f[k], 10);

	/* Final round: hold both slots, let every waiter block, then free. */
	assert_int_equal(shmpool_alloc_n(p, mine, 2, 10.0), 2);
	atomic_store(&s->go_final, 1);
	if (!tu_wait_waiters(p, NWAITERS, NWAITERS, 10))
		fail_msg("only %llu of %d waiters asleep for the final round",
			 (unsigned long long)tu_stats(p).waiters, NWAITERS);
	s->final_t0 = tu_now();
	assert_int_equal(shmpool_free(p, mine[0]), 0);
	assert_int_equal(shmpool_free(p, mine[1]), 0);
	double deadline = tu_now() + WAKE_BOUND;
	while (atomic_load(&s->final_ok) < NWAITERS && tu_now() < deadline)
		tu_sleep(0.001);
	if (atomic_load(&s->final_ok) < NWAITERS)
		fail_msg("%d of %d waiters still asleep %g s after the slots "
			 "were freed: lost wake-up",
			 NWAITERS - atomic_load(&s->final_ok), NWAITERS,
			 WAKE_BOUND);
	for (int k = 0; k < NWAITERS; k++)
		tu_wait_ok(w[k], 10);

	double worst = 0;
	for (int k = 0; k < NWAITERS; k++)
		if (s->final_lat[k] > worst)
			worst = s->final_lat[k];
	print_message("# stress: %ld allocs served, %ld timed out (legitimate "
		      "under contention), final round: %d/%d served, last "
		      "after %.3f s\n",
		      atomic_load(&s->served), atomic_load(&s->timeouts),
		      atomic_load(&s->final_ok), NWAITERS, worst);
	assert_int_equal(atomic_load(&s->clash), 0);
	assert_int_equal(atomic_load(&s->final_tmo), 0);
	assert_true(atomic_load(&s->served) > 0);
	assert_true(tu_wait_waiters(p, 0, 0, 5));
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(shmpool_recover_stale(p), 0);
	assert_consistent(p);
	tu_shared_free(s, sizeof *s);
	shmpool_close(p);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup_dir, tu_teardown_dir)

int main(void)
{
	tu_init(200);
	const struct CMUnitTest tests[] = {
		T(test_pidns_owner_inside),
		T(test_pidns_recoverer_inside),
		T(test_exec_opened),
		T(test_exec_inherited),
		T(test_killed_waiter_beside_waiter),
		T(test_lost_wakeup_stress),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
