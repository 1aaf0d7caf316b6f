/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker_poll.c: how long a ring worker polls before it sleeps.
 *
 * Sleeping in epoll_wait costs a wakeup per batch (on another CPU, an
 * inter-processor interrupt and two context switches), which dominates the
 * latency of a command at low queue depth. So after a batch the worker
 * watches its rings' heads for a window before it sleeps. The window tunes
 * itself from the gaps it measures between the end of a batch and the next
 * work (found by polling, or the wakeup): it follows a slowly decaying
 * maximum of the recent gaps, with a margin, so that it covers the round
 * trip of the initiator that submits one command after another (tens of
 * microseconds on hardware, 300-400 under emulation) and no more. A gap
 * longer than the largest window (ring_poll_us) means the device went
 * idle, or that polling could not catch the next command anyway: the
 * window halves, down to nothing. A poll that loses its CPU (the clock
 * jumps between two looks at the rings: the guest or the host has other
 * work for that CPU) means spinning takes time from whoever submits the
 * I/O: polling stops for a number of batches that doubles while it keeps
 * happening. With one online CPU polling is off: the submitter could not
 * run while we spin.
 */
#include <unistd.h>

#include "tcmu_internal.h"

/* A gap estimate below this is not worth a poll. */
#define POLL_MIN_NS 2000ULL
/* Batches without polling after a lost CPU: the first backoff, and the longest. */
#define POLL_BACKOFF_MIN 16U
#define POLL_BACKOFF_MAX 4096U

/* The largest window; 0 turns polling off. Read by every worker. */
static uint64_t poll_limit_ns;
/* ring_poll_us as last set (main thread only), for the log of its changes. */
static unsigned int poll_limit_us;
static bool poll_limit_set;

uint64_t worker_poll_limit_ns(void)
{
	return __atomic_load_n(&poll_limit_ns, __ATOMIC_RELAXED);
}

void worker_poll_tune(struct poll_tuning *tuning, uint64_t gap_ns, bool preempted,
		      uint64_t limit_ns)
{
	uint64_t window;

	if (limit_ns == 0) {
		*tuning = (struct poll_tuning){ 0 };
		return;
	}
	if (preempted) {
		tuning->backoff = tuning->backoff ? tuning->backoff * 2 : POLL_BACKOFF_MIN;
		if (tuning->backoff > POLL_BACKOFF_MAX)
			tuning->backoff = POLL_BACKOFF_MAX;
		tuning->batches_off = tuning->backoff;
		tuning->window_ns = 0;
		return;
	}
	/* The gaps keep being measured while polling is off, so it resumes in tune. */
	if (gap_ns <= limit_ns) {
		tuning->gap_ns -= tuning->gap_ns / 8;
		if (gap_ns > tuning->gap_ns)
			tuning->gap_ns = gap_ns;
	} else {
		tuning->gap_ns /= 2;
	}
	if (tuning->batches_off > 0) {
		tuning->batches_off--;
		tuning->window_ns = 0;
		return;
	}
	/* Each batch that kept its CPU shortens the next backoff by one. */
	if (tuning->backoff > 0)
		tuning->backoff--;
	window = tuning->gap_ns + tuning->gap_ns / 2;
	if (tuning->gap_ns < POLL_MIN_NS)
		window = 0;
	tuning->window_ns = window < limit_ns ? window : limit_ns;
}

unsigned int workers_get_poll_limit(void)
{
	return (unsigned int)(worker_poll_limit_ns() / 1000);
}

void workers_set_poll_limit(unsigned int microseconds)
{
	uint64_t limit = (uint64_t)microseconds * 1000;

	if (poll_limit_set && microseconds == poll_limit_us)
		return;
	if (poll_limit_set)
		tcmu_info("ring polling window %u -> %u us", poll_limit_us, microseconds);
	else
		tcmu_dbg("ring polling window %u us", microseconds);
	poll_limit_us = microseconds;
	poll_limit_set = true;
	if (microseconds > 0 && sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		tcmu_dbg("one online CPU: ring polling stays off");
		limit = 0;
	}
	__atomic_store_n(&poll_limit_ns, limit, __ATOMIC_RELAXED);
}
