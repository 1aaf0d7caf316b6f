/* SPDX-License-Identifier: Apache-2.0 */
/* file_storage.h: opening and sizing the file handler's storage (file_storage.c). */
#ifndef FILE_STORAGE_H
#define FILE_STORAGE_H

#include "libtcmu.h"

#include <stdbool.h>
#include <stdint.h>

/* What file_ensure_size may do to a regular file whose size is not the device's. */
enum file_sizing {
	FILE_SIZING_EXACT,	/* nothing: an existing file nobody said to resize */
	FILE_SIZING_GROW,	/* grow a smaller one: just created, or the device grew */
	FILE_SIZING_ANY,	/* grow a smaller one, use the head of a larger one */
};

/*
 * Makes the storage behind fd hold size bytes as sizing allows: grows a
 * regular file, checks a block device (at least size bytes). Never shrinks.
 * Returns 0 or -errno, logged.
 */
int file_ensure_size(struct tcmu_device *dev, int fd, const char *path, uint64_t size,
		     enum file_sizing sizing);
/*
 * Whether UNMAP can deallocate on the storage behind fd (a file system that
 * punches holes, a block device that zeroes without writing); logs why not.
 */
bool file_can_punch(struct tcmu_device *dev, int fd, const char *path);
/*
 * Opens (creating it when missing), locks and sizes the storage at path.
 * Returns the file descriptor or -errno; every failure is logged.
 */
int file_open_storage(struct tcmu_device *dev, const char *path, uint64_t size, bool any_size);

#endif
