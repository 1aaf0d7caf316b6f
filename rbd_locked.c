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
 * The lock calls wait for the cluster, so a handler-wide thread
 * (rbd_helper.c) takes the jobs in order; a finished job goes back to the
 * device's ring thread through the same queue and eventfd as librbd's
 * compare and writes (rbd_io.c), so this thread never touches a ring.
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

static struct rbd_helper locked_helper = RBD_HELPER_INITIALIZER;

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

/* On the helper thread. */
static void compare_and_write_run(struct rbd_helper_job *helper_job)
{
	struct rbd_locked_job *job = (struct rbd_locked_job *)helper_job;
	char *current = malloc(job->length);

	job->result = current ? compare_and_write_locked(job, current) : -ENOMEM;
	free(current);
	job->done(job);
}

int rbd_locked_submit(struct rbd_locked_job *job)
{
	job->helper.state = job->state;
	job->helper.run = compare_and_write_run;
	return rbd_helper_submit(&locked_helper, &job->helper);
}

void rbd_locked_forget(struct rbd_state *state)
{
	rbd_helper_forget(&locked_helper, state);
	if (state->locked_image)
		rbd_close(state->locked_image);
	state->locked_image = NULL;
}

void rbd_locked_stop(void)
{
	rbd_helper_stop(&locked_helper);
}
