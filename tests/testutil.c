/*
 * testutil.c - helpers shared by the shmpool test programs.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

/* ---- child registry and watchdog ------------------------------------- */

#define TU_MAX_CHILDREN 1024
static volatile pid_t tu_children[TU_MAX_CHILDREN];
static unsigned tu_watchdog_secs;
static char tu_dirbuf[2048];

static void tu_register_child(pid_t pid)
{
	for (int i = 0; i < TU_MAX_CHILDREN; i++) {
		if (tu_children[i] == 0) {
			tu_children[i] = pid;
			return;
		}
	}
}

void tu_forget_child(pid_t pid)
{
	for (int i = 0; i < TU_MAX_CHILDREN; i++)
		if (tu_children[i] == pid)
			tu_children[i] = 0;
}

void tu_kill_children(void)
{
	for (int i = 0; i < TU_MAX_CHILDREN; i++) {
		pid_t pid = tu_children[i];
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			tu_children[i] = 0;
		}
	}
}

static void tu_watchdog_handler(int sig)
{
	(void)sig;
	/* Async-signal-safe only: write, kill, rmdir-free exit. */
	static const char msg[] = "Bail out! watchdog: test program hung\n";
	ssize_t r = write(STDOUT_FILENO, msg, sizeof msg - 1);
	(void)r;
	for (int i = 0; i < TU_MAX_CHILDREN; i++)
		if (tu_children[i] > 0)
			kill(tu_children[i], SIGKILL);
	_exit(124);
}

void tu_init(unsigned seconds)
{
	struct sigaction sa;

	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = tu_watchdog_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	/* A broken pipe to a dead child must fail a write, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	tu_watchdog_secs = seconds ? seconds : TU_WATCHDOG;
	alarm(tu_watchdog_secs);
	/* TEST_FILTER=pattern runs only the matching tests (debugging). */
	const char *filter = getenv("TEST_FILTER");
	if (filter != NULL && filter[0] != '\0')
		cmocka_set_test_filter(filter);
}

/* ---- temp dirs ----------------------------------------------------- */

const char *tu_dir(void)
{
	return tu_dirbuf;
}

int tu_setup_dir(void **state)
{
	(void)state;
	const char *base = getenv("TMPDIR");
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	snprintf(tu_dirbuf, sizeof tu_dirbuf, "%s/shmpool-test.XXXXXX", base);
	if (mkdtemp(tu_dirbuf) == NULL) {
		fprintf(stderr, "mkdtemp %s: %s\n", tu_dirbuf, strerror(errno));
		tu_dirbuf[0] = '\0';
		return -1;
	}
	return 0;
}

static int tu_rm_one(const char *path, const struct stat *st, int flag,
		     struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT)
		fprintf(stderr, "remove %s: %s\n", path, strerror(errno));
	return 0;
}

int tu_rm_rf(const char *path)
{
	return nftw(path, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int tu_teardown_dir(void **state)
{
	(void)state;
	/* Children left behind by a failed test must not outlive it. */
	tu_kill_children();
	if (tu_dirbuf[0] != '\0')
		tu_rm_rf(tu_dirbuf);
	tu_dirbuf[0] = '\0';
	return 0;
}

const char *tu_path(const char *name)
{
	static char bufs[16][4352];
	static unsigned next;
	char *b = bufs[next++ % 16];
	snprintf(b, sizeof bufs[0], "%s/%s", tu_dirbuf, name);
	return b;
}

/* ---- time ------------------------------------------------------------ */

double tu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void tu_sleep(double seconds)
{
	struct timespec ts;
	if (seconds <= 0)
		return;
	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- processes --------------------------------------------------------- */

pid_t tu_fork(tu_child_fn fn, void *arg, unsigned alarm_secs)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE,
					    SIGABRT, SIGALRM, SIGTERM };
		for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
			signal(sigs[i], SIG_DFL);
		for (int i = 0; i < TU_MAX_CHILDREN; i++)
			tu_children[i] = 0;
		alarm(alarm_secs ? alarm_secs : TU_CHILD_ALARM);
		_exit(fn(arg) & 0xff);
	}
	tu_register_child(pid);
	return pid;
}

const char *tu_status_str(int status)
{
	static char buf[64];
	if (WIFEXITED(status))
		snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, sizeof buf, "signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, sizeof buf, "status 0x%x", status);
	return buf;
}

int tu_wait(pid_t pid, double timeout)
{
	double deadline = tu_now() + timeout;
	int status = 0;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid) {
			tu_forget_child(pid);
			return status;
		}
		if (r < 0 && errno != EINTR) {
			tu_forget_child(pid);
			fail_msg("waitpid(%d): %s", (int)pid, strerror(errno));
		}
		if (tu_now() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			tu_forget_child(pid);
			fail_msg("child %d still running after %.1f s: killed",
				 (int)pid, timeout);
		}
		tu_sleep(0.001);
	}
}

void tu_wait_ok(pid_t pid, double timeout)
{
	int status = tu_wait(pid, timeout);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("child %d: %s", (int)pid, tu_status_str(status));
}

int tu_run_child(tu_child_fn fn, void *arg, double timeout)
{
	unsigned secs = (unsigned)timeout + 2;
	pid_t pid = tu_fork(fn, arg, secs);
	return tu_wait(pid, timeout + 1);
}

int tu_is_zombie(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold spaces and parens. */
	char *rp = strrchr(buf, ')');
	if (rp == NULL || rp[1] == '\0' || rp[2] == '\0')
		return -1;
	return rp[2] == 'Z';
}

void tu_pipe(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC) != 0)
		fail_msg("pipe: %s", strerror(errno));
}

int tu_signal_fd(int fd, char c)
{
	return tu_write_all(fd, &c, 1);
}

int tu_write_all(int fd, const void *buf, size_t len)
{
	const char *b = buf;
	while (len > 0) {
		ssize_t n = write(fd, b, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

int tu_read_all(int fd, void *buf, size_t len, double timeout)
{
	char *b = buf;
	double deadline = tu_now() + timeout;
	while (len > 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int ms = (int)((deadline - tu_now()) * 1000);
		if (ms < 0)
			return -1;
		int r = poll(&pfd, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		ssize_t n = read(fd, b, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

int tu_wait_fd(int fd, double timeout)
{
	double deadline = tu_now() + timeout;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int ms = (int)((deadline - tu_now()) * 1000);
		if (ms < 0)
			return -2;
		int r = poll(&pfd, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return -2;
		if (r < 0)
			return -1;
		unsigned char c;
		ssize_t n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		return n == 1 ? c : -1;
	}
}

void *tu_shared_mem(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		fail_msg("mmap: %s", strerror(errno));
	return p;
}

void tu_shared_free(void *p, size_t len)
{
	munmap(p, len);
}

/* ---- pool helpers ---------------------------------------------------- */

struct shmpool_stats tu_stats(shmpool_t *p)
{
	struct shmpool_stats st;
	memset(&st, 0, sizeof st);
	if (shmpool_stats(p, &st) != 0)
		fail_msg("shmpool_stats: %s (%s)", tu_errname(errno),
			 shmpool_errmsg());
	return st;
}

int tu_wait_waiters(shmpool_t *p, uint64_t lo, uint64_t hi, double timeout)
{
	double deadline = tu_now() + timeout;
	struct shmpool_stats st;

	do {
		if (shmpool_stats(p, &st) == 0 && st.waiters >= lo &&
		    st.waiters <= hi)
			return 1;
		tu_sleep(0.001);
	} while (tu_now() < deadline);
	return 0;
}

void tu_snapshot(shmpool_t *p, struct tu_snap *s)
{
	struct shmpool_stats st = tu_stats(p);
	memset(s, 0, sizeof *s);
	s->used = shmpool_used(p);
	s->available = shmpool_available(p);
	s->allocs = st.allocs;
	s->frees = st.frees;
	s->recoveries = st.recoveries;
	s->capacity = shmpool_capacity(p);
	s->elem_size = shmpool_elem_size(p);
	s->nslots = shmpool_allocated_slots(p, s->slots, 256);
}

void _tu_assert_unchanged(shmpool_t *p, const struct tu_snap *b,
			  const char *file, int line)
{
	struct tu_snap a;
	tu_snapshot(p, &a);
#define TU_CMP(f)                                                              \
	if (a.f != b->f)                                                       \
	_tu_fail_at(file, line, "pool changed by a failed call: %s %llu -> %llu", \
		    #f, (unsigned long long)b->f, (unsigned long long)a.f)
	TU_CMP(used);
	TU_CMP(available);
	TU_CMP(allocs);
	TU_CMP(frees);
	TU_CMP(recoveries);
	TU_CMP(capacity);
	TU_CMP(elem_size);
	TU_CMP(nslots);
#undef TU_CMP
	int64_t n = a.nslots < 256 ? a.nslots : 256;
	for (int64_t i = 0; i < n; i++)
		if (a.slots[i] != b->slots[i])
			_tu_fail_at(file, line,
				    "pool changed by a failed call: allocated "
				    "slot #%lld %llu -> %llu",
				    (long long)i,
				    (unsigned long long)b->slots[i],
				    (unsigned long long)a.slots[i]);
}

const char *tu_errname(int e)
{
	static __thread char buf[32];
	switch (e) {
#define E(x)                                                                   \
	case x:                                                                \
		return #x;
		E(EINVAL) E(ERANGE) E(ENOENT) E(EBUSY) E(EMSGSIZE)
		E(EPROTOTYPE) E(EOVERFLOW) E(EBADMSG) E(EAGAIN) E(ETIMEDOUT)
		E(EUSERS) E(ELOOP) E(EACCES) E(ENOMEM) E(EMFILE) E(EEXIST)
		E(EBADF) E(EINTR) E(EPERM) E(ENOSPC) E(ENOTSUP) E(EFBIG)
		E(ESRCH) E(ENOTDIR) E(EISDIR) E(ENODEV) E(ESPIPE) E(ENOSYS)
#undef E
	case 0:
		return "0 (no errno)";
	default:
		snprintf(buf, sizeof buf, "errno %d", e);
		return buf;
	}
}

void _tu_assert_errno(int got, int want, const char *file, int line)
{
	const char *m = shmpool_errmsg();
	if (got != want)
		_tu_fail_at(file, line, "errno %s (%s), expected %s",
			    tu_errname(got), m ? m : "(null errmsg)",
			    tu_errname(want));
	if (m == NULL || m[0] == '\0')
		_tu_fail_at(file, line,
			    "errno %s but shmpool_errmsg() is empty",
			    tu_errname(got));
}

void _tu_fail_at(const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	print_error("ERROR: %s\n", msg);
	_fail(file, line);
	/* not reached: _fail() long-jumps; keep the message visible anyway */
	abort();
}

void tu_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(tu_write_all(fd, data, len), 0);
	assert_int_equal(close(fd), 0);
}

unsigned char *tu_read_file(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	unsigned char *b;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	b = malloc((size_t)st.st_size + 1);
	assert_non_null(b);
	if (st.st_size > 0)
		assert_int_equal(tu_read_all(fd, b, (size_t)st.st_size, 5.0),
				 0);
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

void tu_assert_file_is(const char *path, const void *data, size_t len)
{
	size_t n;
	unsigned char *b = tu_read_file(path, &n);

	assert_int_equal(n, len);
	assert_memory_equal(b, data, len);
	free(b);
}

int tu_file_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

shmpool_t *tu_open_existing(const char *path)
{
	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;

	o.variant = SHMPOOL_ANY;
	o.backing = SHMPOOL_BACKING_FILE;
	o.name = path;
	o.flags = SHMPOOL_NOCREATE;
	return shmpool_open(&o);
}

shmpool_t *tu_cache_pool(const char *path, uint64_t cap, unsigned cache)
{
	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;

	o.variant = SHMPOOL_I64;
	o.capacity = cap;
	o.cache = cache;
	if (path) {
		o.backing = SHMPOOL_BACKING_FILE;
		o.name = path;
	}
	return shmpool_open(&o);
}
