/*
 * Shared.xs - Data::Pool::Shared on libshmpool.
 *
 * Object model.  A pool object is a blessed scalar carrying ext magic whose
 * mg_ptr is a dps_pool: the libshmpool handle plus an atomic reference
 * count.  The object holds one reference; so does every slot_sv scalar and
 * every guard, so the mapping stays valid for as long as any of them lives,
 * whichever is freed first.  The handle is closed when the count reaches
 * zero.  When perl clones an interpreter (ithreads), the magic's dup hook
 * takes one more reference for the new interpreter's copy: every copy is
 * released once, by its own interpreter, and the wrapper is shared, never
 * copied, so there is no double close.  An explicit ->DESTROY releases the
 * object's reference early and leaves a NULL behind, which every method
 * reports as "Attempted to use a destroyed Data::Pool::Shared object".
 *
 * After fork() the child keeps using its copies: libshmpool makes the child
 * a new user of every open pool by itself.  Guards remember the process
 * that made them and free nothing when they are destroyed in another one
 * (a forked child exiting must not free its parent's slot).
 *
 * Error texts are formatted here, not taken from shmpool_errmsg(), for the
 * ones Perl users match on (out of range, not allocated), so that they stay
 * those of the reference module whatever the C library says.
 */
#define PERL_NO_GET_CONTEXT
#include "EXTERN.h"
#include "perl.h"
#include "XSUB.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "shmpool.h"

#if IVSIZE < 8
#error "Data::Pool::Shared needs a perl with 64-bit integers"
#endif
#ifndef LIKELY
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#endif
#ifndef G_LIST
#define G_LIST G_ARRAY
#endif

#define DESTROYED_MSG "Attempted to use a destroyed Data::Pool::Shared object"

typedef struct dps_pool {
	shmpool_t *pool;
	int refs; /* atomic: objects, clones, views and guards holding it */
	enum shmpool_variant variant;
	uint64_t capacity;
	uint64_t stride; /* bytes per slot (STR: max_len + 4) */
	uint64_t max_len;
} dps_pool;

static void dps_ref(dps_pool *w)
{
	__atomic_add_fetch(&w->refs, 1, __ATOMIC_RELAXED);
}

static void dps_unref(dps_pool *w)
{
	if (__atomic_sub_fetch(&w->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		shmpool_close(w->pool);
		PerlMemShared_free(w);
	}
}

/* ------------------------------------------------------------------ */
/* Pool objects                                                        */
/* ------------------------------------------------------------------ */

static int pool_mg_free(pTHX_ SV *sv, MAGIC *mg)
{
	dps_pool *w = (dps_pool *)mg->mg_ptr;

	PERL_UNUSED_ARG(sv);
	if (w) {
		mg->mg_ptr = NULL;
		dps_unref(w);
	}
	return 0;
}

static int pool_mg_dup(pTHX_ MAGIC *mg, CLONE_PARAMS *param)
{
	PERL_UNUSED_ARG(param);
	if (mg->mg_ptr)
		dps_ref((dps_pool *)mg->mg_ptr);
	return 0;
}

static MGVTBL pool_vtbl = { NULL, NULL, NULL, NULL, pool_mg_free,
			    NULL, pool_mg_dup, NULL };

static MAGIC *pool_magic(pTHX_ SV *self)
{
	if (SvROK(self)) {
		SV *sv = SvRV(self);
		MAGIC *mg;

		if (SvMAGICAL(sv))
			for (mg = SvMAGIC(sv); mg; mg = mg->mg_moremagic)
				if (mg->mg_virtual == &pool_vtbl)
					return mg;
	}
	return NULL;
}

/* The typemap's input conversion: one pointer chase, no hash lookup. */
static inline dps_pool *dps_pool_of(pTHX_ SV *self)
{
	MAGIC *mg = pool_magic(aTHX_ self);

	if (UNLIKELY(!mg))
		croak("Data::Pool::Shared method called on something that is "
		      "not a Data::Pool::Shared object");
	if (UNLIKELY(!mg->mg_ptr))
		croak(DESTROYED_MSG);
	return (dps_pool *)mg->mg_ptr;
}

static SV *new_pool_object(pTHX_ shmpool_t *p, const char *cls)
{
	dps_pool *w = (dps_pool *)PerlMemShared_malloc(sizeof(*w));
	SV *obj = newSV(0);
	SV *rv;
	MAGIC *mg;
	int64_t ml;

	w->pool = p;
	w->refs = 1;
	w->variant = shmpool_variant(p);
	w->capacity = shmpool_capacity(p);
	w->stride = shmpool_elem_size(p);
	ml = shmpool_str_max_len(p);
	w->max_len = ml < 0 ? w->stride : (uint64_t)ml;
	mg = sv_magicext(obj, NULL, PERL_MAGIC_ext, &pool_vtbl, (char *)w, 0);
	mg->mg_flags |= MGf_DUP;
	sv_setiv(obj, PTR2IV(w)); /* shown by Data::Dumper; never trusted */
	rv = newRV_noinc(obj);
	sv_bless(rv, gv_stashpv(cls, GV_ADD));
	SvREADONLY_on(obj); /* after bless, which refuses read-only referents */
	return rv;
}

/* ------------------------------------------------------------------ */
/* Indexes and errors                                                  */
/* ------------------------------------------------------------------ */

static void croak_range(pTHX_ const dps_pool *w, SV *sv)
{
	if (SvIsUV(sv))
		croak("slot %" UVuf " out of range (capacity %" UVuf ")",
		      SvUVX(sv), (UV)w->capacity);
	croak("slot %" IVdf " out of range (capacity %" UVuf ")", SvIVX(sv),
	      (UV)w->capacity);
}

static uint64_t idx_slow(pTHX_ const dps_pool *w, SV *sv)
{
	SvGETMAGIC(sv);
	if (!SvOK(sv))
		croak("slot index is undef");
	(void)SvIV_nomg(sv); /* sets IVX, or UVX and IsUV beyond IV_MAX */
	if (SvIsUV(sv)) {
		if (SvUVX(sv) < w->capacity)
			return SvUVX(sv);
	} else if (SvIVX(sv) >= 0 && (UV)SvIVX(sv) < w->capacity) {
		return (uint64_t)SvIVX(sv);
	}
	croak_range(aTHX_ w, sv);
	return 0;
}

/* A slot index argument, range-checked: "slot N out of range (capacity C)". */
static inline uint64_t idx_of(pTHX_ const dps_pool *w, SV *sv)
{
	if (LIKELY(SvIOK_notUV(sv) && !SvGMAGICAL(sv))) {
		IV i = SvIVX(sv);

		if (LIKELY(i >= 0 && (UV)i < w->capacity))
			return (uint64_t)i;
	}
	return idx_slow(aTHX_ w, sv);
}

/* Croak for a failed data call on slot @idx (already range-checked). */
static void croak_op(pTHX_ uint64_t idx)
{
	if (errno == ENOENT)
		croak("slot %" UVuf " is not allocated", (UV)idx);
	croak("%s", shmpool_errmsg());
}

/* alloc's timeout: absent or undef waits forever. */
static double timeout_of(pTHX_ I32 items, SV **args, I32 pos)
{
	if (items > pos && SvOK(args[pos]))
		return SvNV(args[pos]);
	return -1.0;
}

/* An alloc that failed: undef for a full pool or a timeout, croak for a
 * real error (every user record taken ...). */
static void alloc_failed(pTHX)
{
	if (errno != EAGAIN && errno != ETIMEDOUT)
		croak("%s", shmpool_errmsg());
}

/* Free, retrying while the slot is between two states (another process
 * mid-way through a free or a claim of it: a few instructions). */
static int free_slot(dps_pool *w, uint64_t idx)
{
	int tries = 0;

	for (;;) {
		if (shmpool_free(w->pool, idx) == 0)
			return 1;
		if (errno != EBUSY || ++tries > 1000)
			return 0;
		sched_yield();
	}
}

/* ------------------------------------------------------------------ */
/* Values                                                              */
/* ------------------------------------------------------------------ */

/* Store @val in allocated slot @idx as the pool's variant wants; data
 * longer than a raw slot or a Str max_len is truncated, as the reference
 * does.  Returns 0 or -1 with errno. */
static int set_value(pTHX_ dps_pool *w, uint64_t idx, SV *val)
{
	switch (w->variant) {
	case SHMPOOL_I64:
		return shmpool_i64_set(w->pool, idx, (int64_t)SvIV(val));
	case SHMPOOL_I32:
		return shmpool_i32_set(w->pool, idx, (int32_t)SvIV(val));
	case SHMPOOL_F64:
		return shmpool_f64_set(w->pool, idx, (double)SvNV(val));
	case SHMPOOL_STR: {
		STRLEN len;
		const char *s = SvPV(val, len);

		return shmpool_str_set_trunc(w->pool, idx, s, len) < 0 ? -1
									: 0;
	}
	default: {
		STRLEN len;
		const char *s = SvPV(val, len);

		return shmpool_set_trunc(w->pool, idx, s, len) < 0 ? -1 : 0;
	}
	}
}

/* Put the value of allocated slot @idx into @targ. */
static int get_value(pTHX_ dps_pool *w, uint64_t idx, SV *targ)
{
	switch (w->variant) {
	case SHMPOOL_I64: {
		int64_t v;

		if (shmpool_i64_get(w->pool, idx, &v) < 0)
			return -1;
		sv_setiv(targ, (IV)v);
		return 0;
	}
	case SHMPOOL_I32: {
		int32_t v;

		if (shmpool_i32_get(w->pool, idx, &v) < 0)
			return -1;
		sv_setiv(targ, (IV)v);
		return 0;
	}
	case SHMPOOL_F64: {
		double v;

		if (shmpool_f64_get(w->pool, idx, &v) < 0)
			return -1;
		sv_setnv(targ, (NV)v);
		return 0;
	}
	default: {
		/* raw: the whole slot; STR: the string, NULs included */
		const void *p;
		size_t len;

		if (shmpool_slot_view(w->pool, idx, &p, &len) < 0)
			return -1;
		sv_setpvn(targ, (const char *)p, len);
		return 0;
	}
	}
}

/* ------------------------------------------------------------------ */
/* slot_sv: a read-only scalar over the slot                           */
/* ------------------------------------------------------------------ */

typedef struct dps_view {
	dps_pool *w;
	unsigned char *slot; /* the slot's first byte in the mapping */
} dps_view;

/* Str slots: a 4-byte length, then the bytes.  Each read of the scalar
 * shows the string stored now (the length is clamped: a torn or hostile
 * length never reaches past the slot). */
static int view_mg_get(pTHX_ SV *sv, MAGIC *mg)
{
	dps_view *v = (dps_view *)mg->mg_ptr;
	uint32_t n;

	if (!v || v->w->variant != SHMPOOL_STR)
		return 0;
	memcpy(&n, v->slot, sizeof(n));
	if (n > v->w->max_len)
		n = (uint32_t)v->w->max_len;
	SvPV_set(sv, (char *)v->slot + 4);
	SvCUR_set(sv, n);
	return 0;
}

static int view_mg_free(pTHX_ SV *sv, MAGIC *mg)
{
	dps_view *v = (dps_view *)mg->mg_ptr;

	if (v) {
		/* the buffer is the pool's: perl must not free it */
		SvPV_set(sv, NULL);
		SvCUR_set(sv, 0);
		SvLEN_set(sv, 0);
		SvPOK_off(sv);
		mg->mg_ptr = NULL;
		dps_unref(v->w);
		PerlMemShared_free(v);
	}
	return 0;
}

static int view_mg_dup(pTHX_ MAGIC *mg, CLONE_PARAMS *param)
{
	dps_view *v = (dps_view *)mg->mg_ptr, *c;

	PERL_UNUSED_ARG(param);
	if (!v)
		return 0;
	c = (dps_view *)PerlMemShared_malloc(sizeof(*c));
	*c = *v;
	dps_ref(c->w);
	mg->mg_ptr = (char *)c;
	return 0;
}

static MGVTBL view_vtbl = { view_mg_get, NULL, NULL, NULL, view_mg_free,
			    NULL, view_mg_dup, NULL };

/* ------------------------------------------------------------------ */
/* Guards                                                              */
/* ------------------------------------------------------------------ */

typedef struct dps_guard {
	dps_pool *w;
	int64_t idx; /* -1: nothing held */
	pid_t pid;   /* the process that allocated: only it frees on destroy */
} dps_guard;

static int guard_mg_free(pTHX_ SV *sv, MAGIC *mg)
{
	dps_guard *g = (dps_guard *)mg->mg_ptr;

	PERL_UNUSED_ARG(sv);
	if (g) {
		mg->mg_ptr = NULL;
		if (g->idx >= 0 && g->pid == getpid())
			free_slot(g->w, (uint64_t)g->idx);
		dps_unref(g->w);
		PerlMemShared_free(g);
	}
	return 0;
}

/* A thread's copy of a guard holds no slot: only the original frees it. */
static int guard_mg_dup(pTHX_ MAGIC *mg, CLONE_PARAMS *param)
{
	dps_guard *g = (dps_guard *)mg->mg_ptr, *c;

	PERL_UNUSED_ARG(param);
	if (!g)
		return 0;
	c = (dps_guard *)PerlMemShared_malloc(sizeof(*c));
	c->w = g->w;
	c->idx = -1;
	c->pid = g->pid;
	dps_ref(c->w);
	mg->mg_ptr = (char *)c;
	return 0;
}

static MGVTBL guard_vtbl = { NULL, NULL, NULL, NULL, guard_mg_free,
			     NULL, guard_mg_dup, NULL };

static dps_guard *guard_of(pTHX_ SV *self)
{
	if (SvROK(self)) {
		SV *sv = SvRV(self);
		MAGIC *mg;

		if (SvMAGICAL(sv))
			for (mg = SvMAGIC(sv); mg; mg = mg->mg_moremagic)
				if (mg->mg_virtual == &guard_vtbl && mg->mg_ptr)
					return (dps_guard *)mg->mg_ptr;
	}
	croak("not a Data::Pool::Shared::Guard object");
	return NULL;
}

/* ------------------------------------------------------------------ */
/* each_allocated / allocated_slots helper                             */
/* ------------------------------------------------------------------ */

/* Snapshot of the allocated indexes in a buffer freed at scope exit. */
static uint64_t *snapshot(pTHX_ dps_pool *w, int64_t *n)
{
	uint64_t max = shmpool_used(w->pool) + 64;
	uint64_t *buf;
	int64_t got;

	for (;;) {
		if (max > w->capacity)
			max = w->capacity;
		Newx(buf, max ? max : 1, uint64_t);
		SAVEFREEPV(buf);
		got = shmpool_allocated_slots(w->pool, buf, max);
		if (got < 0)
			croak("%s", shmpool_errmsg());
		if ((uint64_t)got <= max)
			break;
		max = (uint64_t)got + 64;
	}
	*n = got;
	return buf;
}

MODULE = Data::Pool::Shared		PACKAGE = Data::Pool::Shared

PROTOTYPES: DISABLE

void
_open(cls, variant, backing, name, capacity, elem, fd)
	const char *cls
	int variant
	int backing
	SV *name
	SV *capacity
	SV *elem
	int fd
    PREINIT:
	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	shmpool_t *p;
	IV cap, esz;
    PPCODE:
	cap = SvOK(capacity) ? SvIV(capacity) : 0;
	esz = SvOK(elem) ? SvIV(elem) : 0;
	o.variant = (enum shmpool_variant)variant;
	o.backing = (enum shmpool_backing)backing;
	o.name = SvOK(name) ? SvPV_nolen(name) : NULL;
	o.fd = fd;
	if (backing != SHMPOOL_BACKING_FD) {
		if (cap <= 0) {
			XPUSHs(&PL_sv_undef);
			mXPUSHp("capacity must be > 0", 20);
			XSRETURN(2);
		}
		if (esz < 0)
			esz = 0;
		o.capacity = (uint64_t)cap;
		o.elem_size = (uint64_t)esz;
		if ((variant == SHMPOOL_RAW || variant == SHMPOOL_STR) &&
		    esz == 0) {
			const char *m = variant == SHMPOOL_STR
						? "max_len must be > 0"
						: "elem_size must be > 0";
			XPUSHs(&PL_sv_undef);
			mXPUSHp(m, strlen(m));
			XSRETURN(2);
		}
	}
	p = shmpool_open(&o);
	if (!p) {
		const char *m = shmpool_errmsg();

		XPUSHs(&PL_sv_undef);
		mXPUSHp(m, strlen(m));
		XSRETURN(2);
	}
	mXPUSHs(new_pool_object(aTHX_ p, cls));
	XSRETURN(1);

void
DESTROY(self)
	SV *self
    PREINIT:
	MAGIC *mg;
    CODE:
	mg = pool_magic(aTHX_ self);
	if (mg && mg->mg_ptr) {
		dps_pool *w = (dps_pool *)mg->mg_ptr;

		mg->mg_ptr = NULL;
		dps_unref(w);
	}

void
alloc(w, ...)
	dps_pool *w
    ALIAS:
	try_alloc = 1
    PREINIT:
	dXSTARG;
	int64_t r;
    PPCODE:
	r = shmpool_alloc(w->pool, ix ? 0.0 : timeout_of(aTHX_ items, &ST(0), 1));
	if (LIKELY(r >= 0)) {
		PUSHu((UV)r);
		XSRETURN(1);
	}
	alloc_failed(aTHX);
	XSRETURN_UNDEF;

void
free(w, idx)
	dps_pool *w
	SV *idx
    PPCODE:
	if (LIKELY(shmpool_free(w->pool, idx_of(aTHX_ w, idx)) == 0))
		XSRETURN_YES;
	if (errno == EBUSY && free_slot(w, idx_of(aTHX_ w, idx)))
		XSRETURN_YES;
	XSRETURN_NO;

void
alloc_n(w, n, ...)
	dps_pool *w
	IV n
    PREINIT:
	uint64_t *buf;
	AV *av;
	IV i;
    PPCODE:
	if (n < 0)
		croak("alloc_n: n must be >= 0 (got %" IVdf ")", n);
	if ((UV)n > w->capacity)
		XSRETURN_UNDEF; /* can never succeed: nothing, at once */
	av = newAV();
	mXPUSHs(newRV_noinc((SV *)av));
	if (n == 0)
		XSRETURN(1);
	Newx(buf, n, uint64_t);
	SAVEFREEPV(buf);
	if (shmpool_alloc_n(w->pool, buf, (uint64_t)n,
			    timeout_of(aTHX_ items, &ST(0), 2)) < 0) {
		alloc_failed(aTHX);
		XSRETURN_UNDEF;
	}
	av_extend(av, n - 1);
	for (i = 0; i < n; i++)
		av_push(av, newSVuv((UV)buf[i]));
	XSRETURN(1);

void
free_n(w, list)
	dps_pool *w
	SV *list
    PREINIT:
	AV *av;
	SSize_t n, i, done = 0;
	uint64_t *buf;
	dXSTARG;
    PPCODE:
	SvGETMAGIC(list);
	if (!SvROK(list) || SvTYPE(SvRV(list)) != SVt_PVAV)
		croak("free_n: expected arrayref");
	av = (AV *)SvRV(list);
	n = av_len(av) + 1;
	Newx(buf, n ? n : 1, uint64_t);
	SAVEFREEPV(buf);
	/* every index is checked before anything is freed */
	for (i = 0; i < n; i++) {
		SV **e = av_fetch(av, i, 0);

		if (!e || !SvOK(*e))
			croak("free_n: undef slot at index %" IVdf, (IV)i);
		buf[i] = idx_of(aTHX_ w, *e);
	}
	/* free what is allocated, skip what is not (counted out) */
	i = 0;
	while (i < n) {
		int64_t r = shmpool_free_n(w->pool, buf + i, (uint64_t)(n - i));

		if (r < 0)
			break;
		done += r;
		i += r;
		if (i < n) {
			if (errno == EBUSY && free_slot(w, buf[i]))
				done++;
			i++; /* not allocated, or listed twice */
		}
	}
	PUSHi((IV)done);
	XSRETURN(1);

void
allocated_slots(w)
	dps_pool *w
    PREINIT:
	int64_t n, i;
	uint64_t *buf;
	AV *av;
    PPCODE:
	buf = snapshot(aTHX_ w, &n);
	av = newAV();
	if (n)
		av_extend(av, n - 1);
	for (i = 0; i < n; i++)
		av_push(av, newSVuv((UV)buf[i]));
	mXPUSHs(newRV_noinc((SV *)av));
	XSRETURN(1);

void
each_allocated(w, cb)
	dps_pool *w
	SV *cb
    PREINIT:
	int64_t n, i, calls = 0;
	uint64_t *buf;
	dXSTARG;
    PPCODE:
	buf = snapshot(aTHX_ w, &n);
	for (i = 0; i < n; i++) {
		dSP;

		/* skip a slot the callback (or anyone) freed meanwhile */
		if (shmpool_is_allocated(w->pool, buf[i]) != 1)
			continue;
		ENTER;
		SAVETMPS;
		PUSHMARK(SP);
		mXPUSHu((UV)buf[i]);
		PUTBACK;
		call_sv(cb, G_VOID | G_DISCARD);
		FREETMPS;
		LEAVE;
		calls++;
	}
	/* the callbacks may have moved the stack: address it afresh */
	sv_setiv(TARG, (IV)calls);
	ST(0) = TARG;
	XSRETURN(1);

void
get(w, idx)
	dps_pool *w
	SV *idx
    PREINIT:
	dXSTARG;
	uint64_t i;
    PPCODE:
	i = idx_of(aTHX_ w, idx);
	if (UNLIKELY(get_value(aTHX_ w, i, TARG) < 0))
		croak_op(aTHX_ i);
	SvSETMAGIC(TARG);
	PUSHs(TARG);
	XSRETURN(1);

void
set(w, idx, val)
	dps_pool *w
	SV *idx
	SV *val
    PREINIT:
	uint64_t i;
    PPCODE:
	i = idx_of(aTHX_ w, idx);
	if (UNLIKELY(set_value(aTHX_ w, i, val) < 0))
		croak_op(aTHX_ i);
	XSRETURN_YES;

void
alloc_set(w, val, ...)
	dps_pool *w
	SV *val
    ALIAS:
	try_alloc_set = 1
    PREINIT:
	dXSTARG;
	int64_t r;
    PPCODE:
	r = shmpool_alloc(w->pool, ix ? 0.0 : timeout_of(aTHX_ items, &ST(0), 2));
	if (r < 0) {
		alloc_failed(aTHX);
		XSRETURN_UNDEF;
	}
	if (set_value(aTHX_ w, (uint64_t)r, val) < 0) {
		int e = errno;
		SV *msg = sv_2mortal(newSVpv(shmpool_errmsg(), 0));

		free_slot(w, (uint64_t)r);
		errno = e;
		croak("%" SVf, SVfARG(msg));
	}
	PUSHu((UV)r);
	XSRETURN(1);

void
slot_sv(w, idx)
	dps_pool *w
	SV *idx
    PREINIT:
	uint64_t i;
	const void *p;
	size_t len;
	dps_view *v;
	SV *sv;
	MAGIC *mg;
    PPCODE:
	i = idx_of(aTHX_ w, idx);
	if (shmpool_slot_view(w->pool, i, &p, &len) < 0)
		croak_op(aTHX_ i);
	v = (dps_view *)PerlMemShared_malloc(sizeof(*v));
	v->w = w;
	v->slot = (unsigned char *)shmpool_data_ptr(w->pool) + i * w->stride;
	dps_ref(w);
	sv = newSV_type(SVt_PVMG);
	SvPV_set(sv, (char *)p);
	SvCUR_set(sv, len);
	SvLEN_set(sv, 0);
	SvPOK_only(sv);
	mg = sv_magicext(sv, NULL, PERL_MAGIC_ext, &view_vtbl, (char *)v, 0);
	mg->mg_flags |= MGf_DUP;
	SvREADONLY_on(sv);
	mXPUSHs(sv);
	XSRETURN(1);

UV
ptr(w, idx)
	dps_pool *w
	SV *idx
    PREINIT:
	uint64_t i;
	void *p;
    CODE:
	i = idx_of(aTHX_ w, idx);
	p = shmpool_ptr(w->pool, i);
	if (!p)
		croak_op(aTHX_ i);
	RETVAL = PTR2UV(p);
    OUTPUT:
	RETVAL

UV
data_ptr(w)
	dps_pool *w
    CODE:
	RETVAL = PTR2UV(shmpool_data_ptr(w->pool));
    OUTPUT:
	RETVAL

void
is_allocated(w, idx)
	dps_pool *w
	SV *idx
    PPCODE:
	if (shmpool_is_allocated(w->pool, idx_of(aTHX_ w, idx)) == 1)
		XSRETURN_YES;
	XSRETURN_NO;

UV
capacity(w)
	dps_pool *w
    ALIAS:
	elem_size = 1
	used = 2
	available = 3
    CODE:
	switch (ix) {
	case 0: RETVAL = (UV)w->capacity; break;
	case 1: RETVAL = (UV)w->stride; break;
	case 2: RETVAL = (UV)shmpool_used(w->pool); break;
	default: RETVAL = (UV)shmpool_available(w->pool); break;
	}
    OUTPUT:
	RETVAL

IV
owner(w, idx)
	dps_pool *w
	SV *idx
    PREINIT:
	pid_t pid;
    CODE:
	pid = shmpool_owner(w->pool, idx_of(aTHX_ w, idx));
	if (pid < 0 && errno != ENOENT)
		croak("%s", shmpool_errmsg());
	RETVAL = pid < 0 ? 0 : (IV)pid; /* a free slot has no owner: 0 */
    OUTPUT:
	RETVAL

void
adopt(w, idx)
	dps_pool *w
	SV *idx
    PREINIT:
	uint64_t i;
    PPCODE:
	i = idx_of(aTHX_ w, idx);
	if (shmpool_adopt(w->pool, i) < 0)
		croak_op(aTHX_ i);
	XSRETURN_YES;

IV
recover_stale(w)
	dps_pool *w
    PREINIT:
	int64_t n;
    CODE:
	n = shmpool_recover_stale(w->pool);
	if (n < 0)
		croak("recover_stale: %s", shmpool_errmsg());
	RETVAL = (IV)n;
    OUTPUT:
	RETVAL

void
reset(w)
	dps_pool *w
    PPCODE:
	if (shmpool_reset(w->pool) < 0)
		croak("reset: %s", shmpool_errmsg());
	XSRETURN_YES;

void
alloc_guard(w, ...)
	dps_pool *w
    ALIAS:
	try_alloc_guard = 1
    PREINIT:
	int64_t r;
	dps_guard *g;
	SV *obj;
	MAGIC *mg;
    PPCODE:
	r = shmpool_alloc(w->pool, ix ? 0.0 : timeout_of(aTHX_ items, &ST(0), 1));
	if (r < 0) {
		alloc_failed(aTHX);
		if (GIMME_V == G_LIST)
			XSRETURN_EMPTY;
		XSRETURN_UNDEF;
	}
	g = (dps_guard *)PerlMemShared_malloc(sizeof(*g));
	g->w = w;
	g->idx = r;
	g->pid = getpid();
	dps_ref(w);
	obj = newSV(0);
	mg = sv_magicext(obj, NULL, PERL_MAGIC_ext, &guard_vtbl, (char *)g, 0);
	mg->mg_flags |= MGf_DUP;
	obj = sv_bless(newRV_noinc(obj),
		       gv_stashpvs("Data::Pool::Shared::Guard", GV_ADD));
	SvREADONLY_on(SvRV(obj));
	if (GIMME_V == G_LIST) {
		EXTEND(SP, 2);
		mPUSHu((UV)r);
		mPUSHs(obj);
		XSRETURN(2);
	}
	mXPUSHs(obj);
	XSRETURN(1);

SV *
path(w)
	dps_pool *w
    PREINIT:
	const char *p;
    CODE:
	p = shmpool_path(w->pool);
	RETVAL = p ? newSVpv(p, 0) : &PL_sv_undef;
    OUTPUT:
	RETVAL

IV
memfd(w)
	dps_pool *w
    ALIAS:
	fileno = 1
    CODE:
	RETVAL = ix ? shmpool_fileno(w->pool) : shmpool_memfd(w->pool);
    OUTPUT:
	RETVAL

void
sync(w)
	dps_pool *w
    PPCODE:
	if (shmpool_sync(w->pool) < 0)
		XSRETURN_NO;
	XSRETURN_YES;

void
_unlink(w)
	dps_pool *w
    PPCODE:
	if (shmpool_unlink(w->pool) < 0)
		XSRETURN_NO;
	XSRETURN_YES;

SV *
stats(w)
	dps_pool *w
    PREINIT:
	struct shmpool_stats st;
	HV *hv;
    CODE:
	if (shmpool_stats(w->pool, &st) < 0)
		croak("stats: %s", shmpool_errmsg());
	hv = newHV();
	(void)hv_stores(hv, "capacity", newSVuv((UV)st.capacity));
	(void)hv_stores(hv, "elem_size", newSVuv((UV)st.elem_size));
	(void)hv_stores(hv, "used", newSVuv((UV)st.used));
	(void)hv_stores(hv, "available", newSVuv((UV)st.available));
	(void)hv_stores(hv, "waiters", newSVuv((UV)st.waiters));
	(void)hv_stores(hv, "mmap_size", newSVuv((UV)st.mmap_size));
	(void)hv_stores(hv, "allocs", newSVuv((UV)st.allocs));
	(void)hv_stores(hv, "frees", newSVuv((UV)st.frees));
	(void)hv_stores(hv, "waits", newSVuv((UV)st.waits));
	(void)hv_stores(hv, "timeouts", newSVuv((UV)st.timeouts));
	(void)hv_stores(hv, "recoveries", newSVuv((UV)st.recoveries));
	RETVAL = newRV_noinc((SV *)hv);
    OUTPUT:
	RETVAL

IV
eventfd(w)
	dps_pool *w
    CODE:
	RETVAL = shmpool_eventfd(w->pool);
	if (RETVAL < 0)
		croak("eventfd: %s", shmpool_errmsg());
    OUTPUT:
	RETVAL

void
eventfd_set(w, fd)
	dps_pool *w
	SV *fd
    PPCODE:
	shmpool_eventfd_set(w->pool, SvOK(fd) ? (int)SvIV(fd) : -1);
	XSRETURN_YES;

void
notify(w)
	dps_pool *w
    PPCODE:
	if (shmpool_notify(w->pool) < 0)
		XSRETURN_NO;
	XSRETURN_YES;

void
eventfd_consume(w)
	dps_pool *w
    PREINIT:
	int64_t n;
	dXSTARG;
    PPCODE:
	n = shmpool_eventfd_consume(w->pool);
	if (n < 0)
		XSRETURN_UNDEF;
	PUSHi((IV)n);
	XSRETURN(1);

const char *
variant(w)
	dps_pool *w
    CODE:
	RETVAL = shmpool_variant_name(w->variant);
    OUTPUT:
	RETVAL

const char *
lib_version(...)
    CODE:
	PERL_UNUSED_VAR(items);
	RETVAL = shmpool_version();
    OUTPUT:
	RETVAL

MODULE = Data::Pool::Shared		PACKAGE = Data::Pool::Shared::I64

void
cas(w, idx, expect, desired)
	dps_pool *w
	SV *idx
	IV expect
	IV desired
    ALIAS:
	Data::Pool::Shared::I32::cas = 1
    PREINIT:
	uint64_t i;
	int r;
    PPCODE:
	i = idx_of(aTHX_ w, idx);
	r = ix ? shmpool_i32_cas(w->pool, i, (int32_t)expect, (int32_t)desired)
	       : shmpool_i64_cas(w->pool, i, (int64_t)expect, (int64_t)desired);
	if (UNLIKELY(r < 0))
		croak_op(aTHX_ i);
	if (r)
		XSRETURN_YES;
	XSRETURN_NO;

IV
cmpxchg(w, idx, expect, desired)
	dps_pool *w
	SV *idx
	IV expect
	IV desired
    ALIAS:
	Data::Pool::Shared::I32::cmpxchg = 1
    PREINIT:
	uint64_t i;
	int r;
    CODE:
	i = idx_of(aTHX_ w, idx);
	if (ix) {
		int32_t old;

		r = shmpool_i32_cmpxchg(w->pool, i, (int32_t)expect,
					(int32_t)desired, &old);
		RETVAL = old;
	} else {
		int64_t old;

		r = shmpool_i64_cmpxchg(w->pool, i, (int64_t)expect,
					(int64_t)desired, &old);
		RETVAL = (IV)old;
	}
	if (UNLIKELY(r < 0))
		croak_op(aTHX_ i);
    OUTPUT:
	RETVAL

IV
xchg(w, idx, val)
	dps_pool *w
	SV *idx
	IV val
    ALIAS:
	Data::Pool::Shared::I32::xchg = 1
    PREINIT:
	uint64_t i;
	int r;
    CODE:
	i = idx_of(aTHX_ w, idx);
	if (ix) {
		int32_t old;

		r = shmpool_i32_xchg(w->pool, i, (int32_t)val, &old);
		RETVAL = old;
	} else {
		int64_t old;

		r = shmpool_i64_xchg(w->pool, i, (int64_t)val, &old);
		RETVAL = (IV)old;
	}
	if (UNLIKELY(r < 0))
		croak_op(aTHX_ i);
    OUTPUT:
	RETVAL

IV
add(w, idx, delta)
	dps_pool *w
	SV *idx
	IV delta
    ALIAS:
	Data::Pool::Shared::I32::add = 1
    PREINIT:
	uint64_t i;
	int r;
    CODE:
	i = idx_of(aTHX_ w, idx);
	if (ix) {
		int32_t v;

		r = shmpool_i32_add(w->pool, i, (int32_t)delta, &v);
		RETVAL = v;
	} else {
		int64_t v;

		r = shmpool_i64_add(w->pool, i, (int64_t)delta, &v);
		RETVAL = (IV)v;
	}
	if (UNLIKELY(r < 0))
		croak_op(aTHX_ i);
    OUTPUT:
	RETVAL

IV
incr(w, idx)
	dps_pool *w
	SV *idx
    ALIAS:
	decr = 1
	Data::Pool::Shared::I32::incr = 2
	Data::Pool::Shared::I32::decr = 3
    PREINIT:
	uint64_t i;
	int r;
    CODE:
	i = idx_of(aTHX_ w, idx);
	if (ix >= 2) {
		int32_t v;

		r = shmpool_i32_add(w->pool, i, ix == 2 ? 1 : -1, &v);
		RETVAL = v;
	} else {
		int64_t v;

		r = shmpool_i64_add(w->pool, i, ix == 0 ? 1 : -1, &v);
		RETVAL = (IV)v;
	}
	if (UNLIKELY(r < 0))
		croak_op(aTHX_ i);
    OUTPUT:
	RETVAL

MODULE = Data::Pool::Shared		PACKAGE = Data::Pool::Shared::Str

UV
max_len(w)
	dps_pool *w
    CODE:
	RETVAL = (UV)w->max_len;
    OUTPUT:
	RETVAL

MODULE = Data::Pool::Shared		PACKAGE = Data::Pool::Shared::Guard

SV *
idx(self)
	SV *self
    PREINIT:
	dps_guard *g;
    CODE:
	g = guard_of(aTHX_ self);
	RETVAL = g->idx >= 0 ? newSVuv((UV)g->idx) : &PL_sv_undef;
    OUTPUT:
	RETVAL

void
release(self)
	SV *self
    PREINIT:
	dps_guard *g;
	int ok = 0;
    PPCODE:
	g = guard_of(aTHX_ self);
	if (g->idx >= 0)
		ok = free_slot(g->w, (uint64_t)g->idx);
	g->idx = -1;
	if (ok)
		XSRETURN_YES;
	XSRETURN_NO;

SV *
detach(self)
	SV *self
    PREINIT:
	dps_guard *g;
    CODE:
	g = guard_of(aTHX_ self);
	RETVAL = g->idx >= 0 ? newSVuv((UV)g->idx) : &PL_sv_undef;
	g->idx = -1;
    OUTPUT:
	RETVAL
