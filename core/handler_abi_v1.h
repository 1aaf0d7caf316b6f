/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handler_abi_v1.h: struct tcmu_handler as handlers built for handler ABI
 * version 1 lay it out, kept apart from libtcmu.h so that it stays what
 * those handlers have when libtcmu.h moves on to version 2: the loader
 * reads version-1 handlers through it (handler_abi.c), and a test handler
 * is built against it. Self-contained: it must not change with libtcmu.h.
 *
 * While version 1 is the current version, fields appended to libtcmu.h's
 * struct are appended here too (handler_abi.c checks the sizes agree);
 * once version 2 is cut, this file is frozen for good.
 */
#ifndef TCMU_HANDLER_ABI_V1_H
#define TCMU_HANDLER_ABI_V1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct tcmu_device;
struct tcmu_request;
struct tcmu_device_change;
struct tcmu_port_group;

struct tcmu_handler_v1 {
	uint32_t abi_version;
	uint32_t struct_size;
	const char *subtype;
	const char *name;
	const char *config_description;
	int (*load)(void);
	void (*unload)(void);
	int (*check_config)(const char *config, char **ret_reason);
	int (*open)(struct tcmu_device *dev);
	void (*close)(struct tcmu_device *dev);
	void (*remove)(struct tcmu_device *dev);
	int (*read)(struct tcmu_device *dev, struct tcmu_request *req, const struct iovec *iov,
		    size_t iov_count, uint64_t offset, uint64_t length);
	int (*write)(struct tcmu_device *dev, struct tcmu_request *req, const struct iovec *iov,
		     size_t iov_count, uint64_t offset, uint64_t length, uint32_t flags);
	int (*flush)(struct tcmu_device *dev, struct tcmu_request *req);
	int (*unmap)(struct tcmu_device *dev, struct tcmu_request *req, uint64_t offset,
		     uint64_t length);
	int (*reconfigure)(struct tcmu_device *dev, const struct tcmu_device_change *change);
	int (*get_lba_status)(struct tcmu_device *dev, uint64_t offset, uint64_t length,
			      bool *ret_mapped, uint64_t *ret_length);
	uint32_t flags;
	void (*fd_ready)(struct tcmu_device *dev, int fd, uint32_t events);
	void (*batch_done)(struct tcmu_device *dev);
	int (*compare_and_write)(struct tcmu_device *dev, struct tcmu_request *req,
				 const struct iovec *compare_iov, size_t compare_count,
				 const struct iovec *write_iov, size_t write_count,
				 uint64_t offset, uint64_t length, uint32_t flags);
	int (*get_port_groups)(struct tcmu_device *dev, struct tcmu_port_group *groups,
			       size_t max);
	int (*set_port_state)(struct tcmu_device *dev, struct tcmu_request *req, uint8_t state);
	int (*query_lba_status)(struct tcmu_device *dev, struct tcmu_request *req, uint64_t offset,
				uint64_t length);
};

#endif
