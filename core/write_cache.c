/* SPDX-License-Identifier: Apache-2.0 */
/*
 * write_cache.c: the steps of turning a device's write cache on or off,
 * shared by RECONFIG and D-Bus ChangeMedium (device_reconfigure(), on the
 * main thread) and MODE SELECT (on the ring thread). Off is write-through
 * first, so that every write from then on is durable by itself, then a
 * flush of what the cache held, which the caller runs (the main thread
 * waits for it on the ring's worker; the ring thread cannot wait, so MODE
 * SELECT completes from the flush's completion), then the handler hears
 * of the change. A failed flush or a refusal leaves the cache as it was.
 */
#include <string.h>

#include "tcmu_internal.h"

void write_cache_begin(struct tcmu_device *dev, bool write_cache)
{
	if (!write_cache)
		__atomic_store_n(&dev->write_cache, false, __ATOMIC_SEQ_CST);
}

void write_cache_restore(struct tcmu_device *dev, bool write_cache)
{
	__atomic_store_n(&dev->write_cache, !write_cache, __ATOMIC_SEQ_CST);
}

void write_cache_flush_failed(struct tcmu_device *dev, int error)
{
	write_cache_restore(dev, false);
	tcmu_dev_err(dev, "write cache stays on: flushing it failed: %s", strerror(-error));
}

int write_cache_tell_handler(struct tcmu_device *dev, bool write_cache)
{
	struct tcmu_device_change change = { .what = TCMU_CHANGE_WRITE_CACHE,
					     .write_cache = write_cache };
	int result;

	if (!dev->handler->reconfigure)
		return 0;
	/* The handler logs why it refuses: it made the decision. */
	result = dev->handler->reconfigure(dev, &change);
	if (result < 0)
		write_cache_restore(dev, write_cache);
	return result;
}

void write_cache_commit(struct tcmu_device *dev, bool write_cache)
{
	__atomic_store_n(&dev->write_cache, write_cache, __ATOMIC_SEQ_CST);
	tcmu_dev_info(dev, "write cache %s", write_cache ? "on" : "off");
}
