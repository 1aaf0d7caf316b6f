/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbd_io.c: the rbd handler's commands as asynchronous librbd requests,
 * any number in flight. librbd signals completions on an eventfd
 * (rbd_set_image_notification) that the device's ring thread watches;
 * rbd_fd_ready collects them (rbd_poll_io_events) and completes the
 * commands there, so no librbd thread touches the ring. The librbd cache is
 * off, so librbd completes a write once the OSDs have committed it: a FUA
 * write needs nothing more (a flush after each would wait for every write
 * in flight), and SYNCHRONIZE CACHE is a flush. UNMAP is
 * rbd_aio_write_zeroes, which removes whole objects (rbd du shows the space
 * freed) and zeros partial ones, so the range reads as zeros as the core
 * promises (a discard may skip partial objects). GET LBA STATUS reports
 * the objects the image has, asked on rbd_lba_status.c's thread and
 * completed through the same queue as the compare and writes below.
 *
 * COMPARE AND WRITE goes to rbd_aio_compare_and_write where librbd 16.2
 * takes the extent (inside one 512-byte sector and one stripe unit: one
 * block of a 512-byte-block device): the OSD compares and writes in one
 * operation on the object, atomic against every client of the image.
 * librbd never posts those completions to the event socket (its C API
 * submits them as not "native async"), so a callback only queues the
 * request on state->compared and raises event_fd; the ring thread
 * completes it there. Longer extents hold the image's exclusive lock while
 * rbd_locked.c reads, compares and writes, and complete the same way. A
 * gateway (rbd_alua.c) leaves them to the core's read, compare and write:
 * the active one holds the lock throughout, so no other client writes in
 * between (or breaks the lock first, which fences this one); an image
 * without the exclusive-lock feature leaves them to the core too, atomic
 * against this daemon's commands only.
 *
 * Faults: librados's rados_osd_op_timeout does not bound a command, as
 * librbd chains several requests for one write (object map, exclusive
 * lock, data) and waits without a limit while it reacquires its lock. So
 * each command has its own deadline, osd_op_timeout after it arrived, on
 * a timerfd the ring thread watches: a command still waiting then gets
 * BUSY (the initiator retries) and its librbd request is left to finish on
 * memory the handler owns (reads go through a buffer of their own), so
 * that a late answer never touches the ring. The device's state says
 * reconnecting until the cluster answers again. A client the cluster
 * blocklisted (another gateway broke its lock) gets -ESHUTDOWN for
 * everything from then on, so no write gets through, and submits nothing
 * more; the core answers it with NOT READY, TARGET PORT IN UNAVAILABLE
 * STATE, so that the initiator fails this path and goes on through
 * another gateway (a gateway then rejoins: rbd_rejoin.c).
 */
#include "rbd.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* Completions collected, or deadlines expired, per round. */
#define RBD_POLL_BATCH 32
/* librbd's unit for compare and write. */
#define RBD_SECTOR_SIZE 512u

enum rbd_io_kind {
	RBD_IO_READ,
	RBD_IO_WRITE,
	RBD_IO_FLUSH,
	RBD_IO_ZEROES,
	RBD_IO_COMPARE_AND_WRITE,
	RBD_IO_LOCKED_COMPARE_AND_WRITE,	/* rbd_locked.c's */
	RBD_IO_LBA_STATUS,			/* rbd_lba_status.c's */
};

static const char *const rbd_io_kind_names[] = {
	"read", "write", "flush", "unmap", "compare and write", "locked compare and write",
	"allocation map query",
};

/* One command's librbd request, from submission until librbd answered. */
struct rbd_io {
	struct tcmu_device *dev;
	struct rbd_state *state;
	/* NULL once the command was answered at its deadline. */
	struct tcmu_request *req;
	struct rbd_io *older, *newer;	/* rbd_state.oldest ... newest */
	uint64_t deadline;		/* CLOCK_MONOTONIC ns; 0: none */
	enum rbd_io_kind kind;
	uint64_t offset;
	uint64_t length;
	/*
	 * Reads with a deadline: librbd's data, copied to iov on time.
	 * Compare and write: the data to compare, then the data to write.
	 */
	char *buffer;
	/* Compare and write: librbd's answer, collected on the ring thread. */
	rbd_completion_t completion;
	struct rbd_io *next_compared;	/* rbd_state.compared */
	uint64_t mismatch;		/* librbd's offset of the first differing byte */
	struct rbd_locked_job locked;	/* RBD_IO_LOCKED_COMPARE_AND_WRITE */
	struct rbd_lba_status_job lba_status;	/* RBD_IO_LBA_STATUS */
	size_t iov_count;
	struct iovec iov[];
};

uint64_t rbd_now(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* Arms the timer for the oldest command still waiting. Under state->lock. */
static void rbd_arm_timer(struct tcmu_device *dev, struct rbd_state *state)
{
	struct itimerspec when = { 0 };
	struct rbd_io *io = state->oldest;

	while (io && !io->req)
		io = io->newer;
	if (io) {
		when.it_value.tv_sec = (time_t)(io->deadline / 1000000000u);
		when.it_value.tv_nsec = (long)(io->deadline % 1000000000u);
	} else if (!state->timer_armed) {
		return;
	}
	if (timerfd_settime(state->timer_fd, TFD_TIMER_ABSTIME, &when, NULL) < 0)
		tcmu_dev_err(dev, "arming the command deadline timer: %m");
	state->timer_armed = io != NULL;
}

static void rbd_link(struct rbd_state *state, struct rbd_io *io)
{
	io->older = state->newest;
	io->newer = NULL;
	if (state->newest)
		state->newest->newer = io;
	else
		state->oldest = io;
	state->newest = io;
}

static void rbd_unlink(struct rbd_state *state, struct rbd_io *io)
{
	if (io->older)
		io->older->newer = io->newer;
	else
		state->oldest = io->newer;
	if (io->newer)
		io->newer->older = io->older;
	else
		state->newest = io->older;
}

static void rbd_io_free(struct rbd_io *io)
{
	free(io->buffer);
	free(io);
}

/* Whether the cluster keeps commands waiting; the device's state says it once. */
static void rbd_set_late(struct tcmu_device *dev, struct rbd_state *state, bool late)
{
	char reason[128];
	bool changed;

	pthread_mutex_lock(&state->lock);
	changed = state->cluster_late != late && !state->blocklisted;
	if (changed)
		state->cluster_late = late;
	pthread_mutex_unlock(&state->lock);
	if (!changed)
		return;
	if (late) {
		snprintf(reason, sizeof(reason), "the Ceph cluster did not answer within %u s: "
			 "commands get BUSY until it does", state->config.osd_op_timeout);
		tcmu_device_set_state(dev, TCMU_DEVICE_STATE_RECONNECTING, reason);
	} else {
		tcmu_device_set_state(dev, TCMU_DEVICE_STATE_OPEN, "the Ceph cluster answers again");
	}
}

/* The result a command gets for librbd's result. */
static int rbd_command_result(struct tcmu_device *dev, struct rbd_state *state,
			      const struct rbd_io *io, ssize_t result)
{
	if (result >= 0 || result == -EILSEQ) {	/* EILSEQ: a miscompare, answered */
		rbd_set_late(dev, state, false);
		return (int)(result < 0 ? result : 0);
	}
	if (result == -ETIMEDOUT) {
		rbd_set_late(dev, state, true);
		return -EAGAIN;
	}
	/*
	 * Another client holds the lock for a compare and write of its own
	 * (rbd_locked.c): a moment later the write gets through. A gateway
	 * without the lock is standby and gets no writes.
	 */
	if (result == -EROFS && !state->config.gateway_count)
		return -EAGAIN;
	if (result == -ESHUTDOWN) {
		rbd_fenced(dev, state);
		return -ESHUTDOWN;
	}
	tcmu_dev_err(dev, "%s of %" PRIu64 " bytes at %" PRIu64 ": %s",
		     rbd_io_kind_names[io->kind], io->length, io->offset, strerror((int)-result));
	return (int)result;
}

/*
 * librbd's thread or rbd_locked.c's answered a compare and write: the ring
 * thread completes it (rbd_fd_ready), woken through the event fd it watches.
 */
static void rbd_queue_compared(struct rbd_io *io)
{
	struct rbd_state *state = io->state;
	uint64_t one = 1;

	pthread_mutex_lock(&state->lock);
	io->next_compared = state->compared;
	state->compared = io;
	pthread_mutex_unlock(&state->lock);
	/* Fails only when the counter would overflow: the fd is readable then anyway. */
	if (write(state->event_fd, &one, sizeof(one)) < 0)
		return;
}

static void rbd_compare_answered(rbd_completion_t completion, void *argument)
{
	(void)completion;
	rbd_queue_compared(argument);
}

static void rbd_locked_done(struct rbd_locked_job *job)
{
	rbd_queue_compared((struct rbd_io *)((char *)job - offsetof(struct rbd_io, locked)));
}

static struct rbd_io *rbd_lba_status_io(struct rbd_lba_status_job *job)
{
	return (struct rbd_io *)((char *)job - offsetof(struct rbd_io, lba_status));
}

static bool rbd_lba_status_answered(struct rbd_lba_status_job *job)
{
	struct rbd_io *io = rbd_lba_status_io(job);
	bool answered;

	pthread_mutex_lock(&io->state->lock);
	answered = !io->req;
	pthread_mutex_unlock(&io->state->lock);
	return answered;
}

static void rbd_lba_status_done(struct rbd_lba_status_job *job)
{
	rbd_queue_compared(rbd_lba_status_io(job));
}

/* Hands io, linked, to librbd: 0 or -errno (io is then still linked). */
static int rbd_submit(struct rbd_state *state, struct rbd_io *io)
{
	rbd_completion_t completion;
	int result;

	if (io->kind == RBD_IO_LOCKED_COMPARE_AND_WRITE) {
		io->locked = (struct rbd_locked_job){ .dev = io->dev, .state = state,
						      .offset = io->offset, .length = io->length,
						      .buffer = io->buffer, .done = rbd_locked_done };
		return rbd_locked_submit(&io->locked);
	}
	if (io->kind == RBD_IO_LBA_STATUS) {
		io->lba_status = (struct rbd_lba_status_job){ .offset = io->offset,
							      .length = io->length,
							      .answered = rbd_lba_status_answered,
							      .done = rbd_lba_status_done };
		return rbd_lba_status_submit(&io->lba_status, state);
	}
	result = rbd_aio_create_completion(io, io->kind == RBD_IO_COMPARE_AND_WRITE ?
					   rbd_compare_answered : NULL, &completion);
	if (result < 0)
		return result;
	switch (io->kind) {
	case RBD_IO_READ:
		if (io->buffer)
			result = rbd_aio_read(state->image, io->offset, io->length, io->buffer,
					      completion);
		else
			result = rbd_aio_readv(state->image, io->iov, (int)io->iov_count,
					       io->offset, completion);
		break;
	case RBD_IO_WRITE:
		result = rbd_aio_writev(state->image, io->iov, (int)io->iov_count, io->offset,
					completion);
		break;
	case RBD_IO_FLUSH:
		result = rbd_aio_flush(state->image, completion);
		break;
	case RBD_IO_ZEROES:
		result = rbd_aio_write_zeroes(state->image, io->offset, io->length, completion,
					      0, 0);
		break;
	case RBD_IO_COMPARE_AND_WRITE:
		io->completion = completion;
		result = (int)rbd_aio_compare_and_write(state->image, io->offset, io->length,
							io->buffer, io->buffer + io->length,
							completion, &io->mismatch, 0);
		break;
	case RBD_IO_LOCKED_COMPARE_AND_WRITE:
	case RBD_IO_LBA_STATUS:
		break;
	}
	if (result < 0) {
		rbd_aio_release(completion);
		io->completion = NULL;
	}
	return result;
}

/*
 * Links io and hands it to librbd. 0, or the command's result when librbd
 * did not take it; io is then freed.
 */
static int rbd_begin(struct tcmu_device *dev, struct rbd_state *state, struct rbd_io *io)
{
	int result;

	if (state->config.osd_op_timeout)
		io->deadline = rbd_now() + (uint64_t)state->config.osd_op_timeout * 1000000000u;
	pthread_mutex_lock(&state->lock);
	/* Fenced: nothing more for that client (rbd_rejoin_swap waits for the last). */
	if (state->blocklisted) {
		pthread_mutex_unlock(&state->lock);
		rbd_io_free(io);
		/* A rejoin that could not start before is started again. */
		rbd_fenced(dev, state);
		return -ESHUTDOWN;
	}
	rbd_link(state, io);
	if (io->deadline && !state->timer_armed)
		rbd_arm_timer(dev, state);
	pthread_mutex_unlock(&state->lock);
	/* Once taken, io may already be completed and freed on the ring thread. */
	result = rbd_submit(state, io);
	if (result == 0)
		return 0;
	pthread_mutex_lock(&state->lock);
	rbd_unlink(state, io);
	pthread_mutex_unlock(&state->lock);
	result = rbd_command_result(dev, state, io, result);
	rbd_io_free(io);
	return result;
}

static struct rbd_io *rbd_io_new(struct tcmu_device *dev, struct tcmu_request *req,
				 enum rbd_io_kind kind, const struct iovec *iov,
				 size_t iov_count, uint64_t offset, uint64_t length)
{
	struct rbd_io *io;

	assert(iov_count <= INT_MAX);
	/* librbd may keep the iovec array until the request completes. */
	io = malloc(sizeof(*io) + iov_count * sizeof(*iov));
	if (!io)
		return NULL;
	*io = (struct rbd_io){ .dev = dev, .state = tcmu_device_get_private(dev), .req = req,
			       .kind = kind, .offset = offset, .length = length,
			       .iov_count = iov_count };
	if (iov_count)
		memcpy(io->iov, iov, iov_count * sizeof(*iov));
	return io;
}

static int rbd_start(struct tcmu_device *dev, struct tcmu_request *req, enum rbd_io_kind kind,
		     const struct iovec *iov, size_t iov_count, uint64_t offset,
		     uint64_t length)
{
	struct rbd_io *io = rbd_io_new(dev, req, kind, iov, iov_count, offset, length);

	return io ? rbd_begin(dev, tcmu_device_get_private(dev), io) : -ENOMEM;
}

/* Copies length bytes between a flat buffer and iov (to_iov: into iov). */
static void rbd_copy_iov(char *buffer, const struct iovec *iov, size_t iov_count,
			 uint64_t length, bool to_iov)
{
	for (size_t i = 0; i < iov_count && length > 0; i++) {
		size_t part = iov[i].iov_len < length ? iov[i].iov_len : (size_t)length;

		if (to_iov)
			memcpy(iov[i].iov_base, buffer, part);
		else
			memcpy(buffer, iov[i].iov_base, part);
		buffer += part;
		length -= part;
	}
}

int rbd_device_read(struct tcmu_device *dev, struct tcmu_request *req,
		    const struct iovec *iov, size_t iov_count, uint64_t offset,
		    uint64_t length)
{
	struct rbd_state *state = tcmu_device_get_private(dev);
	struct rbd_io *io;

	io = rbd_io_new(dev, req, RBD_IO_READ, iov, iov_count, offset, length);
	if (!io)
		return -ENOMEM;
	/* A read answered at its deadline must not land in the ring later. */
	if (state->config.osd_op_timeout) {
		io->buffer = malloc(length);
		if (!io->buffer) {
			rbd_io_free(io);
			return -ENOMEM;
		}
	}
	return rbd_begin(dev, state, io);
}

int rbd_device_write(struct tcmu_device *dev, struct tcmu_request *req,
		     const struct iovec *iov, size_t iov_count, uint64_t offset,
		     uint64_t length, uint32_t flags)
{
	(void)flags;	/* FUA: durable once librbd completes it (cache off) */
	return rbd_start(dev, req, RBD_IO_WRITE, iov, iov_count, offset, length);
}

int rbd_device_flush(struct tcmu_device *dev, struct tcmu_request *req)
{
	return rbd_start(dev, req, RBD_IO_FLUSH, NULL, 0, 0, 0);
}

int rbd_device_unmap(struct tcmu_device *dev, struct tcmu_request *req,
		     uint64_t offset, uint64_t length)
{
	return rbd_start(dev, req, RBD_IO_ZEROES, NULL, 0, offset, length);
}

/* A librbd request is done: complete its command, unless its deadline answered it. */
static void rbd_io_done(struct tcmu_device *dev, struct rbd_state *state, struct rbd_io *io,
			ssize_t result)
{
	struct tcmu_request *req;
	int command_result;

	pthread_mutex_lock(&state->lock);
	req = io->req;
	rbd_unlink(state, io);
	pthread_mutex_unlock(&state->lock);
	if (!req) {
		/* Answered BUSY already: a late success says the cluster is back. */
		if (result != -ETIMEDOUT)
			rbd_command_result(dev, state, io, result);
		rbd_io_free(io);
		return;
	}
	command_result = rbd_command_result(dev, state, io, result);
	if (command_result == 0 && io->kind == RBD_IO_READ && io->buffer)
		rbd_copy_iov(io->buffer, io->iov, io->iov_count, io->length, true);
	/*
	 * librbd's offset is of the image, or (16.2) of the object plus the
	 * offset within the compared range; the extent is inside one sector,
	 * so within the sector both say the same.
	 */
	if (command_result == -EILSEQ) {
		uint64_t at = io->kind == RBD_IO_LOCKED_COMPARE_AND_WRITE ? io->locked.mismatch :
			      io->mismatch % RBD_SECTOR_SIZE - io->offset % RBD_SECTOR_SIZE;

		rbd_io_free(io);
		tcmu_request_complete_miscompare(req, at);
		return;
	}
	if (command_result == 0 && io->kind == RBD_IO_LBA_STATUS) {
		bool mapped = io->lba_status.mapped;
		uint64_t length = io->lba_status.same_length;

		rbd_io_free(io);
		tcmu_request_complete_lba_status(req, mapped, length);
		return;
	}
	rbd_io_free(io);
	tcmu_request_complete(req, command_result);
}

/* Answers BUSY to the commands whose deadline passed; their requests stay linked. */
static void rbd_expire(struct tcmu_device *dev, struct rbd_state *state)
{
	struct tcmu_request *expired[RBD_POLL_BATCH];
	uint64_t now = rbd_now();
	size_t count;

	do {
		count = 0;
		pthread_mutex_lock(&state->lock);
		for (struct rbd_io *io = state->oldest; io && count < RBD_POLL_BATCH;
		     io = io->newer) {
			if (!io->req)
				continue;
			if (io->deadline > now)
				break;
			expired[count++] = io->req;
			io->req = NULL;
		}
		state->timer_armed = true;	/* the timer fired: rearm or stop it */
		rbd_arm_timer(dev, state);
		pthread_mutex_unlock(&state->lock);
		if (count)
			rbd_set_late(dev, state, true);
		for (size_t i = 0; i < count; i++)
			tcmu_request_complete(expired[i], -EAGAIN);
	} while (count == RBD_POLL_BATCH);
}

/* Completes the compare and writes librbd's callback queued. */
static void rbd_collect_compared(struct tcmu_device *dev, struct rbd_state *state)
{
	struct rbd_io *io, *next;

	pthread_mutex_lock(&state->lock);
	io = state->compared;
	state->compared = NULL;
	pthread_mutex_unlock(&state->lock);
	for (; io; io = next) {
		ssize_t result = io->kind == RBD_IO_LBA_STATUS ? io->lba_status.result :
				 io->locked.result;

		next = io->next_compared;
		if (io->completion) {
			result = rbd_aio_get_return_value(io->completion);
			rbd_aio_release(io->completion);
			io->completion = NULL;
		}
		rbd_io_done(dev, state, io, result);
	}
}

void rbd_fd_ready(struct tcmu_device *dev, int fd, uint32_t events)
{
	struct rbd_state *state = tcmu_device_get_private(dev);
	rbd_completion_t completions[RBD_POLL_BATCH];
	uint64_t count;
	int collected;

	(void)events;
	/* Reset first: a completion after the poll below raises it again. */
	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		tcmu_dev_warn(dev, "reading the %s fd: %m",
			      fd == state->timer_fd ? "deadline timer" : "completion event");
	if (fd == state->timer_fd) {
		rbd_expire(dev, state);
		return;
	}
	rbd_collect_compared(dev, state);
	do {
		collected = rbd_poll_io_events(state->image, completions, RBD_POLL_BATCH);
		if (collected < 0) {
			errno = -collected;
			tcmu_dev_err(dev, "collecting librbd completions: %m");
			return;
		}
		for (int i = 0; i < collected; i++) {
			struct rbd_io *io = rbd_aio_get_arg(completions[i]);
			ssize_t result = rbd_aio_get_return_value(completions[i]);

			rbd_aio_release(completions[i]);
			rbd_io_done(dev, state, io, result);
		}
	} while (collected == RBD_POLL_BATCH);
	rbd_rejoin_swap(dev, state);
}

void rbd_io_forget(struct rbd_state *state)
{
	while (state->oldest) {
		struct rbd_io *io = state->oldest;

		rbd_unlink(state, io);
		if (io->completion)
			rbd_aio_release(io->completion);
		rbd_io_free(io);
	}
	state->compared = NULL;
}

/* Whether librbd 16.2 compares and writes the extent atomically (else -EINVAL). */
static bool rbd_compare_and_write_fits(const struct rbd_state *state, uint64_t offset,
				       uint64_t length)
{
	if (offset % RBD_SECTOR_SIZE + length > RBD_SECTOR_SIZE)
		return false;
	return !state->stripe_unit || offset % state->stripe_unit + length <= state->stripe_unit;
}

int rbd_device_compare_and_write(struct tcmu_device *dev, struct tcmu_request *req,
				 const struct iovec *compare_iov, size_t compare_count,
				 const struct iovec *write_iov, size_t write_count,
				 uint64_t offset, uint64_t length, uint32_t flags)
{
	struct rbd_state *state = tcmu_device_get_private(dev);
	enum rbd_io_kind kind;
	struct rbd_io *io;

	(void)flags;	/* FUA: durable once librbd completes it (cache off) */
	if (rbd_compare_and_write_fits(state, offset, length))
		kind = RBD_IO_COMPARE_AND_WRITE;
	else if (state->exclusive_lock && !state->config.gateway_count)
		kind = RBD_IO_LOCKED_COMPARE_AND_WRITE;
	else
		return -EOPNOTSUPP;
	io = rbd_io_new(dev, req, kind, NULL, 0, offset, length);
	if (!io)
		return -ENOMEM;
	io->buffer = malloc(2 * length);
	if (!io->buffer) {
		rbd_io_free(io);
		return -ENOMEM;
	}
	rbd_copy_iov(io->buffer, compare_iov, compare_count, length, false);
	rbd_copy_iov(io->buffer + length, write_iov, write_count, length, false);
	return rbd_begin(dev, state, io);
}

int rbd_device_query_lba_status(struct tcmu_device *dev, struct tcmu_request *req,
				uint64_t offset, uint64_t length)
{
	return rbd_start(dev, req, RBD_IO_LBA_STATUS, NULL, 0, offset, length);
}
