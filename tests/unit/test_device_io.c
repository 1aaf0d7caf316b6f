/* SPDX-License-Identifier: Apache-2.0 */
/*
 * device_io.c on two real ring workers: a read or write that a command of
 * one device issues on another device reaches that device's handler on the
 * thread that serves it, followed there by batch_done, whether it was
 * issued from another thread (posted) or from that very thread (at once);
 * a refusal there completes the request with its error.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_ring.h"
#include "tcmu_internal.h"

static struct {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	pthread_t op_thread;
	pthread_t batch_done_thread;
	unsigned int ops, batch_dones, completions;
	int result;		/* what read and write return */
	int completed_with;
	bool was_write;
	uint64_t offset;
} seen = { .lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER };

static int record_op(struct tcmu_request *req, bool write, uint64_t offset)
{
	int result;

	pthread_mutex_lock(&seen.lock);
	seen.op_thread = pthread_self();
	seen.ops++;
	seen.was_write = write;
	seen.offset = offset;
	result = seen.result;
	pthread_mutex_unlock(&seen.lock);
	if (result == 0)
		tcmu_request_complete(req, 0);
	return result;
}

static int fake_read(struct tcmu_device *dev, struct tcmu_request *req, const struct iovec *iov,
		     size_t iov_count, uint64_t offset, uint64_t length)
{
	(void)dev;
	(void)iov;
	(void)iov_count;
	(void)length;
	return record_op(req, false, offset);
}

static int fake_write(struct tcmu_device *dev, struct tcmu_request *req, const struct iovec *iov,
		      size_t iov_count, uint64_t offset, uint64_t length, uint32_t flags)
{
	(void)dev;
	(void)iov;
	(void)iov_count;
	(void)length;
	(void)flags;
	return record_op(req, true, offset);
}

static int fake_flush(struct tcmu_device *dev, struct tcmu_request *req)
{
	(void)dev;
	tcmu_request_complete(req, 0);
	return 0;
}

static void fake_batch_done(struct tcmu_device *dev)
{
	(void)dev;
	pthread_mutex_lock(&seen.lock);
	seen.batch_done_thread = pthread_self();
	seen.batch_dones++;
	pthread_mutex_unlock(&seen.lock);
}

static int fake_open(struct tcmu_device *dev) { (void)dev; return 0; }
static void fake_close(struct tcmu_device *dev) { (void)dev; }

static struct tcmu_handler fake_handler = {
	.subtype = "fake", .open = fake_open, .close = fake_close,
	.read = fake_read, .write = fake_write, .flush = fake_flush,
	.batch_done = fake_batch_done,
};

static void never_dispatched(struct tcmu_request *req)
{
	(void)req;
	fail_msg("no command is queued on these rings");
}

static void no_kick(struct tcmu_ring *ring)
{
	(void)ring;
}

static void io_done(struct tcmu_request *req, int result)
{
	(void)req;
	pthread_mutex_lock(&seen.lock);
	seen.completions++;
	seen.completed_with = result;
	pthread_cond_broadcast(&seen.changed);
	pthread_mutex_unlock(&seen.lock);
}

struct two_devices {
	struct fake_ring fake[2];
	struct tcmu_device *dev[2];
};

static int setup(void **state)
{
	struct two_devices *two = calloc(1, sizeof(*two));

	assert_non_null(two);
	assert_int_equal(workers_start(2), 0);
	for (unsigned int i = 0; i < 2; i++) {
		struct tcmu_device *dev = calloc(1, sizeof(*dev));

		assert_non_null(dev);
		assert_int_equal(fake_ring_create(&two->fake[i]), 0);
		dev->log_prefix = strdup(i ? "fake/b" : "fake/a");
		dev->uio_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		assert_true(dev->uio_fd >= 0);
		scsi_device_init(dev);
		dev->handler = &fake_handler;
		dev->handler_open = true;
		assert_int_equal(ring_init(&dev->ring, dev, two->fake[i].map, FAKE_RING_MAP_SIZE,
					   never_dispatched, no_kick), 0);
		/* The least loaded worker: the second device goes to the second worker. */
		assert_int_equal(worker_add_device(dev), 0);
		two->dev[i] = dev;
	}
	assert_ptr_not_equal(two->dev[0]->worker, two->dev[1]->worker);
	memset(&seen.op_thread, 0, sizeof(seen.op_thread));
	seen.ops = seen.batch_dones = seen.completions = 0;
	seen.result = 0;
	*state = two;
	return 0;
}

static int teardown(void **state)
{
	struct two_devices *two = *state;

	for (unsigned int i = 0; i < 2; i++) {
		device_detach(two->dev[i]);
		fake_ring_destroy(&two->fake[i]);
	}
	workers_stop();
	free(two);
	return 0;
}

static void record_thread(struct tcmu_device *dev, void *argument)
{
	(void)dev;
	*(pthread_t *)argument = pthread_self();
}

static void wait_completions(unsigned int count)
{
	pthread_mutex_lock(&seen.lock);
	while (seen.completions < count)
		pthread_cond_wait(&seen.changed, &seen.lock);
	pthread_mutex_unlock(&seen.lock);
}

static void test_posted_to_the_serving_thread(void **state)
{
	struct two_devices *two = *state;
	struct tcmu_request req = { .io_done = io_done };
	struct iovec iov = { 0 };
	struct device_io io;
	pthread_t b_thread;

	assert_int_equal(worker_run(two->dev[1], record_thread, &b_thread), 0);
	assert_false(pthread_equal(b_thread, pthread_self()));
	/* From this thread, served by neither worker: posted. */
	assert_int_equal(device_io_issue(&io, two->dev[1], &req, true, &iov, 4096, 512, 0), 0);
	wait_completions(1);
	pthread_mutex_lock(&seen.lock);
	assert_int_equal(seen.ops, 1);
	assert_true(seen.was_write);
	assert_int_equal(seen.offset, 4096);
	assert_true(pthread_equal(seen.op_thread, b_thread));
	assert_int_equal(seen.completed_with, 0);
	pthread_mutex_unlock(&seen.lock);
	/* batch_done follows on the same thread, so an asynchronous handler submits. */
	for (unsigned int tries = 0; tries < 1000; tries++) {
		pthread_mutex_lock(&seen.lock);
		if (seen.batch_dones) {
			assert_true(pthread_equal(seen.batch_done_thread, b_thread));
			pthread_mutex_unlock(&seen.lock);
			return;
		}
		pthread_mutex_unlock(&seen.lock);
		usleep(1000);
	}
	fail_msg("no batch_done after the posted op");
}

static void test_refusal_completes_the_request(void **state)
{
	struct two_devices *two = *state;
	struct tcmu_request req = { .io_done = io_done };
	struct iovec iov = { 0 };
	struct device_io io;

	seen.result = -EIO;
	assert_int_equal(device_io_issue(&io, two->dev[0], &req, false, &iov, 0, 512, 0), 0);
	wait_completions(1);
	assert_int_equal(seen.completed_with, -EIO);
	assert_false(seen.was_write);
}

struct issue_here {
	struct device_io io;
	struct tcmu_request req;
	int result;
	unsigned int ops_before_return;
	unsigned int batch_dones_before_return;	/* since the call */
};

static void issue_on_serving_thread(struct tcmu_device *dev, void *argument)
{
	struct issue_here *here = argument;
	struct iovec iov = { 0 };
	unsigned int batch_dones_before;

	pthread_mutex_lock(&seen.lock);
	batch_dones_before = seen.batch_dones;
	pthread_mutex_unlock(&seen.lock);
	here->result = device_io_issue(&here->io, dev, &here->req, false, &iov, 0, 512, 0);
	pthread_mutex_lock(&seen.lock);
	here->ops_before_return = seen.ops;
	here->batch_dones_before_return = seen.batch_dones - batch_dones_before;
	pthread_mutex_unlock(&seen.lock);
}

static void test_on_the_serving_thread_at_once(void **state)
{
	struct two_devices *two = *state;
	struct issue_here here = { .req = { .io_done = io_done } };
	pthread_t a_thread;

	assert_int_equal(worker_run(two->dev[0], record_thread, &a_thread), 0);
	assert_int_equal(worker_run(two->dev[0], issue_on_serving_thread, &here), 0);
	assert_int_equal(here.result, 0);
	assert_int_equal(here.ops_before_return, 1);	/* not posted: done before returning */
	/*
	 * ...and in a batch of its own: the caller may be in a batch of another
	 * device, whose end would not submit what this device's handler queued.
	 */
	assert_int_equal(here.batch_dones_before_return, 1);
	assert_true(pthread_equal(seen.op_thread, a_thread));
	wait_completions(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_posted_to_the_serving_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusal_completes_the_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_on_the_serving_thread_at_once, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
