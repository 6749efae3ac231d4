/*
 * test_hugetlb.c - SHMPOOL_HUGETLB: pools on explicit huge pages.
 *
 * Without free huge pages the flag fails with ENOMEM and a message naming
 * /proc/sys/vm/nr_hugepages; a path or fd not on hugetlbfs is EINVAL.  As
 * root the program then reserves a few huge pages (adding to
 * /proc/sys/vm/nr_hugepages, and taking them away again at the end, on a
 * failed assertion, on the watchdog's SIGALRM and on SIGTERM) and checks
 * anonymous, memfd and hugetlbfs-file pools: allocation across fork,
 * reopening from the fd and the path, mmap_size in whole huge pages, and
 * that the pages really are huge pages in use (/proc/self/smaps and
 * HugePages_Free).  Not root, or a kernel that gives no pages: those cases
 * are skipped with the reason, never passed.
 *
 * nr_hugepages is global: the whole program holds an exclusive flock on
 * HP_LOCK, as does tests/stress_backends.sh around its hugepages = on run,
 * so the two never see each other's pages when they run in parallel under
 * make -j, and the HugePages_Free figures below are this program's alone.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#define NR_PATH "/proc/sys/vm/nr_hugepages"
#define OVERCOMMIT_PATH "/proc/sys/vm/nr_overcommit_hugepages"
#define HP_LOCK "/tmp/.shmpool-nr_hugepages.lock"
/* Huge pages reserved for the cases below (at most 3 in use at once). */
#define WANT_PAGES 6

static uint64_t hpage;          /* bytes, Hugepagesize of /proc/meminfo */
static volatile long reserved;  /* pages this program added to NR_PATH */
static int reserve_tried;
static char skip_reason[200];
static struct sigaction old_alrm, old_term;

/* ---- /proc and /sys, async-signal-safe where the release needs it ------ */

/* Read a non-negative decimal number from a small file; -1 on error. */
static long read_num(const char *path)
{
	char buf[32];
	long v = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0 || buf[0] < '0' || buf[0] > '9')
		return -1;
	for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
		v = v * 10 + (buf[i] - '0');
	return v;
}

static int write_num(const char *path, long v)
{
	char buf[32];
	int i = (int)sizeof buf, fd;
	buf[--i] = '\n';
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, buf + i, sizeof buf - (size_t)i);
	close(fd);
	return n == (ssize_t)(sizeof buf - (size_t)i) ? 0 : -1;
}

/* Field @key of /proc/meminfo (kB or a page count); -1 if absent. */
static long meminfo(const char *key)
{
	char line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static long free_pages(void)
{
	return meminfo("HugePages_Free") - meminfo("HugePages_Rsvd");
}

/* Give back what this program added to nr_hugepages.  Async-signal-safe
 * (open, read, write, close); idempotent. */
static void release_pages(void)
{
	long mine = reserved, cur;
	if (mine <= 0)
		return;
	reserved = 0;
	cur = read_num(NR_PATH);
	if (cur >= 0)
		write_num(NR_PATH, cur > mine ? cur - mine : 0);
}

static void on_signal(int sig)
{
	release_pages();
	struct sigaction *old = sig == SIGALRM ? &old_alrm : &old_term;
	if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
		old->sa_handler(sig); /* testutil's watchdog: kills, exits */
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Make sure WANT_PAGES huge pages are free for this program, reserving them
 * once; cmocka skip() with the reason when that is impossible.
 */
#define NEED_PAGES()                                                           \
	do {                                                                   \
		if (!have_pages()) {                                           \
			print_message("# SKIP reason: %s\n", skip_reason);     \
			skip();                                                \
		}                                                              \
	} while (0)

static int have_pages(void)
{
	if (!reserve_tried) {
		reserve_tried = 1;
		long cur = read_num(NR_PATH);
		if (hpage == 0) {
			snprintf(skip_reason, sizeof skip_reason,
				 "no Hugepagesize in /proc/meminfo: kernel "
				 "without huge pages");
		} else if (geteuid() != 0) {
			snprintf(skip_reason, sizeof skip_reason,
				 "not root: cannot reserve huge pages in %s",
				 NR_PATH);
		} else if (cur < 0 ||
			   write_num(NR_PATH, cur + WANT_PAGES) < 0) {
			snprintf(skip_reason, sizeof skip_reason,
				 "cannot write %s: %s", NR_PATH,
				 strerror(errno));
		} else {
			long got = read_num(NR_PATH);
			reserved = got > cur ? got - cur : 0;
			if (got < cur) /* should not happen; restore */
				write_num(NR_PATH, cur);
		}
	}
	if (skip_reason[0] == '\0' && free_pages() < WANT_PAGES)
		snprintf(skip_reason, sizeof skip_reason,
			 "the kernel gave %ld of %d huge pages asked for "
			 "(memory too fragmented?): %ld free",
			 (long)reserved, WANT_PAGES, free_pages());
	return skip_reason[0] == '\0';
}

/*
 * Huge-page figures of the mapping that contains @addr, from
 * /proc/self/smaps: its KernelPageSize and the hugetlb memory it has
 * faulted in (Shared_Hugetlb + Private_Hugetlb), both in kB.
 */
static void smaps_of(const void *addr, long *page_kb, long *hugetlb_kb)
{
	char line[512];
	int in = 0;
	FILE *f = fopen("/proc/self/smaps", "r");
	*page_kb = *hugetlb_kb = -1;
	assert_non_null(f);
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		long v;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, ':') > strchr(line, ' ')) {
			if (in)
				break;
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			if (in)
				*hugetlb_kb = 0;
			continue;
		}
		if (!in)
			continue;
		if (sscanf(line, "KernelPageSize: %ld", &v) == 1)
			*page_kb = v;
		else if (sscanf(line, "Shared_Hugetlb: %ld", &v) == 1 ||
			 sscanf(line, "Private_Hugetlb: %ld", &v) == 1)
			*hugetlb_kb += v;
	}
	fclose(f);
}

/*
 * The handle's mapping is whole huge pages, and huge pages back it: its
 * smaps entry has the huge page size and shows the huge pages this mapping
 * has touched so far (at least the header's; HugePages_Free, checked by the
 * callers, counts the whole pool).
 */
static void assert_on_huge_pages(shmpool_t *p)
{
	struct shmpool_stats st = tu_stats(p);
	long page_kb, huge_kb;

	assert_true(st.mmap_size > 0);
	assert_int_equal(st.mmap_size % hpage, 0);
	smaps_of(shmpool_data_ptr(p), &page_kb, &huge_kb);
	assert_int_equal(page_kb, (long)(hpage >> 10));
	assert_true(huge_kb > 0);
	assert_int_equal(huge_kb % (long)(hpage >> 10), 0);
	assert_true(huge_kb <= (long)(st.mmap_size >> 10));
}

static int count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/* ---- without huge pages ---------------------------------------------- */

/*
 * ANON and MEMFD ask for one huge page more than are free: with
 * nr_hugepages at 0 (the default), any pool.  ENOMEM, the message names
 * nr_hugepages, and nothing is left behind.
 */
static void test_no_free_pages_enomem(void **state)
{
	(void)state;
	if (hpage == 0) {
		print_message("# SKIP reason: kernel without huge pages\n");
		skip();
	}
	if (read_num(OVERCOMMIT_PATH) > 0) {
		print_message("# SKIP reason: %s is set: the kernel may add "
			      "surplus huge pages instead of failing\n",
			      OVERCOMMIT_PATH);
		skip();
	}
	long avail = free_pages();
	assert_true(avail >= 0);
	/* avail + 1 pages of data (the smallest pool when none is free) */
	uint64_t capacity = avail == 0 ? 1 : (uint64_t)(avail + 1) * 2;
	uint64_t elem = avail == 0 ? 8 : hpage / 2;
	int fds = count_fds();

	for (int b = 0; b < 2; b++) {
		struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
		o.backing = b ? SHMPOOL_BACKING_MEMFD : SHMPOOL_BACKING_ANON;
		o.name = "test-hugetlb";
		o.capacity = capacity;
		o.elem_size = elem;
		o.flags = SHMPOOL_HUGETLB;
		assert_fails_null(shmpool_open(&o), ENOMEM);
		const char *msg = shmpool_errmsg();
		if (strstr(msg, "/proc/sys/vm/nr_hugepages") == NULL ||
		    strstr(msg, "huge pages") == NULL)
			fail_msg("message does not say how to reserve huge "
				 "pages: %s", msg);
	}
	assert_int_equal(count_fds(), fds);
	assert_int_equal(free_pages(), avail);
}

/* A path or an fd that is not on hugetlbfs: EINVAL, nothing created. */
static void test_not_hugetlbfs_einval(void **state)
{
	(void)state;
	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	const char *path = tu_path("small-pages");
	struct stat st;

	o.backing = SHMPOOL_BACKING_FILE;
	o.name = path;
	o.capacity = 8;
	o.elem_size = 8;
	o.flags = SHMPOOL_HUGETLB;
	assert_fails_null(shmpool_open(&o), EINVAL);
	assert_non_null(strstr(shmpool_errmsg(), "hugetlbfs"));
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(errno, ENOENT);

	/* An existing small-page pool, by path and by fd. */
	shmpool_t *p = assert_pool(shmpool_new(path, 8, 8));
	assert_fails_null(shmpool_open(&o), EINVAL);
	shmpool_t *m = assert_pool(shmpool_new_memfd("small", 8, 8));
	o.backing = SHMPOOL_BACKING_FD;
	o.fd = shmpool_memfd(m);
	o.variant = SHMPOOL_ANY;
	o.capacity = 0;
	o.elem_size = 0;
	assert_fails_null(shmpool_open(&o), EINVAL);
	assert_non_null(strstr(shmpool_errmsg(), "hugetlbfs"));
	/* Small-page pools report small-page sizes. */
	assert_int_equal(tu_stats(m).mmap_size % 4096, 0);
	assert_int_equal(shmpool_close(m), 0);
	assert_int_equal(shmpool_close(p), 0);
}

/* ---- on huge pages (root) --------------------------------------------- */

struct fork_arg {
	shmpool_t *p;
	uint64_t parent_slot;
	int fd; /* >= 0: open the pool from this fd instead */
};

/* Child: check the parent's slot, allocate and free 100 times, keep one
 * slot holding its pid, exit without freeing it. */
static int child_churn(void *arg)
{
	struct fork_arg *a = arg;
	shmpool_t *q = a->p;
	int64_t v;

	if (a->fd >= 0) {
		q = shmpool_new_from_fd(a->fd);
		CHILD_CHECK(q != NULL, 2);
	}
	CHILD_CHECK(shmpool_is_allocated(q, a->parent_slot) == 1, 3);
	CHILD_CHECK(shmpool_i64_get(q, a->parent_slot, &v) == 0 &&
			    v == (int64_t)getppid(),
		    4);
	for (int k = 0; k < 100; k++) {
		int64_t i = shmpool_alloc(q, 1.0);
		CHILD_CHECK(i >= 0, 5);
		CHILD_CHECK(shmpool_i64_set(q, (uint64_t)i, k) == 0, 6);
		CHILD_CHECK(shmpool_free(q, (uint64_t)i) == 0, 7);
	}
	int64_t keep = shmpool_i64_alloc_set(q, getpid(), 1.0);
	CHILD_CHECK(keep >= 0, 8);
	return 0;
}

/* Parent's part of the fork check on @p (any i64 pool on huge pages). */
static void check_fork(shmpool_t *p, int fd)
{
	struct fork_arg a = { .p = p, .fd = fd };
	uint64_t before = tu_stats(p).allocs;

	a.parent_slot =
		(uint64_t)assert_ok(shmpool_i64_alloc_set(p, getpid(), 0));
	pid_t pid = tu_fork(child_churn, &a, 30);
	tu_wait_ok(pid, 20);
	assert_int_equal(shmpool_used(p), 2);
	uint64_t idx[2];
	assert_int_equal(shmpool_allocated_slots(p, idx, 2), 2);
	uint64_t theirs = idx[0] == a.parent_slot ? idx[1] : idx[0];
	int64_t v;
	assert_int_equal(shmpool_i64_get(p, theirs, &v), 0);
	assert_int_equal(v, pid);
	assert_int_equal(shmpool_owner(p, theirs), pid);
	/* The child died holding it: recovered, the parent's slot kept. */
	assert_int_equal(shmpool_recover_stale(p), 1);
	assert_int_equal(shmpool_is_allocated(p, a.parent_slot), 1);
	assert_int_equal(shmpool_free(p, a.parent_slot), 0);
	struct shmpool_stats st = tu_stats(p);
	assert_int_equal(st.used, 0);
	assert_int_equal(st.allocs - before, 102);
	assert_int_equal(st.allocs - st.frees, st.used);
}

static shmpool_t *huge_pool(enum shmpool_backing b, uint64_t capacity)
{
	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	o.backing = b;
	o.name = "test-hugetlb";
	o.variant = SHMPOOL_I64;
	o.capacity = capacity;
	o.flags = SHMPOOL_HUGETLB;
	return shmpool_open(&o);
}

static void test_anon_fork(void **state)
{
	(void)state;
	NEED_PAGES();
	long free0 = free_pages();
	shmpool_t *p = assert_pool(huge_pool(SHMPOOL_BACKING_ANON, 4096));
	uint64_t pages = tu_stats(p).mmap_size / hpage;

	assert_int_equal(pages, 1);
	assert_int_equal(free_pages(), free0 - (long)pages);
	assert_on_huge_pages(p);
	assert_null(shmpool_path(p));
	check_fork(p, -1);
	assert_on_huge_pages(p);
	assert_int_equal(shmpool_close(p), 0);
	assert_int_equal(free_pages(), free0);
}

static void test_memfd_reopen(void **state)
{
	(void)state;
	NEED_PAGES();
	long free0 = free_pages();
	/* More than one huge page: 300000 slots of 8 bytes, plus owners. */
	shmpool_t *p = assert_pool(huge_pool(SHMPOOL_BACKING_MEMFD, 300000));
	struct shmpool_stats st = tu_stats(p);
	int fd = shmpool_memfd(p);

	assert_true(fd >= 0);
	assert_int_equal(st.mmap_size, 2 * hpage);
	assert_int_equal(free_pages(), free0 - 2);
	assert_on_huge_pages(p);

	/* The fd, reopened without the flag, and with it. */
	uint64_t last = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	assert_int_equal(shmpool_i64_set(p, last, 42), 0);
	shmpool_t *q = assert_pool(shmpool_new_from_fd(fd));
	assert_int_equal(tu_stats(q).mmap_size, st.mmap_size);
	assert_int_equal(shmpool_capacity(q), 300000);
	assert_on_huge_pages(q);
	int64_t v;
	assert_int_equal(shmpool_i64_get(q, last, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(shmpool_free(q, last), 0);
	assert_int_equal(shmpool_close(q), 0);

	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	o.backing = SHMPOOL_BACKING_FD;
	o.fd = fd;
	o.variant = SHMPOOL_ANY;
	o.flags = SHMPOOL_HUGETLB;
	q = assert_pool(shmpool_open(&o));
	assert_int_equal(tu_stats(q).mmap_size, st.mmap_size);
	assert_int_equal(shmpool_close(q), 0);

	/* A child opening the fd itself, and one using the inherited handle. */
	check_fork(p, fd);
	check_fork(p, -1);
	/* Reopening maps the same pages: none more were taken. */
	assert_int_equal(free_pages(), free0 - 2);
	assert_int_equal(shmpool_close(p), 0);
	assert_int_equal(free_pages(), free0);
}

/* ---- a pool file on a hugetlbfs mount (root) --------------------------- */

static char mnt[256];

static int teardown_mount(void **state)
{
	if (mnt[0]) {
		umount2(mnt, MNT_DETACH);
		mnt[0] = '\0';
	}
	return tu_teardown_dir(state);
}

/* Mount a hugetlbfs in the test dir, or skip saying why. */
static void mount_hugetlbfs(void)
{
	NEED_PAGES();
	snprintf(mnt, sizeof mnt, "%s", tu_path("hugetlbfs"));
	assert_int_equal(mkdir(mnt, 0700), 0);
	if (mount("none", mnt, "hugetlbfs", 0, "mode=0700") != 0) {
		print_message("# SKIP reason: mount -t hugetlbfs: %s\n",
			      strerror(errno));
		mnt[0] = '\0';
		skip();
	}
}

static int child_open_path(void *arg)
{
	const char *path = arg;
	shmpool_t *q = shmpool_i64_new(path, 1000);
	CHILD_CHECK(q != NULL, 2);
	int64_t i = shmpool_i64_alloc_set(q, 7, 1.0);
	CHILD_CHECK(i >= 0, 3);
	CHILD_CHECK(shmpool_free(q, (uint64_t)i) == 0, 4);
	CHILD_CHECK(shmpool_close(q) == 0, 5);
	return 0;
}

static void test_file_on_hugetlbfs(void **state)
{
	(void)state;
	mount_hugetlbfs();
	char path[300];
	snprintf(path, sizeof path, "%s/pool", mnt);
	long free0 = free_pages();

	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	o.backing = SHMPOOL_BACKING_FILE;
	o.name = path;
	o.variant = SHMPOOL_I64;
	o.capacity = 1000;
	o.flags = SHMPOOL_HUGETLB | SHMPOOL_EXCL;
	shmpool_t *p = assert_pool(shmpool_open(&o));
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal((uint64_t)st.st_size, hpage);
	assert_string_equal(shmpool_path(p), path);
	assert_on_huge_pages(p);
	assert_int_equal(free_pages(), free0 - 1);

	/* Opened by path without the flag, in this process and a child. */
	shmpool_t *q = assert_pool(shmpool_i64_new(path, 1000));
	assert_int_equal(tu_stats(q).mmap_size, hpage);
	o.flags = SHMPOOL_NOCREATE;
	o.variant = SHMPOOL_ANY;
	o.capacity = 0;
	shmpool_t *r = assert_pool(shmpool_open(&o));
	assert_int_equal(shmpool_capacity(r), 1000);
	assert_int_equal(shmpool_close(r), 0);
	uint64_t i = (uint64_t)assert_ok(shmpool_i64_alloc_set(p, 5, 0));
	int64_t v;
	assert_int_equal(shmpool_i64_get(q, i, &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(tu_run_child(child_open_path, path, 20), 0);
	assert_int_equal(shmpool_free(q, i), 0);
	assert_int_equal(shmpool_close(q), 0);
	assert_int_equal(tu_stats(p).allocs, 2);
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(shmpool_unlink(p), 0);
	assert_int_equal(shmpool_close(p), 0);
	assert_int_equal(free_pages(), free0);

	/* A creator that died between sizing the file and storing its first
	 * magic left whole zero pages: initialised again when creating,
	 * refused when only opening. */
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)hpage), 0);
	close(fd);
	o.flags = SHMPOOL_NOCREATE;
	assert_fails_null(shmpool_open(&o), EBADMSG);
	p = assert_pool(shmpool_i64_new(path, 1000));
	assert_on_huge_pages(p);
	/* (a slot still held at close would keep the file, and its page,
	 * until this process exits) */
	assert_int_equal(shmpool_free(p, (uint64_t)assert_ok(
						 shmpool_try_alloc(p))), 0);
	assert_int_equal(shmpool_close(p), 0);
	assert_int_equal(unlink(path), 0);

	/* Without the flag, a pool created on hugetlbfs gets huge pages. */
	p = assert_pool(shmpool_new(path, 3, 1 << 20)); /* 3 MiB of data */
	assert_int_equal(tu_stats(p).mmap_size, 2 * hpage);
	assert_on_huge_pages(p);
	uint64_t idx[3];
	assert_int_equal(shmpool_alloc_n(p, idx, 3, 0), 3);
	for (int k = 0; k < 3; k++) /* into the second huge page */
		memset(shmpool_ptr(p, idx[k]), 0x5a, 1 << 20);
	assert_int_equal(shmpool_free_n(p, idx, 3), 3);
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(shmpool_close(p), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(free_pages(), free0);
}

/* ---- main ------------------------------------------------------------- */

static int release_group(void **state)
{
	(void)state;
	release_pages();
	return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup_dir, tu_teardown_dir)

int main(void)
{
	struct sigaction sa;
	int lock;

	tu_init(120);
	hpage = meminfo("Hugepagesize") > 0 ?
		(uint64_t)meminfo("Hugepagesize") << 10 : 0;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, &old_alrm);
	sigaction(SIGTERM, &sa, &old_term);
	atexit(release_pages);
	/* Serialise with other users of nr_hugepages in this test suite
	 * (bounded by the watchdog). */
	lock = open(HP_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock >= 0 && flock(lock, LOCK_EX) != 0) {
		close(lock);
		lock = -1;
	}

	const struct CMUnitTest tests[] = {
		T(test_no_free_pages_enomem),
		T(test_not_hugetlbfs_einval),
		T(test_anon_fork),
		T(test_memfd_reopen),
		cmocka_unit_test_setup_teardown(test_file_on_hugetlbfs,
						tu_setup_dir, teardown_mount),
	};
	int rc = cmocka_run_group_tests(tests, NULL, release_group);
	release_pages();
	if (lock >= 0)
		close(lock);
	return rc;
}
