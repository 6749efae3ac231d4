/*
 * shmpool.h - fixed-size object pool in shared memory (Linux).
 *
 * A pool is a file, a memfd or an anonymous shared mapping holding
 * `capacity` slots of `elem_size` bytes.  Any number of threads in any
 * number of processes allocate and free slots through a lock-free bitmap;
 * a blocking allocation sleeps on a futex until a slot is freed; slots held
 * by processes that died are given back by shmpool_recover_stale().
 *
 * Error convention (every function):
 *   - functions returning int or int64_t return a value >= 0 on success and
 *     -1 on failure; functions returning a pointer return NULL on failure;
 *   - on failure errno is set to one of the codes listed above the function
 *     and shmpool_errmsg() returns a sentence describing the failure (per
 *     thread, valid until the next failing call in that thread);
 *   - a failed call changes nothing in the pool.
 *
 * errno values used throughout:
 *   EINVAL      bad argument (NULL handle, zero size, unknown flag ...)
 *   ERANGE      slot index >= capacity
 *   ENOENT      the slot is not allocated
 *   EBUSY       the slot is between two states (another process is in the
 *               middle of allocating or freeing it); retry
 *   EMSGSIZE    data longer than the slot
 *   EPROTOTYPE  wrong variant (typed call on another variant, or a file of
 *               another variant)
 *   EOVERFLOW   capacity * elem_size (or the whole layout) does not fit
 *   EBADMSG     the file is not a shmpool file, or is corrupt or truncated
 *   EAGAIN      non-blocking allocation found the pool full
 *   ETIMEDOUT   blocking allocation timed out
 *   EUSERS      every attachment record of the pool is taken (see
 *               shmpool_options.max_users)
 *   plus the errno of the failing system call (ELOOP for a symlink at the
 *   path, EACCES, ENOMEM, EMFILE ...).
 *
 * Concurrency (which calls may run at the same time):
 *
 *   | call                                    | with any other call, any process |
 *   |-----------------------------------------|----------------------------------|
 *   | alloc, try_alloc, alloc_n, free, free_n | yes (lock-free; alloc may sleep) |
 *   | typed atomics (i64/i32 cas, add ...)    | yes (atomic on the slot)         |
 *   | get/set (raw, str, f64 set/get)         | yes, but two writers or a writer |
 *   |                                         | and a reader of the SAME slot see|
 *   |                                         | torn data: synchronise per slot  |
 *   | status calls, stats, allocated_slots    | yes (a snapshot, approximate     |
 *   |                                         | while others operate)            |
 *   | recover_stale                           | yes (recoveries are serialised   |
 *   |                                         | among themselves)                |
 *   | reset                                   | NO: needs exclusive access       |
 *   | close                                   | yes for the pool; not with other |
 *   |                                         | calls on the same handle         |
 *
 * A handle (shmpool_t *) may be shared by the threads of a process.  After
 * fork() the child may keep using the parent's handles: it becomes a new
 * user of the pool with its own identity (slots the parent allocated stay
 * owned by the parent).  Handles do not survive exec(); pass the fd
 * (shmpool_memfd, or the path) and reopen.
 *
 * Ownership and crash recovery: each slot records which process (more
 * precisely which attached thread of which process) allocated it.  A process
 * is alive while it keeps the pool open; liveness is tracked with open file
 * description locks, so a reused PID, a zombie or a process in another PID
 * namespace is judged correctly.  shmpool_recover_stale() frees the slots
 * of dead processes and repairs any operation they were in the middle of.
 *
 * Slot caches (options.cache = K at creation, 1..SHMPOOL_MAX_CACHE): every
 * attached thread keeps up to K free slots of its own, in shared memory.
 * alloc takes the most recently freed one and free parks the slot there,
 * with no atomic read-modify-write at all (a few ns per alloc+free pair);
 * the bitmap is touched only to refill an empty cache (K/2 slots in one
 * CAS) or to give back half of a full one.  What changes for callers:
 *   - a cached slot is free: is_allocated, owner, get/set, adopt and free
 *     of it fail with ENOENT like for any free slot, and allocated_slots
 *     and each_allocated skip it;
 *   - stats: used counts slots held by callers, cached the slots parked in
 *     caches, available = capacity - used (a parked slot can always be
 *     had: see below); allocs and frees count slots taken from and given
 *     back to the bitmap, so allocs - frees == used + cached;
 *   - an allocation that finds the bitmap empty takes back the slots parked
 *     in other threads' caches (idle, busy or dead) before it waits, and a
 *     free that sees a waiter gives its cache back and wakes it, so alloc
 *     blocks only when every slot is held;
 *   - a cache belongs to the attachment record, like held slots: a thread
 *     that exits leaves it to the next thread of its handle, close gives
 *     it back, and recover_stale frees the caches of dead processes.
 * Caches need the membarrier(2) system call (Linux 4.16,
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED); where it is missing or forbidden, a
 * process uses the pool without a cache of its own.
 * One more limit: two threads freeing the same slot at the same moment (a
 * double free racing itself) may, with caches, leave the slot both free
 * and cached; a double free that does not race is reported (ENOENT).
 */
#ifndef SHMPOOL_H
#define SHMPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && defined(SHMPOOL_BUILDING)
#define SHMPOOL_API __attribute__((visibility("default")))
#elif defined(__has_attribute)
/*
 * Position-independent callers (PIE programs, shared objects) call the
 * library through its GOT entry instead of a PLT stub: one jump less per
 * call, which is about a tenth of a contended shmpool_i64_add (see
 * doc/performance.md).  The entries are then bound at load time.
 */
#if __has_attribute(noplt)
#define SHMPOOL_API __attribute__((noplt))
#endif
#endif
#ifndef SHMPOOL_API
#define SHMPOOL_API
#endif

/** Opaque pool handle; one per open of a pool in a process. */
typedef struct shmpool shmpool_t;

/** What the slots hold; recorded in the file and checked on open. */
enum shmpool_variant {
	SHMPOOL_ANY = -1, /* only for opening: accept whatever the file holds */
	SHMPOOL_RAW = 0,  /* elem_size bytes */
	SHMPOOL_I64 = 1,  /* int64_t, atomic operations */
	SHMPOOL_I32 = 2,  /* int32_t, atomic operations */
	SHMPOOL_F64 = 3,  /* double */
	SHMPOOL_STR = 4,  /* byte string of at most max_len bytes */
};

/** How the pool memory is backed. */
enum shmpool_backing {
	SHMPOOL_BACKING_ANON = 0, /* anonymous, shared with fork()ed children */
	SHMPOOL_BACKING_FILE = 1, /* a file at options.name (O_NOFOLLOW) */
	SHMPOOL_BACKING_MEMFD = 2, /* memfd_create(options.name), fd-passable */
	SHMPOOL_BACKING_FD = 3,   /* an existing pool at options.fd */
};

/** NUMA placement of the pool memory (shared memory backings only). */
enum shmpool_mempolicy {
	SHMPOOL_MEM_DEFAULT = 0,    /* first touch */
	SHMPOOL_MEM_BIND = 1,       /* options.numa_node only */
	SHMPOOL_MEM_PREFERRED = 2,  /* options.numa_node first */
	SHMPOOL_MEM_INTERLEAVE = 3, /* all allowed nodes, page by page */
};

/* options.flags */
#define SHMPOOL_EXCL 0x1u     /* fail with EEXIST if the file exists */
#define SHMPOOL_NOCREATE 0x2u /* open an existing file only (ENOENT) */
/*
 * SHMPOOL_HUGETLB: back the pool with explicit huge pages (hugetlbfs), so
 * that a large pool needs few TLB entries.
 *   ANON   an unlinked hugetlbfs file, the memory that mmap(MAP_SHARED |
 *          MAP_ANONYMOUS | MAP_HUGETLB) gives (the pool needs a file for
 *          its liveness locks, so it is made with memfd_create(MFD_HUGETLB))
 *   MEMFD  memfd_create(name, MFD_HUGETLB)
 *   FILE   the path must be on a hugetlbfs mount, else EINVAL
 *   FD     the fd must be a hugetlbfs file or hugetlb memfd, else EINVAL
 * Pages are the system's default huge page size (Hugepagesize in
 * /proc/meminfo) for ANON and MEMFD, the mount's page size for FILE.  The
 * file and the mapping are rounded up to whole huge pages: at least one
 * huge page (2 MiB on x86-64) per pool, reported by shmpool_stats()
 * mmap_size.  Huge pages are not overcommitted: they must be reserved
 * beforehand (as root: echo N > /proc/sys/vm/nr_hugepages); when too few
 * are free, creation fails with ENOMEM and shmpool_errmsg() says so.  The
 * pages are reserved at creation, so later faults cannot fail (SIGBUS).
 * Without the flag, pools are opened from hugetlbfs files and fds all the
 * same (detected with fstatfs), and a pool created on a hugetlbfs path
 * gets huge pages too.  Nothing changes for alloc, free or any other call.
 */
#define SHMPOOL_HUGETLB 0x4u

/** Maximum capacity (slot indexes fit in 32 bits). */
#define SHMPOOL_MAX_CAPACITY 0xFFFFFFFEull
/** Default number of attachment records (threads using the pool at once). */
#define SHMPOOL_DEFAULT_USERS 512u
/** Upper bound for options.max_users. */
#define SHMPOOL_MAX_USERS 65536u
/** Upper bound for options.cache (slots per user's cache). */
#define SHMPOOL_MAX_CACHE 256u

/**
 * General constructor options.  Initialise with SHMPOOL_OPTIONS_INIT and set
 * what you need; fields left at their initial value take the defaults.
 */
struct shmpool_options {
	size_t size;                  /* sizeof(struct shmpool_options) */
	enum shmpool_variant variant; /* creating: required; opening: checked
	                                 unless SHMPOOL_ANY */
	enum shmpool_backing backing;
	const char *name;             /* FILE: path; MEMFD: memfd name */
	int fd;                       /* FD: the pool's fd (duplicated) */
	uint64_t capacity;            /* slots; 0 when opening = take the file's */
	uint64_t elem_size;           /* RAW: slot bytes; STR: max_len;
	                                 typed: 0 (implied) */
	mode_t mode;                  /* FILE: creation mode, default 0600 */
	unsigned flags;               /* SHMPOOL_EXCL, SHMPOOL_NOCREATE,
	                                 SHMPOOL_HUGETLB */
	unsigned max_users;           /* attachment records, default 512 */
	enum shmpool_mempolicy mempolicy;
	int numa_node;                /* for BIND and PREFERRED */
	unsigned cache;               /* creating: slots per user cache,
	                                 0 = none (see "Slot caches" below);
	                                 opening: checked unless 0 */
};
#define SHMPOOL_OPTIONS_INIT                                                   \
	{ sizeof(struct shmpool_options), SHMPOOL_RAW, SHMPOOL_BACKING_ANON,  \
	  NULL, -1, 0, 0, 0600, 0, 0, SHMPOOL_MEM_DEFAULT, -1, 0 }

/** Counters of shmpool_stats(); see the field comments. */
struct shmpool_stats {
	uint64_t capacity;   /* total slots (immutable) */
	uint64_t elem_size;  /* bytes per slot (immutable) */
	uint64_t used;       /* slots allocated now (held by callers; not
	                        counting slots parked in caches) */
	uint64_t available;  /* capacity - used (includes cached slots) */
	uint64_t waiters;    /* threads blocked in alloc now */
	uint64_t mmap_size;  /* bytes mapped (whole huge pages on hugetlbfs) */
	uint64_t allocs;     /* slots taken from the bitmap, cumulative
	                        (allocations; with caches, slots moved into
	                        a cache: an allocation from a cache is not
	                        counted) */
	uint64_t frees;      /* slots given back to the bitmap, cumulative,
	                        including recovered slots; allocs - frees ==
	                        used + cached when nothing runs */
	uint64_t waits;      /* alloc calls that had to wait */
	uint64_t timeouts;   /* alloc calls that timed out */
	uint64_t recoveries; /* slots freed by recover_stale */
	uint64_t users;      /* attachment records in use (live or not yet
	                        recovered) */
	uint64_t cached;     /* free slots parked in users' caches now */
};

/* ------------------------------------------------------------------ */
/* Constructors                                                        */
/* ------------------------------------------------------------------ */

/**
 * shmpool_open - create or open a pool as described by @opts.
 *
 * FILE backing: opens @opts->name without following a symlink; creates it
 * (mode @opts->mode, default 0600) unless SHMPOOL_NOCREATE; with
 * SHMPOOL_EXCL the file must not exist.  Two processes creating one path
 * at once agree on one pool; a file left half-initialised by a crash during
 * creation is initialised again.  An existing file must match @opts:
 * variant (unless SHMPOOL_ANY), capacity and elem_size (unless 0).
 *
 * With SHMPOOL_HUGETLB the pool lives on huge pages (see the flag).
 *
 * Returns a handle, or NULL with errno:
 *   EINVAL      zero capacity or elem_size/max_len, capacity above
 *               SHMPOOL_MAX_CAPACITY, bad options, an existing pool
 *               whose capacity or elem_size differs from the request, or
 *               SHMPOOL_HUGETLB with a path or fd not on hugetlbfs;
 *   EOVERFLOW   the layout does not fit in memory (capacity * elem_size);
 *   EEXIST, ENOENT  SHMPOOL_EXCL / SHMPOOL_NOCREATE;
 *   ELOOP       a symbolic link at the path;
 *   EBADMSG     not a pool, corrupt header, truncated file;
 *   EPROTOTYPE  the file holds another variant;
 *   ENOMEM      also: SHMPOOL_HUGETLB (or a hugetlbfs path) and too few
 *               free huge pages (shmpool_errmsg() names nr_hugepages);
 *   or a system error (EACCES, EMFILE, ENOMEM ...).
 * Context: any thread; not async-signal-safe.
 */
SHMPOOL_API shmpool_t *shmpool_open(const struct shmpool_options *opts);

/**
 * shmpool_new - raw pool of @capacity slots of @elem_size bytes.
 * @path: file to create or open; NULL for an anonymous pool shared with
 * children forked afterwards.  Errors as shmpool_open().
 */
SHMPOOL_API shmpool_t *shmpool_new(const char *path, uint64_t capacity,
				   uint64_t elem_size);
/** shmpool_new_memfd - raw pool in a new memfd called @name. */
SHMPOOL_API shmpool_t *shmpool_new_memfd(const char *name, uint64_t capacity,
					 uint64_t elem_size);
/**
 * shmpool_new_from_fd - open the pool (any variant) behind @fd, which is
 * duplicated: the caller keeps and may close its own @fd.
 * Errors as shmpool_open(), EBADF for a bad fd.
 */
SHMPOOL_API shmpool_t *shmpool_new_from_fd(int fd);

/* Typed constructors: as shmpool_new / shmpool_new_memfd, elem_size implied. */
SHMPOOL_API shmpool_t *shmpool_i64_new(const char *path, uint64_t capacity);
SHMPOOL_API shmpool_t *shmpool_i64_new_memfd(const char *name, uint64_t capacity);
SHMPOOL_API shmpool_t *shmpool_i32_new(const char *path, uint64_t capacity);
SHMPOOL_API shmpool_t *shmpool_i32_new_memfd(const char *name, uint64_t capacity);
SHMPOOL_API shmpool_t *shmpool_f64_new(const char *path, uint64_t capacity);
SHMPOOL_API shmpool_t *shmpool_f64_new_memfd(const char *name, uint64_t capacity);
/** Strings of at most @max_len bytes (embedded NULs allowed). */
SHMPOOL_API shmpool_t *shmpool_str_new(const char *path, uint64_t capacity,
				       uint64_t max_len);
SHMPOOL_API shmpool_t *shmpool_str_new_memfd(const char *name,
					     uint64_t capacity,
					     uint64_t max_len);

/**
 * shmpool_close - release the handle.  Slots still held by this handle's
 * threads stay allocated and owned by this process: the process remains
 * registered as their owner until it exits, after which
 * shmpool_recover_stale() in another process frees them.
 * Returns 0; -1/EINVAL for NULL.  Context: no other call on this handle
 * may run concurrently.
 */
SHMPOOL_API int shmpool_close(shmpool_t *p);

/* ------------------------------------------------------------------ */
/* Allocation                                                          */
/* ------------------------------------------------------------------ */

/**
 * shmpool_alloc - allocate one slot, waiting up to @timeout seconds.
 * @timeout: < 0 waits forever, 0 does not wait, > 0 is a deadline on
 * CLOCK_MONOTONIC (signals do not shorten or extend it).
 * The slot is zero-filled.  While waiting the thread sleeps on a futex and
 * uses no CPU; a free in any process wakes it.
 * Returns the slot index; -1 with EAGAIN (full, @timeout == 0), ETIMEDOUT,
 * EUSERS or EINVAL.  Context: lock-free when a slot is free.
 */
SHMPOOL_API int64_t shmpool_alloc(shmpool_t *p, double timeout);
/** shmpool_try_alloc - shmpool_alloc(p, 0). */
SHMPOOL_API int64_t shmpool_try_alloc(shmpool_t *p);

/**
 * shmpool_alloc_n - allocate @n slots, all or nothing, waiting as
 * shmpool_alloc().  Writes the indexes to @out[0..n-1] (zero-filled slots).
 * Never holds a partial set while waiting, so two batch allocators cannot
 * starve each other.  Returns @n; -1 with EAGAIN, ETIMEDOUT, EINVAL
 * (n == 0 or n > capacity) or EUSERS.
 */
SHMPOOL_API int64_t shmpool_alloc_n(shmpool_t *p, uint64_t *out, uint64_t n,
				    double timeout);

/**
 * shmpool_free - free slot @idx.  Any process may free any allocated slot
 * (hand-off); the slot is then no longer owned by its allocator.
 * Returns 0; -1 with ERANGE, ENOENT (not allocated: double free), EBUSY.
 */
SHMPOOL_API int shmpool_free(shmpool_t *p, uint64_t idx);

/**
 * shmpool_free_n - free @n slots with one wake-up for all of them.
 * Stops at the first bad index; returns the number freed (< @n means
 * @idx[returned] failed, errno and shmpool_errmsg() say why).
 */
SHMPOOL_API int64_t shmpool_free_n(shmpool_t *p, const uint64_t *idx,
				   uint64_t n);

/**
 * shmpool_adopt - make the calling process the owner of allocated slot
 * @idx, so that recovery after its allocator's death leaves it alone.
 * Use it when a slot is handed from a producer to a consumer.
 * Returns 0; -1 with ERANGE, ENOENT, EBUSY.
 */
SHMPOOL_API int shmpool_adopt(shmpool_t *p, uint64_t idx);

/**
 * shmpool_allocated_slots - write up to @max allocated indexes, ascending,
 * to @out (may be NULL when @max is 0).  Returns the number of allocated
 * slots found (may exceed @max: call again with a bigger buffer).
 */
SHMPOOL_API int64_t shmpool_allocated_slots(shmpool_t *p, uint64_t *out,
					    uint64_t max);

/** Callback of shmpool_each_allocated; return non-zero to stop. */
typedef int (*shmpool_each_fn)(shmpool_t *p, uint64_t idx, void *arg);
/**
 * shmpool_each_allocated - call @fn for each allocated slot, ascending.
 * @fn may free the slot it is given.  Returns the number of calls made.
 */
SHMPOOL_API int64_t shmpool_each_allocated(shmpool_t *p, shmpool_each_fn fn,
					   void *arg);

/* ------------------------------------------------------------------ */
/* Data access                                                         */
/* ------------------------------------------------------------------ */
/* All data calls check the index (ERANGE) and that the slot is allocated
 * (ENOENT), like the reference module. */

/**
 * shmpool_get - copy min(@len, elem_size) bytes of slot @idx to @buf.
 * Returns the number of bytes copied.  RAW pools (any variant accepted).
 */
SHMPOOL_API int64_t shmpool_get(shmpool_t *p, uint64_t idx, void *buf,
				size_t len);
/**
 * shmpool_set - write @len bytes to slot @idx and zero the rest of the slot.
 * Returns 0; -1 with EMSGSIZE if @len > elem_size (nothing written).
 */
SHMPOOL_API int shmpool_set(shmpool_t *p, uint64_t idx, const void *data,
			    size_t len);
/** shmpool_set_trunc - as shmpool_set, but writes only the first elem_size
 * bytes of longer data.  Returns the number of bytes written. */
SHMPOOL_API int64_t shmpool_set_trunc(shmpool_t *p, uint64_t idx,
				      const void *data, size_t len);

/* I64 (EPROTOTYPE on other variants).  Atomic, sequentially consistent. */
/* get: -1/EINVAL if @out is NULL; the other outputs may be NULL. */
SHMPOOL_API int shmpool_i64_get(shmpool_t *p, uint64_t idx, int64_t *out);
SHMPOOL_API int shmpool_i64_set(shmpool_t *p, uint64_t idx, int64_t v);
/** 1 if the slot held @expect and now holds @desired, 0 if not. */
SHMPOOL_API int shmpool_i64_cas(shmpool_t *p, uint64_t idx, int64_t expect,
				int64_t desired);
/** Compare-and-exchange: stores the value seen before the call in *@old. */
SHMPOOL_API int shmpool_i64_cmpxchg(shmpool_t *p, uint64_t idx, int64_t expect,
				    int64_t desired, int64_t *old);
/** Exchange: stores @v, puts the previous value in *@old. */
SHMPOOL_API int shmpool_i64_xchg(shmpool_t *p, uint64_t idx, int64_t v,
				 int64_t *old);
/** Atomic add; the NEW value goes to *@out (may be NULL). */
SHMPOOL_API int shmpool_i64_add(shmpool_t *p, uint64_t idx, int64_t delta,
				int64_t *out);
SHMPOOL_API int shmpool_i64_incr(shmpool_t *p, uint64_t idx, int64_t *out);
SHMPOOL_API int shmpool_i64_decr(shmpool_t *p, uint64_t idx, int64_t *out);

/* I32, same contracts. */
SHMPOOL_API int shmpool_i32_get(shmpool_t *p, uint64_t idx, int32_t *out);
SHMPOOL_API int shmpool_i32_set(shmpool_t *p, uint64_t idx, int32_t v);
SHMPOOL_API int shmpool_i32_cas(shmpool_t *p, uint64_t idx, int32_t expect,
				int32_t desired);
SHMPOOL_API int shmpool_i32_cmpxchg(shmpool_t *p, uint64_t idx, int32_t expect,
				    int32_t desired, int32_t *old);
SHMPOOL_API int shmpool_i32_xchg(shmpool_t *p, uint64_t idx, int32_t v,
				 int32_t *old);
SHMPOOL_API int shmpool_i32_add(shmpool_t *p, uint64_t idx, int32_t delta,
				int32_t *out);
SHMPOOL_API int shmpool_i32_incr(shmpool_t *p, uint64_t idx, int32_t *out);
SHMPOOL_API int shmpool_i32_decr(shmpool_t *p, uint64_t idx, int32_t *out);

/* F64: the bits of the double are stored atomically (exact round trip). */
SHMPOOL_API int shmpool_f64_get(shmpool_t *p, uint64_t idx, double *out);
SHMPOOL_API int shmpool_f64_set(shmpool_t *p, uint64_t idx, double v);

/**
 * shmpool_str_get - copy the string in slot @idx to @buf (at most @len
 * bytes, not NUL-terminated: strings may hold NULs).  Returns the string's
 * full length (which may exceed @len: nothing beyond @len is written).
 */
SHMPOOL_API int64_t shmpool_str_get(shmpool_t *p, uint64_t idx, void *buf,
				    size_t len);
/** shmpool_str_set - store @len bytes; -1/EMSGSIZE if @len > max_len. */
SHMPOOL_API int shmpool_str_set(shmpool_t *p, uint64_t idx, const void *s,
				size_t len);
/** As shmpool_str_set, keeping the first max_len bytes of longer data.
 * Returns the number of bytes stored. */
SHMPOOL_API int64_t shmpool_str_set_trunc(shmpool_t *p, uint64_t idx,
					  const void *s, size_t len);
/** shmpool_str_max_len - the Str pool's max_len; -1/EPROTOTYPE otherwise. */
SHMPOOL_API int64_t shmpool_str_max_len(shmpool_t *p);

/* alloc + set in one call; the slot is freed again if the set fails. */
SHMPOOL_API int64_t shmpool_alloc_set(shmpool_t *p, const void *data,
				      size_t len, double timeout);
SHMPOOL_API int64_t shmpool_try_alloc_set(shmpool_t *p, const void *data,
					  size_t len);
SHMPOOL_API int64_t shmpool_i64_alloc_set(shmpool_t *p, int64_t v,
					  double timeout);
SHMPOOL_API int64_t shmpool_i32_alloc_set(shmpool_t *p, int32_t v,
					  double timeout);
SHMPOOL_API int64_t shmpool_f64_alloc_set(shmpool_t *p, double v,
					  double timeout);
SHMPOOL_API int64_t shmpool_str_alloc_set(shmpool_t *p, const void *s,
					  size_t len, double timeout);

/* ------------------------------------------------------------------ */
/* Pointers and views                                                  */
/* ------------------------------------------------------------------ */

/**
 * shmpool_ptr - address of slot @idx in this process's mapping (valid until
 * shmpool_close).  NULL with ERANGE or ENOENT.
 */
SHMPOOL_API void *shmpool_ptr(shmpool_t *p, uint64_t idx);
/** shmpool_data_ptr - base of the slots: slot i is at base + i*elem_size. */
SHMPOOL_API void *shmpool_data_ptr(shmpool_t *p);
/**
 * shmpool_slot_view - read-only view of slot @idx without copying: *@ptr
 * points into the shared slot, *@len is elem_size (for STR pools: the
 * bytes of the string and its current length).  The view shows later
 * writes too.  Returns 0; -1 with ERANGE or ENOENT.
 */
SHMPOOL_API int shmpool_slot_view(shmpool_t *p, uint64_t idx,
				  const void **ptr, size_t *len);

/* ------------------------------------------------------------------ */
/* Status                                                              */
/* ------------------------------------------------------------------ */

/** 1 if allocated, 0 if free, -1/ERANGE. */
SHMPOOL_API int shmpool_is_allocated(shmpool_t *p, uint64_t idx);
SHMPOOL_API uint64_t shmpool_capacity(shmpool_t *p);
/** Bytes per slot (STR: max_len + 4, the length prefix). */
SHMPOOL_API uint64_t shmpool_elem_size(shmpool_t *p);
SHMPOOL_API enum shmpool_variant shmpool_variant(shmpool_t *p);
/** Allocated slots now (sum of per-user counters: O(users), no scan). */
SHMPOOL_API uint64_t shmpool_used(shmpool_t *p);
SHMPOOL_API uint64_t shmpool_available(shmpool_t *p);
/**
 * shmpool_owner - PID (in the allocator's PID namespace) of the process that
 * allocated or adopted slot @idx; 0 while a claim is in progress.
 * -1 with ERANGE or ENOENT.
 */
SHMPOOL_API pid_t shmpool_owner(shmpool_t *p, uint64_t idx);
/** Fill @st; 0, or -1/EINVAL. */
SHMPOOL_API int shmpool_stats(shmpool_t *p, struct shmpool_stats *st);
/** NUMA node holding the first data page, -1 if unknown/unmapped. */
SHMPOOL_API int shmpool_mem_node(shmpool_t *p);

/* ------------------------------------------------------------------ */
/* Recovery                                                            */
/* ------------------------------------------------------------------ */

/**
 * shmpool_recover_stale - give back the slots of processes that died, and
 * finish or undo any operation a dead process was in the middle of, so that
 * no slot leaks and used/stats agree with the slot states.  Live owners are
 * never touched.  Recoveries from several processes are serialised; a
 * recovery that dies is completed by the next one (meanwhile, allocations
 * that find no other slot unlock the bitmap words it left locked).  Wakes
 * waiters.
 * Works even when every user record is taken (the caller cannot attach):
 * it then borrows a dead process's record for the duration.
 * Returns the number of slots freed; -1 with EUSERS (every record belongs
 * to a live process) or a system error.
 * Cost: O(users + capacity/63) plus the dead users' slots.
 */
SHMPOOL_API int64_t shmpool_recover_stale(shmpool_t *p);

/**
 * shmpool_reset - free every slot.  Requires exclusive access: no other
 * thread or process may use the pool during the call (it waits for a
 * running recover_stale).  Returns 0; -1 with EINVAL, ENOMEM, EUSERS or
 * the error of taking the recovery lock.
 */
SHMPOOL_API int shmpool_reset(shmpool_t *p);

/* ------------------------------------------------------------------ */
/* Guards: free on scope exit                                          */
/* ------------------------------------------------------------------ */

typedef struct shmpool_guard {
	shmpool_t *pool;
	int64_t idx; /* -1: nothing held */
} shmpool_guard_t;

/** Allocate into @g (as shmpool_alloc); returns the index or -1. */
SHMPOOL_API int64_t shmpool_alloc_guard(shmpool_t *p, double timeout,
					shmpool_guard_t *g);
SHMPOOL_API int64_t shmpool_try_alloc_guard(shmpool_t *p, shmpool_guard_t *g);
/** Free the guarded slot if any; idempotent. */
SHMPOOL_API void shmpool_guard_release(shmpool_guard_t *g);
/** Keep the slot: the guard no longer frees it.  Returns its index. */
SHMPOOL_API int64_t shmpool_guard_detach(shmpool_guard_t *g);
/** Allocate and return a guard by value (idx -1 on failure, errno set). */
SHMPOOL_API shmpool_guard_t shmpool_guard_acquire(shmpool_t *p, double timeout);

/**
 * SHMPOOL_GUARD(g, pool, timeout) declares guard @g holding a slot that is
 * freed when @g goes out of scope (GCC/Clang cleanup attribute).  Check
 * g.idx >= 0 before use.
 */
#define SHMPOOL_GUARD(g, pool, timeout)                                        \
	shmpool_guard_t g __attribute__((cleanup(shmpool_guard_release))) =   \
		shmpool_guard_acquire((pool), (timeout))

/* ------------------------------------------------------------------ */
/* Backing                                                             */
/* ------------------------------------------------------------------ */

/** Path of a file-backed pool, NULL otherwise. */
SHMPOOL_API const char *shmpool_path(shmpool_t *p);
/** The fd of a memfd or from-fd pool (owned by the handle), -1 otherwise. */
SHMPOOL_API int shmpool_memfd(shmpool_t *p);
/** msync the mapping to its file.  0 or -1 with the system error. */
SHMPOOL_API int shmpool_sync(shmpool_t *p);
/** Unlink the backing file (the pool stays usable).  0, or -1 with
 * EINVAL (not file-backed) or the system error. */
SHMPOOL_API int shmpool_unlink(shmpool_t *p);

/* ------------------------------------------------------------------ */
/* eventfd integration (per handle, for event loops)                   */
/* ------------------------------------------------------------------ */

/** Create (once) a non-blocking eventfd for this handle; returns it. */
SHMPOOL_API int shmpool_eventfd(shmpool_t *p);
/** Use @fd (caller keeps ownership) as this handle's eventfd; -1 clears. */
SHMPOOL_API int shmpool_eventfd_set(shmpool_t *p, int fd);
/** The handle's eventfd, -1 if none. */
SHMPOOL_API int shmpool_fileno(shmpool_t *p);
/** Add 1 to the eventfd.  0, or -1 with EINVAL (no eventfd) or system error. */
SHMPOOL_API int shmpool_notify(shmpool_t *p);
/** Read and reset the eventfd counter; 0 when nothing was pending. */
SHMPOOL_API int64_t shmpool_eventfd_consume(shmpool_t *p);

/* ------------------------------------------------------------------ */
/* Misc                                                                */
/* ------------------------------------------------------------------ */

/** Message describing this thread's last failure ("" if none). */
SHMPOOL_API const char *shmpool_errmsg(void);
/** Library version string, e.g. "0.1.0". */
SHMPOOL_API const char *shmpool_version(void);
/** Name of a variant ("raw", "i64", "i32", "f64", "str"). */
SHMPOOL_API const char *shmpool_variant_name(enum shmpool_variant v);

#ifdef __cplusplus
}
#endif
#endif /* SHMPOOL_H */
