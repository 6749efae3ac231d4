/*
 * runner.c - one run: fork the workers, place them, open the start gate,
 * time the phases, reap, verify, summarise.
 *
 * Structure (will-it-scale's, with the gaps closed):
 *   - the workers are forked after the pool exists (an anonymous pool is
 *     inherited) and pin themselves first thing, before they touch their
 *     counters or the pool, so first-touch pages land on their node;
 *   - every worker announces itself in ctl->ready and then blocks reading
 *     the start-gate pipe; the parent closes the write end once, and every
 *     reader sees EOF at the same moment (no staggered start);
 *   - the parent alone keeps time: it snapshots the per-worker counters at
 *     the start and the end of the measured phase, so clock reads never
 *     enter the workers' loops (except sampled latencies);
 *   - PR_SET_PDEATHSIG takes the workers down with the parent, a deadline
 *     takes down a hung run, and any worker exit the run did not ask for
 *     fails it.
 *
 * mode = threads runs the same worker body on pthreads instead: the gate
 * is the same pipe (each thread reads it; EOF reaches all), a thread pins
 * itself with pthread_setaffinity_np, measures its CPU with RUSAGE_THREAD,
 * and on return marks itself done and sends SIGCHLD to the parent's
 * thread, so the parent's loop wakes as it does for a child's exit.  A
 * thread cannot be killed: a hung thread run ends the whole harness.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mntent.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <numa.h>
#include <numaif.h>

#include "runner.h"
#include "workload.h"

volatile int stress_interrupted;

const struct workload_ops *const workloads[] = {
#define WL(name) &wl_##name,
#include "workloads.def"
#undef WL
};
const unsigned nworkloads = sizeof(workloads) / sizeof(workloads[0]);

const struct workload_ops *workload_find(const char *name)
{
	for (unsigned i = 0; i < nworkloads; i++)
		if (strcmp(workloads[i]->name, name) == 0)
			return workloads[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Environment and placement                                           */
/* ------------------------------------------------------------------ */

void env_init(struct env *env)
{
	memset(env, 0, sizeof(*env));
	env->ncpus = allowed_cpus(env->cpus, 1024);
	env->numa = numa_available() >= 0;
	env->numa_nodes = env->numa ? numa_num_configured_nodes() : 1;
}

static int node_of(const struct env *env, int cpu)
{
	if (!env->numa)
		return 0;
	int n = numa_node_of_cpu(cpu);
	return n < 0 ? 0 : n;
}

static bool cpu_allowed(const struct env *env, int cpu)
{
	for (int k = 0; k < env->ncpus; k++)
		if (env->cpus[k] == cpu)
			return true;
	return false;
}

/*
 * The CPU of worker @i under @pin, or -1 for no pinning.
 * compact: node 0's CPUs, then node 1's ...; scatter: one CPU of each node
 * in turn, so two workers land on two nodes when there are two.
 */
static int place(const struct env *env, const char *pin, unsigned i)
{
	int order[1024], n = 0;
	if (strcmp(pin, "none") == 0 || env->ncpus == 0)
		return -1;
	if (strncmp(pin, "cpus:", 5) == 0) {
		char err[96];
		n = parse_cpulist(pin + 5, order, 1024, err, sizeof(err));
		return n > 0 ? order[i % (unsigned)n] : -1;
	}
	int maxnode = 0;
	for (int k = 0; k < env->ncpus; k++)
		if (node_of(env, env->cpus[k]) > maxnode)
			maxnode = node_of(env, env->cpus[k]);
	if (strcmp(pin, "compact") == 0) {
		for (int node = 0; node <= maxnode; node++)
			for (int k = 0; k < env->ncpus; k++)
				if (node_of(env, env->cpus[k]) == node)
					order[n++] = env->cpus[k];
	} else { /* scatter */
		int taken[1024] = { 0 };
		while (n < env->ncpus) {
			for (int node = 0; node <= maxnode; node++) {
				for (int k = 0; k < env->ncpus; k++) {
					if (taken[k] ||
					    node_of(env, env->cpus[k]) != node)
						continue;
					taken[k] = 1;
					order[n++] = env->cpus[k];
					break;
				}
			}
		}
	}
	return order[i % (unsigned)n];
}

/* Sorted CPU numbers as "0-3,8". */
static void cpulist_text(const int *cpus, int n, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (int k = 0; k < n && used < len; k++) {
		int j = k;
		while (j + 1 < n && cpus[j + 1] == cpus[j] + 1)
			j++;
		if (j > k)
			used += (size_t)snprintf(buf + used, len - used,
						 "%s%d-%d", k ? "," : "",
						 cpus[k], cpus[j]);
		else
			used += (size_t)snprintf(buf + used, len - used,
						 "%s%d", k ? "," : "", cpus[k]);
		k = j;
	}
}

/* Field @key of /proc/meminfo (kB or a count); -1 if absent. */
static long meminfo(const char *key)
{
	char line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* Huge pages the kernel can hand out at all: the reserved pool plus the
 * surplus it may add; 0 means hugepages = on cannot work. */
static long huge_pages_reserved(void)
{
	long total = meminfo("HugePages_Total"), over = 0;
	FILE *f = fopen("/proc/sys/vm/nr_overcommit_hugepages", "r");
	if (f != NULL) {
		if (fscanf(f, "%ld", &over) != 1)
			over = 0;
		fclose(f);
	}
	return total < 0 ? 0 : total + over;
}

int env_check(const struct env *env, const char *file, const struct point *pt)
{
	int problems = 0;
	const struct config *c = &pt->cfg;
	const struct origin *o;
	if (strncmp(c->pin, "cpus:", 5) == 0) {
		int cpus[1024], n;
		char err[96];
		n = parse_cpulist(c->pin + 5, cpus, 1024, err, sizeof(err));
		for (int k = 0; k < n; k++) {
			if (cpu_allowed(env, cpus[k]))
				continue;
			o = &pt->where[OPT_ID_pin];
			char avail[256];
			cpulist_text(env->cpus, env->ncpus, avail,
				     sizeof(avail));
			fprintf(stderr, "%s:%d: key 'pin': CPU %d does not exist "
				"or is not available to this process (available: "
				"%s)\n", file, o->line, cpus[k], avail);
			problems++;
			break;
		}
	}
	if (strncmp(c->mem, "node:", 5) == 0) {
		int node = atoi(c->mem + 5);
		bool ok = env->numa && node <= numa_max_node() &&
			numa_bitmask_isbitset(numa_all_nodes_ptr,
					      (unsigned)node);
		if (!ok) {
			o = &pt->where[OPT_ID_mem];
			fprintf(stderr, "%s:%d: key 'mem': NUMA node %d does "
				"not exist or has no memory (%d node%s)\n",
				file, o->line, node, env->numa_nodes,
				env->numa_nodes == 1 ? "" : "s");
			problems++;
		}
	}
	if (strcmp(c->hugepages, "on") == 0 && huge_pages_reserved() <= 0) {
		o = &pt->where[OPT_ID_hugepages];
		fprintf(stderr, "%s:%d: key 'hugepages': on needs reserved huge "
			"pages and none are (HugePages_Total 0, "
			"nr_overcommit_hugepages 0): as root, echo N > "
			"/proc/sys/vm/nr_hugepages\n", file, o->line);
		problems++;
	}
	if (strcmp(c->mem, "interleave") == 0 && !env->numa) {
		o = &pt->where[OPT_ID_mem];
		fprintf(stderr, "%s:%d: key 'mem': interleave needs NUMA "
			"support, which this kernel lacks\n", file, o->line);
		problems++;
	}
	return problems;
}

/* ------------------------------------------------------------------ */
/* Helpers for workloads                                               */
/* ------------------------------------------------------------------ */

void wl_error(const struct run *r, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "stress: %s: ", r->wl->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

enum shmpool_variant wl_variant(const char *name)
{
	static const char *const names[] = { "raw", "i64", "i32", "f64",
					     "str" };
	for (int v = 0; v < 5; v++)
		if (strcmp(name, names[v]) == 0)
			return (enum shmpool_variant)v;
	return SHMPOOL_RAW;
}

static void mem_policy(const struct config *c, void *addr, size_t size)
{
	if (numa_available() < 0)
		return;
	if (strcmp(c->mem, "interleave") == 0)
		numa_interleave_memory(addr, size, numa_all_nodes_ptr);
	else if (strncmp(c->mem, "node:", 5) == 0)
		numa_tonode_memory(addr, size, atoi(c->mem + 5));
}

/* The shmem THP setting, when it makes MADV_HUGEPAGE useless. */
static const char *thp_refused(void)
{
	static char mode[32];
	char line[256];
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled",
			"r");
	if (f == NULL)
		return "absent";
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
	if (a == NULL || b == NULL)
		return NULL;
	snprintf(mode, sizeof(mode), "%.*s", (int)(b - a - 1), a + 1);
	return strcmp(mode, "never") == 0 || strcmp(mode, "deny") == 0 ?
		mode : NULL;
}

/*
 * hugepages and prefault on [addr, addr + len), widened to whole pages:
 * the harness sees only the mapping the library made, so THP is advice on
 * that range, and prefaulting touches each page here, before the workers
 * exist (so before the start gate).
 */
static void mem_options(struct run *r, void *addr, size_t len)
{
	const struct config *c = r->cfg;
	uintptr_t a = (uintptr_t)addr & ~(uintptr_t)4095;
	uintptr_t e = ((uintptr_t)addr + len + 4095) & ~(uintptr_t)4095;
	if (len == 0)
		return;
	/* hugepages = on: the memory is on huge pages already (the pool
	 * and run_shared() made it so); only prefault applies. */
	if (strcmp(c->hugepages, "thp") == 0) {
		static bool warned;
		const char *no = thp_refused();
		if (madvise((void *)a, e - a, MADV_HUGEPAGE) != 0)
			wl_error(r, "madvise(MADV_HUGEPAGE): %s",
				 strerror(errno));
		else if (no && !warned)
			wl_error(r, "hugepages = thp: the kernel's "
				 "transparent_hugepage/shmem_enabled is %s, so "
				 "shared memory stays on small pages", no);
		warned = warned || no;
	}
	if (strcmp(c->prefault, "on") == 0) {
#ifdef MADV_POPULATE_WRITE
		if (madvise((void *)a, e - a, MADV_POPULATE_WRITE) == 0)
			return;
#endif
		/* Write each page's first byte back to itself: faults the
		 * page in writable without changing what the pool holds
		 * (nothing runs yet). */
		for (uintptr_t p = a; p < e; p += 4096) {
			volatile char *b = (volatile char *)p;
			*b = *b;
		}
	}
}

int run_shared(struct run *r, size_t size)
{
	bool huge = strcmp(r->cfg->hugepages, "on") == 0;
	size_t page = huge ? (size_t)meminfo("Hugepagesize") << 10 : 4096;
	if (huge && (long)page <= 0) {
		wl_error(r, "hugepages = on: no Hugepagesize in /proc/meminfo "
			 "(a kernel without huge pages)");
		return -1;
	}
	/* MAP_HUGETLB maps and unmaps whole huge pages. */
	size = (size + page - 1) / page * page;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS | (huge ? MAP_HUGETLB : 0),
		       -1, 0);
	if (p == MAP_FAILED && huge && errno == ENOMEM) {
		wl_error(r, "hugepages = on: mmap(MAP_HUGETLB) of %zu kB: not "
			 "enough free huge pages: reserve them with `echo N > "
			 "/proc/sys/vm/nr_hugepages` (see HugePages_Free in "
			 "/proc/meminfo)", size >> 10);
		return -1;
	}
	if (p == MAP_FAILED) {
		wl_error(r, "mmap %zu bytes: %s", size, strerror(errno));
		return -1;
	}
	mem_policy(r->cfg, p, size);
	mem_options(r, p, size);
	r->shared = p;
	r->shared_size = size;
	return 0;
}

static char pool_path[PATH_MAX];

/* The first hugetlbfs mount (its default page size or not), for
 * backing = file with hugepages = on; NULL if there is none. */
static const char *hugetlbfs_mount(void)
{
	static char dir[PATH_MAX - 64];
	struct mntent *m;
	FILE *f = setmntent("/proc/mounts", "r");
	if (f == NULL)
		return NULL;
	dir[0] = '\0';
	while ((m = getmntent(f)) != NULL)
		if (strcmp(m->mnt_type, "hugetlbfs") == 0 &&
		    access(m->mnt_dir, W_OK) == 0 &&
		    strlen(m->mnt_dir) < sizeof(dir)) {
			strcpy(dir, m->mnt_dir);
			break;
		}
	endmntent(f);
	return dir[0] ? dir : NULL;
}

int wl_make_pool(struct run *r, enum shmpool_variant variant,
		 uint64_t capacity, uint64_t elem_size)
{
	const struct config *c = r->cfg;
	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	o.variant = variant;
	o.capacity = capacity;
	o.elem_size = variant == SHMPOOL_RAW || variant == SHMPOOL_STR ?
		elem_size : 0;
	/* Respawned crash victims are new users until recovered. */
	unsigned users = r->nworkers * 4 + 64;
	o.max_users = users < SHMPOOL_DEFAULT_USERS ? SHMPOOL_DEFAULT_USERS :
		users > SHMPOOL_MAX_USERS ? SHMPOOL_MAX_USERS : users;
	if (strcmp(c->backing, "memfd") == 0) {
		o.backing = SHMPOOL_BACKING_MEMFD;
		o.name = "stress";
	} else if (strcmp(c->backing, "file") == 0) {
		const char *dir = "/dev/shm";
		if (strcmp(c->hugepages, "on") == 0 &&
		    (dir = hugetlbfs_mount()) == NULL) {
			wl_error(r, "hugepages = on with backing = file needs a "
				 "hugetlbfs mount, and /proc/mounts lists none "
				 "(as root: mount -t hugetlbfs none "
				 "/dev/hugepages)");
			return -1;
		}
		snprintf(pool_path, sizeof(pool_path), "%s/stress-%ld.pool",
			 dir, (long)getpid());
		o.backing = SHMPOOL_BACKING_FILE;
		o.name = pool_path;
		o.flags = SHMPOOL_EXCL;
		unlink(pool_path);
	}
	if (strcmp(c->hugepages, "on") == 0)
		o.flags |= SHMPOOL_HUGETLB;
	o.cache = (unsigned)c->cache;
	if (strcmp(c->mem, "interleave") == 0) {
		o.mempolicy = SHMPOOL_MEM_INTERLEAVE;
	} else if (strncmp(c->mem, "node:", 5) == 0) {
		o.mempolicy = SHMPOOL_MEM_BIND;
		o.numa_node = atoi(c->mem + 5);
	}
	r->pool = shmpool_open(&o);
	if (r->pool == NULL) {
		wl_error(r, "cannot create the pool: %s", shmpool_errmsg());
		return -1;
	}
	mem_options(r, shmpool_data_ptr(r->pool),
		    shmpool_capacity(r->pool) * shmpool_elem_size(r->pool));
	return 0;
}

uint64_t wl_total_ops(const struct run *r)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < r->nworkers; i++)
		sum += atomic_load(&r->ws[i].ops);
	return sum;
}

void wl_violation(struct run *r, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "stress: %s: violation: ", r->wl->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	r->violations++;
}

void wl_check_idle_pool(struct run *r, uint64_t expect_allocs)
{
	struct shmpool_stats st;
	if (shmpool_stats(r->pool, &st) != 0) {
		wl_violation(r, "shmpool_stats: %s", shmpool_errmsg());
		return;
	}
	if (st.used != 0)
		wl_violation(r, "%llu slot(s) still allocated after every worker "
			  "freed its slots and exited",
			  (unsigned long long)st.used);
	if (st.allocs - st.frees != st.used + st.cached)
		wl_violation(r, "allocs %llu - frees %llu != used %llu + "
			  "cached %llu", (unsigned long long)st.allocs,
			  (unsigned long long)st.frees,
			  (unsigned long long)st.used,
			  (unsigned long long)st.cached);
	/* with caches, allocs counts refills of caches, not allocations */
	if (expect_allocs != UINT64_MAX && !r->cfg->cache &&
	    st.allocs != expect_allocs)
		wl_violation(r, "the pool counted %llu allocations, the workers "
			  "%llu", (unsigned long long)st.allocs,
			  (unsigned long long)expect_allocs);
}

void lat_record(struct worker *w, uint64_t ns)
{
	uint64_t cost = w->run->ctl->timer_cost_ns;
	hist_add(&w->sh->hist, ns > cost ? ns - cost : 0);
}

/* Processes: the worker's own totals; threads: the thread's (Linux). */
static int ru_who = RUSAGE_SELF;

static void rusage_delta(struct worker *w)
{
	struct rusage ru;
	getrusage(ru_who, &ru);
	w->sh->ru_utime_us += (ru.ru_utime.tv_sec - w->ru0.ru_utime.tv_sec) *
		1000000 + (ru.ru_utime.tv_usec - w->ru0.ru_utime.tv_usec);
	w->sh->ru_stime_us += (ru.ru_stime.tv_sec - w->ru0.ru_stime.tv_sec) *
		1000000 + (ru.ru_stime.tv_usec - w->ru0.ru_stime.tv_usec);
	w->sh->ru_nvcsw += ru.ru_nvcsw - w->ru0.ru_nvcsw;
	w->sh->ru_nivcsw += ru.ru_nivcsw - w->ru0.ru_nivcsw;
	w->ru0 = ru;
}

bool worker_phase_change(struct worker *w, unsigned phase)
{
	if (phase == PHASE_STOP) {
		if (w->measuring) {
			rusage_delta(w);
			w->measuring = false;
		}
		return false;
	}
	if (phase == PHASE_MEASURE && !w->measuring) {
		getrusage(ru_who, &w->ru0);
		w->measuring = true;
	}
	w->seen_phase = phase;
	return true;
}

void worker_park(struct worker *w)
{
	struct run_ctl *ctl = w->run->ctl;
	if (!(atomic_load_explicit(&ctl->pause, memory_order_acquire) & 1))
		return;
	atomic_fetch_add(&ctl->parked, 1);
	while ((atomic_load(&ctl->pause) & 1) &&
	       atomic_load(&ctl->phase) != PHASE_STOP)
		usleep(50);
	atomic_fetch_sub(&ctl->parked, 1);
}

/* ------------------------------------------------------------------ */
/* Workers                                                             */
/* ------------------------------------------------------------------ */

static pid_t parent_pid;
static int gate_rd = -1;
static const struct env *cur_env;

/* mode = threads: one per worker, private to the runner. */
struct thread_slot {
	struct run *r;
	unsigned index;
	pthread_t tid;
	_Atomic int done;
	int rc;
};
static struct thread_slot *tslots;
static pthread_t parent_thread;

/*
 * What a worker does, process or thread: pin, announce, wait at the gate,
 * run the workload, report.  Returns the exit code: 0, 1 failed, 3 the
 * environment refused (pinning).
 */
static int worker_body(struct run *r, unsigned i)
{
	int cpu = place(cur_env, r->cfg->pin, i);
	if (cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		int rc = r->threads ?
			pthread_setaffinity_np(pthread_self(), sizeof(set),
					       &set) :
			sched_setaffinity(0, sizeof(set), &set) != 0 ? errno :
			0;
		if (rc != 0) {
			fprintf(stderr, "stress: worker %u: pin to CPU %d: "
				"%s\n", i, cpu, strerror(rc));
			return 3;
		}
	}
	struct worker w;
	memset(&w, 0, sizeof(w));
	w.run = r;
	w.sh = &r->ws[i];
	w.index = i;
	w.generation = r->generation[i];
	w.ops = atomic_load(&w.sh->ops);
	w.target = (uint64_t)r->cfg->ops;
	w.seen_phase = PHASE_GATE;
	w.rng = r->seed ^ (0x9E3779B97F4A7C15ull * (i + 1)) ^
		((uint64_t)w.generation << 40);
	if (w.rng == 0)
		w.rng = 1;
	w.sample_every = (uint32_t)r->cfg->latency_sample;
	/* A random first sample keeps workers' sampled ops out of step. */
	w.countdown = w.sample_every ?
		1 + (uint32_t)(rng_next(&w.rng) % w.sample_every) : UINT32_MAX;
	w.sh->pid = r->threads ? gettid() : getpid();

	atomic_fetch_add(&r->ctl->ready, 1);
	char c;
	while (read(gate_rd, &c, 1) < 0 && errno == EINTR)
		;
	if (!r->threads) /* threads share the parent's descriptor */
		close(gate_rd);
	if (w.target) {
		getrusage(ru_who, &w.ru0);
		w.measuring = true;
	}
	/* Test-only: a worker that dies on its own must fail the run (a
	 * thread cannot die alone: it fails instead). */
	if (i == 0 && w.generation == 0 && r->fault_die) {
		if (r->threads)
			return 1;
		raise(SIGKILL);
	}
	int rc = r->wl->worker(r, &w);
	if (w.target) {
		w.sh->done_ns = now_ns();
		rusage_delta(&w);
	} else if (w.measuring) {
		rusage_delta(&w);
	}
	w.sh->cpu = sched_getcpu();
	return rc ? 1 : 0;
}

static void __attribute__((noreturn))
child_main(struct run *r, unsigned i)
{
	/* Die with the harness: a killed parent must not leave workers
	 * spinning on a pool nobody measures. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent_pid)
		_exit(1);
	signal(SIGINT, SIG_IGN); /* the parent decides; it kills us */
	signal(SIGTERM, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	_exit(worker_body(r, i));
}

/* Worker threads keep SIGCHLD blocked (inherited): only the parent's
 * thread waits for it, and a thread's end sends it there. */
static void *thread_main(void *arg)
{
	struct thread_slot *t = arg;
	t->rc = worker_body(t->r, t->index);
	atomic_store(&t->done, 1);
	pthread_kill(parent_thread, SIGCHLD);
	return NULL;
}

static pid_t spawn(struct run *r, unsigned i)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		child_main(r, i);
	if (pid > 0)
		r->pids[i] = pid;
	return pid;
}

int runner_kill_worker(struct run *r, unsigned i)
{
	pid_t pid = r->pids[i];
	int st;
	if (pid <= 0)
		return -1;
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	r->pids[i] = 0;
	r->kills++;
	return 0;
}

int runner_respawn_worker(struct run *r, unsigned i)
{
	r->generation[i]++;
	return spawn(r, i) > 0 ? 0 : -1;
}

int runner_pause(struct run *r)
{
	atomic_fetch_add(&r->ctl->pause, 1);
	uint64_t until = now_ns() + 5000000000ull;
	for (;;) {
		unsigned live = 0;
		for (unsigned i = 0; i < r->nworkers; i++)
			live += r->pids[i] > 0;
		if (atomic_load(&r->ctl->parked) >= live)
			return 0;
		if (now_ns() > until)
			return -1;
		usleep(100);
	}
}

void runner_resume(struct run *r)
{
	atomic_fetch_add(&r->ctl->pause, 1);
	/* Wait until every worker has left worker_park(): one killed while
	 * still counted there would make the next pause end early, with a
	 * live worker in the middle of an operation. */
	uint64_t until = now_ns() + 5000000000ull;
	while (atomic_load(&r->ctl->parked) > 0 && now_ns() < until)
		usleep(50);
}

/* ------------------------------------------------------------------ */
/* One run                                                             */
/* ------------------------------------------------------------------ */

static uint64_t timer_cost(void)
{
	uint64_t best = UINT64_MAX;
	for (int k = 0; k < 1000; k++) {
		uint64_t a = now_ns(), b = now_ns();
		if (b - a < best)
			best = b - a;
	}
	return best;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u),
			       (long)(ns % 1000000000u) };
	nanosleep(&ts, NULL);
}

/*
 * Sleep until @ns passed or a child changed state, whichever comes first.
 * The parent must not poll: on a machine with as many workers as CPUs,
 * each wake-up of the parent preempts a worker and shows in the figures.
 */
static void wait_event(uint64_t ns)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	struct timespec ts = { (time_t)(ns / 1000000000u),
			       (long)(ns % 1000000000u) };
	sigtimedwait(&set, NULL, &ts);
}

static char *join_ints(const int *v, unsigned n)
{
	size_t cap = (size_t)n * 8 + 2;
	char *s = malloc(cap), *p = s;
	if (s == NULL)
		abort();
	*p = '\0';
	for (unsigned i = 0; i < n; i++)
		p += snprintf(p, cap - (size_t)(p - s), "%s%d", i ? ";" : "",
			      v[i]);
	return s;
}

/*
 * Stop the workers; in a time-based run turn the start snapshot @c0 into
 * per-worker deltas (or zeros if measuring had not begun).  Returns the
 * end time of the measurement.
 */
static uint64_t end_measure(struct run *r, uint64_t *c0, bool measured)
{
	uint64_t t = now_ns();
	if (r->cfg->ops == 0)
		for (unsigned i = 0; i < r->nworkers; i++)
			c0[i] = measured ? atomic_load(&r->ws[i].ops) - c0[i] :
				0;
	atomic_store(&r->ctl->phase, PHASE_STOP);
	return t;
}

static unsigned live_workers(const struct run *r)
{
	unsigned n = 0;
	for (unsigned i = 0; i < r->nworkers; i++)
		n += r->pids[i] > 0;
	return n;
}

/* Threads: join those done; a failure the run did not ask for fails it. */
static void reap_threads(struct run *r, bool stopping, const char **status)
{
	for (unsigned i = 0; i < r->nworkers; i++) {
		struct thread_slot *t = &tslots[i];
		if (r->pids[i] <= 0 || !atomic_load(&t->done))
			continue;
		pthread_join(t->tid, NULL);
		r->pids[i] = 0;
		if (t->rc == 0 && (stopping || r->cfg->ops > 0))
			continue;
		if (*status == NULL || strcmp(*status, "ok") == 0) {
			fprintf(stderr, "stress: worker %u (thread %d) %s "
				"with status %d\n", i, (int)r->ws[i].pid,
				t->rc == 0 ? "stopped early" : "failed", t->rc);
			*status = t->rc == 3 ? "env_error" : "worker_failed";
		}
	}
}

/* Reap what exited; an exit the run did not ask for fails it. */
static void reap(struct run *r, bool stopping, const char **status)
{
	int st;
	pid_t pid;
	if (r->threads) {
		reap_threads(r, stopping, status);
		return;
	}
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		unsigned i;
		for (i = 0; i < r->nworkers; i++)
			if (r->pids[i] == pid)
				break;
		if (i == r->nworkers)
			continue;
		r->pids[i] = 0;
		bool clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;
		if (clean && (stopping || r->cfg->ops > 0))
			continue;
		if (*status == NULL || strcmp(*status, "ok") == 0) {
			if (WIFSIGNALED(st)) {
				fprintf(stderr, "stress: worker %u (pid %d) "
					"killed by signal %d (%s)\n", i,
					(int)pid, WTERMSIG(st),
					strsignal(WTERMSIG(st)));
				*status = "worker_died";
			} else {
				fprintf(stderr, "stress: worker %u (pid %d) "
					"exited with status %d\n", i,
					(int)pid, WEXITSTATUS(st));
				*status = WIFEXITED(st) &&
					WEXITSTATUS(st) == 3 ?
					"env_error" : "worker_failed";
			}
		}
	}
}

static void kill_all(struct run *r)
{
	if (r->threads) {
		/* Threads only stop by themselves: ask, wait a little, and
		 * give up on the whole process if one does not. */
		atomic_store(&r->ctl->phase, PHASE_STOP);
		uint64_t until = now_ns() + 2000000000ull;
		for (unsigned i = 0; i < r->nworkers; i++) {
			if (r->pids[i] <= 0)
				continue;
			while (!atomic_load(&tslots[i].done) &&
			       now_ns() < until)
				sleep_ns(1000000);
			if (!atomic_load(&tslots[i].done)) {
				fprintf(stderr, "stress: worker thread %u does "
					"not stop and a thread cannot be "
					"killed: exiting\n", i);
				fflush(NULL);
				_exit(1);
			}
			pthread_join(tslots[i].tid, NULL);
			r->pids[i] = 0;
		}
		return;
	}
	for (unsigned i = 0; i < r->nworkers; i++)
		if (r->pids[i] > 0)
			kill(r->pids[i], SIGKILL);
	for (unsigned i = 0; i < r->nworkers; i++) {
		if (r->pids[i] > 0) {
			int st;
			while (waitpid(r->pids[i], &st, 0) < 0 &&
			       errno == EINTR)
				;
			r->pids[i] = 0;
		}
	}
}

static int node_of_addr(void *addr)
{
	int node = -1;
	if (numa_available() < 0)
		return -1;
	if (get_mempolicy(&node, NULL, 0, addr, MPOL_F_NODE | MPOL_F_ADDR))
		return -1;
	return node;
}

void result_free(struct result *res)
{
	free(res->cpus);
	free(res->nodes);
	res->cpus = res->nodes = NULL;
}

void run_point(const struct env *env, const struct point *pt,
	       struct result *res)
{
	const struct config *c = &pt->cfg;
	unsigned n = (unsigned)c->workers;
	struct run r;
	const char *status = NULL;
	memset(res, 0, sizeof(*res));
	memset(&r, 0, sizeof(r));
	res->mem_node = -1;

	time_t wall = time(NULL);
	struct tm tm;
	gmtime_r(&wall, &tm);
	strftime(res->timestamp, sizeof(res->timestamp), "%Y-%m-%dT%H:%M:%SZ",
		 &tm);
	res->oversubscribed = (int)n > env->ncpus;

	cur_env = env;
	parent_pid = getpid();
	r.cfg = c;
	r.wl = pt->wl;
	r.nworkers = n;
	r.threads = strcmp(c->mode, "threads") == 0;
	ru_who = r.threads ? RUSAGE_THREAD : RUSAGE_SELF;
	parent_thread = pthread_self();
	r.seed = (uint64_t)c->seed;
	r.mem_node = -1;
	const char *fault = getenv("SHMPOOL_STRESS_FAULT");
	r.fault_skip_free = fault && strcmp(fault, "skip_free") == 0;
	r.fault_die = fault && strcmp(fault, "worker_dies") == 0;

	size_t ctl_size = sizeof(struct run_ctl) +
		n * sizeof(struct worker_shared);
	void *shm = mmap(NULL, ctl_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED) {
		fprintf(stderr, "stress: mmap: %s\n", strerror(errno));
		res->status = "setup_failed";
		res->failed = true;
		return;
	}
	r.ctl = shm;
	r.ws = (struct worker_shared *)(r.ctl + 1);
	r.ctl->timer_cost_ns = timer_cost();
	r.pids = calloc(n, sizeof(*r.pids));
	r.generation = calloc(n, sizeof(*r.generation));
	uint64_t *c0 = calloc(n, sizeof(*c0));
	tslots = calloc(n, sizeof(*tslots));
	if (!r.pids || !r.generation || !c0 || !tslots)
		abort();

	if (r.wl->setup && r.wl->setup(&r) != 0) {
		status = "setup_failed";
		goto teardown;
	}

	/* SIGCHLD stays pending for wait_event(); workers unblock it. */
	sigset_t chld, oldmask;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &oldmask);

	int gate[2];
	if (pipe(gate) != 0) {
		fprintf(stderr, "stress: pipe: %s\n", strerror(errno));
		status = "setup_failed";
		sigprocmask(SIG_SETMASK, &oldmask, NULL);
		goto teardown;
	}
	gate_rd = gate[0];
	fcntl(gate[1], F_SETFD, FD_CLOEXEC);
	for (unsigned i = 0; r.threads && i < n; i++) {
		tslots[i] = (struct thread_slot){ .r = &r, .index = i };
		int rc = pthread_create(&tslots[i].tid, NULL, thread_main,
					&tslots[i]);
		if (rc != 0) {
			fprintf(stderr, "stress: pthread_create: %s\n",
				strerror(rc));
			status = "setup_failed";
			close(gate[1]);
			kill_all(&r);
			goto close_gate;
		}
		r.pids[i] = 1; /* live */
	}
	for (unsigned i = 0; !r.threads && i < n; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			close(gate[1]);
			child_main(&r, i);
		}
		if (pid < 0) {
			fprintf(stderr, "stress: fork: %s\n", strerror(errno));
			status = "setup_failed";
			close(gate[1]);
			kill_all(&r);
			goto close_gate;
		}
		r.pids[i] = pid;
	}

	bool timed = c->ops == 0;
	uint64_t deadline_ns = (uint64_t)c->deadline;
	if (deadline_ns == 0)
		deadline_ns = timed ? (uint64_t)(c->warmup + c->duration) +
			30000000000ull : 300000000000ull;
	uint64_t start = now_ns(), deadline = start + deadline_ns;

	/* Wait for every worker to be placed and attached. */
	while (atomic_load(&r.ctl->ready) < n && status == NULL) {
		reap(&r, false, &status);
		if (now_ns() > deadline || stress_interrupted)
			break;
		sleep_ns(200000);
	}
	if (status == NULL && atomic_load(&r.ctl->ready) < n)
		status = stress_interrupted ? "interrupted" : "hung";

	atomic_store(&r.ctl->phase, timed ? PHASE_WARMUP : PHASE_MEASURE);
	uint64_t t_release = now_ns(), t0 = t_release, t1 = 0;
	close(gate[1]); /* the start gate: every reader sees EOF at once */
	if (status) {
		atomic_store(&r.ctl->phase, PHASE_STOP);
		kill_all(&r);
		goto close_gate;
	}

	uint64_t measure_at = t_release + (uint64_t)c->warmup;
	uint64_t stop_at = 0;
	bool measuring = !timed, stopping = false;
	while (live_workers(&r) > 0) {
		uint64_t now = now_ns();
		if (timed && !measuring && now >= measure_at) {
			for (unsigned i = 0; i < n; i++)
				c0[i] = atomic_load(&r.ws[i].ops);
			t0 = now_ns();
			atomic_store(&r.ctl->phase, PHASE_MEASURE);
			measuring = true;
			stop_at = t0 + (uint64_t)c->duration;
		} else if (timed && measuring && !stopping && now >= stop_at) {
			t1 = end_measure(&r, c0, true);
			stopping = true;
		}
		if (!stopping && r.wl->tick)
			r.wl->tick(&r, now);
		reap(&r, stopping, &status);
		if (stress_interrupted && !status)
			status = "interrupted";
		if (status && !stopping) {
			/* A failed run stops at once; its figures cover what
			 * was measured until then. */
			t1 = end_measure(&r, c0, timed && measuring);
			if (timed && !measuring)
				t0 = t1;
			stopping = true;
		}
		if (now > deadline) {
			fprintf(stderr, "stress: %s: run exceeded its deadline "
				"of %.1fs; killing %u worker(s)\n", pt->section,
				(double)deadline_ns / 1e9, live_workers(&r));
			if (status == NULL)
				status = "hung";
			if (!stopping) {
				t1 = end_measure(&r, c0, timed && measuring);
				if (timed && !measuring)
					t0 = t1;
				stopping = true;
			}
			kill_all(&r);
			break;
		}
		/* Without a tick hook, only phase changes, child exits and
		 * the deadline need the parent. */
		uint64_t nap = r.wl->tick && !stopping ? 1000000 : 100000000;
		if (timed && !measuring && measure_at > now)
			nap = measure_at - now < nap ? measure_at - now : nap;
		else if (timed && !stopping && stop_at > now)
			nap = stop_at - now < nap ? stop_at - now : nap;
		wait_event(nap);
	}

	/* Figures. */
	if (timed) {
		res->duration_s = (double)(t1 - t0) / 1e9;
		for (unsigned i = 0; i < n; i++)
			res->ops += c0[i];
	} else {
		uint64_t end = t_release;
		for (unsigned i = 0; i < n; i++) {
			c0[i] = atomic_load(&r.ws[i].ops);
			res->ops += c0[i];
			if (r.ws[i].done_ns > end)
				end = r.ws[i].done_ns;
		}
		res->duration_s = (double)(end - t_release) / 1e9;
	}
	if (res->duration_s > 0 && res->ops > 0) {
		res->ops_per_s = (double)res->ops / res->duration_s;
		res->ns_per_op = 1e9 * n / res->ops_per_s;
	}
	double mean = (double)res->ops / n, var = 0;
	for (unsigned i = 0; i < n; i++)
		var += ((double)c0[i] - mean) * ((double)c0[i] - mean);
	res->cv = mean > 0 ? sqrt(var / n) / mean : 0;

	struct hist *h = calloc(1, sizeof(*h));
	int *cpus = malloc(n * sizeof(*cpus));
	int *nodes = malloc(n * sizeof(*nodes));
	if (!h || !cpus || !nodes)
		abort();
	for (unsigned i = 0; i < n; i++) {
		const struct worker_shared *w = &r.ws[i];
		hist_merge(h, &w->hist);
		res->waits += w->waits;
		res->timeouts += w->timeouts;
		r.violations += w->violations;
		res->user_s += (double)w->ru_utime_us / 1e6;
		res->sys_s += (double)w->ru_stime_us / 1e6;
		res->vol_cs += w->ru_nvcsw;
		res->invol_cs += w->ru_nivcsw;
		cpus[i] = w->cpu;
		nodes[i] = w->cpu >= 0 ? node_of(env, w->cpu) : -1;
	}
	res->lat_samples = h->count;
	res->p50 = hist_quantile(h, 0.50);
	res->p90 = hist_quantile(h, 0.90);
	res->p99 = hist_quantile(h, 0.99);
	res->p999 = hist_quantile(h, 0.999);
	res->max = h->max;
	res->cpus = join_ints(cpus, n);
	res->nodes = join_ints(nodes, n);
	free(h);
	free(cpus);
	free(nodes);

	if (r.pool)
		r.mem_node = shmpool_mem_node(r.pool);
	else if (r.shared)
		r.mem_node = node_of_addr(r.shared);
	if (status == NULL && r.wl->verify && r.wl->verify(&r) != 0)
		status = "verify_failed";

close_gate:
	close(gate_rd);
	gate_rd = -1;
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
teardown:
	if (r.wl->teardown)
		r.wl->teardown(&r);
	if (r.pool && strcmp(c->backing, "file") == 0)
		shmpool_unlink(r.pool);
	if (r.pool) {
		shmpool_close(r.pool);
		r.pool = NULL;
	}
	if (r.shared)
		munmap(r.shared, r.shared_size);
	res->mem_node = r.mem_node;
	res->kills = r.kills;
	res->recoveries = r.recoveries;
	res->violations = r.violations;
	if (status == NULL && r.violations)
		status = "violations";
	res->status = status ? status : "ok";
	res->failed = status != NULL;
	if (res->cpus == NULL)
		res->cpus = strdup("");
	if (res->nodes == NULL)
		res->nodes = strdup("");
	free(r.pids);
	free(r.generation);
	free(c0);
	free(tslots);
	tslots = NULL;
	munmap(shm, ctl_size);
}
