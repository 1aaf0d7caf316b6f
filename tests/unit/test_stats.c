/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Statistics: the histogram's bucket edges and percentiles (histogram.c),
 * the kinds and sense keys of completions (stats.c), and exact counts when
 * many threads complete the commands of one ring at once, as handler
 * threads do (ring.c counts under the ring's lock).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "fake_ring.h"
#include "scsi_internal.h"

static void bucket_edges(void **state)
{
	(void)state;
	assert_int_equal(histogram_bound_ns(0), 1000);
	assert_int_equal(histogram_bound_ns(1), 1414);
	assert_int_equal(histogram_bound_ns(2), 2000);
	assert_int_equal(histogram_bound_ns(20), 1024000);
	/* 60 s, the longest latency the operators ask about, is inside the range. */
	assert_true(histogram_bound_ns(HISTOGRAM_BUCKETS - 1) > 60000000000ULL);
	assert_true(histogram_bound_ns(HISTOGRAM_BUCKETS - 2) < 95000000000ULL);
	for (unsigned int i = 1; i < HISTOGRAM_BUCKETS; i++)
		assert_true(histogram_bound_ns(i) > histogram_bound_ns(i - 1));

	assert_int_equal(histogram_bucket_of(0), 0);
	assert_int_equal(histogram_bucket_of(1000), 0);	/* a bound belongs to its bucket */
	assert_int_equal(histogram_bucket_of(1001), 1);
	assert_int_equal(histogram_bucket_of(1414), 1);
	assert_int_equal(histogram_bucket_of(1415), 2);
	assert_int_equal(histogram_bucket_of(2000), 2);
	assert_int_equal(histogram_bucket_of(UINT64_MAX), HISTOGRAM_BUCKETS - 1);
	for (unsigned int i = 0; i < HISTOGRAM_BUCKETS; i++) {
		assert_int_equal(histogram_bucket_of(histogram_bound_ns(i)), i);
		if (i + 1 < HISTOGRAM_BUCKETS)
			assert_int_equal(histogram_bucket_of(histogram_bound_ns(i) + 1), i + 1);
	}
}

static void percentiles(void **state)
{
	uint64_t bounds[HISTOGRAM_BUCKETS], buckets[HISTOGRAM_BUCKETS] = { 0 };

	(void)state;
	for (unsigned int i = 0; i < HISTOGRAM_BUCKETS; i++)
		bounds[i] = histogram_bound_ns(i);
	assert_int_equal(histogram_percentile_ns(buckets, bounds, HISTOGRAM_BUCKETS, 0.5), 0);

	/* 100 commands between 1 and 2 ms (bucket 21: 1.448 .. 2.048 ms). */
	buckets[21] = 100;
	assert_int_equal(histogram_percentile_ns(buckets, bounds, HISTOGRAM_BUCKETS, 0.5),
			 bounds[20] + (bounds[21] - bounds[20]) / 2);
	assert_int_equal(histogram_percentile_ns(buckets, bounds, HISTOGRAM_BUCKETS, 1.0),
			 bounds[21]);

	/* 990 fast (<= 1 us) and 10 slow ones (16..22.6 ms): p99 is fast, p99.9 slow. */
	memset(buckets, 0, sizeof(buckets));
	buckets[0] = 990;
	buckets[29] = 10;
	assert_true(histogram_percentile_ns(buckets, bounds, HISTOGRAM_BUCKETS, 0.99) <= 1000);
	assert_true(histogram_percentile_ns(buckets, bounds, HISTOGRAM_BUCKETS, 0.999) > bounds[28]);
	assert_true(histogram_percentile_ns(buckets, bounds, HISTOGRAM_BUCKETS, 0.999) <= bounds[29]);
}

static uint64_t wall_clock_us(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (uint64_t)now.tv_sec * 1000000ULL + (uint64_t)now.tv_nsec / 1000;
}

static void kinds_and_sense_keys(void **state)
{
	struct device_stats stats = { 0 };
	struct tcmu_request req = { 0 };
	const uint8_t fixed[18] = { 0x70, 0, 0x03 };		/* MEDIUM ERROR */
	const uint8_t descriptor[8] = { 0x72, 0x07 };		/* DATA PROTECT */

	(void)state;
	assert_int_equal(stats_kind_of_opcode(0x28), STATS_KIND_READ);
	assert_int_equal(stats_kind_of_opcode(0x8a), STATS_KIND_WRITE);
	assert_int_equal(stats_kind_of_opcode(0x2e), STATS_KIND_WRITE);
	assert_int_equal(stats_kind_of_opcode(0x91), STATS_KIND_FLUSH);
	assert_int_equal(stats_kind_of_opcode(0x42), STATS_KIND_UNMAP);
	assert_int_equal(stats_kind_of_opcode(0x93), STATS_KIND_WRITE_SAME);
	assert_int_equal(stats_kind_of_opcode(0x89), STATS_KIND_COMPARE_AND_WRITE);
	assert_int_equal(stats_kind_of_opcode(0x83), STATS_KIND_EXTENDED_COPY);
	assert_int_equal(stats_kind_of_opcode(0x12), STATS_KIND_OTHER);

	req.cdb[0] = 0x88;
	req.data_length = 8192;
	req.arrival_ns = monotonic_ns();
	stats_record_completion(&stats, &req, SCSI_STATUS_GOOD, NULL, 0);
	stats_record_completion(&stats, &req, SCSI_STATUS_CHECK_CONDITION, fixed, sizeof(fixed));
	stats_record_completion(&stats, &req, SCSI_STATUS_CHECK_CONDITION, descriptor,
				sizeof(descriptor));
	stats_record_completion(&stats, &req, 0x08 /* BUSY */, NULL, 0);
	assert_int_equal(stats.kinds[STATS_KIND_READ].commands, 4);
	assert_int_equal(stats.kinds[STATS_KIND_READ].bytes, 4 * 8192);
	assert_int_equal(stats.errors_by_sense_key[SCSI_SENSE_MEDIUM_ERROR], 1);
	assert_int_equal(stats.errors_by_sense_key[SCSI_SENSE_DATA_PROTECT], 1);
	assert_int_equal(stats.errors_other_status, 1);
	assert_true(stats.last_error_ns > 0 && stats.last_command_ns >= stats.last_error_ns);
	stats_wall_clock(&stats);
	assert_true(stats.last_error_us > 0 && stats.last_command_us >= stats.last_error_us);
	/* Within a second of the wall clock now: the conversion, not just nonzero. */
	assert_true(llabs((long long)stats.last_command_us - (long long)wall_clock_us()) < 1000000);
	assert_string_equal(stats_sense_key_name(SCSI_SENSE_DATA_PROTECT), "data_protect");
}

/* ---- many completing threads ---- */

#define COMPLETERS 8
#define COMMANDS_PER_ROUND 6
#define ROUNDS 200

struct completer_queue {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct tcmu_request *requests[COMMANDS_PER_ROUND];
	unsigned int count, taken;
	bool stop;
};

static struct completer_queue queue = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

static void hand_to_completers(struct tcmu_request *req)
{
	pthread_mutex_lock(&queue.lock);
	queue.requests[queue.count++] = req;
	pthread_cond_broadcast(&queue.cond);
	pthread_mutex_unlock(&queue.lock);
}

static void *completer(void *unused)
{
	(void)unused;
	for (;;) {
		struct tcmu_request *req;

		pthread_mutex_lock(&queue.lock);
		while (!queue.stop && queue.taken == queue.count)
			pthread_cond_wait(&queue.cond, &queue.lock);
		if (queue.stop && queue.taken == queue.count) {
			pthread_mutex_unlock(&queue.lock);
			return NULL;
		}
		req = queue.requests[queue.taken++];
		pthread_mutex_unlock(&queue.lock);
		ring_complete_request(req, SCSI_STATUS_GOOD, NULL, 0, 0);
	}
}

static void no_kick(struct tcmu_ring *ring)
{
	(void)ring;
}

static void concurrent_completions(void **state)
{
	static const uint8_t write10[10] = { 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	struct tcmu_device dev = { .log_prefix = "test/stats" };
	pthread_t threads[COMPLETERS];
	struct fake_ring fake;
	struct device_stats snapshot;
	uint32_t in_flight;

	(void)state;
	assert_int_equal(fake_ring_create(&fake), 0);
	assert_int_equal(ring_init(&dev.ring, &dev, fake.map, FAKE_RING_MAP_SIZE,
				   hand_to_completers, no_kick), 0);
	for (unsigned int i = 0; i < COMPLETERS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, completer, NULL), 0);

	for (unsigned int round = 0; round < ROUNDS; round++) {
		for (unsigned int i = 0; i < COMMANDS_PER_ROUND; i++)
			fake_ring_put_command(&fake, (uint16_t)i, write10, sizeof(write10),
					      FAKE_RING_DATA_OFF + i * 512, 512);
		assert_int_equal(ring_process(&dev.ring), COMMANDS_PER_ROUND);
		assert_int_equal(ring_wait_drained(&dev.ring, 10000), 0);
		pthread_mutex_lock(&queue.lock);
		queue.count = queue.taken = 0;
		pthread_mutex_unlock(&queue.lock);
	}
	pthread_mutex_lock(&queue.lock);
	queue.stop = true;
	pthread_cond_broadcast(&queue.cond);
	pthread_mutex_unlock(&queue.lock);
	for (unsigned int i = 0; i < COMPLETERS; i++)
		pthread_join(threads[i], NULL);

	stats_snapshot(&dev, &snapshot, &in_flight);
	assert_int_equal(in_flight, 0);
	assert_int_equal(snapshot.kinds[STATS_KIND_WRITE].commands, ROUNDS * COMMANDS_PER_ROUND);
	assert_int_equal(snapshot.kinds[STATS_KIND_WRITE].bytes, ROUNDS * COMMANDS_PER_ROUND * 512);
	assert_int_equal(snapshot.in_flight_max, COMMANDS_PER_ROUND);
	{
		uint64_t counted = 0;

		for (unsigned int i = 0; i < HISTOGRAM_BUCKETS; i++)
			counted += snapshot.kinds[STATS_KIND_WRITE].latency_buckets[i];
		assert_int_equal(counted, ROUNDS * COMMANDS_PER_ROUND);
	}
	ring_destroy(&dev.ring);
	fake_ring_destroy(&fake);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bucket_edges),
		cmocka_unit_test(percentiles),
		cmocka_unit_test(kinds_and_sense_keys),
		cmocka_unit_test(concurrent_completions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
