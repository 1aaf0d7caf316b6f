/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtcmu.c: the public ABI of libtcmu.so.1, and only it. Every function
 * and the variable that libtcmu.h declares, and libtcmu.map exports, is
 * defined here: the device accessors, request completion and logging,
 * which enter the core (its devices, the SCSI layer, log.c, the workers),
 * and the I/O helpers that handlers with a file descriptor share.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "tcmu_internal.h"

/* ---- logging ---- */

int tcmu_log_level_current = TCMU_LOG_INFO;

void tcmu_log_message(int level, const struct tcmu_device *dev, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	log_message_v(level, dev, format, args);
	va_end(args);
}

/* ---- requests ---- */

void tcmu_request_complete(struct tcmu_request *req, int result)
{
	req->io_done(req, result);
}

void tcmu_request_complete_miscompare(struct tcmu_request *req, uint64_t offset)
{
	req->miscompare_offset = offset;
	req->io_done(req, REQUEST_MISCOMPARE);
}

void tcmu_request_complete_lba_status(struct tcmu_request *req, bool mapped, uint64_t length)
{
	req->lba_status_mapped = mapped;
	req->lba_status_length = length;
	req->io_done(req, 0);
}

/* ---- devices ---- */

const char *tcmu_device_get_name(const struct tcmu_device *dev) { return dev->name; }
const char *tcmu_device_get_subtype(const struct tcmu_device *dev) { return dev->subtype; }
const char *tcmu_device_get_backstore(const struct tcmu_device *dev) { return dev->backstore; }
const char *tcmu_device_get_config(const struct tcmu_device *dev) { return dev->config; }
void *tcmu_device_get_private(const struct tcmu_device *dev) { return dev->private_data; }
void tcmu_device_set_private(struct tcmu_device *dev, void *data) { dev->private_data = data; }

uint64_t tcmu_device_get_size(const struct tcmu_device *dev)
{
	return __atomic_load_n(&dev->size, __ATOMIC_RELAXED);
}

uint32_t tcmu_device_get_block_size(const struct tcmu_device *dev)
{
	return dev->block_size;
}

bool tcmu_device_get_write_cache(const struct tcmu_device *dev)
{
	return __atomic_load_n(&dev->write_cache, __ATOMIC_RELAXED);
}

void tcmu_device_set_unmap_supported(struct tcmu_device *dev, bool supported)
{
	__atomic_store_n(&dev->unmap_unsupported, !supported, __ATOMIC_RELAXED);
}

void tcmu_device_set_state(struct tcmu_device *dev, enum tcmu_device_state state,
			   const char *reason)
{
	stats_set_state(dev, state, reason);
}

/*
 * Weak references: a unit test that links the static core and stands in
 * for the ring or the devices (test_netlink, the SCSI fixture) needs this
 * file for the logging, and must not pull fd_watch.c or the SCSI layer,
 * and the ring and the device list with them, in. The library and the
 * daemon always hold both.
 */
#pragma weak watch_fd_set
#pragma weak watch_fd_remove
#pragma weak scsi_set_write_protected
#pragma weak scsi_set_unit_serial
#pragma weak scsi_alua_set_port_group
#pragma weak scsi_alua_set_port_state

int tcmu_device_set_port_group(struct tcmu_device *dev, uint16_t group)
{
	return scsi_alua_set_port_group(dev, group);
}

void tcmu_device_set_port_state(struct tcmu_device *dev, enum tcmu_port_state state)
{
	scsi_alua_set_port_state(dev, (uint8_t)state);
}

int tcmu_device_watch_fd(struct tcmu_device *dev, int fd, uint32_t events)
{
	return watch_fd_set(dev, fd, events);
}

int tcmu_device_unwatch_fd(struct tcmu_device *dev, int fd)
{
	return watch_fd_remove(dev, fd);
}

void tcmu_device_set_write_protected(struct tcmu_device *dev, bool write_protected)
{
	scsi_set_write_protected(dev, write_protected);
}

int tcmu_device_set_unit_serial(struct tcmu_device *dev, const char *serial)
{
	return scsi_set_unit_serial(dev, serial);
}

/* ---- file descriptor I/O ---- */

/*
 * Reads (is_write false) or writes the length bytes of iov at offset,
 * resuming after short transfers and signals. A read that meets the end of
 * the file zero-fills the rest. Returns 0 or -errno.
 */
/* Only assert() uses it, so NDEBUG builds leave it unused. */
static inline __attribute__((unused)) uint64_t iov_total(const struct iovec *iov, size_t iov_count)
{
	uint64_t total = 0;

	for (size_t i = 0; i < iov_count; i++)
		total += iov[i].iov_len;
	return total;
}

static int fd_transfer(int fd, const struct iovec *iov, size_t iov_count,
			  uint64_t offset, uint64_t length, bool is_write)
{
	size_t index = 0;
	size_t done_in_current = 0;

	/* The loop below walks iov for length bytes: they must be the same size. */
	assert(iov_total(iov, iov_count) == length);
	while (length > 0) {
		ssize_t count;

		while (iov[index].iov_len == done_in_current) {
			index++;
			done_in_current = 0;
		}

		if (done_in_current) {
			char *base = (char *)iov[index].iov_base + done_in_current;
			size_t left = iov[index].iov_len - done_in_current;

			count = is_write ? pwrite(fd, base, left, (off_t)offset)
					 : pread(fd, base, left, (off_t)offset);
		} else {
			int batch = iov_count - index > IOV_MAX ? IOV_MAX
								: (int)(iov_count - index);

			count = is_write ? pwritev(fd, iov + index, batch, (off_t)offset)
					 : preadv(fd, iov + index, batch, (off_t)offset);
		}
		if (count < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (count == 0) {
			if (is_write)
				return -EIO;
			memset((char *)iov[index].iov_base + done_in_current, 0,
			       iov[index].iov_len - done_in_current);
			for (size_t i = index + 1; i < iov_count; i++)
				memset(iov[i].iov_base, 0, iov[i].iov_len);
			return 0;
		}
		offset += (uint64_t)count;
		length -= (uint64_t)count;
		while (count > 0) {
			size_t left = iov[index].iov_len - done_in_current;

			if ((size_t)count < left) {
				done_in_current += (size_t)count;
				count = 0;
			} else {
				count -= (ssize_t)left;
				index++;
				done_in_current = 0;
			}
		}
	}
	return 0;
}

/*
 * Whether offset holds data, and for how many bytes (at most length) that
 * stays so, from the file system's extent map (SEEK_DATA/SEEK_HOLE).
 * File systems without holes report everything as data.
 */
int tcmu_fd_extent(int fd, uint64_t offset, uint64_t length,
			    bool *ret_mapped, uint64_t *ret_length)
{
	off_t data = lseek(fd, (off_t)offset, SEEK_DATA);
	off_t hole;

	if (data < 0) {
		if (errno == ENXIO) {
			/* No data from offset to the end of the file: it reads as zeros. */
			*ret_mapped = false;
			*ret_length = length;
			return 0;
		}
		if (errno == EINVAL) {
			*ret_mapped = true;
			*ret_length = length;
			return 0;
		}
		return -errno;
	}
	if ((uint64_t)data > offset) {
		*ret_mapped = false;
		*ret_length = (uint64_t)data - offset < length ? (uint64_t)data - offset : length;
		return 0;
	}
	hole = lseek(fd, (off_t)offset, SEEK_HOLE);
	if (hole < 0)
		return -errno;
	*ret_mapped = true;
	*ret_length = (uint64_t)hole - offset < length ? (uint64_t)hole - offset : length;
	return 0;
}

int tcmu_fd_read(int fd, const struct iovec *iov, size_t iov_count, uint64_t offset,
		 uint64_t length)
{
	return fd_transfer(fd, iov, iov_count, offset, length, false);
}

int tcmu_fd_write(int fd, const struct iovec *iov, size_t iov_count, uint64_t offset,
		  uint64_t length)
{
	return fd_transfer(fd, iov, iov_count, offset, length, true);
}
