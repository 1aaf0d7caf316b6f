/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker_task.c: the queue of tasks of one ring worker thread. A command
 * made of many handler ops (a VERIFY of the whole medium) queues its next
 * op here instead of issuing it at once, so that the worker first serves
 * its other rings and the control channel: they wait for one op, not for
 * the whole command. Only the worker thread touches its queue: no lock.
 */
#include <stddef.h>

#include "worker_task.h"

static __thread bool thread_is_worker;
static __thread struct worker_task *queue_head;
static __thread struct worker_task *queue_tail;

void worker_tasks_adopt(void)
{
	thread_is_worker = true;
}

bool worker_defer(struct worker_task *task)
{
	if (!thread_is_worker)
		return false;
	task->next = NULL;
	if (queue_tail)
		queue_tail->next = task;
	else
		queue_head = task;
	queue_tail = task;
	return true;
}

bool worker_tasks_pending(void)
{
	return queue_head != NULL;
}

void worker_tasks_run(void)
{
	struct worker_task *task = queue_head;

	queue_head = NULL;
	queue_tail = NULL;
	while (task) {
		struct worker_task *next = task->next;

		task->run(task);
		task = next;
	}
}
