/*
 * test_crash.c - deterministic crash-point injection.
 *
 * Built against a copy of the library compiled with SHMPOOL_CRASHPOINTS,
 * in which every store and read-modify-write to shared memory on the paths
 * of open, alloc, alloc_n, free, free_n, recover_stale and reset is a
 * numbered crash point.  For every point k and every pool state below, a
 * victim process runs a script of operations and is SIGKILLed exactly at k
 * (a victim that never reaches k finishes normally: that case does not
 * count).  A survivor then calls shmpool_recover_stale and checks every
 * invariant of DESIGN.md:
 *
 *   - the allocated slots are exactly those of the live holders (nothing
 *     leaked, no live holder lost a slot) with their owners and tokens;
 *   - used, available and allocs - frees agree with them, no waiter and no
 *     user record of a dead process is left;
 *   - every other slot can be allocated (none is stranded);
 *   - a blocking alloc still sleeps on a full pool and is woken by a free.
 *
 * States: CREATE (the victim creates the file), EMPTY, PARTLY (the
 * survivor and a live holder process hold slots, and the victim frees a
 * slot handed to it), FULL (the victim sleeps in alloc until the survivor
 * frees, then times out), WAKER (the victim frees the last slot to a
 * sleeping waiter, which must get a slot once the victim is recovered),
 * BATCH (alloc_n/free_n across a full and a free word), RECOVER (the victim
 * runs recover_stale over dead processes: one that exited holding slots,
 * one killed right after its claim CAS, one killed in the middle of a
 * free, and a recoverer killed holding a word lock), RESET (over the same
 * wreckage), and DOUBLE (two victims crash at two points at once).
 * Three more run on a pool with slot caches: CCHURN (PARTLY with caches:
 * pops, pushes, refills, a full cache spilling half, a hand-off into the
 * victim's cache), CSTEAL (the bitmap is empty and every free slot sits in
 * a cache: of a live holder, of a killed process, of the survivor; the
 * victim's allocations take them back) and CRECOVER (the victim runs
 * recover_stale over a dead cache owner and a thief killed while it held
 * the caches of live and dead users), and CDEAD (the victim fills its
 * cache, spills, pops and pushes; before any recovery the survivor
 * allocates everything it can and must have taken back every slot left in
 * the dead victim's cache, unless the victim died with a claim or release
 * of bits in flight, whose slots must then be left for recover_stale: this
 * state reads the victim's record and stack through the pool's internals).
 *
 * Usage: test_crash [--full | --one STATE POINT].  By default (make check)
 * each state runs every third point; --full (make check-crash) runs every
 * point in every state; --one replays a single case.  Output is TAP, one
 * test per state, then "# crash points: P, cases: C, failures: F".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmpool.h"
#include "shmpool-internal.h"

void shmpool__crash_arm(int n, long hits,
			void (*seen)(unsigned, int, const char *));
unsigned shmpool__crash_points(void);

/* two bitmap words (63 + 7 slots), so that claims move between words */
#define CAP 70
#define MAXP 512

enum state { CREATE, EMPTY, PARTLY, FULL, WAKER, BATCH, RECOVER, RESET,
	     DOUBLE, CCHURN, CSTEAL, CRECOVER, CDEAD, NSTATES };
static const char *const state_name[NSTATES] = {
	"create", "empty", "partly full", "full with a waiter",
	"freeing to a waiter", "batch in progress", "inside recover_stale",
	"reset", "two at once", "churn with caches", "stealing caches",
	"recovering caches", "dying in a cache operation",
};
/* slots per user cache in the cache states: small, so that caches fill
 * and spill within a few operations */
#define CACHE 4

/* Points reached by some victim, shared with the children. */
static unsigned char *reached;
static int *reached_line;

static void seen(unsigned n, int line, const char *fn)
{
	(void)fn;
	if (n < MAXP) {
		reached[n] = 1;
		reached_line[n] = line;
	}
}

static char dir[64], path[96];
/* CDEAD cases whose victim died busy with its record idle and cached
 * slots left: the ones only the dead-busy drain can empty (a run must
 * have some); of those, the ones with a cached slot outside the stack
 * (a push or refill cut short: only the drain's sweep finds them) */
static int dead_busy_cases, dead_unstacked_cases;
static int failures_in_case;
static int cur_cache; /* the current state's pool has caches */

__attribute__((format(printf, 1, 2))) static void bad(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	failures_in_case++;
}

static int64_t token(uint64_t idx)
{
	return (int64_t)getpid() * 1000 + (int64_t)idx;
}

static shmpool_t *open_pool(void)
{
	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;

	o.backing = SHMPOOL_BACKING_FILE;
	o.name = path;
	o.variant = SHMPOOL_I64;
	o.capacity = CAP;
	o.cache = cur_cache ? CACHE : 0;
	return shmpool_open(&o);
}

/* Wait for @pid at most @secs; returns the wait status or -1 (killed). */
static int reap(pid_t pid, double secs)
{
	struct timespec d = { 0, 2000000 };
	int st;

	for (double t = 0; t < secs; t += 0.002) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return st;
		nanosleep(&d, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* ---- the victims' scripts -------------------------------------------- */

static void churn(shmpool_t *q, int64_t gift)
{
	int64_t a = shmpool_alloc(q, 0), b = shmpool_alloc(q, 0), c;
	uint64_t n[3];

	if (a >= 0)
		shmpool_i64_set(q, (uint64_t)a, token((uint64_t)a));
	if (a >= 0)
		shmpool_free(q, (uint64_t)a);
	if (gift >= 0)
		shmpool_free(q, (uint64_t)gift); /* hand-off: adopt + free */
	if (shmpool_alloc_n(q, n, 3, 0) == 3)
		shmpool_free_n(q, n, 3);
	c = shmpool_try_alloc(q);
	if (b >= 0)
		shmpool_free(q, (uint64_t)b);
	(void)c; /* exits holding c */
}

/* More frees than the cache holds (refills first): it spills half. */
static void spill(shmpool_t *q)
{
	int64_t r[CACHE + 2];

	for (int i = 0; i < CACHE + 2; i++)
		r[i] = shmpool_alloc(q, 0);
	for (int i = 0; i < CACHE + 2; i++)
		if (r[i] >= 0)
			shmpool_free(q, (uint64_t)r[i]);
}

static void victim(enum state s, int k, int64_t gift)
{
	shmpool_t *q;
	uint64_t n[6];

	shmpool__crash_arm(k, -1, seen);
	q = open_pool();
	if (!q)
		_exit(20);
	switch (s) {
	case CREATE:
	case EMPTY:
	case PARTLY:
	case DOUBLE:
		churn(q, gift);
		break;
	case FULL: {
		int64_t r = shmpool_alloc(q, 5.0); /* the survivor frees one */

		if (shmpool_alloc(q, 0.02) >= 0) /* full again: times out */
			_exit(21);
		if (r >= 0)
			shmpool_free(q, (uint64_t)r);
		break;
	}
	case WAKER: {
		int64_t r = shmpool_alloc(q, 0);
		struct timespec d = { 0, 50000000 };

		nanosleep(&d, NULL); /* the survivor's waiter falls asleep */
		if (r >= 0)
			shmpool_free(q, (uint64_t)r);
		break;
	}
	case BATCH:
		if (shmpool_alloc_n(q, n, 4, 0) == 4) {
			shmpool_free_n(q, n, 2);
			if (shmpool_alloc_n(q, n, 2, 0) == 2)
				shmpool_free_n(q, n, 2);
		}
		break;
	case RECOVER:
	case CRECOVER:
		shmpool_recover_stale(q);
		break;
	case CCHURN:
		churn(q, gift);
		spill(q);
		break;
	case CDEAD: {
		/* refills, pushes up to a full cache and a spill, then a pop
		 * and a push on a cache in use */
		int64_t x;

		spill(q);
		if ((x = shmpool_alloc(q, 0)) >= 0)
			shmpool_free(q, (uint64_t)x);
		break;
	}
	case CSTEAL: {
		/* The bitmap is empty: the first allocation takes the parked
		 * slots back (to both words), the later ones refill from the
		 * victim's word and then move on to the other. */
		int64_t r[6];

		for (int i = 0; i < 6; i++)
			r[i] = shmpool_alloc(q, 0);
		for (int i = 0; i < 6; i++)
			if (r[i] >= 0)
				shmpool_free(q, (uint64_t)r[i]);
		break;
	}
	case RESET:
		/* reset first: an allocation that finds no free slot outside
		 * a word a dead recovery left locked releases that lock, and
		 * reset must meet it */
		shmpool_reset(q);
		for (int i = 0; i < 3; i++)
			shmpool_alloc(q, 0);
		shmpool_alloc_n(q, n, 2, 0);
		break;
	default:
		break;
	}
	_exit(0);
}

/* A process that holds @n slots with tokens until killed, after
 * allocating and freeing @park more (parked in its cache, if any). */
static pid_t spawn_holder(int n, uint64_t *held, int park)
{
	int pfd[2];
	pid_t pid;
	char more;

	if (pipe(pfd) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		shmpool_t *q = open_pool();

		close(pfd[0]);
		int64_t parked[CAP];

		for (int i = 0; q && i < park; i++)
			parked[i] = shmpool_alloc(q, 0);
		for (int i = 0; q && i < n; i++) {
			int64_t x = shmpool_alloc(q, 0);

			shmpool_i64_set(q, (uint64_t)x, token((uint64_t)x));
			if (write(pfd[1], &x, sizeof(x)) != sizeof(x))
				_exit(1);
		}
		for (int i = 0; q && i < park; i++)
			shmpool_free(q, (uint64_t)parked[i]);
		close(pfd[1]);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	for (int i = 0; i < n; i++)
		if (read(pfd[0], &held[i], sizeof(held[i])) != sizeof(held[i]))
			pid = -1;
	/*
	 * The holder frees its parked slots after sending the held ones and
	 * closes the pipe after that.  Wait for the end of file: a holder
	 * still freeing when the victim runs and the checks look was a
	 * flaky "slot leaked" on a loaded machine.
	 */
	if (pid > 0 && read(pfd[0], &more, 1) != 0)
		pid = -1;
	close(pfd[0]);
	return pid;
}

/* Crash hook of a thief: die inside the steal, holding caches. */
static void die_in_steal(unsigned n, int line, const char *fn)
{
	(void)n;
	(void)line;
	if (strcmp(fn, "steal_caches") == 0)
		kill(getpid(), SIGKILL);
}

/*
 * A process that dies in the middle of an operation: mode 1 right after
 * its claim CAS (an ownerless set bit), mode 2 right after the owner store
 * of a free (ownerless again), mode 3 inside recover_stale right after
 * locking a bitmap word, mode 0 after allocating 2 slots normally; with
 * caches, mode 4 killed holding one slot and two parked in its cache, mode
 * 5 killed while it takes caches back (the bitmap must be empty).
 */
static void spawn_dead(int mode)
{
	pid_t pid = fork();

	if (pid == 0) {
		shmpool_t *q = open_pool();
		int64_t x;

		if (!q)
			_exit(1);
		if (mode == 5) {
			shmpool__crash_arm(-1, -1, die_in_steal);
			shmpool_alloc(q, 0);
			_exit(3); /* not reached */
		}
		x = shmpool_alloc(q, 0); /* attaches; x stays held (mode 0) */
		if (mode == 4) {
			int64_t y = shmpool_alloc(q, 0), z = shmpool_alloc(q, 0);

			shmpool_free(q, (uint64_t)y);
			shmpool_free(q, (uint64_t)z);
			kill(getpid(), SIGKILL);
		}
		if (mode == 0) {
			shmpool_alloc(q, 0);
			_exit(0);
		}
		if (mode == 3) {
			shmpool_free(q, (uint64_t)x);
			shmpool__crash_arm(-1, 1, NULL);
			shmpool_recover_stale(q); /* CP 1: word locked */
			_exit(3);
		}
		shmpool__crash_arm(-1, 2, NULL);
		if (mode == 1)
			shmpool_alloc(q, 0); /* CP 1: pending, CP 2: CAS */
		else
			shmpool_free(q, (uint64_t)x); /* CP 1: pending, 2: owner */
		_exit(3); /* not reached */
	}
	reap(pid, 5);
}

/* ---- the survivor's checks ------------------------------------------- */

struct world {
	shmpool_t *p;
	uint64_t mine[CAP];
	int nmine;
	pid_t holder;
	uint64_t held[CAP];
	int nheld;
	int users; /* live user records expected */
};

static int in(const uint64_t *set, int n, uint64_t x)
{
	for (int i = 0; i < n; i++)
		if (set[i] == x)
			return 1;
	return 0;
}

static void check_invariants(struct world *w)
{
	shmpool_t *p = w->p;
	uint64_t all[CAP + 1];
	int64_t n, v;
	struct shmpool_stats st;

	if (shmpool_recover_stale(p) < 0)
		bad("recover_stale: %s", shmpool_errmsg());
	n = shmpool_allocated_slots(p, all, CAP + 1);
	if (n != w->nmine + w->nheld)
		bad("%lld slots allocated, live holders hold %d",
		    (long long)n, w->nmine + w->nheld);
	for (int64_t i = 0; i < n && i <= CAP; i++)
		if (!in(w->mine, w->nmine, all[i]) &&
		    !in(w->held, w->nheld, all[i]))
			bad("slot %llu leaked (owner %d)",
			    (unsigned long long)all[i],
			    (int)shmpool_owner(p, all[i]));
	for (int i = 0; i < w->nmine; i++)
		if (shmpool_owner(p, w->mine[i]) != getpid() ||
		    shmpool_i64_get(p, w->mine[i], &v) < 0 ||
		    v != token(w->mine[i]))
			bad("survivor lost slot %llu",
			    (unsigned long long)w->mine[i]);
	for (int i = 0; i < w->nheld; i++)
		if (shmpool_owner(p, w->held[i]) != w->holder ||
		    shmpool_i64_get(p, w->held[i], &v) < 0 ||
		    v != w->holder * 1000LL + (int64_t)w->held[i])
			bad("live holder lost slot %llu",
			    (unsigned long long)w->held[i]);
	shmpool_stats(p, &st);
	if (st.used != (uint64_t)n || st.available != CAP - (uint64_t)n ||
	    st.allocs - st.frees != st.used + st.cached ||
	    shmpool_used(p) != st.used || (!cur_cache && st.cached))
		bad("counters: used %llu cached %llu available %llu allocs "
		    "%llu frees %llu for %lld allocated",
		    (unsigned long long)st.used, (unsigned long long)st.cached,
		    (unsigned long long)st.available,
		    (unsigned long long)st.allocs, (unsigned long long)st.frees,
		    (long long)n);
	if (st.waiters != 0)
		bad("%llu waiters left", (unsigned long long)st.waiters);
	if (st.users != (uint64_t)w->users)
		bad("%llu user records in use, %d live",
		    (unsigned long long)st.users, w->users);
}

/*
 * CDEAD, before any recovery: the survivor allocates until an allocation
 * times out.  It must take back every slot the dead victim (@pid) left cached,
 * in its stack or not, or, if the victim died with a claim or release of
 * bits in flight (a refill or spill), none of them.  (The victim's script
 * writes a pending record over its cached slots only inside a cache
 * operation.)  The slots are freed again.
 */
static void check_dead_cache(struct world *w, pid_t pid)
{
	struct shmpool *p = (struct shmpool *)w->p;
	uint32_t hwm = atomic_load(&p->sh->user_hwm), v = UINT32_MAX;
	uint64_t cached[CAP], op;
	int n = 0, idle, unstacked = 0, nmine = w->nmine;
	int64_t x;

	for (uint32_t i = 0; i < hwm && i < p->max_users; i++)
		if (atomic_load(&p->users[i].state) == USER_USED &&
		    atomic_load(&p->users[i].pid) == (int32_t)pid)
			v = i;
	if (v == UINT32_MAX)
		return; /* died before its record was in use */
	struct pool_user *u = &p->users[v];
	_Atomic uint32_t *stk = p->cstack + (uint64_t)v * p->cstride;
	uint32_t depth = atomic_load(&u->cst.h.depth);
	uint32_t busy = atomic_load(&u->cst.h.busy);

	op = atomic_load(&u->pend_op);
	if (PEND_OP(op) == OP_ALLOC1 || PEND_OP(op) == OP_FREE1) {
		uint64_t c = atomic_load(PEND_OP(op) == OP_ALLOC1 ?
					 &u->nalloc : &u->nfree);

		idle = (c & CNT_LOW_MASK) != PEND1_CNT(op);
	} else {
		idle = PEND_OP(op) == OP_NONE;
	}
	for (uint64_t s = 0; s < CAP; s++) {
		int stacked = 0;

		if (atomic_load(&p->owner[s]) != ((v + 1) | OWNER_CACHED))
			continue;
		for (uint32_t i = 0; i < depth && i < CACHE; i++)
			stacked |= atomic_load(&stk[i]) == s;
		unstacked += !stacked;
		cached[n++] = s;
	}
	if (busy && idle && n) {
		dead_busy_cases++;
		dead_unstacked_cases += unstacked > 0;
	}
	/* blocking allocations: only a waiter takes an empty cache whose
	 * owner is busy (it may have died in a refill) */
	while (w->nmine < CAP && (x = shmpool_alloc(w->p, 0.05)) >= 0)
		w->mine[w->nmine++] = (uint64_t)x;
	for (int i = 0; i < n; i++) {
		int taken = in(w->mine + nmine, w->nmine - nmine, cached[i]);

		if (idle && !taken)
			bad("slot %llu left cached by the dead victim (its "
			    "record idle) was not taken back",
			    (unsigned long long)cached[i]);
		if (!idle && taken)
			bad("slot %llu cached by the dead victim was taken "
			    "while its record reads op %u in flight",
			    (unsigned long long)cached[i], PEND_OP(op));
	}
	while (w->nmine > nmine)
		shmpool_free(w->p, w->mine[--w->nmine]);
}

/* Fill the pool, have a child block in alloc, free one: it must wake. */
static void check_blocking(struct world *w)
{
	shmpool_t *p = w->p;
	uint64_t extra[CAP];
	int nextra = 0, st;
	int64_t x;
	pid_t pid;
	struct timespec d = { 0, 20000000 };

	while ((x = shmpool_try_alloc(p)) >= 0)
		extra[nextra++] = (uint64_t)x;
	/* every slot no live holder holds can be had: none is stranded (in
	 * a cache nobody can empty, say) */
	if (nextra != CAP - w->nmine - w->nheld)
		bad("%d free slots could be allocated, %d expected", nextra,
		    CAP - w->nmine - w->nheld);
	pid = fork();
	if (pid == 0) {
		shmpool_t *q = open_pool();

		if (q && shmpool_alloc(q, 5.0) >= 0)
			_exit(0);
		printf("# blocked alloc: %s\n", shmpool_errmsg());
		_exit(1);
	}
	nanosleep(&d, NULL);
	if (nextra == 0) {
		bad("pool unexpectedly full before the blocking check");
	} else {
		shmpool_free(p, extra[--nextra]);
	}
	st = reap(pid, 8);
	if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		bad("blocked alloc was not woken by a free");
	shmpool_recover_stale(p); /* the child exited holding its slot */
	while (nextra > 0)
		shmpool_free(p, extra[--nextra]);
}

/* ---- one case --------------------------------------------------------- */

/* The survivor frees its lowest-numbered slot. */
static void give_back(struct world *w)
{
	int lo = 0;

	for (int i = 1; i < w->nmine; i++)
		if (w->mine[i] < w->mine[lo])
			lo = i;
	shmpool_free(w->p, w->mine[lo]);
	w->mine[lo] = w->mine[--w->nmine];
}

/* Allocate (with tokens) until the bitmap is empty: every free slot is
 * then in some cache.  Stops before an allocation would take slots back
 * from a cache. */
static void fill_bitmap(struct world *w)
{
	struct shmpool_stats st;

	while (shmpool_stats(w->p, &st) == 0 && st.allocs - st.frees < CAP) {
		int64_t x = shmpool_try_alloc(w->p);

		if (x < 0)
			break;
		shmpool_i64_set(w->p, (uint64_t)x, token((uint64_t)x));
		w->mine[w->nmine++] = (uint64_t)x;
	}
}

/* Take the survivor's user record now, holding nothing. */
static void attach(shmpool_t *p)
{
	int64_t x = shmpool_try_alloc(p);

	if (x >= 0)
		shmpool_free(p, (uint64_t)x);
}

static int run_case(enum state s, int k, int k2, int *ran)
{
	struct world w = { 0 };
	pid_t v, v2 = -1, waiter = -1;
	int64_t gift = -1;
	int st, st2 = 0;

	failures_in_case = 0;
	*ran = 0;
	cur_cache = s >= CCHURN;
	unlink(path);
	if (s != CREATE) {
		w.p = open_pool();
		if (!w.p) {
			bad("survivor cannot create the pool: %s",
			    shmpool_errmsg());
			return 1;
		}
		w.users = 1;
		attach(w.p);
	}
	if (s == PARTLY || s == CCHURN) {
		for (int i = 0; i < 2; i++) {
			w.mine[w.nmine] = (uint64_t)shmpool_alloc(w.p, 0);
			shmpool_i64_set(w.p, w.mine[w.nmine],
					token(w.mine[w.nmine]));
			w.nmine++;
		}
		gift = shmpool_alloc(w.p, 0);
		w.holder = spawn_holder(2, w.held, s == CCHURN ? 2 : 0);
		w.nheld = 2;
		w.users++;
	}
	if (s == CSTEAL || s == CRECOVER) {
		w.holder = spawn_holder(2, w.held, 3);
		w.nheld = 2;
		w.users++;
		spawn_dead(4);
		fill_bitmap(&w);
		if (s == CRECOVER) {
			spawn_dead(5);
			give_back(&w); /* the thief holds our cache: freed */
		}
	}
	if (s == FULL || s == WAKER || s == BATCH) {
		for (int i = 0; i < CAP; i++) {
			w.mine[i] = (uint64_t)shmpool_alloc(w.p, 0);
			shmpool_i64_set(w.p, w.mine[i], token(w.mine[i]));
		}
		w.nmine = CAP;
		/* free room in word 0 only: the victim, whose first word is
		 * word 1, must move on from a full word */
		for (int i = 0; i < (s == WAKER ? 1 : s == BATCH ? 5 : 0); i++)
			give_back(&w);
	}
	if (s == RECOVER) {
		w.mine[0] = (uint64_t)shmpool_alloc(w.p, 0);
		shmpool_i64_set(w.p, w.mine[0], token(w.mine[0]));
		w.nmine = 1;
	}
	if (s == RECOVER || s == RESET) {
		/* the first dead recoverer finds only an owner to sweep and
		 * dies holding that word's lock with nothing pending; the
		 * second dies locking a word to settle a pending claim */
		static const int modes[] = { 0, 3, 1, 2, 3 };

		for (unsigned i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
			spawn_dead(modes[i]);
	}
	v = fork();
	if (v == 0)
		victim(s, k, gift);
	if (s == DOUBLE) {
		v2 = fork();
		if (v2 == 0)
			victim(s, k2, -1);
	}
	if (s == FULL) {
		struct timespec d = { 0, 30000000 };

		nanosleep(&d, NULL);
		give_back(&w);
	}
	if (s == WAKER) {
		struct timespec d = { 0, 15000000 };

		nanosleep(&d, NULL);
		waiter = fork();
		if (waiter == 0) {
			shmpool_t *q = open_pool();

			_exit(q && shmpool_alloc(q, 5.0) >= 0 ? 0 : 1);
		}
	}
	st = reap(v, 10);
	if (v2 > 0)
		st2 = reap(v2, 10);
	if (st < 0 || st2 < 0) {
		bad("victim hung");
	} else {
		int killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
		int killed2 = v2 > 0 && WIFSIGNALED(st2) &&
			      WTERMSIG(st2) == SIGKILL;

		if (!killed && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
			bad("victim failed (status 0x%x)", st);
		*ran = killed || killed2;
	}
	if (waiter > 0) {
		/* whatever the victim did, once it is recovered the sleeping
		 * waiter must get a slot */
		int ws;

		shmpool_recover_stale(w.p);
		ws = reap(waiter, 3);
		if (ws < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
			bad("waiter left asleep beside a free slot");
	}
	if (!*ran) {
		/* point not on this path: nothing to check, clean up */
		if (w.holder > 0) {
			kill(w.holder, SIGKILL);
			reap(w.holder, 5);
		}
		if (w.p)
			shmpool_close(w.p);
		return failures_in_case;
	}
	if (s == CREATE) {
		w.p = open_pool();
		if (!w.p) {
			bad("pool unusable after a crash during creation: %s",
			    shmpool_errmsg());
			return failures_in_case;
		}
		w.users = 1;
		attach(w.p);
	}
	if (gift >= 0 && shmpool_is_allocated(w.p, (uint64_t)gift) == 1 &&
	    shmpool_owner(w.p, (uint64_t)gift) == getpid()) {
		/* the victim died before adopting it: still ours */
		shmpool_i64_set(w.p, (uint64_t)gift, token((uint64_t)gift));
		w.mine[w.nmine++] = (uint64_t)gift;
	}
	if (s == CDEAD && WIFSIGNALED(st))
		check_dead_cache(&w, v);
	check_invariants(&w);
	check_blocking(&w);
	check_invariants(&w);
	if (w.holder > 0) {
		kill(w.holder, SIGKILL);
		reap(w.holder, 5);
	}
	shmpool_close(w.p);
	return failures_in_case;
}

int main(int argc, char **argv)
{
	int shortrun = !(argc > 1 && strcmp(argv[1], "--full") == 0);
	int one = argc > 3 && strcmp(argv[1], "--one") == 0;
	unsigned npoints = shmpool__crash_points();
	long cases = 0, failures = 0;
	const char *tmp = getenv("TMPDIR");

	alarm(shortrun ? 240 : 1200);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (npoints > MAXP) {
		printf("Bail out! %u crash points, raise MAXP\n", npoints);
		return 1;
	}
	reached = mmap(NULL, MAXP * (1 + sizeof(int)), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (reached == MAP_FAILED)
		return 1;
	reached_line = (int *)(reached + MAXP);
	snprintf(dir, sizeof(dir), "%s/shmpool-crash-XXXXXX",
		 tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/pool", dir);
	if (one) {
		/* --one STATE POINT: replay a single case, for debugging */
		int ran, f = run_case((enum state)atoi(argv[2]), atoi(argv[3]),
				      atoi(argv[3]), &ran);

		printf("# state %s point %s: %s, %d failures\n", argv[2],
		       argv[3], ran ? "crashed" : "not reached", f);
		unlink(path);
		rmdir(dir);
		return f ? 1 : 0;
	}
	printf("1..%d\n", NSTATES + 1);
	for (int s = 0; s < NSTATES; s++) {
		long c = 0, f = 0;

		for (unsigned k = 0; k < npoints; k++) {
			int ran;

			if (shortrun && k % 3 != (unsigned)s % 3)
				continue;
			f += run_case((enum state)s, (int)k,
				      (int)((k * 37 + 11) % npoints), &ran) > 0;
			c += ran;
			if (failures_in_case)
				printf("# ^ state '%s', crash point %u\n",
				       state_name[s], k);
		}
		if (s == CDEAD) {
			printf("# dead busy victims: %d, with cached slots "
			       "outside the stack: %d\n", dead_busy_cases,
			       dead_unstacked_cases);
			if (!dead_busy_cases || !dead_unstacked_cases) {
				printf("# the dead-busy drain went untested\n");
				f++;
			}
		}
		printf("%s %d - %s: %ld cases, %ld failing\n",
		       f ? "not ok" : "ok", s + 1, state_name[s], c, f);
		cases += c;
		failures += f;
	}
	{
		unsigned nreached = 0;

		for (unsigned k = 0; k < npoints; k++)
			nreached += reached[k];
		printf("# crash points: %u, cases: %ld, failures: %ld\n",
		       npoints, cases, failures);
		printf("%s %d - every crash point reached by some state "
		       "(%u of %u)\n",
		       nreached == npoints || shortrun ? "ok" : "not ok",
		       NSTATES + 1, nreached, npoints);
		for (unsigned k = 0; k < npoints && !shortrun; k++)
			if (!reached[k])
				printf("# crash point %u never reached\n", k);
	}
	unlink(path);
	rmdir(dir);
	return failures ? 1 : 0;
}
