/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_uring.h: the file handler's asynchronous I/O engine (file_uring.c),
 * one io_uring per device. Sees libtcmu.h only, as the handler does.
 */
#ifndef FILE_URING_H
#define FILE_URING_H

#include "libtcmu.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct file_uring;

enum file_uring_operation {
	FILE_URING_READ,
	FILE_URING_WRITE,
	FILE_URING_FLUSH,
	FILE_URING_UNMAP,
};

/*
 * Called once per request, on the thread that reaps completions (the
 * device's ring thread), with the outcome of the whole request: 0 or
 * -errno. The callback completes the request. operation is the request's,
 * except for a durable UNMAP that punched: its last step, the sync, reports
 * as FILE_URING_FLUSH.
 */
typedef void (*file_uring_done_fn)(struct tcmu_device *dev, struct tcmu_request *req,
				   enum file_uring_operation operation, uint64_t offset,
				   uint64_t length, bool durable, int result);

/*
 * Sets up a ring for fd (registered as the ring's only file) and watches
 * its fd for completions; logs whether the device's I/O is asynchronous.
 * Returns 0 or -errno: io_uring missing or forbidden (old kernel, seccomp),
 * or TCMU_FILE_SYNC_IO=1 in the environment (-EPERM); the caller then does
 * synchronous I/O.
 */
int file_uring_open(struct tcmu_device *dev, int fd, file_uring_done_fn done,
		    struct file_uring **ret_uring);
/* No request may be in flight. */
void file_uring_close(struct file_uring *uring);
/*
 * Later requests use fd; those in flight finish on the file they started
 * on (the kernel holds it), so the caller may close the old one. Any thread
 * (it touches no queue).
 */
int file_uring_replace_file(struct file_uring *uring, int fd);

/*
 * Queue a request on the device's ring thread; file_uring_submit()
 * (batch_done) submits it. Reads past the end of the file read zeros; short
 * transfers are resumed. A durable write is written through (RWF_DSYNC). A
 * flush starts after every request queued before it completed. An unmap
 * punches a hole (the file keeps its size) and, durable, syncs it. 0 (the
 * request is taken) or -errno.
 */
int file_uring_read(struct file_uring *uring, struct tcmu_request *req,
		    const struct iovec *iov, size_t iov_count, uint64_t offset, uint64_t length);
int file_uring_write(struct file_uring *uring, struct tcmu_request *req,
		     const struct iovec *iov, size_t iov_count, uint64_t offset,
		     uint64_t length, bool durable);
int file_uring_flush(struct file_uring *uring, struct tcmu_request *req);
int file_uring_unmap(struct file_uring *uring, struct tcmu_request *req, uint64_t offset,
		     uint64_t length, bool durable);

/*
 * batch_done: submits what was queued and calls done for the requests that
 * finished meanwhile (inside the submission, as page-cache reads do).
 */
void file_uring_submit(struct file_uring *uring);
/* fd_ready on the io_uring: reaps completions and calls done for each finished request. */
void file_uring_reap(struct file_uring *uring);

#endif
