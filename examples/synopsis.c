/*
 * synopsis.c - the Data::Pool::Shared SYNOPSIS, in C with libshmpool.
 *
 * A tour of the API a C user would copy from: a raw pool in a file, typed
 * pools (I64, F64, Str), guards, lock-free primitives, batches, zero-copy
 * access, convenience calls, crash recovery, a forked child, an anonymous
 * pool and a memfd pool.
 *
 * It checks every result and prints TAP ("1..1", then "ok 1 - synopsis"
 * or "not ok 1 - synopsis # reason"), so `make check` can run it.
 *
 * Build: cc -o synopsis synopsis.c -lshmpool
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmpool.h"

static char why[512];

/* Record the first failure (with the library's message) and bail out. */
#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			snprintf(why, sizeof why, "line %d: %s (%s)",          \
				 __LINE__, #cond, shmpool_errmsg());           \
			return -1;                                             \
		}                                                              \
	} while (0)

/* Everything the tour creates, released by main() whatever happens. */
struct tour {
	char pool_path[300], ints_path[300], f_path[300], s_path[300];
	shmpool_t *pool, *ints, *floats, *strs, *anon, *mem;
};

static int tour(struct tour *t)
{
	const char *pool_path = t->pool_path, *ints_path = t->ints_path;
	shmpool_t *pool, *ints, *floats, *strs, *anon, *mem;

	/* Raw byte pool: 100 slots of 64 bytes each. */
	t->pool = pool = shmpool_new(pool_path, 100, 64);
	CHECK(pool != NULL);
	int64_t idx = shmpool_alloc(pool, -1); /* block until available */
	CHECK(idx >= 0);
	CHECK(shmpool_set(pool, (uint64_t)idx, "hello world", 11) == 0);
	char data[64];
	CHECK(shmpool_get(pool, (uint64_t)idx, data, sizeof data) == 64);
	CHECK(memcmp(data, "hello world", 12) == 0); /* zero-padded */
	CHECK(shmpool_free(pool, (uint64_t)idx) == 0);

	/* Typed pools. */
	t->ints = ints = shmpool_i64_new(ints_path, 1000);
	CHECK(ints != NULL);
	int64_t i = shmpool_alloc(ints, -1);
	CHECK(i >= 0);
	int64_t v;
	CHECK(shmpool_i64_set(ints, (uint64_t)i, 42) == 0);
	CHECK(shmpool_i64_add(ints, (uint64_t)i, 8, &v) == 0); /* atomic add */
	CHECK(v == 50);
	CHECK(shmpool_i64_cas(ints, (uint64_t)i, 50, 99) == 1); /* atomic CAS */
	CHECK(shmpool_i64_get(ints, (uint64_t)i, &v) == 0);
	CHECK(v == 99);

	t->floats = floats = shmpool_f64_new(t->f_path, 100);
	CHECK(floats != NULL);
	int64_t fi = shmpool_f64_alloc_set(floats, 3.25, 0);
	double d;
	CHECK(fi >= 0);
	CHECK(shmpool_f64_get(floats, (uint64_t)fi, &d) == 0 && d == 3.25);

	t->strs = strs = shmpool_str_new(t->s_path, 100, 256);
	CHECK(strs != NULL);
	CHECK(shmpool_str_max_len(strs) == 256);
	int64_t si = shmpool_str_alloc_set(strs, "a string", 8, 0);
	CHECK(si >= 0);
	char sbuf[256];
	CHECK(shmpool_str_get(strs, (uint64_t)si, sbuf, sizeof sbuf) == 8);
	CHECK(memcmp(sbuf, "a string", 8) == 0);

	/* Guard: the slot is freed when the guard goes out of scope. */
	{
		SHMPOOL_GUARD(g, pool, -1);
		CHECK(g.idx >= 0);
		CHECK(shmpool_set(pool, (uint64_t)g.idx, data, 64) == 0);
		CHECK(shmpool_used(pool) == 1);
		/* ... use slot ... */
	} /* auto-freed */
	CHECK(shmpool_used(pool) == 0);

	/* Lock-free primitives. */
	int64_t prev;
	CHECK(shmpool_i64_cmpxchg(ints, (uint64_t)i, 99, 200, &prev) >= 0);
	CHECK(prev == 99); /* CAS returning the old value */
	CHECK(shmpool_i64_xchg(ints, (uint64_t)i, 300, &prev) == 0);
	CHECK(prev == 200); /* atomic exchange */

	/* Batch operations: all or nothing. */
	uint64_t slots[10];
	CHECK(shmpool_alloc_n(pool, slots, 10, -1) == 10);
	CHECK(shmpool_free_n(pool, slots, 10) == 10); /* one wake-up */

	/* Zero-copy and raw pointers. */
	idx = shmpool_alloc_set(pool, "zero-copy", 9, 0);
	CHECK(idx >= 0);
	const void *view;
	size_t vlen;
	CHECK(shmpool_slot_view(pool, (uint64_t)idx, &view, &vlen) == 0);
	CHECK(vlen == 64 && memcmp(view, "zero-copy", 9) == 0);
	char *ptr = shmpool_ptr(pool, (uint64_t)idx); /* for FFI, OpenGL ... */
	CHECK(ptr == (char *)shmpool_data_ptr(pool) + idx * 64);
	uint64_t all[100];
	int64_t n = shmpool_allocated_slots(pool, all, 100);
	CHECK(n == 1 && all[0] == (uint64_t)idx);

	/* Convenience. */
	int64_t j = shmpool_i64_alloc_set(ints, 42, -1); /* alloc + set */
	CHECK(j >= 0);
	j = shmpool_try_alloc_set(pool, "non-blocking", 12);
	CHECK(j >= 0);

	/* Crash recovery: free slots owned by dead processes. */
	CHECK(shmpool_recover_stale(pool) == 0); /* nobody died yet */

	/* Cross-process via fork: the child opens the file by path. */
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		alarm(10);
		shmpool_t *child = shmpool_i64_new(ints_path, 1000);
		if (child == NULL)
			_exit(2);
		int64_t ci = shmpool_alloc(child, 1.0);
		if (ci < 0 || shmpool_i64_set(child, (uint64_t)ci, getpid()))
			_exit(3);
		_exit(0); /* exits without freeing: a "crash" */
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(shmpool_used(ints) == 3);
	CHECK(shmpool_recover_stale(ints) == 1); /* the child's slot */
	CHECK(shmpool_used(ints) == 2);

	/* Anonymous pool, shared with children forked afterwards. */
	t->anon = anon = shmpool_i64_new(NULL, 100);
	CHECK(anon != NULL);
	int64_t a = shmpool_i64_alloc_set(anon, 0, 0);
	CHECK(a >= 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		alarm(10);
		_exit(shmpool_i64_add(anon, (uint64_t)a, 7, NULL) == 0 ? 0 : 1);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0);
	CHECK(shmpool_i64_get(anon, (uint64_t)a, &v) == 0 && v == 7);

	/* memfd pool: pass shmpool_memfd() to another process (fork, or a
	 * Unix socket with SCM_RIGHTS) and open it with new_from_fd. */
	t->mem = mem = shmpool_i64_new_memfd("my_pool", 100);
	CHECK(mem != NULL);
	int fd = shmpool_memfd(mem);
	CHECK(fd >= 0);
	shmpool_t *again = shmpool_new_from_fd(fd);
	CHECK(again != NULL);
	int64_t m = shmpool_i64_alloc_set(again, 1234, 0);
	shmpool_close(again);
	CHECK(m >= 0);
	CHECK(shmpool_i64_get(mem, (uint64_t)m, &v) == 0 && v == 1234);

	return 0;
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	char dir[256];
	struct tour t;

	memset(&t, 0, sizeof t);
	snprintf(dir, sizeof dir, "%s/shmpool-synopsis.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		printf("1..1\nnot ok 1 - synopsis # mkdtemp: %s\n",
		       strerror(errno));
		return 1;
	}
	snprintf(t.pool_path, sizeof t.pool_path, "%s/pool.shm", dir);
	snprintf(t.ints_path, sizeof t.ints_path, "%s/ints.shm", dir);
	snprintf(t.f_path, sizeof t.f_path, "%s/f.shm", dir);
	snprintf(t.s_path, sizeof t.s_path, "%s/s.shm", dir);

	int ok = tour(&t) == 0;

	shmpool_t *all[] = { t.pool, t.ints, t.floats, t.strs, t.anon, t.mem };
	for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
		if (all[k] != NULL)
			shmpool_close(all[k]);
	unlink(t.pool_path);
	unlink(t.ints_path);
	unlink(t.f_path);
	unlink(t.s_path);
	rmdir(dir);
	printf("1..1\n");
	if (ok)
		printf("ok 1 - synopsis\n");
	else
		printf("not ok 1 - synopsis # %s\n", why);
	return ok ? 0 : 1;
}
