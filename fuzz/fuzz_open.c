/*
 * fuzz_open.c - libFuzzer target: opening a pool from untrusted bytes
 * (shmpool_new_from_fd on a file holding the input), then using it.
 *
 * The first input byte picks how the rest becomes a pool file:
 *   0  the bytes as they are (almost always rejected: magic, checksum);
 *   1  the bytes with a READY magic and a correct header checksum, the file
 *      extended to the size the header claims: reaches the header's layout
 *      checks (sizes, offsets, overflow) past the checksum;
 *   2  a valid pool made for parameters taken from the input, with the rest
 *      of the input applied as (offset, value) patches to its shared
 *      metadata (waiter mask, user records, bitmap, owners, slot caches):
 *      reaches every call that reads shared state, as a hostile peer would
 *      leave it.
 * Whatever opens is used: alloc, alloc_n, free, free_n, recover_stale,
 * stats, allocated_slots, owner, each_allocated, reset.  Nothing may crash
 * or touch memory outside the mapping (ASan, UBSan).
 *
 * Built against lib/shmpool.c directly (scripts/fuzz, `make fuzz`).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shmpool-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FILE (4u << 20)

static int fd = -1;

/* The header checksum as the library computes it (FNV-1a of the fields
 * between the magic and the checksum). */
static uint64_t hdr_sum(const struct pool_hdr *h)
{
	const unsigned char *b = (const unsigned char *)h;
	uint64_t x = 0xcbf29ce484222325ull;

	for (size_t i = offsetof(struct pool_hdr, version);
	     i < offsetof(struct pool_hdr, checksum); i++)
		x = (x ^ b[i]) * 0x100000001b3ull;
	return x;
}

static int each_cb(shmpool_t *p, uint64_t idx, void *arg)
{
	(void)arg;
	if (idx % 3 == 0)
		shmpool_free(p, idx);
	return 0;
}

static void exercise(shmpool_t *p)
{
	uint64_t cap = shmpool_capacity(p), idx[8], out[64];
	struct shmpool_stats st;
	unsigned char buf[32];
	uint64_t n = cap < 8 ? cap : 8;
	int64_t a = shmpool_try_alloc(p);

	if (a >= 0) {
		shmpool_get(p, (uint64_t)a, buf, sizeof buf);
		shmpool_owner(p, (uint64_t)a);
		shmpool_free(p, (uint64_t)a);
	}
	if (shmpool_alloc_n(p, idx, n, 0) == (int64_t)n)
		shmpool_free_n(p, idx, n);
	shmpool_recover_stale(p);
	shmpool_stats(p, &st);
	shmpool_allocated_slots(p, out, 64);
	for (uint64_t i = 0; i < cap && i < 64; i++)
		shmpool_owner(p, i);
	shmpool_each_allocated(p, each_cb, NULL);
	for (uint64_t i = 0; i < cap && i < 64; i += 5)
		shmpool_free(p, i);
	shmpool_used(p);
	/* free everything, so the handle keeps no descriptor after close */
	shmpool_reset(p);
}

/* Mode 2: a real pool image, then patches over its shared metadata. */
static size_t make_image(const uint8_t *d, size_t n, unsigned char **img)
{
	struct shmpool_options o = SHMPOOL_OPTIONS_INIT;
	enum shmpool_variant vs[] = { SHMPOOL_RAW, SHMPOOL_I64, SHMPOOL_I32,
				      SHMPOOL_F64, SHMPOOL_STR };
	uint64_t held[8];
	size_t k = 0;

	if (n < 5)
		return 0;
	o.backing = SHMPOOL_BACKING_MEMFD;
	o.variant = vs[d[0] % 5];
	o.capacity = 1 + (((uint64_t)d[1] | (uint64_t)d[2] << 8) % 700);
	o.elem_size = o.variant == SHMPOOL_RAW || o.variant == SHMPOOL_STR
			      ? 1 + d[3] % 40
			      : 0;
	o.max_users = 64;
	o.cache = (d[4] >> 3) % 9; /* caches (0 = none) of 1..8 slots */
	shmpool_t *p = shmpool_open(&o);
	if (!p)
		abort(); /* valid parameters: must open */
	/* some state: slots held by this (soon "dead") user */
	for (k = 0; k < (size_t)(d[4] % 8) && k < o.capacity; k++)
		held[k] = (uint64_t)shmpool_try_alloc(p);
	int mfd = shmpool_memfd(p);
	off_t len = lseek(mfd, 0, SEEK_END);
	*img = malloc((size_t)len);
	if (!*img || pread(mfd, *img, (size_t)len, 0) != len)
		abort();
	while (k > 0)
		shmpool_free(p, held[--k]);
	shmpool_close(p);
	/* patches: (lo, hi, value) over [OFF_SHARED, off_data) */
	struct pool_hdr hd;
	memcpy(&hd, *img, sizeof hd);
	uint64_t span = hd.off_data - OFF_SHARED;
	for (size_t i = 5; i + 3 <= n; i += 3) {
		uint64_t off = ((uint64_t)d[i] | (uint64_t)d[i + 1] << 8) % span;
		(*img)[OFF_SHARED + off] = d[i + 2];
	}
	return (size_t)len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *img = NULL;
	size_t len;

	if (fd < 0) {
		fd = memfd_create("fuzz-pool", MFD_CLOEXEC);
		if (fd < 0)
			abort();
	}
	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		len = size - 1;
		img = malloc(len + 1);
		if (!img)
			abort();
		memcpy(img, data + 1, len);
		break;
	case 1: {
		struct pool_hdr h;

		len = size - 1;
		if (len < sizeof h)
			return 0;
		memcpy(&h, data + 1, sizeof h);
		h.magic = SHMPOOL_MAGIC_READY;
		h.checksum = hdr_sum(&h);
		if (h.total_size <= MAX_FILE && h.total_size > len)
			len = h.total_size;
		img = calloc(1, len);
		if (!img)
			abort();
		memcpy(img, data + 1, size - 1);
		memcpy(img, &h, sizeof h);
		break;
	}
	default:
		len = make_image(data + 1, size - 1, &img);
		if (len == 0)
			return 0;
		break;
	}
	if (ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t)len) != 0 ||
	    pwrite(fd, img, len, 0) != (ssize_t)len)
		abort();
	free(img);
	errno = 0;
	shmpool_t *p = shmpool_new_from_fd(fd);
	if (!p) {
		/* a refusal must say why */
		if (shmpool_errmsg()[0] == '\0')
			abort();
		return 0;
	}
	exercise(p);
	shmpool_close(p);
	return 0;
}
