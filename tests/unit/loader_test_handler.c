/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loader_test_handler.c: one source, built into several handler modules
 * that each break one rule of the handler contract (chosen by compile
 * definitions), so that test_handler_loader can check the loader's
 * verdict on each. load() and unload() append a line to the file named
 * by $TEST_HANDLER_EVENTS so the test sees whether they ran. Uses libc
 * only: the test executable exports nothing to it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libtcmu.h"

#ifndef TEST_SUBTYPE
#define TEST_SUBTYPE "good"
#endif
#ifndef TEST_NAME
#define TEST_NAME TEST_SUBTYPE
#endif

static void record(const char *what)
{
	const char *path = getenv("TEST_HANDLER_EVENTS");
	char line[128];
	size_t length;
	int fd;

	if (!path)
		return;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	length = (size_t)snprintf(line, sizeof(line), "%s %s\n", what, TEST_NAME);
	if (write(fd, line, length) < 0)
		abort();
	close(fd);
}

static int test_load(void)
{
	record("load");
#ifdef TEST_LOAD_FAILS
	return -EIO;
#else
	return 0;
#endif
}

static void test_unload(void)
{
	record("unload");
}

#ifdef TEST_UNRESOLVED
/* Defined nowhere: dlopen fails, as it does when a handler's library is missing. */
extern int loader_test_missing_symbol(void);
#endif

#ifndef TEST_OMIT_OPEN
static int test_open(struct tcmu_device *dev)
{
	(void)dev;
#ifdef TEST_UNRESOLVED
	return loader_test_missing_symbol();
#else
	return 0;
#endif
}
#endif

static void test_close(struct tcmu_device *dev)
{
	(void)dev;
}

static int test_read(struct tcmu_device *dev, struct tcmu_request *req, const struct iovec *iov,
		     size_t iov_count, uint64_t offset, uint64_t length)
{
	(void)dev, (void)req, (void)iov, (void)iov_count, (void)offset, (void)length;
	return -EIO;
}

static int test_write(struct tcmu_device *dev, struct tcmu_request *req, const struct iovec *iov,
		      size_t iov_count, uint64_t offset, uint64_t length, uint32_t flags)
{
	(void)dev, (void)req, (void)iov, (void)iov_count, (void)offset, (void)length, (void)flags;
	return -EIO;
}

static int test_flush(struct tcmu_device *dev, struct tcmu_request *req)
{
	(void)dev, (void)req;
	return -EIO;
}

static int test_unmap(struct tcmu_device *dev, struct tcmu_request *req, uint64_t offset,
		      uint64_t length)
{
	(void)dev, (void)req, (void)offset, (void)length;
	return -EIO;
}

static int test_reconfigure(struct tcmu_device *dev, const struct tcmu_device_change *change)
{
	(void)dev, (void)change;
	return 0;
}

#ifdef TEST_CHECK_WAITS
/* Opening a FIFO for reading waits for its writer: the config names one. */
static int test_check_config(const char *config, char **ret_reason)
{
	int fd = open(config, O_RDONLY | O_CLOEXEC);

	*ret_reason = NULL;
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}
#endif

static struct tcmu_handler handler = {
	.subtype = TEST_SUBTYPE,
	.name = TEST_NAME,
	.config_description = "config of " TEST_SUBTYPE,
	.load = test_load,
	.unload = test_unload,
#ifndef TEST_OMIT_OPEN
	.open = test_open,
#endif
	.close = test_close,
	.read = test_read,
	.write = test_write,
	.flush = test_flush,
	/* Past TEST_STRUCT_SIZE in the "older handler" build: the loader must not see them. */
	.unmap = test_unmap,
	.reconfigure = test_reconfigure,
#ifdef TEST_CHECK_WAITS
	.check_config = test_check_config,
#endif
};

#if defined(TEST_NO_INIT)
/* Exports something, but not handler_init. */
TCMU_EXPORT const struct tcmu_handler *handler_start(void);
TCMU_EXPORT const struct tcmu_handler *handler_start(void)
{
	return &handler;
}
#elif defined(TEST_INIT_RETURNS_NULL)
TCMU_EXPORT const struct tcmu_handler *handler_init(void);
TCMU_EXPORT const struct tcmu_handler *handler_init(void)
{
	return handler.subtype ? NULL : &handler;
}
#elif defined(TEST_ABI_VERSION) || defined(TEST_STRUCT_SIZE)
#ifndef TEST_ABI_VERSION
#define TEST_ABI_VERSION TCMU_HANDLER_ABI_VERSION
#endif
#ifndef TEST_STRUCT_SIZE
#define TEST_STRUCT_SIZE sizeof(handler)
#endif
/* What TCMU_HANDLER_REGISTER emits, with the header values of another build. */
TCMU_EXPORT const struct tcmu_handler *handler_init(void);
TCMU_EXPORT const struct tcmu_handler *handler_init(void)
{
	handler.abi_version = TEST_ABI_VERSION;
	handler.struct_size = TEST_STRUCT_SIZE;
	return &handler;
}
#else
TCMU_HANDLER_REGISTER(handler)
#endif
