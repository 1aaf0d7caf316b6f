/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_storage.c: the file handler's storage as it is opened: created when
 * missing, locked against a second user, sized to the device, and probed
 * for hole punching (thin provisioning).
 */
#include "file_storage.h"
#include "file_config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define FILE_OPEN_ATTEMPTS 3	/* of a path that keeps changing under us */

/*
 * Makes the storage behind fd hold size bytes as sizing allows: grows a
 * regular file, checks a block device (at least size bytes). Never shrinks.
 * Returns 0 or -errno, logged.
 */
int file_ensure_size(struct tcmu_device *dev, int fd, const char *path, uint64_t size,
		     enum file_sizing sizing)
{
	struct stat status;
	uint64_t file_bytes;

	if (size > (uint64_t)INT64_MAX) {
		tcmu_dev_err(dev, "size %" PRIu64 " is too large", size);
		return -EFBIG;
	}
	if (fstat(fd, &status) < 0) {
		int result = -errno;

		tcmu_dev_err(dev, "stat '%s': %m", path);
		return result;
	}
	if (S_ISBLK(status.st_mode)) {
		uint64_t device_bytes;

		if (ioctl(fd, BLKGETSIZE64, &device_bytes) < 0) {
			int result = -errno;

			tcmu_dev_err(dev, "size of block device '%s': %m", path);
			return result;
		}
		if (device_bytes < size) {
			tcmu_dev_err(dev, "block device '%s' holds %" PRIu64
				     " bytes, less than the device size %" PRIu64,
				     path, device_bytes, size);
			return -ENOSPC;
		}
		return 0;
	}
	if (!S_ISREG(status.st_mode)) {
		tcmu_dev_err(dev, "'%s' is neither a regular file nor a block device", path);
		return -EINVAL;
	}
	/* A size that differs hints at the wrong file, perhaps another disk's. */
	file_bytes = (uint64_t)status.st_size;
	if (sizing == FILE_SIZING_EXACT && file_bytes != size) {
		tcmu_dev_err(dev, "'%s' holds %" PRIu64 " bytes, not the device size %" PRIu64
			     "; configure '" FILE_OPTION_ANY_SIZE "%s' to grow a smaller file"
			     " or use the head of a larger one", path, file_bytes, size, path);
		return -EINVAL;
	}
	if (sizing == FILE_SIZING_GROW && file_bytes > size) {
		tcmu_dev_err(dev, "'%s' holds %" PRIu64 " bytes, more than the device size %"
			     PRIu64 ", and is never shrunk; configure '" FILE_OPTION_ANY_SIZE
			     "%s' to use its head", path, file_bytes, size, path);
		return -EINVAL;
	}
	if (file_bytes < size && ftruncate(fd, (off_t)size) < 0) {
		int result = -errno;

		tcmu_dev_err(dev, "grow '%s' to %" PRIu64 " bytes: %m", path, size);
		return result;
	}
	return 0;
}

/*
 * Whether UNMAP can deallocate on the storage behind fd: a file is asked
 * past its end, where punching loses nothing; a block device punches with a
 * zero-out that must not fall back to writing, so it needs write zeroes.
 */
bool file_can_punch(struct tcmu_device *dev, int fd, const char *path)
{
	struct stat status;
	uint64_t write_zeroes_bytes = 0;
	char attribute[96];
	FILE *stream;

	if (fstat(fd, &status) < 0)
		return false;
	if (S_ISREG(status.st_mode)) {
		if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, status.st_size,
			      4096) == 0)
			return true;
		tcmu_dev_info(dev, "'%s' cannot punch holes (%m): no thin provisioning", path);
		return false;
	}
	/* A partition has no queue directory of its own: it shares its disk's. */
	snprintf(attribute, sizeof(attribute), "/sys/dev/block/%u:%u/queue/write_zeroes_max_bytes",
		 major(status.st_rdev), minor(status.st_rdev));
	if (access(attribute, F_OK) < 0)
		snprintf(attribute, sizeof(attribute),
			 "/sys/dev/block/%u:%u/../queue/write_zeroes_max_bytes",
			 major(status.st_rdev), minor(status.st_rdev));
	stream = fopen(attribute, "re");
	if (stream) {
		if (fscanf(stream, "%" SCNu64, &write_zeroes_bytes) != 1)
			write_zeroes_bytes = 0;
		fclose(stream);
	}
	if (write_zeroes_bytes == 0)
		tcmu_dev_info(dev, "'%s' cannot zero without writing: no thin provisioning", path);
	return write_zeroes_bytes > 0;
}

/* Makes the creation of path durable: its directory entry is metadata of the directory. */
static void file_sync_directory(struct tcmu_device *dev, const char *path)
{
	char *directory_copy = strdup(path);
	int directory_fd;

	if (!directory_copy) {
		tcmu_dev_warn(dev, "out of memory: the creation of '%s' is not synced", path);
		return;
	}
	directory_fd = open(dirname(directory_copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (directory_fd < 0 || fsync(directory_fd) < 0)
		tcmu_dev_warn(dev, "sync directory of '%s': %m", path);
	if (directory_fd >= 0)
		close(directory_fd);
	free(directory_copy);
}

/*
 * Opens (creating it when missing), locks and sizes the storage at path.
 * Returns the file descriptor or -errno; every failure is logged.
 */
int file_open_storage(struct tcmu_device *dev, const char *path, uint64_t size, bool any_size)
{
	char *reason = NULL;
	bool created = false;
	int result;
	int fd;

	result = file_check_path(path, &reason);
	if (result < 0) {
		tcmu_dev_err(dev, "%s", reason ? reason : "unusable path");
		free(reason);
		return result;
	}

	for (int attempt = 0; attempt < FILE_OPEN_ATTEMPTS; attempt++) {
		/*
		 * O_EXCL without O_CREAT claims a block device exclusively, as the
		 * kernel's block backstore does (EBUSY when mounted); files ignore it.
		 */
		fd = open(path, O_RDWR | O_EXCL | O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT)
			break;
		/* Never through a symbolic link: a dangling one fails with EEXIST. */
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			created = true;
			break;
		}
		if (errno != EEXIST)	/* created by somebody else meanwhile: retry */
			break;
	}
	if (fd < 0) {
		struct stat status;

		result = -errno;
		if (result == -EEXIST && lstat(path, &status) == 0 && S_ISLNK(status.st_mode))
			tcmu_dev_err(dev, "'%s' is a symbolic link to a file that does not exist; "
				     "files are not created through links", path);
		else if (result == -EBUSY)
			tcmu_dev_err(dev, "open '%s': %m (mounted, or in use by another program)",
				     path);
		else
			tcmu_dev_err(dev, "open '%s': %m", path);
		return result;
	}

	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		result = errno == EWOULDBLOCK ? -EBUSY : -errno;
		tcmu_dev_err(dev, "lock '%s': %m (another device or daemon uses this file)", path);
		goto out_close;
	}
	result = file_ensure_size(dev, fd, path, size,
				  created ? FILE_SIZING_GROW
				  : any_size ? FILE_SIZING_ANY : FILE_SIZING_EXACT);
	if (result < 0)
		goto out_close;
	if (created) {
		file_sync_directory(dev, path);
		tcmu_dev_info(dev, "created '%s'", path);
	}
	return fd;

out_close:
	close(fd);
	if (created)
		unlink(path);
	return result;
}
