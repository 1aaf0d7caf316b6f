/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fd_watch.c: the file descriptors that asynchronous handlers have their
 * device's ring worker wait for (tcmu_device_watch_fd), and the tagged
 * epoll entries of a worker. Each entry's data points to a watch that says
 * what it is: the worker's control channel, a ring, or a handler's fd.
 *
 * Threads. Before a device is served, its watches are a list that the
 * thread opening it owns; from then on only the worker thread changes
 * them, which is why the API refuses other threads. A watch ended while
 * the worker handles a batch of events may still be named by a later
 * event of that batch: it is retired (marked, out of the set) and freed
 * only after the batch.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "tcmu_internal.h"

static uint32_t epoll_events_of(uint32_t events)
{
	return (events & TCMU_FD_READABLE ? EPOLLIN : 0) | (events & TCMU_FD_WRITABLE ? EPOLLOUT : 0);
}

/* Puts a handler watch in the set, or out of it, as its events say. */
static int watch_set_apply(struct watch_set *set, struct worker_watch *watch)
{
	struct epoll_event event = { .events = epoll_events_of(watch->events), .data.ptr = watch };

	if (watch->events == 0) {
		/* Out of the set: epoll would still report a hang-up of a paused fd. */
		if (watch->in_epoll && epoll_ctl(set->epoll_fd, EPOLL_CTL_DEL, watch->fd, NULL) < 0)
			return -errno;
		if (watch->in_epoll)
			set->handler_fds--;
		watch->in_epoll = false;
		return 0;
	}
	if (epoll_ctl(set->epoll_fd, watch->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, watch->fd,
		      &event) < 0)
		return -errno;
	if (!watch->in_epoll)
		set->handler_fds++;
	watch->in_epoll = true;
	return 0;
}

/* Out of the set, as watch_set_apply() with no events, whatever happens to the fd. */
static void watch_set_leave(struct watch_set *set, struct worker_watch *watch)
{
	/* A handler may have closed its fd already, which took it out of the set. */
	if (watch->in_epoll)
		epoll_ctl(set->epoll_fd, EPOLL_CTL_DEL, watch->fd, NULL);
	if (watch->in_epoll && watch->kind == WATCH_HANDLER)
		set->handler_fds--;
	watch->in_epoll = false;
}

void watch_set_retire(struct watch_set *set, struct worker_watch *watch)
{
	watch_set_leave(set, watch);
	watch->kind = WATCH_RETIRED;
	watch->next = set->retired;
	set->retired = watch;
}

void watch_set_free_retired(struct watch_set *set)
{
	while (set->retired) {
		struct worker_watch *watch = set->retired;

		set->retired = watch->next;
		free(watch);
	}
}

int watch_set_add_device(struct watch_set *set, struct tcmu_device *dev)
{
	struct worker_watch *watch;
	int result;

	for (watch = dev->watches; watch; watch = watch->next) {
		result = watch_set_apply(set, watch);
		if (result < 0) {
			tcmu_dev_err(dev, "watch fd %d: %s", watch->fd, strerror(-result));
			for (watch = dev->watches; watch; watch = watch->next)
				watch_set_leave(set, watch);
			return result;
		}
	}
	return 0;
}

void watch_set_remove_device(struct watch_set *set, struct tcmu_device *dev)
{
	while (dev->watches) {
		struct worker_watch *watch = dev->watches;

		dev->watches = watch->next;
		watch_set_retire(set, watch);
	}
}

void watch_list_free(struct tcmu_device *dev)
{
	while (dev->watches) {
		struct worker_watch *watch = dev->watches;

		dev->watches = watch->next;
		free(watch);
	}
}

void watch_fd_ready(struct worker_watch *watch, uint32_t epoll_events)
{
	struct tcmu_device *dev = watch->dev;
	uint32_t events = 0;

	if (epoll_events & EPOLLIN)
		events |= TCMU_FD_READABLE;
	if (epoll_events & EPOLLOUT)
		events |= TCMU_FD_WRITABLE;
	/* The handler's read or write on the fd meets the error. */
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

/* ---- tcmu_device_watch_fd() and tcmu_device_unwatch_fd() of libtcmu.c ---- */

static bool watch_caller_allowed(const struct tcmu_device *dev)
{
	/* Until the worker serves the device, the thread that opens it owns the list. */
	return !dev->watch_set || pthread_equal(dev->watch_set->owner, pthread_self());
}

static struct worker_watch **watch_find(struct tcmu_device *dev, int fd)
{
	struct worker_watch **link;

	for (link = &dev->watches; *link; link = &(*link)->next)
		if ((*link)->fd == fd)
			return link;
	return NULL;
}

int watch_fd_set(struct tcmu_device *dev, int fd, uint32_t events)
{
	struct worker_watch **link, *watch;
	uint32_t previous;
	int result;

	if (fd < 0 || (events & ~(TCMU_FD_READABLE | TCMU_FD_WRITABLE)) ||
	    !dev->handler || !dev->handler->fd_ready)
		return -EINVAL;
	if (!watch_caller_allowed(dev))
		return -EPERM;
	link = watch_find(dev, fd);
	if (link) {
		watch = *link;
		previous = watch->events;
		watch->events = events;
		result = dev->watch_set ? watch_set_apply(dev->watch_set, watch) : 0;
		if (result < 0)
			watch->events = previous;
		return result;
	}
	watch = calloc(1, sizeof(*watch));
	if (!watch)
		return -ENOMEM;
	watch->kind = WATCH_HANDLER;
	watch->dev = dev;
	watch->fd = fd;
	watch->events = events;
	result = dev->watch_set ? watch_set_apply(dev->watch_set, watch) : 0;
	if (result < 0) {
		free(watch);
		return result;
	}
	watch->next = dev->watches;
	dev->watches = watch;
	return 0;
}

int watch_fd_remove(struct tcmu_device *dev, int fd)
{
	struct worker_watch **link, *watch;

	if (!watch_caller_allowed(dev))
		return -EPERM;
	link = watch_find(dev, fd);
	if (!link)
		return -ENOENT;
	watch = *link;
	*link = watch->next;
	if (dev->watch_set)
		watch_set_retire(dev->watch_set, watch);
	else
		free(watch);
	return 0;
}
