/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ring workers (worker.c) on a real worker thread, serving a fake device:
 * its ring is an in-memory mailbox (fake_ring.c) and its uio fd an eventfd,
 * which the worker epolls edge-triggered as it does a uio fd. Writing to
 * the eventfd stands for the kernel's interrupt after it queued commands.
 * A command queued without that signal can only be served by a worker that
 * polls its rings, which is what tells polling on from polling off.
 *
 * Timing. The host may be busy, so every wait for something that must
 * happen is long, and the waits for something that must not happen are far
 * longer than the worker needs to do it when it is wrong.
 */
#include <errno.h>
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
#include "worker_task.h"

/* The largest window the daemon allows. */
#define POLL_LIMIT_US 100000
#define SERVED_DEADLINE_MS 5000
#define NOT_SERVED_WAIT_MS 200
/*
 * Warm-up: the window tunes itself to the gaps between commands (half again
 * the largest recent one). Commands half the limit apart open a window of
 * 75 ms after the first gap. A poll that loses its CPU for long (a busy
 * host) stops polling for some batches, so the tests that need a window
 * try a few times.
 */
#define WARM_UP_COMMANDS 20
#define WARM_UP_GAP_MS 50
#define POLL_ATTEMPTS 5
/* Short gaps, short windows: a spin that short seldom loses its CPU. */
#define POLL_GAP_MS 2
/* Far less than the rest of a 75 ms window after a command was served. */
#define CONTROL_LATENCY_LIMIT_MS 50
#define CONTROL_ATTEMPTS 5

struct worker_fixture {
	struct fake_ring fake;
	struct tcmu_device dev;
	uint16_t next_cmd_id;
	bool attached;
};

/* Written by the worker thread, read by the test: atomic. */
static unsigned int dispatched;
static unsigned int kicks;

/* calloc of the code under test (linked with --wrap=calloc): fails while this is positive. */
static int calloc_failures;

void *__real_calloc(size_t count, size_t size);
void *__wrap_calloc(size_t count, size_t size);

void *__wrap_calloc(size_t count, size_t size)
{
	if (__atomic_load_n(&calloc_failures, __ATOMIC_ACQUIRE) > 0 &&
	    __atomic_sub_fetch(&calloc_failures, 1, __ATOMIC_ACQ_REL) >= 0)
		return NULL;
	return __real_calloc(count, size);
}

static void complete_and_count(struct tcmu_request *req)
{
	ring_complete_request(req, 0, NULL, 0, 0);
	__atomic_add_fetch(&dispatched, 1, __ATOMIC_RELEASE);
}

static void count_kick(struct tcmu_ring *ring)
{
	(void)ring;
	__atomic_add_fetch(&kicks, 1, __ATOMIC_RELEASE);
}

static void sleep_us(uint64_t microseconds)
{
	struct timespec duration = {
		.tv_sec = (time_t)(microseconds / 1000000),
		.tv_nsec = (long)(microseconds % 1000000) * 1000,
	};

	while (nanosleep(&duration, &duration) < 0 && errno == EINTR)
		;
}

/* Whether counter reached expected within timeout_ms. */
static bool wait_counter(unsigned int *counter, unsigned int expected, unsigned int timeout_ms)
{
	uint64_t deadline = monotonic_ns() / 1000 + (uint64_t)timeout_ms * 1000;

	while (__atomic_load_n(counter, __ATOMIC_ACQUIRE) < expected) {
		if (monotonic_ns() / 1000 >= deadline)
			return false;
		sleep_us(100);
	}
	return true;
}

static unsigned int dispatched_now(void)
{
	return __atomic_load_n(&dispatched, __ATOMIC_ACQUIRE);
}

static void queue_command(struct worker_fixture *fixture)
{
	static const uint8_t test_unit_ready[6] = { 0x00 };

	fake_ring_put_command(&fixture->fake, fixture->next_cmd_id++, test_unit_ready,
			      sizeof(test_unit_ready), 0, 0);
}

static void signal_device(struct worker_fixture *fixture)
{
	uint64_t one = 1;

	assert_int_equal(write(fixture->dev.uio_fd, &one, sizeof(one)), sizeof(one));
}

/*
 * Queues count commands one at a time, gap_ms apart, each signalled and
 * served. Each time it waits for the end of the batch too (its kick):
 * ring_process() reads the head again after a dispatch, so a command
 * queued before that would be served by the same batch, and its signal
 * would wake the worker later, with nothing to do or with a command that
 * nobody signalled.
 */
static void serve_signalled(struct worker_fixture *fixture, unsigned int count,
			    unsigned int gap_ms)
{
	unsigned int i;

	for (i = 0; i < count; i++) {
		unsigned int expected = dispatched_now() + 1;
		unsigned int expected_kicks = __atomic_load_n(&kicks, __ATOMIC_ACQUIRE) + 1;

		if (i > 0)
			sleep_us((uint64_t)gap_ms * 1000);
		queue_command(fixture);
		signal_device(fixture);
		assert_true(wait_counter(&dispatched, expected, SERVED_DEADLINE_MS));
		assert_true(wait_counter(&kicks, expected_kicks, SERVED_DEADLINE_MS));
	}
}

static bool polling_possible(void)
{
	return sysconf(_SC_NPROCESSORS_ONLN) >= 2;
}

static int start_worker(void **state, unsigned int poll_limit_us)
{
	struct worker_fixture *fixture = calloc(1, sizeof(*fixture));

	assert_non_null(fixture);
	assert_int_equal(fake_ring_create(&fixture->fake), 0);
	fixture->dev.log_prefix = "test/worker";
	fixture->dev.uio_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(fixture->dev.uio_fd >= 0);
	assert_int_equal(ring_init(&fixture->dev.ring, &fixture->dev, fixture->fake.map,
				   FAKE_RING_MAP_SIZE, complete_and_count, count_kick), 0);
	__atomic_store_n(&dispatched, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&kicks, 0, __ATOMIC_RELAXED);
	workers_set_poll_limit(poll_limit_us);
	assert_int_equal(workers_start(1), 0);
	assert_int_equal(worker_add_device(&fixture->dev), 0);
	fixture->attached = true;
	*state = fixture;
	return 0;
}

static int setup_polling_off(void **state)
{
	return start_worker(state, 0);
}

static int setup_polling_on(void **state)
{
	return start_worker(state, POLL_LIMIT_US);
}

static int teardown(void **state)
{
	struct worker_fixture *fixture = *state;

	if (fixture->attached)
		worker_remove_device(&fixture->dev);
	workers_stop();
	workers_set_poll_limit(0);
	ring_destroy(&fixture->dev.ring);
	close(fixture->dev.uio_fd);
	fake_ring_destroy(&fixture->fake);
	free(fixture);
	return 0;
}

static void test_polling_off_serves_only_signalled_commands(void **state)
{
	struct worker_fixture *fixture = *state;
	uint32_t head, tail;

	/* The traffic that opens the widest window when polling is on. */
	serve_signalled(fixture, WARM_UP_COMMANDS, WARM_UP_GAP_MS);

	queue_command(fixture);
	sleep_us(NOT_SERVED_WAIT_MS * 1000);
	assert_int_equal(dispatched_now(), WARM_UP_COMMANDS);

	signal_device(fixture);
	assert_true(wait_counter(&dispatched, WARM_UP_COMMANDS + 1, SERVED_DEADLINE_MS));
	assert_true(wait_counter(&kicks, WARM_UP_COMMANDS + 1, SERVED_DEADLINE_MS));
	assert_int_equal(__atomic_load_n(&kicks, __ATOMIC_ACQUIRE), WARM_UP_COMMANDS + 1);
	head = __atomic_load_n(&fixture->fake.mailbox->cmd_head, __ATOMIC_ACQUIRE);
	tail = __atomic_load_n(&fixture->fake.mailbox->cmd_tail, __ATOMIC_ACQUIRE);
	assert_int_equal(tail, head);
}

static void test_polling_serves_unsignalled_command_after_warm_up(void **state)
{
	struct worker_fixture *fixture = *state;
	bool served = false;
	uint64_t losses;

	if (!polling_possible()) {
		serve_signalled(fixture, WARM_UP_COMMANDS, WARM_UP_GAP_MS);
		queue_command(fixture);
		/* One online CPU: workers_set_poll_limit() keeps polling off. */
		sleep_us(NOT_SERVED_WAIT_MS * 1000);
		assert_int_equal(dispatched_now(), WARM_UP_COMMANDS);
		return;
	}
	losses = workers_polls_lost_cpu();
	for (unsigned int attempt = 0; attempt < POLL_ATTEMPTS && !served; attempt++) {
		unsigned int expected;

		serve_signalled(fixture, WARM_UP_COMMANDS, POLL_GAP_MS);
		/*
		 * Queued while the worker watches the ring after the last
		 * command. Nothing else would ever serve it, so the deadline
		 * only bounds the wait; missing the window means never.
		 */
		expected = dispatched_now() + 1;
		queue_command(fixture);
		served = wait_counter(&dispatched, expected, 1000);
		if (!served) {
			/*
			 * Right only when a poll lost its CPU since the test
			 * began (a busy host): polling then stops for a
			 * while, as it must.
			 */
			assert_true(workers_polls_lost_cpu() > losses);
			signal_device(fixture);
			assert_true(wait_counter(&dispatched, expected, SERVED_DEADLINE_MS));
		}
	}
	/* Every attempt on a busy host backed off, each after a lost CPU (asserted above). */
	if (!served)
		print_message("polling backed off in all %d attempts: the host is busy\n",
			      POLL_ATTEMPTS);
}

/*
 * Each removal is timed right after a command was served, when the worker
 * has just begun a window. A worker that ignored control requests while it
 * polls would answer every one only at the end of its window; one that
 * does not may still be kept off the CPU now and then by a busy host, so
 * the quickest answer is what counts.
 */
static void test_control_request_ends_polling_window(void **state)
{
	struct worker_fixture *fixture = *state;
	uint64_t quickest_us = UINT64_MAX;
	unsigned int attempt, served;

	serve_signalled(fixture, WARM_UP_COMMANDS, WARM_UP_GAP_MS);
	for (attempt = 0; attempt < CONTROL_ATTEMPTS; attempt++) {
		uint64_t start, elapsed_us;

		if (attempt > 0) {
			assert_int_equal(worker_add_device(&fixture->dev), 0);
			fixture->attached = true;
			serve_signalled(fixture, 1, 0);
		}
		start = monotonic_ns() / 1000;
		worker_remove_device(&fixture->dev);
		elapsed_us = monotonic_ns() / 1000 - start;
		fixture->attached = false;
		if (elapsed_us < quickest_us)
			quickest_us = elapsed_us;
	}
	assert_in_range(quickest_us, 0, CONTROL_LATENCY_LIMIT_MS * 1000);

	/* Removed: its signals no longer reach the worker. */
	served = dispatched_now();
	queue_command(fixture);
	signal_device(fixture);
	sleep_us(NOT_SERVED_WAIT_MS * 1000);
	assert_int_equal(dispatched_now(), served);
}

/*
 * The first command finds no memory for its request (the pool is empty
 * and growing it fails once). The kernel raises no second event for it:
 * the worker must serve it again by itself, without a signal.
 */
static void test_command_left_queued_for_want_of_memory_is_served(void **state)
{
	struct worker_fixture *fixture = *state;

	__atomic_store_n(&calloc_failures, 1, __ATOMIC_RELEASE);
	queue_command(fixture);
	signal_device(fixture);
	assert_true(wait_counter(&dispatched, 1, SERVED_DEADLINE_MS));
	assert_int_equal(__atomic_load_n(&calloc_failures, __ATOMIC_ACQUIRE), 0);
	assert_true(wait_counter(&kicks, 1, SERVED_DEADLINE_MS));
	assert_int_equal(__atomic_load_n(&fixture->fake.mailbox->cmd_tail, __ATOMIC_ACQUIRE),
			 __atomic_load_n(&fixture->fake.mailbox->cmd_head, __ATOMIC_ACQUIRE));
}

/*
 * A long command: one handler op per round of the worker (a task that
 * queues itself again), each a busy millisecond, as scsi_steps.c runs a
 * VERIFY of many chunks.
 */
#define LONG_COMMAND_ROUNDS 300
static struct worker_task long_task;
static struct tcmu_request *long_request;
static unsigned int long_rounds;
static unsigned int long_started, long_finished;

static void long_round(struct worker_task *task)
{
	uint64_t until = (monotonic_ns() / 1000) + 1000;

	while ((monotonic_ns() / 1000) < until)
		;
	if (++long_rounds < LONG_COMMAND_ROUNDS) {
		assert_true(worker_defer(task));
		return;
	}
	ring_complete_request(long_request, 0, NULL, 0, 0);
	__atomic_store_n(&long_finished, 1, __ATOMIC_RELEASE);
}

static void start_long_command(struct tcmu_request *req)
{
	long_request = req;
	long_rounds = 0;
	long_task.run = long_round;
	assert_true(worker_defer(&long_task));
	__atomic_store_n(&long_started, 1, __ATOMIC_RELEASE);
}

/* A command that holds the worker until released: a handler call that blocks. */
static bool blocking;
static unsigned int blocked;

static void block_worker(struct tcmu_request *req)
{
	__atomic_store_n(&blocked, 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&blocking, __ATOMIC_ACQUIRE))
		sleep_us(1000);
	__atomic_store_n(&blocked, 0, __ATOMIC_RELEASE);
	ring_complete_request(req, 0, NULL, 0, 0);
}

/* A second device on the fixture's worker. */
struct second_device {
	struct fake_ring fake;
	struct tcmu_device dev;
	uint16_t next_cmd_id;
};

static void second_device_create(struct second_device *second)
{
	memset(second, 0, sizeof(*second));
	assert_int_equal(fake_ring_create(&second->fake), 0);
	second->dev.log_prefix = "test/second";
	second->dev.uio_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(second->dev.uio_fd >= 0);
	assert_int_equal(ring_init(&second->dev.ring, &second->dev, second->fake.map,
				   FAKE_RING_MAP_SIZE, complete_and_count, count_kick), 0);
}

static void second_device_destroy(struct second_device *second)
{
	ring_destroy(&second->dev.ring);
	close(second->dev.uio_fd);
	fake_ring_destroy(&second->fake);
}

static void second_device_command(struct second_device *second)
{
	static const uint8_t test_unit_ready[6] = { 0x00 };
	uint64_t one = 1;

	fake_ring_put_command(&second->fake, second->next_cmd_id++, test_unit_ready,
			      sizeof(test_unit_ready), 0, 0);
	assert_int_equal(write(second->dev.uio_fd, &one, sizeof(one)), sizeof(one));
}

/* The fixture's device runs dispatch in place of the counting one. */
static void redirect_dispatch(struct worker_fixture *fixture, ring_dispatch_fn dispatch)
{
	worker_remove_device(&fixture->dev);
	fixture->dev.ring.dispatch = dispatch;
	assert_int_equal(worker_add_device(&fixture->dev), 0);
}

/*
 * While a long command runs round after round, the worker still adds a
 * device and serves that device's commands: each waits for one round, not
 * for the whole command (300 ms at least).
 */
static void test_long_command_gives_way(void **state)
{
	struct worker_fixture *fixture = *state;
	struct second_device second;
	uint64_t start;

	second_device_create(&second);
	__atomic_store_n(&long_started, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&long_finished, 0, __ATOMIC_RELAXED);
	redirect_dispatch(fixture, start_long_command);
	queue_command(fixture);
	signal_device(fixture);
	assert_true(wait_counter(&long_started, 1, SERVED_DEADLINE_MS));

	start = (monotonic_ns() / 1000);
	assert_int_equal(worker_add_device(&second.dev), 0);
	second_device_command(&second);
	assert_true(wait_counter(&dispatched, 1, SERVED_DEADLINE_MS));
	assert_false(__atomic_load_n(&long_finished, __ATOMIC_ACQUIRE));
	assert_in_range((monotonic_ns() / 1000) - start, 0, LONG_COMMAND_ROUNDS * 1000 / 2);

	assert_true(wait_counter(&long_finished, 1, SERVED_DEADLINE_MS));
	assert_int_equal(long_rounds, LONG_COMMAND_ROUNDS);
	assert_int_equal(worker_remove_device(&second.dev), 0);
	second_device_destroy(&second);
}

/*
 * A worker held by a handler call that does not return: adding a device
 * gives up after the control timeout, and the add is withdrawn (the device
 * may be freed: the worker never takes it). A removal gives up too, and
 * the worker does it once it is free again; later requests work.
 */
static void test_control_request_times_out(void **state)
{
	struct worker_fixture *fixture = *state;
	struct second_device second;
	uint64_t start;

	second_device_create(&second);
	redirect_dispatch(fixture, block_worker);
	__atomic_store_n(&blocking, true, __ATOMIC_RELEASE);
	queue_command(fixture);
	signal_device(fixture);
	assert_true(wait_counter(&blocked, 1, SERVED_DEADLINE_MS));

	start = (monotonic_ns() / 1000);
	assert_int_equal(worker_add_device(&second.dev), -ETIMEDOUT);
	assert_in_range((monotonic_ns() / 1000) - start, 4000000, 30000000);
	__atomic_store_n(&blocking, false, __ATOMIC_RELEASE);
	second_device_command(&second);
	sleep_us(NOT_SERVED_WAIT_MS * 1000);
	assert_int_equal(dispatched_now(), 0);

	/* Held again: the removal times out, and the device must stay. */
	__atomic_store_n(&blocking, true, __ATOMIC_RELEASE);
	queue_command(fixture);
	signal_device(fixture);
	assert_true(wait_counter(&blocked, 1, SERVED_DEADLINE_MS));
	assert_int_equal(worker_remove_device(&fixture->dev), -ETIMEDOUT);
	assert_ptr_not_equal(fixture->dev.worker, NULL);
	__atomic_store_n(&blocking, false, __ATOMIC_RELEASE);

	/*
	 * The worker removed it on its own: the next request finds the slot
	 * free, and the fixture's device is served no more. The second
	 * device's command queued while its add was withdrawn is served once
	 * it is added for good.
	 */
	assert_int_equal(worker_add_device(&second.dev), 0);
	queue_command(fixture);
	signal_device(fixture);
	assert_true(wait_counter(&dispatched, 1, SERVED_DEADLINE_MS));
	second_device_command(&second);
	assert_true(wait_counter(&dispatched, 2, SERVED_DEADLINE_MS));
	sleep_us(NOT_SERVED_WAIT_MS * 1000);
	assert_int_equal(dispatched_now(), 2);
	assert_int_equal(__atomic_load_n(&blocked, __ATOMIC_ACQUIRE), 0);
	fixture->attached = false;
	assert_int_equal(worker_remove_device(&second.dev), 0);
	second_device_destroy(&second);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_polling_off_serves_only_signalled_commands,
						setup_polling_off, teardown),
		cmocka_unit_test_setup_teardown(test_polling_serves_unsignalled_command_after_warm_up,
						setup_polling_on, teardown),
		cmocka_unit_test_setup_teardown(test_control_request_ends_polling_window,
						setup_polling_on, teardown),
		cmocka_unit_test_setup_teardown(test_command_left_queued_for_want_of_memory_is_served,
						setup_polling_off, teardown),
		cmocka_unit_test_setup_teardown(test_long_command_gives_way, setup_polling_off,
						teardown),
		cmocka_unit_test_setup_teardown(test_control_request_times_out, setup_polling_off,
						teardown),
	};

	log_set_level(TCMU_LOG_CRIT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
