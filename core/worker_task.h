/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker_task.h: work a ring worker runs on its own thread once it has
 * served what is pending (worker_task.c). Its own header because the SCSI
 * layer embeds a task in its multi-step commands.
 */
#ifndef TCMU_WORKER_TASK_H
#define TCMU_WORKER_TASK_H

#include <stdbool.h>

struct worker_task {
	struct worker_task *next;
	void (*run)(struct worker_task *task);
};

/*
 * Called on a ring worker thread: queues task to run once the worker has
 * served the events pending now (rings, handler fds, control requests),
 * without sleeping. Returns false, queuing nothing, on any other thread.
 */
bool worker_defer(struct worker_task *task);

/* For worker.c: this thread is a ring worker from now on. */
void worker_tasks_adopt(void);
/* For worker.c: are tasks queued on this thread? */
bool worker_tasks_pending(void);
/* For worker.c: runs the tasks queued so far; those they queue wait for the next round. */
void worker_tasks_run(void);

#endif
