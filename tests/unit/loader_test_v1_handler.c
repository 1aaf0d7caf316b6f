/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loader_test_v1_handler.c: a handler built against handler_abi_v1.h, the
 * layout of handler ABI version 1, and not against libtcmu.h: what a
 * handler built for version 1 looks like to a daemon of a later version.
 * Every callback answers with its own number, so that test_handler_loader
 * sees that each reached the daemon's struct in its place. TEST_STRUCT_SIZE
 * builds one from before the fields past it were appended. Uses libc only.
 */
#include <errno.h>
#include <stddef.h>

#include "core/handler_abi_v1.h"

#define EXPORT __attribute__((visibility("default")))

static int v1_load(void) { return 0; }
static void v1_unload(void) { }
static int v1_check_config(const char *config, char **ret_reason)
{
	(void)config, (void)ret_reason;
	return -101;
}
static int v1_open(struct tcmu_device *dev) { (void)dev; return -102; }
static void v1_close(struct tcmu_device *dev) { (void)dev; }
static void v1_remove(struct tcmu_device *dev) { (void)dev; }
static int v1_read(struct tcmu_device *dev, struct tcmu_request *req, const struct iovec *iov,
		   size_t iov_count, uint64_t offset, uint64_t length)
{
	(void)dev, (void)req, (void)iov, (void)iov_count, (void)offset, (void)length;
	return -103;
}
static int v1_write(struct tcmu_device *dev, struct tcmu_request *req, const struct iovec *iov,
		    size_t iov_count, uint64_t offset, uint64_t length, uint32_t flags)
{
	(void)dev, (void)req, (void)iov, (void)iov_count, (void)offset, (void)length, (void)flags;
	return -104;
}
static int v1_flush(struct tcmu_device *dev, struct tcmu_request *req)
{
	(void)dev, (void)req;
	return -105;
}
static int v1_unmap(struct tcmu_device *dev, struct tcmu_request *req, uint64_t offset,
		    uint64_t length)
{
	(void)dev, (void)req, (void)offset, (void)length;
	return -106;
}
static int v1_reconfigure(struct tcmu_device *dev, const struct tcmu_device_change *change)
{
	(void)dev, (void)change;
	return -107;
}
static int v1_get_lba_status(struct tcmu_device *dev, uint64_t offset, uint64_t length,
			     bool *ret_mapped, uint64_t *ret_length)
{
	(void)dev, (void)offset, (void)length, (void)ret_mapped, (void)ret_length;
	return -108;
}
static void v1_fd_ready(struct tcmu_device *dev, int fd, uint32_t events)
{
	(void)dev, (void)fd, (void)events;
}
static void v1_batch_done(struct tcmu_device *dev) { (void)dev; }
static int v1_compare_and_write(struct tcmu_device *dev, struct tcmu_request *req,
				const struct iovec *compare_iov, size_t compare_count,
				const struct iovec *write_iov, size_t write_count, uint64_t offset,
				uint64_t length, uint32_t flags)
{
	(void)dev, (void)req, (void)compare_iov, (void)compare_count, (void)write_iov;
	(void)write_count, (void)offset, (void)length, (void)flags;
	return -109;
}

static int v1_query_lba_status(struct tcmu_device *dev, struct tcmu_request *req,
			       uint64_t offset, uint64_t length)
{
	(void)dev, (void)req, (void)offset, (void)length;
	return -110;
}

#ifndef TEST_STRUCT_SIZE
#define TEST_STRUCT_SIZE sizeof(handler)
#endif

static struct tcmu_handler_v1 handler = {
	.subtype = TEST_SUBTYPE,
	.name = "built for version 1",
	.config_description = "none",
	.load = v1_load,
	.unload = v1_unload,
	.check_config = v1_check_config,
	.open = v1_open,
	.close = v1_close,
	.remove = v1_remove,
	.read = v1_read,
	.write = v1_write,
	.flush = v1_flush,
	.unmap = v1_unmap,
	.reconfigure = v1_reconfigure,
	.get_lba_status = v1_get_lba_status,
	.flags = 1,
	.fd_ready = v1_fd_ready,
	.batch_done = v1_batch_done,
	.compare_and_write = v1_compare_and_write,
	.query_lba_status = v1_query_lba_status,
};

/* What version 1's TCMU_HANDLER_REGISTER emits. */
EXPORT const struct tcmu_handler_v1 *handler_init(void);
EXPORT const struct tcmu_handler_v1 *handler_init(void)
{
	handler.abi_version = 1;
	handler.struct_size = TEST_STRUCT_SIZE;
	return &handler;
}
