/*
 * test_variants.c - the typed variants (I64, I32, F64, Str) with every
 * operation, on each backing their constructors offer (file, anonymous,
 * memfd), and typed calls on the wrong variant (EPROTOTYPE).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <float.h>
#include <math.h>

enum bk { BK_FILE, BK_ANON, BK_MEMFD };
static const char *bk_name[] = { "file", "anon", "memfd" };
static enum bk bk_file = BK_FILE, bk_anon = BK_ANON, bk_memfd = BK_MEMFD;

static shmpool_t *mk(enum shmpool_variant v, enum bk b, uint64_t cap,
		     uint64_t max_len)
{
	const char *path = b == BK_FILE ? tu_path("typed") : NULL;
	shmpool_t *p = NULL;

	errno = 0;
	switch (v) {
	case SHMPOOL_I64:
		p = b == BK_MEMFD ? shmpool_i64_new_memfd("i64", cap)
				  : shmpool_i64_new(path, cap);
		break;
	case SHMPOOL_I32:
		p = b == BK_MEMFD ? shmpool_i32_new_memfd("i32", cap)
				  : shmpool_i32_new(path, cap);
		break;
	case SHMPOOL_F64:
		p = b == BK_MEMFD ? shmpool_f64_new_memfd("f64", cap)
				  : shmpool_f64_new(path, cap);
		break;
	case SHMPOOL_STR:
		p = b == BK_MEMFD ? shmpool_str_new_memfd("str", cap, max_len)
				  : shmpool_str_new(path, cap, max_len);
		break;
	default:
		p = b == BK_MEMFD ? shmpool_new_memfd("raw", cap, max_len)
				  : shmpool_new(path, cap, max_len);
		break;
	}
	if (p == NULL)
		fail_msg("%s %s pool: %s (%s)", shmpool_variant_name(v),
			 bk_name[b], tu_errname(errno), shmpool_errmsg());
	assert_int_equal(shmpool_variant(p), v);
	assert_int_equal(shmpool_capacity(p), cap);
	if (b == BK_MEMFD)
		assert_true(shmpool_memfd(p) >= 0);
	else
		assert_int_equal(shmpool_memfd(p), -1);
	if (b == BK_FILE)
		assert_non_null(shmpool_path(p));
	else
		assert_null(shmpool_path(p));
	return p;
}

/*
 * The integer variants share one contract; the test body is written once
 * for both widths.
 */
#define INT_VARIANT_TEST(NAME, T, PFX, VARIANT, TMIN, TMAX, SIZE)              \
	static void NAME(void **state)                                         \
	{                                                                      \
		enum bk b = *(enum bk *)*state;                                \
		shmpool_t *p = mk(VARIANT, b, 10, 0);                          \
		T v = 1, old = 1;                                              \
		assert_int_equal(shmpool_elem_size(p), SIZE);                  \
		uint64_t i = (uint64_t)assert_ok(shmpool_alloc(p, 0));         \
		uint64_t j = (uint64_t)assert_ok(shmpool_alloc(p, 0));         \
		/* zero-filled */                                              \
		assert_int_equal(PFX##_get(p, i, &v), 0);                      \
		assert_int_equal(v, 0);                                        \
		/* get/set */                                                  \
		assert_int_equal(PFX##_set(p, i, 42), 0);                      \
		assert_int_equal(PFX##_set(p, j, -1), 0);                      \
		assert_int_equal(PFX##_get(p, i, &v), 0);                      \
		assert_int_equal(v, 42);                                       \
		assert_int_equal(PFX##_get(p, j, &v), 0);                      \
		assert_int_equal(v, -1);                                       \
		/* raw get sees the native representation */                   \
		unsigned char raw[SIZE + 8];                                   \
		memset(raw, 0xEE, sizeof raw);                                 \
		assert_int_equal(shmpool_get(p, i, raw, sizeof raw), SIZE);    \
		T fortytwo = 42;                                               \
		assert_memory_equal(raw, &fortytwo, SIZE);                     \
		assert_int_equal(raw[SIZE], 0xEE);                             \
		/* cas, true and false */                                      \
		assert_int_equal(PFX##_cas(p, i, 42, 43), 1);                  \
		assert_int_equal(PFX##_get(p, i, &v), 0);                      \
		assert_int_equal(v, 43);                                       \
		assert_int_equal(PFX##_cas(p, i, 42, 44), 0);                  \
		assert_int_equal(PFX##_get(p, i, &v), 0);                      \
		assert_int_equal(v, 43);                                       \
		/* cmpxchg returns the old value, exchange or not */           \
		assert_true(PFX##_cmpxchg(p, i, 43, 50, &old) >= 0);           \
		assert_int_equal(old, 43);                                     \
		assert_int_equal(PFX##_get(p, i, &v), 0);                      \
		assert_int_equal(v, 50);                                       \
		old = 0;                                                       \
		assert_true(PFX##_cmpxchg(p, i, 43, 60, &old) >= 0);           \
		assert_int_equal(old, 50);                                     \
		assert_int_equal(PFX##_get(p, i, &v), 0);                      \
		assert_int_equal(v, 50);                                       \
		/* xchg */                                                     \
		assert_int_equal(PFX##_xchg(p, i, 7, &old), 0);                \
		assert_int_equal(old, 50);                                     \
		assert_int_equal(PFX##_get(p, i, &v), 0);                      \
		assert_int_equal(v, 7);                                        \
		/* add returns the new value; out may be NULL */               \
		assert_int_equal(PFX##_add(p, i, 5, &v), 0);                   \
		assert_int_equal(v, 12);                                       \
		assert_int_equal(PFX##_add(p, i, -20, &v), 0);                 \
		assert_int_equal(v, -8);                                       \
		assert_int_equal(PFX##_add(p, i, 3, NULL), 0);                 \
		assert_int_equal(PFX##_get(p, i, &v), 0);                      \
		assert_int_equal(v, -5);                                       \
		assert_int_equal(PFX##_incr(p, i, &v), 0);                     \
		assert_int_equal(v, -4);                                       \
		assert_int_equal(PFX##_decr(p, i, &v), 0);                     \
		assert_int_equal(v, -5);                                       \
		assert_int_equal(PFX##_decr(p, i, &v), 0);                     \
		assert_int_equal(v, -6);                                       \
		assert_int_equal(PFX##_incr(p, i, NULL), 0);                   \
		assert_int_equal(PFX##_decr(p, i, NULL), 0);                   \
		assert_int_equal(PFX##_get(p, i, &v), 0);                      \
		assert_int_equal(v, -6);                                       \
		/* the other slot was never touched */                         \
		assert_int_equal(PFX##_get(p, j, &v), 0);                      \
		assert_int_equal(v, -1);                                       \
		/* boundaries round trip */                                    \
		assert_int_equal(PFX##_set(p, i, TMAX), 0);                    \
		assert_int_equal(PFX##_get(p, i, &v), 0);                      \
		assert_true(v == TMAX);                                        \
		assert_int_equal(PFX##_set(p, i, TMIN), 0);                    \
		assert_int_equal(PFX##_get(p, i, &v), 0);                      \
		assert_true(v == TMIN);                                        \
		assert_int_equal(PFX##_cas(p, i, TMIN, TMAX), 1);              \
		assert_true(PFX##_cmpxchg(p, i, TMAX, TMIN, &old) >= 0);       \
		assert_true(old == TMAX);                                      \
		assert_int_equal(PFX##_xchg(p, i, TMAX, &old), 0);             \
		assert_true(old == TMIN);                                      \
		/* wraparound is two's complement */                           \
		assert_int_equal(PFX##_incr(p, i, &v), 0);                     \
		assert_true(v == TMIN);                                        \
		assert_int_equal(PFX##_decr(p, i, &v), 0);                     \
		assert_true(v == TMAX);                                        \
		assert_int_equal(PFX##_add(p, i, 1, &v), 0);                   \
		assert_true(v == TMIN);                                        \
		assert_int_equal(PFX##_add(p, i, -1, &v), 0);                  \
		assert_true(v == TMAX);                                        \
		assert_int_equal(PFX##_add(p, i, TMAX, &v), 0);                \
		assert_true(v == (T)-2);                                       \
		assert_int_equal(PFX##_add(p, i, TMIN, &v), 0);                \
		assert_true(v == TMAX - 1);                                    \
		assert_int_equal(PFX##_set(p, i, TMIN), 0);                    \
		assert_int_equal(PFX##_add(p, i, TMIN, &v), 0);                \
		assert_true(v == 0);                                           \
		assert_int_equal(PFX##_get(p, i, &v), 0);                      \
		assert_true(v == 0);                                           \
		/* alloc_set */                                                \
		int64_t k = assert_ok(PFX##_alloc_set(p, TMIN + 5, 1.0));      \
		assert_true((uint64_t)k != i && (uint64_t)k != j);             \
		assert_int_equal(PFX##_get(p, (uint64_t)k, &v), 0);            \
		assert_true(v == TMIN + 5);                                    \
		assert_int_equal(shmpool_owner(p, (uint64_t)k), getpid());     \
		k = assert_ok(PFX##_alloc_set(p, -77, 0));                     \
		assert_int_equal(PFX##_get(p, (uint64_t)k, &v), 0);            \
		assert_int_equal(v, -77);                                      \
		assert_int_equal(shmpool_free(p, i), 0);                       \
		assert_int_equal(shmpool_used(p), 3);                          \
		assert_int_equal(shmpool_close(p), 0);                         \
	}

INT_VARIANT_TEST(test_i64, int64_t, shmpool_i64, SHMPOOL_I64, INT64_MIN,
		 INT64_MAX, 8)
INT_VARIANT_TEST(test_i32, int32_t, shmpool_i32, SHMPOOL_I32, INT32_MIN,
		 INT32_MAX, 4)

/* i64 values that do not fit 32 bits keep their high half. */
static void test_i64_wide(void **state)
{
	enum bk b = *(enum bk *)*state;
	shmpool_t *p = mk(SHMPOOL_I64, b, 2, 0);
	int64_t v, old;
	uint64_t i = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	const int64_t big = 0x123456789ABCDEF0ll;

	assert_int_equal(shmpool_i64_set(p, i, big), 0);
	assert_int_equal(shmpool_i64_get(p, i, &v), 0);
	assert_true(v == big);
	assert_int_equal(shmpool_i64_add(p, i, 0x10, &v), 0);
	assert_true(v == big + 0x10);
	/* A CAS must compare all 64 bits, not just the low half. */
	assert_int_equal(shmpool_i64_cas(p, i, (big + 0x10) & 0xFFFFFFFF, 1),
			 0);
	assert_true(shmpool_i64_cmpxchg(p, i, big, 5, &old) >= 0);
	assert_true(old == big + 0x10);
	assert_int_equal(shmpool_i64_get(p, i, &v), 0);
	assert_true(v == big + 0x10);
	assert_int_equal(shmpool_i64_add(p, i, (int64_t)1 << 40, &v), 0);
	assert_true(v == big + 0x10 + ((int64_t)1 << 40));
	assert_int_equal(shmpool_close(p), 0);
}

/* i32 slots are 4 bytes: neighbours must not be touched. */
static void test_i32_neighbours(void **state)
{
	enum bk b = *(enum bk *)*state;
	shmpool_t *p = mk(SHMPOOL_I32, b, 8, 0);
	int32_t v;
	uint64_t idx[8];

	for (int k = 0; k < 8; k++) {
		idx[k] = (uint64_t)assert_ok(shmpool_alloc(p, 0));
		assert_int_equal(shmpool_i32_set(p, idx[k], 1000 + k), 0);
	}
	for (int k = 0; k < 8; k++) {
		assert_int_equal(shmpool_i32_set(p, idx[k], -1), 0);
		assert_int_equal(shmpool_i32_add(p, idx[k], INT32_MIN, NULL),
				 0);
		for (int m = 0; m < 8; m++) {
			assert_int_equal(shmpool_i32_get(p, idx[m], &v), 0);
			if (m == k)
				assert_int_equal(v, INT32_MAX);
			else if (m < k)
				assert_int_equal(v, 12345);
			else
				assert_int_equal(v, 1000 + m);
		}
		assert_int_equal(shmpool_i32_set(p, idx[k], 12345), 0);
	}
	assert_ptr_equal(shmpool_ptr(p, 3),
			 (char *)shmpool_data_ptr(p) + 3 * 4);
	assert_int_equal(shmpool_close(p), 0);
}

static int same_bits(double a, double b)
{
	return memcmp(&a, &b, sizeof a) == 0;
}

static double from_bits(uint64_t u)
{
	double d;
	memcpy(&d, &u, sizeof d);
	return d;
}

static void test_f64(void **state)
{
	enum bk b = *(enum bk *)*state;
	shmpool_t *p = mk(SHMPOOL_F64, b, 4, 0);
	double v = 1;
	volatile double three = 3.0;
	const double vals[] = {
		0.0,
		-0.0,
		1.0 / three,
		-1.0 / three,
		DBL_MIN,
		-DBL_MIN,
		DBL_TRUE_MIN, /* smallest subnormal */
		DBL_MAX,
		-DBL_MAX,
		DBL_EPSILON,
		INFINITY,
		-INFINITY,
		from_bits(0x7FF8000000000000ull), /* canonical quiet NaN */
		from_bits(0x7FF8000000000123ull), /* NaN with a payload */
		from_bits(0xFFF80000DEADBEEFull), /* negative NaN, payload */
		from_bits(0x000FFFFFFFFFFFFFull), /* largest subnormal */
		3.141592653589793,
		1e308,
		-2.5e-300,
	};

	assert_int_equal(shmpool_elem_size(p), 8);
	uint64_t i = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	assert_int_equal(shmpool_f64_get(p, i, &v), 0);
	assert_true(same_bits(v, 0.0)); /* zero-filled is +0.0 */

	for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
		assert_int_equal(shmpool_f64_set(p, i, vals[k]), 0);
		v = 12345.0;
		assert_int_equal(shmpool_f64_get(p, i, &v), 0);
		if (!same_bits(v, vals[k])) {
			uint64_t w, g;
			memcpy(&w, &vals[k], 8);
			memcpy(&g, &v, 8);
			fail_msg("f64 value #%zu: stored %016llx read %016llx",
				 k, (unsigned long long)w,
				 (unsigned long long)g);
		}
		/* raw view of the same bits */
		unsigned char raw[8];
		assert_int_equal(shmpool_get(p, i, raw, 8), 8);
		assert_memory_equal(raw, &vals[k], 8);
	}
	assert_true(signbit(-0.0));
	assert_int_equal(shmpool_f64_set(p, i, -0.0), 0);
	assert_int_equal(shmpool_f64_get(p, i, &v), 0);
	assert_true(signbit(v) && v == 0.0);

	int64_t k = assert_ok(shmpool_f64_alloc_set(p, 1.0 / three, 1.0));
	assert_true((uint64_t)k != i);
	assert_int_equal(shmpool_f64_get(p, (uint64_t)k, &v), 0);
	assert_true(same_bits(v, 1.0 / three));
	k = assert_ok(shmpool_f64_alloc_set(p, -0.0, 0));
	assert_int_equal(shmpool_f64_get(p, (uint64_t)k, &v), 0);
	assert_true(same_bits(v, -0.0));
	assert_int_equal(shmpool_used(p), 3);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_str(void **state)
{
	enum bk b = *(enum bk *)*state;
	shmpool_t *p = mk(SHMPOOL_STR, b, 6, 16);
	char buf[64];
	const void *view = NULL;
	size_t vlen = 0;
	struct tu_snap snap;

	assert_int_equal(shmpool_elem_size(p), 16 + 4);
	assert_int_equal(shmpool_str_max_len(p), 16);
	uint64_t i = (uint64_t)assert_ok(shmpool_alloc(p, 0));

	/* A fresh slot holds the empty string. */
	assert_int_equal(shmpool_str_get(p, i, buf, sizeof buf), 0);

	assert_int_equal(shmpool_str_set(p, i, "hello", 5), 0);
	memset(buf, 0xEE, sizeof buf);
	assert_int_equal(shmpool_str_get(p, i, buf, sizeof buf), 5);
	assert_memory_equal(buf, "hello", 5);
	/* Not NUL-terminated: nothing written past the length. */
	assert_int_equal((unsigned char)buf[5], 0xEE);

	/* A small buffer gets @len bytes; the full length is returned. */
	memset(buf, 0xEE, sizeof buf);
	assert_int_equal(shmpool_str_get(p, i, buf, 2), 5);
	assert_memory_equal(buf, "he", 2);
	assert_int_equal((unsigned char)buf[2], 0xEE);
	assert_int_equal(shmpool_str_get(p, i, NULL, 0), 5);

	/* Embedded NUL bytes. */
	assert_int_equal(shmpool_str_set(p, i, "a\0b\0c", 5), 0);
	assert_int_equal(shmpool_str_get(p, i, buf, sizeof buf), 5);
	assert_memory_equal(buf, "a\0b\0c", 5);
	assert_int_equal(shmpool_str_set(p, i, "\0\0\0", 3), 0);
	assert_int_equal(shmpool_str_get(p, i, buf, sizeof buf), 3);
	assert_memory_equal(buf, "\0\0\0", 3);

	/* Empty string. */
	assert_int_equal(shmpool_str_set(p, i, "", 0), 0);
	assert_int_equal(shmpool_str_get(p, i, buf, sizeof buf), 0);

	/* Exactly max_len. */
	assert_int_equal(shmpool_str_set(p, i, "0123456789ABCDEF", 16), 0);
	assert_int_equal(shmpool_str_get(p, i, buf, sizeof buf), 16);
	assert_memory_equal(buf, "0123456789ABCDEF", 16);

	/* A shorter string after a longer one: only the new length counts. */
	assert_int_equal(shmpool_str_set(p, i, "xy", 2), 0);
	assert_int_equal(shmpool_str_get(p, i, buf, sizeof buf), 2);
	assert_memory_equal(buf, "xy", 2);

	/* Oversize: EMSGSIZE, old string intact. */
	tu_snapshot(p, &snap);
	assert_fails(shmpool_str_set(p, i, "0123456789ABCDEFG", 17), EMSGSIZE);
	tu_assert_unchanged(p, &snap);
	assert_int_equal(shmpool_str_get(p, i, buf, sizeof buf), 2);
	assert_memory_equal(buf, "xy", 2);

	/* set_trunc keeps the first max_len bytes. */
	assert_int_equal(shmpool_str_set_trunc(p, i, "0123456789abcdefXYZ", 19),
			 16);
	assert_int_equal(shmpool_str_get(p, i, buf, sizeof buf), 16);
	assert_memory_equal(buf, "0123456789abcdef", 16);
	assert_int_equal(shmpool_str_set_trunc(p, i, "short", 5), 5);
	assert_int_equal(shmpool_str_get(p, i, buf, sizeof buf), 5);
	assert_memory_equal(buf, "short", 5);

	/* slot_view of a Str slot: the string bytes and its length. */
	assert_int_equal(shmpool_slot_view(p, i, &view, &vlen), 0);
	assert_int_equal(vlen, 5);
	assert_memory_equal(view, "short", 5);

	/* alloc_set forms. */
	int64_t k = assert_ok(shmpool_str_alloc_set(p, "abc\0def", 7, 1.0));
	assert_int_equal(shmpool_str_get(p, (uint64_t)k, buf, sizeof buf), 7);
	assert_memory_equal(buf, "abc\0def", 7);
	assert_int_equal(shmpool_owner(p, (uint64_t)k), getpid());
	k = assert_ok(shmpool_str_alloc_set(p, "", 0, 0));
	assert_int_equal(shmpool_str_get(p, (uint64_t)k, buf, sizeof buf), 0);
	k = assert_ok(shmpool_str_alloc_set(p, "0123456789ABCDEF", 16, 0));
	assert_int_equal(shmpool_str_get(p, (uint64_t)k, buf, sizeof buf), 16);

	/* Oversize alloc_set: fails and changes nothing. */
	tu_snapshot(p, &snap);
	assert_fails(shmpool_str_alloc_set(p, "0123456789ABCDEFG", 17, 0),
		     EMSGSIZE);
	assert_fails(shmpool_str_alloc_set(p, "0123456789ABCDEFG", 17, -1),
		     EMSGSIZE);
	tu_assert_unchanged(p, &snap);

	/* The string of a freed and reallocated slot is empty again. */
	assert_int_equal(shmpool_free(p, (uint64_t)k), 0);
	assert_int_equal(shmpool_free(p, i), 0);
	while ((k = shmpool_try_alloc(p)) >= 0)
		assert_int_equal(
			shmpool_str_get(p, (uint64_t)k, buf, sizeof buf), 0);
	assert_int_equal(shmpool_close(p), 0);
}

/* A Str pool with a large max_len, and its layout. */
static void test_str_large(void **state)
{
	enum bk b = *(enum bk *)*state;
	enum { ML = 5000 };
	shmpool_t *p = mk(SHMPOOL_STR, b, 3, ML);
	static char big[ML + 1], back[ML + 1];

	assert_int_equal(shmpool_elem_size(p), ML + 4);
	for (int k = 0; k < ML + 1; k++)
		big[k] = (char)('a' + k % 26);
	uint64_t i = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	uint64_t j = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	assert_int_equal(shmpool_str_set(p, i, big, ML), 0);
	assert_int_equal(shmpool_str_set(p, j, "j", 1), 0);
	assert_int_equal(shmpool_str_get(p, i, back, sizeof back), ML);
	assert_memory_equal(back, big, ML);
	assert_fails(shmpool_str_set(p, j, big, ML + 1), EMSGSIZE);
	assert_int_equal(shmpool_str_get(p, j, back, sizeof back), 1);
	assert_int_equal(back[0], 'j');
	assert_int_equal(shmpool_str_get(p, i, back, sizeof back), ML);
	assert_memory_equal(back, big, ML);
	assert_int_equal(shmpool_close(p), 0);
}

/* Every typed call on every other variant fails with EPROTOTYPE. */
static void test_wrong_variant(void **state)
{
	(void)state;
	const enum shmpool_variant vs[] = { SHMPOOL_RAW, SHMPOOL_I64,
					    SHMPOOL_I32, SHMPOOL_F64,
					    SHMPOOL_STR };
	for (size_t n = 0; n < sizeof vs / sizeof vs[0]; n++) {
		enum shmpool_variant v = vs[n];
		/* raw slots of 8 bytes: the size of an i64 must not matter */
		shmpool_t *p = mk(v, BK_ANON, 8, 8);
		uint64_t i = (uint64_t)assert_ok(shmpool_alloc(p, 0));
		int64_t i64;
		int32_t i32;
		double d;
		char buf[16];
		struct tu_snap snap;

		tu_snapshot(p, &snap);
		if (v != SHMPOOL_I64) {
			assert_fails(shmpool_i64_get(p, i, &i64), EPROTOTYPE);
			assert_fails(shmpool_i64_set(p, i, 1), EPROTOTYPE);
			assert_fails(shmpool_i64_cas(p, i, 0, 1), EPROTOTYPE);
			assert_fails(shmpool_i64_cmpxchg(p, i, 0, 1, &i64),
				     EPROTOTYPE);
			assert_fails(shmpool_i64_xchg(p, i, 1, &i64),
				     EPROTOTYPE);
			assert_fails(shmpool_i64_add(p, i, 1, &i64),
				     EPROTOTYPE);
			assert_fails(shmpool_i64_incr(p, i, &i64), EPROTOTYPE);
			assert_fails(shmpool_i64_decr(p, i, &i64), EPROTOTYPE);
			assert_fails(shmpool_i64_alloc_set(p, 1, 0),
				     EPROTOTYPE);
		}
		if (v != SHMPOOL_I32) {
			assert_fails(shmpool_i32_get(p, i, &i32), EPROTOTYPE);
			assert_fails(shmpool_i32_set(p, i, 1), EPROTOTYPE);
			assert_fails(shmpool_i32_cas(p, i, 0, 1), EPROTOTYPE);
			assert_fails(shmpool_i32_cmpxchg(p, i, 0, 1, &i32),
				     EPROTOTYPE);
			assert_fails(shmpool_i32_xchg(p, i, 1, &i32),
				     EPROTOTYPE);
			assert_fails(shmpool_i32_add(p, i, 1, &i32),
				     EPROTOTYPE);
			assert_fails(shmpool_i32_incr(p, i, &i32), EPROTOTYPE);
			assert_fails(shmpool_i32_decr(p, i, &i32), EPROTOTYPE);
			assert_fails(shmpool_i32_alloc_set(p, 1, 0),
				     EPROTOTYPE);
		}
		if (v != SHMPOOL_F64) {
			assert_fails(shmpool_f64_get(p, i, &d), EPROTOTYPE);
			assert_fails(shmpool_f64_set(p, i, 1.5), EPROTOTYPE);
			assert_fails(shmpool_f64_alloc_set(p, 1.5, 0),
				     EPROTOTYPE);
		}
		if (v != SHMPOOL_STR) {
			assert_fails(shmpool_str_get(p, i, buf, sizeof buf),
				     EPROTOTYPE);
			assert_fails(shmpool_str_set(p, i, "a", 1),
				     EPROTOTYPE);
			assert_fails(shmpool_str_set_trunc(p, i, "a", 1),
				     EPROTOTYPE);
			assert_fails(shmpool_str_max_len(p), EPROTOTYPE);
			assert_fails(shmpool_str_alloc_set(p, "a", 1, 0),
				     EPROTOTYPE);
		}
		tu_assert_unchanged(p, &snap);
		/* nothing was written to the slot either */
		unsigned char raw[32];
		memset(raw, 0xEE, sizeof raw);
		int64_t n_raw = shmpool_get(p, i, raw, sizeof raw);
		assert_int_equal(n_raw, shmpool_elem_size(p));
		for (int64_t k = 0; k < n_raw; k++)
			assert_int_equal(raw[k], 0);
		assert_int_equal(shmpool_close(p), 0);
	}
}

/* Typed pools reopened by path or fd keep their variant and max_len. */
static void test_reopen_typed(void **state)
{
	(void)state;
	const char *path = tu_path("reopen-str");
	shmpool_t *p = assert_pool(shmpool_str_new(path, 5, 33));
	uint64_t i = (uint64_t)assert_ok(shmpool_str_alloc_set(p, "kept", 4, 0));
	shmpool_t *q = assert_pool(shmpool_str_new(path, 5, 33));
	char buf[8];
	assert_int_equal(shmpool_str_max_len(q), 33);
	assert_int_equal(shmpool_str_get(q, i, buf, sizeof buf), 4);
	assert_memory_equal(buf, "kept", 4);
	assert_int_equal(shmpool_close(q), 0);

	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	o.variant = SHMPOOL_ANY;
	o.backing = SHMPOOL_BACKING_FILE;
	o.name = path;
	q = assert_pool(shmpool_open(&o));
	assert_int_equal(shmpool_variant(q), SHMPOOL_STR);
	assert_int_equal(shmpool_str_max_len(q), 33);
	assert_int_equal(shmpool_elem_size(q), 37);
	assert_int_equal(shmpool_close(q), 0);
	assert_int_equal(shmpool_close(p), 0);

	p = assert_pool(shmpool_i32_new_memfd("reopen-i32", 3));
	i = (uint64_t)assert_ok(shmpool_i32_alloc_set(p, -9, 0));
	q = assert_pool(shmpool_new_from_fd(shmpool_memfd(p)));
	int32_t v;
	assert_int_equal(shmpool_variant(q), SHMPOOL_I32);
	assert_int_equal(shmpool_elem_size(q), 4);
	assert_int_equal(shmpool_i32_get(q, i, &v), 0);
	assert_int_equal(v, -9);
	assert_int_equal(shmpool_i32_incr(q, i, NULL), 0);
	assert_int_equal(shmpool_i32_get(p, i, &v), 0);
	assert_int_equal(v, -8);
	assert_int_equal(shmpool_close(q), 0);
	assert_int_equal(shmpool_close(p), 0);
}

#define TB(fn, b)                                                              \
	{ .name = #fn "(" #b ")", .test_func = fn, .setup_func = tu_setup_dir, \
	  .teardown_func = tu_teardown_dir, .initial_state = &(b) }
#define TALL(fn) TB(fn, bk_file), TB(fn, bk_anon), TB(fn, bk_memfd)

int main(void)
{
	tu_init(120);
	const struct CMUnitTest tests[] = {
		TALL(test_i64),
		TALL(test_i64_wide),
		TALL(test_i32),
		TALL(test_i32_neighbours),
		TALL(test_f64),
		TALL(test_str),
		TALL(test_str_large),
		TB(test_wrong_variant, bk_anon),
		TB(test_reopen_typed, bk_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
