/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker.c: the threads that serve rings. There are as many workers as
 * CPUs, not as devices; each device is served by exactly one worker (the
 * least loaded when it attaches), which waits on the device's uio fd with
 * epoll and consumes the ring in batches. Handlers may complete requests
 * from their own threads; that path does not involve the worker.
 *
 * Devices are added and removed by the main thread through a small control
 * channel (an eventfd): the worker itself changes its epoll set, after it
 * has finished the batch of events it was handling, so it never touches a
 * device after worker_remove_device() returned.
 *
 * Adaptive polling. Sleeping in epoll_wait costs a wakeup per batch (on
 * another CPU, an inter-processor interrupt and two context switches),
 * which dominates the latency of a command at low queue depth. So after a
 * batch the worker watches its rings' heads for a short window before it
 * sleeps. The window adapts as KVM's halt polling does: it grows while
 * commands keep arriving soon after the worker fell asleep (a longer window
 * would have caught them) and shrinks when it slept longer than the largest
 * window (polling only burnt CPU), so idle devices cost nothing. With one
 * online CPU polling is off: the submitter could not run while we spin.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "tcmu_internal.h"

#define EVENTS_PER_WAIT 64
/* First window when polling starts to pay; it doubles from there. */
#define POLL_START_NS 10000ULL

enum worker_request_kind { WORKER_ADD, WORKER_REMOVE, WORKER_STOP };

struct ring_worker {
	pthread_t thread;
	int epoll_fd;
	int control_fd;
	unsigned int device_count;	/* for placement; main thread only */

	pthread_mutex_t lock;		/* the one pending control request */
	pthread_cond_t done_cond;
	pthread_mutex_t control_serial;	/* one control request at a time */
	enum worker_request_kind request;
	bool request_posted;		/* atomic: ends a polling window early */
	struct tcmu_device *request_device;
	int request_result;
	bool request_done;

	/* Owned by the worker thread: the devices it serves, for polling. */
	struct tcmu_device **devices;
	unsigned int devices_served;
	unsigned int devices_capacity;
	uint64_t poll_ns;		/* the current window */
};

static struct ring_worker *workers;
static unsigned int worker_count;
/* The largest polling window; 0 turns polling off. Changed at runtime. */
static uint64_t poll_limit_ns;

static uint64_t monotonic_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
}

static int worker_track_device(struct ring_worker *worker, struct tcmu_device *dev)
{
	if (worker->devices_served == worker->devices_capacity) {
		unsigned int capacity = worker->devices_capacity ? worker->devices_capacity * 2 : 8;
		struct tcmu_device **grown = realloc(worker->devices, capacity * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		worker->devices = grown;
		worker->devices_capacity = capacity;
	}
	worker->devices[worker->devices_served++] = dev;
	return 0;
}

static void worker_untrack_device(struct ring_worker *worker, struct tcmu_device *dev)
{
	unsigned int i;

	for (i = 0; i < worker->devices_served; i++) {
		if (worker->devices[i] == dev) {
			worker->devices[i] = worker->devices[--worker->devices_served];
			return;
		}
	}
}

/* Runs on the worker thread. Returns false when the worker must exit. */
static bool worker_handle_control(struct ring_worker *worker)
{
	struct epoll_event event = { .events = EPOLLIN | EPOLLET };
	enum worker_request_kind request;
	struct tcmu_device *dev;
	uint64_t count;
	bool keep_running = true;
	int result = 0;

	__atomic_store_n(&worker->request_posted, false, __ATOMIC_RELAXED);
	if (read(worker->control_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		tcmu_err("worker control read: %m");

	pthread_mutex_lock(&worker->lock);
	if (worker->request_done) {
		pthread_mutex_unlock(&worker->lock);
		return true;
	}
	dev = worker->request_device;
	request = worker->request;
	switch (request) {
	case WORKER_ADD:
		/*
		 * Edge-triggered: every event the kernel raises wakes the entry
		 * again, so the uio event count is never read (one syscall less
		 * per batch). An event raised while a batch is consumed makes the
		 * next epoll_wait return at once, and ring_process() re-reads the
		 * head, so no command is missed.
		 */
		event.data.ptr = dev;
		result = worker_track_device(worker, dev);
		if (result == 0 && epoll_ctl(worker->epoll_fd, EPOLL_CTL_ADD, dev->uio_fd, &event) < 0) {
			result = -errno;
			worker_untrack_device(worker, dev);
		}
		break;
	case WORKER_REMOVE:
		worker_untrack_device(worker, dev);
		if (epoll_ctl(worker->epoll_fd, EPOLL_CTL_DEL, dev->uio_fd, NULL) < 0)
			result = -errno;
		break;
	case WORKER_STOP:
		keep_running = false;
		break;
	}
	worker->request_result = result;
	worker->request_done = true;
	pthread_cond_broadcast(&worker->done_cond);
	pthread_mutex_unlock(&worker->lock);

	/* Commands queued before the device was added raised no event yet. */
	if (request == WORKER_ADD && result == 0)
		ring_process(&dev->ring);
	return keep_running;
}

/*
 * Spins up to the current window for a ring with new entries and serves
 * every such ring. Returns true when it found work.
 */
static bool worker_poll(struct ring_worker *worker)
{
	uint64_t deadline = monotonic_ns() + worker->poll_ns;
	bool found = false;
	unsigned int i;

	do {
		for (i = 0; i < worker->devices_served; i++) {
			if (ring_has_entries(&worker->devices[i]->ring)) {
				ring_process(&worker->devices[i]->ring);
				found = true;
			}
		}
		if (found)
			return true;
		if (__atomic_load_n(&worker->request_posted, __ATOMIC_RELAXED))
			return false;
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	} while (monotonic_ns() < deadline);
	return false;
}

/* After a sleep of slept_ns: would a longer window have caught the work? */
static void worker_adapt_poll(struct ring_worker *worker, uint64_t slept_ns)
{
	uint64_t limit = __atomic_load_n(&poll_limit_ns, __ATOMIC_RELAXED);

	if (slept_ns > limit) {
		worker->poll_ns /= 2;
		if (worker->poll_ns < POLL_START_NS)
			worker->poll_ns = 0;
	} else {
		worker->poll_ns = worker->poll_ns ? worker->poll_ns * 2 : POLL_START_NS;
	}
	if (worker->poll_ns > limit)
		worker->poll_ns = limit;
}

static void *worker_main(void *argument)
{
	struct ring_worker *worker = argument;
	struct epoll_event events[EVENTS_PER_WAIT];

	for (;;) {
		bool control = false, polled = false;
		uint64_t sleep_start = 0;
		int count, i;

		/*
		 * Work found by polling is served already; epoll_wait then only
		 * collects control requests and the events of that work, without
		 * sleeping, so a busy ring cannot starve the control channel.
		 */
		if (worker->poll_ns > __atomic_load_n(&poll_limit_ns, __ATOMIC_RELAXED))
			worker->poll_ns = __atomic_load_n(&poll_limit_ns, __ATOMIC_RELAXED);
		if (worker->poll_ns > 0 && worker->devices_served > 0)
			polled = worker_poll(worker);
		if (!polled)
			sleep_start = monotonic_ns();
		count = epoll_wait(worker->epoll_fd, events, EVENTS_PER_WAIT, polled ? 0 : -1);
		if (count < 0) {
			if (errno == EINTR)
				continue;
			tcmu_crit("worker epoll_wait: %m");
			return NULL;
		}
		if (!polled && __atomic_load_n(&poll_limit_ns, __ATOMIC_RELAXED) > 0)
			worker_adapt_poll(worker, monotonic_ns() - sleep_start);
		for (i = 0; i < count; i++) {
			if (events[i].data.ptr)
				ring_process(&((struct tcmu_device *)events[i].data.ptr)->ring);
			else
				control = true;
		}
		/* After the batch: a device removed now is in no pending event. */
		if (control && !worker_handle_control(worker))
			return NULL;
	}
}

static int worker_call(struct ring_worker *worker, enum worker_request_kind request,
		       struct tcmu_device *dev)
{
	uint64_t one = 1;
	int result;

	pthread_mutex_lock(&worker->control_serial);
	pthread_mutex_lock(&worker->lock);
	worker->request = request;
	worker->request_device = dev;
	worker->request_done = false;
	pthread_mutex_unlock(&worker->lock);
	__atomic_store_n(&worker->request_posted, true, __ATOMIC_RELAXED);

	if (write(worker->control_fd, &one, sizeof(one)) != sizeof(one)) {
		result = -errno;
		pthread_mutex_unlock(&worker->control_serial);
		return result;
	}
	pthread_mutex_lock(&worker->lock);
	while (!worker->request_done)
		pthread_cond_wait(&worker->done_cond, &worker->lock);
	result = worker->request_result;
	pthread_mutex_unlock(&worker->lock);
	pthread_mutex_unlock(&worker->control_serial);
	return result;
}

int worker_add_device(struct tcmu_device *dev)
{
	struct ring_worker *chosen = NULL;
	unsigned int i;
	int ret;

	if (!worker_count)
		return -ESRCH;
	for (i = 0; i < worker_count; i++)
		if (!chosen || workers[i].device_count < chosen->device_count)
			chosen = &workers[i];
	ret = worker_call(chosen, WORKER_ADD, dev);
	if (ret < 0)
		return ret;
	chosen->device_count++;
	dev->worker = chosen;
	return 0;
}

void worker_remove_device(struct tcmu_device *dev)
{
	struct ring_worker *worker = dev->worker;
	int ret;

	if (!worker)
		return;
	ret = worker_call(worker, WORKER_REMOVE, dev);
	if (ret < 0)
		tcmu_dev_err(dev, "stop serving: %s", strerror(-ret));
	worker->device_count--;
	dev->worker = NULL;
}

static int worker_init(struct ring_worker *worker)
{
	struct epoll_event event = { .events = EPOLLIN, .data.ptr = NULL };

	memset(worker, 0, sizeof(*worker));
	pthread_mutex_init(&worker->lock, NULL);
	pthread_mutex_init(&worker->control_serial, NULL);
	pthread_cond_init(&worker->done_cond, NULL);
	worker->request_done = true;
	worker->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	worker->control_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (worker->epoll_fd < 0 || worker->control_fd < 0 ||
	    epoll_ctl(worker->epoll_fd, EPOLL_CTL_ADD, worker->control_fd, &event) < 0)
		return -errno;
	return 0;
}

static void worker_release(struct ring_worker *worker)
{
	if (worker->epoll_fd >= 0)
		close(worker->epoll_fd);
	if (worker->control_fd >= 0)
		close(worker->control_fd);
	pthread_cond_destroy(&worker->done_cond);
	pthread_mutex_destroy(&worker->control_serial);
	pthread_mutex_destroy(&worker->lock);
	free(worker->devices);
}

int workers_start(unsigned int count)
{
	sigset_t all, previous;
	unsigned int i;
	int ret = 0;

	if (count == 0)
		count = 1;
	workers = calloc(count, sizeof(*workers));
	if (!workers)
		return -ENOMEM;
	/* Signals belong to the main loop; workers never take them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &previous);
	for (i = 0; i < count; i++) {
		ret = worker_init(&workers[i]);
		if (ret == 0)
			ret = -pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
		if (ret < 0) {
			worker_release(&workers[i]);
			break;
		}
		worker_count++;
	}
	pthread_sigmask(SIG_SETMASK, &previous, NULL);
	if (ret < 0) {
		tcmu_err("cannot start ring worker %u: %s", i, strerror(-ret));
		workers_stop();
	}
	return ret;
}

void workers_set_poll_limit(unsigned int microseconds)
{
	uint64_t limit = (uint64_t)microseconds * 1000;

	if (microseconds > 0 && sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		tcmu_dbg("one online CPU: ring polling stays off");
		limit = 0;
	}
	__atomic_store_n(&poll_limit_ns, limit, __ATOMIC_RELAXED);
}

void workers_stop(void)
{
	unsigned int i;

	for (i = 0; i < worker_count; i++) {
		worker_call(&workers[i], WORKER_STOP, NULL);
		pthread_join(workers[i].thread, NULL);
		worker_release(&workers[i]);
	}
	free(workers);
	workers = NULL;
	worker_count = 0;
}
