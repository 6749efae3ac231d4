/*
 * test_basic.c - the raw pool in one process: constructors, allocation,
 * data access, status, stats, listing, batches, pointers, views, guards,
 * alloc_set, adopt, reset, sync/path/unlink, eventfd, version, errmsg.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

static int contains(const uint64_t *v, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return 1;
	return 0;
}

static int all_bytes(const void *buf, size_t len, unsigned char c)
{
	const unsigned char *b = buf;
	for (size_t i = 0; i < len; i++)
		if (b[i] != c)
			return 0;
	return 1;
}

static void test_new_file(void **state)
{
	(void)state;
	const char *path = tu_path("pool");
	shmpool_t *p = assert_pool(shmpool_new(path, 10, 16));
	struct stat st;

	assert_int_equal(shmpool_capacity(p), 10);
	assert_int_equal(shmpool_elem_size(p), 16);
	assert_int_equal(shmpool_variant(p), SHMPOOL_RAW);
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(shmpool_available(p), 10);
	assert_non_null(shmpool_path(p));
	assert_string_equal(shmpool_path(p), path);
	assert_int_equal(shmpool_memfd(p), -1);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_true((uint64_t)st.st_size >= 10 * 16);
	assert_int_equal(shmpool_close(p), 0);

	/* Reopening the file finds the same pool. */
	p = assert_pool(shmpool_new(path, 10, 16));
	assert_int_equal(shmpool_capacity(p), 10);
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_new_anon(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 4, 8));
	assert_int_equal(shmpool_capacity(p), 4);
	assert_int_equal(shmpool_elem_size(p), 8);
	assert_int_equal(shmpool_variant(p), SHMPOOL_RAW);
	assert_null(shmpool_path(p));
	assert_int_equal(shmpool_memfd(p), -1);
	int64_t i = assert_ok(shmpool_alloc(p, 0));
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)i), 1);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_open_options(void **state)
{
	(void)state;
	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	o.variant = SHMPOOL_RAW;
	o.backing = SHMPOOL_BACKING_FILE;
	o.name = tu_path("opts");
	o.capacity = 7;
	o.elem_size = 24;
	shmpool_t *p = assert_pool(shmpool_open(&o));
	assert_int_equal(shmpool_capacity(p), 7);
	assert_int_equal(shmpool_elem_size(p), 24);
	assert_string_equal(shmpool_path(p), o.name);
	int64_t i = assert_ok(shmpool_alloc(p, 0));

	/* Open the existing file taking its geometry (capacity 0, ANY). */
	struct shmpool_options o2 = SHMPOOL_OPTIONS_INIT;
	o2.variant = SHMPOOL_ANY;
	o2.backing = SHMPOOL_BACKING_FILE;
	o2.name = o.name;
	o2.flags = SHMPOOL_NOCREATE;
	shmpool_t *q = assert_pool(shmpool_open(&o2));
	assert_int_equal(shmpool_capacity(q), 7);
	assert_int_equal(shmpool_elem_size(q), 24);
	assert_int_equal(shmpool_variant(q), SHMPOOL_RAW);
	assert_int_equal(shmpool_is_allocated(q, (uint64_t)i), 1);
	assert_int_equal(shmpool_close(q), 0);

	/* Memfd and anonymous backings through the options. */
	struct shmpool_options o3 = SHMPOOL_OPTIONS_INIT;
	o3.backing = SHMPOOL_BACKING_MEMFD;
	o3.name = "opts-memfd";
	o3.capacity = 3;
	o3.elem_size = 8;
	q = assert_pool(shmpool_open(&o3));
	assert_true(shmpool_memfd(q) >= 0);
	assert_int_equal(shmpool_capacity(q), 3);
	assert_int_equal(shmpool_close(q), 0);

	struct shmpool_options o4 = SHMPOOL_OPTIONS_INIT;
	o4.capacity = 5;
	o4.elem_size = 1;
	q = assert_pool(shmpool_open(&o4));
	assert_null(shmpool_path(q));
	assert_int_equal(shmpool_capacity(q), 5);
	assert_int_equal(shmpool_elem_size(q), 1);
	assert_int_equal(shmpool_close(q), 0);

	assert_int_equal(shmpool_close(p), 0);
}

static void test_alloc_free(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("p"), 4, 8));
	uint64_t got[4];

	got[0] = (uint64_t)assert_ok(shmpool_alloc(p, -1));
	got[1] = (uint64_t)assert_ok(shmpool_alloc(p, 1.0));
	got[2] = (uint64_t)assert_ok(shmpool_try_alloc(p));
	got[3] = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	for (int i = 0; i < 4; i++) {
		assert_true(got[i] < 4);
		assert_int_equal(shmpool_is_allocated(p, got[i]), 1);
		for (int j = 0; j < i; j++)
			assert_true(got[i] != got[j]);
	}
	assert_int_equal(shmpool_used(p), 4);
	assert_int_equal(shmpool_available(p), 0);
	assert_fails(shmpool_try_alloc(p), EAGAIN);
	assert_fails(shmpool_alloc(p, 0), EAGAIN);

	assert_int_equal(shmpool_free(p, got[2]), 0);
	assert_int_equal(shmpool_is_allocated(p, got[2]), 0);
	assert_int_equal(shmpool_used(p), 3);
	assert_int_equal(shmpool_available(p), 1);
	/* The only free slot is the one just freed. */
	assert_int_equal(assert_ok(shmpool_try_alloc(p)), got[2]);

	for (int i = 0; i < 4; i++)
		assert_int_equal(shmpool_free(p, got[i]), 0);
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(shmpool_available(p), 4);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_alloc_zero_filled(void **state)
{
	(void)state;
	unsigned char junk[32], buf[32];
	memset(junk, 0xAB, sizeof junk);

	/* One slot: the second alloc must return the same, cleaned, slot. */
	shmpool_t *p = assert_pool(shmpool_new(tu_path("one"), 1, 32));
	int64_t i = assert_ok(shmpool_alloc(p, 0));
	assert_int_equal(shmpool_set(p, (uint64_t)i, junk, 32), 0);
	assert_int_equal(shmpool_get(p, (uint64_t)i, buf, 32), 32);
	assert_memory_equal(buf, junk, 32);
	assert_int_equal(shmpool_free(p, (uint64_t)i), 0);
	int64_t j = assert_ok(shmpool_alloc(p, 0));
	assert_int_equal(j, i);
	memset(buf, 0x11, sizeof buf);
	assert_int_equal(shmpool_get(p, (uint64_t)j, buf, 32), 32);
	assert_true(all_bytes(buf, 32, 0));

	/* Dirty through the raw pointer, free, try_alloc: zero again. */
	memset(shmpool_ptr(p, (uint64_t)j), 0xCD, 32);
	assert_int_equal(shmpool_free(p, (uint64_t)j), 0);
	j = assert_ok(shmpool_try_alloc(p));
	assert_true(all_bytes(shmpool_ptr(p, (uint64_t)j), 32, 0));
	assert_int_equal(shmpool_free(p, (uint64_t)j), 0);
	assert_int_equal(shmpool_close(p), 0);

	/* Many slots, several words of the bitmap; also alloc_n. */
	enum { CAP = 200, ES = 24 };
	p = assert_pool(shmpool_new(NULL, CAP, ES));
	uint64_t idx[CAP];
	for (int k = 0; k < CAP; k++) {
		idx[k] = (uint64_t)assert_ok(shmpool_alloc(p, 0));
		memset(shmpool_ptr(p, idx[k]), 0x5A, ES);
	}
	for (int k = 0; k < CAP; k++)
		assert_int_equal(shmpool_free(p, idx[k]), 0);
	for (int k = 0; k < CAP / 2; k++) {
		idx[k] = (uint64_t)assert_ok(shmpool_alloc(p, 0));
		if (!all_bytes(shmpool_ptr(p, idx[k]), ES, 0))
			fail_msg("slot %llu not zero-filled after alloc",
				 (unsigned long long)idx[k]);
	}
	assert_int_equal(shmpool_alloc_n(p, idx + CAP / 2, CAP / 2, 0),
			 CAP / 2);
	for (int k = CAP / 2; k < CAP; k++)
		if (!all_bytes(shmpool_ptr(p, idx[k]), ES, 0))
			fail_msg("slot %llu not zero-filled after alloc_n",
				 (unsigned long long)idx[k]);
	assert_int_equal(shmpool_close(p), 0);
}

/*
 * Every slot size zeroes exactly its own bytes: the typed sizes, 16 to 64
 * bytes in 16-byte stores from both ends (overlapping for 48), and the
 * other sizes by memset.  The neighbour slot on each side keeps its
 * pattern, so a store that runs past the slot fails too.
 */
static void test_zero_fill_sizes(void **state)
{
	(void)state;
	static const uint64_t sizes[] = { 1, 4, 7, 8, 12, 16, 24, 32, 40,
					  48, 56, 64, 72, 80, 128, 1000 };

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint64_t es = sizes[k], idx[3];
		shmpool_t *p = assert_pool(shmpool_new(NULL, 3, es));

		assert_int_equal(shmpool_alloc_n(p, idx, 3, 0), 3);
		for (int j = 0; j < 3; j++)
			memset(shmpool_ptr(p, idx[j]), 0xA5, es);
		assert_int_equal(shmpool_free(p, 1), 0);
		assert_int_equal(assert_ok(shmpool_alloc(p, 0)), 1);
		if (!all_bytes(shmpool_ptr(p, 1), es, 0))
			fail_msg("%llu-byte slot not zeroed by alloc",
				 (unsigned long long)es);
		if (!all_bytes(shmpool_ptr(p, 0), es, 0xA5) ||
		    !all_bytes(shmpool_ptr(p, 2), es, 0xA5))
			fail_msg("zeroing a %llu-byte slot wrote into a "
				 "neighbour", (unsigned long long)es);
		assert_int_equal(shmpool_close(p), 0);
	}
}

/*
 * alloc_n across whole bitmap words (63 slots each): n = capacity takes
 * every slot once, n = capacity - 1 leaves exactly one, for pools of one
 * word, a word and a slot, two words and more.
 */
static void test_alloc_n_whole_words(void **state)
{
	(void)state;
	static const uint64_t caps[] = { 63, 64, 126, 127, 200 };

	for (size_t k = 0; k < sizeof(caps) / sizeof(caps[0]); k++) {
		uint64_t cap = caps[k], idx[200];
		unsigned char seen[200] = { 0 };
		shmpool_t *p = assert_pool(shmpool_new(NULL, cap, 8));

		for (int round = 0; round < 2; round++) {
			uint64_t n = cap - (uint64_t)round;

			assert_int_equal(shmpool_alloc_n(p, idx, n, 0),
					 (int64_t)n);
			memset(seen, 0, sizeof seen);
			for (uint64_t j = 0; j < n; j++) {
				assert_true(idx[j] < cap);
				if (seen[idx[j]]++)
					fail_msg("capacity %llu: alloc_n(%llu) "
						 "gave slot %llu twice",
						 (unsigned long long)cap,
						 (unsigned long long)n,
						 (unsigned long long)idx[j]);
			}
			assert_int_equal(shmpool_used(p), n);
			assert_int_equal(shmpool_available(p), cap - n);
			assert_int_equal(shmpool_free_n(p, idx, n), (int64_t)n);
			assert_int_equal(shmpool_used(p), 0);
		}
		assert_int_equal(shmpool_close(p), 0);
	}
}

static void test_get_set(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("gs"), 4, 16));
	unsigned char buf[64];
	uint64_t i = (uint64_t)assert_ok(shmpool_alloc(p, 0));

	assert_int_equal(shmpool_set(p, i, "0123456789abcdef", 16), 0);
	assert_int_equal(shmpool_get(p, i, buf, 16), 16);
	assert_memory_equal(buf, "0123456789abcdef", 16);

	/* Short data: the rest of the slot is zeroed. */
	assert_int_equal(shmpool_set(p, i, "abc", 3), 0);
	memset(buf, 0xEE, sizeof buf);
	assert_int_equal(shmpool_get(p, i, buf, sizeof buf), 16);
	assert_memory_equal(buf, "abc", 3);
	assert_true(all_bytes(buf + 3, 13, 0));
	/* Nothing beyond elem_size is written to the caller's buffer. */
	assert_true(all_bytes(buf + 16, sizeof buf - 16, 0xEE));

	/* A shorter buffer gets only its length. */
	memset(buf, 0xEE, sizeof buf);
	assert_int_equal(shmpool_get(p, i, buf, 2), 2);
	assert_memory_equal(buf, "ab", 2);
	assert_true(all_bytes(buf + 2, sizeof buf - 2, 0xEE));

	/* Empty data clears the slot. */
	assert_int_equal(shmpool_set(p, i, "", 0), 0);
	assert_int_equal(shmpool_get(p, i, buf, 16), 16);
	assert_true(all_bytes(buf, 16, 0));

	/* Slots are independent. */
	uint64_t j = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	assert_int_equal(shmpool_set(p, i, "first", 5), 0);
	assert_int_equal(shmpool_set(p, j, "second", 6), 0);
	assert_int_equal(shmpool_get(p, i, buf, 16), 16);
	assert_memory_equal(buf, "first", 6);
	assert_int_equal(shmpool_get(p, j, buf, 16), 16);
	assert_memory_equal(buf, "second", 7);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_set_trunc(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 2, 16));
	unsigned char buf[16];
	uint64_t i = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	const char *longer = "ABCDEFGHIJKLMNOPQRST"; /* 20 bytes */

	assert_int_equal(shmpool_set_trunc(p, i, longer, 20), 16);
	assert_int_equal(shmpool_get(p, i, buf, 16), 16);
	assert_memory_equal(buf, longer, 16);

	assert_int_equal(shmpool_set_trunc(p, i, "xyz", 3), 3);
	assert_int_equal(shmpool_get(p, i, buf, 16), 16);
	assert_memory_equal(buf, "xyz", 3);
	assert_true(all_bytes(buf + 3, 13, 0));

	assert_int_equal(shmpool_set_trunc(p, i, longer, 16), 16);
	assert_int_equal(shmpool_get(p, i, buf, 16), 16);
	assert_memory_equal(buf, longer, 16);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_status_owner(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("st"), 70, 3));
	uint64_t i = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	uint64_t j = (uint64_t)assert_ok(shmpool_alloc(p, 0));

	assert_int_equal(shmpool_owner(p, i), getpid());
	assert_int_equal(shmpool_owner(p, j), getpid());
	assert_int_equal(shmpool_is_allocated(p, i), 1);
	for (uint64_t k = 0; k < 70; k++)
		assert_int_equal(shmpool_is_allocated(p, k),
				 k == i || k == j ? 1 : 0);
	assert_int_equal(shmpool_capacity(p), 70);
	assert_int_equal(shmpool_elem_size(p), 3);
	assert_int_equal(shmpool_variant(p), SHMPOOL_RAW);
	assert_int_equal(shmpool_used(p), 2);
	assert_int_equal(shmpool_available(p), 68);
	assert_int_equal(shmpool_free(p, i), 0);
	assert_int_equal(shmpool_is_allocated(p, i), 0);
	assert_int_equal(shmpool_used(p), 1);
	assert_int_equal(shmpool_available(p), 69);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_stats(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("stats"), 8, 32));
	struct shmpool_stats st = tu_stats(p);
	uint64_t idx[8];

	assert_int_equal(st.capacity, 8);
	assert_int_equal(st.elem_size, 32);
	assert_int_equal(st.used, 0);
	assert_int_equal(st.available, 8);
	assert_int_equal(st.waiters, 0);
	assert_true(st.mmap_size > 0);
	assert_true(st.mmap_size >= 8 * 32);
	assert_int_equal(st.allocs, 0);
	assert_int_equal(st.frees, 0);
	assert_int_equal(st.waits, 0);
	assert_int_equal(st.timeouts, 0);
	assert_int_equal(st.recoveries, 0);

	for (int k = 0; k < 5; k++)
		idx[k] = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	assert_int_equal(shmpool_free(p, idx[1]), 0);
	assert_int_equal(shmpool_free(p, idx[3]), 0);
	st = tu_stats(p);
	assert_int_equal(st.allocs, 5);
	assert_int_equal(st.frees, 2);
	assert_int_equal(st.used, 3);
	assert_int_equal(st.available, 5);
	assert_int_equal(st.allocs - st.frees, st.used);
	assert_int_equal(st.used, shmpool_used(p));
	assert_true(st.users >= 1);

	/* Batches count slots. */
	assert_int_equal(shmpool_alloc_n(p, idx, 4, 0), 4);
	st = tu_stats(p);
	assert_int_equal(st.used, 7);
	assert_int_equal(st.allocs - st.frees, st.used);
	assert_int_equal(shmpool_free_n(p, idx, 4), 4);
	st = tu_stats(p);
	assert_int_equal(st.used, 3);
	assert_int_equal(st.allocs, 9);
	assert_int_equal(st.frees, 6);

	/* A failing non-blocking alloc is not a success, a wait, or a
	 * timeout. */
	assert_int_equal(shmpool_alloc_n(p, idx, 5, 0), 5);
	assert_fails(shmpool_try_alloc(p), EAGAIN);
	st = tu_stats(p);
	assert_int_equal(st.allocs, 14);
	assert_int_equal(st.used, 8);
	assert_int_equal(st.available, 0);
	assert_int_equal(st.waits, 0);
	assert_int_equal(st.waiters, 0);
	assert_int_equal(st.allocs - st.frees, st.used);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_allocated_slots(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("as"), 150, 8));
	uint64_t idx[150], out[160], want[150];
	size_t nw = 0;

	assert_int_equal(shmpool_allocated_slots(p, out, 160), 0);
	assert_int_equal(shmpool_allocated_slots(p, NULL, 0), 0);

	/* Take all, then keep a spread of slots over several words. */
	for (int k = 0; k < 150; k++)
		idx[k] = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	for (int k = 0; k < 150; k++) {
		if (idx[k] % 7 == 0 || idx[k] == 149 || idx[k] == 63 ||
		    idx[k] == 64)
			continue;
		assert_int_equal(shmpool_free(p, idx[k]), 0);
	}
	for (uint64_t s = 0; s < 150; s++)
		if (s % 7 == 0 || s == 149 || s == 63 || s == 64)
			want[nw++] = s;

	for (size_t k = 0; k < 160; k++)
		out[k] = 0xDEADBEEF;
	assert_int_equal(shmpool_allocated_slots(p, out, 160), nw);
	for (size_t k = 0; k < nw; k++)
		assert_int_equal(out[k], want[k]); /* ascending, exact */
	assert_int_equal(out[nw], 0xDEADBEEF);

	/* A small buffer: the total count, only @max entries written. */
	for (size_t k = 0; k < 160; k++)
		out[k] = 0xDEADBEEF;
	assert_int_equal(shmpool_allocated_slots(p, out, 3), nw);
	assert_int_equal(out[0], want[0]);
	assert_int_equal(out[1], want[1]);
	assert_int_equal(out[2], want[2]);
	assert_int_equal(out[3], 0xDEADBEEF);
	assert_int_equal(shmpool_allocated_slots(p, NULL, 0), nw);
	assert_int_equal(shmpool_used(p), nw);
	assert_int_equal(shmpool_close(p), 0);
}

struct each_ctx {
	uint64_t seen[64];
	int n;
	int stop_at;   /* stop after this many calls (0: never) */
	int free_it;   /* free the slot given */
	int free_fail; /* frees that failed */
};

static int each_cb(shmpool_t *p, uint64_t idx, void *arg)
{
	struct each_ctx *c = arg;
	if (c->n < 64)
		c->seen[c->n] = idx;
	c->n++;
	if (c->free_it && shmpool_free(p, idx) != 0)
		c->free_fail++;
	return c->stop_at && c->n >= c->stop_at;
}

static void test_each_allocated(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 100, 4));
	uint64_t want[7];
	struct each_ctx c;

	memset(&c, 0, sizeof c);
	assert_int_equal(shmpool_each_allocated(p, each_cb, &c), 0);
	assert_int_equal(c.n, 0);

	for (int k = 0; k < 100; k++)
		assert_ok(shmpool_alloc(p, 0));
	for (uint64_t s = 0; s < 100; s++)
		if (s % 15 != 1)
			assert_int_equal(shmpool_free(p, s), 0);
	for (int k = 0; k < 7; k++)
		want[k] = 1 + 15 * (uint64_t)k; /* 1,16,...,91 */

	memset(&c, 0, sizeof c);
	assert_int_equal(shmpool_each_allocated(p, each_cb, &c), 7);
	assert_int_equal(c.n, 7);
	for (int k = 0; k < 7; k++)
		assert_int_equal(c.seen[k], want[k]);

	/* Early stop: the callback's non-zero return ends the walk. */
	memset(&c, 0, sizeof c);
	c.stop_at = 3;
	assert_int_equal(shmpool_each_allocated(p, each_cb, &c), 3);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.seen[2], want[2]);

	/* Freeing inside the callback. */
	memset(&c, 0, sizeof c);
	c.free_it = 1;
	assert_int_equal(shmpool_each_allocated(p, each_cb, &c), 7);
	assert_int_equal(c.free_fail, 0);
	for (int k = 0; k < 7; k++)
		assert_int_equal(c.seen[k], want[k]);
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(shmpool_allocated_slots(p, NULL, 0), 0);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_alloc_n_free_n(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("n"), 16, 8));
	uint64_t a[16], b[16];
	struct tu_snap snap;

	assert_int_equal(shmpool_alloc_n(p, a, 5, 0), 5);
	for (int k = 0; k < 5; k++) {
		assert_true(a[k] < 16);
		assert_int_equal(shmpool_is_allocated(p, a[k]), 1);
		assert_int_equal(shmpool_owner(p, a[k]), getpid());
		for (int m = 0; m < k; m++)
			assert_true(a[k] != a[m]);
	}
	assert_int_equal(shmpool_used(p), 5);

	/* All or nothing: 12 > 11 available. */
	tu_snapshot(p, &snap);
	for (int k = 0; k < 16; k++)
		b[k] = 0xDEADBEEF;
	assert_fails(shmpool_alloc_n(p, b, 12, 0), EAGAIN);
	tu_assert_unchanged(p, &snap);
	assert_int_equal(shmpool_used(p), 5);

	assert_int_equal(shmpool_alloc_n(p, b, 11, 0), 11);
	assert_int_equal(shmpool_used(p), 16);
	for (int k = 0; k < 11; k++)
		assert_false(contains(a, 5, b[k]));

	assert_int_equal(shmpool_free_n(p, a, 5), 5);
	assert_int_equal(shmpool_free_n(p, b, 11), 11);
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(shmpool_free_n(p, a, 0), 0);

	/* free_n stops at the first bad index. */
	assert_int_equal(shmpool_alloc_n(p, a, 4, 0), 4);
	uint64_t bad[4] = { a[0], a[1], 99, a[2] };
	errno = 0;
	assert_int_equal(shmpool_free_n(p, bad, 4), 2);
	assert_errno(ERANGE);
	assert_int_equal(shmpool_is_allocated(p, a[0]), 0);
	assert_int_equal(shmpool_is_allocated(p, a[1]), 0);
	assert_int_equal(shmpool_is_allocated(p, a[2]), 1);
	assert_int_equal(shmpool_is_allocated(p, a[3]), 1);
	assert_int_equal(shmpool_used(p), 2);

	/* A double free inside one batch. */
	uint64_t twice[3] = { a[2], a[2], a[3] };
	errno = 0;
	assert_int_equal(shmpool_free_n(p, twice, 3), 1);
	assert_errno(ENOENT);
	assert_int_equal(shmpool_is_allocated(p, a[2]), 0);
	assert_int_equal(shmpool_is_allocated(p, a[3]), 1);
	assert_int_equal(shmpool_used(p), 1);
	struct shmpool_stats st = tu_stats(p);
	assert_int_equal(st.allocs - st.frees, 1);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_ptr(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("ptr"), 10, 12));
	unsigned char *base = shmpool_data_ptr(p);
	unsigned char buf[12];
	assert_non_null(base);

	for (int k = 0; k < 10; k++) {
		uint64_t i = (uint64_t)assert_ok(shmpool_alloc(p, 0));
		unsigned char *s = shmpool_ptr(p, i);
		assert_ptr_equal(s, base + i * 12);
		memset(s, 'a' + (int)i, 12);
	}
	for (uint64_t i = 0; i < 10; i++) {
		assert_int_equal(shmpool_get(p, i, buf, 12), 12);
		assert_true(all_bytes(buf, 12, (unsigned char)('a' + i)));
	}
	assert_int_equal(shmpool_set(p, 4, "hello", 5), 0);
	assert_memory_equal(base + 4 * 12, "hello", 5);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_slot_view(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 3, 20));
	const void *v = NULL;
	size_t len = 0;
	uint64_t i = (uint64_t)assert_ok(shmpool_alloc(p, 0));

	assert_int_equal(shmpool_set(p, i, "before", 6), 0);
	assert_int_equal(shmpool_slot_view(p, i, &v, &len), 0);
	assert_non_null(v);
	assert_int_equal(len, 20);
	assert_ptr_equal(v, shmpool_ptr(p, i));
	assert_memory_equal(v, "before", 6);

	/* Zero-copy: the same view shows a later write. */
	assert_int_equal(shmpool_set(p, i, "after!!", 7), 0);
	assert_memory_equal(v, "after!!", 7);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_guards(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("g"), 2, 8));
	shmpool_guard_t g;

	int64_t i = shmpool_alloc_guard(p, 0, &g);
	assert_true(i >= 0);
	assert_int_equal(g.idx, i);
	assert_ptr_equal(g.pool, p);
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)i), 1);
	assert_int_equal(shmpool_used(p), 1);
	shmpool_guard_release(&g);
	assert_int_equal(g.idx, -1);
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)i), 0);
	assert_int_equal(shmpool_used(p), 0);

	/* Idempotent: a second release must not free someone else's slot. */
	int64_t other = assert_ok(shmpool_alloc(p, 0));
	shmpool_guard_release(&g);
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)other), 1);
	assert_int_equal(shmpool_used(p), 1);

	i = shmpool_try_alloc_guard(p, &g);
	assert_true(i >= 0);
	assert_int_equal(shmpool_used(p), 2);
	/* Full: the guard holds nothing. */
	shmpool_guard_t g2;
	errno = 0;
	assert_int_equal(shmpool_try_alloc_guard(p, &g2), -1);
	assert_errno(EAGAIN);
	shmpool_guard_t g3 = shmpool_guard_acquire(p, 0);
	assert_int_equal(g3.idx, -1);
	assert_errno(EAGAIN);
	shmpool_guard_release(&g3);
	assert_int_equal(shmpool_used(p), 2);
	shmpool_guard_release(&g);
	assert_int_equal(shmpool_free(p, (uint64_t)other), 0);
	assert_int_equal(shmpool_used(p), 0);

	/* SHMPOOL_GUARD frees at scope exit. */
	{
		SHMPOOL_GUARD(sg, p, 0);
		assert_true(sg.idx >= 0);
		assert_int_equal(shmpool_used(p), 1);
		assert_int_equal(shmpool_set(p, (uint64_t)sg.idx, "in", 2), 0);
		{
			SHMPOOL_GUARD(inner, p, 1.0);
			assert_true(inner.idx >= 0);
			assert_true(inner.idx != sg.idx);
			assert_int_equal(shmpool_used(p), 2);
		}
		assert_int_equal(shmpool_used(p), 1);
	}
	assert_int_equal(shmpool_used(p), 0);

	/* guard_detach keeps the slot after the scope. */
	int64_t kept;
	{
		SHMPOOL_GUARD(sg, p, 0);
		assert_true(sg.idx >= 0);
		kept = shmpool_guard_detach(&sg);
		assert_true(kept >= 0);
	}
	assert_int_equal(shmpool_used(p), 1);
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)kept), 1);
	assert_int_equal(shmpool_owner(p, (uint64_t)kept), getpid());
	assert_int_equal(shmpool_free(p, (uint64_t)kept), 0);

	/* guard_acquire by value. */
	shmpool_guard_t g4 = shmpool_guard_acquire(p, 1.0);
	assert_true(g4.idx >= 0);
	assert_ptr_equal(g4.pool, p);
	assert_int_equal(shmpool_used(p), 1);
	shmpool_guard_release(&g4);
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_alloc_set(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("aset"), 2, 8));
	unsigned char buf[8];

	int64_t i = assert_ok(shmpool_alloc_set(p, "hello", 5, 1.0));
	assert_int_equal(shmpool_get(p, (uint64_t)i, buf, 8), 8);
	assert_memory_equal(buf, "hello\0\0\0", 8);
	assert_int_equal(shmpool_owner(p, (uint64_t)i), getpid());

	/* Oversize: fails and changes nothing (no slot taken, none counted:
	 * the size is known before allocating). */
	struct tu_snap snap;
	tu_snapshot(p, &snap);
	assert_fails(shmpool_alloc_set(p, "123456789", 9, 0), EMSGSIZE);
	assert_fails(shmpool_try_alloc_set(p, "123456789", 9), EMSGSIZE);
	assert_fails(shmpool_alloc_set(p, "123456789", 9, -1), EMSGSIZE);
	tu_assert_unchanged(p, &snap);
	assert_int_equal(shmpool_used(p), 1);

	int64_t j = assert_ok(shmpool_try_alloc_set(p, "12345678", 8));
	assert_true(j != i);
	assert_int_equal(shmpool_get(p, (uint64_t)j, buf, 8), 8);
	assert_memory_equal(buf, "12345678", 8);

	/* Full. */
	assert_fails(shmpool_try_alloc_set(p, "x", 1), EAGAIN);
	assert_fails(shmpool_alloc_set(p, "x", 1, 0), EAGAIN);
	assert_int_equal(shmpool_used(p), 2);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_adopt(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 4, 8));
	uint64_t i = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	assert_int_equal(shmpool_set(p, i, "data", 4), 0);
	assert_int_equal(shmpool_adopt(p, i), 0);
	assert_int_equal(shmpool_owner(p, i), getpid());
	assert_int_equal(shmpool_is_allocated(p, i), 1);
	assert_int_equal(shmpool_used(p), 1);
	/* Adopting keeps the data. */
	char buf[4];
	assert_int_equal(shmpool_get(p, i, buf, 4), 4);
	assert_memory_equal(buf, "data", 4);
	assert_fails(shmpool_adopt(p, (i + 1) % 4), ENOENT);
	assert_fails(shmpool_adopt(p, 4), ERANGE);
	assert_int_equal(shmpool_free(p, i), 0);
	assert_int_equal(shmpool_used(p), 0);
	struct shmpool_stats st = tu_stats(p);
	assert_int_equal(st.allocs, 1);
	assert_int_equal(st.frees, 1);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_reset(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("reset"), 100, 16));
	uint64_t idx[100];

	for (int k = 0; k < 70; k++) {
		idx[k] = (uint64_t)assert_ok(shmpool_alloc(p, 0));
		assert_int_equal(shmpool_set(p, idx[k], "dirty", 5), 0);
	}
	assert_int_equal(shmpool_reset(p), 0);
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(shmpool_available(p), 100);
	assert_int_equal(shmpool_allocated_slots(p, NULL, 0), 0);
	for (uint64_t s = 0; s < 100; s++)
		assert_int_equal(shmpool_is_allocated(p, s), 0);
	struct shmpool_stats st = tu_stats(p);
	assert_int_equal(st.used, 0);
	assert_int_equal(st.allocs - st.frees, st.used);

	/* Every slot can be taken again, zero-filled. */
	for (int k = 0; k < 100; k++) {
		idx[k] = (uint64_t)assert_ok(shmpool_alloc(p, 0));
		assert_true(all_bytes(shmpool_ptr(p, idx[k]), 16, 0));
	}
	assert_fails(shmpool_try_alloc(p), EAGAIN);
	assert_int_equal(shmpool_reset(p), 0);
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_sync(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("sync"), 4, 8));
	uint64_t i = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	assert_int_equal(shmpool_set(p, i, "synced!!", 8), 0);
	assert_int_equal(shmpool_sync(p), 0);
	assert_int_equal(shmpool_close(p), 0);

	/* The data is in the file: a fresh open sees it. */
	p = assert_pool(shmpool_new(tu_path("sync"), 4, 8));
	char buf[8];
	assert_int_equal(shmpool_is_allocated(p, i), 1);
	assert_int_equal(shmpool_get(p, i, buf, 8), 8);
	assert_memory_equal(buf, "synced!!", 8);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_path_unlink(void **state)
{
	(void)state;
	const char *path = tu_path("unlink-me");
	shmpool_t *p = assert_pool(shmpool_new(path, 4, 8));
	struct stat st;
	char buf[8];

	assert_string_equal(shmpool_path(p), path);
	assert_int_equal(shmpool_unlink(p), 0);
	errno = 0;
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(errno, ENOENT);

	/* Still usable. */
	uint64_t i = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	assert_int_equal(shmpool_set(p, i, "alive", 5), 0);
	assert_int_equal(shmpool_get(p, i, buf, 8), 8);
	assert_memory_equal(buf, "alive", 5);
	assert_int_equal(shmpool_free(p, i), 0);
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(shmpool_close(p), 0);

	/* Not file-backed: EINVAL. */
	p = assert_pool(shmpool_new(NULL, 2, 8));
	assert_null(shmpool_path(p));
	assert_fails(shmpool_unlink(p), EINVAL);
	assert_int_equal(shmpool_close(p), 0);
	p = assert_pool(shmpool_new_memfd("m", 2, 8));
	assert_null(shmpool_path(p));
	assert_fails(shmpool_unlink(p), EINVAL);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_eventfd(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 2, 8));

	assert_int_equal(shmpool_fileno(p), -1);
	assert_fails(shmpool_notify(p), EINVAL);

	int fd = (int)assert_ok(shmpool_eventfd(p));
	assert_true(fd >= 0);
	assert_int_equal(shmpool_eventfd(p), fd); /* created once */
	assert_int_equal(shmpool_fileno(p), fd);
	assert_int_equal(shmpool_eventfd_consume(p), 0);
	assert_int_equal(shmpool_notify(p), 0);
	assert_int_equal(shmpool_notify(p), 0);
	assert_int_equal(shmpool_eventfd_consume(p), 2);
	assert_int_equal(shmpool_eventfd_consume(p), 0);

	/* A caller-owned eventfd. */
	int mine = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(mine >= 0);
	assert_int_equal(shmpool_eventfd_set(p, mine), 0);
	assert_int_equal(shmpool_fileno(p), mine);
	assert_int_equal(shmpool_notify(p), 0);
	uint64_t v = 0;
	assert_int_equal(read(mine, &v, sizeof v), sizeof v);
	assert_int_equal(v, 1);
	assert_int_equal(shmpool_notify(p), 0);
	assert_int_equal(shmpool_notify(p), 0);
	assert_int_equal(shmpool_notify(p), 0);
	assert_int_equal(shmpool_eventfd_consume(p), 3);

	/* -1 clears it. */
	assert_int_equal(shmpool_eventfd_set(p, -1), 0);
	assert_int_equal(shmpool_fileno(p), -1);
	assert_fails(shmpool_notify(p), EINVAL);
	assert_int_equal(shmpool_close(p), 0);

	/* The caller keeps ownership: its fd is still open and works. */
	uint64_t one = 1;
	assert_int_equal(write(mine, &one, sizeof one), sizeof one);
	assert_int_equal(read(mine, &v, sizeof v), sizeof v);
	assert_int_equal(v, 1);
	close(mine);
}

static void test_version(void **state)
{
	(void)state;
	const char *v = shmpool_version();
	unsigned a, b, c;
	assert_non_null(v);
	assert_true(v[0] != '\0');
	assert_int_equal(sscanf(v, "%u.%u.%u", &a, &b, &c), 3);
	assert_string_equal(shmpool_variant_name(SHMPOOL_RAW), "raw");
	assert_string_equal(shmpool_variant_name(SHMPOOL_I64), "i64");
	assert_string_equal(shmpool_variant_name(SHMPOOL_I32), "i32");
	assert_string_equal(shmpool_variant_name(SHMPOOL_F64), "f64");
	assert_string_equal(shmpool_variant_name(SHMPOOL_STR), "str");
}

struct errmsg_ctx {
	shmpool_t *p;
	char initial[256];
	int initial_null;
	char after[256];
	int after_errno;
};

static void *errmsg_thread(void *arg)
{
	struct errmsg_ctx *c = arg;
	const char *m = shmpool_errmsg();
	c->initial_null = m == NULL;
	snprintf(c->initial, sizeof c->initial, "%s", m ? m : "");
	errno = 0;
	if (shmpool_free(c->p, 1000) == -1)
		c->after_errno = errno;
	m = shmpool_errmsg();
	snprintf(c->after, sizeof c->after, "%s", m ? m : "");
	return NULL;
}

static void test_errmsg(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 2, 8));
	struct errmsg_ctx c;
	pthread_t t;
	char mine[256];

	/* A failure in this thread sets this thread's message. */
	assert_fails(shmpool_free(p, 0), ENOENT);
	snprintf(mine, sizeof mine, "%s", shmpool_errmsg());
	assert_true(mine[0] != '\0');

	/* A new thread starts with "" and its failure does not change ours. */
	memset(&c, 0, sizeof c);
	c.p = p;
	assert_int_equal(pthread_create(&t, NULL, errmsg_thread, &c), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_false(c.initial_null);
	assert_string_equal(c.initial, "");
	assert_int_equal(c.after_errno, ERANGE);
	assert_true(c.after[0] != '\0');
	assert_string_equal(shmpool_errmsg(), mine);

	/* Successful calls leave the message alone. */
	assert_ok(shmpool_alloc(p, 0));
	assert_string_equal(shmpool_errmsg(), mine);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_mem_node(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 64, 64));
	uint64_t i = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	memset(shmpool_ptr(p, i), 1, 64);
	int node = shmpool_mem_node(p);
	assert_true(node >= -1);
	assert_true(node < 1024);
	assert_int_equal(shmpool_close(p), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup_dir, tu_teardown_dir)

int main(void)
{
	tu_init(120);
	const struct CMUnitTest tests[] = {
		T(test_new_file),
		T(test_new_anon),
		T(test_open_options),
		T(test_alloc_free),
		T(test_alloc_zero_filled),
		T(test_zero_fill_sizes),
		T(test_alloc_n_whole_words),
		T(test_get_set),
		T(test_set_trunc),
		T(test_status_owner),
		T(test_stats),
		T(test_allocated_slots),
		T(test_each_allocated),
		T(test_alloc_n_free_n),
		T(test_ptr),
		T(test_slot_view),
		T(test_guards),
		T(test_alloc_set),
		T(test_adopt),
		T(test_reset),
		T(test_sync),
		T(test_path_unlink),
		T(test_eventfd),
		T(test_version),
		T(test_errmsg),
		T(test_mem_node),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
