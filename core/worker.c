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
 * Adaptive polling. Sleeping in epoll_wait costs a wakeup per batch (on
 * another CPU, an inter-processor interrupt and two context switches),
 * which dominates the latency of a command at low queue depth. So after a
 * batch the worker watches its rings' heads for a short window before it
 * sleeps. The window adapts as KVM's halt polling does: it grows while
 * commands keep arriving soon after the worker fell asleep (a longer window
 * would have caught them) and shrinks when it slept longer than the largest
 * window (polling only burnt CPU), so idle devices cost nothing. With one
 * online CPU polling is off: the submitter could not run while we spin.
 * While handler fds are watched, the window also ends when the epoll set
 * has an event, so their completions are not held back by it.
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

#define EVENTS_PER_WAIT 64
/* First window when polling starts to pay; it doubles from there. */
#define POLL_START_NS 10000ULL

enum worker_request_kind { WORKER_ADD, WORKER_STOP_RING, WORKER_REMOVE, WORKER_RUN, WORKER_STOP };

/* What an epoll entry of a worker stands for: its data points to one of these. */
enum watch_kind {
	WATCH_CONTROL,
	WATCH_RING,		/* a device's uio fd */
	WATCH_HANDLER,		/* a handler's fd (tcmu_device_watch_fd) */
	WATCH_RETIRED,		/* ended during this batch; freed after it */
};

struct worker_watch {
	enum watch_kind kind;
	struct tcmu_device *dev;
	int fd;
	uint32_t events;		/* TCMU_FD_*; 0: paused, out of the epoll set */
	bool in_epoll;
	struct worker_watch *next;	/* the device's handler watches; the retired list */
};

struct ring_worker {
	pthread_t thread;
	int epoll_fd;
	int control_fd;
	struct worker_watch control_watch;
	unsigned int device_count;	/* for placement; main thread only */

	pthread_mutex_t lock;		/* the one pending control request */
	pthread_cond_t done_cond;
	pthread_mutex_t control_serial;	/* one control request at a time */
	enum worker_request_kind request;
	bool request_posted;		/* atomic: ends a polling window early */
	struct tcmu_device *request_device;
	worker_function_fn request_function;	/* WORKER_RUN */
	void *request_argument;
	int request_result;
	bool request_done;

	/* Owned by the worker thread: the devices it serves, for polling. */
	struct tcmu_device **devices;
	unsigned int devices_served;
	unsigned int devices_capacity;
	uint64_t poll_ns;		/* the current window */
	unsigned int handler_fds;	/* handler watches in the epoll set */
	struct worker_watch *retired;	/* to free once no event can name them */
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

static bool on_worker_thread(const struct tcmu_device *dev)
{
	return dev->worker && pthread_equal(dev->worker->thread, pthread_self());
}

static uint32_t epoll_events_of(uint32_t events)
{
	return (events & TCMU_FD_READABLE ? EPOLLIN : 0) | (events & TCMU_FD_WRITABLE ? EPOLLOUT : 0);
}

/* Puts a handler watch in the epoll set as its events say. Worker thread. */
static int watch_apply(struct ring_worker *worker, struct worker_watch *watch)
{
	struct epoll_event event = { .events = epoll_events_of(watch->events), .data.ptr = watch };

	if (watch->events == 0) {
		/* Out of the set: epoll would still report a hang-up of a paused fd. */
		if (watch->in_epoll && epoll_ctl(worker->epoll_fd, EPOLL_CTL_DEL, watch->fd, NULL) < 0)
			return -errno;
		if (watch->in_epoll)
			worker->handler_fds--;
		watch->in_epoll = false;
		return 0;
	}
	if (epoll_ctl(worker->epoll_fd, watch->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, watch->fd,
		      &event) < 0)
		return -errno;
	if (!watch->in_epoll)
		worker->handler_fds++;
	watch->in_epoll = true;
	return 0;
}

/* Out of the epoll set, to be freed after the batch of events that may name it. */
static void watch_retire(struct ring_worker *worker, struct worker_watch *watch)
{
	/* A handler may have closed its fd already, which took it out of the set. */
	if (watch->in_epoll)
		epoll_ctl(worker->epoll_fd, EPOLL_CTL_DEL, watch->fd, NULL);
	if (watch->in_epoll && watch->kind == WATCH_HANDLER)
		worker->handler_fds--;
	watch->in_epoll = false;
	watch->kind = WATCH_RETIRED;
	watch->next = worker->retired;
	worker->retired = watch;
}

static void worker_free_retired(struct ring_worker *worker)
{
	while (worker->retired) {
		struct worker_watch *watch = worker->retired;

		worker->retired = watch->next;
		free(watch);
	}
}

static struct worker_watch **watch_find(struct tcmu_device *dev, int fd)
{
	struct worker_watch **link;

	for (link = &dev->watches; *link; link = &(*link)->next)
		if ((*link)->fd == fd)
			return link;
	return NULL;
}

int tcmu_device_watch_fd(struct tcmu_device *dev, int fd, uint32_t events)
{
	struct worker_watch **link, *watch;
	uint32_t previous;
	int ret;

	if (fd < 0 || (events & ~(TCMU_FD_READABLE | TCMU_FD_WRITABLE)) ||
	    !dev->handler || !dev->handler->fd_ready)
		return -EINVAL;
	/* Until the worker serves the device, the thread that opens it owns the list. */
	if (dev->worker && !on_worker_thread(dev))
		return -EPERM;
	link = watch_find(dev, fd);
	if (!link) {
		watch = calloc(1, sizeof(*watch));
		if (!watch)
			return -ENOMEM;
		watch->kind = WATCH_HANDLER;
		watch->dev = dev;
		watch->fd = fd;
		watch->events = events;
		if (dev->worker) {
			ret = watch_apply(dev->worker, watch);
			if (ret < 0) {
				free(watch);
				return ret;
			}
		}
		watch->next = dev->watches;
		dev->watches = watch;
		return 0;
	}
	watch = *link;
	previous = watch->events;
	watch->events = events;
	if (!dev->worker)
		return 0;
	ret = watch_apply(dev->worker, watch);
	if (ret < 0)
		watch->events = previous;
	return ret;
}

int tcmu_device_unwatch_fd(struct tcmu_device *dev, int fd)
{
	struct worker_watch **link, *watch;

	if (dev->worker && !on_worker_thread(dev))
		return -EPERM;
	link = watch_find(dev, fd);
	if (!link)
		return -ENOENT;
	watch = *link;
	*link = watch->next;
	if (dev->worker)
		watch_retire(dev->worker, watch);
	else
		free(watch);
	return 0;
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

static void worker_fd_ready(struct worker_watch *watch, uint32_t epoll_events)
{
	struct tcmu_device *dev = watch->dev;
	uint32_t events = 0;

	if (epoll_events & EPOLLIN)
		events |= TCMU_FD_READABLE;
	if (epoll_events & EPOLLOUT)
		events |= TCMU_FD_WRITABLE;
	if (epoll_events & (EPOLLERR | EPOLLHUP))
		events |= watch->events;
	events &= watch->events;
	if (!events)
		return;
	ring_batch_begin(&dev->ring);
	dev->handler->fd_ready(dev, watch->fd, events);
	if (dev->handler->batch_done)
		dev->handler->batch_done(dev);
	ring_batch_end(&dev->ring);
}

/* WORKER_ADD: the ring's uio fd and the watches the handler asked for in open(). */
static int worker_start_serving(struct ring_worker *worker, struct tcmu_device *dev)
{
	struct worker_watch *watch, *ring_watch;
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
	if (epoll_ctl(worker->epoll_fd, EPOLL_CTL_ADD, dev->uio_fd, &event) < 0) {
		result = -errno;
		worker_untrack_device(worker, dev);
		free(ring_watch);
		return result;
	}
	ring_watch->in_epoll = true;
	dev->ring_watch = ring_watch;
	for (watch = dev->watches; watch; watch = watch->next) {
		result = watch_apply(worker, watch);
		if (result < 0) {
			tcmu_dev_err(dev, "watch fd %d: %s", watch->fd, strerror(-result));
			break;
		}
	}
	if (result < 0) {
		for (watch = dev->watches; watch; watch = watch->next) {
			if (watch->in_epoll)
				epoll_ctl(worker->epoll_fd, EPOLL_CTL_DEL, watch->fd, NULL);
			if (watch->in_epoll)
				worker->handler_fds--;
			watch->in_epoll = false;
		}
		worker_untrack_device(worker, dev);
		watch_retire(worker, ring_watch);
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
	watch_retire(worker, dev->ring_watch);
	dev->ring_watch = NULL;
}

/* WORKER_REMOVE: the worker forgets the device. */
static void worker_forget_device(struct ring_worker *worker, struct tcmu_device *dev)
{
	worker_stop_serving_ring(worker, dev);
	while (dev->watches) {
		struct worker_watch *watch = dev->watches;

		dev->watches = watch->next;
		watch_retire(worker, watch);
	}
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

	pthread_mutex_lock(&worker->lock);
	if (worker->request_done) {
		pthread_mutex_unlock(&worker->lock);
		return true;
	}
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
		worker->request_function(dev, worker->request_argument);
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
	struct pollfd epoll_poll = { .fd = worker->epoll_fd, .events = POLLIN };

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
		if (worker->handler_fds > 0 && worker_epoll_ready(worker))
			return true;
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
			struct worker_watch *watch = events[i].data.ptr;

			switch (watch->kind) {
			case WATCH_CONTROL:
				control = true;
				break;
			case WATCH_RING:
				worker_serve_ring(watch->dev);
				break;
			case WATCH_HANDLER:
				worker_fd_ready(watch, events[i].events);
				break;
			case WATCH_RETIRED:
				break;
			}
		}
		/* After the batch: a device removed now is in no pending event. */
		if (control && !worker_handle_control(worker))
			return NULL;
		worker_free_retired(worker);
	}
}

unsigned int workers_count(void)
{
	return worker_count;
}

unsigned int workers_get_poll_limit(void)
{
	return (unsigned int)(__atomic_load_n(&poll_limit_ns, __ATOMIC_RELAXED) / 1000);
}

static int worker_call(struct ring_worker *worker, enum worker_request_kind request,
		       struct tcmu_device *dev, worker_function_fn function, void *argument)
{
	uint64_t one = 1;
	int result;

	pthread_mutex_lock(&worker->control_serial);
	pthread_mutex_lock(&worker->lock);
	worker->request = request;
	worker->request_device = dev;
	worker->request_function = function;
	worker->request_argument = argument;
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
	/* Set first: the handler may watch fds from the first command on. */
	dev->worker = chosen;
	ret = worker_call(chosen, WORKER_ADD, dev, NULL, NULL);
	if (ret < 0) {
		dev->worker = NULL;
		return ret;
	}
	chosen->device_count++;
	return 0;
}

void worker_stop_ring(struct tcmu_device *dev)
{
	int ret;

	if (!dev->worker)
		return;
	ret = worker_call(dev->worker, WORKER_STOP_RING, dev, NULL, NULL);
	if (ret < 0)
		tcmu_dev_err(dev, "stop serving the ring: %s", strerror(-ret));
}

void worker_remove_device(struct tcmu_device *dev)
{
	struct ring_worker *worker = dev->worker;
	int ret;

	if (!worker) {
		/* Never served: the watches asked for in open() are only a list. */
		while (dev->watches) {
			struct worker_watch *watch = dev->watches;

			dev->watches = watch->next;
			free(watch);
		}
		return;
	}
	ret = worker_call(worker, WORKER_REMOVE, dev, NULL, NULL);
	if (ret < 0)
		tcmu_dev_err(dev, "stop serving: %s", strerror(-ret));
	worker->device_count--;
	dev->worker = NULL;
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

	memset(worker, 0, sizeof(*worker));
	worker->control_watch.kind = WATCH_CONTROL;
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
	worker_free_retired(worker);
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
		worker_call(&workers[i], WORKER_STOP, NULL, NULL, NULL);
		pthread_join(workers[i].thread, NULL);
		worker_release(&workers[i]);
	}
	free(workers);
	workers = NULL;
	worker_count = 0;
}
