/* hist.c - see hist.h. */
#include "hist.h"

void hist_merge(struct hist *into, const struct hist *from)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->b[i] += from->b[i];
	into->count += from->count;
	if (from->max > into->max)
		into->max = from->max;
}

static void bucket_range(unsigned i, uint64_t *lo, uint64_t *hi)
{
	if (i < HIST_LINEAR) {
		*lo = *hi = i;
		return;
	}
	unsigned msb = (i - HIST_LINEAR) / HIST_SUB + 6;
	uint64_t top = (i - HIST_LINEAR) % HIST_SUB + HIST_SUB;
	*lo = top << (msb - 5);
	*hi = ((top + 1) << (msb - 5)) - 1;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	if (h->count == 0)
		return 0;
	/* The smallest value with at least q of the samples at or below it. */
	uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t lo, hi;
			bucket_range(i, &lo, &hi);
			uint64_t mid = lo + (hi - lo) / 2;
			return mid > h->max ? h->max : mid;
		}
	}
	return h->max;
}
