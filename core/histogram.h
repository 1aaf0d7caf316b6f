/* SPDX-License-Identifier: Apache-2.0 */
/*
 * histogram.h: the log-scale latency histogram that the daemon fills
 * (stats.c) and that tcmu-admin reads percentiles from. Self-contained, so
 * that the tool builds it without the daemon's core.
 */
#ifndef TCMU_HISTOGRAM_H
#define TCMU_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

/* Bucket i: latencies up to 2^(i/2) us, 1 us .. about 95 s; the last also holds the rest. */
#define HISTOGRAM_BUCKETS 54

/* The upper bound of a bucket, in nanoseconds. */
uint64_t histogram_bound_ns(unsigned int bucket);
/* The bucket that counts a latency. */
unsigned int histogram_bucket_of(uint64_t latency_ns);
/*
 * The latency below which quantile (0..1) of the counted values lie,
 * interpolated linearly inside its bucket as Prometheus'
 * histogram_quantile() does; 0 when nothing was counted. bounds[i] is the
 * upper bound of buckets[i], the lower bound of the first is 0.
 */
uint64_t histogram_percentile_ns(const uint64_t *buckets, const uint64_t *bounds, size_t count,
				 double quantile);

#endif
