/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbd_locked.c: COMPARE AND WRITE that librbd cannot do in one OSD
 * operation (more than one 512-byte sector), made atomic against every
 * client of the image by holding the image's exclusive lock while reading,
 * comparing and writing.
 *
 * librbd's rbd_lock_acquire turns the image handle's lock policy from
 * automatic (give the lock up when another client asks for it) to explicit
 * for good: while it holds the lock, another client's write that needs the
 * lock fails with -EROFS (the owner refuses to release), and after
 * rbd_lock_release the handle's own writes fail with -EROFS instead of
 * taking the lock back. So the locked compare and writes go through a
 * second handle of the image, opened on first use, and the device's own
 * handle keeps its automatic lock for the other commands; the core holds
 * the device's write gate alone around a compare and write, so that handle
 * has no write in flight to lose the lock under. The handlers' -EROFS from
 * another client's hold is BUSY (rbd_io.c), retried by the initiator.
 *
 * The lock calls wait for the cluster, so one handler-wide thread takes the
 * jobs in order; a finished job goes back to the device's ring thread
 * through the same queue and eventfd as librbd's compare and writes
 * (rbd_io.c), so this thread never touches a ring.
 */
#include "rbd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Another client holding the lock explicitly: tries, this far apart. */
#define LOCK_TRIES 20
#define LOCK_RETRY_NS 50000000L

static pthread_mutex_t locked_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t locked_queued = PTHREAD_COND_INITIALIZER;
static pthread_cond_t locked_finished = PTHREAD_COND_INITIALIZER;
/* The jobs waiting, oldest first: a few at most (one per device's write gate). */
static struct rbd_locked_job *locked_first;
/* The device whose job runs (the job may be freed once done). */
static struct rbd_state *locked_running;
static pthread_t locked_thread;
static bool locked_started;
static bool locked_stopping;

/* The image's exclusive lock for this device's second handle, waiting out short holds. */
static int lock_image(struct rbd_state *state)
{
	const struct timespec pause = { .tv_nsec = LOCK_RETRY_NS };
	int result = -EROFS;

	for (int tries = 0; tries < LOCK_TRIES && result == -EROFS; tries++) {
		if (tries)
			nanosleep(&pause, NULL);
		result = rbd_lock_acquire(state->locked_image, RBD_LOCK_MODE_EXCLUSIVE);
	}
	return result;
}

static size_t first_difference(const char *a, const char *b, size_t length)
{
	size_t at = 0;

	while (at < length && a[at] == b[at])
		at++;
	return at;
}

/* Reads, compares and writes under the lock: 0, -EILSEQ (job->mismatch) or -errno. */
static ssize_t compare_and_write_locked(struct rbd_locked_job *job, char *current)
{
	struct rbd_state *state = job->state;
	ssize_t result;
	int released;

	if (!state->locked_image) {
		result = rbd_open(state->ioctx, state->config.image, &state->locked_image, NULL);
		if (result < 0) {
			state->locked_image = NULL;
			return result;
		}
	}
	result = lock_image(state);
	if (result < 0)
		return result;
	result = rbd_read(state->locked_image, job->offset, job->length, current);
	if (result >= 0 && (uint64_t)result != job->length)
		result = -EIO;
	if (result >= 0) {
		job->mismatch = first_difference(current, job->buffer, job->length);
		if (job->mismatch < job->length)
			result = -EILSEQ;
	}
	if (result >= 0) {
		result = rbd_write(state->locked_image, job->offset, job->length,
				   job->buffer + job->length);
		if (result >= 0 && (uint64_t)result != job->length)
			result = -EIO;
	}
	released = rbd_lock_release(state->locked_image);
	if (released < 0 && result >= 0 && released != -ESHUTDOWN)
		tcmu_dev_err(job->dev, "releasing the exclusive lock of image '%s': %s",
			     state->config.name, strerror(-released));
	return result < 0 ? result : 0;
}

static void *locked_thread_main(void *argument)
{
	struct rbd_locked_job *job;
	char *current;

	(void)argument;
	pthread_mutex_lock(&locked_lock);
	for (;;) {
		while (!locked_first && !locked_stopping)
			pthread_cond_wait(&locked_queued, &locked_lock);
		if (!locked_first)
			break;
		job = locked_first;
		locked_first = job->next;
		locked_running = job->state;
		pthread_mutex_unlock(&locked_lock);

		current = malloc(job->length);
		job->result = current ? compare_and_write_locked(job, current) : -ENOMEM;
		free(current);
		job->done(job);

		pthread_mutex_lock(&locked_lock);
		locked_running = NULL;
		pthread_cond_broadcast(&locked_finished);
	}
	pthread_mutex_unlock(&locked_lock);
	return NULL;
}

int rbd_locked_submit(struct rbd_locked_job *job)
{
	struct rbd_locked_job **link = &locked_first;
	int result = 0;

	pthread_mutex_lock(&locked_lock);
	if (!locked_started) {
		result = -pthread_create(&locked_thread, NULL, locked_thread_main, NULL);
		locked_started = result == 0;
	}
	if (result == 0) {
		while (*link)
			link = &(*link)->next;
		job->next = NULL;
		*link = job;
		pthread_cond_signal(&locked_queued);
	}
	pthread_mutex_unlock(&locked_lock);
	return result;
}

void rbd_locked_forget(struct rbd_state *state)
{
	struct rbd_locked_job **link;

	pthread_mutex_lock(&locked_lock);
	/* Left in the device's list of requests, which frees them. */
	for (link = &locked_first; *link;) {
		if ((*link)->state == state)
			*link = (*link)->next;
		else
			link = &(*link)->next;
	}
	while (locked_running == state)
		pthread_cond_wait(&locked_finished, &locked_lock);
	pthread_mutex_unlock(&locked_lock);
	if (state->locked_image)
		rbd_close(state->locked_image);
	state->locked_image = NULL;
}

void rbd_locked_stop(void)
{
	pthread_mutex_lock(&locked_lock);
	locked_stopping = true;
	pthread_cond_signal(&locked_queued);
	pthread_mutex_unlock(&locked_lock);
	if (locked_started)
		pthread_join(locked_thread, NULL);
	locked_started = false;
	locked_stopping = false;
}
