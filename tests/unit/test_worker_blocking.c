/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Handlers flagged TCMU_HANDLER_BLOCKING (worker_pool.c): with one shared
 * ring worker, a device whose command blocks in the handler would hold
 * every device on that worker; a blocking handler's device has a thread
 * of its own, so the other device's commands are served meanwhile. The
 * devices are fake ones (fake_ring.c rings, eventfds for uio fds, as in
 * test_worker.c); "the handler" is the ring's dispatch, which runs on the
 * serving thread as a handler's read does.
 *
 * Timing: waits for what must happen are long; the wait for what must not
 * happen is far longer than a free worker needs.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_ring.h"
#include "tcmu_internal.h"

#define DEADLINE_MS 5000
#define NOT_HAPPENING_MS 300

struct test_device {
	struct fake_ring fake;
	struct tcmu_device dev;
	uint16_t next_cmd_id;
};

/* Shared with the serving threads, under lock. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	bool block;			/* dispatch on the slow device waits while set */
	bool slow_waiting;
	unsigned int served[2];		/* commands completed, by device */
	pthread_t thread[2];		/* that served the last command, by device */
	char thread_name[2][16];
} shared = { .lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER };

static struct tcmu_handler blocking_handler = { .subtype = "slow",
						 .flags = TCMU_HANDLER_BLOCKING };
static struct tcmu_handler plain_handler = { .subtype = "plain" };
static struct test_device devices[2];	/* 0: the slow one, 1: the other */

static void serve(struct tcmu_request *req)
{
	const unsigned int index = req->dev == &devices[0].dev ? 0 : 1;

	pthread_mutex_lock(&shared.lock);
	shared.thread[index] = pthread_self();
	pthread_getname_np(pthread_self(), shared.thread_name[index],
			   sizeof(shared.thread_name[index]));
	while (index == 0 && shared.block) {
		shared.slow_waiting = true;
		pthread_cond_broadcast(&shared.changed);
		pthread_cond_wait(&shared.changed, &shared.lock);
	}
	shared.slow_waiting = false;
	pthread_mutex_unlock(&shared.lock);
	ring_complete_request(req, 0, NULL, 0, 0);
	pthread_mutex_lock(&shared.lock);
	shared.served[index]++;
	pthread_cond_broadcast(&shared.changed);
	pthread_mutex_unlock(&shared.lock);
}

static void no_kick(struct tcmu_ring *ring)
{
	(void)ring;
}

/* Whether condition(argument) held within timeout_ms. */
static bool wait_until(bool (*condition)(unsigned int), unsigned int argument,
		       unsigned int timeout_ms)
{
	struct timespec until;
	bool reached;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&shared.lock);
	while (!condition(argument) &&
	       pthread_cond_timedwait(&shared.changed, &shared.lock, &until) == 0)
		;
	reached = condition(argument);
	pthread_mutex_unlock(&shared.lock);
	return reached;
}

static bool slow_is_waiting(unsigned int unused)
{
	(void)unused;
	return shared.slow_waiting;
}

static bool other_served(unsigned int count)
{
	return shared.served[1] >= count;
}

static bool slow_served(unsigned int count)
{
	return shared.served[0] >= count;
}

static void queue_command(struct test_device *device)
{
	static const uint8_t test_unit_ready[6] = { 0 };
	uint64_t one = 1;

	fake_ring_put_command(&device->fake, device->next_cmd_id++, test_unit_ready,
			      sizeof(test_unit_ready), 0, 0);
	assert_int_equal(write(device->dev.uio_fd, &one, sizeof(one)), sizeof(one));
}

static unsigned int thread_count(void)
{
	DIR *tasks = opendir("/proc/self/task");
	struct dirent *entry;
	unsigned int count = 0;

	assert_non_null(tasks);
	while ((entry = readdir(tasks)))
		if (entry->d_name[0] != '.')
			count++;
	closedir(tasks);
	return count;
}

/*
 * Whether the process has expected threads within timeout_ms: a joined
 * thread can still be listed in /proc/self/task for a moment (the kernel
 * wakes the joiner before it has released the task).
 */
static bool thread_count_becomes(unsigned int expected, unsigned int timeout_ms)
{
	const struct timespec pause = { .tv_nsec = 1000000 };

	for (unsigned int waited = 0; waited < timeout_ms; waited++) {
		if (thread_count() == expected)
			return true;
		nanosleep(&pause, NULL);
	}
	return thread_count() == expected;
}

static void attach(struct test_device *device, const struct tcmu_handler *handler,
		   unsigned int uio_minor)
{
	memset(device, 0, sizeof(*device));
	assert_int_equal(fake_ring_create(&device->fake), 0);
	device->dev.log_prefix = (char *)handler->subtype;
	device->dev.uio_minor = uio_minor;
	device->dev.uio_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(device->dev.uio_fd >= 0);
	scsi_device_init(&device->dev);
	device->dev.handler = handler;
	device->dev.handler_open = true;
	assert_int_equal(ring_init(&device->dev.ring, &device->dev, device->fake.map,
				   FAKE_RING_MAP_SIZE, serve, no_kick), 0);
	assert_int_equal(worker_add_device(&device->dev), 0);
}

static void detach(struct test_device *device)
{
	assert_int_equal(worker_stop_ring(&device->dev), 0);
	assert_int_equal(ring_wait_drained(&device->dev.ring, DEADLINE_MS), 0);
	assert_int_equal(worker_remove_device(&device->dev), 0);
	ring_destroy(&device->dev.ring);
	scsi_device_destroy(&device->dev);
	close(device->dev.uio_fd);
	fake_ring_destroy(&device->fake);
}

static int setup(void **state)
{
	(void)state;
	memset(shared.served, 0, sizeof(shared.served));
	shared.block = true;
	shared.slow_waiting = false;
	workers_set_poll_limit(0);
	assert_int_equal(workers_start(1), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	assert_int_equal(workers_stop(), 0);
	return 0;
}

static void unblock(void)
{
	pthread_mutex_lock(&shared.lock);
	shared.block = false;
	pthread_cond_broadcast(&shared.changed);
	pthread_mutex_unlock(&shared.lock);
}

/* The slow device's command blocks in its handler; the other device's are served. */
static void test_blocking_device_has_its_own_thread(void **state)
{
	const unsigned int threads_before = thread_count();

	(void)state;
	attach(&devices[0], &blocking_handler, 7);
	attach(&devices[1], &plain_handler, 8);
	assert_int_equal(thread_count(), threads_before + 1);

	queue_command(&devices[0]);
	assert_true(wait_until(slow_is_waiting, 0, DEADLINE_MS));
	for (unsigned int i = 1; i <= 3; i++) {
		queue_command(&devices[1]);
		assert_true(wait_until(other_served, i, DEADLINE_MS));
	}
	assert_int_equal(shared.served[0], 0);
	assert_false(pthread_equal(shared.thread[0], shared.thread[1]));
	assert_string_equal(shared.thread_name[0], "tcmu-dev-7");
	assert_string_equal(shared.thread_name[1], "tcmu-ring-0");

	unblock();
	assert_true(wait_until(slow_served, 1, DEADLINE_MS));
	/* Its own thread goes with the device. */
	detach(&devices[0]);
	assert_true(thread_count_becomes(threads_before, DEADLINE_MS));
	detach(&devices[1]);
}

/* What the flag prevents: without it, both share the one worker and the other waits. */
static void test_without_the_flag_the_worker_stalls(void **state)
{
	(void)state;
	attach(&devices[0], &plain_handler, 7);
	attach(&devices[1], &plain_handler, 8);
	queue_command(&devices[0]);
	assert_true(wait_until(slow_is_waiting, 0, DEADLINE_MS));
	queue_command(&devices[1]);
	assert_false(wait_until(other_served, 1, NOT_HAPPENING_MS));

	unblock();
	assert_true(wait_until(other_served, 1, DEADLINE_MS));
	assert_true(wait_until(slow_served, 1, DEADLINE_MS));
	assert_true(pthread_equal(shared.thread[0], shared.thread[1]));
	detach(&devices[0]);
	detach(&devices[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_blocking_device_has_its_own_thread, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_without_the_flag_the_worker_stalls, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
