/*
 * testutil.h - helpers shared by the shmpool test programs (cmocka).
 *
 * Every test program:
 *   - calls tu_init() first in main(): it arms a watchdog (alarm) so a hang
 *     fails the program instead of stalling `make check`, and makes sure
 *     that children are killed when the watchdog fires;
 *   - runs its tests with a private temporary directory (tu_setup_dir /
 *     tu_teardown_dir as group or per-test setup/teardown);
 *   - runs code in children with tu_fork(): the child gets its own alarm,
 *     default signal dispositions (so a crash in the child is not caught by
 *     cmocka's handlers and turned into a second copy of the test run) and
 *     leaves with _exit() (no flush of stdio buffers inherited from the
 *     parent, no atexit handlers).
 *
 * Children must never call cmocka assertions: they report with CHILD_CHECK
 * and their exit status.
 */
#ifndef SHMPOOL_TESTUTIL_H
#define SHMPOOL_TESTUTIL_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "shmpool.h"

/* Default bound on one child process, in seconds. */
#define TU_CHILD_ALARM 30u
/* Default watchdog of a whole test program, in seconds. */
#define TU_WATCHDOG 120u

/* ---- setup ---------------------------------------------------------- */

/* Arm the watchdog (alarm(@seconds)), line-buffer stdout; honour
 * $TEST_FILTER (a cmocka test name pattern) to run a subset. */
void tu_init(unsigned seconds);

/* The current private temp directory ("" outside setup/teardown). */
const char *tu_dir(void);
/* cmocka setup/teardown: create / remove recursively a fresh temp dir. */
int tu_setup_dir(void **state);
int tu_teardown_dir(void **state);

/*
 * Path of @name inside the temp dir.  Returns one of 16 rotating static
 * buffers: copy it if you need more than 16 at once.
 */
const char *tu_path(const char *name);
/* Remove a directory tree (no symlink following).  0 or -1. */
int tu_rm_rf(const char *path);
/* Create or replace @path (mode 0600) with @len bytes of @data; asserts. */
void tu_write_file(const char *path, const void *data, size_t len);
/* Read a whole (small) file, not following a symlink, into a malloc'ed
 * buffer (one spare byte); its size goes to *@len.  Asserts. */
unsigned char *tu_read_file(const char *path, size_t *len);
/* Assert that @path (not followed if a symlink) holds exactly @data. */
void tu_assert_file_is(const char *path, const void *data, size_t len);
/* 1 if anything exists at @path (a dangling symlink counts). */
int tu_file_exists(const char *path);
/* Open whatever pool is at @path (any variant), never creating or
 * initialising it; the shmpool_open() result. */
shmpool_t *tu_open_existing(const char *path);
/* An i64 pool of @cap slots with slot caches of @cache (0: none), at file
 * @path (created or opened) or anonymous when @path is NULL; the
 * shmpool_open() result. */
shmpool_t *tu_cache_pool(const char *path, uint64_t cap, unsigned cache);

/* ---- time ------------------------------------------------------------ */

/* CLOCK_MONOTONIC in seconds. */
double tu_now(void);
/* Sleep @seconds (restarts after EINTR). */
void tu_sleep(double seconds);

/* ---- processes --------------------------------------------------------- */

typedef int (*tu_child_fn)(void *arg);

/*
 * Fork a child that runs @fn(@arg) under alarm(@alarm_secs) (0: the default
 * TU_CHILD_ALARM) and _exit()s with its return value.  The pid is
 * registered so that the watchdog and tu_kill_children() kill it.
 * Returns the pid (fails the test if fork fails).
 */
pid_t tu_fork(tu_child_fn fn, void *arg, unsigned alarm_secs);

/*
 * Wait for @pid at most @timeout seconds.  On overrun the child is killed
 * (SIGKILL), reaped and the test fails.  Returns the wait status.
 */
int tu_wait(pid_t pid, double timeout);
/* As tu_wait, and fail unless the child exited with status 0. */
void tu_wait_ok(pid_t pid, double timeout);
/* Run @fn in a child and wait for it (bounded); returns the wait status. */
int tu_run_child(tu_child_fn fn, void *arg, double timeout);
/* Describe a wait status ("exit 3", "signal 9") in a static buffer. */
const char *tu_status_str(int status);
/* SIGKILL and reap every child still registered. */
void tu_kill_children(void);
/* Forget @pid (already reaped by other means). */
void tu_forget_child(pid_t pid);

/* Is @pid a zombie (state Z in /proc/pid/stat)?  1, 0, or -1 if gone. */
int tu_is_zombie(pid_t pid);

/* Pipes used as simple one-byte signals between parent and child. */
void tu_pipe(int fds[2]);
/* Write one byte; 0 or -1. */
int tu_signal_fd(int fd, char c);
/*
 * Read one byte with a timeout.  Returns the byte (0..255), -1 on EOF or
 * error, -2 on timeout.
 */
int tu_wait_fd(int fd, double timeout);
/* Read/write a full buffer (retrying short transfers) with a timeout on
 * reads.  0 on success, -1 otherwise. */
int tu_write_all(int fd, const void *buf, size_t len);
int tu_read_all(int fd, void *buf, size_t len, double timeout);

/* Anonymous MAP_SHARED memory for results written by children. */
void *tu_shared_mem(size_t len);
void tu_shared_free(void *p, size_t len);

/* ---- pool helpers ---------------------------------------------------- */

/* Snapshot of everything a failed call must leave unchanged. */
struct tu_snap {
	uint64_t used, available, allocs, frees, recoveries, capacity,
		elem_size;
	int64_t nslots;
	uint64_t slots[256];
};
void tu_snapshot(shmpool_t *p, struct tu_snap *s);
/* Fail the test if @p differs from snapshot @before. */
#define tu_assert_unchanged(p, before)                                         \
	_tu_assert_unchanged((p), (before), __FILE__, __LINE__)
void _tu_assert_unchanged(shmpool_t *p, const struct tu_snap *before,
			  const char *file, int line);

/* Stats that must fail the test if shmpool_stats fails. */
struct shmpool_stats tu_stats(shmpool_t *p);
/* Poll (every ms, up to @timeout s) until @lo <= stats.waiters <= @hi;
 * 1 if it got there. */
int tu_wait_waiters(shmpool_t *p, uint64_t lo, uint64_t hi, double timeout);

/* Name of an errno value ("EINVAL"), or its number. */
const char *tu_errname(int e);

/*
 * assert_errno(e): errno is @e and shmpool_errmsg() is a non-empty string.
 * Capture errno first: call right after the failing call.
 */
#define assert_errno(e) _tu_assert_errno(errno, (e), __FILE__, __LINE__)
void _tu_assert_errno(int got, int want, const char *file, int line);

/* The integer-returning call @expr fails (-1) with errno @e. */
#define assert_fails(expr, e)                                                  \
	do {                                                                   \
		errno = 0;                                                     \
		int64_t tu_r_ = (int64_t)(expr);                               \
		int tu_e_ = errno;                                             \
		if (tu_r_ != -1)                                               \
			_tu_fail_at(__FILE__, __LINE__,                         \
				    "%s returned %lld, expected -1 (%s)",      \
				    #expr, (long long)tu_r_, tu_errname(e));   \
		_tu_assert_errno(tu_e_, (e), __FILE__, __LINE__);              \
	} while (0)

/* The pointer-returning call @expr fails (NULL) with errno @e. */
#define assert_fails_null(expr, e)                                             \
	do {                                                                   \
		errno = 0;                                                     \
		const void *tu_r_ = (const void *)(expr);                      \
		int tu_e_ = errno;                                             \
		if (tu_r_ != NULL)                                             \
			_tu_fail_at(__FILE__, __LINE__,                         \
				    "%s returned %p, expected NULL (%s)",      \
				    #expr, tu_r_, tu_errname(e));              \
		_tu_assert_errno(tu_e_, (e), __FILE__, __LINE__);              \
	} while (0)

/* The call succeeds (>= 0); prints errno and shmpool_errmsg() if not. */
#define assert_ok(expr)                                                        \
	({                                                                     \
		errno = 0;                                                     \
		int64_t tu_r_ = (int64_t)(expr);                               \
		if (tu_r_ < 0)                                                 \
			_tu_fail_at(__FILE__, __LINE__,                         \
				    "%s returned %lld: %s (%s)", #expr,        \
				    (long long)tu_r_, tu_errname(errno),       \
				    shmpool_errmsg());                         \
		tu_r_;                                                         \
	})

/* A constructor succeeds; prints errno and shmpool_errmsg() if not. */
#define assert_pool(expr)                                                      \
	({                                                                     \
		errno = 0;                                                     \
		shmpool_t *tu_p_ = (expr);                                     \
		if (tu_p_ == NULL)                                             \
			_tu_fail_at(__FILE__, __LINE__,                         \
				    "%s returned NULL: %s (%s)", #expr,        \
				    tu_errname(errno), shmpool_errmsg());      \
		tu_p_;                                                         \
	})

void _tu_fail_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

/* ---- inside children ----------------------------------------------------- */

/* Report a failed check on stderr and _exit(@code) (children only). */
#define CHILD_CHECK(cond, code)                                                \
	do {                                                                   \
		if (!(cond)) {                                                 \
			int tu_ce_ = errno;                                    \
			fprintf(stderr,                                        \
				"child %d: %s:%d: check failed: %s "           \
				"(errno %s, %s)\n",                            \
				(int)getpid(), __FILE__, __LINE__, #cond,      \
				tu_errname(tu_ce_), shmpool_errmsg());         \
			fflush(stderr);                                        \
			_exit(code);                                           \
		}                                                              \
	} while (0)

#endif /* SHMPOOL_TESTUTIL_H */
