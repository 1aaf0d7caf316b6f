/* SPDX-License-Identifier: Apache-2.0 */
/*
 * histogram.c: bucket bounds and percentiles of the latency histogram.
 * Two buckets per octave keep a percentile within a factor of 1.41 before
 * interpolation, with 54 counters per histogram from 1 us to 95 s.
 */
#include "histogram.h"

uint64_t histogram_bound_ns(unsigned int bucket)
{
	/* 2^(bucket/2) us: whole powers of two, and their product with sqrt(2). */
	uint64_t microseconds = 1ULL << (bucket / 2);

	if (bucket % 2)
		return microseconds * 1414213562ULL / 1000000ULL;
	return microseconds * 1000ULL;
}

unsigned int histogram_bucket_of(uint64_t latency_ns)
{
	unsigned int low = 0, high = HISTOGRAM_BUCKETS;

	/* The first bucket whose bound is at least the latency. */
	while (low < high) {
		unsigned int middle = (low + high) / 2;

		if (histogram_bound_ns(middle) < latency_ns)
			low = middle + 1;
		else
			high = middle;
	}
	return low < HISTOGRAM_BUCKETS ? low : HISTOGRAM_BUCKETS - 1;
}

uint64_t histogram_percentile_ns(const uint64_t *buckets, const uint64_t *bounds, size_t count,
				 double quantile)
{
	uint64_t total = 0, seen = 0;
	double rank;
	size_t i;

	for (i = 0; i < count; i++)
		total += buckets[i];
	if (total == 0)
		return 0;
	rank = quantile * (double)total;
	for (i = 0; i < count; i++) {
		uint64_t lower = i ? bounds[i - 1] : 0;

		if (buckets[i] && (double)(seen + buckets[i]) >= rank) {
			double within = (rank - (double)seen) / (double)buckets[i];

			if (within < 0)
				within = 0;
			return lower + (uint64_t)(within * (double)(bounds[i] - lower) + 0.5);
		}
		seen += buckets[i];
	}
	return bounds[count - 1];
}
