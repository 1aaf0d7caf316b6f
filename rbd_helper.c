/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbd_helper.c: a handler-wide thread that runs, one after the other, the
 * jobs that must wait for the cluster in calls librbd has no asynchronous
 * form of (rbd_locked.c's compare and writes under the image's lock,
 * rbd_lba_status.c's allocation maps), so that no ring thread waits for
 * them and no device needs a thread of its own. A job hands its result back
 * to its device's ring thread itself, through the device's event fd
 * (rbd_io.c), so a helper thread never touches a ring. Started on first
 * use, joined when the handler is unloaded; a device that closes drops its
 * queued jobs and waits for its running one.
 */
#include "rbd.h"

static void *rbd_helper_main(void *argument)
{
	struct rbd_helper *helper = argument;
	struct rbd_helper_job *job;

	pthread_mutex_lock(&helper->lock);
	for (;;) {
		while (!helper->first && !helper->stopping)
			pthread_cond_wait(&helper->queued, &helper->lock);
		if (!helper->first)
			break;
		job = helper->first;
		helper->first = job->next;
		helper->running = job->state;
		pthread_mutex_unlock(&helper->lock);

		/* It may free the job: only the device is remembered. */
		job->run(job);

		pthread_mutex_lock(&helper->lock);
		helper->running = NULL;
		pthread_cond_broadcast(&helper->finished);
	}
	pthread_mutex_unlock(&helper->lock);
	return NULL;
}

int rbd_helper_submit(struct rbd_helper *helper, struct rbd_helper_job *job)
{
	struct rbd_helper_job **link = &helper->first;
	int result = 0;

	pthread_mutex_lock(&helper->lock);
	if (!helper->started) {
		result = -pthread_create(&helper->thread, NULL, rbd_helper_main, helper);
		helper->started = result == 0;
	}
	if (result == 0) {
		while (*link)
			link = &(*link)->next;
		job->next = NULL;
		*link = job;
		pthread_cond_signal(&helper->queued);
	}
	pthread_mutex_unlock(&helper->lock);
	return result;
}

void rbd_helper_forget(struct rbd_helper *helper, struct rbd_state *state)
{
	struct rbd_helper_job **link;

	pthread_mutex_lock(&helper->lock);
	/* Left in the device's list of requests, which frees them. */
	for (link = &helper->first; *link;) {
		if ((*link)->state == state)
			*link = (*link)->next;
		else
			link = &(*link)->next;
	}
	while (helper->running == state)
		pthread_cond_wait(&helper->finished, &helper->lock);
	pthread_mutex_unlock(&helper->lock);
}

void rbd_helper_stop(struct rbd_helper *helper)
{
	pthread_mutex_lock(&helper->lock);
	helper->stopping = true;
	pthread_cond_signal(&helper->queued);
	pthread_mutex_unlock(&helper->lock);
	if (helper->started)
		pthread_join(helper->thread, NULL);
	helper->started = false;
	helper->stopping = false;
}
