/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker_task.c: the queue of tasks of one ring worker thread. A command
 * made of many handler ops (a VERIFY of the whole medium) queues its next
 * op here instead of issuing it at once, so that the worker first serves
 * its other rings and the control channel: they wait for one op, not for
 * the whole command. Only the worker thread touches its queue: no lock.
 * Other threads post to a worker's inbox, under its lock.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

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

void worker_inbox_init(struct worker_inbox *inbox, int wake_fd)
{
	pthread_mutex_init(&inbox->lock, NULL);
	inbox->head = inbox->tail = NULL;
	inbox->wake_fd = wake_fd;
}

void worker_inbox_destroy(struct worker_inbox *inbox)
{
	pthread_mutex_destroy(&inbox->lock);
}

void worker_inbox_post(struct worker_inbox *inbox, struct worker_task *task)
{
	uint64_t one = 1;
	ssize_t written;

	task->next = NULL;
	pthread_mutex_lock(&inbox->lock);
	if (inbox->tail)
		inbox->tail->next = task;
	else
		inbox->head = task;
	inbox->tail = task;
	pthread_mutex_unlock(&inbox->lock);
	/* An eventfd write fails only when the counter would overflow: then it is set anyway. */
	do
		written = write(inbox->wake_fd, &one, sizeof(one));
	while (written < 0 && errno == EINTR);
}

void worker_inbox_take(struct worker_inbox *inbox)
{
	struct worker_task *task;

	pthread_mutex_lock(&inbox->lock);
	task = inbox->head;
	inbox->head = inbox->tail = NULL;
	pthread_mutex_unlock(&inbox->lock);
	while (task) {
		struct worker_task *next = task->next;

		worker_defer(task);
		task = next;
	}
}
