/*
 * shmpool.pml - a Promela model of libshmpool's claim, free, blocking-wait,
 * wake and crash-recovery protocols, as implemented in lib/shmpool.c
 * (claim_one, release_one, shmpool_free, wait_for, pass_on, wake,
 * resolve_pending, live_pending, sweep_word, shmpool_recover_stale,
 * clear_dead_waiters).
 * Checked by tests/model.sh:
 *
 *   spin -a [-DNU=2 -DNS=1 -DMAXKILL=1 ...] tests/model/shmpool.pml
 *   gcc -O2 -DSAFETY -o pan pan.c       (exhaustive; assertions, end states)
 *   ./pan -m1000000                     (writes shmpool.pml.trail on error)
 *   spin -t -p [same -D flags] tests/model/shmpool.pml   (replay the trail)
 *
 * What is modelled.  One bitmap word of NS slots (NS <= 3) plus the
 * word's recovery lock (WORD_LOCK, bit 63 in the code, LOCK here); the
 * owner array; per user the short-form pending record (op, bit, counter
 * snapshot, written by one store in the code, one step here; it stays in
 * place after the operation, completed once the counter moved past the
 * snapshot), the counters nalloc and nfree, and a waiter bit in the waiter
 * mask; the futex word
 * wake_seq.  NU user processes (NU <= 3) each do ROUNDS times: blocking
 * alloc with an infinite timeout (or, with TMO, a waiter may time out
 * once), then free.  A killer process SIGKILLs up to MAXKILL users at any
 * step (the user's state is frozen, it stops for good and is dead: its
 * lock byte is free).  A recoverer process runs shmpool_recover_stale()
 * whenever a dead user is not yet recovered: dead-set snapshot, resolve
 * each dead user's pending op under the word lock with the live-pending
 * check, sweep owners of dead users under the word lock, clear the dead
 * users' waiter bits, wake waiters if it freed something, locked a word or
 * found a dead user.
 *
 * futex_wait(expected) checks the value and queues the caller in one
 * atomic step, as the kernel does under the hash-bucket lock; futex_wake(n)
 * dequeues up to n queued (asleep) processes, any of them; a SIGKILLed
 * sleeper is dequeued by the kernel, so it no longer counts for a wake; a
 * sleeper that was already dequeued by a wake has consumed that wake-up
 * even if it is killed before it runs again.  A timeout dequeues the
 * sleeper unless a wake did it first (then futex_wait returns 0).
 *
 * Memory model.  Spin explores sequentially consistent interleavings.
 * That is what the code relies on for the wake handshake: the waiter's
 * waiter-mask fetch_or, its wake_seq load and bitmap rescan, and the
 * freer's bitmap fetch_and and waiter-mask load are all seq_cst (the
 * store-buffering case).  The owner and pending-record stores the code
 * makes with release/relaxed order are read by recovery only after the
 * dead process stopped, or under the word lock after the RMW chain on the
 * word, so SC does not hide a reordering the protocol depends on.  Plain
 * stores to a user's own line (pending record, counters) are modelled as
 * atomic steps; the pending record is one 64-bit store in the code.  The
 * BROKEN=1 variant models what the SB reordering would do if the freer's
 * accesses were not seq_cst: the waiter-mask load is satisfied before the
 * bit clear becomes visible.
 *
 * Sizes.  tests/model.sh checks 3 users without crashes and 2 users with
 * one SIGKILL, exhaustively, in seconds.  3 users with a SIGKILL (needed
 * for the dead-waiter case of FIXWAKE) exceed 40 million states even with
 * the kill restricted to user 0 (-DKILLABLE=1, no loss by symmetry): run
 * it with bitstate hashing (gcc -DBITSTATE, ./pan -w32), not exhaustive.
 *
 * Simplifications.  The bit an allocator picks is any clear bit (the
 * code's hint makes it vary, so this over-approximates).  The recovery's
 * dead-user scan is one step (the code takes one lock byte per user; the
 * lock bytes have no other effect on shared state).  The recoverer does
 * not crash and keeps no RFREE pending record (crash points inside
 * recovery are covered by the crash-point injection tests).  A recovered
 * user record is not reused by a new process.  Batches (alloc_n/free_n),
 * hand-off (adopt) and EINTR are not modelled.
 *
 * Properties.
 *  (a) no double allocation: a ghost `holder` per slot, set when a claim's
 *      CAS lands; a claim that lands while a live user holds the slot
 *      fails an assertion, and so does a recovery that frees a slot a live
 *      user holds, or a free by a live user of a slot it no longer owns;
 *  (b) no lost wake-up: the system never stops (no process can move) with
 *      a live user asleep: the watchdog asserts at `timeout` that no live
 *      user sleeps beside a free slot, and a waiter asleep at a terminal
 *      state is an invalid end state (pan reports it);
 *  (c) no leak, exact counters: once every user finished or died and was
 *      recovered, every set bit has a live owner and
 *      sum(nalloc) - sum(nfree) == popcount(bits), and the word is
 *      unlocked.
 *
 * Variants (spin -D...):
 *   BROKEN=1  freer reads the waiter mask before its bit clear is visible
 *             (relaxed/acq-rel handshake): lost wake-up, must fail;
 *   BROKEN=2  waiter does not rescan after announcing itself and reading
 *             wake_seq: lost wake-up, must fail;
 *   BROKEN=3  recovery ignores live users' pending ops (no live_pending
 *             check): a live user's slot is freed under it, must fail;
 *   BROKEN=4  the idle-wake cleanup clears live users' waiter bits (no
 *             lock-byte check): lost wake-up, must fail;
 *   FIXLIVE=0 recovery as it was before the fix this model called for
 *             (now in lib/shmpool.c, and the default): the crash
 *             configurations fail;
 *   FIXWAKE=0 recovery as it was before commit 2106913 (which made
 *             recover_stale wake waiters whenever it found a dead user,
 *             the fix this model also called for): loses a wake-up.
 *
 *   FIXLIVE: resolve_pending() scans the live users' pending records
 *     (live_pending) before it loads the owner and the bit.  Frees ignore
 *     the word lock, so a live user L can start freeing bit b after the
 *     scan: it publishes {FREE1, b}, stores owner 0, and recovery then sees
 *     "bit set, owner 0, no live op on b" and takes it for the dead user's
 *     unfinished free (or claim), clears the bit; L's fetch_and then finds
 *     the bit clear: shmpool_free() fails with ENOENT for a slot L held,
 *     and L's nfree is not incremented, so `used` stays one too high for
 *     good.  Worse, with a third user C: recovery unlocks the word, C
 *     claims b, then L's fetch_and clears C's bit (L's free "succeeds"):
 *     C holds b with its bit clear and the next claim of b hands it out
 *     twice (invariant 1; found with 3 users, bitstate search).  Needs a
 *     dead user whose pending record names b after its own
 *     free or failed claim of b (killed between the fetch_and and the
 *     pending clear, or between the pending store and the CAS), b
 *     re-allocated by L, and L freeing b while recovery settles the dead
 *     user.  Fix modelled: scan again after loading owner and bit and OR
 *     the two scans (a free's pending store precedes its owner store; the
 *     first scan still covers claims, which the word lock stops); count
 *     `freed` from the fetch_and's old value, since the bit may be clear
 *     by then.
 *   FIXWAKE (default 1, as implemented): recover_stale() used to wake
 *     waiters only if it freed a slot or locked a word.  A dead user can owe a wake-up without either: (1) a
 *     freer killed after clearing its bit and before FUTEX_WAKE (after
 *     its wake_seq increment, or before its waiter-mask load); (2) a
 *     waiter that FUTEX_WAKE dequeued (the wake counted for it) and that
 *     was killed before it ran.  The other waiters sleep beside a free
 *     slot until their timeout, forever with timeout -1, and recovery
 *     did not help.  The fix: wake_if_waiters(INT_MAX) at the end of
 *     every recovery that found a dead user.
 */

#ifndef NU
#define NU 3 /* user processes, 1..3 */
#endif
#ifndef NS
#define NS 1 /* slots, 1..3 */
#endif
#ifndef ROUNDS
#define ROUNDS 1 /* alloc+free rounds per user */
#endif
#ifndef MAXKILL
#define MAXKILL 1 /* users the killer may SIGKILL */
#endif
#ifndef TMO
#define TMO 0 /* waiters that may time out */
#endif
#ifndef BROKEN
#define BROKEN 0
#endif
#ifndef FIXWAKE
#define FIXWAKE 1
#endif
#ifndef FIXLIVE
#define FIXLIVE 1
#endif

#define LOCK 128             /* WORD_LOCK */
#define VALID ((1 << NS) - 1) /* valid_bits() of the word */
#define NONE 255             /* no slot */
#define REC NU               /* the recoverer's user record */

#define OP_NONE 0
#define OP_ALLOC1 4
#define OP_FREE1 5

/* ---- shared memory ----------------------------------------------------- */

byte bits;           /* the bitmap word: slot bits and LOCK */
byte owner[3];       /* user index + 1, 0: none */
byte waitmask;       /* bit per user */
byte wake_seq;       /* the futex word */
byte pend_op[4];     /* per user record (REC included): pending op, */
byte pend_bit[4];    /* its bit, */
byte pend_cnt[4];    /* and the counter value before it */
byte nalloc[4];
byte nfree[4];

/* ---- kernel and ghost state ---------------------------------------------- */

bool asleep[3];      /* queued on the futex */
bool killed[3];      /* dead: stopped, its lock byte is free */
bool done[3];        /* finished all its rounds */
bool recovered[3];   /* record released by a recovery (state USER_FREE) */
byte holder[3];      /* ghost: user + 1 whose claim of the slot landed */
byte nkill;
byte ntmo;

/* a holder that is alive */
#define LIVE_HOLDER(b) (holder[b] != 0 && !killed[holder[b] - 1])
#define FREE_SLOT (((~bits) & VALID) != 0 && !(bits & LOCK))
#define ANY_ASLEEP (asleep[0] || asleep[1] || asleep[2])

/* FUTEX_WAKE, 1: dequeue one sleeper, any of them. */
inline futex_wake_one()
{
	atomic {
		if
		:: asleep[0] -> asleep[0] = false
		:: asleep[1] -> asleep[1] = false
		:: asleep[2] -> asleep[2] = false
		:: else -> skip
		fi
	}
}

/* FUTEX_WAKE, INT_MAX. */
inline futex_wake_all()
{
	d_step { asleep[0] = false; asleep[1] = false; asleep[2] = false }
}

/* wake(): fetch_add wake_seq, then the syscall. */
inline wake(all)
{
	wake_seq++;
	if
	:: all -> futex_wake_all()
	:: else -> futex_wake_one()
	fi
}

/* ---- claim_one ------------------------------------------------------------ */

/* Any clear bit of v (the code starts at the user's hint). */
inline pick(b, v)
{
	if
	:: !(v & 1) -> b = 0
	:: NS > 1 && !(v & 2) -> b = 1
	:: NS > 2 && !(v & 4) -> b = 2
	fi
}

/*
 * Local computation is folded into the atomic step of the next shared
 * access, so that every stored state differs in shared memory or in a
 * position between two shared accesses.
 */
inline claim_one()
{
	atomic { r = NONE; snap = nalloc[u]; v = bits } /* seq_cst load */
	do
	:: atomic { (v & LOCK) || ((~v & VALID) == 0) ->
		pend_op[u] = OP_NONE; v = 0; snap = 0; break }
	:: atomic { !(v & LOCK) && ((~v & VALID) != 0) ->
		pick(b, v);
		pend_op[u] = OP_ALLOC1; pend_bit[u] = b;
		pend_cnt[u] = snap }
		atomic { /* CAS bits: v -> v | bit */
			if
			:: bits == v ->
				bits = v | (1 << b); ok = true;
				assert(!LIVE_HOLDER(b)); /* (a) */
				holder[b] = u + 1
			:: else -> v = bits; ok = false
			fi
		}
		if
		:: ok ->
			owner[b] = u + 1;
			/* completes the claim; the record stays */
			atomic { nalloc[u] = snap + 1; r = b; b = 0; v = 0;
				 snap = 0; ok = false; break }
		:: else -> skip
		fi
	od
}

/* ---- wait_for (pass_on included) ----------------------------------------- */

/* pass_on: have_waiters(), then any_claimable(), then wake(1) */
inline pass_on()
{
	if
	:: waitmask != 0 ->
		if
		:: FREE_SLOT -> wake(false)
		:: else -> skip
		fi
	:: else -> skip
	fi
}

/*
 * shmpool_alloc(p, -1): its fast try and wait_for's first try are the same
 * claim_one() (a failed one writes nothing but its own pending record), so
 * one attempt is modelled before the waiter announces itself.
 */
inline alloc_blocking()
{
	claim_one();
	if
	:: r != NONE -> skip
	:: else ->
		waitmask = waitmask | (1 << u); /* fetch_or, seq_cst */
		do
		:: seq = wake_seq; /* seq_cst load */
#if BROKEN != 2
			claim_one(); /* rescan */
			if
			:: r != NONE -> break
			:: else -> skip
			fi;
#endif
			/* FUTEX_WAIT_BITSET(wake_seq, seq) */
			atomic {
				if
				:: wake_seq == seq -> asleep[u] = true
				:: else -> skip
				fi;
				seq = 0
			}
			if
			:: !asleep[u] -> skip /* woken (or EAGAIN) */
			:: atomic { asleep[u] && ntmo < TMO ->
				asleep[u] = false; ntmo++; tmo = true }
			fi;
#if BROKEN == 2
			claim_one();
			if
			:: r != NONE -> break
			:: else -> skip
			fi;
#endif
			if
			:: tmo ->
				claim_one(); /* last try, then ETIMEDOUT */
				break
			:: else -> skip
			fi
		od;
		atomic { waitmask = waitmask & ~(1 << u); tmo = false }
		pass_on()
	fi
}

/* ---- shmpool_free ------------------------------------------------------- */

inline free_slot()
{
	/* own_slot: still allocated and ours (a live holder never loses
	 * its slot, to recovery or anyone); release_one publishes its
	 * pending record (the own_slot loads are reads: folded in) */
	atomic {
		assert((bits & (1 << r)) && owner[r] == u + 1);
		holder[r] = 0;
		snap = nfree[u];
		pend_op[u] = OP_FREE1; pend_bit[u] = r; pend_cnt[u] = snap
	}
	owner[r] = 0;
#if BROKEN == 1
	hw = (waitmask != 0); /* SB: load before the clear is visible */
#endif
	atomic { was = bits & (1 << r); bits = bits & ~(1 << r) }
	/* completes the free; the record stays (the code clears it only
	 * when nothing was freed, which a live holder's free never is) */
	atomic {
		nfree[u] = snap + (was != 0 -> 1 : 0);
		assert(was != 0); /* the free of a live holder succeeds */
		was = 0; snap = 0; r = NONE
	}
	/* wake_if_waiters(1) */
#if BROKEN != 1
	hw = (waitmask != 0);
#endif
	if
	:: atomic { hw -> hw = false } -> wake(false)
	:: atomic { !hw -> skip }
	fi
}

proctype user(byte u)
{
	byte r, v, b, snap, seq, was, k;
	bool ok, hw, tmo;

	{
		do
		:: k < ROUNDS ->
			alloc_blocking();
			if
			:: atomic { r != NONE -> k++ } -> free_slot()
			:: atomic { r == NONE -> k++ } /* timed out */
			fi
		:: atomic { k >= ROUNDS -> done[u] = true; break }
		od
	} unless { killed[u] }
}

/* ---- the killer ---------------------------------------------------------- */

#ifndef KILLABLE
#define KILLABLE 7 /* bit per user the killer may pick */
#endif
#define KILL(k) atomic { nkill < MAXKILL && k < NU && (KILLABLE & (1 << k)) && \
	!done[k] && !killed[k] -> \
	killed[k] = true; asleep[k] = false; nkill++ }

active proctype killer()
{
end_kill:
	do
	:: KILL(0)
	:: KILL(1)
	:: KILL(2)
	od
}

/* ---- clear_dead_waiters --------------------------------------------------- */

/*
 * A freer whose wakes keep finding nobody clears the waiter bit of a dead
 * user, holding that user's lock byte (so only while no recovery holds it,
 * modelled as: not yet recovered).  Any time, any dead user.
 */
#if BROKEN != 4
#define HEAL(k) atomic { k < NU && killed[k] && !recovered[k] && \
	(waitmask & (1 << k)) -> waitmask = waitmask & ~(1 << k) }
#else
#define HEAL(k) atomic { k < NU && !killed[k] && \
	(waitmask & (1 << k)) -> waitmask = waitmask & ~(1 << k) }
#endif

active proctype healer()
{
end_heal:
	do
	:: HEAL(0)
	:: HEAL(1)
	:: HEAL(2)
	od
}

/* ---- shmpool_recover_stale ------------------------------------------------- */

#define UNRECOVERED(k) (k < NU && killed[k] && !recovered[k])

/*
 * A recovery that left a dead user unsettled (a live user's operation on
 * the same bit must end first) is retried by a later recover_stale().  In
 * the model the retry waits until the pending record of a live user
 * differs from what the last run read in it (what blocked that run was
 * such a record, and it or its counters change when that operation ends);
 * without the gate the recoverer would spin, bumping wake_seq, while
 * waiters churn.
 */
#define PREC(k) (pend_op[k] * 4 + pend_bit[k] + pend_cnt[k] * 32 + \
		 nalloc[k] * 256 + nfree[k] * 4096)
#define SNAPSHOT gp0 = PREC(0); gp1 = PREC(1); gp2 = PREC(2); \
	gq0 = gp0; gq1 = gp1; gq2 = gp2
#define CHANGED (gp0 != PREC(0) || gp1 != PREC(1) || gp2 != PREC(2) || \
	gq0 != PREC(0) || gq1 != PREC(1) || gq2 != PREC(2))

/* One read of user k's record by live_pending(), then one of the counter
 * that tells whether that operation completed (two loads in the code);
 * g is the retry gate's copy of what was read. */
#define LIVE1(k, g) atomic { \
	if \
	:: k < NU && !(dset & (1 << k)) && !recovered[k] -> \
		g = PREC(k); lop = pend_op[k]; lbit = pend_bit[k]; \
		lcnt = pend_cnt[k] \
	:: else -> lop = OP_NONE \
	fi }; \
	atomic { \
	if \
	:: (lop == OP_ALLOC1 && nalloc[k] == lcnt) || \
	   (lop == OP_FREE1 && nfree[k] == lcnt) -> \
		live = live | (1 << lbit) \
	:: else -> skip \
	fi; \
	lop = 0; lbit = 0; lcnt = 0 }

/* live_pending(): bits named by the pending op of a live user */
inline live_pending(g0, g1, g2)
{
	LIVE1(0, g0); LIVE1(1, g1); LIVE1(2, g2)
#if BROKEN == 3
	; live = 0
#endif
}

/* Recovery clears bit m: the slot must not be held by a live user. */
#define RCLEAR(m, b) atomic { assert(!LIVE_HOLDER(b)); bits = bits & ~(m) }

inline resolve_pending(d)
{
	if
	:: op == OP_NONE -> settled = settled | (1 << d)
	:: op != OP_NONE && cnt != pc ->
		/* completed: the record is cleared, nothing else */
		atomic {
			pend_op[d] = OP_NONE;
			settled = settled | (1 << d)
		}
	:: op != OP_NONE && cnt == pc ->
		atomic {
			sn = cnt;
			m = 1 << pb;
			pre = (op == OP_FREE1 -> d + 1 : 0);
			bits = bits | LOCK; /* lock_word */
			locked_any = true;
			live = 0
		}
		live_pending(gp0, gp1, gp2);
		atomic { ok = true; counted = 0; o = owner[pb] }
		v = bits;
#if FIXLIVE
		/* a free that began after the first scan: its pending record
		 * precedes its owner store, so a second scan sees it */
		live_pending(gq0, gq1, gq2);
#endif
		if
		:: op == OP_ALLOC1 ->
			if
			:: !(v & m) || (o != 0 && o != d + 1) -> skip
			:: else ->
				if
				:: o == 0 && (live & m) -> ok = false
				:: else ->
					owner[pb] = 0;
					RCLEAR(m, pb);
					freed++
				fi
			fi
		:: else ->
			if
			:: pre != 0 && o == pre -> skip
			:: else ->
				if
				:: (v & m) && o == 0 && (live & m) -> ok = false
				:: (v & m) && o == 0 && !(live & m) ->
					RCLEAR(m, pb);
					freed++;
					counted++
				:: else -> counted++
				fi
			fi
		fi;
		bits = bits & ~LOCK; /* unlock_word */
		if
		:: ok ->
			if
			:: op == OP_ALLOC1 -> nalloc[d] = sn
			:: else -> nfree[d] = sn + counted
			fi;
			atomic {
				pend_op[d] = OP_NONE;
				settled = settled | (1 << d)
			}
		:: else -> skip
		fi
	fi
}

/* sweep_word() of the one word (locked by the caller) */
inline sweep()
{
	b = 0;
	do
	:: atomic { b < NS -> o = owner[b] }
		if
		:: atomic { o != 0 && (dset & (1 << (o - 1))) && (bits & (1 << b)) ->
			sn = nfree[REC] }
			atomic { /* CAS owner o -> 0 */
				if
				:: owner[b] == o -> owner[b] = 0; ok = true
				:: else -> ok = false
				fi
			}
			if
			:: ok ->
				RCLEAR(1 << b, b);
				atomic { nfree[REC] = sn + 1; freed++ }
			:: else -> skip
			fi
		:: else -> skip
		fi;
		b++
	:: atomic { b >= NS -> b = 0; o = 0; sn = 0; break }
	od
}

#define OWNED_BY_DEAD(k) (owner[k] != 0 && (dset & (1 << (owner[k] - 1))))

active proctype recoverer()
{
	byte d, dset, todo, settled, live, op, pb, pc, cnt, sn, m, pre, o, v;
	byte lop, lbit, lcnt; /* one live user's record, in live_pending */
	byte b, counted, freed;
	bool ok, locked_any;
	byte gp0, gp1, gp2, gq0, gq1, gq2; /* the retry gate */
	bool gated;

end_rec:
	do
	:: atomic { /* lock bytes of dead users taken */
		(UNRECOVERED(0) || UNRECOVERED(1) || UNRECOVERED(2)) &&
		(!gated || CHANGED) ->
		gated = false;
		SNAPSHOT;
		dset = (UNRECOVERED(0) -> 1 : 0) | (UNRECOVERED(1) -> 2 : 0) |
		       (UNRECOVERED(2) -> 4 : 0);
		todo = dset
	   }
		/* resolve_pending() of each dead user, in index order */
		do
		:: atomic { todo != 0 ->
			d = (todo & 1 -> 0 : (todo & 2 -> 1 : 2));
			todo = todo & ~(1 << d);
			op = pend_op[d]; pb = pend_bit[d]; pc = pend_cnt[d];
			cnt = (op == OP_ALLOC1 -> nalloc[d] : nfree[d]) }
			resolve_pending(d);
			d_step { op = 0; pb = 0; pc = 0; cnt = 0; sn = 0; m = 0;
				 pre = 0; o = 0; v = 0; live = 0; counted = 0;
				 ok = false }
		:: atomic { todo == 0 -> break }
		od;
		/* sweep if a dead user owns a slot, or the word is locked */
		if
		:: atomic { (OWNED_BY_DEAD(0) || OWNED_BY_DEAD(1) ||
			     OWNED_BY_DEAD(2) || (bits & LOCK)) ->
				bits = bits | LOCK; locked_any = true }
			sweep();
			bits = bits & ~LOCK
		:: atomic { !(OWNED_BY_DEAD(0) || OWNED_BY_DEAD(1) ||
			      OWNED_BY_DEAD(2) || (bits & LOCK)) -> skip }
		fi;
		/* settled dead users: clear the waiter bit, free the record */
		todo = dset & settled;
		do
		:: atomic { todo != 0 ->
			d = (todo & 1 -> 0 : (todo & 2 -> 1 : 2));
			todo = todo & ~(1 << d);
			waitmask = waitmask & ~(1 << d) }
			recovered[d] = true
		:: atomic { todo == 0 -> break }
		od;
		/* wake_if_waiters(INT_MAX) if slots came back or a word was
		 * locked, or (FIXWAKE) whenever a dead user was found */
		if
		:: atomic { (freed || locked_any || (FIXWAKE && dset != 0)) &&
			    waitmask != 0 } -> wake(true)
		:: else -> skip
		fi;
		d_step {
			if
			:: (dset & settled) != dset -> gated = true
			:: else -> skip
			fi;
			d = 0; dset = 0; settled = 0; freed = 0;
			locked_any = false
		}
	od
}

/* ---- properties (b) and (c) ------------------------------------------------- */

#define FINISHED(k) (k >= NU || done[k] || (killed[k] && recovered[k]))

active proctype final_check()
{
	byte k, pop;
	short sum;

	atomic {
		FINISHED(0) && FINISHED(1) && FINISHED(2) ->
		sum = 0; pop = 0; k = 0;
		do
		:: k <= NU -> sum = sum + nalloc[k] - nfree[k]; k++
		:: else -> break
		od;
		k = 0;
		do
		:: k < NS ->
			if
			:: bits & (1 << k) ->
				pop++;
				/* no leak: a set bit has a live owner */
				assert(owner[k] != 0 && owner[k] <= NU &&
				       !killed[owner[k] - 1])
			:: else -> skip
			fi;
			k++
		:: else -> break
		od;
		assert(sum == pop);     /* used == popcount(bits) */
		assert(!(bits & LOCK)); /* no word left locked */
		assert(waitmask == 0)   /* no stuck waiter state */
	}
}

active proctype watchdog()
{
	/* the whole system is stuck: no live user may sleep beside a free
	 * slot (a lost wake-up) */
end_watch:
	timeout -> assert(!(ANY_ASLEEP && FREE_SLOT))
}

init
{
	byte k;

	atomic {
		k = 0;
		do
		:: k < NU -> run user(k); k++
		:: else -> break
		od
	}
}
