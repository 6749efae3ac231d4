/*
 * test_errors.c - every bad input gets its documented errno, a non-empty
 * shmpool_errmsg(), and leaves the pool (and files) unchanged.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* ---- constructor arguments -------------------------------------------- */

static void test_zero_capacity(void **state)
{
	(void)state;
	const char *path = tu_path("zero-cap");
	assert_fails_null(shmpool_new(path, 0, 8), EINVAL);
	assert_false(tu_file_exists(path));
	assert_fails_null(shmpool_new(NULL, 0, 8), EINVAL);
	assert_fails_null(shmpool_new_memfd("z", 0, 8), EINVAL);
	assert_fails_null(shmpool_i64_new(path, 0), EINVAL);
	assert_fails_null(shmpool_i32_new_memfd("z", 0), EINVAL);
	assert_fails_null(shmpool_f64_new(NULL, 0), EINVAL);
	assert_fails_null(shmpool_str_new(path, 0, 10), EINVAL);
	assert_false(tu_file_exists(path));

	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	o.elem_size = 8;
	assert_fails_null(shmpool_open(&o), EINVAL);
}

static void test_zero_elem_size(void **state)
{
	(void)state;
	const char *path = tu_path("zero-es");
	assert_fails_null(shmpool_new(path, 4, 0), EINVAL);
	assert_false(tu_file_exists(path));
	assert_fails_null(shmpool_new(NULL, 4, 0), EINVAL);
	assert_fails_null(shmpool_new_memfd("z", 4, 0), EINVAL);
	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	o.capacity = 4;
	o.backing = SHMPOOL_BACKING_FILE;
	o.name = path;
	assert_fails_null(shmpool_open(&o), EINVAL);
	assert_false(tu_file_exists(path));
}

/*
 * capacity > SHMPOOL_MAX_CAPACITY: the header lists no dedicated errno.
 * It is a bad argument (EINVAL); EOVERFLOW ("does not fit") is also
 * accepted since the limit exists because indexes must fit 32 bits.
 */
static void test_capacity_too_big(void **state)
{
	(void)state;
	const char *path = tu_path("big");
	const uint64_t caps[] = { SHMPOOL_MAX_CAPACITY + 1,
				  SHMPOOL_MAX_CAPACITY + 2, 1ull << 40,
				  UINT64_MAX };
	for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
		errno = 0;
		shmpool_t *p = shmpool_new(path, caps[k], 1);
		int e = errno;
		if (p != NULL)
			fail_msg("capacity %llu accepted",
				 (unsigned long long)caps[k]);
		if (e != EINVAL && e != EOVERFLOW)
			fail_msg("capacity %llu: errno %s, expected EINVAL or "
				 "EOVERFLOW",
				 (unsigned long long)caps[k], tu_errname(e));
		assert_true(shmpool_errmsg()[0] != '\0');
		assert_false(tu_file_exists(path));
		assert_null(shmpool_i64_new(NULL, caps[k]));
		assert_true(errno == EINVAL || errno == EOVERFLOW);
	}
}

static void test_size_overflow(void **state)
{
	(void)state;
	const char *path = tu_path("ovf");

	/* capacity * elem_size wraps 64 bits. */
	assert_fails_null(shmpool_new(path, SHMPOOL_MAX_CAPACITY, 1ull << 40),
			  EOVERFLOW);
	assert_false(tu_file_exists(path));
	assert_fails_null(shmpool_new(NULL, 2, 1ull << 63), EOVERFLOW);
	assert_fails_null(shmpool_new(NULL, 3, UINT64_MAX / 2), EOVERFLOW);
	assert_fails_null(shmpool_new_memfd("o", 1u << 20, UINT64_MAX >> 10),
			  EOVERFLOW);
	/* The product fits, the whole layout (header + data) does not. */
	assert_fails_null(shmpool_new(NULL, 1, UINT64_MAX - 16), EOVERFLOW);
	assert_fails_null(shmpool_new(path, 1, UINT64_MAX), EOVERFLOW);
	assert_false(tu_file_exists(path));
	/* Str: max_len + 4 wraps. */
	assert_fails_null(shmpool_str_new(NULL, 4, UINT64_MAX), EOVERFLOW);
	assert_fails_null(shmpool_str_new(NULL, 4, UINT64_MAX - 3), EOVERFLOW);
	assert_fails_null(shmpool_str_new_memfd("s", 4, UINT64_MAX - 1),
			  EOVERFLOW);
	assert_fails_null(shmpool_str_new(path, 1u << 30, UINT64_MAX >> 20),
			  EOVERFLOW);
	assert_false(tu_file_exists(path));
}

static void test_bad_options(void **state)
{
	(void)state;
	const char *path = tu_path("opts");
	struct shmpool_options o;

	assert_fails_null(shmpool_open(NULL), EINVAL);

#define RESET_OPTS()                                                           \
	do {                                                                   \
		struct shmpool_options init_ = SHMPOOL_OPTIONS_INIT;           \
		o = init_;                                                     \
		o.backing = SHMPOOL_BACKING_FILE;                              \
		o.name = path;                                                 \
		o.capacity = 4;                                                \
		o.elem_size = 8;                                               \
	} while (0)

	RESET_OPTS();
	o.flags = 0x80; /* unknown flag */
	assert_fails_null(shmpool_open(&o), EINVAL);
	RESET_OPTS();
	o.variant = (enum shmpool_variant)42;
	assert_fails_null(shmpool_open(&o), EINVAL);
	RESET_OPTS();
	o.backing = (enum shmpool_backing)42;
	assert_fails_null(shmpool_open(&o), EINVAL);
	RESET_OPTS();
	o.name = NULL; /* FILE needs a path */
	assert_fails_null(shmpool_open(&o), EINVAL);
	RESET_OPTS();
	o.max_users = SHMPOOL_MAX_USERS + 1;
	assert_fails_null(shmpool_open(&o), EINVAL);
	RESET_OPTS();
	o.mempolicy = (enum shmpool_mempolicy)42;
	assert_fails_null(shmpool_open(&o), EINVAL);
	RESET_OPTS();
	o.variant = SHMPOOL_ANY; /* creating needs a variant */
	assert_fails_null(shmpool_open(&o), EINVAL);
	assert_false(tu_file_exists(path));
	RESET_OPTS();
	o.flags = SHMPOOL_EXCL | SHMPOOL_NOCREATE; /* contradictory */
	errno = 0;
	assert_null(shmpool_open(&o));
	assert_true(errno == EINVAL || errno == ENOENT);
	assert_false(tu_file_exists(path));

	/* Anonymous pool with SHMPOOL_ANY: nothing to take it from. */
	RESET_OPTS();
	o.backing = SHMPOOL_BACKING_ANON;
	o.name = NULL;
	o.variant = SHMPOOL_ANY;
	assert_fails_null(shmpool_open(&o), EINVAL);
	/* FD backing with no fd. */
	RESET_OPTS();
	o.backing = SHMPOOL_BACKING_FD;
	o.name = NULL;
	o.fd = -1;
	assert_fails_null(shmpool_open(&o), EBADF);
#undef RESET_OPTS
}

/* ---- index checks ------------------------------------------------------ */

static const uint64_t bad_idx[] = {
	10, 11, 63, 64, 65, 1000, (1ull << 32), (1ull << 32) + 1,
	(1ull << 63), UINT64_MAX,
};
#define NBAD (sizeof bad_idx / sizeof bad_idx[0])

static void test_index_range_raw(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("r"), 10, 8));
	struct tu_snap snap;
	unsigned char buf[8], slot0[8];
	const void *v;
	size_t len;

	/* Every slot allocated and filled: ERANGE must not look like ENOENT
	 * and an index that wraps (2^32) must not reach slot 0. */
	for (int k = 0; k < 10; k++) {
		uint64_t i = (uint64_t)assert_ok(shmpool_alloc(p, 0));
		assert_int_equal(shmpool_set(p, i, "original", 8), 0);
	}
	memcpy(slot0, "original", 8);
	tu_snapshot(p, &snap);
	for (size_t n = 0; n < NBAD; n++) {
		uint64_t i = bad_idx[n];
		assert_fails(shmpool_free(p, i), ERANGE);
		assert_fails(shmpool_get(p, i, buf, 8), ERANGE);
		assert_fails(shmpool_set(p, i, "XXXXXXXX", 8), ERANGE);
		assert_fails(shmpool_set_trunc(p, i, "XXXXXXXX", 8), ERANGE);
		assert_fails(shmpool_adopt(p, i), ERANGE);
		assert_fails_null(shmpool_ptr(p, i), ERANGE);
		assert_fails(shmpool_slot_view(p, i, &v, &len), ERANGE);
		assert_fails(shmpool_is_allocated(p, i), ERANGE);
		assert_fails(shmpool_owner(p, i), ERANGE);
		errno = 0;
		assert_int_equal(shmpool_free_n(p, &i, 1), 0);
		assert_errno(ERANGE);
	}
	tu_assert_unchanged(p, &snap);
	for (uint64_t i = 0; i < 10; i++) {
		assert_int_equal(shmpool_get(p, i, buf, 8), 8);
		assert_memory_equal(buf, slot0, 8);
		assert_int_equal(shmpool_owner(p, i), getpid());
	}
	assert_int_equal(shmpool_close(p), 0);
}

static void test_index_range_typed(void **state)
{
	(void)state;
	shmpool_t *p64 = assert_pool(shmpool_i64_new(NULL, 10));
	shmpool_t *p32 = assert_pool(shmpool_i32_new(NULL, 10));
	shmpool_t *pf = assert_pool(shmpool_f64_new(NULL, 10));
	shmpool_t *ps = assert_pool(shmpool_str_new(NULL, 10, 8));
	int64_t a;
	int32_t b;
	double d;
	char buf[8];
	struct tu_snap s64, s32, sf, ss;

	for (int k = 0; k < 10; k++) {
		assert_ok(shmpool_i64_alloc_set(p64, 7, 0));
		assert_ok(shmpool_i32_alloc_set(p32, 7, 0));
		assert_ok(shmpool_f64_alloc_set(pf, 7.0, 0));
		assert_ok(shmpool_str_alloc_set(ps, "seven", 5, 0));
	}
	tu_snapshot(p64, &s64);
	tu_snapshot(p32, &s32);
	tu_snapshot(pf, &sf);
	tu_snapshot(ps, &ss);
	for (size_t n = 0; n < NBAD; n++) {
		uint64_t i = bad_idx[n];
		assert_fails(shmpool_i64_get(p64, i, &a), ERANGE);
		assert_fails(shmpool_i64_set(p64, i, 1), ERANGE);
		assert_fails(shmpool_i64_cas(p64, i, 7, 1), ERANGE);
		assert_fails(shmpool_i64_cmpxchg(p64, i, 7, 1, &a), ERANGE);
		assert_fails(shmpool_i64_xchg(p64, i, 1, &a), ERANGE);
		assert_fails(shmpool_i64_add(p64, i, 1, &a), ERANGE);
		assert_fails(shmpool_i64_incr(p64, i, &a), ERANGE);
		assert_fails(shmpool_i64_decr(p64, i, &a), ERANGE);
		assert_fails(shmpool_i32_get(p32, i, &b), ERANGE);
		assert_fails(shmpool_i32_set(p32, i, 1), ERANGE);
		assert_fails(shmpool_i32_cas(p32, i, 7, 1), ERANGE);
		assert_fails(shmpool_i32_cmpxchg(p32, i, 7, 1, &b), ERANGE);
		assert_fails(shmpool_i32_xchg(p32, i, 1, &b), ERANGE);
		assert_fails(shmpool_i32_add(p32, i, 1, &b), ERANGE);
		assert_fails(shmpool_i32_incr(p32, i, &b), ERANGE);
		assert_fails(shmpool_i32_decr(p32, i, &b), ERANGE);
		assert_fails(shmpool_f64_get(pf, i, &d), ERANGE);
		assert_fails(shmpool_f64_set(pf, i, 1.0), ERANGE);
		assert_fails(shmpool_str_get(ps, i, buf, sizeof buf), ERANGE);
		assert_fails(shmpool_str_set(ps, i, "x", 1), ERANGE);
		assert_fails(shmpool_str_set_trunc(ps, i, "x", 1), ERANGE);
	}
	tu_assert_unchanged(p64, &s64);
	tu_assert_unchanged(p32, &s32);
	tu_assert_unchanged(pf, &sf);
	tu_assert_unchanged(ps, &ss);
	for (uint64_t i = 0; i < 10; i++) {
		assert_int_equal(shmpool_i64_get(p64, i, &a), 0);
		assert_int_equal(a, 7);
		assert_int_equal(shmpool_i32_get(p32, i, &b), 0);
		assert_int_equal(b, 7);
		assert_int_equal(shmpool_f64_get(pf, i, &d), 0);
		assert_true(d == 7.0);
		assert_int_equal(shmpool_str_get(ps, i, buf, sizeof buf), 5);
		assert_memory_equal(buf, "seven", 5);
	}
	shmpool_close(p64);
	shmpool_close(p32);
	shmpool_close(pf);
	shmpool_close(ps);
}

static void test_not_allocated(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("na"), 4, 8));
	shmpool_t *p64 = assert_pool(shmpool_i64_new(NULL, 4));
	shmpool_t *p32 = assert_pool(shmpool_i32_new(NULL, 4));
	shmpool_t *pf = assert_pool(shmpool_f64_new(NULL, 4));
	shmpool_t *ps = assert_pool(shmpool_str_new(NULL, 4, 8));
	struct tu_snap snap, s64, s32, sf, ss;
	unsigned char buf[8];
	const void *v;
	size_t len;
	int64_t a;
	int32_t b;
	double d;

	/* Slot 1 held; 0, 2 and 3 free, 2 freed once already. */
	assert_int_equal(shmpool_alloc_n(p, (uint64_t[3]){ 0 }, 3, 0), 3);
	assert_int_equal(shmpool_free(p, 0), 0);
	assert_int_equal(shmpool_free(p, 2), 0);
	tu_snapshot(p, &snap);
	const uint64_t freeidx[] = { 0, 2, 3 };
	for (size_t n = 0; n < 3; n++) {
		uint64_t i = freeidx[n];
		assert_int_equal(shmpool_is_allocated(p, i), 0);
		assert_fails(shmpool_get(p, i, buf, 8), ENOENT);
		assert_fails(shmpool_set(p, i, "XXXX", 4), ENOENT);
		assert_fails(shmpool_set_trunc(p, i, "XXXX", 4), ENOENT);
		assert_fails_null(shmpool_ptr(p, i), ENOENT);
		assert_fails(shmpool_slot_view(p, i, &v, &len), ENOENT);
		assert_fails(shmpool_owner(p, i), ENOENT);
		assert_fails(shmpool_adopt(p, i), ENOENT);
		assert_fails(shmpool_free(p, i), ENOENT); /* double free */
		errno = 0;
		assert_int_equal(shmpool_free_n(p, &i, 1), 0);
		assert_errno(ENOENT);
	}
	tu_assert_unchanged(p, &snap);
	assert_int_equal(shmpool_is_allocated(p, 1), 1);

	tu_snapshot(p64, &s64);
	tu_snapshot(p32, &s32);
	tu_snapshot(pf, &sf);
	tu_snapshot(ps, &ss);
	for (uint64_t i = 0; i < 4; i++) {
		assert_fails(shmpool_i64_get(p64, i, &a), ENOENT);
		assert_fails(shmpool_i64_set(p64, i, 1), ENOENT);
		assert_fails(shmpool_i64_cas(p64, i, 0, 1), ENOENT);
		assert_fails(shmpool_i64_cmpxchg(p64, i, 0, 1, &a), ENOENT);
		assert_fails(shmpool_i64_xchg(p64, i, 1, &a), ENOENT);
		assert_fails(shmpool_i64_add(p64, i, 1, &a), ENOENT);
		assert_fails(shmpool_i64_incr(p64, i, &a), ENOENT);
		assert_fails(shmpool_i64_decr(p64, i, &a), ENOENT);
		assert_fails(shmpool_i32_get(p32, i, &b), ENOENT);
		assert_fails(shmpool_i32_set(p32, i, 1), ENOENT);
		assert_fails(shmpool_i32_cas(p32, i, 0, 1), ENOENT);
		assert_fails(shmpool_i32_cmpxchg(p32, i, 0, 1, &b), ENOENT);
		assert_fails(shmpool_i32_xchg(p32, i, 1, &b), ENOENT);
		assert_fails(shmpool_i32_add(p32, i, 1, &b), ENOENT);
		assert_fails(shmpool_i32_incr(p32, i, &b), ENOENT);
		assert_fails(shmpool_i32_decr(p32, i, &b), ENOENT);
		assert_fails(shmpool_f64_get(pf, i, &d), ENOENT);
		assert_fails(shmpool_f64_set(pf, i, 1.0), ENOENT);
		assert_fails(shmpool_str_get(ps, i, buf, sizeof buf), ENOENT);
		assert_fails(shmpool_str_set(ps, i, "x", 1), ENOENT);
		assert_fails(shmpool_str_set_trunc(ps, i, "x", 1), ENOENT);
		assert_fails(shmpool_slot_view(ps, i, &v, &len), ENOENT);
	}
	tu_assert_unchanged(p64, &s64);
	tu_assert_unchanged(p32, &s32);
	tu_assert_unchanged(pf, &sf);
	tu_assert_unchanged(ps, &ss);
	shmpool_close(p);
	shmpool_close(p64);
	shmpool_close(p32);
	shmpool_close(pf);
	shmpool_close(ps);
}

static void test_oversize(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("os"), 2, 8));
	shmpool_t *ps = assert_pool(shmpool_str_new(NULL, 2, 8));
	struct tu_snap snap;
	unsigned char buf[16];
	char big[64];
	memset(big, 'Z', sizeof big);

	uint64_t i = (uint64_t)assert_ok(shmpool_alloc_set(p, "keep-me!", 8, 0));
	tu_snapshot(p, &snap);
	assert_fails(shmpool_set(p, i, big, 9), EMSGSIZE);
	assert_fails(shmpool_set(p, i, big, 64), EMSGSIZE);
	assert_fails(shmpool_set(p, i, big, SIZE_MAX), EMSGSIZE);
	tu_assert_unchanged(p, &snap);
	assert_int_equal(shmpool_get(p, i, buf, 8), 8);
	assert_memory_equal(buf, "keep-me!", 8);

	uint64_t j = (uint64_t)assert_ok(shmpool_str_alloc_set(ps, "keep", 4, 0));
	tu_snapshot(ps, &snap);
	assert_fails(shmpool_str_set(ps, j, big, 9), EMSGSIZE);
	assert_fails(shmpool_str_set(ps, j, big, SIZE_MAX), EMSGSIZE);
	tu_assert_unchanged(ps, &snap);
	assert_int_equal(shmpool_str_get(ps, j, buf, sizeof buf), 4);
	assert_memory_equal(buf, "keep", 4);
	shmpool_close(p);
	shmpool_close(ps);
}

/* ---- opening existing files --------------------------------------------- */

static void test_wrong_variant_open(void **state)
{
	(void)state;
	const char *path = tu_path("i64");
	shmpool_t *p = assert_pool(shmpool_i64_new(path, 10));
	uint64_t i = (uint64_t)assert_ok(shmpool_i64_alloc_set(p, 77, 0));
	int64_t v;

	/* refused while the pool is open, and nothing changes in it */
	assert_fails_null(shmpool_new(path, 10, 8), EPROTOTYPE);
	assert_fails_null(shmpool_str_new(path, 10, 4), EPROTOTYPE);
	assert_int_equal(shmpool_i64_get(p, i, &v), 0);
	assert_int_equal(v, 77);
	assert_int_equal(shmpool_used(p), 1);
	assert_int_equal(shmpool_close(p), 0);

	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	o.backing = SHMPOOL_BACKING_FILE;
	o.name = path;
	o.variant = SHMPOOL_RAW;
	assert_fails_null(shmpool_open(&o), EPROTOTYPE);
	o.elem_size = 8; /* even with the right size */
	assert_fails_null(shmpool_open(&o), EPROTOTYPE);
	o.elem_size = 0;
	o.variant = SHMPOOL_I32;
	assert_fails_null(shmpool_open(&o), EPROTOTYPE);
	o.variant = SHMPOOL_F64;
	assert_fails_null(shmpool_open(&o), EPROTOTYPE);
	o.variant = SHMPOOL_STR;
	assert_fails_null(shmpool_open(&o), EPROTOTYPE);
	assert_fails_null(shmpool_new(path, 10, 8), EPROTOTYPE);
	assert_fails_null(shmpool_i32_new(path, 10), EPROTOTYPE);
	assert_fails_null(shmpool_f64_new(path, 10), EPROTOTYPE);
	assert_fails_null(shmpool_str_new(path, 10, 4), EPROTOTYPE);

	o.variant = SHMPOOL_ANY;
	p = assert_pool(shmpool_open(&o));
	assert_int_equal(shmpool_variant(p), SHMPOOL_I64);
	assert_int_equal(shmpool_capacity(p), 10);
	assert_int_equal(shmpool_i64_get(p, i, &v), 0);
	assert_int_equal(v, 77);
	assert_int_equal(shmpool_close(p), 0);
	o.variant = SHMPOOL_I64;
	p = assert_pool(shmpool_open(&o));
	assert_int_equal(shmpool_used(p), 1);
	assert_int_equal(shmpool_close(p), 0);
}

/*
 * Reopening with another geometry.  The header says the file "must match"
 * without naming the errno; a mismatching argument is EINVAL ("bad
 * argument").
 */
static void test_mismatch_reopen(void **state)
{
	(void)state;
	const char *path = tu_path("geom");
	shmpool_t *p = assert_pool(shmpool_new(path, 10, 16));
	uint64_t i = (uint64_t)assert_ok(shmpool_alloc_set(p, "geometry", 8, 0));
	assert_int_equal(shmpool_close(p), 0);
	size_t flen;
	unsigned char *before = tu_read_file(path, &flen);

	assert_fails_null(shmpool_new(path, 20, 16), EINVAL);
	assert_fails_null(shmpool_new(path, 9, 16), EINVAL);
	assert_fails_null(shmpool_new(path, 10, 32), EINVAL);
	assert_fails_null(shmpool_new(path, 10, 8), EINVAL);
	tu_assert_file_is(path, before, flen);
	free(before);

	p = assert_pool(shmpool_new(path, 10, 16));
	char buf[16];
	assert_int_equal(shmpool_get(p, i, buf, 16), 16);
	assert_memory_equal(buf, "geometry", 8);
	assert_int_equal(shmpool_close(p), 0);

	/* Str: max_len is part of the geometry. */
	const char *spath = tu_path("sgeom");
	p = assert_pool(shmpool_str_new(spath, 5, 10));
	assert_int_equal(shmpool_close(p), 0);
	assert_fails_null(shmpool_str_new(spath, 5, 11), EINVAL);
	assert_fails_null(shmpool_str_new(spath, 6, 10), EINVAL);
	p = assert_pool(shmpool_str_new(spath, 5, 10));
	assert_int_equal(shmpool_str_max_len(p), 10);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_symlink(void **state)
{
	(void)state;
	const char *target = tu_path("target");
	const char *link = tu_path("link");
	const char data[] = "precious data, not a pool";
	struct stat st;

	tu_write_file(target, data, sizeof data);
	assert_int_equal(symlink(target, link), 0);
	assert_fails_null(shmpool_new(link, 4, 8), ELOOP);
	assert_fails_null(shmpool_i64_new(link, 4), ELOOP);
	assert_fails_null(tu_open_existing(link), ELOOP);
	tu_assert_file_is(target, data, sizeof data);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));

	/* A dangling symlink must not create its target. */
	const char *nowhere = tu_path("nowhere");
	const char *dangling = tu_path("dangling");
	assert_int_equal(symlink(nowhere, dangling), 0);
	assert_fails_null(shmpool_new(dangling, 4, 8), ELOOP);
	assert_false(tu_file_exists(nowhere));

	/* A symlink to a real pool is refused too, however it is opened
	 * (with SHMPOOL_EXCL: the link exists), and the pool is untouched. */
	const char *real = tu_path("real");
	const char *tolink = tu_path("to-real");
	shmpool_t *p = assert_pool(shmpool_new(real, 4, 8));
	assert_ok(shmpool_alloc(p, 0));
	size_t len;
	unsigned char *img = tu_read_file(real, &len);
	assert_int_equal(symlink(real, tolink), 0);
	assert_fails_null(shmpool_new(tolink, 4, 8), ELOOP);
	assert_fails_null(shmpool_i64_new(tolink, 4), ELOOP);
	assert_fails_null(tu_open_existing(tolink), ELOOP);
	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	o.backing = SHMPOOL_BACKING_FILE;
	o.name = tolink;
	o.capacity = 4;
	o.elem_size = 8;
	o.flags = SHMPOOL_EXCL;
	assert_fails_null(shmpool_open(&o), EEXIST);
	tu_assert_file_is(real, img, len);
	free(img);
	assert_int_equal(shmpool_used(p), 1);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_foreign_file(void **state)
{
	(void)state;
	const char *rnd = tu_path("random");
	const char *txt = tu_path("text");
	unsigned char junk[8192];
	const char text[] = "This is a text file.\nIt is not a pool.\n";

	srand(12345);
	for (size_t k = 0; k < sizeof junk; k++)
		junk[k] = (unsigned char)(rand() >> 7);
	tu_write_file(rnd, junk, sizeof junk);
	tu_write_file(txt, text, sizeof text - 1);

	assert_fails_null(shmpool_new(rnd, 10, 8), EBADMSG);
	assert_fails_null(tu_open_existing(rnd), EBADMSG);
	assert_fails_null(shmpool_i64_new(rnd, 10), EBADMSG);
	tu_assert_file_is(rnd, junk, sizeof junk);

	assert_fails_null(shmpool_new(txt, 10, 8), EBADMSG);
	assert_fails_null(tu_open_existing(txt), EBADMSG);
	assert_fails_null(shmpool_str_new(txt, 2, 4), EBADMSG);
	tu_assert_file_is(txt, text, sizeof text - 1);

	int fd = open(rnd, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_fails_null(shmpool_new_from_fd(fd), EBADMSG);
	close(fd);
	tu_assert_file_is(rnd, junk, sizeof junk);
}

static void test_truncated(void **state)
{
	(void)state;
	const char *path = tu_path("trunc");
	shmpool_t *p = assert_pool(shmpool_new(path, 1000, 64));
	for (int k = 0; k < 10; k++)
		assert_ok(shmpool_alloc(p, 0));
	assert_int_equal(shmpool_close(p), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	off_t full = st.st_size;

	const off_t sizes[] = { full / 2, full - 1, 100, 8 };
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		assert_int_equal(truncate(path, sizes[k]), 0);
		assert_fails_null(shmpool_new(path, 1000, 64), EBADMSG);
		assert_fails_null(tu_open_existing(path), EBADMSG);
		int fd = open(path, O_RDWR | O_CLOEXEC);
		assert_fails_null(shmpool_new_from_fd(fd), EBADMSG);
		close(fd);
		/* a failed open neither grows nor rewrites the file */
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_size, sizes[k]);
	}
}

/* Flip each byte of the first 64 (the immutable header line). */
static void test_corrupt_header(void **state)
{
	(void)state;
	const char *path = tu_path("hdr");
	const char *bad = tu_path("hdr-bad");
	shmpool_t *p = assert_pool(shmpool_new(path, 10, 8));
	assert_ok(shmpool_alloc(p, 0));
	assert_int_equal(shmpool_close(p), 0);
	size_t len;
	unsigned char *good = tu_read_file(path, &len);
	assert_true(len > 64);
	char failed[64 * 24] = "";

	for (int off = 0; off < 64; off++) {
		good[off] ^= 0xFF;
		tu_write_file(bad, good, len);
		errno = 0;
		shmpool_t *q = tu_open_existing(bad);
		int e1 = errno;
		if (q)
			shmpool_close(q);
		errno = 0;
		shmpool_t *r = shmpool_new(bad, 10, 8);
		int e2 = errno;
		if (r)
			shmpool_close(r);
		if (q != NULL || e1 != EBADMSG || r != NULL || e2 != EBADMSG) {
			char one[48];
			snprintf(one, sizeof one, " %d:%s/%s", off,
				 q ? "opened" : tu_errname(e1),
				 r ? "opened" : tu_errname(e2));
			strncat(failed, one, sizeof failed - strlen(failed) - 1);
		} else {
			/* rejected without rewriting the file */
			tu_assert_file_is(bad, good, len);
		}
		good[off] ^= 0xFF;
	}
	free(good);
	if (failed[0] != '\0')
		fail_msg("corrupted header bytes not rejected with EBADMSG "
			 "(offset:open_any/new):%s",
			 failed);
}

static void test_excl_nocreate(void **state)
{
	(void)state;
	const char *path = tu_path("excl");
	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	o.backing = SHMPOOL_BACKING_FILE;
	o.name = path;
	o.capacity = 4;
	o.elem_size = 8;
	o.flags = SHMPOOL_EXCL;
	shmpool_t *p = assert_pool(shmpool_open(&o));
	uint64_t i = (uint64_t)assert_ok(shmpool_alloc_set(p, "excl", 4, 0));
	assert_fails_null(shmpool_open(&o), EEXIST);
	assert_int_equal(shmpool_is_allocated(p, i), 1);
	assert_int_equal(shmpool_used(p), 1);
	assert_int_equal(shmpool_close(p), 0);
	/* EXCL on any existing file, pool or not. */
	const char *other = tu_path("other");
	tu_write_file(other, "x", 1);
	o.name = other;
	assert_fails_null(shmpool_open(&o), EEXIST);
	tu_assert_file_is(other, "x", 1);

	const char *missing = tu_path("missing");
	o.name = missing;
	o.flags = SHMPOOL_NOCREATE;
	assert_fails_null(shmpool_open(&o), ENOENT);
	assert_false(tu_file_exists(missing));
	assert_fails_null(tu_open_existing(missing), ENOENT);
	assert_false(tu_file_exists(missing));
}

static void test_file_mode(void **state)
{
	(void)state;
	mode_t old = umask(0);
	struct stat st;
	const char *path = tu_path("mode-default");
	shmpool_t *p = shmpool_new(path, 4, 8);
	int err = errno;
	int rs = stat(path, &st);

	/* a second pool with an explicit mode */
	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	o.backing = SHMPOOL_BACKING_FILE;
	o.name = tu_path("mode-0640");
	o.capacity = 4;
	o.elem_size = 8;
	o.mode = 0640;
	shmpool_t *q = shmpool_open(&o);
	struct stat st2;
	int rs2 = stat(o.name, &st2);
	umask(old);

	if (p == NULL)
		fail_msg("shmpool_new: %s", tu_errname(err));
	assert_int_equal(rs, 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_non_null(q);
	assert_int_equal(rs2, 0);
	assert_int_equal(st2.st_mode & 07777, 0640);
	shmpool_close(p);
	shmpool_close(q);
}

static void test_from_fd_errors(void **state)
{
	(void)state;
	assert_fails_null(shmpool_new_from_fd(-1), EBADF);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	int closed = dup(fd);
	close(closed);
	close(fd);
	assert_fails_null(shmpool_new_from_fd(closed), EBADF);
	assert_fails_null(shmpool_new_from_fd(INT32_MAX), EBADF);

	/* A text file and an empty memfd are not pools; the caller's fd
	 * stays open. */
	const char *txt = tu_path("t");
	tu_write_file(txt, "not a pool at all\n", 18);
	fd = open(txt, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_fails_null(shmpool_new_from_fd(fd), EBADMSG);
	assert_true(fcntl(fd, F_GETFD) >= 0);
	close(fd);
	tu_assert_file_is(txt, "not a pool at all\n", 18);

	fd = memfd_create("empty", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_fails_null(shmpool_new_from_fd(fd), EBADMSG);
	assert_true(fcntl(fd, F_GETFD) >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 0);
	close(fd);
}

/* ---- NULL arguments ----------------------------------------------------- */

static int never(shmpool_t *p, uint64_t idx, void *arg)
{
	(void)p;
	(void)idx;
	(void)arg;
	return 0;
}

static void test_null_args(void **state)
{
	(void)state;
	shmpool_t *N = NULL;
	uint64_t out[4] = { 0 };
	unsigned char buf[8];
	const void *v;
	size_t len;
	int64_t a;
	int32_t b;
	double d;
	shmpool_guard_t g = { NULL, 12345 };
	struct shmpool_stats st;

	assert_fails(shmpool_alloc(N, 0), EINVAL);
	assert_fails(shmpool_try_alloc(N), EINVAL);
	assert_fails(shmpool_alloc_n(N, out, 1, 0), EINVAL);
	assert_fails(shmpool_free(N, 0), EINVAL);
	assert_fails(shmpool_free_n(N, out, 1), EINVAL);
	assert_fails(shmpool_adopt(N, 0), EINVAL);
	assert_fails(shmpool_allocated_slots(N, out, 4), EINVAL);
	assert_fails(shmpool_each_allocated(N, never, NULL), EINVAL);
	assert_fails(shmpool_get(N, 0, buf, 8), EINVAL);
	assert_fails(shmpool_set(N, 0, buf, 8), EINVAL);
	assert_fails(shmpool_set_trunc(N, 0, buf, 8), EINVAL);
	assert_fails(shmpool_i64_get(N, 0, &a), EINVAL);
	assert_fails(shmpool_i64_set(N, 0, 1), EINVAL);
	assert_fails(shmpool_i64_cas(N, 0, 0, 1), EINVAL);
	assert_fails(shmpool_i64_cmpxchg(N, 0, 0, 1, &a), EINVAL);
	assert_fails(shmpool_i64_xchg(N, 0, 1, &a), EINVAL);
	assert_fails(shmpool_i64_add(N, 0, 1, &a), EINVAL);
	assert_fails(shmpool_i64_incr(N, 0, &a), EINVAL);
	assert_fails(shmpool_i64_decr(N, 0, &a), EINVAL);
	assert_fails(shmpool_i32_get(N, 0, &b), EINVAL);
	assert_fails(shmpool_i32_set(N, 0, 1), EINVAL);
	assert_fails(shmpool_i32_cas(N, 0, 0, 1), EINVAL);
	assert_fails(shmpool_i32_add(N, 0, 1, &b), EINVAL);
	assert_fails(shmpool_f64_get(N, 0, &d), EINVAL);
	assert_fails(shmpool_f64_set(N, 0, 1.0), EINVAL);
	assert_fails(shmpool_str_get(N, 0, buf, 8), EINVAL);
	assert_fails(shmpool_str_set(N, 0, "x", 1), EINVAL);
	assert_fails(shmpool_str_set_trunc(N, 0, "x", 1), EINVAL);
	assert_fails(shmpool_str_max_len(N), EINVAL);
	assert_fails(shmpool_alloc_set(N, "x", 1, 0), EINVAL);
	assert_fails(shmpool_try_alloc_set(N, "x", 1), EINVAL);
	assert_fails(shmpool_i64_alloc_set(N, 1, 0), EINVAL);
	assert_fails(shmpool_i32_alloc_set(N, 1, 0), EINVAL);
	assert_fails(shmpool_f64_alloc_set(N, 1, 0), EINVAL);
	assert_fails(shmpool_str_alloc_set(N, "x", 1, 0), EINVAL);
	assert_fails_null(shmpool_ptr(N, 0), EINVAL);
	assert_fails_null(shmpool_data_ptr(N), EINVAL);
	assert_fails(shmpool_slot_view(N, 0, &v, &len), EINVAL);
	assert_fails(shmpool_is_allocated(N, 0), EINVAL);
	assert_fails(shmpool_owner(N, 0), EINVAL);
	assert_fails(shmpool_stats(N, &st), EINVAL);
	assert_fails(shmpool_recover_stale(N), EINVAL);
	assert_fails(shmpool_reset(N), EINVAL);
	assert_fails(shmpool_alloc_guard(N, 0, &g), EINVAL);
	assert_int_equal(g.idx, -1);
	assert_fails(shmpool_try_alloc_guard(N, &g), EINVAL);
	g = shmpool_guard_acquire(N, 0);
	assert_int_equal(g.idx, -1);
	assert_errno(EINVAL);
	assert_fails(shmpool_guard_detach(NULL), EINVAL);
	shmpool_guard_release(NULL); /* must not crash */
	assert_fails(shmpool_sync(N), EINVAL);
	assert_fails(shmpool_unlink(N), EINVAL);
	assert_fails(shmpool_eventfd(N), EINVAL);
	assert_fails(shmpool_eventfd_set(N, -1), EINVAL);
	assert_fails(shmpool_notify(N), EINVAL);
	assert_fails(shmpool_eventfd_consume(N), EINVAL);
	assert_fails(shmpool_close(N), EINVAL);
	assert_null(shmpool_path(N));
	assert_int_equal(shmpool_memfd(N), -1);
	assert_int_equal(shmpool_fileno(N), -1);
	assert_int_equal(shmpool_mem_node(N), -1);

	/* NULL output/input buffers on a valid pool. */
	shmpool_t *p = assert_pool(shmpool_new(NULL, 4, 8));
	shmpool_t *p64 = assert_pool(shmpool_i64_new(NULL, 4));
	shmpool_t *ps = assert_pool(shmpool_str_new(NULL, 4, 8));
	uint64_t i = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	uint64_t j = (uint64_t)assert_ok(shmpool_alloc(p64, 0));
	uint64_t k = (uint64_t)assert_ok(shmpool_alloc(ps, 0));
	struct tu_snap snap;
	tu_snapshot(p, &snap);
	assert_fails(shmpool_stats(p, NULL), EINVAL);
	assert_fails(shmpool_get(p, i, NULL, 8), EINVAL);
	assert_fails(shmpool_set(p, i, NULL, 8), EINVAL);
	assert_fails(shmpool_alloc_n(p, NULL, 2, 0), EINVAL);
	assert_fails(shmpool_free_n(p, NULL, 2), EINVAL);
	assert_fails(shmpool_allocated_slots(p, NULL, 3), EINVAL);
	assert_fails(shmpool_each_allocated(p, NULL, NULL), EINVAL);
	assert_fails(shmpool_slot_view(p, i, NULL, &len), EINVAL);
	assert_fails(shmpool_slot_view(p, i, &v, NULL), EINVAL);
	assert_fails(shmpool_alloc_guard(p, 0, NULL), EINVAL);
	assert_fails(shmpool_try_alloc_guard(p, NULL), EINVAL);
	assert_fails(shmpool_alloc_set(p, NULL, 4, 0), EINVAL);
	tu_assert_unchanged(p, &snap);
	tu_snapshot(p64, &snap);
	assert_fails(shmpool_i64_get(p64, j, NULL), EINVAL);
	tu_assert_unchanged(p64, &snap);
	tu_snapshot(ps, &snap);
	assert_fails(shmpool_str_get(ps, k, NULL, 8), EINVAL);
	assert_fails(shmpool_str_set(ps, k, NULL, 4), EINVAL);
	tu_assert_unchanged(ps, &snap);
	shmpool_close(p);
	shmpool_close(p64);
	shmpool_close(ps);
}

/* ---- allocation failures ------------------------------------------------- */

struct blockarg {
	shmpool_t *p;
	uint64_t n;
};

/* alloc_n(n > capacity, -1) must fail at once, never sleep forever. */
static int child_alloc_n_forever(void *arg)
{
	struct blockarg *a = arg;
	uint64_t out[64];
	errno = 0;
	int64_t r = shmpool_alloc_n(a->p, out, a->n, -1);
	CHILD_CHECK(r == -1, 2);
	CHILD_CHECK(errno == EINVAL, 3);
	return 0;
}

static void test_alloc_n_bad(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("an"), 8, 8));
	uint64_t out[16];
	struct tu_snap snap;

	assert_ok(shmpool_alloc(p, 0));
	tu_snapshot(p, &snap);
	assert_fails(shmpool_alloc_n(p, out, 0, 0), EINVAL);
	assert_fails(shmpool_alloc_n(p, out, 0, 1.0), EINVAL);
	assert_fails(shmpool_alloc_n(p, out, 9, 0), EINVAL);
	assert_fails(shmpool_alloc_n(p, out, 9, 0.5), EINVAL);
	assert_fails(shmpool_alloc_n(p, out, UINT64_MAX, 0), EINVAL);
	tu_assert_unchanged(p, &snap);

	struct blockarg a = { p, 9 };
	int st = tu_run_child(child_alloc_n_forever, &a, 10);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("alloc_n(capacity + 1, -1): %s", tu_status_str(st));
	/* n == capacity is allowed (it only has to wait) */
	assert_fails(shmpool_alloc_n(p, out, 8, 0), EAGAIN);
	tu_assert_unchanged(p, &snap);
	shmpool_close(p);
}

static void test_full_pool(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("full"), 3, 8));
	uint64_t out[3];
	struct tu_snap snap;
	shmpool_guard_t g = { NULL, 12345 };

	assert_int_equal(shmpool_alloc_n(p, out, 3, 0), 3);
	tu_snapshot(p, &snap);
	struct shmpool_stats s0 = tu_stats(p);
	assert_fails(shmpool_try_alloc(p), EAGAIN);
	assert_fails(shmpool_alloc(p, 0), EAGAIN);
	assert_fails(shmpool_alloc_n(p, out, 1, 0), EAGAIN);
	assert_fails(shmpool_try_alloc_set(p, "x", 1), EAGAIN);
	assert_fails(shmpool_try_alloc_guard(p, &g), EAGAIN);
	assert_int_equal(g.idx, -1);
	tu_assert_unchanged(p, &snap);
	struct shmpool_stats s1 = tu_stats(p);
	assert_int_equal(s1.timeouts, s0.timeouts);
	assert_int_equal(s1.waiters, 0);
	shmpool_close(p);
}

static void test_alloc_timeout(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(tu_path("to"), 2, 8));
	uint64_t out[2];
	struct tu_snap snap;

	assert_int_equal(shmpool_alloc_n(p, out, 2, 0), 2);
	tu_snapshot(p, &snap);
	struct shmpool_stats s0 = tu_stats(p);

	double t0 = tu_now();
	assert_fails(shmpool_alloc(p, 0.05), ETIMEDOUT);
	double dt = tu_now() - t0;
	/* Lower bound only (1 us slack for the double -> timespec
	 * conversion); never an upper bound. */
	if (dt < 0.05 - 1e-6)
		fail_msg("alloc(0.05) timed out after %.6f s", dt);
	tu_assert_unchanged(p, &snap);
	struct shmpool_stats s1 = tu_stats(p);
	assert_int_equal(s1.timeouts, s0.timeouts + 1);
	assert_int_equal(s1.waits, s0.waits + 1);
	assert_int_equal(s1.waiters, 0);

	t0 = tu_now();
	assert_fails(shmpool_alloc_n(p, out, 1, 0.05), ETIMEDOUT);
	dt = tu_now() - t0;
	if (dt < 0.05 - 1e-6)
		fail_msg("alloc_n(0.05) timed out after %.6f s", dt);
	t0 = tu_now();
	assert_fails(shmpool_alloc_set(p, "x", 1, 0.05), ETIMEDOUT);
	dt = tu_now() - t0;
	if (dt < 0.05 - 1e-6)
		fail_msg("alloc_set(0.05) timed out after %.6f s", dt);
	tu_assert_unchanged(p, &snap);
	assert_int_equal(tu_stats(p).timeouts, s0.timeouts + 3);
	shmpool_close(p);
}

/*
 * max_users: every attachment record taken -> EUSERS.  70 threads of one
 * process hold a slot each in a pool with 64 records.
 */
#define NTHR 70
struct eusers_ctx {
	shmpool_t *p;
	pthread_barrier_t bar;
	int ok, eusers, other;
	int other_errno;
	pthread_mutex_t mu;
};

static void *eusers_thread(void *arg)
{
	struct eusers_ctx *c = arg;
	errno = 0;
	int64_t i = shmpool_try_alloc(c->p);
	int e = errno;
	pthread_mutex_lock(&c->mu);
	if (i >= 0)
		c->ok++;
	else if (e == EUSERS && shmpool_errmsg()[0] != '\0')
		c->eusers++;
	else {
		c->other++;
		c->other_errno = e;
	}
	pthread_mutex_unlock(&c->mu);
	pthread_barrier_wait(&c->bar); /* everyone holds its record */
	pthread_barrier_wait(&c->bar); /* main has checked */
	if (i >= 0)
		shmpool_free(c->p, (uint64_t)i);
	return NULL;
}

static void test_eusers(void **state)
{
	(void)state;
	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	o.capacity = 256;
	o.elem_size = 8;
	o.max_users = 64;
	struct eusers_ctx c;
	pthread_t t[NTHR];

	memset(&c, 0, sizeof c);
	c.p = assert_pool(shmpool_open(&o));
	pthread_mutex_init(&c.mu, NULL);
	pthread_barrier_init(&c.bar, NULL, NTHR + 1);
	for (int k = 0; k < NTHR; k++)
		assert_int_equal(
			pthread_create(&t[k], NULL, eusers_thread, &c), 0);
	pthread_barrier_wait(&c.bar);
	uint64_t used = shmpool_used(c.p);
	struct shmpool_stats st = tu_stats(c.p);
	pthread_barrier_wait(&c.bar);
	for (int k = 0; k < NTHR; k++)
		pthread_join(t[k], NULL);

	if (c.other)
		fail_msg("%d threads failed with %s, expected EUSERS", c.other,
			 tu_errname(c.other_errno));
	assert_true(c.ok <= 64);
	assert_true(c.eusers >= NTHR - 64);
	assert_int_equal(c.ok + c.eusers, NTHR);
	assert_int_equal(used, (uint64_t)c.ok);
	assert_true(st.users <= 64);
	assert_int_equal(st.allocs, (uint64_t)c.ok);
	shmpool_close(c.p);
	pthread_barrier_destroy(&c.bar);
}

/* ---- exhausted file descriptors ------------------------------------------ */

static int count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

static int child_emfile(void *arg)
{
	const char *path = arg;
	struct rlimit rl;
	int fillers[256], nf = 0, fd;

	/* A low limit, then fill every free descriptor. */
	CHILD_CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0, 10);
	rl.rlim_cur = (rlim_t)count_fds() + 64;
	CHILD_CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, 11);
	while (nf < 256 && (fd = open("/dev/null", O_RDONLY)) >= 0)
		fillers[nf++] = fd;
	CHILD_CHECK(nf < 256 && errno == EMFILE, 12);

	/* Then leave exactly @spare free descriptors: 0, 1, 2, 3. */
	for (int spare = 0; spare <= 3; spare++) {
		if (spare > 0)
			close(fillers[--nf]);
		int before = count_fds();
		errno = 0;
		shmpool_t *p = shmpool_new(path, 4, 8);
		int e = errno;
		if (p == NULL) {
			/* it must say why, and leak nothing */
			CHILD_CHECK(e == EMFILE, 13);
			CHILD_CHECK(shmpool_errmsg()[0] != '\0', 14);
			CHILD_CHECK(count_fds() == before, 15);
		} else {
			CHILD_CHECK(spare > 0, 16); /* no fd: cannot work */
			CHILD_CHECK(shmpool_used(p) == 1, 17);
			shmpool_close(p);
			CHILD_CHECK(count_fds() == before, 18);
		}
		errno = 0;
		p = shmpool_new_memfd("emfile", 4, 8);
		e = errno;
		if (p == NULL) {
			CHILD_CHECK(e == EMFILE, 19);
			CHILD_CHECK(shmpool_errmsg()[0] != '\0', 20);
			CHILD_CHECK(count_fds() == before, 21);
		} else {
			CHILD_CHECK(spare > 0, 22);
			shmpool_close(p);
			CHILD_CHECK(count_fds() == before, 23);
		}
	}
	return 0;
}

static void test_emfile(void **state)
{
	(void)state;
	const char *path = tu_path("emfile");
	/* The file exists beforehand, so only the open path is tested. */
	shmpool_t *p = assert_pool(shmpool_new(path, 4, 8));
	assert_ok(shmpool_alloc(p, 0));
	int st = tu_run_child(child_emfile, (void *)path, 20);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("fd exhaustion child: %s (see stderr)",
			 tu_status_str(st));
	assert_int_equal(shmpool_used(p), 1);
	assert_int_equal(tu_stats(p).allocs, 1);
	shmpool_close(p);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup_dir, tu_teardown_dir)

int main(void)
{
	tu_init(120);
	const struct CMUnitTest tests[] = {
		T(test_zero_capacity),
		T(test_zero_elem_size),
		T(test_capacity_too_big),
		T(test_size_overflow),
		T(test_bad_options),
		T(test_index_range_raw),
		T(test_index_range_typed),
		T(test_not_allocated),
		T(test_oversize),
		T(test_wrong_variant_open),
		T(test_mismatch_reopen),
		T(test_symlink),
		T(test_foreign_file),
		T(test_truncated),
		T(test_corrupt_header),
		T(test_excl_nocreate),
		T(test_file_mode),
		T(test_from_fd_errors),
		T(test_null_args),
		T(test_alloc_n_bad),
		T(test_full_pool),
		T(test_alloc_timeout),
		T(test_eusers),
		T(test_emfile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
