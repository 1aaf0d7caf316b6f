/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_uring.c: asynchronous reads, writes and flushes of the file handler
 * on one io_uring per device, so that a device has many commands in flight.
 *
 * Requests are queued as the core hands them over and submitted together
 * when its batch ends (batch_done: one io_uring_enter per batch), which
 * then completes what finished inside the submission (page-cache reads).
 * The ring's own fd, watched through tcmu_device_watch_fd, becomes readable
 * when later completions wait; fd_ready reaps them on the device's ring
 * thread.
 * No thread is started here; the kernel's io-wq workers run what cannot
 * complete without blocking (writes through, flushes, punches, and reads
 * the page cache cannot serve at once), each sleeping on the medium for
 * one request. Their number is what the medium sees in flight, so it is
 * bounded by a queue depth worth serving, not by CPUs: the kernel's own
 * default (4 per CPU, 8 on two CPUs) would make a queue of 16 on a slow
 * disk 8 at the medium. io-wq starts workers only when requests block and
 * ends them when idle, and they belong to the ring thread (shared by the
 * devices it serves), which gets the limit with its first submission.
 *
 * Everything here runs on the device's ring thread (open and close aside,
 * when the ring is not served): the core calls read, write, flush and unmap
 * there, EXTENDED COPY included (it posts an op for another device to that
 * device's thread), and fd_ready and batch_done. So the queues need no
 * lock, and since a batch_done follows every call (libtcmu.h), what a call
 * queued is submitted then, with no wake-up of our own.
 *
 * The file is registered (fixed file 0), so that a medium change swaps it
 * without waiting for the requests in flight, which keep the file they
 * started on.
 */
#include "file_uring.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Submission queue entries; more requests in flight only wait for a free one. */
#define FILE_URING_ENTRIES 256
/*
 * io-wq workers of a ring thread for files and block devices: open-iscsi's
 * default queue depth per LUN, so that one LUN's whole queue reaches the
 * medium. Workers for other files (sockets, pipes: none here) stay few.
 */
#define FILE_URING_BOUNDED_WORKERS 32
#define FILE_URING_UNBOUNDED_WORKERS_PER_CPU 2
#define FILE_URING_SUBMIT_ATTEMPTS 8
/* Submissions in one batch_done that follow a reap of what the previous one completed. */
#define FILE_URING_REAP_ROUNDS 4

struct file_uring {
	struct io_uring ring;
	struct tcmu_device *dev;
	file_uring_done_fn done;
};

/* One request in flight; iov is a copy that moves on after short transfers. */
struct file_uring_request {
	struct tcmu_request *req;
	enum file_uring_operation operation;
	bool durable;
	bool punched;		/* a durable UNMAP's punch is done: its sync is next */
	uint64_t offset;
	uint64_t length;
	uint64_t transferred;
	size_t iov_first;
	size_t iov_count;
	struct iovec iov[];
};

static int file_uring_setup(struct tcmu_device *dev, int fd, file_uring_done_fn done,
			    struct file_uring **ret_uring)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned int workers[2];
	struct file_uring *uring;
	int result;

	uring = calloc(1, sizeof(*uring));
	if (!uring)
		return -ENOMEM;
	result = io_uring_queue_init(FILE_URING_ENTRIES, &uring->ring, 0);
	if (result < 0)
		goto out_free;
	result = io_uring_register_files(&uring->ring, &fd, 1);
	if (result < 0)
		goto out_exit;
	workers[0] = FILE_URING_BOUNDED_WORKERS;
	workers[1] = (unsigned int)(cpus > 0 ? cpus : 1) * FILE_URING_UNBOUNDED_WORKERS_PER_CPU;
	result = io_uring_register_iowq_max_workers(&uring->ring, workers);
	if (result < 0)
		goto out_exit;
	result = tcmu_device_watch_fd(dev, uring->ring.ring_fd, TCMU_FD_READABLE);
	if (result < 0)
		goto out_exit;
	uring->dev = dev;
	uring->done = done;
	*ret_uring = uring;
	return 0;

out_exit:
	io_uring_queue_exit(&uring->ring);
out_free:
	free(uring);
	return result;
}

int file_uring_open(struct tcmu_device *dev, int fd, file_uring_done_fn done,
		    struct file_uring **ret_uring)
{
	const char *forced = getenv("TCMU_FILE_SYNC_IO");
	bool off = forced && strcmp(forced, "1") == 0;
	int result = off ? -EPERM : file_uring_setup(dev, fd, done, ret_uring);

	if (result == 0) {
		tcmu_dev_info(dev, "asynchronous I/O on io_uring");
		return 0;
	}
	errno = -result;
	tcmu_dev_info(dev, "synchronous I/O, one request at a time: io_uring %s",
		      off ? "off (TCMU_FILE_SYNC_IO=1)" : strerror(errno));
	return result;
}

void file_uring_close(struct file_uring *uring)
{
	/* The core ended the watch before close(); an unwatch would be refused there. */
	io_uring_queue_exit(&uring->ring);
	free(uring);
}

int file_uring_replace_file(struct file_uring *uring, int fd)
{
	int result = io_uring_register_files_update(&uring->ring, 0, &fd, 1);

	return result < 0 ? result : 0;
}

/* Submits everything queued, retrying interrupted or refused entries. */
static int file_uring_submit_queued(struct file_uring *uring)
{
	int result = 0;

	for (int attempt = 0; attempt < FILE_URING_SUBMIT_ATTEMPTS; attempt++) {
		if (io_uring_sq_ready(&uring->ring) == 0)
			return 0;
		result = io_uring_submit(&uring->ring);
		if (result < 0 && result != -EINTR && result != -EAGAIN && result != -EBUSY)
			return result;
	}
	return result < 0 ? result : 0;
}

/* Prepares the next step of request: a transfer, a flush, a punch or its sync. 0 or -errno. */
static int file_uring_queue(struct file_uring *uring, struct file_uring_request *request)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&uring->ring);
	size_t count = request->iov_count - request->iov_first;
	uint64_t offset = request->offset + request->transferred;

	if (!sqe) {
		int result = file_uring_submit_queued(uring);

		if (result < 0)
			return result;
		sqe = io_uring_get_sqe(&uring->ring);
		if (!sqe)
			return -EAGAIN;
	}
	/* A longer list is cut: the rest goes as a short transfer's would. */
	if (count > IOV_MAX)
		count = IOV_MAX;
	switch (request->operation) {
	case FILE_URING_READ:
		io_uring_prep_readv(sqe, 0, request->iov + request->iov_first, (unsigned int)count,
				    offset);
		break;
	case FILE_URING_WRITE:
		io_uring_prep_writev2(sqe, 0, request->iov + request->iov_first,
				      (unsigned int)count, offset,
				      request->durable ? RWF_DSYNC : 0);
		break;
	case FILE_URING_FLUSH:
		io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC);
		/*
		 * Started only after everything submitted before it completed:
		 * the core's own flush when the write cache goes off must cover
		 * the writes still in flight then.
		 */
		sqe->flags |= IOSQE_IO_DRAIN;
		break;
	case FILE_URING_UNMAP:
		/* Ordered with writes by the core's write gate, not here. */
		if (request->punched)
			io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC);
		else
			io_uring_prep_fallocate(sqe, 0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
						request->offset, request->length);
		break;
	}
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, request);
	return 0;
}

static int file_uring_start(struct file_uring *uring, struct tcmu_request *req,
			    enum file_uring_operation operation, const struct iovec *iov,
			    size_t iov_count, uint64_t offset, uint64_t length, bool durable)
{
	struct file_uring_request *request;
	int result;

	request = malloc(sizeof(*request) + iov_count * sizeof(*iov));
	if (!request)
		return -ENOMEM;
	*request = (struct file_uring_request){
		.req = req,
		.operation = operation,
		.durable = durable,
		.offset = offset,
		.length = length,
		.iov_count = iov_count,
	};
	if (iov_count)
		memcpy(request->iov, iov, iov_count * sizeof(*iov));
	result = file_uring_queue(uring, request);
	if (result < 0) {
		free(request);
		return result;
	}
	return 0;
}

int file_uring_read(struct file_uring *uring, struct tcmu_request *req,
		    const struct iovec *iov, size_t iov_count, uint64_t offset, uint64_t length)
{
	return file_uring_start(uring, req, FILE_URING_READ, iov, iov_count, offset, length,
				false);
}

int file_uring_write(struct file_uring *uring, struct tcmu_request *req,
		     const struct iovec *iov, size_t iov_count, uint64_t offset,
		     uint64_t length, bool durable)
{
	return file_uring_start(uring, req, FILE_URING_WRITE, iov, iov_count, offset, length,
				durable);
}

int file_uring_flush(struct file_uring *uring, struct tcmu_request *req)
{
	return file_uring_start(uring, req, FILE_URING_FLUSH, NULL, 0, 0, 0, false);
}

int file_uring_unmap(struct file_uring *uring, struct tcmu_request *req, uint64_t offset,
		     uint64_t length, bool durable)
{
	return file_uring_start(uring, req, FILE_URING_UNMAP, NULL, 0, offset, length, durable);
}

/* Moves request past count bytes just transferred. */
static void file_uring_advance(struct file_uring_request *request, size_t count)
{
	request->transferred += count;
	while (count > 0 && request->iov_first < request->iov_count) {
		struct iovec *current = &request->iov[request->iov_first];

		if (count < current->iov_len) {
			current->iov_base = (char *)current->iov_base + count;
			current->iov_len -= count;
			return;
		}
		count -= current->iov_len;
		request->iov_first++;
	}
}

/*
 * What a completion means for its request: 1 when the request goes on
 * (queued again), otherwise its final result.
 */
static int file_uring_settle(struct file_uring *uring, struct file_uring_request *request,
			     int completion)
{
	int result;

	if (completion == -EINTR || completion == -EAGAIN)
		goto again;
	if (completion < 0 || request->operation == FILE_URING_FLUSH)
		return completion < 0 ? completion : 0;
	if (request->operation == FILE_URING_UNMAP) {
		if (request->punched || !request->durable)
			return 0;
		request->punched = true;
		goto again;
	}
	if (completion == 0) {
		if (request->operation == FILE_URING_WRITE)
			return -EIO;
		/* The end of the file: the rest reads as zeros, as a hole would. */
		for (size_t i = request->iov_first; i < request->iov_count; i++)
			memset(request->iov[i].iov_base, 0, request->iov[i].iov_len);
		return 0;
	}
	file_uring_advance(request, (size_t)completion);
	if (request->transferred >= request->length)
		return 0;
again:
	result = file_uring_queue(uring, request);
	return result < 0 ? result : 1;
}

void file_uring_reap(struct file_uring *uring)
{
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&uring->ring, &cqe) == 0) {
		struct file_uring_request *request = io_uring_cqe_get_data(cqe);
		int result = file_uring_settle(uring, request, cqe->res);
		enum file_uring_operation operation = request->operation;

		io_uring_cqe_seen(&uring->ring, cqe);
		if (result > 0)
			continue;
		/* A durable UNMAP that punched ended in its sync: failing, it is a flush's failure. */
		if (operation == FILE_URING_UNMAP && request->punched)
			operation = FILE_URING_FLUSH;
		uring->done(uring->dev, request->req, operation, request->offset, request->length,
			    request->durable, result);
		free(request);
	}
}

void file_uring_submit(struct file_uring *uring)
{
	for (int round = 0;; round++) {
		int result = file_uring_submit_queued(uring);

		if (result < 0) {
			errno = -result;
			/* What stays queued goes with the next submission. */
			tcmu_dev_err(uring->dev, "io_uring submit: %m");
			return;
		}
		/*
		 * A read the page cache serves (and any request that did not
		 * block) completed inside the submission: completing it in this
		 * batch saves the wake-up of the ring thread by the io_uring's fd,
		 * which costs a command at queue depth 1 about as much as the
		 * read. What a completion queues (the rest of a short transfer, a
		 * write let through the write gate) goes with the next round; the
		 * rounds are bounded, and what completes later is reaped in fd_ready.
		 */
		if (round == FILE_URING_REAP_ROUNDS || !io_uring_cq_ready(&uring->ring))
			return;
		file_uring_reap(uring);
	}
}
