/*
 * shmpool-internal.h - shared-memory layout of a pool and the private
 * handle.  Not installed: the layout may change between versions (the file
 * carries a version number and is rejected when it differs).
 */
#ifndef SHMPOOL_INTERNAL_H
#define SHMPOOL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "shmpool.h"

#define SHMPOOL_CACHELINE 64

#define SHMPOOL_MAGIC_READY 0x31304c4f4f504d48ull /* "HMPOOL01" */
#define SHMPOOL_MAGIC_INIT 0x74696e694c4f4f50ull  /* "POOLinit" */
#define SHMPOOL_LAYOUT_VERSION 4u

/*
 * Slots per bitmap word.  Bit 63 of every word is the word's recovery lock:
 * while it is set no allocation claims a bit of that word (see the protocol
 * comment at the top of shmpool.c).
 */
#define SLOTS_PER_WORD 63u
#define WORD_LOCK (1ull << 63)
/* Up to this many bitmap words, each word gets two cache lines of its own
 * (its line, and a gap that keeps words off the users' page colours). */
#define BITMAP_SPREAD_WORDS 64u

/* Lock bytes of the pool file (open file description locks), far beyond
 * any file size: locks need no file data. */
#define LOCK_BASE ((off_t)1 << 52)
#define LOCK_RECOVERY (LOCK_BASE + 0) /* held while a recovery runs */
#define LOCK_INIT (LOCK_BASE + 1)     /* held while a creator initialises */
#define LOCK_USERS (LOCK_BASE + 64)   /* + user index: the user is alive */

/* owner[] of a slot parked in a user's cache: (user index + 1) | this.
 * Above any user index + 1, and within the 28 bits of PEND_PRE. */
#define OWNER_CACHED (1u << 24)

/*
 * The state of a user's slot cache: its depth and a busy flag, one 64-bit
 * word whose halves are also written alone.  The owner sets busy with a
 * 32-bit store (leaving the depth as it is) and ends an operation with one
 * 64-bit store of the new depth and busy = 0; a thief reads the halves.
 * Aligned accesses of either size are single-copy atomic on the CPUs Linux
 * runs on.
 */
union cache_state {
	_Atomic uint64_t word; /* depth | busy << 32 */
	struct {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		_Atomic uint32_t depth;
		_Atomic uint32_t busy;
#else
		_Atomic uint32_t busy;
		_Atomic uint32_t depth;
#endif
	} h;
};

/* User (attachment record) states. */
#define USER_FREE 0u
#define USER_USED 1u

/*
 * pend_op: the operation a user is in, written before its first shared
 * store.  Two encodings:
 *
 * Short form, one store, for single-slot alloc and free (the fast path):
 *   bits 0-2 op (OP_ALLOC1, OP_FREE1), bits 3-8 bit, bits 9-35 word,
 *   bits 36-63 the low 28 bits of the counter (nalloc, nfree) before the
 *   operation.  The counter's increment is the operation's last store and
 *   the record is not cleared afterwards: a record whose count no longer
 *   matches its counter is a completed operation, the same as OP_NONE.
 *   That saves a store before the next locked instruction on the fast
 *   path.  A free that finds the slot already free clears the record.
 * Long form, for batches and recovery, with pend_mask and pend_snap:
 *   bits 0-2 op (OP_ALLOC, OP_FREE, OP_RFREE), bits 3-30 pre-owner
 *   (user index + 1 whose slots are being freed), bits 31-57 word.
 */
#define OP_NONE 0u
#define OP_ALLOC 1u  /* claiming pend_mask of word */
#define OP_FREE 2u   /* freeing pend_mask of word, owned by pre-owner */
#define OP_RFREE 3u  /* recovery freeing a dead pre-owner's slot */
#define OP_ALLOC1 4u /* short forms */
#define OP_FREE1 5u
#define OP_UNALLOC 6u /* giving back pend_mask just claimed: nalloc -= n */
#define PEND_OP(v) ((unsigned)((v)&7u))
#define PEND(op, word, pre)                                                    \
	((uint64_t)(op) | ((uint64_t)(pre) << 3) | ((uint64_t)(word) << 31))
#define PEND_PRE(v) ((uint32_t)(((v) >> 3) & 0xFFFFFFFu))
#define PEND_WORD(v) ((uint64_t)(((v) >> 31) & 0x7FFFFFFu))
#define PEND1(op, word, bit, cnt)                                              \
	((uint64_t)(op) | ((uint64_t)(bit) << 3) | ((uint64_t)(word) << 9) |   \
	 ((uint64_t)(cnt) << 36))
#define PEND1_BIT(v) ((unsigned)(((v) >> 3) & 63u))
#define PEND1_WORD(v) ((uint64_t)(((v) >> 9) & 0x7FFFFFFu))
#define PEND1_CNT(v) ((uint64_t)((v) >> 36))
#define CNT_LOW_MASK ((1ull << 28) - 1)

/* Immutable description of the pool, at the start of the file. */
struct pool_hdr {
	_Atomic uint64_t magic; /* READY is written last at creation */
	uint32_t version;
	uint32_t variant;
	uint64_t capacity;
	uint64_t stride;    /* bytes per slot */
	uint64_t max_len;   /* STR: max string length; else == stride */
	uint32_t max_users; /* multiple of 64 */
	uint32_t nwords;
	uint32_t cache;     /* slots per user cache, 0 = no caches */
	uint32_t cstride;   /* u32 entries per user in the cache region */
	uint64_t off_users;
	uint64_t off_waitmask;
	uint64_t off_bitmap;
	uint64_t off_owner;
	uint64_t off_cache;
	uint64_t off_data;
	uint64_t total_size;
	uint64_t checksum; /* FNV-1a of the fields between magic and here */
};

/* Mutable shared words, each on its own line. */
struct pool_shared {
	_Alignas(SHMPOOL_CACHELINE) _Atomic uint32_t wake_seq; /* futex word */
	_Alignas(SHMPOOL_CACHELINE) _Atomic uint32_t user_hwm; /* users ever
	                                                          used */
};

/*
 * One attachment record: one thread of one process using the pool.  The
 * first line is written only by its thread (or, once the process is dead,
 * by the recovery that holds its lock byte): plain stores, no RMW.
 */
struct pool_user {
	_Alignas(SHMPOOL_CACHELINE) _Atomic uint64_t pend_op;
	_Atomic uint64_t pend_mask;
	_Atomic uint64_t pend_snap; /* counter value before the operation */
	_Atomic uint64_t nalloc;    /* slots claimed */
	_Atomic uint64_t nfree;     /* slots released (incl. recovered) */
	_Atomic uint64_t hint;      /* slot to try first */
	union cache_state cst;      /* slot cache: depth, busy */
	_Alignas(SHMPOOL_CACHELINE) _Atomic uint32_t state;
	_Atomic int32_t pid;
	_Atomic uint64_t nwait;
	_Atomic uint64_t ntimeout;
	_Atomic uint64_t nrecov;
	_Atomic uint32_t csteal;    /* 0, or the user index + 1 of a thief
				       that holds the cache for a moment */
};

/* Offsets of the fixed part: the header takes whole lines of its own, so
 * the futex word bumped by every wake-up can never touch it. */
#define OFF_SHARED                                                             \
	((sizeof(struct pool_hdr) + SHMPOOL_CACHELINE - 1) &                   \
	 ~(size_t)(SHMPOOL_CACHELINE - 1))
#define OFF_FIXED_END (OFF_SHARED + sizeof(struct pool_shared))
_Static_assert(sizeof(struct pool_user) == 2 * SHMPOOL_CACHELINE,
	       "a user record is two lines");
_Static_assert(sizeof(struct pool_hdr) <= OFF_SHARED,
	       "header overlaps the shared words");

/* Private per-handle record of a user this handle took. */
struct handle_user {
	uint32_t uid;
	int active;       /* a live thread uses it */
	pthread_t thread; /* valid when active */
};

struct shmpool {
	/* immutable after open: private copies validated at open, so no value
	 * read back from shared memory ever sizes an access */
	uint64_t serial; /* identifies this handle in this process */
	enum shmpool_variant variant;
	enum shmpool_backing backing;
	uint64_t capacity;
	uint64_t stride;
	uint64_t max_len;
	uint32_t max_users;
	uint32_t nwords;
	uint32_t bshift; /* bitmap word w is bitmap[w << bshift] */
	uint32_t nwaitwords;
	size_t map_size;
	unsigned char *base;
	struct pool_hdr *hdr;
	struct pool_shared *sh;
	struct pool_user *users;
	_Atomic uint64_t *waitmask;
	_Atomic uint64_t *bitmap;
	_Atomic uint32_t *owner;
	_Atomic uint32_t *cstack; /* user u's cache: cstack[u * cstride ..] */
	unsigned char *data;
	uint32_t cache;   /* the pool's cache size (0: no caches) */
	uint32_t ccap;    /* this process's: cache, or 0 when it cannot
			     use one (no membarrier) */
	uint32_t cstride;
	uint64_t last_valid; /* valid-bit mask of the last bitmap word */
	char *path;

	int fd;  /* backing */
	int lfd; /* liveness: private open file description, holds locks */
	int efd;
	int efd_owned;

	_Atomic uint32_t idle_wakes; /* FUTEX_WAKEs in a row that woke
					nobody (see IDLE_WAKES) */

	pthread_mutex_t mu; /* guards the fields below */
	struct handle_user *hu;
	uint32_t nhu, cap_hu;

	struct shmpool *next; /* process registry */
};

#endif /* SHMPOOL_INTERNAL_H */
