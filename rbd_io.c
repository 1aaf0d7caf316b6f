/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbd_io.c: the rbd handler's commands as asynchronous librbd requests,
 * any number in flight. librbd signals completions on an eventfd
 * (rbd_set_image_notification) that the device's ring thread watches;
 * rbd_fd_ready collects them (rbd_poll_io_events) and completes the
 * commands there, so no librbd thread touches the ring. FUA writes are
 * followed by a flush, as is SYNCHRONIZE CACHE. UNMAP is
 * rbd_aio_write_zeroes, which removes whole objects (rbd du shows the space
 * freed) and zeros partial ones, so the range reads as zeros as the core
 * promises (a discard may skip partial objects). GET LBA STATUS reports the
 * objects the image has.
 *
 * Faults: a request the cluster does not answer within osd_op_timeout
 * fails with -ETIMEDOUT, completed as -EAGAIN (BUSY: the initiator
 * retries). A client the cluster blocklisted (another gateway broke its
 * lock) gets -ESHUTDOWN for everything from then on, so no write gets
 * through. Each transition is logged once.
 */
#include "rbd.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Completions collected per rbd_poll_io_events call. */
#define RBD_POLL_BATCH 32
/* GET LBA STATUS looks at most this far ahead (a short answer is allowed). */
#define RBD_LBA_STATUS_SPAN (256ull << 20)

enum rbd_io_kind { RBD_IO_READ, RBD_IO_WRITE, RBD_IO_FLUSH, RBD_IO_ZEROES };

/* One librbd request, from submission to fd_ready. */
struct rbd_io {
	struct tcmu_device *dev;
	struct tcmu_request *req;
	enum rbd_io_kind kind;
	bool flush_after;	/* FUA: a flush once the write completed */
	uint64_t offset;
	uint64_t length;
	size_t iov_count;
	struct iovec iov[];
};

static const char *const rbd_io_kind_names[] = { "read", "write", "flush", "unmap" };

/* The result a command gets for librbd's result; transitions are logged once. */
static int rbd_command_result(struct tcmu_device *dev, struct rbd_state *state,
			      const struct rbd_io *io, ssize_t result)
{
	if (result >= 0) {
		if (state->cluster_late) {
			state->cluster_late = false;
			tcmu_dev_warn(dev, "the Ceph cluster answers again");
		}
		return 0;
	}
	if (result == -ETIMEDOUT) {
		if (!state->cluster_late) {
			state->cluster_late = true;
			tcmu_dev_err(dev, "the Ceph cluster did not answer a %s within %u s: "
				     "commands fail with BUSY until it does",
				     rbd_io_kind_names[io->kind], state->config.osd_op_timeout);
		}
		return -EAGAIN;
	}
	if (result == -ESHUTDOWN) {
		if (!state->blocklisted) {
			state->blocklisted = true;
			tcmu_dev_err(dev, "the Ceph cluster blocklisted this client (another "
				     "client took the image): every command fails from now on");
		}
		return -ESHUTDOWN;
	}
	tcmu_dev_err(dev, "%s of %" PRIu64 " bytes at %" PRIu64 ": %s",
		     rbd_io_kind_names[io->kind], io->length, io->offset, strerror((int)-result));
	return (int)result;
}

/*
 * Hands io to librbd. 0, or the command's result when librbd did not take
 * it; io is then freed.
 */
static int rbd_submit(struct tcmu_device *dev, struct rbd_state *state, struct rbd_io *io)
{
	rbd_completion_t completion;
	int result;

	result = rbd_aio_create_completion(io, NULL, &completion);
	if (result == 0) {
		switch (io->kind) {
		case RBD_IO_READ:
			result = rbd_aio_readv(state->image, io->iov, (int)io->iov_count,
					       io->offset, completion);
			break;
		case RBD_IO_WRITE:
			result = rbd_aio_writev(state->image, io->iov, (int)io->iov_count,
						io->offset, completion);
			break;
		case RBD_IO_FLUSH:
			result = rbd_aio_flush(state->image, completion);
			break;
		case RBD_IO_ZEROES:
			result = rbd_aio_write_zeroes(state->image, io->offset, io->length,
						      completion, 0, 0);
			break;
		}
		if (result == 0)
			return 0;
		rbd_aio_release(completion);
	}
	result = rbd_command_result(dev, state, io, result);
	free(io);
	return result;
}

static int rbd_start(struct tcmu_device *dev, struct tcmu_request *req, enum rbd_io_kind kind,
		     const struct iovec *iov, size_t iov_count, uint64_t offset,
		     uint64_t length, bool flush_after)
{
	struct rbd_io *io;

	assert(iov_count <= INT_MAX);
	/* librbd may keep the iovec array until the request completes. */
	io = malloc(sizeof(*io) + iov_count * sizeof(*iov));
	if (!io)
		return -ENOMEM;
	*io = (struct rbd_io){ .dev = dev, .req = req, .kind = kind, .flush_after = flush_after,
			       .offset = offset, .length = length, .iov_count = iov_count };
	if (iov_count)
		memcpy(io->iov, iov, iov_count * sizeof(*iov));
	return rbd_submit(dev, tcmu_device_get_private(dev), io);
}

int rbd_device_read(struct tcmu_device *dev, struct tcmu_request *req,
		    const struct iovec *iov, size_t iov_count, uint64_t offset,
		    uint64_t length)
{
	return rbd_start(dev, req, RBD_IO_READ, iov, iov_count, offset, length, false);
}

int rbd_device_write(struct tcmu_device *dev, struct tcmu_request *req,
		     const struct iovec *iov, size_t iov_count, uint64_t offset,
		     uint64_t length, uint32_t flags)
{
	return rbd_start(dev, req, RBD_IO_WRITE, iov, iov_count, offset, length,
			 flags & TCMU_WRITE_FUA);
}

int rbd_device_flush(struct tcmu_device *dev, struct tcmu_request *req)
{
	return rbd_start(dev, req, RBD_IO_FLUSH, NULL, 0, 0, 0, false);
}

int rbd_device_unmap(struct tcmu_device *dev, struct tcmu_request *req,
		     uint64_t offset, uint64_t length)
{
	return rbd_start(dev, req, RBD_IO_ZEROES, NULL, 0, offset, length, false);
}

/* A librbd request is done: complete its command, or flush after a FUA write. */
static void rbd_io_done(struct rbd_state *state, struct rbd_io *io, ssize_t result)
{
	struct tcmu_request *req = io->req;
	int command_result;

	if (result >= 0 && io->flush_after) {
		io->kind = RBD_IO_FLUSH;
		io->flush_after = false;
		command_result = rbd_submit(io->dev, state, io);
		if (command_result < 0)
			tcmu_request_complete(req, command_result);
		return;
	}
	command_result = rbd_command_result(io->dev, state, io, result);
	free(io);
	tcmu_request_complete(req, command_result);
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
		tcmu_dev_warn(dev, "reading the completion eventfd: %m");
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
			rbd_io_done(state, io, result);
		}
	} while (collected == RBD_POLL_BATCH);
}

struct rbd_extent_query {
	uint64_t position;	/* end of the run known so far */
	uint64_t end;		/* first byte not asked about */
	bool mapped;		/* set by the first extent with data at the start */
};

/* rbd_diff_iterate2 reports the extents that hold data, in order. */
static int rbd_extent_seen(uint64_t offset, size_t length, int exists, void *argument)
{
	struct rbd_extent_query *query = argument;

	if (!exists || offset + length <= query->position)
		return 0;
	if (offset > query->position) {
		/* A hole: it ends the mapped run, or is the answer up to offset. */
		if (!query->mapped)
			query->position = offset < query->end ? offset : query->end;
		return -ECANCELED;
	}
	query->mapped = true;
	query->position = offset + length < query->end ? offset + length : query->end;
	return 0;
}

int rbd_get_lba_status(struct tcmu_device *dev, uint64_t offset, uint64_t length,
		       bool *ret_mapped, uint64_t *ret_length)
{
	struct rbd_state *state = tcmu_device_get_private(dev);
	struct rbd_extent_query query = { .position = offset };
	int result;

	assert(length > 0);
	if (length > RBD_LBA_STATUS_SPAN)
		length = RBD_LBA_STATUS_SPAN;
	query.end = offset + length;
	/* Whole objects: from the object map when the image has fast-diff. */
	result = rbd_diff_iterate2(state->image, NULL, offset, length, 1, 1,
				   rbd_extent_seen, &query);
	if (result < 0 && result != -ECANCELED) {
		errno = -result;
		tcmu_dev_err(dev, "allocation map of %" PRIu64 " bytes at %" PRIu64 ": %m",
			     length, offset);
		return result;
	}
	if (query.position == offset)	/* no data at all */
		query.position = query.end;
	*ret_mapped = query.mapped;
	*ret_length = query.position - offset;
	return 0;
}
