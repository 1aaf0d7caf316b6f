/* SPDX-License-Identifier: Apache-2.0 */
/*
 * device_io.c: a read or write on a device's handler from a command that
 * another device received (EXTENDED COPY between two devices). A handler
 * is called on the thread that serves its device (libtcmu.h): an
 * asynchronous one keeps state there without locks, and submits what it
 * queued in batch_done. The copy itself goes on on the thread of whichever
 * op completed last, so each op goes to its device's worker, posted when
 * that is another thread, and runs there as in a batch of the device's own.
 */
#include <stddef.h>

#include "tcmu_internal.h"

static int device_io_call(const struct device_io *io)
{
	struct tcmu_device *dev = io->dev;

	if (io->write)
		return dev->handler->write(dev, io->req, io->iov, 1, io->offset, io->length,
					   io->flags);
	return dev->handler->read(dev, io->req, io->iov, 1, io->offset, io->length);
}

void device_run_in_batch(struct tcmu_device *dev,
			 void (*function)(struct tcmu_device *dev, void *argument), void *argument)
{
	const struct tcmu_handler *handler = dev->handler;

	ring_batch_begin(&dev->ring);
	function(dev, argument);
	if (handler && handler->batch_done)
		handler->batch_done(dev);
	ring_batch_end(&dev->ring);
}

static void device_io_in_batch(struct tcmu_device *dev, void *argument)
{
	struct device_io *io = argument;
	struct tcmu_request *req = io->req;
	int result;

	(void)dev;
	/* Taken, it may complete at once, and the command with it: io is not read again. */
	result = device_io_call(io);
	if (result < 0)
		tcmu_request_complete(req, result);
}

static void device_io_posted(struct worker_task *task)
{
	struct device_io *io = (struct device_io *)((char *)task - offsetof(struct device_io, task));

	device_run_in_batch(io->dev, device_io_in_batch, io);
}

int device_io_issue(struct device_io *io, struct tcmu_device *dev, struct tcmu_request *req,
		    bool write, const struct iovec *iov, uint64_t offset, uint64_t length,
		    uint32_t flags)
{
	*io = (struct device_io){ .task.run = device_io_posted, .dev = dev, .req = req,
		.write = write, .iov = iov, .offset = offset, .length = length, .flags = flags };
	if (!dev->worker)
		return device_io_call(io);
	/* On dev's own thread this may be another device's batch: dev needs one of its own. */
	if (!worker_post(dev, &io->task))
		device_run_in_batch(dev, device_io_in_batch, io);
	return 0;
}
