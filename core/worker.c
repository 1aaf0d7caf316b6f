/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker.c: the threads that serve rings. There are as many workers as
 * CPUs, not as devices; each device is served by exactly one worker (the
 * least loaded when it attaches), which waits on the device's uio fd with
 * epoll and consumes the ring in batches. Handlers may complete requests
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
 * Adaptive polling (worker_poll.c): after a batch the worker watches its
 * rings' heads for a window before it sleeps. While handler fds are watched,
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

#include "tcmu_internal.h"
#include "worker_task.h"

#define EVENTS_PER_WAIT 64
/* How soon a ring that stopped for want of memory is served again. */
#define STARVED_RETRY_MS 1
#define CONTROL_TIMEOUT_MS 5000

enum worker_request_kind { WORKER_ADD, WORKER_STOP_RING, WORKER_REMOVE, WORKER_RUN, WORKER_STOP };

struct ring_worker {
	pthread_t thread;
	int control_fd;
	struct worker_watch control_watch;
	struct watch_set watches;	/* the epoll set and the handler fds in it */
	struct worker_inbox inbox;	/* ops other threads post (worker_post) */
	unsigned int device_count;	/* for placement; atomic */

	pthread_mutex_t lock;		/* the one pending control request, releases */
	pthread_cond_t done_cond;
	pthread_mutex_t control_serial;	/* one control request at a time */
	enum worker_request_kind request;
	bool request_posted;		/* atomic: ends a polling window early */
	struct tcmu_device *request_device;
	worker_function_fn request_function;	/* WORKER_RUN */
	void *request_argument;
	int request_result;
	bool request_taken;		/* the worker runs it now */
	bool request_done;		/* answered, withdrawn, or none posted */
	unsigned int index;		/* for log lines */

	/* Owned by the worker thread: the devices it serves, for polling. */
	struct tcmu_device **devices;
	unsigned int devices_served;
	unsigned int devices_capacity;
	uint64_t poll_ns;		/* the current window */
	/* Devices whose detach timed out: waiting (atomic count), drained (list). */
	unsigned int releases_pending;
	struct tcmu_device *releases;
};

static struct ring_worker *workers;
static unsigned int worker_count;
/* Stopped with devices still waiting for commands in flight (workers_stop). */
static struct ring_worker *abandoned_workers;

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

/*
 * WORKER_RUN: the function may call the handler (a flush): an asynchronous
 * handler submits what it queued in batch_done, as after a batch.
 */
static void worker_run_function(struct tcmu_device *dev, worker_function_fn function,
				void *argument)
{
	const struct tcmu_handler *handler = dev->handler;

	ring_batch_begin(&dev->ring);
	function(dev, argument);
	if (handler && handler->batch_done)
		handler->batch_done(dev);
	ring_batch_end(&dev->ring);
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
		worker_run_function(dev, worker->request_function, worker->request_argument);
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
 * every such ring. Returns true when it found work, or when the epoll set
 * has events for handler fds, which the caller collects without sleeping.
 */
static bool worker_poll(struct ring_worker *worker)
{
	uint64_t deadline = monotonic_ns() + worker->poll_ns;
	bool found = false;
	unsigned int i;

	do {
		for (i = 0; i < worker->devices_served; i++) {
			if (ring_has_entries(&worker->devices[i]->ring)) {
				worker_serve_ring(worker->devices[i]);
				found = true;
			}
		}
		if (found)
			return true;
		if (__atomic_load_n(&worker->request_posted, __ATOMIC_RELAXED))
			return false;
		if (worker->watches.handler_fds > 0 && worker_epoll_ready(worker))
			return true;
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	} while (monotonic_ns() < deadline);
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
		bool control = false, polled = false, busy = worker_tasks_pending();
		uint64_t sleep_start = 0;
		int count, i;

		/* The window's one clamp: after it grew, or ring_poll_us shrank. */
		if (worker->poll_ns > worker_poll_limit_ns())
			worker->poll_ns = worker_poll_limit_ns();
		/*
		 * Work found by polling is served already; epoll_wait then only
		 * collects control requests and the events of that work, without
		 * sleeping, so a busy ring cannot starve the control channel.
		 */
		if (!busy && worker->poll_ns > 0 && worker->devices_served > 0)
			polled = worker_poll(worker);
		if (!polled)
			sleep_start = monotonic_ns();
		count = epoll_wait(worker->watches.epoll_fd, events, EVENTS_PER_WAIT,
				   polled || busy ? 0 : starved ? STARVED_RETRY_MS : -1);
		if (count < 0) {
			if (errno == EINTR)
				continue;
			tcmu_crit("worker epoll_wait: %m");
			return NULL;
		}
		if (!polled && !starved && !busy && worker_poll_limit_ns() > 0)
			worker->poll_ns = worker_poll_adapt(worker->poll_ns, monotonic_ns() - sleep_start);
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

unsigned int workers_count(void)
{
	return worker_count;
}

/* With worker->lock held: false when the request is still pending at the deadline. */
static bool worker_wait_done(struct ring_worker *worker, const struct timespec *deadline)
{
	int ret = 0;

	while (!worker->request_done && ret == 0)
		ret = deadline ? pthread_cond_timedwait(&worker->done_cond, &worker->lock, deadline)
			       : pthread_cond_wait(&worker->done_cond, &worker->lock);
	return worker->request_done;
}

/* -ETIMEDOUT when the worker did not take the request in time (see the top). */
static int worker_call(struct ring_worker *worker, enum worker_request_kind request,
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
		tcmu_dev_err(dev, "ring worker %u has not answered for %d s (a handler call that "
			     "does not return?)", worker->index, CONTROL_TIMEOUT_MS / 1000);
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
		if (!chosen || __atomic_load_n(&workers[i].device_count, __ATOMIC_RELAXED) <
			       __atomic_load_n(&chosen->device_count, __ATOMIC_RELAXED))
			chosen = &workers[i];
	/* Set first: the handler may watch fds from the first command on. */
	dev->worker = chosen;
	dev->watch_set = &chosen->watches;
	ret = worker_call(chosen, WORKER_ADD, dev, NULL, NULL);
	if (ret < 0) {
		dev->worker = NULL;
		dev->watch_set = NULL;
		return ret;
	}
	__atomic_add_fetch(&chosen->device_count, 1, __ATOMIC_RELAXED);
	tcmu_dev_dbg(dev, "served by ring worker %u", chosen->index);
	return 0;
}

int worker_stop_ring(struct tcmu_device *dev)
{
	int ret;

	if (!dev->worker)
		return 0;
	ret = worker_call(dev->worker, WORKER_STOP_RING, dev, NULL, NULL);
	if (ret == -ETIMEDOUT)
		return ret;
	if (ret < 0)
		tcmu_dev_err(dev, "stop serving the ring: %s", strerror(-ret));
	return 0;
}

int worker_remove_device(struct tcmu_device *dev)
{
	struct ring_worker *worker = dev->worker;
	int ret;

	if (!worker) {
		/* Never served: the watches asked for in open() are only a list. */
		watch_list_free(dev);
		return 0;
	}
	ret = worker_call(worker, WORKER_REMOVE, dev, NULL, NULL);
	if (ret == -ETIMEDOUT)
		return ret;
	if (ret < 0)
		tcmu_dev_err(dev, "stop serving: %s", strerror(-ret));
	__atomic_sub_fetch(&worker->device_count, 1, __ATOMIC_RELAXED);
	dev->worker = NULL;
	return 0;
}

int worker_run(struct tcmu_device *dev, worker_function_fn function, void *argument)
{
	if (!dev->worker) {
		/* Not served yet (or any more): nothing else touches the ring. */
		function(dev, argument);
		return 0;
	}
	return worker_call(dev->worker, WORKER_RUN, dev, function, argument);
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

static void worker_release(struct ring_worker *worker)
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
		workers[i].index = i;
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

unsigned int workers_stop(void)
{
	unsigned int i, pending = 0;

	for (i = 0; i < worker_count; i++) {
		worker_call(&workers[i], WORKER_STOP, NULL, NULL, NULL);
		pthread_join(workers[i].thread, NULL);
		pending += __atomic_load_n(&workers[i].releases_pending, __ATOMIC_ACQUIRE);
	}
	if (pending) {
		/* Their late completions still post to the workers: those stay. */
		tcmu_err("%u device(s) still have commands in flight at exit: left open, their "
			 "handlers loaded", pending);
		abandoned_workers = workers;
	} else {
		for (i = 0; i < worker_count; i++)
			worker_release(&workers[i]);
		free(workers);
	}
	workers = NULL;
	worker_count = 0;
	return pending;
}
