/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_worker_poll.c: the polling window's tuning (worker_poll_tune), fed
 * with the gaps and lost CPUs a worker would measure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tcmu_internal.h"

#define US 1000ULL
#define LIMIT (1000 * US)

/* Feeds count gaps of gap_ns that kept their CPU; returns the window after. */
static uint64_t feed(struct poll_tuning *tuning, uint64_t gap_ns, unsigned int count,
		     uint64_t limit_ns)
{
	for (unsigned int i = 0; i < count; i++)
		worker_poll_tune(tuning, gap_ns, false, limit_ns);
	return tuning->window_ns;
}

/* QD1 under emulation: a gap of 350 us, caught from the next batch on. */
static void test_window_covers_a_steady_gap(void **state)
{
	struct poll_tuning tuning = { 0 };

	(void)state;
	assert_int_equal(tuning.window_ns, 0);
	feed(&tuning, 350 * US, 1, LIMIT);
	assert_true(tuning.window_ns >= 350 * US);
	/* With a margin, but not the whole limit: spinning costs a CPU. */
	assert_true(tuning.window_ns <= 600 * US);
	feed(&tuning, 350 * US, 1000, LIMIT);
	assert_true(tuning.window_ns >= 350 * US && tuning.window_ns <= 600 * US);
}

/* Hardware: a round trip of 30 us gets a window of that order, not the limit. */
static void test_window_stays_small_for_small_gaps(void **state)
{
	struct poll_tuning tuning = { 0 };

	(void)state;
	feed(&tuning, 30 * US, 100, LIMIT);
	assert_true(tuning.window_ns >= 30 * US);
	assert_true(tuning.window_ns <= 60 * US);
}

/* Gaps that vary are covered by the recent largest, which decays when they shrink. */
static void test_window_follows_the_gaps(void **state)
{
	struct poll_tuning tuning = { 0 };

	(void)state;
	for (int i = 0; i < 50; i++) {
		worker_poll_tune(&tuning, 100 * US, false, LIMIT);
		worker_poll_tune(&tuning, 400 * US, false, LIMIT);
	}
	assert_true(tuning.window_ns >= 400 * US);
	feed(&tuning, 50 * US, 100, LIMIT);
	assert_true(tuning.window_ns >= 50 * US);
	assert_true(tuning.window_ns <= 100 * US);
}

/* The limit bounds the window, whatever the gaps. */
static void test_window_never_exceeds_the_limit(void **state)
{
	struct poll_tuning tuning = { 0 };

	(void)state;
	feed(&tuning, 900 * US, 10, LIMIT);
	assert_int_equal(tuning.window_ns, LIMIT);
	feed(&tuning, 180 * US, 1, 200 * US);
	assert_true(tuning.window_ns <= 200 * US);
}

/* An idle device (gaps beyond the limit) ends polling within a few batches. */
static void test_idle_device_stops_polling(void **state)
{
	struct poll_tuning tuning = { 0 };

	(void)state;
	feed(&tuning, 500 * US, 20, LIMIT);
	assert_true(tuning.window_ns > 0);
	assert_int_equal(feed(&tuning, 2000000 * US, 12, LIMIT), 0);
	/* Gaps the limit cannot catch never open a window. */
	tuning = (struct poll_tuning){ 0 };
	assert_int_equal(feed(&tuning, 350 * US, 100, 200 * US), 0);
}

static void test_limit_zero_is_off(void **state)
{
	struct poll_tuning tuning = { 0 };

	(void)state;
	feed(&tuning, 300 * US, 10, LIMIT);
	assert_true(tuning.window_ns > 0);
	assert_int_equal(feed(&tuning, 300 * US, 1, 0), 0);
	assert_int_equal(feed(&tuning, 1 * US, 100, 0), 0);
}

/* Counts the batches of a run that poll, with a lost CPU every period-th poll. */
static unsigned int polls_with_losses(struct poll_tuning *tuning, unsigned int batches,
				      unsigned int period)
{
	unsigned int polls = 0;

	for (unsigned int i = 0; i < batches; i++) {
		if (tuning->window_ns == 0) {
			worker_poll_tune(tuning, 350 * US, false, LIMIT);
			continue;
		}
		polls++;
		worker_poll_tune(tuning, 350 * US, polls % period == 0, LIMIT);
	}
	return polls;
}

/* A poll that lost its CPU stops polling for a while, longer if it happens again. */
static void test_lost_cpu_backs_off(void **state)
{
	struct poll_tuning tuning = { 0 };
	unsigned int first_pause = 0, second_pause = 0;

	(void)state;
	feed(&tuning, 350 * US, 5, LIMIT);
	assert_true(tuning.window_ns > 0);
	worker_poll_tune(&tuning, 350 * US, true, LIMIT);
	assert_int_equal(tuning.window_ns, 0);
	while (tuning.window_ns == 0 && first_pause < 100000) {
		worker_poll_tune(&tuning, 350 * US, false, LIMIT);
		first_pause++;
	}
	assert_true(first_pause >= 8);
	/* It comes back in tune: the gaps were measured meanwhile. */
	assert_true(tuning.window_ns >= 350 * US);
	/* Lost again at once: a longer pause. */
	worker_poll_tune(&tuning, 350 * US, true, LIMIT);
	while (tuning.window_ns == 0 && second_pause < 100000) {
		worker_poll_tune(&tuning, 350 * US, false, LIMIT);
		second_pause++;
	}
	assert_true(second_pause > first_pause);
}

/*
 * A busy host: the CPU is lost on every other poll. Polling becomes rare
 * (close to off); on a quiet host (a loss in a thousand polls) it stays on.
 */
static void test_busy_host_polls_rarely(void **state)
{
	struct poll_tuning busy = { 0 }, quiet = { 0 };
	unsigned int busy_polls, quiet_polls;

	(void)state;
	feed(&busy, 350 * US, 5, LIMIT);
	feed(&quiet, 350 * US, 5, LIMIT);
	busy_polls = polls_with_losses(&busy, 100000, 2);
	quiet_polls = polls_with_losses(&quiet, 100000, 1000);
	assert_true(busy_polls < 100000 / 100);
	assert_true(quiet_polls > 100000 * 9 / 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window_covers_a_steady_gap),
		cmocka_unit_test(test_window_stays_small_for_small_gaps),
		cmocka_unit_test(test_window_follows_the_gaps),
		cmocka_unit_test(test_window_never_exceeds_the_limit),
		cmocka_unit_test(test_idle_device_stops_polling),
		cmocka_unit_test(test_limit_zero_is_off),
		cmocka_unit_test(test_lost_cpu_backs_off),
		cmocka_unit_test(test_busy_host_polls_rarely),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
