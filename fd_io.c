/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fd_io.c: I/O helpers for handlers whose storage is a file descriptor
 * (libtcmu.h). They include only libtcmu.h so that the handler unit tests
 * can link them beside their own fake core.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "libtcmu.h"

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
