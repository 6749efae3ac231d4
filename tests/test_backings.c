/*
 * test_backings.c - each backing shares one pool between handles and
 * processes: file (second handle, child opening the path), anonymous
 * (inherited by fork), memfd (child opening the fd), from-fd, and an fd
 * passed over a Unix socket (SCM_RIGHTS) to an exec'd process.
 *
 * Exec'd mode: `test_backings --child-fd SOCKFD` receives a pool fd and a
 * token over the socket, opens the pool with shmpool_new_from_fd, takes a
 * slot, writes the token, prints the index and exits without freeing.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define TOKLEN 32

/* ---- helpers ---------------------------------------------------------- */

struct chan {
	int to_child[2];
	int to_parent[2];
};

static void chan_open(struct chan *c)
{
	tu_pipe(c->to_child);
	tu_pipe(c->to_parent);
}

static void chan_close(struct chan *c)
{
	close(c->to_child[0]);
	close(c->to_child[1]);
	close(c->to_parent[0]);
	close(c->to_parent[1]);
}

static void make_token(char tok[TOKLEN], const char *who, pid_t pid)
{
	memset(tok, 0, TOKLEN);
	snprintf(tok, TOKLEN, "%s:%d", who, (int)pid);
}

/* ---- file ---------------------------------------------------------------- */

static void test_file_two_handles(void **state)
{
	(void)state;
	const char *path = tu_path("two");
	shmpool_t *a = assert_pool(shmpool_new(path, 8, 32));
	shmpool_t *b = assert_pool(shmpool_new(path, 8, 32));
	char buf[32];

	uint64_t i = (uint64_t)assert_ok(shmpool_alloc(a, 0));
	assert_int_equal(shmpool_set(a, i, "from a", 6), 0);
	assert_int_equal(shmpool_is_allocated(b, i), 1);
	assert_int_equal(shmpool_owner(b, i), getpid());
	assert_int_equal(shmpool_get(b, i, buf, 32), 32);
	assert_memory_equal(buf, "from a", 7);
	assert_int_equal(shmpool_used(b), 1);

	uint64_t j = (uint64_t)assert_ok(shmpool_alloc(b, 0));
	assert_true(j != i);
	assert_int_equal(shmpool_set(b, j, "from b", 6), 0);
	assert_int_equal(shmpool_get(a, j, buf, 32), 32);
	assert_memory_equal(buf, "from b", 7);
	assert_ptr_not_equal(shmpool_ptr(a, j), shmpool_ptr(b, j));

	/* Free through the other handle. */
	assert_int_equal(shmpool_free(b, i), 0);
	assert_int_equal(shmpool_is_allocated(a, i), 0);
	assert_int_equal(shmpool_used(a), 1);
	struct shmpool_stats sa = tu_stats(a), sb = tu_stats(b);
	assert_int_equal(sa.used, sb.used);
	assert_int_equal(sa.allocs, 2);
	assert_int_equal(sb.allocs, 2);
	assert_int_equal(sa.frees, 1);

	/* Closing one handle leaves the other working. */
	assert_int_equal(shmpool_close(b), 0);
	assert_int_equal(shmpool_get(a, j, buf, 32), 32);
	assert_memory_equal(buf, "from b", 7);
	assert_int_equal(shmpool_free(a, j), 0);
	assert_int_equal(shmpool_used(a), 0);
	assert_int_equal(shmpool_close(a), 0);

	/* Persistence: a later open finds what was left allocated. */
	a = assert_pool(shmpool_new(path, 8, 32));
	i = (uint64_t)assert_ok(shmpool_alloc_set(a, "persist", 7, 0));
	assert_int_equal(shmpool_close(a), 0);
	b = assert_pool(shmpool_new(path, 8, 32));
	assert_int_equal(shmpool_is_allocated(b, i), 1);
	/* This process is alive: still the owner after its handle closed. */
	assert_int_equal(shmpool_owner(b, i), getpid());
	assert_int_equal(shmpool_get(b, i, buf, 32), 32);
	assert_memory_equal(buf, "persist", 8);
	assert_int_equal(shmpool_close(b), 0);
}

struct path_child {
	const char *path;
	struct chan ch;
	int by_open; /* use shmpool_open(ANY, NOCREATE) instead of new */
};

static int child_open_path(void *arg)
{
	struct path_child *a = arg;
	char tok[TOKLEN];
	shmpool_t *q;

	if (a->by_open)
		q = tu_open_existing(a->path);
	else
		q = shmpool_new(a->path, 8, 32);
	CHILD_CHECK(q != NULL, 2);
	int64_t i = shmpool_alloc(q, 1.0);
	CHILD_CHECK(i >= 0, 3);
	CHILD_CHECK(shmpool_owner(q, (uint64_t)i) == getpid(), 4);
	make_token(tok, "child", getpid());
	CHILD_CHECK(shmpool_set(q, (uint64_t)i, tok, TOKLEN) == 0, 5);
	CHILD_CHECK(tu_write_all(a->ch.to_parent[1], &i, sizeof i) == 0, 6);
	/* Hold the slot until told to free it. */
	CHILD_CHECK(tu_wait_fd(a->ch.to_child[0], 20) == 'f', 7);
	CHILD_CHECK(shmpool_free(q, (uint64_t)i) == 0, 8);
	CHILD_CHECK(tu_signal_fd(a->ch.to_parent[1], 'd') == 0, 9);
	CHILD_CHECK(tu_wait_fd(a->ch.to_child[0], 20) == 'x', 10);
	CHILD_CHECK(shmpool_close(q) == 0, 11);
	return 0;
}

static void run_path_child(int by_open)
{
	const char *path = tu_path("bypath");
	shmpool_t *p = assert_pool(shmpool_new(path, 8, 32));
	struct path_child a = { .path = path, .by_open = by_open };
	char tok[TOKLEN], buf[TOKLEN];
	int64_t i = -1;

	uint64_t mine = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	chan_open(&a.ch);
	pid_t pid = tu_fork(child_open_path, &a, 30);
	assert_int_equal(tu_read_all(a.ch.to_parent[0], &i, sizeof i, 20), 0);
	assert_true(i >= 0 && i < 8);
	assert_true((uint64_t)i != mine);
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)i), 1);
	assert_int_equal(shmpool_owner(p, (uint64_t)i), pid);
	assert_int_equal(shmpool_owner(p, mine), getpid());
	assert_int_equal(shmpool_used(p), 2);
	make_token(tok, "child", pid);
	assert_int_equal(shmpool_get(p, (uint64_t)i, buf, TOKLEN), TOKLEN);
	assert_memory_equal(buf, tok, TOKLEN);
	/* A live child's slot is not stale. */
	assert_int_equal(shmpool_recover_stale(p), 0);
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)i), 1);

	assert_int_equal(tu_signal_fd(a.ch.to_child[1], 'f'), 0);
	assert_int_equal(tu_wait_fd(a.ch.to_parent[0], 20), 'd');
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)i), 0);
	assert_int_equal(shmpool_used(p), 1);
	assert_int_equal(tu_signal_fd(a.ch.to_child[1], 'x'), 0);
	tu_wait_ok(pid, 20);
	chan_close(&a.ch);
	struct shmpool_stats st = tu_stats(p);
	assert_int_equal(st.allocs, 2);
	assert_int_equal(st.frees, 1);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_file_child_by_path(void **state)
{
	(void)state;
	run_path_child(0);
}

static void test_file_child_by_open(void **state)
{
	(void)state;
	run_path_child(1);
}

/* ---- anonymous ----------------------------------------------------------- */

struct anon_child {
	shmpool_t *p;
	uint64_t parent_slot;
	struct chan ch;
};

static int child_anon(void *arg)
{
	struct anon_child *a = arg;
	char buf[16], tok[TOKLEN];

	/* The parent's data is visible; its slot still belongs to it. */
	CHILD_CHECK(shmpool_get(a->p, a->parent_slot, buf, 16) == 16, 2);
	CHILD_CHECK(memcmp(buf, "parent", 7) == 0, 3);
	CHILD_CHECK(shmpool_owner(a->p, a->parent_slot) == getppid(), 4);
	/* Our own allocation is ours (a new user after fork). */
	int64_t i = shmpool_alloc(a->p, 1.0);
	CHILD_CHECK(i >= 0, 5);
	CHILD_CHECK(shmpool_owner(a->p, (uint64_t)i) == getpid(), 6);
	make_token(tok, "anon", getpid());
	CHILD_CHECK(shmpool_set(a->p, (uint64_t)i, tok, 16) == 0, 7);
	/* Hand-off: free the parent's slot. */
	CHILD_CHECK(shmpool_free(a->p, a->parent_slot) == 0, 8);
	CHILD_CHECK(tu_write_all(a->ch.to_parent[1], &i, sizeof i) == 0, 9);
	CHILD_CHECK(tu_wait_fd(a->ch.to_child[0], 20) == 'x', 10);
	return 0; /* exits holding slot i */
}

static void test_anon_fork(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new(NULL, 8, 16));
	struct anon_child a = { .p = p };
	char buf[16], tok[TOKLEN];
	int64_t i = -1;

	a.parent_slot = (uint64_t)assert_ok(shmpool_alloc_set(p, "parent", 6, 0));
	chan_open(&a.ch);
	pid_t pid = tu_fork(child_anon, &a, 30);
	assert_int_equal(tu_read_all(a.ch.to_parent[0], &i, sizeof i, 20), 0);
	assert_true(i >= 0 && i < 8);
	assert_int_equal(shmpool_is_allocated(p, a.parent_slot), 0);
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)i), 1);
	assert_int_equal(shmpool_owner(p, (uint64_t)i), pid);
	make_token(tok, "anon", pid);
	assert_int_equal(shmpool_get(p, (uint64_t)i, buf, 16), 16);
	assert_memory_equal(buf, tok, 16);
	assert_int_equal(shmpool_used(p), 1);

	/* After the child, this process still allocates as itself. */
	uint64_t k = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	assert_int_equal(shmpool_owner(p, k), getpid());

	assert_int_equal(tu_signal_fd(a.ch.to_child[1], 'x'), 0);
	tu_wait_ok(pid, 20);
	chan_close(&a.ch);
	/* The child exited holding slot i: stale now. */
	assert_int_equal(shmpool_owner(p, (uint64_t)i), pid);
	assert_int_equal(shmpool_recover_stale(p), 1);
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)i), 0);
	assert_int_equal(shmpool_is_allocated(p, k), 1);
	assert_int_equal(shmpool_used(p), 1);
	struct shmpool_stats st = tu_stats(p);
	assert_int_equal(st.allocs - st.frees, st.used);
	assert_int_equal(shmpool_close(p), 0);
}

/* ---- memfd and from-fd ----------------------------------------------------- */

struct fd_child {
	int fd;
	struct chan ch;
	int hold; /* wait for 'x' before exiting */
};

static int child_from_fd(void *arg)
{
	struct fd_child *a = arg;
	char tok[TOKLEN];
	shmpool_t *q = shmpool_new_from_fd(a->fd);
	CHILD_CHECK(q != NULL, 2);
	CHILD_CHECK(shmpool_capacity(q) == 8, 3);
	int64_t i = shmpool_alloc(q, 1.0);
	CHILD_CHECK(i >= 0, 4);
	make_token(tok, "fd", getpid());
	CHILD_CHECK(shmpool_set(q, (uint64_t)i, tok, 16) == 0, 5);
	CHILD_CHECK(tu_write_all(a->ch.to_parent[1], &i, sizeof i) == 0, 6);
	if (a->hold)
		CHILD_CHECK(tu_wait_fd(a->ch.to_child[0], 20) == 'x', 7);
	return 0;
}

/* Run child_from_fd on @fd and check its slot in @p. */
static void check_fd_child(shmpool_t *p, int fd)
{
	struct fd_child a = { .fd = fd, .hold = 1 };
	char tok[TOKLEN], buf[16];
	int64_t i = -1;

	chan_open(&a.ch);
	pid_t pid = tu_fork(child_from_fd, &a, 30);
	assert_int_equal(tu_read_all(a.ch.to_parent[0], &i, sizeof i, 20), 0);
	assert_true(i >= 0 && i < 8);
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)i), 1);
	assert_int_equal(shmpool_owner(p, (uint64_t)i), pid);
	make_token(tok, "fd", pid);
	assert_int_equal(shmpool_get(p, (uint64_t)i, buf, 16), 16);
	assert_memory_equal(buf, tok, 16);
	assert_int_equal(shmpool_recover_stale(p), 0); /* alive */
	assert_int_equal(tu_signal_fd(a.ch.to_child[1], 'x'), 0);
	tu_wait_ok(pid, 20);
	chan_close(&a.ch);
	assert_int_equal(shmpool_recover_stale(p), 1); /* dead now */
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)i), 0);
}

static void test_memfd(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new_memfd("test-memfd", 8, 16));
	int fd = shmpool_memfd(p);
	char buf[16];
	assert_true(fd >= 0);
	assert_null(shmpool_path(p));

	/* A second handle in this process from the fd. */
	shmpool_t *q = assert_pool(shmpool_new_from_fd(fd));
	assert_int_equal(shmpool_capacity(q), 8);
	assert_int_equal(shmpool_elem_size(q), 16);
	assert_int_equal(shmpool_variant(q), SHMPOOL_RAW);
	assert_true(shmpool_memfd(q) >= 0);
	assert_true(shmpool_memfd(q) != fd); /* duplicated */
	uint64_t i = (uint64_t)assert_ok(shmpool_alloc_set(q, "via q", 5, 0));
	assert_int_equal(shmpool_get(p, i, buf, 16), 16);
	assert_memory_equal(buf, "via q", 6);
	assert_int_equal(shmpool_close(q), 0);
	/* p's fd survived q's close. */
	assert_true(fcntl(fd, F_GETFD) >= 0);
	assert_int_equal(shmpool_get(p, i, buf, 16), 16);

	/* The caller may close its own copy of the fd. */
	int dupfd = dup(fd);
	assert_true(dupfd >= 0);
	q = assert_pool(shmpool_new_from_fd(dupfd));
	assert_int_equal(close(dupfd), 0);
	assert_int_equal(shmpool_get(q, i, buf, 16), 16);
	assert_memory_equal(buf, "via q", 6);
	assert_int_equal(shmpool_free(q, i), 0);
	assert_int_equal(shmpool_close(q), 0);
	assert_int_equal(shmpool_used(p), 0);

	/* A child opens the memfd. */
	check_fd_child(p, fd);
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_from_fd_file(void **state)
{
	(void)state;
	const char *path = tu_path("fdfile");
	shmpool_t *p = assert_pool(shmpool_new(path, 8, 16));
	int fd = open(path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);

	shmpool_t *q = assert_pool(shmpool_new_from_fd(fd));
	assert_true(shmpool_memfd(q) >= 0);
	uint64_t i = (uint64_t)assert_ok(shmpool_alloc(q, 0));
	assert_int_equal(shmpool_is_allocated(p, i), 1);
	assert_int_equal(shmpool_free(p, i), 0);
	assert_int_equal(shmpool_close(q), 0);

	check_fd_child(p, fd);

	/* The FD backing through the options. */
	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	o.backing = SHMPOOL_BACKING_FD;
	o.variant = SHMPOOL_ANY;
	o.fd = fd;
	q = assert_pool(shmpool_open(&o));
	assert_int_equal(shmpool_capacity(q), 8);
	i = (uint64_t)assert_ok(shmpool_alloc(q, 0));
	assert_int_equal(shmpool_is_allocated(p, i), 1);
	assert_int_equal(shmpool_close(q), 0);
	o.variant = SHMPOOL_I64;
	assert_fails_null(shmpool_open(&o), EPROTOTYPE);
	close(fd);
	assert_int_equal(shmpool_close(p), 0);
}

/* ---- SCM_RIGHTS to an exec'd process ---------------------------------------- */

static int send_fd(int sock, int fd, const char *tok)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	char data[TOKLEN];
	struct iovec iov = { data, TOKLEN };
	struct msghdr m = { 0 };
	memset(cbuf, 0, sizeof cbuf);
	memset(data, 0, sizeof data);
	snprintf(data, sizeof data, "%s", tok);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cbuf;
	m.msg_controllen = sizeof cbuf;
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &m, MSG_NOSIGNAL) == TOKLEN ? 0 : -1;
}

static int recv_fd(int sock, char tok[TOKLEN])
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { tok, TOKLEN };
	struct msghdr m = { 0 };
	int fd = -1;
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cbuf;
	m.msg_controllen = sizeof cbuf;
	if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != TOKLEN)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* The exec'd side: argv = { prog, "--child-fd", SOCKFD }. */
static int exec_child_main(int sock)
{
	char tok[TOKLEN];
	alarm(20);
	int fd = recv_fd(sock, tok);
	if (fd < 0) {
		fprintf(stderr, "exec child: no fd received\n");
		return 2;
	}
	shmpool_t *q = shmpool_new_from_fd(fd);
	if (q == NULL) {
		fprintf(stderr, "exec child: new_from_fd: %s\n",
			shmpool_errmsg());
		return 3;
	}
	close(fd);
	int64_t i = shmpool_alloc(q, 5.0);
	if (i < 0) {
		fprintf(stderr, "exec child: alloc: %s\n", shmpool_errmsg());
		return 4;
	}
	if (shmpool_set(q, (uint64_t)i, tok, TOKLEN) != 0) {
		fprintf(stderr, "exec child: set: %s\n", shmpool_errmsg());
		return 5;
	}
	printf("%lld\n", (long long)i);
	fflush(stdout);
	/* exit holding the slot; the handle is closed, the slot stays ours */
	shmpool_close(q);
	return 0;
}

struct exec_args {
	int sock;   /* child's end of the socketpair */
	int out[2]; /* child's stdout */
};

static int child_exec(void *arg)
{
	struct exec_args *a = arg;
	char fdnum[16];
	if (dup2(a->out[1], STDOUT_FILENO) < 0)
		return 120;
	/* The socket must survive exec; everything else is CLOEXEC. */
	if (fcntl(a->sock, F_SETFD, 0) != 0)
		return 121;
	snprintf(fdnum, sizeof fdnum, "%d", a->sock);
	/* The program's path, not "/proc/self/exe": under valgrind that
	 * exec would start the tool's own binary. */
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return 123;
	exe[n] = '\0';
	execl(exe, "test_backings", "--child-fd", fdnum, (char *)NULL);
	fprintf(stderr, "exec %s: %s\n", exe, strerror(errno));
	return 122;
}

static void run_scm_rights(shmpool_t *p, int poolfd)
{
	int sv[2];
	struct exec_args a;
	char tok[TOKLEN], buf[TOKLEN], out[64];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	tu_pipe(a.out);
	a.sock = sv[1];
	pid_t pid = tu_fork(child_exec, &a, 30);
	close(sv[1]);
	close(a.out[1]);
	make_token(tok, "exec-token", pid);
	assert_int_equal(send_fd(sv[0], poolfd, tok), 0);

	/* Read the child's stdout to EOF. */
	size_t n = 0;
	memset(out, 0, sizeof out);
	while (n < sizeof out - 1) {
		int c = tu_wait_fd(a.out[0], 20);
		if (c < 0)
			break;
		out[n++] = (char)c;
	}
	close(a.out[0]);
	close(sv[0]);
	tu_wait_ok(pid, 20);

	char *end = NULL;
	long long idx = strtoll(out, &end, 10);
	if (end == out || *end != '\n')
		fail_msg("exec'd child printed \"%s\"", out);
	assert_true(idx >= 0 && (uint64_t)idx < shmpool_capacity(p));
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)idx), 1);
	assert_int_equal(shmpool_owner(p, (uint64_t)idx), pid);
	assert_int_equal(shmpool_get(p, (uint64_t)idx, buf, TOKLEN), TOKLEN);
	assert_memory_equal(buf, tok, TOKLEN);
	/* The exec'd process was a proper user: its slot is recoverable. */
	assert_int_equal(shmpool_recover_stale(p), 1);
	assert_int_equal(shmpool_is_allocated(p, (uint64_t)idx), 0);
	assert_int_equal(tu_stats(p).recoveries, 1);
}

static void test_scm_rights_memfd(void **state)
{
	(void)state;
	shmpool_t *p = assert_pool(shmpool_new_memfd("scm", 8, TOKLEN));
	uint64_t mine = (uint64_t)assert_ok(shmpool_alloc(p, 0));
	run_scm_rights(p, shmpool_memfd(p));
	assert_int_equal(shmpool_is_allocated(p, mine), 1);
	assert_int_equal(shmpool_used(p), 1);
	assert_int_equal(shmpool_close(p), 0);
}

static void test_scm_rights_file(void **state)
{
	(void)state;
	const char *path = tu_path("scm-file");
	shmpool_t *p = assert_pool(shmpool_new(path, 8, TOKLEN));
	int fd = open(path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	run_scm_rights(p, fd);
	close(fd);
	assert_int_equal(shmpool_used(p), 0);
	assert_int_equal(shmpool_close(p), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup_dir, tu_teardown_dir)

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--child-fd") == 0)
		return exec_child_main(atoi(argv[2]));
	tu_init(120);
	const struct CMUnitTest tests[] = {
		T(test_file_two_handles),
		T(test_file_child_by_path),
		T(test_file_child_by_open),
		T(test_anon_fork),
		T(test_memfd),
		T(test_from_fd_file),
		T(test_scm_rights_memfd),
		T(test_scm_rights_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
