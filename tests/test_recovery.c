/*
 * test_recovery.c - invariants 2 and 3: slots of dead processes come back
 * through shmpool_recover_stale(), counters agree afterwards, live holders
 * (the caller, live children, processes that closed their handle, adopters,
 * a forked child of a dead owner) keep their slots, zombies count as dead,
 * and a reused PID does not make a dead owner look alive.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmpool-internal.h"

#define ES 16

struct kid {
	shmpool_t *p;       /* inherited handle, or NULL: open path */
	const char *path;
	uint64_t k;         /* slots to take */
	int how;            /* 0: wait to be killed, 1: _exit, 2: live */
	int to_parent[2], to_child[2];
};

/* Take @k slots, stamp them, report their indexes, then die or live. */
static int child_take(void *arg)
{
	struct kid *a = arg;
	shmpool_t *p = a->p;
	uint64_t idx[64];
	char tok[ES];

	if (p == NULL)
		p = tu_open_existing(a->path);
	CHILD_CHECK(p != NULL, 2);
	if (a->k > 1) {
		CHILD_CHECK(shmpool_alloc_n(p, idx, a->k, 1.0) == (int64_t)a->k,
			    3);
	} else if (a->k == 1) {
		int64_t i = shmpool_alloc(p, 1.0);
		CHILD_CHECK(i >= 0, 3);
		idx[0] = (uint64_t)i;
	}
	memset(tok, 0, sizeof tok);
	snprintf(tok, sizeof tok, "pid%d", (int)getpid());
	for (uint64_t m = 0; m < a->k; m++)
		CHILD_CHECK(shmpool_set(p, idx[m], tok, sizeof tok) == 0, 4);
	CHILD_CHECK(tu_write_all(a->to_parent[1], idx, a->k * 8) == 0, 5);
	if (a->how == 1)
		_exit(0); /* without freeing */
	if (a->how == 0)
		for (;;)
			pause(); /* SIGKILL comes */
	/* live: until told, then free everything and leave */
	CHILD_CHECK(tu_wait_fd(a->to_child[0], 30) == 'x', 6);
	CHILD_CHECK(shmpool_free_n(p, idx, a->k) == (int64_t)a->k, 7);
	return 0;
}

/* Start child_take; fill @idx with its slots; returns its pid. */
static pid_t spawn_taker(struct kid *a, uint64_t *idx)
{
	tu_pipe(a->to_parent);
	tu_pipe(a->to_child);
	pid_t pid = tu_fork(child_take, a, 40);
	if (tu_read_all(a->to_parent[0], idx, a->k * 8, 10) != 0) {
		kill(pid, SIGKILL);
		tu_wait(pid, 10);
		fail_msg("child %d did not report its slots", (int)pid);
	}
	return pid;
}

static void kid_close(struct kid *a)
{
	close(a->to_parent[0]);
	close(a->to_parent[1]);
	close(a->to_child[0]);
	close(a->to_child[1]);
}

static void assert_consistent(shmpool_t *p)
{
	struct shmpool_stats st = tu_stats(p);
	int64_t n = shmpool_allocated_slots(p, NULL, 0);
	assert_int_equal(st.used, (uint64_t)n);
	assert_int_equal(shmpool_used(p), (uint64_t)n);
	assert_int_equal(st.available, st.capacity - st.used);
	assert_int_equal(st.allocs - st.frees, st.used);
}

static void check_stamp(shmpool_t *p, uint64_t idx, pid_t pid)
{
	char tok[ES], want[ES];
	memset(want, 0, sizeof want);
	snprintf(want, sizeof want, "pid%d", (int)pid);
	assert_int_equal(shmpool_get(p, idx, tok, sizeof tok), ES);
	assert_memory_equal(tok, want, ES);
}

/* ---- basic recovery ----------------------------------------------------------- */

static void run_dead_child(int how)
{
	const char *path = tu_path("dead");
	shmpool_t *p = assert_pool(shmpool_new(path, 16, ES));
	uint64_t mine = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	uint64_t idx[3];
	struct kid a = { .p = NULL, .path = path, .k = 3, .how = how };
	struct shmpool_stats s0 = tu_stats(p);

	pid_t pid = spawn_taker(&a, idx);
	if (how == 0)
		kill(pid, SIGKILL);
	int st = tu_wait(pid, 10);
	assert_true(how == 0 ? WIFSIGNALED(st) : WIFEXITED(st));
	kid_close(&a);
	assert_int_equal(shmpool_used(p), 4);
	for (int m = 0; m < 3; m++) {
		assert_int_equal(shmpool_is_allocated(p, idx[m]), 1);
		assert_int_equal(shmpool_owner(p, idx[m]), pid);
	}
	assert_consistent(p);

	assert_int_equal(shmpool_recover_stale(p), 3);
	for (int m = 0; m < 3; m++)
		assert_int_equal(shmpool_is_allocated(p, idx[m]), 0);
	assert_int_equal(shmpool_is_allocated(p, mine), 1);
	assert_int_equal(shmpool_owner(p, mine), getpid());
	assert_int_equal(shmpool_used(p), 1);
	struct shmpool_stats s1 = tu_stats(p);
	assert_int_equal(s1.recoveries, s0.recoveries + 3);
	assert_int_equal(s1.frees, s0.frees + 3);
	assert_int_equal(s1.allocs, s0.allocs + 3);
	assert_int_equal(s1.users, s0.users); /* the dead user's record too */
	assert_consistent(p);

	/* Idempotent. */
	assert_int_equal(shmpool_recover_stale(p), 0);
	assert_int_equal(tu_stats(p).recoveries, s0.recoveries + 3);

	/* Reusable: every other slot can be taken, zero-filled. */
	for (int m = 0; m < 15; m++) {
		uint64_t i = (uint64_t)assert_ok(shmpool_try_alloc(p));
		char z[ES] = { 0 }, b[ES];
		assert_int_equal(shmpool_get(p, i, b, ES), ES);
		assert_memory_equal(b, z, ES);
		assert_int_equal(shmpool_owner(p, i), getpid());
	}
	assert_fails(shmpool_try_alloc(p), EAGAIN);
	assert_consistent(p);
	shmpool_close(p);
}

static void test_sigkill(void **state)
{
	(void)state;
	run_dead_child(0);
}

static void test_exit_without_free(void **state)
{
	(void)state;
	run_dead_child(1);
}

static void test_nothing_stale(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 8, ES));
	assert_int_equal(shmpool_recover_stale(p), 0);
	assert_ok(shmpool_alloc(p, 0));
	assert_ok(shmpool_alloc(p, 0));
	assert_int_equal(shmpool_recover_stale(p), 0);
	assert_int_equal(shmpool_used(p), 2);
	struct shmpool_stats st = tu_stats(p);
	assert_int_equal(st.recoveries, 0);
	assert_int_equal(st.frees, 0);
	/* A child that freed everything before exiting leaves nothing. */
	struct kid a = { .p = p, .k = 2, .how = 2 };
	uint64_t idx[2];
	pid_t pid = spawn_taker(&a, idx);
	assert_int_equal(shmpool_recover_stale(p), 0); /* alive */
	assert_int_equal(tu_signal_fd(a.to_child[1], 'x'), 0);
	tu_wait_ok(pid, 10);
	kid_close(&a);
	assert_int_equal(shmpool_recover_stale(p), 0);
	assert_int_equal(shmpool_used(p), 2);
	assert_int_equal(tu_stats(p).recoveries, 0);
	assert_consistent(p);
	shmpool_close(p);
}

/* ---- live holders are untouched ----------------------------------------------------- */

static void test_live_holders(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 32, ES));
	uint64_t mine[2], live[2], dead[3];
	char tok[ES];

	assert_int_equal(shmpool_alloc_n(p, mine, 2, 0), 2);
	memset(tok, 0, sizeof tok);
	snprintf(tok, sizeof tok, "pid%d", (int)getpid());
	for (int m = 0; m < 2; m++)
		assert_int_equal(shmpool_set(p, mine[m], tok, ES), 0);

	struct kid l = { .p = p, .k = 2, .how = 2 };
	pid_t lpid = spawn_taker(&l, live);
	struct kid d = { .p = p, .k = 3, .how = 1 };
	pid_t dpid = spawn_taker(&d, dead);
	tu_wait(dpid, 10);
	kid_close(&d);
	assert_int_equal(shmpool_used(p), 7);

	assert_int_equal(shmpool_recover_stale(p), 3);
	for (int m = 0; m < 2; m++) {
		assert_int_equal(shmpool_is_allocated(p, mine[m]), 1);
		assert_int_equal(shmpool_owner(p, mine[m]), getpid());
		check_stamp(p, mine[m], getpid());
		assert_int_equal(shmpool_is_allocated(p, live[m]), 1);
		assert_int_equal(shmpool_owner(p, live[m]), lpid);
		check_stamp(p, live[m], lpid);
	}
	for (int m = 0; m < 3; m++)
		assert_int_equal(shmpool_is_allocated(p, dead[m]), 0);
	assert_int_equal(shmpool_used(p), 4);
	assert_consistent(p);

	/* The live child can still free its own slots. */
	assert_int_equal(tu_signal_fd(l.to_child[1], 'x'), 0);
	tu_wait_ok(lpid, 10);
	kid_close(&l);
	assert_int_equal(shmpool_recover_stale(p), 0);
	assert_int_equal(shmpool_used(p), 2);
	assert_consistent(p);
	shmpool_close(p);
}

/* Several dead children at once, and several holders per child. */
static void test_many_dead(void **state)
{
	(void)state;
	enum { NK = 6 };
	shmpool_t *p = assert_pool(shmpool_new_memfd("many", 200, ES));
	uint64_t idx[NK][20];
	pid_t pid[NK];
	uint64_t total = 0;

	for (int k = 0; k < NK; k++) {
		struct kid a = { .p = p, .k = (uint64_t)(k * 3 + 1), .how = k & 1 ? 1 : 0 };
		pid[k] = spawn_taker(&a, idx[k]);
		if (!(k & 1))
			kill(pid[k], SIGKILL);
		tu_wait(pid[k], 10);
		kid_close(&a);
		total += a.k;
	}
	assert_int_equal(shmpool_used(p), total);
	assert_int_equal(shmpool_recover_stale(p), (int64_t)total);
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(tu_stats(p).recoveries, total);
	assert_consistent(p);
	shmpool_close(p);
}

/* ---- zombies ------------------------------------------------------------------------ */

static void test_zombie_owner(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("z"), 8, ES));
	struct kid a = { .p = p, .k = 2, .how = 1 };
	uint64_t idx[2];
	pid_t pid = spawn_taker(&a, idx);

	/* Do not reap: wait until it is a zombie. */
	double deadline = tu_now() + 10;
	while (tu_is_zombie(pid) != 1 && tu_now() < deadline)
		tu_sleep(0.002);
	assert_int_equal(tu_is_zombie(pid), 1);
	assert_int_equal(kill(pid, 0), 0); /* the PID still exists */

	assert_int_equal(shmpool_recover_stale(p), 2);
	assert_int_equal(shmpool_is_allocated(p, idx[0]), 0);
	assert_int_equal(shmpool_is_allocated(p, idx[1]), 0);
	assert_int_equal(tu_is_zombie(pid), 1); /* still unreaped */
	tu_wait(pid, 10);
	kid_close(&a);
	assert_int_equal(shmpool_used(p), 0);
	assert_consistent(p);
	shmpool_close(p);
}

/* ---- PID reuse ------------------------------------------------------------------------ */

struct reuser {
	shmpool_t *p;
	int to_parent[2], to_child[2];
	int attach; /* allocate a slot of its own */
};

/* The process that (maybe) got the dead owner's PID. */
static int child_reuser(void *arg)
{
	struct reuser *r = arg;
	int64_t i = -1;
	char c = 'n';
	/* Tell the parent whether we are the one it wanted. */
	int want = tu_wait_fd(r->to_child[0], 10);
	CHILD_CHECK(want == 'k' || want == 'q', 2);
	if (want == 'q')
		return 0;
	if (r->attach) {
		i = shmpool_alloc(r->p, 1.0);
		CHILD_CHECK(i >= 0, 3);
		c = 'a';
	}
	CHILD_CHECK(tu_write_all(r->to_parent[1], &c, 1) == 0, 4);
	CHILD_CHECK(tu_write_all(r->to_parent[1], &i, sizeof i) == 0, 5);
	CHILD_CHECK(tu_wait_fd(r->to_child[0], 30) == 'x', 6);
	if (i >= 0)
		CHILD_CHECK(shmpool_free(r->p, (uint64_t)i) == 0, 7);
	return 0;
}

static int set_last_pid(pid_t pid)
{
	char buf[32];
	int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int n = snprintf(buf, sizeof buf, "%d", (int)pid);
	int r = write(fd, buf, (size_t)n) == n ? 0 : -1;
	close(fd);
	return r;
}

/*
 * Fork child_reuser processes until one gets @target: first by asking the
 * kernel for that PID (ns_last_pid, needs privileges), else by cycling
 * through PIDs (likely only with a small pid_max).  Returns the live
 * reuser's pid (== target on success, else the last one kept alive).
 */
static pid_t get_pid(struct reuser *r, pid_t target, int *reused,
		     const char **how)
{
	*reused = 0;
	*how = "no PID reuse achieved (other live process)";
	for (int attempt = 0; attempt < 2000; attempt++) {
		int via_ns = attempt < 20 && set_last_pid(target - 1) == 0;
		tu_pipe(r->to_parent);
		tu_pipe(r->to_child);
		pid_t pid = tu_fork(child_reuser, r, 40);
		if (pid == target || attempt == 1999) {
			*reused = pid == target;
			if (*reused)
				*how = via_ns ? "PID reused (ns_last_pid)"
					      : "PID reused (pid cycling)";
			tu_signal_fd(r->to_child[1], 'k');
			return pid;
		}
		tu_signal_fd(r->to_child[1], 'q');
		tu_wait(pid, 10);
		close(r->to_parent[0]);
		close(r->to_parent[1]);
		close(r->to_child[0]);
		close(r->to_child[1]);
	}
	return -1; /* not reached */
}

static void run_pid_reuse(int attach)
{
	shmpool_t *p = assert_pool(shmpool_new(NULL, 8, ES));
	struct kid a = { .p = p, .k = 1, .how = 1 };
	uint64_t idx;
	pid_t apid = spawn_taker(&a, &idx);
	tu_wait(apid, 10); /* reaped: its PID is free for reuse */
	kid_close(&a);
	assert_int_equal(shmpool_owner(p, idx), apid);

	struct reuser r = { .p = p, .attach = attach };
	int reused;
	const char *how;
	pid_t bpid = get_pid(&r, apid, &reused, &how);
	char c = 0;
	int64_t bidx = -1;
	assert_int_equal(tu_read_all(r.to_parent[0], &c, 1, 10), 0);
	assert_int_equal(tu_read_all(r.to_parent[0], &bidx, sizeof bidx, 10), 0);
	print_message("# pid reuse test (%s): %s: dead owner %d, live "
		      "process %d\n",
		      attach ? "reuser attached" : "reuser not attached", how,
		      (int)apid, (int)bpid);
	assert_int_equal(kill(bpid, 0), 0); /* alive */
	if (attach) {
		assert_true(bidx >= 0);
		assert_int_equal(shmpool_owner(p, (uint64_t)bidx), bpid);
	}
	/* The dead owner's slot: recorded as its (maybe reused) PID. */
	assert_int_equal(shmpool_owner(p, idx), apid);

	assert_int_equal(shmpool_recover_stale(p), 1);
	assert_int_equal(shmpool_is_allocated(p, idx), 0);
	if (attach) {
		assert_int_equal(shmpool_is_allocated(p, (uint64_t)bidx), 1);
		assert_int_equal(shmpool_owner(p, (uint64_t)bidx), bpid);
	}
	assert_consistent(p);
	assert_int_equal(tu_signal_fd(r.to_child[1], 'x'), 0);
	tu_wait_ok(bpid, 10);
	close(r.to_parent[0]);
	close(r.to_parent[1]);
	close(r.to_child[0]);
	close(r.to_child[1]);
	assert_int_equal(shmpool_used(p), 0);
	shmpool_close(p);
}

static void test_pid_reuse(void **state)
{
	(void)state;
	run_pid_reuse(0);
}

static void test_pid_reuse_attached(void **state)
{
	(void)state;
	run_pid_reuse(1);
}

/* ---- alive but closed; adopt; forked child of a dead owner ------------------------- */

struct closer {
	const char *path;
	int to_parent[2], to_child[2];
};

static int child_close_and_live(void *arg)
{
	struct closer *c = arg;
	shmpool_t *q = shmpool_new(c->path, 8, ES);
	uint64_t idx[2];
	CHILD_CHECK(q != NULL, 2);
	CHILD_CHECK(shmpool_alloc_n(q, idx, 2, 1.0) == 2, 3);
	CHILD_CHECK(shmpool_close(q) == 0, 4);
	CHILD_CHECK(tu_write_all(c->to_parent[1], idx, sizeof idx) == 0, 5);
	CHILD_CHECK(tu_wait_fd(c->to_child[0], 30) == 'x', 6);
	return 0; /* exits holding both */
}

static void test_closed_but_alive(void **state)
{
	(void)state;
	const char *path = tu_path("closer");
	shmpool_t *p = assert_pool(shmpool_new(path, 8, ES));
	struct closer c = { .path = path };
	uint64_t idx[2];

	tu_pipe(c.to_parent);
	tu_pipe(c.to_child);
	pid_t pid = tu_fork(child_close_and_live, &c, 30);
	assert_int_equal(tu_read_all(c.to_parent[0], idx, sizeof idx, 10), 0);
	/* Closed its handle, still alive: its slots are not stale. */
	assert_int_equal(shmpool_recover_stale(p), 0);
	for (int m = 0; m < 2; m++) {
		assert_int_equal(shmpool_is_allocated(p, idx[m]), 1);
		assert_int_equal(shmpool_owner(p, idx[m]), pid);
	}
	assert_int_equal(tu_signal_fd(c.to_child[1], 'x'), 0);
	tu_wait_ok(pid, 10);
	assert_int_equal(shmpool_recover_stale(p), 2);
	assert_int_equal(shmpool_used(p), 0);
	assert_consistent(p);
	shmpool_close(p);
}

struct adopter {
	shmpool_t *p;
	uint64_t idx;
	int to_parent[2], to_child[2];
};

static int child_adopt(void *arg)
{
	struct adopter *a = arg;
	char buf[ES];
	CHILD_CHECK(shmpool_adopt(a->p, a->idx) == 0, 2);
	CHILD_CHECK(shmpool_owner(a->p, a->idx) == getpid(), 3);
	CHILD_CHECK(shmpool_get(a->p, a->idx, buf, ES) == ES, 4);
	CHILD_CHECK(tu_signal_fd(a->to_parent[1], 'a') == 0, 5);
	CHILD_CHECK(tu_wait_fd(a->to_child[0], 30) == 'x', 6);
	return 0; /* exits holding the adopted slot */
}

static void test_adopt_handoff(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 8, ES));
	struct kid prod = { .p = p, .k = 2, .how = 2 };
	uint64_t idx[2];
	pid_t ppid_ = spawn_taker(&prod, idx);

	/* The consumer adopts the producer's first slot. */
	struct adopter c = { .p = p, .idx = idx[0] };
	tu_pipe(c.to_parent);
	tu_pipe(c.to_child);
	pid_t cpid = tu_fork(child_adopt, &c, 30);
	assert_int_equal(tu_wait_fd(c.to_parent[0], 10), 'a');
	assert_int_equal(shmpool_owner(p, idx[0]), cpid);
	assert_int_equal(shmpool_owner(p, idx[1]), ppid_);

	/* The producer dies. */
	kill(ppid_, SIGKILL);
	tu_wait(ppid_, 10);
	kid_close(&prod);
	assert_int_equal(shmpool_recover_stale(p), 1); /* only idx[1] */
	assert_int_equal(shmpool_is_allocated(p, idx[0]), 1);
	assert_int_equal(shmpool_owner(p, idx[0]), cpid);
	check_stamp(p, idx[0], ppid_); /* data untouched */
	assert_int_equal(shmpool_is_allocated(p, idx[1]), 0);

	assert_int_equal(tu_signal_fd(c.to_child[1], 'x'), 0);
	tu_wait_ok(cpid, 10);
	assert_int_equal(shmpool_recover_stale(p), 1);
	assert_int_equal(shmpool_used(p), 0);
	assert_consistent(p);
	shmpool_close(p);
}

/*
 * A process P takes slots, forks a child G that keeps P's inherited
 * handle (and takes a slot of its own), then P dies.  G alive must not make
 * P look alive: P's slots are recovered, G's are not.
 */
struct forker {
	const char *path;
	int to_parent[2];
	int g_release[2]; /* G exits when this reads EOF or 'x' */
};

static int child_forker(void *arg)
{
	struct forker *f = arg;
	shmpool_t *q = shmpool_new(f->path, 16, ES);
	uint64_t idx[2];
	CHILD_CHECK(q != NULL, 2);
	CHILD_CHECK(shmpool_alloc_n(q, idx, 2, 1.0) == 2, 3);
	int gp[2];
	CHILD_CHECK(pipe(gp) == 0, 4);
	pid_t g = fork();
	CHILD_CHECK(g >= 0, 5);
	if (g == 0) {
		alarm(30);
		close(gp[0]);
		close(f->g_release[1]);
		int64_t gi = shmpool_alloc(q, 1.0); /* inherited handle */
		if (gi < 0)
			_exit(10);
		if (shmpool_owner(q, (uint64_t)gi) != getpid())
			_exit(11);
		if (tu_write_all(gp[1], &gi, sizeof gi) != 0)
			_exit(12);
		close(gp[1]);
		tu_wait_fd(f->g_release[0], 30);
		_exit(0);
	}
	close(gp[1]);
	int64_t gi = -1;
	CHILD_CHECK(tu_read_all(gp[0], &gi, sizeof gi, 10) == 0, 6);
	int64_t msg[4] = { (int64_t)idx[0], (int64_t)idx[1], gi, g };
	CHILD_CHECK(tu_write_all(f->to_parent[1], msg, sizeof msg) == 0, 7);
	return 0; /* P dies holding idx[0..1]; G lives on */
}

static void test_dead_parent_live_forked_child(void **state)
{
	(void)state;
	const char *path = tu_path("forker");
	shmpool_t *p = assert_pool(shmpool_new(path, 16, ES));
	struct forker f = { .path = path };
	int64_t msg[4];

	tu_pipe(f.to_parent);
	tu_pipe(f.g_release);
	pid_t pid = tu_fork(child_forker, &f, 30);
	assert_int_equal(tu_read_all(f.to_parent[0], msg, sizeof msg, 10), 0);
	pid_t g = (pid_t)msg[3];
	tu_wait_ok(pid, 10);
	assert_int_equal(kill(g, 0), 0); /* G alive */
	assert_int_equal(shmpool_owner(p, (uint64_t)msg[0]), pid);
	assert_int_equal(shmpool_owner(p, (uint64_t)msg[2]), g);

	int64_t r = shmpool_recover_stale(p);
	int e = errno;
	/* release G before asserting, so it never outlives the test */
	close(f.g_release[1]);
	close(f.g_release[0]);
	if (r != 2) {
		kill(g, SIGKILL);
		fail_msg("recover_stale returned %lld (%s), expected 2: the "
			 "dead owner's slots were kept alive by its forked "
			 "child",
			 (long long)r, r < 0 ? tu_errname(e) : "-");
	}
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)msg[0]), 0);
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)msg[1]), 0);
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)msg[2]), 1);
	assert_int_equal(shmpool_owner(p, (uint64_t)msg[2]), g);
	/* G exits (it is not our child: poll until it is gone) */
	double deadline = tu_now() + 10;
	while (kill(g, 0) == 0 && tu_now() < deadline)
		tu_sleep(0.005);
	if (kill(g, 0) == 0) {
		kill(g, SIGKILL);
		fail_msg("grandchild did not exit");
	}
	tu_sleep(0.05); /* its exit is complete once it is reaped by init */
	deadline = tu_now() + 10;
	int64_t got = 0;
	while (got == 0 && tu_now() < deadline) {
		got = shmpool_recover_stale(p);
		if (got == 0)
			tu_sleep(0.01);
	}
	assert_int_equal(got, 1);
	assert_int_equal(shmpool_used(p), 0);
	assert_consistent(p);
	shmpool_close(p);
}

/* ---- concurrent recoveries; random kill points ------------------------------------ */

static int child_recover(void *arg)
{
	shmpool_t *p = arg;
	int64_t n = shmpool_recover_stale(p);
	CHILD_CHECK(n >= 0, 2);
	return (int)n;
}

static void test_concurrent_recover(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 256, ES));
	uint64_t total = 0, idx[40];

	for (int k = 0; k < 5; k++) {
		struct kid a = { .p = p, .k = 40, .how = 1 };
		pid_t pid = spawn_taker(&a, idx);
		tu_wait(pid, 10);
		kid_close(&a);
		total += 40;
	}
	/* Three recoverers at once (two children and us). */
	pid_t r1 = tu_fork(child_recover, p, 30);
	pid_t r2 = tu_fork(child_recover, p, 30);
	int64_t mine = shmpool_recover_stale(p);
	assert_true(mine >= 0);
	int s1 = tu_wait(r1, 20), s2 = tu_wait(r2, 20);
	assert_true(WIFEXITED(s1) && WIFEXITED(s2));
	uint64_t sum = (uint64_t)mine + (uint64_t)WEXITSTATUS(s1) +
		       (uint64_t)WEXITSTATUS(s2);
	assert_int_equal(sum, total); /* each slot recovered exactly once */
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(tu_stats(p).recoveries, total);
	assert_consistent(p);
	shmpool_close(p);
}

/* ---- every user record taken by dead processes ---------------------------------- */

static int child_take_one(void *arg)
{
	const char *path = arg;
	shmpool_t *q = shmpool_new(path, 64, ES);
	CHILD_CHECK(q != NULL, 2);
	CHILD_CHECK(shmpool_alloc(q, 0) >= 0, 3);
	return 0; /* dies holding its slot and its user record */
}

/*
 * 64 processes (the smallest record table) each take a record and die.  A
 * newcomer finds no free record (EUSERS), yet recover_stale must still run,
 * on a record borrowed from the dead, and give everything back.
 */
static void test_all_records_dead(void **state)
{
	(void)state;
	const char *path = tu_path("full-users");
	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	o.backing = SHMPOOL_BACKING_FILE;
	o.name = path;
	o.capacity = 64;
	o.elem_size = ES;
	o.max_users = 64;
	shmpool_t *p0 = assert_pool(shmpool_open(&o));
	shmpool_close(p0);

	for (int k = 0; k < 64; k++) {
		pid_t pid = tu_fork(child_take_one, (void *)path, 10);
		int st = tu_wait(pid, 10);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	shmpool_t *p = assert_pool(shmpool_new(path, 64, ES));
	assert_int_equal(shmpool_try_alloc(p), -1);
	assert_int_equal(errno, EUSERS);
	assert_int_equal(shmpool_recover_stale(p), 64);
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(tu_stats(p).recoveries, 64);
	int64_t i = shmpool_try_alloc(p); /* a record is free again */
	assert_true(i >= 0);
	assert_int_equal(shmpool_free(p, (uint64_t)i), 0);
	assert_consistent(p);
	shmpool_close(p);
}

/* Churn forever: single and batch allocs/frees, hand-offs, adopts. */
static int child_churn(void *arg)
{
	shmpool_t *p = arg;
	uint64_t out[8];
	unsigned seed = (unsigned)getpid();
	for (;;) {
		int64_t i = shmpool_try_alloc(p);
		if (i >= 0)
			shmpool_free(p, (uint64_t)i);
		uint64_t n = 1 + (uint64_t)(rand_r(&seed) % 8);
		if (shmpool_alloc_n(p, out, n, 0) == (int64_t)n) {
			shmpool_adopt(p, out[0]);
			shmpool_free_n(p, out, n);
		}
		i = shmpool_try_alloc(p);
		if (i >= 0 && rand_r(&seed) % 2)
			shmpool_free(p, (uint64_t)i); /* else: keep (leak) */
	}
	return 0; /* not reached: killed */
}

static void test_random_kills(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 64, ES));
	uint64_t mine[2];
	unsigned seed = 42;
	assert_int_equal(shmpool_alloc_n(p, mine, 2, 0), 2);

	for (int round = 0; round < 40; round++) {
		pid_t c[2];
		for (int k = 0; k < 2; k++)
			c[k] = tu_fork(child_churn, p, 30);
		tu_sleep(0.001 * (rand_r(&seed) % 8));
		for (int k = 0; k < 2; k++) {
			kill(c[k], SIGKILL);
			tu_wait(c[k], 10);
		}
		/* Sometimes the recovery itself is killed midway. */
		if (round % 4 == 3) {
			pid_t r = tu_fork(child_recover, p, 30);
			tu_sleep(0.0001 * (rand_r(&seed) % 10));
			kill(r, SIGKILL);
			tu_wait(r, 10);
		}
		int64_t got = shmpool_recover_stale(p);
		assert_true(got >= 0);
		/* Everything but our two slots is free again, and every
		 * counter agrees. */
		uint64_t list[64];
		int64_t n = shmpool_allocated_slots(p, list, 64);
		if (n != 2)
			fail_msg("round %d: %lld slots allocated after "
				 "recovery, expected 2",
				 round, (long long)n);
		assert_true((list[0] == mine[0] && list[1] == mine[1]) ||
			    (list[0] == mine[1] && list[1] == mine[0]));
		assert_int_equal(shmpool_owner(p, mine[0]), getpid());
		assert_int_equal(shmpool_owner(p, mine[1]), getpid());
		assert_consistent(p);
		assert_int_equal(tu_stats(p).waiters, 0);
	}
	/* All 62 other slots can be taken. */
	for (int k = 0; k < 62; k++)
		assert_ok(shmpool_try_alloc(p));
	assert_fails(shmpool_try_alloc(p), EAGAIN);
	assert_consistent(p);
	shmpool_close(p);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup_dir, tu_teardown_dir)

/* ---- a word left locked by a recovery that died --------------------------- */

/* Set (@on) or read the recovery lock bit of bitmap word 0 of @path. */
static int word0_lock(const char *path, int on)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	struct pool_hdr h;
	unsigned char *m;
	_Atomic uint64_t *w;
	int was;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	m = mmap(NULL, h.off_owner, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	w = (_Atomic uint64_t *)(m + h.off_bitmap);
	was = (atomic_load(w) & WORD_LOCK) != 0;
	if (on)
		atomic_fetch_or(w, WORD_LOCK);
	munmap(m, h.off_owner);
	close(fd);
	return was;
}

struct locker {
	const char *path;
	int to_parent[2], to_child[2];
	pid_t pid;
};

/* A live recovery, as far as locks go: hold the recovery lock byte until
 * told to stop. */
static int child_hold_recovery_lock(void *arg)
{
	struct locker *l = arg;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = LOCK_RECOVERY, .l_len = 1 };
	int fd = open(l->path, O_RDWR | O_CLOEXEC);

	CHILD_CHECK(fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) == 0, 2);
	CHILD_CHECK(tu_signal_fd(l->to_parent[1], 'l') == 0, 3);
	CHILD_CHECK(tu_wait_fd(l->to_child[0], 20) == 'q', 4);
	return 0;
}

/* Start a child holding the recovery lock byte of @path (a live recovery,
 * as far as locks go); locker_stop() ends it. */
static void locker_start(struct locker *l, const char *path)
{
	l->path = path;
	tu_pipe(l->to_parent);
	tu_pipe(l->to_child);
	l->pid = tu_fork(child_hold_recovery_lock, l, 30);
	assert_int_equal(tu_wait_fd(l->to_parent[0], 10), 'l');
}

static void locker_stop(struct locker *l)
{
	assert_int_equal(tu_signal_fd(l->to_child[1], 'q'), 0);
	tu_wait_ok(l->pid, 10);
}

/*
 * A recovery killed while it held a word's lock leaves the word locked.
 * An allocation that finds no other slot releases such locks when no
 * recovery runs, and takes a slot of that word; while a recovery runs (its
 * lock byte held), the lock is left alone.
 */
static void test_word_left_locked(void **state)
{
	(void)state;
	const char *path = tu_path("locked.pool");
	shmpool_t *p = assert_pool(shmpool_new(path, 4, ES));
	struct locker l;
	uint64_t idx[2];

	assert_int_equal(shmpool_alloc_n(p, idx, 2, 0), 2);
	assert_int_equal(word0_lock(path, 1), 0);

	/* a live recovery holds its lock: the word stays locked, full */
	locker_start(&l, path);
	assert_fails(shmpool_try_alloc(p), EAGAIN);
	assert_int_equal(word0_lock(path, 0), 1);
	locker_stop(&l);

	/* no recovery runs: the stale lock goes and both free slots are
	 * allocated, by a single and by a batch allocation */
	int64_t a = assert_ok(shmpool_try_alloc(p));
	assert_true(a >= 0 && a < 4 && a != (int64_t)idx[0] &&
		    a != (int64_t)idx[1]);
	assert_int_equal(word0_lock(path, 0), 0);
	assert_int_equal(word0_lock(path, 1), 0);
	uint64_t last;
	assert_int_equal(shmpool_alloc_n(p, &last, 1, 0), 1);
	assert_int_equal(word0_lock(path, 0), 0);
	assert_int_equal(shmpool_used(p), 4);
	assert_fails(shmpool_try_alloc(p), EAGAIN);
	shmpool_close(p);
}

/* Allocate, waiting up to 10 s; exit 0 if a slot came within 5 s. */
static int child_alloc_soon(void *arg)
{
	shmpool_t *p = arg;
	double t0 = tu_now();

	CHILD_CHECK(shmpool_alloc(p, 10.0) >= 0, 2);
	CHILD_CHECK(tu_now() - t0 < 5.0, 3);
	return 0;
}

/*
 * A waiter that finds free slots behind a word lock while a recovery runs
 * goes back to sleep; if that recovery then goes away without waking
 * anyone (it died), the waiter must still get a slot: it looks again
 * every few ms while free slots sit behind a lock.
 */
static void test_waiter_beside_locked_word(void **state)
{
	(void)state;
	const char *path = tu_path("nap.pool");
	shmpool_t *p = assert_pool(shmpool_new(path, 4, ES));
	struct locker l;
	uint64_t idx[4];

	assert_int_equal(shmpool_alloc_n(p, idx, 4, 0), 4);
	locker_start(&l, path);
	pid_t w = tu_fork(child_alloc_soon, p, 30);
	assert_true(tu_wait_waiters(p, 1, 1, 10));

	/* the "recovery" locks the word, a slot is freed (the waiter wakes,
	 * finds only the locked word, cannot release it, sleeps again), and
	 * the "recovery" ends without a wake */
	assert_int_equal(word0_lock(path, 1), 0);
	assert_int_equal(shmpool_free(p, idx[0]), 0);
	tu_sleep(0.05);
	assert_int_equal(shmpool_is_allocated(p, idx[0]), 0);
	locker_stop(&l);
	tu_wait_ok(w, 10);
	assert_int_equal(word0_lock(path, 0), 0);
	assert_int_equal(shmpool_used(p), 4);
	shmpool_close(p);
}

static int child_alloc_forever(void *arg)
{
	CHILD_CHECK(shmpool_alloc(arg, -1) >= 0, 2);
	return 0;
}

/*
 * Frees clear the waiter bit of a waiter killed in its sleep (after 16
 * wakes that found nobody), but never while a recovery runs: to take the
 * dead user's lock byte then would make the recovery judge it alive.
 */
static void test_dead_waiter_bit_left_to_recovery(void **state)
{
	(void)state;
	const char *path = tu_path("deadwaiter.pool");
	shmpool_t *p = assert_pool(shmpool_new(path, 1, ES));
	struct locker l;
	int64_t i = assert_ok(shmpool_alloc(p, 0));
	pid_t w = tu_fork(child_alloc_forever, p, 30);

	assert_true(tu_wait_waiters(p, 1, 1, 10));
	kill(w, SIGKILL);
	assert_true(WIFSIGNALED(tu_wait(w, 10)));

	locker_start(&l, path);
	for (int k = 0; k < 32; k++) {
		assert_int_equal(shmpool_free(p, (uint64_t)i), 0);
		i = assert_ok(shmpool_alloc(p, 0));
	}
	assert_int_equal(tu_stats(p).waiters, 1);
	locker_stop(&l);
	for (int k = 0; k < 32; k++) {
		assert_int_equal(shmpool_free(p, (uint64_t)i), 0);
		i = assert_ok(shmpool_alloc(p, 0));
	}
	assert_int_equal(tu_stats(p).waiters, 0);
	assert_int_equal(shmpool_free(p, (uint64_t)i), 0);
	shmpool_close(p);
}

int main(void)
{
	tu_init(120);
	const struct CMUnitTest tests[] = {
		T(test_sigkill),
		T(test_exit_without_free),
		T(test_nothing_stale),
		T(test_live_holders),
		T(test_many_dead),
		T(test_zombie_owner),
		T(test_pid_reuse),
		T(test_pid_reuse_attached),
		T(test_closed_but_alive),
		T(test_all_records_dead),
		T(test_adopt_handoff),
		T(test_dead_parent_live_forked_child),
		T(test_concurrent_recover),
		T(test_random_kills),
		T(test_word_left_locked),
		T(test_waiter_beside_locked_word),
		T(test_dead_waiter_bit_left_to_recovery),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
