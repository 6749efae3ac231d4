/*
 * test_hostile.c - hostile input: corrupt, truncated, foreign and
 * half-created files, files of other users, racing creators, a peer that
 * scribbles over the shared metadata while others operate, and descriptor
 * hygiene (O_CLOEXEC, sealed memfds).  Symlinks at the path and files of
 * another variant are in test_errors.
 *
 * The rule under test (DESIGN.md, invariant 5): bad input gets a clear
 * error (EBADMSG and a message for a bad file) or is handled; it never
 * crashes the caller nor makes it touch memory outside the mapping.  Every
 * open of a damaged file and every API call on it runs in a forked child,
 * so a crash shows up as a signal in the wait status (and, in a sanitizer
 * build, as an ASan/UBSan report and a non-zero exit) instead of killing
 * the test program.
 *
 * The offsets of the metadata regions are read from the pool's own header
 * (lib/shmpool-internal.h describes it), so the test follows the layout
 * when it changes.
 *
 * SHMPOOL_TEST_QUICK=1 samples the corruption offsets more sparsely (for
 * slow runs such as valgrind).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <dirent.h>
#include <grp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "shmpool-internal.h"

#define LIST_FDS_FLAG "--list-fds"

/* Exit codes of a probe child. */
#define PROBE_OPENED 0   /* opened, and every call returned */
#define PROBE_REJECTED 10 /* open failed with EBADMSG and a message */
#define PROBE_OTHER 11   /* open failed with another errno, or no message */

static int quick(void)
{
	const char *q = getenv("SHMPOOL_TEST_QUICK");
	return q != NULL && q[0] != '\0' && q[0] != '0';
}

/* xorshift64*: reproducible pseudo-random bytes. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

/* ---- files ------------------------------------------------------------ */


/* ---- exercising a (possibly damaged) pool ------------------------------ */

static int free_every_other(shmpool_t *p, uint64_t idx, void *arg)
{
	unsigned *n = arg;
	if ((*n)++ % 2)
		shmpool_free(p, idx);
	return 0;
}

/*
 * Call every API that reads the shared metadata.  Return values are
 * ignored: errors are fine on a damaged pool, crashes and hangs are not.
 * No call may wait: timeouts are 0 or a millisecond.
 */
static void exercise(shmpool_t *p)
{
	uint64_t cap = shmpool_capacity(p);
	uint64_t idx[8], out[256];
	struct shmpool_stats st;
	unsigned char buf[64];
	enum shmpool_variant v = shmpool_variant(p);

	for (int round = 0; round < 2; round++) {
		int64_t a = shmpool_try_alloc(p);
		int64_t b = shmpool_alloc(p, 0.001);
		if (a >= 0) {
			shmpool_owner(p, (uint64_t)a);
			shmpool_get(p, (uint64_t)a, buf, sizeof buf);
			if (v == SHMPOOL_RAW)
				shmpool_set_trunc(p, (uint64_t)a, "hostile", 7);
			else if (v == SHMPOOL_STR)
				shmpool_str_set_trunc(p, (uint64_t)a, "hostile",
						      7);
			else if (v == SHMPOOL_I64)
				shmpool_i64_add(p, (uint64_t)a, 3, NULL);
			else if (v == SHMPOOL_I32)
				shmpool_i32_add(p, (uint64_t)a, 3, NULL);
			else if (v == SHMPOOL_F64)
				shmpool_f64_set(p, (uint64_t)a, 1.5);
			if (v == SHMPOOL_STR)
				shmpool_str_get(p, (uint64_t)a, buf,
						sizeof buf);
			const void *vp;
			size_t vl;
			if (shmpool_slot_view(p, (uint64_t)a, &vp, &vl) == 0 &&
			    vl > 0)
				buf[0] = *(const volatile unsigned char *)vp;
			shmpool_free(p, (uint64_t)a);
		}
		uint64_t n = cap < 4 ? cap : 4;
		if (shmpool_alloc_n(p, idx, n, 0) == (int64_t)n)
			shmpool_free_n(p, idx, n);
		shmpool_alloc_n(p, idx, n, 0.001);
		shmpool_recover_stale(p);
		shmpool_stats(p, &st);
		shmpool_used(p);
		shmpool_available(p);
		int64_t k = shmpool_allocated_slots(p, out, 256);
		for (int64_t i = 0; i < k && i < 256; i++)
			shmpool_owner(p, out[i]);
		for (uint64_t i = 0; i < cap && i < 200; i++) {
			shmpool_is_allocated(p, i);
			shmpool_owner(p, i);
		}
		unsigned cnt = 0;
		shmpool_each_allocated(p, free_every_other, &cnt);
		/* frees of slots held by others: hand-off through owner CAS */
		for (uint64_t i = 0; i < cap && i < 70; i += 3)
			shmpool_free(p, i);
		shmpool_adopt(p, 0);
		if (b >= 0)
			shmpool_free(p, (uint64_t)b);
		shmpool_reset(p);
		shmpool_recover_stale(p);
		shmpool_stats(p, &st);
	}
}

/* Child: open @arg (a path) without creating, exercise it. */
static int probe_child(void *arg)
{
	const char *path = arg;
	errno = 0;
	shmpool_t *p = tu_open_existing(path);
	if (p == NULL) {
		int e = errno;
		const char *m = shmpool_errmsg();
		if (e == EBADMSG && m != NULL && m[0] != '\0')
			return PROBE_REJECTED;
		fprintf(stderr, "probe %s: open failed with %s (%s)\n", path,
			tu_errname(e), m ? m : "");
		return PROBE_OTHER;
	}
	exercise(p);
	shmpool_close(p);
	return PROBE_OPENED;
}

/* Run probe_child(@path) in a bounded child; returns its wait status. */
static int probe(const char *path)
{
	return tu_run_child(probe_child, (void *)path, 20);
}

static int probe_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- a populated pool image -------------------------------------------- */

struct mkpool {
	const char *path;
	enum shmpool_variant variant;
	uint64_t capacity, elem;
	int hold; /* slots the creating child keeps when it dies */
};

/* Child: create the pool, allocate, free some, die holding @hold slots
 * (so the image has dead users that recovery must settle). */
static int mkpool_child(void *arg)
{
	const struct mkpool *m = arg;
	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	uint64_t idx[8];

	o.backing = SHMPOOL_BACKING_FILE;
	o.name = m->path;
	o.variant = m->variant;
	o.capacity = m->capacity;
	o.elem_size = m->elem;
	o.max_users = 64;
	shmpool_t *p = shmpool_open(&o);
	CHILD_CHECK(p != NULL, 1);
	for (int i = 0; i < m->hold; i++)
		CHILD_CHECK(shmpool_alloc(p, 0) >= 0, 2);
	CHILD_CHECK(shmpool_alloc_n(p, idx, 5, 0) == 5, 3);
	CHILD_CHECK(shmpool_free_n(p, idx, 3) == 3, 4);
	int64_t a = shmpool_alloc(p, 0);
	CHILD_CHECK(a >= 0, 5);
	CHILD_CHECK(shmpool_free(p, (uint64_t)a) == 0, 6);
	return 0; /* dies holding hold + 2 slots */
}

static void make_pool(const char *path, enum shmpool_variant v, uint64_t cap,
		      uint64_t elem, int hold)
{
	struct mkpool m = { path, v, cap, elem, hold };
	unlink(path);
	tu_wait_ok(tu_fork(mkpool_child, &m, 0), 10);
	/* a second dead user */
	m.hold = 1;
	tu_wait_ok(tu_fork(mkpool_child, &m, 0), 10);
}

/* Restore @img into the file at @path (same inode), size @len. */
static void restore(const char *path, const unsigned char *img, size_t len)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)len), 0);
	assert_int_equal(pwrite(fd, img, len, 0), (ssize_t)len);
	close(fd);
}

static void poke(const char *path, size_t off, unsigned char val)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &val, 1, (off_t)off), 1);
	close(fd);
}

/* ---- single-byte corruption ------------------------------------------- */

struct corrupt_stats {
	unsigned tried, rejected, opened;
};
static struct corrupt_stats corrupt_total;

/*
 * Corrupt byte @off of the image in two ways (xor 0xFF, a random other
 * value) and probe.  @must_reject: the byte is covered by the header
 * checks, so the open has to fail with EBADMSG.  Failures are appended to
 * @fails.
 */
static void corrupt_one(const char *path, const unsigned char *img, size_t len,
			size_t off, int must_reject, char *fails, size_t fsz)
{
	unsigned char vals[2];
	vals[0] = img[off] ^ 0xFF;
	do
		vals[1] = (unsigned char)rnd();
	while (vals[1] == img[off]);

	for (int k = 0; k < 2; k++) {
		restore(path, img, len);
		poke(path, off, vals[k]);
		int st = probe(path);
		int code = probe_code(st);
		corrupt_total.tried++;
		if (code == PROBE_REJECTED)
			corrupt_total.rejected++;
		else if (code == PROBE_OPENED)
			corrupt_total.opened++;
		if (code == PROBE_REJECTED ||
		    (code == PROBE_OPENED && !must_reject))
			continue;
		char one[96];
		snprintf(one, sizeof one, " [%zu=0x%02x: %s]", off, vals[k],
			 code == PROBE_OPENED ? "opened"
			 : code == PROBE_OTHER ? "wrong errno"
					       : tu_status_str(st));
		if (strlen(fails) + strlen(one) + 1 < fsz)
			strcat(fails, one);
	}
}

static void read_hdr(const unsigned char *img, size_t len, struct pool_hdr *h)
{
	assert_true(len >= sizeof *h);
	memcpy(h, img, sizeof *h);
	assert_true(h->magic == SHMPOOL_MAGIC_READY);
	assert_true(h->total_size <= len);
}

/* Header and fixed shared lines of pools of three variants. */
static void test_corrupt_header_bytes(void **state)
{
	(void)state;
	static const struct {
		enum shmpool_variant v;
		uint64_t cap, elem;
	} kinds[] = {
		{ SHMPOOL_RAW, 130, 24 },
		{ SHMPOOL_STR, 70, 13 },
		{ SHMPOOL_I64, 64, 0 },
	};
	char fails[4096] = "";
	unsigned before = corrupt_total.tried;

	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		const char *path = tu_path("hdr.pool");
		make_pool(path, kinds[k].v, kinds[k].cap, kinds[k].elem, 4);
		size_t len;
		unsigned char *img = tu_read_file(path, &len);
		struct pool_hdr h;
		read_hdr(img, len, &h);
		/* the immutable header must reject every change; the shared
		 * lines after it may hold anything */
		size_t step = quick() && k > 0 ? 5 : 1;
		for (size_t off = 0; off < OFF_FIXED_END; off += step)
			corrupt_one(path, img, len, off,
				    off < sizeof(struct pool_hdr), fails,
				    sizeof fails);
		free(img);
	}
	print_message("# header corruptions tried: %u\n",
		      corrupt_total.tried - before);
	if (fails[0])
		fail_msg("corrupt header bytes not handled:%s", fails);
}

/* A sample of each metadata region: waiter mask, users, bitmap, owners. */
static void test_corrupt_metadata(void **state)
{
	(void)state;
	const char *path = tu_path("meta.pool");
	char fails[4096] = "";
	unsigned before = corrupt_total.tried;
	int q = quick();

	make_pool(path, SHMPOOL_RAW, 130, 24, 6);
	size_t len;
	unsigned char *img = tu_read_file(path, &len);
	struct pool_hdr h;
	read_hdr(img, len, &h);
	assert_true(h.off_waitmask < h.off_users && h.off_users < h.off_bitmap &&
		    h.off_bitmap < h.off_owner && h.off_owner < h.off_data);

	/* waiter mask: every byte of its first line */
	for (size_t off = h.off_waitmask; off < h.off_waitmask + 64;
	     off += q ? 3 : 1)
		corrupt_one(path, img, len, off, 0, fails, sizeof fails);
	/* user records: every byte of the first three (the ones the dead
	 * creators used), then a sample of the rest */
	size_t urec = sizeof(struct pool_user);
	for (size_t off = h.off_users; off < h.off_users + 3 * urec;
	     off += q ? 3 : 1)
		corrupt_one(path, img, len, off, 0, fails, sizeof fails);
	for (size_t off = h.off_users + 3 * urec; off < h.off_bitmap;
	     off += q ? 97 : 29)
		corrupt_one(path, img, len, off, 0, fails, sizeof fails);
	/* bitmap: every byte (lock bits, bits beyond capacity ...) */
	for (size_t off = h.off_bitmap; off < h.off_owner; off += q ? 3 : 1)
		corrupt_one(path, img, len, off, 0, fails, sizeof fails);
	/* owner array: every byte */
	for (size_t off = h.off_owner; off < h.off_data; off += q ? 5 : 1)
		corrupt_one(path, img, len, off, 0, fails, sizeof fails);
	free(img);
	print_message("# metadata corruptions tried: %u\n",
		      corrupt_total.tried - before);
	print_message("# corruptions so far: %u (rejected %u, opened and "
		      "survived %u)\n",
		      corrupt_total.tried, corrupt_total.rejected,
		      corrupt_total.opened);
	if (fails[0])
		fail_msg("corrupt metadata not handled:%s", fails);
}

/* Multi-byte damage: whole 8-byte words of every region set to extremes. */
static void test_corrupt_words(void **state)
{
	(void)state;
	const char *path = tu_path("words.pool");
	char fails[4096] = "";
	static const uint64_t vals[] = { ~0ull, 0x8000000000000000ull,
					 0x7FFFFFFFFFFFFFFFull, 0xFFFFFFFFull,
					 1 };

	make_pool(path, SHMPOOL_STR, 130, 20, 5);
	size_t len;
	unsigned char *img = tu_read_file(path, &len);
	struct pool_hdr h;
	read_hdr(img, len, &h);
	size_t step = quick() ? 64 : 8;
	for (size_t off = OFF_SHARED; off + 8 <= h.off_data; off += step) {
		if (off >= h.off_users + 4 * sizeof(struct pool_user) &&
		    off < h.off_bitmap)
			continue; /* untouched records: sampled above */
		for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
			restore(path, img, len);
			int fd = open(path, O_RDWR | O_CLOEXEC);
			assert_true(fd >= 0);
			assert_int_equal(pwrite(fd, &vals[k], 8, (off_t)off),
					 8);
			close(fd);
			int st = probe(path);
			int code = probe_code(st);
			corrupt_total.tried++;
			/* the header is intact: the pool must open and
			 * survive every call */
			if (code == PROBE_OPENED) {
				corrupt_total.opened++;
				continue;
			}
			char one[96];
			snprintf(one, sizeof one, " [%zu=%#llx: %s]", off,
				 (unsigned long long)vals[k],
				 code == PROBE_REJECTED ? "rejected"
				 : code == PROBE_OTHER  ? "wrong errno"
							: tu_status_str(st));
			if (strlen(fails) + strlen(one) + 1 < sizeof fails)
				strcat(fails, one);
		}
	}
	/* bytes of the data region are the application's: never checked */
	free(img);
	print_message("# corruptions in total: %u (rejected %u, opened and "
		      "survived %u)\n",
		      corrupt_total.tried, corrupt_total.rejected,
		      corrupt_total.opened);
	if (fails[0])
		fail_msg("corrupt metadata words not handled:%s", fails);
}

/*
 * An owner entry that names the caller while the slot's bitmap bit is
 * clear: only a corrupt pool shows one.  The fast path of shmpool_free
 * trusts the owner entry without loading the bit; the release then finds
 * the bit clear, and the call must fail with ENOENT without counting a
 * free, and leave the slot claimable.
 */
static void test_owner_without_bit(void **state)
{
	(void)state;
	const char *path = tu_path("ownerbit.pool");
	shmpool_t *p = shmpool_new(path, 10, 8);
	assert_non_null(p);
	int64_t x = shmpool_alloc(p, 0), y = shmpool_alloc(p, 0);
	assert_true(x >= 0 && y >= 0);

	size_t len;
	unsigned char *img = tu_read_file(path, &len);
	struct pool_hdr h;
	read_hdr(img, len, &h);
	free(img);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
				fd, 0);
	assert_true(m != MAP_FAILED);
	close(fd);
	/* 10 slots: one bitmap word */
	_Atomic uint64_t *word = (_Atomic uint64_t *)(m + h.off_bitmap);
	atomic_fetch_and(word, ~(1ull << x));
	assert_int_equal(shmpool_used(p), 2);

	errno = 0;
	assert_int_equal(shmpool_free(p, (uint64_t)x), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(shmpool_used(p), 2); /* no free counted */
	assert_int_equal(atomic_load(word) & (1ull << x), 0);
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)y), 1);
	errno = 0;
	assert_int_equal(shmpool_free(p, (uint64_t)x), -1); /* again */
	assert_int_equal(errno, ENOENT);

	/* every slot but y can be claimed, x among them */
	uint64_t got[9];
	assert_int_equal(shmpool_alloc_n(p, got, 9, 0), 9);
	int seen = 0;
	for (int i = 0; i < 9; i++)
		seen |= got[i] == (uint64_t)x;
	assert_true(seen);
	assert_int_equal(shmpool_try_alloc(p), -1);
	assert_int_equal(shmpool_free_n(p, got, 9), 9);
	assert_int_equal(shmpool_free(p, (uint64_t)y), 0);
	munmap(m, len);
	assert_int_equal(shmpool_close(p), 0);
}

/* ---- truncation --------------------------------------------------------- */

struct create_arg {
	const char *path;
	uint64_t cap, elem;
};

static int create_child(void *arg)
{
	const struct create_arg *c = arg;
	errno = 0;
	shmpool_t *p = shmpool_new(c->path, c->cap, c->elem);
	if (p == NULL) {
		int e = errno;
		return e == EBADMSG && shmpool_errmsg()[0] ? PROBE_REJECTED
							   : PROBE_OTHER;
	}
	exercise(p);
	shmpool_close(p);
	return PROBE_OPENED;
}

static void test_truncation(void **state)
{
	(void)state;
	const char *path = tu_path("trunc.pool");
	make_pool(path, SHMPOOL_RAW, 130, 24, 3);
	size_t len;
	unsigned char *img = tu_read_file(path, &len);
	struct pool_hdr h;
	read_hdr(img, len, &h);
	const uint64_t sizes[] = {
		0,
		1,
		7,
		8,
		63,
		64,
		sizeof(struct pool_hdr) - 1,
		sizeof(struct pool_hdr),
		OFF_FIXED_END - 1,
		OFF_FIXED_END,
		h.off_waitmask,
		h.off_users,
		h.off_users + 1,
		h.off_bitmap,
		h.off_owner,
		h.off_data,
		h.off_data + 1,
		h.total_size - 4096,
		h.total_size - 1,
	};
	char fails[2048] = "";
	struct create_arg ca = { path, 130, 24 };

	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		uint64_t sz = sizes[k];
		/* without creation rights: always rejected */
		restore(path, img, len);
		assert_int_equal(truncate(path, (off_t)sz), 0);
		int st = probe(path);
		int ok1 = probe_code(st) == PROBE_REJECTED;
		struct stat sb;
		assert_int_equal(stat(path, &sb), 0);
		int ok2 = (uint64_t)sb.st_size == sz; /* not rewritten */
		/* with creation rights: an empty file is initialised (a crash
		 * right after creating it), anything else rejected */
		st = tu_run_child(create_child, &ca, 20);
		int ok3 = probe_code(st) ==
			  (sz == 0 ? PROBE_OPENED : PROBE_REJECTED);
		assert_int_equal(stat(path, &sb), 0);
		int ok4 = sz == 0 ? sb.st_size > 0 /* initialised */
				  : (uint64_t)sb.st_size == sz;
		if (!(ok1 && ok2 && ok3 && ok4)) {
			char one[96];
			snprintf(one, sizeof one, " [%llu: %d%d%d%d %s]",
				 (unsigned long long)sz, ok1, ok2, ok3, ok4,
				 tu_status_str(st));
			strncat(fails, one, sizeof fails - strlen(fails) - 1);
		}
		corrupt_total.tried += 2;
	}
	/* a bigger file than the layout needs is fine */
	restore(path, img, len);
	assert_int_equal(truncate(path, (off_t)len + 4096), 0);
	assert_int_equal(probe_code(probe(path)), PROBE_OPENED);
	free(img);
	if (fails[0])
		fail_msg("truncated files not rejected (size: nocreate-rejected "
			 "size-kept create-ok size-ok):%s",
			 fails);
}

/* ---- foreign files ------------------------------------------------------ */

static void check_rejected_untouched(const char *path)
{
	size_t len;
	unsigned char *before = tu_read_file(path, &len);
	assert_int_equal(probe_code(probe(path)), PROBE_REJECTED);
	struct create_arg ca = { path, 10, 8 };
	assert_int_equal(probe_code(tu_run_child(create_child, &ca, 20)),
			 PROBE_REJECTED);
	tu_assert_file_is(path, before, len);
	free(before);
}

static void test_foreign_files(void **state)
{
	(void)state;
	const char *txt = tu_path("text");
	const char *bin = tu_path("random");
	const char *elf = tu_path("elf");
	const char *big = tu_path("big-random");
	char text[4096];
	unsigned char junk[4096];

	text[0] = '\0';
	while (strlen(text) < sizeof text - 64)
		strcat(text, "[global]\nworkers = 4 # not a pool at all\n");
	tu_write_file(txt, text, strlen(text));
	for (size_t k = 0; k < sizeof junk; k++)
		junk[k] = (unsigned char)rnd();
	tu_write_file(bin, junk, sizeof junk);
	/* another program's binary: this test program itself */
	int efd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	assert_true(efd >= 0);
	unsigned char ebuf[65536];
	ssize_t elen = read(efd, ebuf, sizeof ebuf);
	close(efd);
	assert_true(elen > 4096);
	tu_write_file(elf, ebuf, (size_t)elen);
	/* random bytes as long as a real pool, with a READY magic: the
	 * header checks, not the magic, must catch it */
	unsigned char *bj = malloc(65536);
	assert_non_null(bj);
	for (size_t k = 0; k < 65536; k++)
		bj[k] = (unsigned char)rnd();
	uint64_t ready = SHMPOOL_MAGIC_READY;
	memcpy(bj, &ready, 8);
	tu_write_file(big, bj, 65536);
	free(bj);

	check_rejected_untouched(txt);
	check_rejected_untouched(bin);
	check_rejected_untouched(elf);
	check_rejected_untouched(big);

	/* not a regular file */
	const char *fifo = tu_path("fifo");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_fails_null(shmpool_new(fifo, 10, 8), EBADMSG);
	assert_fails_null(tu_open_existing(fifo), EBADMSG);
	/* a directory */
	assert_null(shmpool_new(tu_dir(), 10, 8));
	assert_int_equal(errno, EISDIR);
}

/* ---- other users' files, modes ---------------------------------------- */

#define NOBODY 65534

struct asuser {
	const char *path;
	uid_t uid;
	int want_errno; /* 0: must open */
};

static int asuser_child(void *arg)
{
	const struct asuser *a = arg;
	CHILD_CHECK(setgroups(0, NULL) == 0 || errno == EPERM, 1);
	CHILD_CHECK(setgid(a->uid) == 0, 2);
	CHILD_CHECK(setuid(a->uid) == 0, 3);
	errno = 0;
	shmpool_t *p = tu_open_existing(a->path);
	if (a->want_errno) {
		CHILD_CHECK(p == NULL, 4);
		CHILD_CHECK(errno == a->want_errno, 5);
		CHILD_CHECK(shmpool_errmsg()[0] != '\0', 6);
		/* and without NOCREATE: still no way in, nothing created */
		CHILD_CHECK(shmpool_new(a->path, 8, 8) == NULL, 7);
		CHILD_CHECK(errno == a->want_errno, 8);
		return 0;
	}
	CHILD_CHECK(p != NULL, 9);
	int64_t s = shmpool_alloc(p, 0);
	CHILD_CHECK(s >= 0, 10);
	CHILD_CHECK(shmpool_free(p, (uint64_t)s) == 0, 11);
	CHILD_CHECK(shmpool_close(p) == 0, 12);
	return 0;
}

/*
 * The library opens any file the caller can open read-write; it does not
 * check the owner (a pool shared between users is a group- or other-
 * writable file made with options.mode).  Default mode 0600: other users
 * (without CAP_DAC_OVERRIDE) get EACCES.
 */
static void test_other_users(void **state)
{
	(void)state;
	mode_t old = umask(0);
	const char *mine = tu_path("mine.pool");
	const char *theirs = tu_path("theirs.pool");
	const char *shared = tu_path("shared.pool");
	shmpool_t *p = shmpool_new(mine, 8, 8);
	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	o.backing = SHMPOOL_BACKING_FILE;
	o.name = shared;
	o.capacity = 8;
	o.elem_size = 8;
	o.mode = 0666;
	shmpool_t *q = shmpool_open(&o);
	umask(old);
	assert_non_null(p);
	assert_non_null(q);
	struct stat st;
	assert_int_equal(stat(mine, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(shared, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0666);
	shmpool_close(p);
	shmpool_close(q);

	if (geteuid() != 0) {
		print_message("# not root: other-user cases skipped\n");
		skip();
	}
	/* the directory must be traversable by the other user */
	assert_int_equal(chmod(tu_dir(), 0711), 0);
	/* a 0600 pool of root: nobody is refused */
	struct asuser a = { mine, NOBODY, EACCES };
	tu_wait_ok(tu_fork(asuser_child, &a, 0), 10);
	/* a 0600 pool of nobody: root opens it (root may open any file) and
	 * so does nobody */
	make_pool(theirs, SHMPOOL_RAW, 8, 8, 0);
	assert_int_equal(chown(theirs, NOBODY, NOBODY), 0);
	shmpool_t *r = assert_pool(tu_open_existing(theirs));
	assert_int_equal(shmpool_recover_stale(r), 5);
	assert_int_equal(shmpool_close(r), 0);
	a.path = theirs;
	a.want_errno = 0;
	tu_wait_ok(tu_fork(asuser_child, &a, 0), 10);
	/* a 0666 pool: everybody */
	a.path = shared;
	tu_wait_ok(tu_fork(asuser_child, &a, 0), 10);
}

/* ---- racing creators ------------------------------------------------- */

#define RACERS 8

struct race {
	_Atomic int opened;
	uint64_t slot[RACERS];
	char path[512];
	int gate;   /* read end: EOF opens the gate */
	int gate_w; /* write end, closed by each racer */
};

static struct race *race;
static int racer_no;

static int racer_child(void *arg)
{
	(void)arg;
	char c;
	close(race->gate_w);
	/* all racers block here until the parent closes the write end */
	while (read(race->gate, &c, 1) < 0 && errno == EINTR)
		;
	shmpool_t *p = shmpool_new(race->path, 77, 16);
	CHILD_CHECK(p != NULL, 1);
	CHILD_CHECK(shmpool_capacity(p) == 77, 2);
	CHILD_CHECK(shmpool_elem_size(p) == 16, 3);
	int64_t s = shmpool_alloc(p, 0);
	CHILD_CHECK(s >= 0, 4);
	race->slot[racer_no] = (uint64_t)s;
	atomic_fetch_add(&race->opened, 1);
	double dl = tu_now() + 10;
	while (atomic_load(&race->opened) < RACERS && tu_now() < dl)
		tu_sleep(0.001);
	CHILD_CHECK(atomic_load(&race->opened) == RACERS, 5);
	/* everyone's slot is visible here: one pool */
	uint64_t out[RACERS + 1];
	CHILD_CHECK(shmpool_allocated_slots(p, out, RACERS + 1) == RACERS, 6);
	for (int i = 0; i < RACERS; i++)
		CHILD_CHECK(shmpool_is_allocated(p, race->slot[i]) == 1, 7);
	return 0;
}

static void test_racing_creators(void **state)
{
	(void)state;
	int rounds = quick() ? 3 : 25;
	race = tu_shared_mem(sizeof *race);
	for (int r = 0; r < rounds; r++) {
		memset(race, 0, sizeof *race);
		snprintf(race->path, sizeof race->path, "%s",
			 tu_path("race.pool"));
		unlink(race->path);
		int fds[2];
		tu_pipe(fds);
		race->gate = fds[0];
		race->gate_w = fds[1];
		pid_t pids[RACERS];
		for (int i = 0; i < RACERS; i++) {
			racer_no = i;
			pids[i] = tu_fork(racer_child, NULL, 20);
		}
		tu_sleep(0.01);
		close(fds[1]); /* go */
		for (int i = 0; i < RACERS; i++)
			tu_wait_ok(pids[i], 20);
		close(fds[0]);
		/* distinct slots: no double allocation across the racers */
		for (int i = 0; i < RACERS; i++)
			for (int j = i + 1; j < RACERS; j++)
				assert_true(race->slot[i] != race->slot[j]);
		shmpool_t *p = assert_pool(tu_open_existing(race->path));
		assert_int_equal(shmpool_capacity(p), 77);
		assert_int_equal(shmpool_allocated_slots(p, NULL, 0), RACERS);
		assert_int_equal(shmpool_recover_stale(p), RACERS);
		assert_int_equal(shmpool_used(p), 0);
		assert_int_equal(shmpool_close(p), 0);
	}
	tu_shared_free(race, sizeof *race);
}

/* ---- a crash between create and init -------------------------------- */

static void test_half_created(void **state)
{
	(void)state;
	const char *path = tu_path("half.pool");
	uint64_t init = SHMPOOL_MAGIC_INIT;
	struct create_arg ca = { path, 40, 16 };

	/* 1. INIT magic only: the creator died right after its first write */
	tu_write_file(path, &init, 8);
	assert_int_equal(probe_code(probe(path)), PROBE_REJECTED);
	tu_assert_file_is(path, &init, 8);
	assert_int_equal(probe_code(tu_run_child(create_child, &ca, 20)),
			 PROBE_OPENED);
	assert_int_equal(probe_code(probe(path)), PROBE_OPENED);

	/* 2. INIT magic, full size, garbage everywhere (died while filling) */
	size_t n = 65536;
	unsigned char *g = malloc(n);
	assert_non_null(g);
	for (size_t k = 0; k < n; k++)
		g[k] = (unsigned char)rnd();
	memcpy(g, &init, 8);
	tu_write_file(path, g, n);
	assert_int_equal(probe_code(probe(path)), PROBE_REJECTED);
	shmpool_t *p = assert_pool(shmpool_new(path, 40, 16));
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(shmpool_allocated_slots(p, NULL, 0), 0);
	struct shmpool_stats st = tu_stats(p);
	assert_int_equal(st.users, 0);
	assert_int_equal(st.waiters, 0);
	assert_int_equal(st.allocs, 0);
	uint64_t out[40];
	assert_int_equal(shmpool_alloc_n(p, out, 40, 0), 40);
	assert_int_equal(shmpool_close(p), 0);

	/* 3. INIT magic with another program's idea of the size: the
	 * re-initialisation uses the caller's capacity */
	memcpy(g, &init, 8);
	tu_write_file(path, g, 100);
	p = assert_pool(shmpool_i32_new(path, 1000));
	assert_int_equal(shmpool_capacity(p), 1000);
	assert_int_equal(shmpool_variant(p), SHMPOOL_I32);
	assert_int_equal(shmpool_close(p), 0);
	free(g);

	/* 4. an empty file (died before writing anything) */
	tu_write_file(path, "", 0);
	assert_int_equal(probe_code(probe(path)), PROBE_REJECTED);
	p = assert_pool(shmpool_new(path, 40, 16));
	assert_int_equal(shmpool_capacity(p), 40);
	assert_ok(shmpool_alloc(p, 0));
	assert_int_equal(shmpool_close(p), 0);

	/* 5. opening from an fd never initialises */
	tu_write_file(path, &init, 8);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_fails_null(shmpool_new_from_fd(fd), EBADMSG);
	close(fd);
	tu_assert_file_is(path, &init, 8);
}

/* ---- reopen after a wake-up ----------------------------------------- */

static int waiter_child(void *arg)
{
	shmpool_t *p = shmpool_new(arg, 1, 8);
	CHILD_CHECK(p != NULL, 1);
	/* the parent holds the only slot: this sleeps until it frees it */
	CHILD_CHECK(shmpool_alloc(p, 10) >= 0, 2);
	return 0;
}

/*
 * Blocking alloc + free wakes a waiter through the futex word; the file
 * must still open afterwards.  (Regression: the futex word once shared
 * bytes with the checksummed header, so every wake-up broke the header for
 * all later openers.)
 */
static void test_reopen_after_wake(void **state)
{
	(void)state;
	const char *path = tu_path("wake.pool");
	shmpool_t *p = assert_pool(shmpool_new(path, 1, 8));
	int64_t s = assert_ok(shmpool_alloc(p, 0));
	pid_t w = tu_fork(waiter_child, (void *)path, 15);
	double dl = tu_now() + 10;
	while (tu_stats(p).waiters == 0 && tu_now() < dl)
		tu_sleep(0.002);
	assert_int_equal(tu_stats(p).waiters, 1);
	assert_ok(shmpool_free(p, (uint64_t)s));
	tu_wait_ok(w, 15);
	errno = 0;
	shmpool_t *q = tu_open_existing(path);
	int e = errno;
	if (q == NULL)
		fail_msg("reopen after a wake-up: %s (%s)", tu_errname(e),
			 shmpool_errmsg());
	assert_int_equal(shmpool_close(q), 0);
	assert_int_equal(shmpool_close(p), 0);
}

/* ---- a hostile peer ---------------------------------------------------- */

#define WORKERS 3

struct peer {
	_Atomic int stop;
	_Atomic int started; /* workers and scribbler at work */
	_Atomic uint64_t ops, errors, scribbles;
	char path[512];
};

static struct peer *peer;

static int worker_child(void *arg)
{
	(void)arg;
	shmpool_t *p = shmpool_new(peer->path, 200, 32);
	CHILD_CHECK(p != NULL, 1);
	uint64_t held[16], nheld = 0, batch[8], ops = 0, errs = 0;
	double dl = tu_now() + 15; /* bound even if the stop flag is lost */
	rng_state ^= (uint64_t)getpid() << 17;

	atomic_fetch_add(&peer->started, 1);
	while (!atomic_load(&peer->stop) && tu_now() < dl) {
		int64_t r = 0;
		switch (rnd() % 8) {
		case 0:
		case 1:
			r = shmpool_alloc(p, 0.001);
			if (r >= 0 && nheld < 16)
				held[nheld++] = (uint64_t)r;
			break;
		case 2:
		case 3:
			if (nheld)
				r = shmpool_free(p, held[--nheld]);
			break;
		case 4:
			r = shmpool_alloc_n(p, batch, 1 + rnd() % 8, 0.001);
			if (r > 0)
				r = shmpool_free_n(p, batch, (uint64_t)r);
			break;
		case 5:
			r = shmpool_recover_stale(p);
			break;
		case 6: {
			struct shmpool_stats st;
			uint64_t out[64];
			r = shmpool_stats(p, &st);
			shmpool_allocated_slots(p, out, 64);
			shmpool_owner(p, rnd() % 200);
			break;
		}
		case 7:
			/* free something this worker does not hold */
			r = shmpool_free(p, rnd() % 200);
			break;
		}
		ops++;
		errs += r < 0;
	}
	atomic_fetch_add(&peer->ops, ops);
	atomic_fetch_add(&peer->errors, errs);
	shmpool_close(p);
	return 0;
}

static int scribbler_child(void *arg)
{
	(void)arg;
	int fd = open(peer->path, O_RDWR | O_CLOEXEC);
	CHILD_CHECK(fd >= 0, 1);
	struct pool_hdr h;
	CHILD_CHECK(pread(fd, &h, sizeof h, 0) == sizeof h, 2);
	unsigned char *m = mmap(NULL, h.total_size, PROT_READ | PROT_WRITE,
				MAP_SHARED, fd, 0);
	CHILD_CHECK(m != MAP_FAILED, 3);
	uint64_t n = 0;
	rng_state ^= (uint64_t)getpid();
	/* everything after the header line up to the slot data */
	uint64_t lo = OFF_SHARED, span = h.off_data - OFF_SHARED;
	atomic_fetch_add(&peer->started, 1);
	while (!atomic_load(&peer->stop)) {
		uint64_t off = lo + rnd() % span;
		switch (rnd() % 4) {
		case 0:
			m[off] = (unsigned char)rnd();
			break;
		case 1:
			m[off] ^= (unsigned char)(1u << (rnd() % 8));
			break;
		case 2: /* a whole aligned word */
			off &= ~7ull;
			if (off >= lo && off + 8 <= h.off_data)
				*(volatile uint64_t *)(m + off) = rnd();
			break;
		case 3:
			off &= ~7ull;
			if (off >= lo && off + 8 <= h.off_data)
				*(volatile uint64_t *)(m + off) =
					rnd() % 2 ? ~0ull : 0;
			break;
		}
		if (++n % 64 == 0)
			sched_yield();
	}
	atomic_fetch_add(&peer->scribbles, n);
	munmap(m, h.total_size);
	close(fd);
	return 0;
}

static void test_hostile_peer(void **state)
{
	(void)state;
	peer = tu_shared_mem(sizeof *peer);
	memset(peer, 0, sizeof *peer);
	snprintf(peer->path, sizeof peer->path, "%s", tu_path("peer.pool"));
	shmpool_t *p = assert_pool(shmpool_new(peer->path, 200, 32));
	assert_int_equal(shmpool_close(p), 0);

	pid_t w[WORKERS];
	for (int i = 0; i < WORKERS; i++)
		w[i] = tu_fork(worker_child, NULL, 30);
	tu_sleep(0.1);
	pid_t s = tu_fork(scribbler_child, NULL, 30);
	/* the timed part starts once all of them run: on a loaded machine a
	 * late scribbler could otherwise see the stop flag before any pass */
	double ready = tu_now() + 10;
	while (atomic_load(&peer->started) < WORKERS + 1 && tu_now() < ready)
		tu_sleep(0.01);
	tu_sleep(quick() ? 0.5 : 2.0);
	atomic_store(&peer->stop, 1);
	char fails[512] = "";
	for (int i = 0; i < WORKERS; i++) {
		int st = tu_wait(w[i], 25);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			char one[64];
			snprintf(one, sizeof one, " worker %d: %s", i,
				 tu_status_str(st));
			strncat(fails, one, sizeof fails - strlen(fails) - 1);
		}
	}
	tu_wait_ok(s, 25);
	print_message("# hostile peer: %llu operations by %d workers "
		      "(%llu errors) against %llu scribbles\n",
		      (unsigned long long)peer->ops, WORKERS,
		      (unsigned long long)peer->errors,
		      (unsigned long long)peer->scribbles);
	if (fails[0])
		fail_msg("workers crashed or failed:%s", fails);
	assert_true(peer->ops > 0);
	assert_true(peer->scribbles > 0);
	/* the scribbled file itself: opened and survived, or rejected */
	int code = probe_code(probe(peer->path));
	assert_true(code == PROBE_OPENED || code == PROBE_REJECTED);
	tu_shared_free(peer, sizeof *peer);
}

/* ---- descriptors: O_CLOEXEC, seals ------------------------------------- */

/*
 * The exec'ed helper: print "fd target" for each open descriptor.  Those
 * at or above the soft RLIMIT_NOFILE are not the program's: valgrind keeps
 * its own there (and lowers the limit the program sees).
 */
static int list_fds(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		rl.rlim_cur = RLIM_INFINITY;
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return 1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd == dirfd(d) || (rlim_t)fd >= rl.rlim_cur)
			continue;
		char lp[64], target[512];
		snprintf(lp, sizeof lp, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(lp, target, sizeof target - 1);
		target[n > 0 ? n : 0] = '\0';
		printf("%d %s\n", fd, target);
	}
	closedir(d);
	fflush(stdout);
	return 0;
}

/* fds of this process without FD_CLOEXEC (inherited from make etc.) */
static void inheritable_fds(unsigned char *set, int max)
{
	memset(set, 0, (size_t)max);
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd == dirfd(d) || fd < 0 || fd >= max)
			continue;
		int fl = fcntl(fd, F_GETFD);
		if (fl >= 0 && !(fl & FD_CLOEXEC))
			set[fd] = 1;
	}
	closedir(d);
}

/* valgrind preloads its core into the program (and keeps descriptors of
 * its own, which the exec'ed helper lists) */
static int under_valgrind(void)
{
	const char *pre = getenv("LD_PRELOAD");
	return pre != NULL && strstr(pre, "vgpreload") != NULL;
}

/* A "fd target" line naming a pool file, memfd or eventfd. */
static int pool_like(const char *line)
{
	return strstr(line, tu_dir()) != NULL || strstr(line, "memfd:") ||
	       strstr(line, "eventfd");
}

#define NPOOLS 8
struct execarg {
	shmpool_t **pools;
	int out;
};

static int exec_child(void *arg)
{
	struct execarg *a = arg;
	/* use every pool in the child first: a new user, a re-opened
	 * liveness descriptor (atfork) */
	for (int i = 0; i < NPOOLS; i++)
		if (a->pools[i])
			CHILD_CHECK(shmpool_alloc(a->pools[i], 0) >= 0, 1);
	CHILD_CHECK(dup2(a->out, STDOUT_FILENO) == STDOUT_FILENO, 2);
	char *argv[] = { (char *)"test_hostile", (char *)LIST_FDS_FLAG, NULL };
	/* the program's path: under valgrind "/proc/self/exe" is the tool */
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	CHILD_CHECK(n > 0, 4);
	exe[n] = '\0';
	execv(exe, argv);
	CHILD_CHECK(0, 3);
	return 3;
}

static void test_cloexec(void **state)
{
	(void)state;
	enum { MAXFD = 4096 };
	static unsigned char before[MAXFD];
	inheritable_fds(before, MAXFD);

	shmpool_t *pools[NPOOLS] = { 0 };
	pools[0] = assert_pool(shmpool_new(NULL, 8, 8));
	pools[1] = assert_pool(shmpool_new(tu_path("cx-file.pool"), 8, 8));
	pools[2] = assert_pool(shmpool_new_memfd("cx-memfd", 8, 8));
	pools[3] = assert_pool(shmpool_i64_new(tu_path("cx-i64.pool"), 8));
	pools[4] = assert_pool(shmpool_str_new_memfd("cx-str", 8, 8));
	pools[5] = assert_pool(shmpool_new_from_fd(shmpool_memfd(pools[2])));
	pools[6] = assert_pool(shmpool_f64_new(NULL, 8));
	assert_true(shmpool_eventfd(pools[1]) >= 0);
	assert_true(shmpool_eventfd(pools[6]) >= 0);
	/* a handle closed while holding a slot keeps its liveness fd */
	shmpool_t *kept = assert_pool(shmpool_new(tu_path("cx-kept.pool"), 8,
						  8));
	assert_ok(shmpool_alloc(kept, 0));
	assert_int_equal(shmpool_close(kept), 0);
	for (int i = 0; i < NPOOLS; i++)
		if (pools[i])
			assert_ok(shmpool_alloc(pools[i], 0));
	/* a descriptor passed on purpose must show up (the helper works) */
	int passed = fcntl(shmpool_memfd(pools[2]), F_DUPFD, 100);
	assert_true(passed >= 0 && passed < MAXFD);

	int fds[2];
	tu_pipe(fds);
	struct execarg a = { pools, fds[1] };
	pid_t pid = tu_fork(exec_child, &a, 15);
	close(fds[1]);
	static char out[65536];
	size_t n = 0;
	/* the child (and the helper it becomes) is bounded by its alarm */
	for (;;) {
		ssize_t r = read(fds[0], out + n, sizeof out - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == sizeof out - 1)
			break;
	}
	out[n] = '\0';
	close(fds[0]);
	tu_wait_ok(pid, 15);
	close(passed);

	int seen_passed = 0;
	char leaks[2048] = "";
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		int fd = atoi(line);
		if (fd <= 2)
			continue;
		if (fd == passed) {
			seen_passed = 1;
			continue;
		}
		if (fd < MAXFD && before[fd])
			continue; /* inherited by the test program itself */
		if (under_valgrind() && !pool_like(line))
			continue; /* valgrind's log and pipe descriptors */
		strncat(leaks, " ", sizeof leaks - strlen(leaks) - 1);
		strncat(leaks, line, sizeof leaks - strlen(leaks) - 1);
	}
	for (int i = 0; i < NPOOLS; i++)
		if (pools[i])
			shmpool_close(pools[i]);
	assert_true(seen_passed);
	if (leaks[0])
		fail_msg("descriptors leaked across exec:%s", leaks);
}

static void test_memfd_sealed(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new_memfd("sealed", 100, 8));
	shmpool_t *q = assert_pool(shmpool_str_new_memfd("sealed-str", 10, 5));
	shmpool_t *pools[] = { p, q };
	for (size_t k = 0; k < 2; k++) {
		int fd = shmpool_memfd(pools[k]);
		assert_true(fd >= 0);
		assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		struct stat st;
		assert_int_equal(fstat(fd, &st), 0);
		int seals = fcntl(fd, F_GET_SEALS);
		assert_true(seals >= 0);
		assert_true(seals & F_SEAL_SHRINK);
		assert_true(seals & F_SEAL_GROW);
		assert_true(seals & F_SEAL_SEAL);
		errno = 0;
		assert_int_equal(ftruncate(fd, st.st_size / 2), -1);
		assert_int_equal(errno, EPERM);
		errno = 0;
		assert_int_equal(ftruncate(fd, st.st_size * 2), -1);
		assert_int_equal(errno, EPERM);
		errno = 0;
		assert_int_equal(ftruncate(fd, 0), -1);
		assert_int_equal(errno, EPERM);
		/* seals cannot be removed or changed */
		assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
		assert_int_equal(errno, EPERM);
		/* a from-fd handle shares the sealed file */
		shmpool_t *r = assert_pool(shmpool_new_from_fd(fd));
		assert_int_equal(ftruncate(shmpool_memfd(r), 0), -1);
		assert_int_equal(errno, EPERM);
		assert_true(fcntl(shmpool_memfd(r), F_GETFD) & FD_CLOEXEC);
		assert_int_equal(shmpool_close(r), 0);
	}
	assert_int_equal(shmpool_close(p), 0);
	assert_int_equal(shmpool_close(q), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup_dir, tu_teardown_dir)

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], LIST_FDS_FLAG) == 0)
		return list_fds();
	tu_init(quick() ? 600 : 280);
	const struct CMUnitTest tests[] = {
		T(test_corrupt_header_bytes),
		T(test_corrupt_metadata),
		T(test_corrupt_words),
		T(test_owner_without_bit),
		T(test_truncation),
		T(test_foreign_files),
		T(test_other_users),
		T(test_racing_creators),
		T(test_half_created),
		T(test_reopen_after_wake),
		T(test_hostile_peer),
		T(test_cloexec),
		T(test_memfd_sealed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
