/*
 * shmpool.pml - a Promela model of libshmpool's claim, free, blocking-wait,
 * wake and crash-recovery protocols, as implemented in lib/shmpool.c
 * (claim_one, release_one, shmpool_free, wait_for, pass_on, wake,
 * resolve_pending, live_pending, sweep_word, shmpool_recover_stale,
 * clear_dead_waiters), and of the per-user slot cache (options.cache = K:
 * pop, push, refill, flush, steal, recovery's takeover of a steal) as
 * designed for the implementation (-DCACHE=K, see "Slot cache" below).
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
 * wake_seq.  NU user processes (NU <= 3) each do ROUNDS times (user 0:
 * ROUNDS0 times): blocking
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
 * bit clear becomes visible.  The slot cache is the exception: its fast
 * paths have no locked instruction, and the model gives them the two
 * reorderings the membarrier exists for (see below).
 *
 * Slot cache (-DCACHE=K, K = 1 or 2).  Per user a stack cstack[K] with
 * count cn, a busy flag cbusy and csteal (0 or thief + 1; REC + 1 for
 * recovery).  A cached slot has its bit set and owner = user + 1 + CACHED
 * (CACHED = 4 here; (uid + 1) | OWNER_CACHED in the code, OWNER_CACHED =
 * 1 << 24), and is in its user's stack; UID() strips the mark wherever
 * recovery compares owners with a user.  nalloc/nfree count slots leaving
 * and entering the bitmap, so sum(nalloc - nfree) = held + cached.
 *  - Pop (alloc's fast path): cbusy = 1 (relaxed), load csteal: set, the
 *    uncached path (cbusy = 0 first); else pop cstack[cn - 1] (owner =
 *    user + 1, a plain store), cn - 1, cbusy = 0 (release).  An empty
 *    cache is refilled while busy: one bit claimed with owner user + 1 +
 *    CACHED, nalloc + 1 and the usual short-form ALLOC record, pushed and
 *    popped at once (the code claims max(1, K/2) bits and hands one out:
 *    for K <= 3 that is one bit, which no thief can see, the owner being
 *    busy); a failed refill goes on to the steals.
 *  - Push (free): the same handshake; a full cache (or csteal set) takes
 *    the plain free (the code flushes half of a full cache: not modelled);
 *    else owner = user + 1 + CACHED, cstack[cn] = slot, cn + 1, cbusy = 0,
 *    then the waiter-mask load; waiters: flush the whole cache (busy, one
 *    release_one per slot: long-form FREE record with pre-owner user + 1 +
 *    CACHED, owner = 0, fetch_and, nfree + 1, wake if waiters; cn kept
 *    exact per slot); csteal set at the flush: a thief is draining, leave.
 *  - Steal (an allocator that found the bitmap empty steals from every
 *    other user with cn > 0 or, for a waiter with DEADBUSY, visibly busy,
 *    then claims again; a waiter does so in every
 *    rescan): CAS csteal 0 -> thief + 1, membarrier, load cbusy; busy: wait
 *    until it is 0 (FIXSTEAL), unless the owner is dead: then, if no
 *    recovery runs (rlock, the recovery lock and the owner's lock byte)
 *    and the owner's pending record is idle, take rlock and drain as if
 *    the owner were idle (DEADBUSY, cache_drain_dead in the code), else
 *    give up, csteal = 0; not busy: per entry a hand-off CAS owner victim
 *    + 1 + CACHED -> thief + 1, then release_one of the slot (FIXRFREE;
 *    entries whose CAS fails are skipped), then cn = 0, csteal = 0
 *    (release).  A dead-busy drain ends with cn = 0 and cbusy = 0 (one
 *    word in the code), sweeps the owners for slots V caches outside its
 *    stack (a push or refill cut short) and frees them the same way
 *    (SWEEP), then lets go of rlock, then of csteal.
 *  - Waiter: after its fetch_or on the waiter mask, a membarrier, then the
 *    rescans (bitmap and steals) as before.  Either a pusher's waiter-mask
 *    load follows the barrier and sees the waiter, or its cn store is
 *    visible to the rescan.
 *  - Recovery: the sweep frees owners naming a dead user with or without
 *    the mark (RFREE, nfree[REC] + 1); a csteal naming a dead thief is
 *    taken over (CAS dead + 1 -> REC + 1, membarrier, wait for cbusy == 0
 *    unless the owner is dead (FIXTAKE), drain with RFREEs, cn = 0, csteal
 *    = 0); a settled dead user's cn and cbusy are reset with its record.
 *    resolve_pending reads long-form records (OP_LFREE here: one bit, an
 *    explicit pre-owner; cleared when the op ends, so live until then for
 *    live_pending).
 *  Reorderings.  (1) The owner's cbusy = 1 is a relaxed store followed by
 *  a load of csteal: the store sits in a per-user store buffer (sb) and
 *  becomes visible at the owner's next seq_cst RMW (the refill's CAS, the
 *  flush's fetch_and), at any membarrier (which drains every buffer), or
 *  is overwritten by cbusy = 0.  Every other load of cbusy follows a
 *  membarrier, so a drain at any earlier time could not be observed: the
 *  process that does that (DRAIN) runs only for BROKEN=5.  The owner's
 *  later stores (owner, cstack, cn) are visible at once, which is weaker
 *  than TSO (they overtake the buffered cbusy).  (2) A pusher's
 *  waiter-mask load may be satisfied before its own stores are visible:
 *  right after the handshake it may take the mask's value early; a
 *  membarrier before its place in program order cancels that (the load is
 *  made again, after the barrier).  A SIGKILLed process's buffered store
 *  is not lost: it drains at the next membarrier (SBLOST=1 drops it, which
 *  no CPU does, since the kill enters the kernel, which drains the store
 *  buffer; with it a thief drains the cache of an owner that died in a
 *  flush and the free is counted twice, so the protocol does rely on it).
 *  Not modelled: acquire/release on the cache's own lines.  The owner's
 *  load of csteal must be an acquire, else after a thief's cn = 0;
 *  csteal = 0 (release) it may read a stale cn and pop an entry the thief
 *  freed (a double allocation); the thief's loads of cn and cstack follow
 *  its acquire load of cbusy, which pairs with the owner's release cbusy
 *  = 0.
 *  Where the code differs.  The model's cn and cbusy are the two halves
 *  of the code's cache state word (busy set with a 32-bit store, both
 *  written by one 64-bit store at the end).  FIXSTEAL: the code's thief
 *  waits for a busy owner a bounded time (spins, then yields), then gives
 *  up and makes a waiter look again every 10 ms (LOCKED_NAP) as long as
 *  it meets a busy owner, a refill in progress or another thief: the
 *  model's unbounded wait stands for that wait-and-retry loop.  FIXTAKE:
 *  the code's takeover also lets go after its bounded wait, and relies
 *  instead on pops, spills and drains checking each stack entry's owner
 *  (user + 1 + CACHED) before using it: an entry the dead thief freed
 *  reads owner 0, another user, or the user's own held id, and is
 *  skipped.  The model, whose pops take entries unchecked, waits.
 *
 * Sizes.  tests/model.sh checks 3 users without crashes and 2 users with
 * one SIGKILL, exhaustively, in seconds.  3 users with a SIGKILL (needed
 * for the dead-waiter case of FIXWAKE) exceed 40 million states even with
 * the kill restricted to user 0 (-DKILLABLE=1, no loss by symmetry): run
 * it with bitstate hashing (gcc -DBITSTATE, ./pan -w32), not exhaustive.
 * With caches, model.sh checks 3 users without crashes (3.5 million
 * states) and 2 users with a SIGKILL at any step, the largest case being
 * the one where user 0 pops in a second round (19.0 million states, 30 s
 * with gcc -DCOLLAPSE), and two SIGKILLs (7.6 million).  Not in model.sh
 * (sizes from before DEADBUSY): -DCACHE=2 -DHOLD2 with
 * 2 slots and a SIGKILL (28 million states, 51 s with -DCOLLAPSE), and 3
 * users with a second round (over 34 million states even without a
 * crash; a bitstate search, -w32, covers 46 million without error).
 *
 * DEADBUSY covers pops, pushes, one-slot refills and flushes; spills
 * (half a full cache, stack entries moved down) and releases spanning
 * several words are not modelled: the crash-point driver's CDEAD state
 * kills a real process at each of their stores instead.  The retry gate
 * of the recoverer also opens on a new death (gk), so that with
 * MAXKILL=2 a recovery that had to wait for a live user's operation runs
 * again once that user died too.
 *
 * Simplifications.  The bit an allocator picks is any clear bit (the
 * code's hint makes it vary, so this over-approximates).  The recovery's
 * dead-user scan is one step (the code takes one lock byte per user; the
 * lock bytes have no other effect on shared state).  rlock stands for the
 * recovery lock together with the dead users' lock bytes: a recovery and
 * a thief's dead-busy drain exclude each other, and a killed thief's
 * locks are released with it.  The recoverer does
 * not crash and keeps no RFREE pending record (crash points inside
 * recovery are covered by the crash-point injection tests).  A recovered
 * user record is not reused by a new process.  Batches (alloc_n/free_n),
 * hand-off (adopt) and EINTR are not modelled.  Caches: the stack of a
 * thread is the stack of its user (one thread per user), a flush releases
 * one slot per record (the code: one record per word), a thief's bounded
 * retries on a busy owner are one load (more loads can all see busy).
 * HOLD2 makes user 0 hold two slots at once (so that a cache of 2 fills).
 *
 * Properties.
 *  (a) no double allocation: a ghost `holder` per slot, set when a claim's
 *      CAS lands (or a pop or a thief's hand-off takes a cached slot); a
 *      claim that lands while a live user holds the slot, or on a bit
 *      whose owner is not 0 (a cached slot), fails an assertion, and so
 *      does a recovery that frees a slot a live user holds, a free by a
 *      live user of a slot it no longer owns, a pop of a slot that is not
 *      set and cached by the popper, and a bit clear by a thief or flush
 *      that finds the bit clear;
 *  (b) no lost wake-up: the system never stops (no process can move) with
 *      a live user asleep: the watchdog asserts at `timeout` that no live
 *      user sleeps beside a free slot or a cached one (every user that
 *      can move is asleep then: a cache is one of an idle or finished
 *      user), and a waiter asleep at a terminal
 *      state is an invalid end state (pan reports it);
 *  (c) no leak, exact counters: once every user finished or died and was
 *      recovered, every set bit has a live owner (held or cached) and
 *      sum(nalloc) - sum(nfree) == popcount(bits) == held + cached, every
 *      entry of a live user's stack is a set bit that user caches (once),
 *      no csteal is left set, and the word is unlocked.
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
 *   BROKEN=5  (cache) the thief skips the membarrier: it reads cbusy = 0
 *             while the owner's cbusy = 1 is still buffered, and both use
 *             the stack (a flush frees a slot the thief took), must fail;
 *   BROKEN=6  (cache) the pusher does not load the waiter mask: a waiter
 *             sleeps beside a slot in a finished user's cache, must fail;
 *   BROKEN=7  (cache) the waiter skips the membarrier: the pusher's early
 *             mask load misses it and its rescan misses the push, must
 *             fail;
 *   FIXLIVE=0 recovery as it was before the fix this model called for
 *             (now in lib/shmpool.c, and the default): the crash
 *             configurations fail;
 *   FIXWAKE=0 recovery as it was before commit 2106913 (which made
 *             recover_stale wake waiters whenever it found a dead user,
 *             the fix this model also called for): loses a wake-up.
 *   FIXSTEAL=0, FIXTAKE=0, FIXRFREE=0: the cache protocol as first
 *             drafted, see below; each must fail.
 *   SBLOST=1  a SIGKILLed owner's buffered cbusy = 1 is lost (above).
 *   BROKEN=8  (cache) the dead-busy drain ignores the owner's pending
 *             record: the owner died in a flush after publishing its
 *             long-form FREE record, the thief frees and counts the slot,
 *             and recovery then counts the same free for the owner:
 *             sum(nalloc - nfree) is one short, must fail;
 *   DEADBUSY=0 a thief gives up on an owner killed busy, as before
 *             cache_drain_dead: with NOREC=1 a waiter times out beside
 *             that owner's cached slots, must fail.
 *             With DEADBUSY (the default) and MAXKILL=2 the thief may
 *             die in its drain too, holding rlock, which its death
 *             releases (the kernel drops a dead process's OFD locks).
 *   NOREC=1   no recovery runs (and no final check or watchdog, since a
 *             dead user may then owe a wake-up or hold slots for good):
 *             a waiter that times out, whose last try follows the death
 *             of a user with an idle record and slots it caches, in its
 *             stack or not, must get a slot.
 *   SWEEP=0   the dead-busy drain takes the stack only: a refill's slot,
 *             claimed and marked cached before it was stacked, stays,
 *             must fail with NOREC=1.
 *   EMPTYBUSY=0 thieves skip empty caches even when their owner is busy
 *             (and dead in a refill), must fail with NOREC=1.
 *   Other knobs: ROUNDS0 (user 0's rounds: 2 makes it pop from its
 *   cache), HOLD2, REFILL=0 (no refill: an empty cache falls back to
 *   claim_one), DRAIN=1 (the store-buffer drainer in every variant),
 *   KILLABLE (bit per user the killer may pick).
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
 *   FIXSTEAL (default 1): the draft let a thief that loads cbusy == 1
 *     retry a few times and give up (csteal = 0).  Lost wake-up, 2 users,
 *     1 slot: A pushes slot s, its cbusy = 1 still buffered; B finds the
 *     bitmap empty and steals from A: its membarrier makes A's cbusy
 *     visible, B gives up, announces itself (waiter bit, membarrier) and
 *     rescans: CAS csteal 0 -> B.  A clears cbusy, loads the mask, sees B
 *     and starts its flush: cbusy = 1, loads csteal = B: a thief is at
 *     work, A leaves the flush.  B's membarrier makes A's cbusy = 1
 *     visible: B gives up again.  A finishes; B sleeps for good beside s,
 *     cached by a user that is done.  Each backed off for the other.  (A
 *     wake after a bypassed flush would cure this trace, not the case of a
 *     thief giving up on an owner that pops one of two cached slots and
 *     then keeps its slot for long: a pop loads no waiter mask.)  Fix: a
 *     thief waits while cbusy == 1 (the owner is inside a pop, push or
 *     flush, a few of its own steps with no wait in them) and gives up
 *     only if the owner is dead.
 *   FIXTAKE (default 1): the draft let recovery's takeover of a dead
 *     thief's steal give up "for now" on a busy owner.  A thief that died
 *     mid-drain has freed some entries (owner CAS and bit clear) but not
 *     yet stored cn = 0; the owner is busy only in a bypass (it sees
 *     csteal set); if the takeover then stores csteal = 0, the owner's
 *     next pop hands out an entry that is free in the bitmap or held by
 *     someone else (the final check finds a stale entry).  Fix: wait for
 *     cbusy == 0 as a thief does (or keep csteal and the dead thief's
 *     record for the next run; never clear csteal with the stack
 *     unsettled).
 *   FIXRFREE (default 1): the draft had a thief free each entry like
 *     recovery's RFREE, with a record {RFREE, pre = victim + 1 | CACHED}.
 *     For recovery's own sweep the pre-owner names a dead user, who never
 *     owns a slot again; here the victim is alive.  The thief T dies after
 *     its fetch_and, before nfree + 1; the victim V claims the slot again
 *     (its cache is bypassed while csteal is set), recovery cannot settle
 *     T yet (V's claim of the bit is live), takes over the steal, V pushes
 *     the slot into its cache: owner V + 1 | CACHED again, and the next
 *     recovery reads T's record as "release not started", so T's free is
 *     never counted: sum(nalloc - nfree) stays one too high (used leaks).
 *     Fix: a thief first hands each entry to itself (CAS owner victim + 1
 *     | CACHED -> thief + 1, as a free by another user does) and then
 *     frees it as its own slot with the short-form FREE record, whose
 *     pre-owner is the thief: if it dies, nobody owns the slot as the
 *     thief again.  (Recovery's takeover has the same problem if the
 *     recoverer dies in it; the recoverer does not crash here.)
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
#ifndef CACHE
#define CACHE 0 /* per-user slot cache of CACHE entries (0: none, 1..2) */
#endif
#ifndef ROUNDS0
#define ROUNDS0 ROUNDS /* user 0's rounds (a second one makes it pop) */
#endif
#ifndef REFILL
#define REFILL 1 /* an empty cache is refilled from the bitmap */
#endif
#ifndef FIXSTEAL
#define FIXSTEAL 1 /* a thief waits for cbusy == 0 (see the header) */
#endif
#ifndef FIXTAKE
#define FIXTAKE 1 /* recovery's takeover waits for cbusy == 0 */
#endif
#ifndef FIXRFREE
#define FIXRFREE 1 /* a thief hands each slot to itself, then frees it */
#endif
#ifndef HOLD2
#define HOLD2 0 /* user 0 holds two slots at once (fills a cache of 2) */
#endif
#ifndef SBLOST
#define SBLOST 0 /* a SIGKILL may lose the victim's buffered cbusy = 1 */
#endif
#ifndef DEADBUSY
#define DEADBUSY 1 /* a thief empties the cache of an owner that died busy */
#endif
#ifndef NOREC
#define NOREC 0 /* no recover_stale runs at all */
#endif
#ifndef SWEEP
#define SWEEP 1 /* the dead-busy drain sweeps owners outside the stack */
#endif
#ifndef EMPTYBUSY
#define EMPTYBUSY 1 /* a waiter also steals an empty cache whose owner is busy */
#endif

#define LOCK 128             /* WORD_LOCK */
#define VALID ((1 << NS) - 1) /* valid_bits() of the word */
#define NONE 255             /* no slot */
#define REC NU               /* the recoverer's user record */

#define OP_NONE 0
#define OP_ALLOC1 4
#define OP_FREE1 5
#define OP_LFREE 6 /* long-form FREE/RFREE record, one bit here */

/* pend_idle(): user k's record names no operation in flight (BROKEN=8:
 * the dead-busy drain does not look) */
#if BROKEN != 8
#define PEND_IDLE(k) (pend_op[k] == OP_NONE || \
	(pend_op[k] == OP_ALLOC1 && nalloc[k] != pend_cnt[k]) || \
	(pend_op[k] == OP_FREE1 && nfree[k] != pend_cnt[k]))
#else
#define PEND_IDLE(k) true
#endif

#if CACHE
#define CACHED 4         /* OWNER_CACHED: owner = user + 1 + CACHED */
#define UID(o) ((o) & 3) /* user + 1 an owner value names */
#define IS_CACHED(o) ((o) & CACHED)
#else
#define UID(o) (o)
#define IS_CACHED(o) false
#define oc 0 /* a user's refill mark, always 0 without caches */
#endif

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
#if CACHE
byte pend_pre[4];    /* long-form record: the pre-owner */
byte cstack[3 * CACHE]; /* user k's stack: cstack[k * CACHE + i], i < cn[k] */
byte cn[3];
bit cbusy[3];        /* the value other processes see */
bit sb[3];           /* store buffer: the owner's cbusy = 1 not yet visible */
byte csteal[3];      /* 0 or thief + 1 (REC + 1: recovery) */
bit early[3];        /* a pusher's waiter-mask load satisfied early (SB) */
bit ewm[3];          /* and what it read (waitmask != 0) */
#endif
byte rlock;          /* the recovery lock: 0, or holder + 1 (REC + 1) */

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
#if CACHE
#define ANY_CACHED (cn[0] + cn[1] + cn[2] != 0)
/* a seq_cst RMW by user k drains its store buffer first */
#define SBFLUSH(k) cbusy[k] = cbusy[k] | sb[k]; sb[k] = 0
/* the owner's release store cbusy = 0 (replaces a buffered 1) */
#define UNBUSY(k) cbusy[k] = 0; sb[k] = 0
/* a dead user whose idle record leaves slots cached by it, stacked or
 * not (a push or refill cut short) */
#define CACHES(k) (owner[0] == k + 1 + CACHED || \
	(NS > 1 && owner[1] == k + 1 + CACHED) || \
	(NS > 2 && owner[2] == k + 1 + CACHED))
#define DEAD_CACHED(k) (k < NU && killed[k] && PEND_IDLE(k) && CACHES(k))
#else
#define ANY_CACHED false
#define SBFLUSH(k) skip
#endif
#if NOREC && CACHE
#define DST_SNAP ; dst = (DEAD_CACHED(0) || DEAD_CACHED(1) || DEAD_CACHED(2))
#else
#define DST_SNAP
#endif

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

#if CACHE
/*
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED): a full barrier on every CPU
 * that runs a registered thread.  Every store buffer drains, and a load a
 * pusher satisfied early (ahead of its own stores) must be made again at
 * its place in program order, which is after the barrier.
 */
#define MEMBARRIER \
	SBFLUSH(0); SBFLUSH(1); SBFLUSH(2); \
	early[0] = 0; early[1] = 0; early[2] = 0; \
	ewm[0] = 0; ewm[1] = 0; ewm[2] = 0

inline membarrier()
{
	d_step { MEMBARRIER }
}

#ifndef DRAIN
#define DRAIN (BROKEN == 5)
#endif
#if DRAIN
/*
 * A buffered cbusy = 1 becomes visible at any time, dead owner or not.
 * Every load of cbusy by another process follows a membarrier, which
 * drains all buffers, so an earlier drain cannot be observed: the process
 * only adds states, and is there for BROKEN=5, whose thief loads cbusy
 * without the barrier.
 */
active proctype drainer()
{
end_drain:
	do
	:: atomic { sb[0] -> SBFLUSH(0) }
	:: atomic { sb[1] -> SBFLUSH(1) }
	:: atomic { sb[2] -> SBFLUSH(2) }
	od
}
#endif
#endif

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
#define CLAIM_LOAD r = NONE; snap = nalloc[u]; v = bits /* seq_cst load */

/* claim_one() after its load */
inline claim_rest()
{
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
				/* (a); a clear bit has owner 0: not cached */
				assert(!LIVE_HOLDER(b) && owner[b] == 0);
				holder[b] = (oc != 0 -> 0 : u + 1);
				SBFLUSH(u)
			:: else -> v = bits; ok = false
			fi
		}
		if
		:: ok ->
			owner[b] = u + 1 + oc; /* oc: CACHED for a refill */
			/* completes the claim; the record stays */
			atomic { nalloc[u] = snap + 1; r = b; b = 0; v = 0;
				 snap = 0; ok = false; break }
		:: else -> skip
		fi
	od
}

inline claim_one()
{
	atomic { CLAIM_LOAD }
	claim_rest()
}

/*
 * claim_fast(), shmpool_alloc's first try without caches: its pending
 * record goes out before the load of the bitmap and names the bit at the
 * user's hint, which can be any bit (where the user last freed, or a bit
 * of a word claimed by others since), except one the user holds: the code
 * loads that bit's owner first (folded into this step: only the user
 * itself stores its own id), since a record naming a bit the user holds
 * reads as its claim landed.  claim_rest() names the bit it picks again.
 * EARLYOWN=0 leaves the owner test out and must fail.
 */
#ifndef EARLYOWN
#define EARLYOWN 1
#endif
#if !CACHE
#define GUESS(g) (NS > g && (!EARLYOWN || owner[g] != u + 1))
inline claim_fast()
{
	atomic {
		snap = nalloc[u];
		if
		:: GUESS(0) -> b = 0; ok = true
		:: GUESS(1) -> b = 1; ok = true
		:: GUESS(2) -> b = 2; ok = true
		:: else -> skip
		fi;
		if
		:: ok -> pend_op[u] = OP_ALLOC1; pend_bit[u] = b;
			pend_cnt[u] = snap
		:: else -> skip
		fi;
		b = 0; snap = 0; ok = false
	}
	claim_one()
}
#endif

/* ---- shmpool_free ------------------------------------------------------- */

/* wake_if_waiters(1) after a bit clear (seq_cst load of the mask) */
inline wake_if_waiters()
{
	hw = (waitmask != 0);
	if
	:: atomic { hw -> hw = false } -> wake(false)
	:: atomic { !hw -> skip }
	fi
}

/* own_slot: still allocated and ours (a live holder never loses its slot,
 * to recovery or anyone); release_one publishes its pending record (the
 * own_slot loads are reads: folded in) */
#define FREE_BEGIN \
	assert((bits & (1 << r)) && owner[r] == u + 1); \
	holder[r] = 0; \
	snap = nfree[u]; \
	pend_op[u] = OP_FREE1; pend_bit[u] = r; pend_cnt[u] = snap

/* free_slot() after its first step */
inline free_rest()
{
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

inline free_slot()
{
	atomic { FREE_BEGIN }
	free_rest()
}

#if CACHE
/* ---- the slot cache ---------------------------------------------------- */

/*
 * A steal of V's cache by `me` (a user, or REC taking over the steal of a
 * dead thief, whose id + 1 is `exp`), as a loop on `got`, which the caller
 * sets to 4 in the step that picked V (so that local bookkeeping costs no
 * states of its own):
 *   4: CAS csteal exp -> me + 1 (seq_cst); lost: done;
 *   1: membarrier, then the load of cbusy, in one step (after the barrier
 *      only the owner's cbusy = 0 can change what the load reads, and a
 *      later load would only wait less); busy: give up (store csteal = 0)
 *      or, with `fix`, 2: wait until the owner's pop or push is over,
 *      unless the owner died in it;
 *   3: not busy: drain the n = cn[V] entries, then cn[V] = 0 and
 *      csteal = 0 (release).
 * V is incremented when the steal is over (both callers loop on V).
 */
#if BROKEN != 5
#define STEAL_BARRIER MEMBARRIER
#else
#define STEAL_BARRIER skip /* the thief skips the membarrier */
#endif
#define DEAD_DRAIN(V, dd) (dd && rlock == 0 && PEND_IDLE(V))
#define STEAL_STEPS(V, me, exp, fix, dd) \
	:: atomic { got == 4 -> \
		if \
		:: csteal[V] == exp -> csteal[V] = me + 1; got = 1 \
		:: else -> got = 0; V++; break \
		fi } \
	:: atomic { got == 1 -> STEAL_BARRIER; \
		if \
		:: cbusy[V] == 0 -> n = cn[V]; i = 0; got = 3 \
		:: else -> got = ((fix && !killed[V]) || (dd && killed[V]) -> \
				  2 : 0); \
			if \
			:: got == 0 -> csteal[V] = 0; V++; break /* give up */ \
			:: else -> skip \
			fi \
		fi } \
	:: atomic { got == 2 && cbusy[V] == 0 -> n = cn[V]; i = 0; got = 3 } \
	:: atomic { got == 2 && killed[V] && DEAD_DRAIN(V, dd) -> \
		rlock = me + 1; n = cn[V]; i = 0; got = 3 } \
	:: atomic { got == 2 && killed[V] && !DEAD_DRAIN(V, dd) -> \
		csteal[V] = 0; got = 0; V++; break } \
	:: atomic { got == 3 && i >= n && !(dd && rlock == me + 1) -> \
		cn[V] = 0; csteal[V] = 0; n = 0; i = 0; got = 0; V++; break }

/* RFREE of stack entry b of V by `me` after its record (for REC: none):
 * CAS owner V + 1 + CACHED -> 0 (which arbitrates against recovery's
 * sweep), fetch_and of the bit, nfree[me] = snap + 1 and the record
 * cleared (for REC: freed++) */
inline rfree_entry(V, me)
{
	atomic { /* CAS owner V + 1 + CACHED -> 0 */
		if
		:: owner[b] == V + 1 + CACHED -> owner[b] = 0; ok = true
		:: else -> ok = false
		fi
	}
	if
	:: atomic { ok -> ok = false; was = bits & (1 << b);
		bits = bits & ~(1 << b); assert(was != 0 && !LIVE_HOLDER(b)) }
		atomic {
			nfree[me] = snap + 1; was = 0; snap = 0; stole++; b = 0;
			if
			:: me < NU -> pend_op[me] = OP_NONE; pend_bit[me] = 0;
				pend_cnt[me] = 0; pend_pre[me] = 0
			:: else -> freed++
			fi
		}
	:: atomic { !ok -> snap = 0; b = 0;
		if
		:: me < NU -> pend_op[me] = OP_NONE; pend_bit[me] = 0;
			pend_cnt[me] = 0; pend_pre[me] = 0
		:: else -> skip
		fi }
	fi
}

/*
 * A user thief drains V's stack to the bitmap.  FIXRFREE (default): per
 * entry a hand-off (CAS owner V + 1 + CACHED -> u + 1, as a free by
 * another user does), then a plain free (release_one: short-form record,
 * owner = 0, fetch_and, nfree + 1, wake if waiters).  FIXRFREE=0 (the
 * draft): per entry an RFREE with a long-form record {pre = V + 1 +
 * CACHED}, then a wake if waiters.
 */
inline steal(V)
{
	do
	STEAL_STEPS(V, u, 0, FIXSTEAL, DEADBUSY)
#if FIXRFREE
	:: atomic { got == 3 && i < n -> b = cstack[V * CACHE + i]; i++;
		if /* CAS owner V + 1 + CACHED -> u + 1 */
		:: owner[b] == V + 1 + CACHED ->
			assert(!LIVE_HOLDER(b));
			owner[b] = u + 1; holder[b] = u + 1; ok = true
		:: else -> ok = false
		fi }
		if
		:: atomic { ok -> ok = false; r = b; b = 0; stole++;
			FREE_BEGIN }
			free_rest() /* wakes if waiters */
		:: atomic { !ok -> b = 0 }
		fi
#else
	:: atomic { got == 3 && i < n -> b = cstack[V * CACHE + i]; i++;
		snap = nfree[u]; pend_op[u] = OP_LFREE; pend_bit[u] = b;
		pend_cnt[u] = snap; pend_pre[u] = V + 1 + CACHED }
		rfree_entry(V, u);
		wake_if_waiters()
#endif
	/* the end of a dead-busy drain (DEADBUSY): the stack's word goes to
	 * 0 (depth and busy), then the owners are swept for slots cached by
	 * V outside the stack, then rlock, then csteal */
	:: atomic { got == 3 && i >= n && DEADBUSY && rlock == u + 1 ->
		cn[V] = 0; cbusy[V] = 0; n = 0; i = 0; got = 5 }
	:: atomic { got == 5 && i < NS &&
		    (!SWEEP || owner[i] != V + 1 + CACHED) -> i++ }
	:: atomic { got == 5 && i < NS && SWEEP && owner[i] == V + 1 + CACHED ->
		assert(!LIVE_HOLDER(i));
		owner[i] = u + 1; holder[i] = u + 1; r = i; i++; stole++ }
		atomic { FREE_BEGIN }
		free_rest() /* wakes if waiters */
	:: atomic { got == 5 && i >= NS -> rlock = 0; i = 0; got = 6 }
	:: atomic { got == 6 -> csteal[V] = 0; got = 0; V++; break }
	od
}

/* Recovery takes over the steal a dead thief (exp - 1) left on V. */
inline steal_rec(V, exp)
{
	do
	STEAL_STEPS(V, REC, exp, FIXTAKE, 0)
	:: atomic { got == 3 && i < n -> b = cstack[V * CACHE + i]; i++;
		snap = nfree[REC] }
		rfree_entry(V, REC)
	od
}

/* The bitmap is empty: steal from every other user with cn > 0, or, for a
 * waiter (with DEADBUSY and EMPTYBUSY), busy: a refill in progress, or one
 * its owner died in (the caller sets j = 0, stole = 0). */
#define STEALABLE(j) (cn[j] != 0 || (DEADBUSY && EMPTYBUSY && cbusy[j] && \
	(waitmask & (1 << u))))
inline steal_all()
{
	do
	:: atomic { j < NU && (j == u || !STEALABLE(j)) -> j++ }
	:: atomic { j < NU && j != u && STEALABLE(j) -> got = 4 }
		steal(j)
	:: atomic { j >= NU -> j = 0; break }
	od
}

/* Pop: cbusy = 1 (buffered), compiler barrier, load csteal (and cn). */
inline cache_pop()
{
	atomic { r = NONE; sb[u] = 1; byp = (csteal[u] != 0); n = cn[u] }
	if
	:: atomic { byp -> UNBUSY(u); byp = 0; n = 0 } /* uncached path */
	:: atomic { !byp && n > 0 -> b = cstack[u * CACHE + n - 1];
		/* (a): the slot is cached by us, no one else holds it */
		assert((bits & (1 << b)) && owner[b] == u + 1 + CACHED &&
		       !LIVE_HOLDER(b));
		owner[b] = u + 1; holder[b] = u + 1; r = b; b = 0 }
		atomic { cn[u] = n - 1; UNBUSY(u); n = 0 }
#if REFILL
	/*
	 * Refill (still busy): claim one bit (max(1, K/2) = 1 for K <= 3)
	 * into the cache, owner u + 1 + CACHED, nalloc + 1; push it and
	 * pop it at once (its one entry is seen by no thief, the owner being
	 * busy, and by no recovery, which resets cn and finds the slot by its
	 * owner), then cbusy = 0.  A failed refill goes on to the steals.
	 */
	:: atomic { !byp && n == 0 -> oc = CACHED; CLAIM_LOAD }
		claim_rest();
		if
		:: atomic { r != NONE ->
			assert((bits & (1 << r)) && owner[r] == u + 1 + CACHED &&
			       !LIVE_HOLDER(r));
			owner[r] = u + 1; holder[r] = u + 1; oc = 0 }
			atomic { UNBUSY(u) }
		:: atomic { r == NONE -> UNBUSY(u); oc = 0; tried = 1 }
		fi
#else
	:: atomic { !byp && n == 0 -> UNBUSY(u) }
#endif
	fi
}

/* Flush the whole cache to the bitmap, a release_one per slot. */
inline flush_all()
{
	atomic { sb[u] = 1; byp = (csteal[u] != 0); n = cn[u] }
	do
	:: atomic { byp -> UNBUSY(u); byp = 0; n = 0; break } /* a thief */
	:: atomic { !byp && n > 0 -> n--; b = cstack[u * CACHE + n];
		assert((bits & (1 << b)) && owner[b] == u + 1 + CACHED);
		snap = nfree[u];
		pend_op[u] = OP_LFREE; pend_bit[u] = b; pend_cnt[u] = snap;
		pend_pre[u] = u + 1 + CACHED }
		owner[b] = 0;
		atomic { SBFLUSH(u); was = bits & (1 << b);
			 bits = bits & ~(1 << b); assert(was != 0) }
		atomic { nfree[u] = snap + 1; cn[u] = n; pend_op[u] = OP_NONE;
			 pend_bit[u] = 0; pend_cnt[u] = 0; pend_pre[u] = 0;
			 snap = 0; was = 0; b = 0 }
		wake_if_waiters()
	:: atomic { !byp && n == 0 -> UNBUSY(u); break }
	od
}

#define PUSH_STORES \
	assert((bits & (1 << r)) && owner[r] == u + 1); \
	holder[r] = 0; owner[r] = u + 1 + CACHED; \
	cstack[u * CACHE + n] = r; cn[u] = n + 1; r = NONE; n = 0

/*
 * Push: the handshake, then owner = u + 1 + CACHED, cstack[n] = r,
 * cn = n + 1, cbusy = 0 (release), then the waiter-mask load, which the
 * hardware may satisfy before those stores are visible (store buffering):
 * modelled as a load that may be made early, right after the handshake,
 * and that a membarrier before its place cancels.  A full cache (or a
 * thief) takes the uncached free.
 */
inline push_tail()
{
	atomic { UNBUSY(u) }
	atomic { hw = (early[u] -> ewm[u] : waitmask != 0);
		 early[u] = 0; ewm[u] = 0 }
#if BROKEN == 6
	hw = false; /* the pusher does not look for waiters */
#endif
	if
	:: atomic { hw -> hw = false } flush_all()
	:: atomic { !hw -> skip }
	fi
}

inline cache_push()
{
	atomic { sb[u] = 1; byp = (csteal[u] != 0); n = cn[u] }
	if
	:: atomic { byp || n >= CACHE -> UNBUSY(u); byp = 0; n = 0 }
		free_slot()
	:: atomic { !byp && n < CACHE -> ewm[u] = (waitmask != 0);
		early[u] = 1 }
		atomic { PUSH_STORES }
		push_tail()
	:: atomic { !byp && n < CACHE -> PUSH_STORES }
		push_tail()
	fi
}
#endif

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

#if CACHE
/* after a timeout the next rescan is the last try (in the code it follows
 * the wait: the same steps, and one copy fewer of try_alloc in the model) */
#define LAST_TRY tmo
#else
#define LAST_TRY false
#endif

/* claim_one(); with caches, if the bitmap is empty, steal and claim again */
#if CACHE
/* the bitmap is empty: steal, and claim again if a steal freed slots */
inline steal_claim()
{
	steal_all();
	if
	:: atomic { stole != 0 -> stole = 0; CLAIM_LOAD } claim_rest()
	:: atomic { stole == 0 -> skip }
	fi
}
#endif

inline try_alloc()
{
	claim_one()
#if CACHE
	;
	if
	:: atomic { r == NONE -> stole = 0; j = 0 } steal_claim()
	:: atomic { r != NONE -> skip }
	fi
#endif
}

/*
 * shmpool_alloc(p, -1): its fast try and wait_for's first try are the same
 * claim_one() (a failed one writes nothing but its own pending record), so
 * one attempt is modelled before the waiter announces itself.  With caches
 * the fast try pops (or refills) first.
 */
inline alloc_blocking()
{
#if CACHE
	cache_pop();
	if
	:: atomic { r == NONE && !tried -> CLAIM_LOAD } claim_rest()
	:: atomic { r != NONE || tried -> tried = 0 } /* a refill claimed */
	fi;
	if
	:: atomic { r == NONE -> stole = 0; j = 0 } steal_claim()
	:: atomic { r != NONE -> skip }
	fi;
#else
	claim_fast();
#endif
	if
	:: r != NONE -> skip
	:: else ->
		waitmask = waitmask | (1 << u); /* fetch_or, seq_cst */
#if CACHE && BROKEN != 7
		membarrier(); /* then the rescan sees every pushed slot */
#endif
		do
		:: seq = wake_seq; /* seq_cst load */
#if BROKEN != 2
			try_alloc(); /* rescan */
			if
			:: r != NONE || LAST_TRY -> break
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
				asleep[u] = false; ntmo++; tmo = true
				DST_SNAP }
			fi;
#if BROKEN == 2
			try_alloc();
			if
			:: r != NONE -> break
			:: else -> skip
			fi;
#endif
#if !CACHE
			if
			:: tmo ->
				try_alloc(); /* last try, then ETIMEDOUT */
				break
			:: else -> skip
			fi
#endif
		od;
#if NOREC && CACHE
		/* a waiter that gives up leaves no slot in the stack of a
		 * user already dead, with an idle record, when it timed out
		 * (nobody else can empty that stack) */
		assert(r != NONE || !dst);
#endif
		atomic { waitmask = waitmask & ~(1 << u); tmo = false }
		pass_on()
	fi
}

#if CACHE
#define FREE_IT cache_push()
#else
#define FREE_IT free_slot()
#endif

proctype user(byte u)
{
	byte r, v, b, snap, seq, was, k;
	bool ok, hw, tmo;
#if CACHE
	byte n, i, j, oc, stole, freed; /* freed: unused (recovery) */
	bit byp, tried;
	byte got;
	bit dst; /* NOREC: a dead user held cached slots at the timeout */
#endif
#if HOLD2
	byte r2 = NONE; /* user 0's first slot while it allocates a second */
#endif

	{
		do
		:: k < (u == 0 -> ROUNDS0 : ROUNDS) ->
			alloc_blocking();
#if HOLD2
			if
			:: atomic { u == 0 && r != NONE -> r2 = r }
				alloc_blocking();
				if
				:: atomic { r != NONE -> skip } FREE_IT
				:: atomic { r == NONE -> skip } /* timed out */
				fi;
				atomic { r = r2; r2 = NONE }
			:: atomic { u != 0 || r == NONE -> skip }
			fi;
#endif
			if
			:: atomic { r != NONE -> k++ } -> FREE_IT
			:: atomic { r == NONE -> k++ } /* timed out */
			fi
		:: atomic { k >= (u == 0 -> ROUNDS0 : ROUNDS) -> done[u] = true;
			break }
		od
	} unless { killed[u] }
}

/* ---- the killer ---------------------------------------------------------- */

#ifndef KILLABLE
#define KILLABLE 7 /* bit per user the killer may pick */
#endif
#define KILL(k) atomic { nkill < MAXKILL && k < NU && (KILLABLE & (1 << k)) && \
	!done[k] && !killed[k] -> \
	killed[k] = true; asleep[k] = false; nkill++; \
	rlock = (rlock == k + 1 -> 0 : rlock) }

#if CACHE && SBLOST
/* the victim's buffered cbusy = 1 is lost (else it drains at the next
 * membarrier, see the header) */
#define KILLSB(k) atomic { nkill < MAXKILL && k < NU && \
	(KILLABLE & (1 << k)) && !done[k] && !killed[k] && sb[k] -> \
	killed[k] = true; asleep[k] = false; nkill++; sb[k] = 0; \
	rlock = (rlock == k + 1 -> 0 : rlock) }
#else
#define KILLSB(k) atomic { false -> skip }
#endif

active proctype killer()
{
end_kill:
	do
	:: KILL(0)
	:: KILL(1)
	:: KILL(2)
	:: KILLSB(0)
	:: KILLSB(1)
	:: KILLSB(2)
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
 * waiters churn.  The copies are ints: PREC exceeds 255 once a counter
 * moved, and byte copies (as they were) never compared equal, which left
 * the gate open; with caches the spinning recoverer then wrapped the byte
 * wake_seq under a waiter between its load and its futex_wait (a lost
 * wake-up of the model only: the code's u32 would need 2^32 wakes).
 */
#define PREC(k) (pend_op[k] * 4 + pend_bit[k] + pend_cnt[k] * 32 + \
		 nalloc[k] * 256 + nfree[k] * 4096)
#define SNAPSHOT gp0 = PREC(0); gp1 = PREC(1); gp2 = PREC(2); \
	gq0 = gp0; gq1 = gp1; gq2 = gp2; gk = nkill
#define CHANGED (gp0 != PREC(0) || gp1 != PREC(1) || gp2 != PREC(2) || \
	gq0 != PREC(0) || gq1 != PREC(1) || gq2 != PREC(2) || gk != nkill)

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
	   (lop == OP_FREE1 && nfree[k] == lcnt) || lop == OP_LFREE -> \
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
			pre = (op == OP_FREE1 -> d + 1 :
			       (op == OP_LFREE -> pp : 0));
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
			:: !(v & m) || (o != 0 && UID(o) != d + 1) -> skip
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
		:: atomic { o != 0 && (dset & (1 << (UID(o) - 1))) &&
			    (bits & (1 << b)) ->
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

#define OWNED_BY_DEAD(k) (owner[k] != 0 && (dset & (1 << (UID(owner[k]) - 1))))

active proctype recoverer()
{
	byte d, dset, todo, settled, live, op, pb, pc, cnt, sn, m, pre, o, v;
	byte lop, lbit, lcnt; /* one live user's record, in live_pending */
	byte b, counted, freed;
	bool ok, locked_any;
	int gp0, gp1, gp2, gq0, gq1, gq2; /* the retry gate (PREC > 255) */
	byte gk; /* and the kills it saw (a new death opens it too) */
	bool gated;
	byte pp; /* a long-form record's pre-owner */
#if CACHE
	byte V, cs, n, i, snap, was, stole; /* the steal takeover */
	byte got;
	bool hw;
#endif

end_rec:
	do
	:: atomic { /* lock bytes of dead users taken */
		(UNRECOVERED(0) || UNRECOVERED(1) || UNRECOVERED(2)) &&
		(!gated || CHANGED) && rlock == 0 && !NOREC ->
		rlock = REC + 1;
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
			/* a long-form record is cleared when its op ends */
			cnt = (op == OP_ALLOC1 -> nalloc[d] :
			       (op == OP_LFREE -> pc : nfree[d]));
#if CACHE
			pp = pend_pre[d]
#endif
		   }
			resolve_pending(d);
			d_step { op = 0; pb = 0; pc = 0; cnt = 0; sn = 0; m = 0;
				 pre = 0; o = 0; v = 0; live = 0; counted = 0;
				 ok = false; pp = 0 }
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
#if CACHE
		/* a steal a dead thief left: take it over (CAS csteal
		 * dead + 1 -> REC + 1) and finish it */
		do
		:: atomic { V < NU && !(csteal[V] != 0 &&
				(dset & (1 << (csteal[V] - 1)))) -> V++ }
		:: atomic { V < NU && csteal[V] != 0 &&
			    (dset & (1 << (csteal[V] - 1))) ->
				cs = csteal[V]; got = 4 }
			steal_rec(V, cs)
		:: atomic { V >= NU -> V = 0; cs = 0; break }
		od;
#endif
		/* settled dead users: clear the waiter bit, free the record */
		todo = dset & settled;
		do
		:: atomic { todo != 0 ->
			d = (todo & 1 -> 0 : (todo & 2 -> 1 : 2));
			todo = todo & ~(1 << d);
			waitmask = waitmask & ~(1 << d) }
#if CACHE
			/* the record is freed: its cache is empty, not busy */
			atomic { recovered[d] = true; cn[d] = 0; cbusy[d] = 0 }
#else
			recovered[d] = true
#endif
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
			locked_any = false;
			rlock = 0
		}
	od
}

/* ---- properties (b) and (c) ------------------------------------------------- */

#define FINISHED(k) (k >= NU || done[k] || (killed[k] && recovered[k]))

/* (without recovery a dead user never finishes: nothing to check) */
active [1 - NOREC] proctype final_check()
{
	byte k, pop, i;
	short sum;
	byte held, cached; /* set bits owned plainly, or with CACHED */

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
				assert(owner[k] != 0 && UID(owner[k]) <= NU &&
				       !killed[UID(owner[k]) - 1]);
				if
				:: IS_CACHED(owner[k]) -> cached++
				:: else -> held++
				fi
			:: else -> skip
			fi;
			k++
		:: else -> break
		od;
		assert(sum == pop);     /* used == popcount(bits) */
		assert(pop == held + cached);
#if CACHE
		/* every cache entry is a set bit cached by its user, once,
		 * and every cached bit is in its user's cache */
		k = 0;
		do
		:: k < NU ->
			assert(csteal[k] == 0);
			if
			:: !killed[k] ->
				assert(cn[k] <= CACHE && !cbusy[k] && !sb[k]);
				i = 0;
				do
				:: i < cn[k] ->
					assert((bits & (1 << cstack[k * CACHE + i])) &&
					       owner[cstack[k * CACHE + i]] ==
					       k + 1 + CACHED);
					assert(i == 0 || cstack[k * CACHE] !=
					       cstack[k * CACHE + i]);
					cached--;
					i++
				:: else -> break
				od
			:: else -> assert(cn[k] == 0)
			fi;
			k++
		:: else -> break
		od;
		assert(cached == 0);
#endif
		assert(!(bits & LOCK)); /* no word left locked */
		assert(waitmask == 0)   /* no stuck waiter state */
	}
}

/* (without recovery a dead user may owe a wake-up for good: NOREC checks
 * only that a waiter's last try empties dead users' caches, and safety) */
active [1 - NOREC] proctype watchdog()
{
	/* the whole system is stuck: no live user may sleep beside a free
	 * slot or a cached one (a lost wake-up) */
end_watch:
	timeout -> assert(!(ANY_ASLEEP && (FREE_SLOT || ANY_CACHED)))
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
