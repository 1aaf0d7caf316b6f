/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker.c: the threads that serve rings. Each device is served by
 * exactly one worker (worker_pool.c chooses it: one of as many as CPUs, or
 * one of its own for a blocking handler), which waits on the device's uio
 * fd with epoll and consumes the ring in batches. Handlers may complete requests
 * from their own threads; that path does not involve the worker. An
 * asynchronous handler has the worker also wait for its file descriptors
 * (tcmu_device_watch_fd) and completes requests from fd_ready, on the
 * worker; each epoll entry carries a tagged watch that says what it is.
 *
 * Devices are added and removed by the main thread through a small control
 * channel (an eventfd): the worker itself changes its epoll set, after it
 * has finished the batch of events it was handling, so it never touches a
 * device after worker_remove_device() returned. Removal has two steps:
 * worker_stop_ring() ends the ring's service while the handler's fds are
 * still served, so that requests in flight can complete through them.
 *
 * Polling (worker_poll.c): after a batch the worker watches its rings'
 * heads for a window, tuned from the gaps it measures, before it sleeps.
 * While handler fds are watched,
 * the window also ends when the epoll set has an event, so their
 * completions are not held back by it.
 *
 * Long commands give way between their ops (worker_task.c): while tasks
 * are queued the worker neither polls nor sleeps. The main thread waits
 * CONTROL_TIMEOUT_MS at most for the worker to take a control request (a
 * handler call that does not return can hold it): an add or a function
 * not taken by then is withdrawn; stopping a ring or removing a device
 * stays posted and happens later, and the device must stay allocated.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "ring_worker.h"

#define EVENTS_PER_WAIT 64
/* How soon a ring that stopped for want of memory is served again. */
#define STARVED_RETRY_MS 1
#define CONTROL_TIMEOUT_MS 5000
/*
 * A poll whose clock jumped this much between two looks at the rings lost
 * its CPU (to the guest's scheduler or the host's), far beyond an
 * interrupt's share.
 */
#define POLL_PREEMPTED_NS 1000000ULL

/* Polls that lost their CPU, all workers: atomic. */
static uint64_t polls_lost_cpu;

uint64_t workers_polls_lost_cpu(void)
{
	return __atomic_load_n(&polls_lost_cpu, __ATOMIC_RELAXED);
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

/* One batch of commands from the ring, then the handler submits what it queued. */
static void worker_serve_ring(struct tcmu_device *dev)
{
	const struct tcmu_handler *handler = dev->handler;

	ring_batch_begin(&dev->ring);
	if (ring_process(&dev->ring) > 0 && handler && handler->batch_done)
		handler->batch_done(dev);
	ring_batch_end(&dev->ring);
}

/* WORKER_ADD: the ring's uio fd and the watches the handler asked for in open(). */
static int worker_start_serving(struct ring_worker *worker, struct tcmu_device *dev)
{
	struct worker_watch *ring_watch;
	struct epoll_event event;
	int result;

	ring_watch = calloc(1, sizeof(*ring_watch));
	if (!ring_watch)
		return -ENOMEM;
	ring_watch->kind = WATCH_RING;
	ring_watch->dev = dev;
	ring_watch->fd = dev->uio_fd;
	result = worker_track_device(worker, dev);
	if (result < 0) {
		free(ring_watch);
		return result;
	}
	/*
	 * Edge-triggered: every event the kernel raises wakes the entry
	 * again, so the uio event count is never read (one syscall less
	 * per batch). An event raised while a batch is consumed makes the
	 * next epoll_wait return at once, and ring_process() re-reads the
	 * head, so no command is missed.
	 */
	event.events = EPOLLIN | EPOLLET;
	event.data.ptr = ring_watch;
	if (epoll_ctl(worker->watches.epoll_fd, EPOLL_CTL_ADD, dev->uio_fd, &event) < 0) {
		result = -errno;
		worker_untrack_device(worker, dev);
		free(ring_watch);
		return result;
	}
	ring_watch->in_epoll = true;
	dev->ring_watch = ring_watch;
	result = watch_set_add_device(&worker->watches, dev);
	if (result < 0) {
		worker_untrack_device(worker, dev);
		watch_set_retire(&worker->watches, ring_watch);
		dev->ring_watch = NULL;
	}
	return result;
}

/* WORKER_STOP_RING: no more commands from the ring; the handler's fds stay served. */
static void worker_stop_serving_ring(struct ring_worker *worker, struct tcmu_device *dev)
{
	if (!dev->ring_watch)
		return;
	worker_untrack_device(worker, dev);
	watch_set_retire(&worker->watches, dev->ring_watch);
	dev->ring_watch = NULL;
}

/* WORKER_REMOVE: the worker forgets the device. */
static void worker_forget_device(struct ring_worker *worker, struct tcmu_device *dev)
{
	worker_stop_serving_ring(worker, dev);
	watch_set_remove_device(&worker->watches, dev);
	dev->watch_set = NULL;
}

/* Frees, on the worker thread, the devices whose last late command completed. */
static void worker_run_releases(struct ring_worker *worker)
{
	struct tcmu_device *dev, *next;

	pthread_mutex_lock(&worker->lock);
	dev = worker->releases;
	worker->releases = NULL;
	pthread_mutex_unlock(&worker->lock);
	for (; dev; dev = next) {
		next = dev->next_release;
		worker_forget_device(worker, dev);
		dev->worker = NULL;
		__atomic_sub_fetch(&worker->device_count, 1, __ATOMIC_RELAXED);
		__atomic_sub_fetch(&worker->releases_pending, 1, __ATOMIC_RELEASE);
		dev->release(dev);
	}
}

/* ring_call_when_drained(): the completing thread, after its last use of the ring. */
static void worker_post_release(struct tcmu_ring *ring)
{
	struct tcmu_device *dev = ring->dev;
	struct ring_worker *worker = dev->worker;
	uint64_t one = 1;

	pthread_mutex_lock(&worker->lock);
	dev->next_release = worker->releases;
	worker->releases = dev;
	pthread_mutex_unlock(&worker->lock);
	/* dev may be gone from here on. */
	if (write(worker->control_fd, &one, sizeof(one)) != sizeof(one))
		tcmu_err("worker control write: %m");
}

bool worker_release_when_drained(struct tcmu_device *dev,
				 void (*release)(struct tcmu_device *dev))
{
	struct ring_worker *worker = dev->worker;

	dev->release = release;
	__atomic_add_fetch(&worker->releases_pending, 1, __ATOMIC_RELAXED);
	if (ring_call_when_drained(&dev->ring, worker_post_release))
		return true;
	__atomic_sub_fetch(&worker->releases_pending, 1, __ATOMIC_RELAXED);
	return false;
}

/* Runs on the worker thread. Returns false when the worker must exit. */
static bool worker_handle_control(struct ring_worker *worker)
{
	enum worker_request_kind request;
	struct tcmu_device *dev;
	uint64_t count;
	bool keep_running = true;
	int result = 0;

	__atomic_store_n(&worker->request_posted, false, __ATOMIC_RELAXED);
	if (read(worker->control_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		tcmu_err("worker control read: %m");
	worker_run_releases(worker);

	pthread_mutex_lock(&worker->lock);
	if (worker->request_done || worker->request_taken) {
		pthread_mutex_unlock(&worker->lock);
		return true;
	}
	worker->request_taken = true;
	dev = worker->request_device;
	request = worker->request;
	switch (request) {
	case WORKER_ADD:
		result = worker_start_serving(worker, dev);
		break;
	case WORKER_STOP_RING:
		worker_stop_serving_ring(worker, dev);
		break;
	case WORKER_REMOVE:
		worker_forget_device(worker, dev);
		break;
	case WORKER_RUN:
		/* Not under the lock: the function may call back into the core. */
		pthread_mutex_unlock(&worker->lock);
		/* The function may call the handler (a flush). */
		device_run_in_batch(dev, worker->request_function, worker->request_argument);
		pthread_mutex_lock(&worker->lock);
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
		worker_serve_ring(dev);
	return keep_running;
}

/* Has the epoll set an event (a handler's fd, most likely)? Does not consume it. */
static bool worker_epoll_ready(struct ring_worker *worker)
{
	struct pollfd epoll_poll = { .fd = worker->watches.epoll_fd, .events = POLLIN };

	return poll(&epoll_poll, 1, 0) > 0;
}

/*
 * Spins up to the current window for a ring with new entries and serves
 * every such ring. Returns true when it found work, at *found_ns (the clock
 * of the look before, which spares a read), or when the epoll set has
 * events for handler fds, which the caller collects without sleeping. Stops early, setting *preempted, when the clock jumped
 * between two looks: the thread lost its CPU, which someone else needed.
 */
static bool worker_poll(struct ring_worker *worker, bool *preempted, uint64_t *found_ns)
{
	uint64_t now = monotonic_ns(), deadline = now + worker->poll.window_ns, last;
	bool found = false;
	unsigned int i;

	do {
		last = now;
		for (i = 0; i < worker->devices_served; i++) {
			if (ring_has_entries(&worker->devices[i]->ring)) {
				/* The look before this one found nothing: no clock read more. */
				if (!found)
					*found_ns = last;
				worker_serve_ring(worker->devices[i]);
				found = true;
			}
		}
		if (found)
			return true;
		if (__atomic_load_n(&worker->request_posted, __ATOMIC_RELAXED))
			return false;
		if (worker->watches.handler_fds > 0 && worker_epoll_ready(worker)) {
			*found_ns = last;
			return true;
		}
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
		now = monotonic_ns();
		if (now - last > POLL_PREEMPTED_NS) {
			__atomic_add_fetch(&polls_lost_cpu, 1, __ATOMIC_RELAXED);
			*preempted = true;
			return false;
		}
	} while (now < deadline);
	return false;
}

/*
 * Serves again the rings that stopped at an entry for want of memory: the
 * kernel raises no new event for that entry. Returns whether one is still
 * starved, and the worker then sleeps only STARVED_RETRY_MS.
 */
static bool worker_retry_starved(struct ring_worker *worker)
{
	bool starved = false;
	unsigned int i;

	for (i = 0; i < worker->devices_served; i++) {
		struct tcmu_device *dev = worker->devices[i];

		if (!ring_starved(&dev->ring))
			continue;
		worker_serve_ring(dev);
		starved |= ring_starved(&dev->ring);
	}
	return starved;
}

static void *worker_main(void *argument)
{
	struct ring_worker *worker = argument;
	struct epoll_event events[EVENTS_PER_WAIT];
	bool starved = false;

	worker->watches.owner = pthread_self();
	worker_tasks_adopt();
	for (;;) {
		bool control = false, polled = false, preempted = false;
		bool busy = worker_tasks_pending();
		uint64_t batch_end = monotonic_ns(), limit = worker_poll_limit_ns(), found_ns = 0;
		int count, i;

		/* ring_poll_us may have shrunk since the window was tuned. */
		if (worker->poll.window_ns > limit)
			worker->poll.window_ns = limit;
		/*
		 * Work found by polling is served already; epoll_wait then only
		 * collects control requests and the events of that work, without
		 * sleeping, so a busy ring cannot starve the control channel.
		 */
		if (!busy && worker->poll.window_ns > 0 && worker->devices_served > 0)
			polled = worker_poll(worker, &preempted, &found_ns);
		count = epoll_wait(worker->watches.epoll_fd, events, EVENTS_PER_WAIT,
				   polled || busy ? 0 : starved ? STARVED_RETRY_MS : -1);
		if (count < 0) {
			if (errno == EINTR)
				continue;
			tcmu_crit("worker epoll_wait: %m");
			return NULL;
		}
		/* The gap: from the end of the last batch to the next work, however found. */
		if (!starved && !busy && worker->devices_served > 0)
			worker_poll_tune(&worker->poll, (polled ? found_ns : monotonic_ns()) - batch_end,
					 preempted, limit);
		for (i = 0; i < count; i++) {
			struct worker_watch *watch = events[i].data.ptr;

			switch (watch->kind) {
			case WATCH_CONTROL:
				control = true;
				break;
			case WATCH_RING:
				worker_serve_ring(watch->dev);
				break;
			case WATCH_HANDLER:
				watch_fd_ready(watch, events[i].events);
				break;
			case WATCH_RETIRED:
				break;
			}
		}
		if (control)
			worker_inbox_take(&worker->inbox);
		/* After the batch: a device removed now is in no pending event. */
		if (control && !worker_handle_control(worker))
			return NULL;
		starved = worker_retry_starved(worker);
		watch_set_free_retired(&worker->watches);
		worker_tasks_run();
	}
}

bool worker_post(struct tcmu_device *dev, struct worker_task *task)
{
	struct ring_worker *worker = dev->worker;

	if (!worker || pthread_equal(worker->thread, pthread_self()))
		return false;
	worker_inbox_post(&worker->inbox, task);
	return true;
}

/* With worker->lock held: false when the request is still pending at the deadline. */
static bool worker_wait_done(struct ring_worker *worker, const struct timespec *deadline)
{
	int result = 0;

	while (!worker->request_done && result == 0)
		result = deadline ? pthread_cond_timedwait(&worker->done_cond, &worker->lock,
							  deadline)
				  : pthread_cond_wait(&worker->done_cond, &worker->lock);
	return worker->request_done;
}

/* -ETIMEDOUT when the worker did not take the request in time (see the top). */
int worker_call(struct ring_worker *worker, enum worker_request_kind request,
		struct tcmu_device *dev, worker_function_fn function, void *argument)
{
	struct timespec deadline, *limit = request == WORKER_STOP ? NULL : &deadline;
	uint64_t one = 1;
	int result = -ETIMEDOUT;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += CONTROL_TIMEOUT_MS / 1000;
	pthread_mutex_lock(&worker->control_serial);
	pthread_mutex_lock(&worker->lock);
	/* A request given up on earlier may still be pending. */
	if (!worker_wait_done(worker, limit))
		goto out;
	worker->request = request;
	worker->request_device = dev;
	worker->request_function = function;
	worker->request_argument = argument;
	worker->request_taken = false;
	worker->request_done = false;
	__atomic_store_n(&worker->request_posted, true, __ATOMIC_RELAXED);
	if (write(worker->control_fd, &one, sizeof(one)) != sizeof(one)) {
		result = -errno;
		worker->request_done = true;
		goto out;
	}
	if (!worker_wait_done(worker, limit)) {
		/* Taken: a function runs now and uses what the caller owns. */
		if (worker->request_taken)
			worker_wait_done(worker, NULL);
		else if (request == WORKER_ADD || request == WORKER_RUN)
			worker->request_done = true;	/* withdrawn */
	}
	if (worker->request_done && worker->request_taken)
		result = worker->request_result;
out:
	pthread_mutex_unlock(&worker->lock);
	pthread_mutex_unlock(&worker->control_serial);
	if (result == -ETIMEDOUT)
		tcmu_dev_err(dev, "ring worker %s has not answered for %d s (a handler call that "
			     "does not return?)", worker->name, CONTROL_TIMEOUT_MS / 1000);
	return result;
}

static int worker_init(struct ring_worker *worker)
{
	struct epoll_event event = { .events = EPOLLIN, .data.ptr = &worker->control_watch };
	pthread_condattr_t cond_attributes;

	memset(worker, 0, sizeof(*worker));
	worker->control_watch.kind = WATCH_CONTROL;
	worker->watches.epoll_fd = -1;
	pthread_mutex_init(&worker->lock, NULL);
	pthread_mutex_init(&worker->control_serial, NULL);
	pthread_condattr_init(&cond_attributes);
	pthread_condattr_setclock(&cond_attributes, CLOCK_MONOTONIC);
	pthread_cond_init(&worker->done_cond, &cond_attributes);
	pthread_condattr_destroy(&cond_attributes);
	worker->request_done = true;
	worker->watches.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	worker->control_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (worker->watches.epoll_fd < 0 || worker->control_fd < 0 ||
	    epoll_ctl(worker->watches.epoll_fd, EPOLL_CTL_ADD, worker->control_fd, &event) < 0)
		return -errno;
	worker_inbox_init(&worker->inbox, worker->control_fd);
	return 0;
}

void worker_release(struct ring_worker *worker)
{
	if (worker->watches.epoll_fd >= 0)
		close(worker->watches.epoll_fd);
	if (worker->control_fd >= 0)
		close(worker->control_fd);
	if (worker->control_fd >= 0)
		worker_inbox_destroy(&worker->inbox);
	pthread_cond_destroy(&worker->done_cond);
	pthread_mutex_destroy(&worker->control_serial);
	pthread_mutex_destroy(&worker->lock);
	free(worker->devices);
	watch_set_free_retired(&worker->watches);
}

int worker_start(struct ring_worker *worker, const char *name)
{
	int result = worker_init(worker);

	snprintf(worker->name, sizeof(worker->name), "%s", name);
	if (result == 0)
		result = -pthread_create(&worker->thread, NULL, worker_main, worker);
	if (result < 0) {
		worker_release(worker);
		return result;
	}
	/* For top -H, ps -L and gdb: which thread serves what. */
	pthread_setname_np(worker->thread, worker->name);
	return 0;
}
