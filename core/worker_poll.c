/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker_poll.c: how long a ring worker polls before it sleeps.
 *
 * Sleeping in epoll_wait costs a wakeup per batch (on another CPU, an
 * inter-processor interrupt and two context switches), which dominates the
 * latency of a command at low queue depth. So after a batch the worker
 * watches its rings' heads for a short window before it sleeps. The window
 * adapts as KVM's halt polling does: it grows while commands keep arriving
 * soon after the worker fell asleep (a longer window would have caught
 * them) and shrinks when it slept longer than the largest window (polling
 * only burnt CPU), so idle devices cost nothing. With one online CPU
 * polling is off: the submitter could not run while we spin. The largest
 * window is tcmu.conf's ring_poll_us, changed at run time.
 */
#include <unistd.h>

#include "tcmu_internal.h"

/* First window when polling starts to pay; it doubles from there. */
#define POLL_START_NS 10000ULL

/* The largest window; 0 turns polling off. Read by every worker. */
static uint64_t poll_limit_ns;
/* ring_poll_us as last set (main thread only), for the log of its changes. */
static unsigned int poll_limit_us;
static bool poll_limit_set;

uint64_t worker_poll_limit_ns(void)
{
	return __atomic_load_n(&poll_limit_ns, __ATOMIC_RELAXED);
}

uint64_t worker_poll_adapt(uint64_t window_ns, uint64_t slept_ns)
{
	/* Would a longer window have caught the work that ended the sleep? */
	if (slept_ns > worker_poll_limit_ns())
		return window_ns / 2 < POLL_START_NS ? 0 : window_ns / 2;
	return window_ns ? window_ns * 2 : POLL_START_NS;
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
