/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker_task.h: work a ring worker runs on its own thread once it has
 * served what is pending (worker_task.c). Its own header because the SCSI
 * layer embeds a task in its multi-step commands.
 */
#ifndef TCMU_WORKER_TASK_H
#define TCMU_WORKER_TASK_H

#include <pthread.h>
#include <stdbool.h>

struct worker_task {
	struct worker_task *next;
	void (*run)(struct worker_task *task);
};

/*
 * Tasks that other threads hand to one ring worker: a handler must be
 * called on the thread that serves its device (async-api), so a command
 * of one device that reads or writes another (EXTENDED COPY) posts the op
 * to that device's worker.
 */
struct worker_inbox {
	pthread_mutex_t lock;
	struct worker_task *head, *tail;
	int wake_fd;			/* the worker's control eventfd */
};

/*
 * Called on a ring worker thread: queues task to run once the worker has
 * served the events pending now (rings, handler fds, control requests),
 * without sleeping. Returns false, queuing nothing, on any other thread.
 */
bool worker_defer(struct worker_task *task);

/* For worker.c: an empty inbox that wakes the worker through wake_fd. */
void worker_inbox_init(struct worker_inbox *inbox, int wake_fd);
void worker_inbox_destroy(struct worker_inbox *inbox);
/* Any thread: queues task for the inbox's worker and wakes it. */
void worker_inbox_post(struct worker_inbox *inbox, struct worker_task *task);
/* For worker.c, on the worker thread: what was posted joins this round's tasks. */
void worker_inbox_take(struct worker_inbox *inbox);

/* For worker.c: this thread is a ring worker from now on. */
void worker_tasks_adopt(void);
/* For worker.c: are tasks queued on this thread? */
bool worker_tasks_pending(void);
/* For worker.c: runs the tasks queued so far; those they queue wait for the next round. */
void worker_tasks_run(void);

#endif
