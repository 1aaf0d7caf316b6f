/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ring_worker.h: one ring worker thread, for the two files that make up
 * the workers: worker.c (the thread: its loop, its control channel) and
 * worker_pool.c (which thread serves which device: the shared pool, and
 * the threads of their own that devices of blocking handlers get).
 */
#ifndef TCMU_RING_WORKER_H
#define TCMU_RING_WORKER_H

#include "tcmu_internal.h"
#include "worker_task.h"

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
	char name[16];			/* the thread's: log lines, top -H */
	/* A device's own (TCMU_HANDLER_BLOCKING): in worker_pool.c's list of those. */
	struct ring_worker *next_own;

	/* Owned by the worker thread: the devices it serves, for polling. */
	struct tcmu_device **devices;
	unsigned int devices_served;
	unsigned int devices_capacity;
	struct poll_tuning poll;	/* the polling window (worker_poll.c) */
	/* Devices whose detach timed out: waiting (atomic count), drained (list). */
	unsigned int releases_pending;
	struct tcmu_device *releases;
};

/* Sets up a worker and starts its thread, named name (cut to 15 characters). 0 or -errno. */
int worker_start(struct ring_worker *worker, const char *name);
/* After its thread ended (WORKER_STOP and a join) or never started. */
void worker_release(struct ring_worker *worker);
/*
 * Posts a control request and waits for the worker's answer; -ETIMEDOUT
 * when the worker did not take it in time (see worker.c's top comment).
 */
int worker_call(struct ring_worker *worker, enum worker_request_kind request,
		struct tcmu_device *dev, worker_function_fn function, void *argument);

#endif
