/*
 * test_multiproc.c - invariant 1 (no double allocation) under contention:
 * processes and threads allocating, stamping the slot with their own token,
 * checking it is still theirs, and freeing, over small pools.  Every worker
 * counts violations; the parent checks that none happened and that the
 * counters add up exactly afterwards.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define NWORK 4
#define MAXHOLD 16
#define ES 32 /* slot: token (pid, tid, counter, ~counter) */

/* Cycles per worker: enough for a few seconds of contention in total. */
#define OPS 100000      /* single alloc/free, processes and threads */
#define OPS_BLOCK 20000 /* capacity 2: most allocations sleep */
#define OPS_BATCH 20000 /* batches of 1..8 */
#define OPS_PT 40000    /* 2 processes x 3 threads */

struct result {
	uint64_t ops;        /* completed alloc+check+free cycles (slots) */
	uint64_t allocs;     /* slots obtained */
	uint64_t frees;      /* slots freed */
	uint64_t violations; /* token changed while we held the slot */
	uint64_t nonzero;    /* slot not zero-filled on alloc */
	uint64_t badowner;   /* owner() != us while we held it */
	uint64_t dupbatch;   /* alloc_n returned an index twice */
	uint64_t timeouts;   /* alloc timed out (not an error) */
	uint64_t errors;     /* any other failure */
	int last_errno;
	char pad[64];
};

struct token {
	uint64_t pid, tid, counter, check;
};

struct work {
	shmpool_t *p;       /* inherited handle, or NULL: open path */
	const char *path;
	uint64_t cap;
	int ops;            /* cycles per worker */
	int hold;           /* slots held at once (single mode) */
	int batch;          /* max batch size, 0: single alloc/free */
	unsigned seed;
	struct result *res;
	int gate;           /* fd: start when it reads EOF (-1: none) */
	int gate_w;         /* its write end, closed in the child */
	pthread_barrier_t *bar; /* threads: start together */
};

static pid_t gettid_(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void stamp(shmpool_t *p, uint64_t idx, uint64_t counter)
{
	struct token t = { (uint64_t)getpid(), (uint64_t)gettid_(), counter,
			   ~counter };
	memcpy(shmpool_ptr(p, idx), &t, sizeof t);
}

/* 1 if slot @idx still holds our token @counter. */
static int still_mine(shmpool_t *p, uint64_t idx, uint64_t counter, int via_get)
{
	struct token t;
	if (via_get) {
		if (shmpool_get(p, idx, &t, sizeof t) != sizeof t)
			return 0;
	} else {
		void *s = shmpool_ptr(p, idx);
		if (s == NULL)
			return 0;
		memcpy(&t, s, sizeof t);
	}
	return t.pid == (uint64_t)getpid() && t.tid == (uint64_t)gettid_() &&
	       t.counter == counter && t.check == ~counter;
}

static int is_zero(shmpool_t *p, uint64_t idx)
{
	const unsigned char *s = shmpool_ptr(p, idx);
	if (s == NULL)
		return 0;
	for (int k = 0; k < ES; k++)
		if (s[k])
			return 0;
	return 1;
}

static void note_error(struct result *r)
{
	r->errors++;
	r->last_errno = errno;
}

/* Take a freshly allocated slot: check it, stamp it. */
static void take(shmpool_t *p, struct result *r, uint64_t idx, uint64_t ctr)
{
	r->allocs++;
	if (!is_zero(p, idx))
		r->nonzero++;
	if (shmpool_owner(p, idx) != getpid())
		r->badowner++;
	stamp(p, idx, ctr);
}

static void give_back(shmpool_t *p, struct result *r, uint64_t idx,
		      uint64_t ctr, int via_get)
{
	if (!still_mine(p, idx, ctr, via_get))
		r->violations++;
	if (shmpool_is_allocated(p, idx) != 1)
		r->violations++;
	if (shmpool_free(p, idx) == 0)
		r->frees++;
	else
		note_error(r);
	r->ops++;
}

static void work_single(shmpool_t *p, const struct work *w, struct result *r)
{
	uint64_t idx[MAXHOLD], ctr[MAXHOLD];
	int head = 0, n = 0;
	unsigned seed = w->seed;
	uint64_t counter = 0;

	for (int op = 0; op < w->ops; op++) {
		if (n == w->hold) { /* free the oldest */
			give_back(p, r, idx[head], ctr[head], op & 1);
			head = (head + 1) % MAXHOLD;
			n--;
		}
		/*
		 * No hold-and-wait, so the workload cannot deadlock: a worker
		 * that holds slots only tries (and releases everything when
		 * the pool is full); one that holds none may block.
		 */
		int mode = rand_r(&seed) % 4;
		errno = 0;
		int64_t i = n > 0 || mode == 0 ? shmpool_try_alloc(p)
					       : shmpool_alloc(p, 10.0);
		if (i < 0) {
			if (errno == EAGAIN || errno == ETIMEDOUT) {
				if (errno == ETIMEDOUT)
					r->timeouts++;
				/* Release everything. */
				while (n > 0) {
					give_back(p, r, idx[head], ctr[head],
						  0);
					head = (head + 1) % MAXHOLD;
					n--;
				}
			} else {
				note_error(r);
			}
			continue;
		}
		counter++;
		take(p, r, (uint64_t)i, counter);
		if (rand_r(&seed) % 8 == 0)
			sched_yield();
		if (!still_mine(p, (uint64_t)i, counter, 0))
			r->violations++;
		int tail = (head + n) % MAXHOLD;
		idx[tail] = (uint64_t)i;
		ctr[tail] = counter;
		n++;
	}
	while (n > 0) {
		give_back(p, r, idx[head], ctr[head], 1);
		head = (head + 1) % MAXHOLD;
		n--;
	}
}

static void work_batch(shmpool_t *p, const struct work *w, struct result *r)
{
	uint64_t out[MAXHOLD], ctr[MAXHOLD];
	unsigned seed = w->seed;
	uint64_t counter = 0;

	for (int op = 0; op < w->ops; op++) {
		uint64_t n = 1 + (uint64_t)(rand_r(&seed) % w->batch);
		errno = 0;
		int64_t got = shmpool_alloc_n(p, out, n, 1.0);
		if (got < 0) {
			if (errno == ETIMEDOUT)
				r->timeouts++;
			else
				note_error(r);
			continue;
		}
		if ((uint64_t)got != n) {
			note_error(r);
			continue;
		}
		for (uint64_t k = 0; k < n; k++) {
			for (uint64_t m = 0; m < k; m++)
				if (out[m] == out[k])
					r->dupbatch++;
			ctr[k] = ++counter;
			take(p, r, out[k], ctr[k]);
		}
		if (rand_r(&seed) % 8 == 0)
			sched_yield();
		for (uint64_t k = 0; k < n; k++) {
			if (!still_mine(p, out[k], ctr[k], k & 1))
				r->violations++;
			if (shmpool_is_allocated(p, out[k]) != 1)
				r->violations++;
		}
		int64_t freed = shmpool_free_n(p, out, n);
		if (freed != (int64_t)n) {
			note_error(r);
			/* free what is left one by one */
			for (uint64_t k = freed < 0 ? 0 : (uint64_t)freed;
			     k < n; k++)
				if (shmpool_free(p, out[k]) == 0)
					r->frees++;
		}
		if (freed > 0)
			r->frees += (uint64_t)freed;
		r->ops += n;
	}
}

static uint64_t bad(const struct result *r)
{
	return r->violations + r->nonzero + r->badowner + r->dupbatch +
	       r->errors;
}

static int worker_proc(void *arg)
{
	struct work *w = arg;
	shmpool_t *p = w->p;
	if (p == NULL) {
		p = shmpool_new(w->path, w->cap, ES);
		CHILD_CHECK(p != NULL, 2);
	}
	/* Start gate: all workers start together when the parent closes
	 * the write end. */
	close(w->gate_w);
	CHILD_CHECK(tu_wait_fd(w->gate, 30) == -1, 3);
	if (w->batch)
		work_batch(p, w, w->res);
	else
		work_single(p, w, w->res);
	if (w->p == NULL)
		shmpool_close(p);
	return bad(w->res) ? 1 : 0;
}

static void *worker_thread(void *arg)
{
	struct work *w = arg;
	if (w->bar)
		pthread_barrier_wait(w->bar);
	if (w->batch)
		work_batch(w->p, w, w->res);
	else
		work_single(w->p, w, w->res);
	return NULL;
}

/* Check the results of @n workers and the pool after they finished. */
static void check_results(shmpool_t *p, struct result *res, int n,
			  const char *what)
{
	uint64_t allocs = 0, frees = 0, ops = 0, timeouts = 0;
	int failed = 0;
	for (int k = 0; k < n; k++) {
		struct result *r = &res[k];
		allocs += r->allocs;
		frees += r->frees;
		ops += r->ops;
		timeouts += r->timeouts;
		if (bad(r)) {
			print_message("# %s worker %d: violations %llu nonzero "
				      "%llu badowner %llu dupbatch %llu errors "
				      "%llu (last %s)\n",
				      what, k,
				      (unsigned long long)r->violations,
				      (unsigned long long)r->nonzero,
				      (unsigned long long)r->badowner,
				      (unsigned long long)r->dupbatch,
				      (unsigned long long)r->errors,
				      tu_errname(r->last_errno));
			failed = 1;
		}
	}
	if (failed)
		fail_msg("%s: invariant violated (see above)", what);
	if (timeouts)
		print_message("# %s: %llu allocation timeouts (not an error)\n",
			      what, (unsigned long long)timeouts);
	assert_true(ops > 0);
	assert_int_equal(allocs, frees);
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(shmpool_available(p), shmpool_capacity(p));
	assert_int_equal(shmpool_allocated_slots(p, NULL, 0), 0);
	struct shmpool_stats st = tu_stats(p);
	/* The workers are the only allocators: the counters are exact,
	 * including those of processes that have exited. */
	if (st.allocs != allocs || st.frees != frees)
		fail_msg("%s: stats allocs %llu frees %llu, but the workers "
			 "made %llu successful allocations and %llu frees",
			 what, (unsigned long long)st.allocs,
			 (unsigned long long)st.frees,
			 (unsigned long long)allocs,
			 (unsigned long long)frees);
	assert_int_equal(st.used, 0);
	assert_int_equal(st.waiters, 0);
	assert_int_equal(st.recoveries, 0);
	/* Nothing is stale: every worker freed what it held. */
	assert_int_equal(shmpool_recover_stale(p), 0);
	/* Every slot can still be taken. */
	for (uint64_t k = 0; k < shmpool_capacity(p); k++)
		assert_ok(shmpool_try_alloc(p));
	assert_fails(shmpool_try_alloc(p), EAGAIN);
	assert_int_equal(shmpool_reset(p), 0);
}

static void run_procs(shmpool_t *p, const char *path, uint64_t cap, int ops,
		      int hold, int batch, const char *what)
{
	struct result *res = tu_shared_mem(sizeof(struct result) * NWORK);
	struct work w[NWORK];
	pid_t pid[NWORK];
	int gate[2];

	tu_pipe(gate);
	for (int k = 0; k < NWORK; k++) {
		w[k] = (struct work){ .p = path ? NULL : p, .path = path,
				      .cap = cap, .ops = ops, .hold = hold,
				      .batch = batch, .seed = 7919u * (k + 1),
				      .res = &res[k], .gate = gate[0],
				      .gate_w = gate[1] };
		/* mixed: odd workers of a batch run do single frees */
		if (batch && (k & 1))
			w[k].batch = 0, w[k].hold = hold;
		pid[k] = tu_fork(worker_proc, &w[k], 60);
	}
	close(gate[1]);
	close(gate[0]);
	int failed = 0;
	const char *why = "a worker reported violations";
	for (int k = 0; k < NWORK; k++) {
		int st = tu_wait(pid[k], 60);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 1)
			failed = 1; /* counted violations: details below */
		else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("%s: worker %d: %s", what, k,
				 tu_status_str(st));
	}
	check_results(p, res, NWORK, what);
	if (failed)
		fail_msg("%s: %s", what, why);
	tu_shared_free(res, sizeof(struct result) * NWORK);
}

/* cap 2, 4 processes, one slot each at a time: the blocking path. */
static void test_procs_cap2(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 2, ES));
	run_procs(p, NULL, 2, OPS_BLOCK, 1, 0, "cap 2");
	assert_true(tu_stats(p).allocs > 0);
	shmpool_close(p);
}

/* cap 8, 4 processes holding up to 3 slots: one bitmap word, full. */
static void test_procs_cap8(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 8, ES));
	run_procs(p, NULL, 8, OPS, 3, 0, "cap 8");
	shmpool_close(p);
}

/* cap 64 through the file, each process opening the path. */
static void test_procs_cap64_file(void **state)
{
	(void)state;
	const char *path = tu_path("mp64");
	shmpool_t *p = assert_pool(shmpool_new(path, 64, ES));
	run_procs(p, path, 64, OPS, 16, 0, "cap 64 file");
	shmpool_close(p);
}

/* cap 130: three bitmap words (63 slots each), partial last word. */
static void test_procs_cap130(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new_memfd("mp130", 130, ES));
	run_procs(p, NULL, 130, OPS, 16, 0, "cap 130");
	shmpool_close(p);
}

/* alloc_n/free_n batches (even workers) against single allocs (odd). */
static void test_procs_batches(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 16, ES));
	run_procs(p, NULL, 16, OPS_BATCH, 2, 8, "batches cap 16");
	shmpool_close(p);
}

static void run_threads(shmpool_t *p, int nthr, int ops, int hold, int batch,
			const char *what)
{
	struct result res[8];
	struct work w[8];
	pthread_t t[8];
	pthread_barrier_t bar;

	pthread_barrier_init(&bar, NULL, (unsigned)nthr);
	memset(res, 0, sizeof res);
	for (int k = 0; k < nthr; k++) {
		w[k] = (struct work){ .p = p, .cap = shmpool_capacity(p),
				      .ops = ops, .hold = hold,
				      .batch = (k & 1) ? 0 : batch,
				      .seed = 104729u * (k + 1),
				      .res = &res[k], .gate = -1,
				      .bar = &bar };
		assert_int_equal(
			pthread_create(&t[k], NULL, worker_thread, &w[k]), 0);
	}
	for (int k = 0; k < nthr; k++)
		assert_int_equal(pthread_join(t[k], NULL), 0);
	pthread_barrier_destroy(&bar);
	check_results(p, res, nthr, what);
}

static void test_threads(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 8, ES));
	run_threads(p, 4, OPS, 3, 0, "4 threads cap 8");
	shmpool_close(p);
}

static void test_threads_cap2(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("thr2"), 2, ES));
	run_threads(p, 4, OPS_BLOCK, 1, 0, "4 threads cap 2");
	shmpool_close(p);
}

static void test_threads_batches(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 16, ES));
	run_threads(p, 4, OPS_BATCH, 2, 8, "4 threads batches");
	shmpool_close(p);
}

/* 2 processes x 3 threads each, sharing the inherited handle. */
struct pt_arg {
	shmpool_t *p;
	struct result *res; /* 3 results */
	unsigned seed;
};

static int proc_of_threads(void *arg)
{
	struct pt_arg *a = arg;
	struct work w[3];
	pthread_t t[3];
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 3);
	for (int k = 0; k < 3; k++) {
		w[k] = (struct work){ .p = a->p, .cap = shmpool_capacity(a->p),
				      .ops = OPS_PT, .hold = 2,
				      .batch = k == 2 ? 4 : 0,
				      .seed = a->seed + (unsigned)k,
				      .res = &a->res[k], .gate = -1,
				      .bar = &bar };
		CHILD_CHECK(pthread_create(&t[k], NULL, worker_thread,
					   &w[k]) == 0,
			    2);
	}
	for (int k = 0; k < 3; k++)
		pthread_join(t[k], NULL);
	for (int k = 0; k < 3; k++)
		if (bad(&a->res[k]))
			return 1;
	return 0;
}

static void test_procs_x_threads(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 8, ES));
	struct result *res = tu_shared_mem(sizeof(struct result) * 6);
	struct pt_arg a[2] = { { p, res, 11 }, { p, res + 3, 23 } };
	pid_t pid[2];
	int st[2];

	for (int k = 0; k < 2; k++)
		pid[k] = tu_fork(proc_of_threads, &a[k], 60);
	for (int k = 0; k < 2; k++)
		st[k] = tu_wait(pid[k], 60);
	check_results(p, res, 6, "2 procs x 3 threads");
	for (int k = 0; k < 2; k++)
		if (!WIFEXITED(st[k]) || WEXITSTATUS(st[k]) != 0)
			fail_msg("process %d: %s", k, tu_status_str(st[k]));
	tu_shared_free(res, sizeof(struct result) * 6);
	shmpool_close(p);
}

/* Typed atomics from several processes on one slot add up exactly. */
static int adder(void *arg)
{
	shmpool_t *p = arg;
	for (int k = 0; k < 50000; k++) {
		CHILD_CHECK(shmpool_i64_add(p, 0, 3, NULL) == 0, 2);
		CHILD_CHECK(shmpool_i64_incr(p, 1, NULL) == 0, 3);
	}
	/* CAS loop: each successful CAS adds exactly 1 to slot 2. */
	int64_t v;
	for (int k = 0; k < 20000; k++) {
		do {
			CHILD_CHECK(shmpool_i64_get(p, 2, &v) == 0, 5);
		} while (shmpool_i64_cas(p, 2, v, v + 1) != 1);
	}
	return 0;
}

static void test_atomics_across_procs(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_i64_new(NULL, 4));
	uint64_t out[3];
	pid_t pid[NWORK];
	int64_t v;

	assert_int_equal(shmpool_alloc_n(p, out, 3, 0), 3);
	/* slots 0, 1, 2 in a fresh pool */
	assert_int_equal(shmpool_allocated_slots(p, out, 3), 3);
	assert_int_equal(out[0], 0);
	assert_int_equal(out[2], 2);
	for (int k = 0; k < NWORK; k++)
		pid[k] = tu_fork(adder, p, 60);
	for (int k = 0; k < NWORK; k++)
		tu_wait_ok(pid[k], 60);
	assert_int_equal(shmpool_i64_get(p, 0, &v), 0);
	assert_int_equal(v, 3 * 50000 * NWORK);
	assert_int_equal(shmpool_i64_get(p, 1, &v), 0);
	assert_int_equal(v, 50000 * NWORK);
	assert_int_equal(shmpool_i64_get(p, 2, &v), 0);
	assert_int_equal(v, 20000 * NWORK);
	shmpool_close(p);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup_dir, tu_teardown_dir)

int main(void)
{
	tu_init(240);
	const struct CMUnitTest tests[] = {
		T(test_procs_cap2),
		T(test_procs_cap8),
		T(test_procs_cap64_file),
		T(test_procs_cap130),
		T(test_procs_batches),
		T(test_threads),
		T(test_threads_cap2),
		T(test_threads_batches),
		T(test_procs_x_threads),
		T(test_atomics_across_procs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
