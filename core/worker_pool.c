/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker_pool.c: which ring worker thread serves which device. The shared
 * pool has as many workers as CPUs; a device goes to the least loaded one
 * when it attaches. A device of a handler flagged TCMU_HANDLER_BLOCKING
 * gets a worker thread of its own instead ("tcmu-dev-<uio minor>"), from
 * attach to detach, so that a read, write or flush that blocks for long
 * holds only that device's commands, not those of every device sharing
 * its worker. Each such device costs a thread; there is no limit beyond
 * the number of devices, since the kernel already bounds those. A device
 * whose detach timed out keeps its thread until the daemon stops.
 *
 * The threads themselves (their loop and control channel) are worker.c's.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring_worker.h"

static struct ring_worker *workers;
static unsigned int worker_count;
/* Stopped with devices still waiting for commands in flight (workers_stop). */
static struct ring_worker *abandoned_workers;

/* The workers of their own, for workers_stop(); main thread. */
static struct ring_worker *own_workers;

static bool handler_blocks(const struct tcmu_device *dev)
{
	return dev->handler && (dev->handler->flags & TCMU_HANDLER_BLOCKING);
}

/* Signals belong to the main loop; workers never take them. */
static int start_worker_thread(struct ring_worker *worker, const char *name)
{
	sigset_t all, previous;
	int result;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &previous);
	result = worker_start(worker, name);
	pthread_sigmask(SIG_SETMASK, &previous, NULL);
	return result;
}

/* Stops the thread of a worker that serves nothing any more; frees it. */
static void end_own_worker(struct ring_worker *worker)
{
	struct ring_worker **link;

	worker_call(worker, WORKER_STOP, NULL, NULL, NULL);
	pthread_join(worker->thread, NULL);
	for (link = &own_workers; *link; link = &(*link)->next_own) {
		if (*link == worker) {
			*link = worker->next_own;
			break;
		}
	}
	worker_release(worker);
	free(worker);
}

static struct ring_worker *start_own_worker(struct tcmu_device *dev, int *ret_error)
{
	struct ring_worker *worker = calloc(1, sizeof(*worker));
	char name[32];

	if (!worker) {
		*ret_error = -ENOMEM;
		return NULL;
	}
	snprintf(name, sizeof(name), "tcmu-dev-%u", dev->uio_minor);
	*ret_error = start_worker_thread(worker, name);
	if (*ret_error < 0) {
		free(worker);
		return NULL;
	}
	worker->next_own = own_workers;
	own_workers = worker;
	return worker;
}

static struct ring_worker *least_loaded_worker(void)
{
	struct ring_worker *chosen = NULL;

	for (unsigned int i = 0; i < worker_count; i++)
		if (!chosen || __atomic_load_n(&workers[i].device_count, __ATOMIC_RELAXED) <
			       __atomic_load_n(&chosen->device_count, __ATOMIC_RELAXED))
			chosen = &workers[i];
	return chosen;
}

int worker_add_device(struct tcmu_device *dev)
{
	const bool own = handler_blocks(dev);
	struct ring_worker *chosen;
	int result = 0;

	if (!worker_count)
		return -ESRCH;
	chosen = own ? start_own_worker(dev, &result) : least_loaded_worker();
	if (!chosen) {
		tcmu_dev_err(dev, "cannot start the device's own ring thread: %s", strerror(-result));
		return result;
	}
	/* Set first: the handler may watch fds from the first command on. */
	dev->worker = chosen;
	dev->watch_set = &chosen->watches;
	result = worker_call(chosen, WORKER_ADD, dev, NULL, NULL);
	if (result < 0) {
		dev->worker = NULL;
		dev->watch_set = NULL;
		/* Not taken in time: the thread may still take it, and must stay. */
		if (own && result != -ETIMEDOUT)
			end_own_worker(chosen);
		return result;
	}
	__atomic_add_fetch(&chosen->device_count, 1, __ATOMIC_RELAXED);
	tcmu_dev_dbg(dev, "served by ring worker %s", chosen->name);
	return 0;
}

int worker_stop_ring(struct tcmu_device *dev)
{
	int result;

	if (!dev->worker)
		return 0;
	result = worker_call(dev->worker, WORKER_STOP_RING, dev, NULL, NULL);
	if (result == -ETIMEDOUT)
		return result;
	if (result < 0)
		tcmu_dev_err(dev, "stop serving the ring: %s", strerror(-result));
	return 0;
}

int worker_remove_device(struct tcmu_device *dev)
{
	struct ring_worker *worker = dev->worker;
	int result;

	if (!worker) {
		/* Never served: the watches asked for in open() are only a list. */
		watch_list_free(dev);
		return 0;
	}
	result = worker_call(worker, WORKER_REMOVE, dev, NULL, NULL);
	if (result == -ETIMEDOUT)
		return result;
	if (result < 0)
		tcmu_dev_err(dev, "stop serving: %s", strerror(-result));
	__atomic_sub_fetch(&worker->device_count, 1, __ATOMIC_RELAXED);
	dev->worker = NULL;
	if (handler_blocks(dev))
		end_own_worker(worker);
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

unsigned int workers_count(void)
{
	return worker_count;
}

int workers_start(unsigned int count)
{
	unsigned int i;
	int result = 0;

	if (count == 0)
		count = 1;
	workers = calloc(count, sizeof(*workers));
	if (!workers)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		char name[32];

		snprintf(name, sizeof(name), "tcmu-ring-%u", i);
		result = start_worker_thread(&workers[i], name);
		if (result < 0)
			break;
		worker_count++;
	}
	if (result < 0) {
		tcmu_err("cannot start ring worker %u: %s", i, strerror(-result));
		workers_stop();
	}
	return result;
}

/* Stops and joins a worker's thread; returns its devices still waiting for commands. */
static unsigned int stop_thread(struct ring_worker *worker)
{
	worker_call(worker, WORKER_STOP, NULL, NULL, NULL);
	pthread_join(worker->thread, NULL);
	return __atomic_load_n(&worker->releases_pending, __ATOMIC_ACQUIRE);
}

unsigned int workers_stop(void)
{
	unsigned int i, pending = 0;
	struct ring_worker *own, *next;

	for (i = 0; i < worker_count; i++)
		pending += stop_thread(&workers[i]);
	/* Left by a detach that timed out: released since, or still waiting (those stay). */
	own = own_workers;
	own_workers = NULL;
	for (; own; own = next) {
		unsigned int own_pending = stop_thread(own);

		next = own->next_own;
		pending += own_pending;
		if (own_pending) {
			own->next_own = own_workers;
			own_workers = own;
		} else {
			worker_release(own);
			free(own);
		}
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
