/*
 * workload.h - the contract between the runner and a workload.
 *
 * A workload is one file, harness/wl_<name>.c, defining one
 * `const struct workload_ops wl_<name>` and listed once in workloads.def.
 * The runner does the hard parts (fork, pinning, start gate, phases,
 * counters, deadlines, CSV); a workload only says what one worker does.
 *
 * Life of a run, and who calls what where:
 *   parent:  setup()            create the pool and shared state
 *   child:   worker() x workers after the start gate, until
 *                               worker_running() says stop; returns 0, or
 *                               non-zero to fail the run
 *   parent:  tick()             every few ms while the workers run (crash
 *                               injection); optional
 *   parent:  verify()           after every worker exited: count invariant
 *                               violations in run->violations; optional
 *   parent:  teardown()         always, even after a failure
 *
 * With `mode = threads` the workers are threads of the harness process
 * instead of forked children, with the same gate, counters, pinning and
 * phases; worker() must then keep its state on its stack or in
 * struct worker (file-scope variables would be shared), and a workload
 * that must kill workers (crash_recover) rejects the mode in validate().
 */
#ifndef STRESS_WORKLOAD_H
#define STRESS_WORKLOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>

#include "shmpool.h"
#include "hist.h"
#include "scenario.h"

enum phase {
	PHASE_GATE = 0,
	PHASE_WARMUP = 1,
	PHASE_MEASURE = 2,
	PHASE_STOP = 3,
};

/*
 * Run-wide flags written by the parent, read by every worker on every op:
 * the line stays shared in every cache and costs a load, until the parent
 * writes it once per phase.
 */
struct run_ctl {
	_Alignas(128) _Atomic unsigned phase;
	_Alignas(128) _Atomic unsigned ready;   /* workers past setup */
	_Alignas(128) _Atomic unsigned pause;   /* odd: park (crash checks) */
	_Atomic unsigned parked;
	_Alignas(128) uint64_t timer_cost_ns;   /* subtracted from samples */
};

/*
 * What one worker reports.  Each sits on its own 128-byte lines (two
 * 64-byte lines, because adjacent-line prefetchers pull pairs), so counting
 * an op never shares a line with another worker.
 */
struct worker_shared {
	_Alignas(128) _Atomic uint64_t ops;
	uint64_t waits;
	uint64_t timeouts;
	uint64_t violations;    /* invariant violations a worker saw itself */
	uint64_t done_ns;       /* CLOCK_MONOTONIC at the end of an ops run */
	/* getrusage deltas over the measured phase */
	int64_t ru_utime_us, ru_stime_us, ru_nvcsw, ru_nivcsw;
	int cpu;                /* sched_getcpu() at the end */
	pid_t pid;
	struct hist hist;
};

struct run {
	const struct config *cfg;
	const struct workload_ops *wl;
	unsigned nworkers;
	struct run_ctl *ctl;
	struct worker_shared *ws; /* [nworkers] */
	shmpool_t *pool;          /* NULL for floor */
	void *shared;             /* workload's shared memory (run_shared()) */
	size_t shared_size;
	void *priv;               /* workload's parent-side state */
	void *be;                 /* alloc_free's backend (backend.h) */
	bool threads;             /* mode = threads: workers are threads of
				     this process, pids[] only mark them live */
	uint64_t seed;
	pid_t *pids;              /* [nworkers] */
	unsigned *generation;     /* [nworkers], bumped at each respawn */
	/* results a workload may add to */
	uint64_t violations, kills, recoveries;
	int mem_node;             /* node of the pool's (or floor's) memory */
	bool fault_skip_free;     /* SHMPOOL_STRESS_FAULT=skip_free */
	bool fault_die;           /* SHMPOOL_STRESS_FAULT=worker_dies */
};

/* Private to one worker process. */
struct worker {
	struct run *run;
	struct worker_shared *sh;
	unsigned index;
	unsigned generation;
	uint64_t ops;      /* mirrors sh->ops */
	uint64_t target;   /* ops-based run: stop at this count; else 0 */
	unsigned seen_phase;
	uint32_t sample_every, countdown;
	bool measuring;
	uint64_t rng;
	struct rusage ru0;
};

struct workload_ops {
	const char *name;
	const char *help;
	/* Keys this workload reads besides the common ones (workers, ops,
	 * duration, warmup, repeat, deadline, latency_sample, pin, mem,
	 * seed). */
	const char *keys;
	/* "key=value ..." applied before [global]: per-workload defaults. */
	const char *defaults;
	/* Allowed values of `op`, '|'-separated, the first is the default;
	 * NULL: the workload has no op. */
	const char *ops;
	/* Optional: reject a point before anything runs.  Returns NULL or a
	 * message; *key names the key to blame. */
	const char *(*validate)(const struct config *cfg, const char **key);
	int (*setup)(struct run *r);
	int (*worker)(struct run *r, struct worker *w);
	void (*tick)(struct run *r, uint64_t now_ns);
	int (*verify)(struct run *r);
	void (*teardown)(struct run *r);
};

#define WL(name) extern const struct workload_ops wl_##name;
#include "workloads.def"
#undef WL

extern const struct workload_ops *const workloads[];
extern const unsigned nworkloads;
const struct workload_ops *workload_find(const char *name);

/* ---- helpers for workloads ---------------------------------------- */

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: cheap enough to sit in a measured loop. */
static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

bool worker_phase_change(struct worker *w, unsigned phase);

/* True while the worker should keep going; call once per op. */
static inline bool worker_running(struct worker *w)
{
	if (w->target)
		return w->ops < w->target;
	unsigned ph = atomic_load_explicit(&w->run->ctl->phase,
					   memory_order_relaxed);
	if (__builtin_expect(ph != w->seen_phase, 0))
		return worker_phase_change(w, ph);
	return true;
}

/* Count @n ops done.  A relaxed store: the parent only samples it. */
static inline void worker_count(struct worker *w, uint64_t n)
{
	w->ops += n;
	atomic_store_explicit(&w->sh->ops, w->ops, memory_order_relaxed);
}

/* Start timing this op if it is the Nth; returns 0 when not sampled. */
static inline uint64_t lat_begin(struct worker *w)
{
	if (__builtin_expect(--w->countdown != 0, 1))
		return 0;
	w->countdown = w->sample_every ? w->sample_every : UINT32_MAX;
	if (!w->sample_every || !w->measuring)
		return 0;
	return now_ns();
}

void lat_record(struct worker *w, uint64_t ns);

static inline void lat_end(struct worker *w, uint64_t t0)
{
	if (t0)
		lat_record(w, now_ns() - t0);
}

/* Map @size bytes of zeroed shared memory into run->shared (setup only). */
int run_shared(struct run *r, size_t size);

/* crash_recover: the supervisor's tools, implemented by the runner. */
int runner_kill_worker(struct run *r, unsigned i);   /* SIGKILL + reap */
int runner_respawn_worker(struct run *r, unsigned i);
/* Park every live worker at its next worker_park(); 0, or -1 on timeout. */
int runner_pause(struct run *r);
void runner_resume(struct run *r);
void worker_park(struct worker *w);

/* A message for stderr, prefixed with the workload's name. */
void wl_error(const struct run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * After every worker exited: the pool must be empty and its counters must
 * agree (allocs - frees == used; allocs == @expect_allocs unless it is
 * UINT64_MAX).  Adds what is wrong to r->violations, printing it.
 */
void wl_check_idle_pool(struct run *r, uint64_t expect_allocs);
/* Count and print one invariant violation (parent side). */
void wl_violation(struct run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Sum of every worker's op counter (all phases). */
uint64_t wl_total_ops(const struct run *r);

/* Make a pool as the config says (variant, capacity, elem_size, backing,
 * mem); sets r->pool and r->mem_node. */
int wl_make_pool(struct run *r, enum shmpool_variant variant,
		 uint64_t capacity, uint64_t elem_size);
enum shmpool_variant wl_variant(const char *name);

#endif
