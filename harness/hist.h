/*
 * hist.h - log-linear latency histogram, mergeable exactly.
 *
 * Values below 64 ns have a bucket each; above, every power of two is split
 * into 32 buckets, so a bucket is at most 1/32 (3%) wide relative to its
 * value.  Histograms live in shared memory, one per worker, written only by
 * their worker; merging is adding the buckets, so percentiles over all
 * workers are exact up to the bucket width (no averaging of percentiles).
 */
#ifndef STRESS_HIST_H
#define STRESS_HIST_H

#include <stdint.h>

#define HIST_LINEAR 64
#define HIST_SUB 32
#define HIST_BUCKETS (HIST_LINEAR + (64 - 6) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t max;
	uint64_t b[HIST_BUCKETS];
};

static inline unsigned hist_bucket(uint64_t v)
{
	if (v < HIST_LINEAR)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned top = (unsigned)(v >> (msb - 5)); /* 32..63 */
	return HIST_LINEAR + (msb - 6) * HIST_SUB + (top - HIST_SUB);
}

static inline void hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_bucket(v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

void hist_merge(struct hist *into, const struct hist *from);
/* Value at quantile @q (0..1): the midpoint of its bucket; 0 if empty. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
