/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Turning the write cache off through device_reconfigure() (RECONFIG,
 * ChangeMedium): the device is write-through before the flush starts, the
 * flush runs on the ring's worker thread for every handler (with or
 * without reconfigure), and a failed flush or a refused change leaves the
 * cache on. The device is served by a real worker over a fake ring.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_ring.h"
#include "tcmu_internal.h"

struct fixture {
	struct fake_ring fake;
	struct tcmu_device dev;
	struct tcmu_handler handler;
};

/* What the handler saw; written on the worker thread before the flush completes. */
static unsigned int flush_calls;
static bool cache_on_during_flush;
static pthread_t flush_thread;
static int flush_result;
static int reconfigure_result;
static unsigned int reconfigure_calls;

static int fake_flush(struct tcmu_device *dev, struct tcmu_request *req)
{
	flush_calls++;
	cache_on_during_flush = tcmu_device_get_write_cache(dev);
	flush_thread = pthread_self();
	tcmu_request_complete(req, flush_result);
	return 0;
}

static int fake_reconfigure(struct tcmu_device *dev, const struct tcmu_device_change *change)
{
	(void)dev;
	(void)change;
	reconfigure_calls++;
	return reconfigure_result;
}

static void dispatch_nothing(struct tcmu_request *req)
{
	ring_complete_request(req, 0, NULL, 0, 0);
}

static void kick_nothing(struct tcmu_ring *ring)
{
	(void)ring;
}

static int setup(void **state)
{
	struct fixture *fixture = calloc(1, sizeof(*fixture));

	assert_non_null(fixture);
	assert_int_equal(fake_ring_create(&fixture->fake), 0);
	fixture->handler = (struct tcmu_handler){ .subtype = "fake", .flush = fake_flush };
	fixture->dev.log_prefix = "fake/cache";
	fixture->dev.subtype = "fake";
	fixture->dev.handler = &fixture->handler;
	fixture->dev.size = 1 << 20;
	fixture->dev.block_size = 512;
	fixture->dev.write_cache = true;
	fixture->dev.uio_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(fixture->dev.uio_fd >= 0);
	assert_int_equal(ring_init(&fixture->dev.ring, &fixture->dev, fixture->fake.map,
				   FAKE_RING_MAP_SIZE, dispatch_nothing, kick_nothing), 0);
	assert_int_equal(workers_start(1), 0);
	assert_int_equal(worker_add_device(&fixture->dev), 0);
	flush_calls = 0;
	reconfigure_calls = 0;
	cache_on_during_flush = true;
	flush_result = 0;
	reconfigure_result = 0;
	*state = fixture;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fixture = *state;

	worker_remove_device(&fixture->dev);
	workers_stop();
	ring_destroy(&fixture->dev.ring);
	close(fixture->dev.uio_fd);
	fake_ring_destroy(&fixture->fake);
	free(fixture);
	return 0;
}

static int write_cache(struct fixture *fixture, bool on)
{
	struct tcmu_device_change change = { .what = TCMU_CHANGE_WRITE_CACHE, .write_cache = on };

	return device_reconfigure(&fixture->dev, &change);
}

/* A handler without reconfigure gets its flush all the same. */
static void test_off_flushes_without_reconfigure(void **state)
{
	struct fixture *fixture = *state;

	assert_int_equal(write_cache(fixture, false), 0);
	assert_int_equal(flush_calls, 1);
	assert_false(cache_on_during_flush);
	assert_false(pthread_equal(flush_thread, pthread_self()));
	assert_false(tcmu_device_get_write_cache(&fixture->dev));

	/* Off again, or on: nothing to flush. */
	assert_int_equal(write_cache(fixture, false), 0);
	assert_int_equal(write_cache(fixture, true), 0);
	assert_int_equal(flush_calls, 1);
	assert_true(tcmu_device_get_write_cache(&fixture->dev));
}

static void test_off_flushes_before_reconfigure(void **state)
{
	struct fixture *fixture = *state;

	fixture->handler.reconfigure = fake_reconfigure;
	assert_int_equal(write_cache(fixture, false), 0);
	assert_int_equal(flush_calls, 1);
	assert_int_equal(reconfigure_calls, 1);
	assert_false(cache_on_during_flush);
	assert_false(tcmu_device_get_write_cache(&fixture->dev));
}

static void test_failed_flush_keeps_cache_on(void **state)
{
	struct fixture *fixture = *state;

	fixture->handler.reconfigure = fake_reconfigure;
	flush_result = -EIO;
	assert_int_equal(write_cache(fixture, false), -EIO);
	assert_int_equal(reconfigure_calls, 0);
	assert_true(tcmu_device_get_write_cache(&fixture->dev));
}

static void test_refused_change_keeps_cache_on(void **state)
{
	struct fixture *fixture = *state;

	fixture->handler.reconfigure = fake_reconfigure;
	reconfigure_result = -EINVAL;
	assert_int_equal(write_cache(fixture, false), -EINVAL);
	assert_int_equal(flush_calls, 1);
	assert_true(tcmu_device_get_write_cache(&fixture->dev));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_off_flushes_without_reconfigure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_off_flushes_before_reconfigure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_flush_keeps_cache_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_change_keeps_cache_on, setup, teardown),
	};

	return cmocka_run_group_tests_name("device_write_cache", tests, NULL, NULL);
}
