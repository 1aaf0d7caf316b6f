/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The asynchronous test handler of vm_async_reverse (tests/vm/handler_reverse.c)
 * through the handler harness, which drives it as the ring thread does:
 * nothing completes inside read or write, every completion comes from
 * fd_ready when the timerfd it watches fires.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "handler_harness.h"

#define SIZE (1024 * 1024)

static const struct tcmu_handler *handler;

static int setup(void **state)
{
	struct tcmu_device *dev = calloc(1, sizeof(*dev));

	handler = harness_load(HANDLER_REVERSE_PATH);
	assert_non_null(handler->fd_ready);
	dev->name = "r0";
	dev->subtype = "reverse";
	dev->backstore = "user_0/r0";
	dev->config = "";
	dev->size = SIZE;
	dev->block_size = 512;
	assert_int_equal(handler->open(dev), 0);
	/* open() asked for its timerfd to be watched. */
	assert_int_equal(dev->watched_count, 1);
	*state = dev;
	return 0;
}

static int teardown(void **state)
{
	struct tcmu_device *dev = *state;

	handler->close(dev);
	free(dev);
	harness_unload();
	return 0;
}

static void test_data_round_trip_through_fd_ready(void **state)
{
	struct tcmu_device *dev = *state;
	uint8_t *written = malloc(65536), *read_back = malloc(65536);

	harness_pattern(written, 65536, 7);
	assert_int_equal(harness_write(handler, dev, 4096, written, 65536, 0), 0);
	assert_int_equal(dev->fd_ready_calls, 1);
	assert_int_equal(harness_read(handler, dev, 4096, read_back, 65536), 0);
	assert_memory_equal(read_back, written, 65536);
	assert_int_equal(harness_flush(handler, dev), 0);
	assert_int_equal(dev->fd_ready_calls, 3);
	free(written);
	free(read_back);
}

static void test_bad_config_refused(void **state)
{
	char *reason = NULL;

	(void)state;
	assert_int_equal(handler->check_config("soon", &reason), -EINVAL);
	assert_non_null(reason);
	free(reason);
	assert_int_equal(handler->check_config("250", &reason), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_data_round_trip_through_fd_ready, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_config_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
