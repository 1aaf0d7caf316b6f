/* SPDX-License-Identifier: Apache-2.0 */
/*
 * alloc.c: a disk that lives in memory and survives daemon restarts.
 *
 * Configuration string
 * --------------------
 * alloc takes no configuration: the handler part of dev_config must be
 * empty ("alloc/" in configfs, cfgstring= in targetcli). Anything else is
 * refused by check_config with a reason, so that a string meant for another
 * handler is not silently ignored. The size is the device's dev_size.
 *
 * Storage
 * -------
 * The data is kept in a file in shared memory named after the backstore,
 * /dev/shm/tcmu-alloc-<hba>-<name> (the '/' of "user_<hba>/<name>" becomes
 * '-'; the HBA part is always "user_<number>", so distinct backstores never
 * map to one file). The file outlives the daemon: a daemon that restarts,
 * even after kill -9, finds the data again when the kernel's device is
 * opened. The removal of the device from the kernel (the remove callback)
 * deletes it. A device removed while no daemon ran cannot be told about, so
 * when the handler is loaded it deletes the memory files of alloc devices
 * that configfs no longer has; otherwise a new device of the same name would
 * start with the old one's data.
 *
 * The file is sparse: memory is used only for blocks that were written,
 * reads of holes return zeros without allocating (which is why I/O goes
 * through preadv/pwritev and not through a mapping, where a read fault on a
 * hole would allocate a page), UNMAP punches holes to give memory back and
 * GET LBA STATUS reports the holes (SEEK_HOLE/SEEK_DATA). Writes beyond the
 * capacity of /dev/shm fail with -ENOSPC. The memory shows in the shared
 * memory of the system (Shmem in /proc/meminfo, du of the file), not in the
 * daemon's RSS.
 *
 * /dev/shm is writable by every user, so the file is opened without
 * following symbolic links and must be a regular file owned by the daemon's
 * user, accessible to nobody else; otherwise open refuses it rather than
 * exposing or importing somebody else's data. An advisory lock keeps two
 * daemons from serving the same memory.
 */
#include "libtcmu.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define ALLOC_SHM_DIRECTORY "/dev/shm"
#define ALLOC_SHM_PREFIX "tcmu-alloc-"
#define ALLOC_CONFIGFS_CORE "/sys/kernel/config/target/core"

#define ALLOC_CONFIG_DESCRIPTION						\
	"alloc takes no configuration string: leave it empty (cfgstring=).\n"	\
	"The disk lives in shared memory, " ALLOC_SHM_DIRECTORY "/"		\
	ALLOC_SHM_PREFIX "<hba>-<name>, allocated as blocks are written,\n"	\
	"kept across daemon restarts and freed when the backstore is deleted."

struct alloc_state {
	int fd;
};

/*
 * Whether configfs has an alloc device for the memory file named
 * "user_<hba>-<name>" after the prefix. Unknown is taken as yes.
 */
static bool alloc_device_exists(const char *backstore)
{
	char dev_config[sizeof("alloc/")] = "";
	size_t hba_length;
	char *path;
	bool exists;
	int fd;

	if (strncmp(backstore, "user_", strlen("user_")) != 0)
		return true;
	hba_length = strlen("user_") + strspn(backstore + strlen("user_"), "0123456789");
	if (hba_length == strlen("user_") || backstore[hba_length] != '-')
		return true;
	if (asprintf(&path, ALLOC_CONFIGFS_CORE "/%.*s/%s/attrib/dev_config",
		     (int)hba_length, backstore, backstore + hba_length + 1) < 0)
		return true;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return errno != ENOENT;
	/* Another subtype now under that name: the memory is not its data. */
	exists = read(fd, dev_config, sizeof(dev_config) - 1) < 0 ||
		 strcmp(dev_config, "alloc/") == 0;
	close(fd);
	return exists;
}

static void alloc_free_memory_of_removed_devices(void)
{
	struct dirent *entry;
	DIR *directory;

	/* Without the target configfs there is no telling which devices exist. */
	if (access(ALLOC_CONFIGFS_CORE, F_OK) < 0)
		return;
	directory = opendir(ALLOC_SHM_DIRECTORY);
	if (!directory)
		return;
	while ((entry = readdir(directory))) {
		if (strncmp(entry->d_name, ALLOC_SHM_PREFIX, strlen(ALLOC_SHM_PREFIX)) != 0 ||
		    alloc_device_exists(entry->d_name + strlen(ALLOC_SHM_PREFIX)))
			continue;
		if (unlinkat(dirfd(directory), entry->d_name, 0) == 0)
			tcmu_info("alloc: freed memory '" ALLOC_SHM_DIRECTORY "/%s' of a device removed while no daemon ran",
				  entry->d_name);
		else
			tcmu_warn("alloc: unlink '" ALLOC_SHM_DIRECTORY "/%s': %m", entry->d_name);
	}
	closedir(directory);
}

static int alloc_load(void)
{
	tcmu_info("alloc: handler_init");
	alloc_free_memory_of_removed_devices();
	return 0;
}

static int alloc_check_config(const char *config, char **ret_reason)
{
	*ret_reason = NULL;
	if (config[0] == '\0')
		return 0;
	if (asprintf(ret_reason,
		     "alloc takes no configuration string, got '%s'; leave it empty",
		     config) < 0)
		*ret_reason = NULL;
	return -EINVAL;
}

/* Returns the malloc'd path of the device's memory file, or NULL. */
static char *alloc_shm_path(const struct tcmu_device *dev)
{
	char *path;

	if (asprintf(&path, ALLOC_SHM_DIRECTORY "/" ALLOC_SHM_PREFIX "%s",
		     tcmu_device_get_backstore(dev)) < 0)
		return NULL;
	for (char *c = path + strlen(ALLOC_SHM_DIRECTORY "/"); *c; c++)
		if (*c == '/')
			*c = '-';
	return path;
}

static int alloc_open(struct tcmu_device *dev)
{
	uint64_t size = tcmu_device_get_size(dev);
	char *reason = NULL;
	struct alloc_state *state;
	struct stat status;
	char *path;
	int result;
	int fd;

	tcmu_dev_info(dev, "alloc_open");
	tcmu_dev_info(dev, "dev size: %" PRIu64, size);

	result = alloc_check_config(tcmu_device_get_config(dev), &reason);
	if (result < 0) {
		tcmu_dev_err(dev, "%s", reason ? reason : "invalid configuration");
		free(reason);
		return result;
	}
	if (size > (uint64_t)INT64_MAX) {
		tcmu_dev_err(dev, "size %" PRIu64 " is too large", size);
		return -EFBIG;
	}

	path = alloc_shm_path(dev);
	if (!path)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		result = -errno;
		tcmu_dev_err(dev, "open '%s': %m", path);
		goto out_free_path;
	}
	if (fstat(fd, &status) < 0) {
		result = -errno;
		tcmu_dev_err(dev, "stat '%s': %m", path);
		goto out_close;
	}
	if (!S_ISREG(status.st_mode) || status.st_uid != geteuid() ||
	    (status.st_mode & (S_IRWXG | S_IRWXO))) {
		result = -EPERM;
		tcmu_dev_err(dev, "'%s' is not a private regular file of user %u; refusing to use it",
			     path, (unsigned int)geteuid());
		goto out_close;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		result = -errno;
		if (errno == EWOULDBLOCK)
			result = -EBUSY;
		tcmu_dev_err(dev, "lock '%s': %m (another process serves this device)", path);
		goto out_close;
	}
	if ((uint64_t)status.st_size != size && ftruncate(fd, (off_t)size) < 0) {
		result = -errno;
		tcmu_dev_err(dev, "resize '%s' to %" PRIu64 " bytes: %m", path, size);
		goto out_close;
	}

	state = malloc(sizeof(*state));
	if (!state) {
		result = -ENOMEM;
		goto out_close;
	}
	state->fd = fd;
	tcmu_device_set_private(dev, state);
	if (status.st_size > 0)
		tcmu_dev_info(dev, "memory '%s' re-attached, %" PRIu64 " bytes in use",
			      path, (uint64_t)status.st_blocks * 512);
	else
		tcmu_dev_info(dev, "memory '%s' created", path);
	free(path);
	return 0;

out_close:
	close(fd);
out_free_path:
	free(path);
	return result;
}

static void alloc_close(struct tcmu_device *dev)
{
	struct alloc_state *state = tcmu_device_get_private(dev);

	tcmu_device_set_private(dev, NULL);
	close(state->fd);
	free(state);
}

static void alloc_remove(struct tcmu_device *dev)
{
	char *path = alloc_shm_path(dev);

	if (!path) {
		tcmu_dev_err(dev, "out of memory: its memory file in " ALLOC_SHM_DIRECTORY
			     " is left behind");
		return;
	}
	if (unlink(path) == 0)
		tcmu_dev_info(dev, "memory '%s' freed", path);
	else if (errno != ENOENT)
		tcmu_dev_err(dev, "unlink '%s': %m", path);
	free(path);
}

static int alloc_read(struct tcmu_device *dev, struct tcmu_request *req,
		      const struct iovec *iov, size_t iov_count,
		      uint64_t offset, uint64_t length)
{
	struct alloc_state *state = tcmu_device_get_private(dev);

	/*
	 * The range is not asserted against the device size: a request checked
	 * against the size before a reconfiguration may arrive after it.
	 */
	tcmu_request_complete(req, tcmu_fd_read(state->fd, iov, iov_count, offset, length));
	return 0;
}

static int alloc_write(struct tcmu_device *dev, struct tcmu_request *req,
		       const struct iovec *iov, size_t iov_count,
		       uint64_t offset, uint64_t length, uint32_t flags)
{
	struct alloc_state *state = tcmu_device_get_private(dev);

	/* Memory is as stable as this medium gets: FUA needs nothing more. */
	(void)flags;
	tcmu_request_complete(req, tcmu_fd_write(state->fd, iov, iov_count, offset, length));
	return 0;
}

static int alloc_flush(struct tcmu_device *dev, struct tcmu_request *req)
{
	(void)dev;
	tcmu_request_complete(req, 0);
	return 0;
}

static int alloc_unmap(struct tcmu_device *dev, struct tcmu_request *req,
		       uint64_t offset, uint64_t length)
{
	struct alloc_state *state = tcmu_device_get_private(dev);
	int result = 0;

	if (fallocate(state->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)offset, (off_t)length) < 0) {
		result = -errno;
		tcmu_dev_err(dev, "punch hole at %" PRIu64 " length %" PRIu64 ": %m",
			     offset, length);
	}
	tcmu_request_complete(req, result);
	return 0;
}

static int alloc_get_lba_status(struct tcmu_device *dev, uint64_t offset, uint64_t length,
				bool *ret_mapped, uint64_t *ret_length)
{
	struct alloc_state *state = tcmu_device_get_private(dev);

	assert(length > 0);
	return tcmu_fd_extent(state->fd, offset, length, ret_mapped, ret_length);
}

static int alloc_reconfigure(struct tcmu_device *dev,
			     const struct tcmu_device_change *change)
{
	struct alloc_state *state = tcmu_device_get_private(dev);

	if (change->what & TCMU_CHANGE_CONFIG) {
		char *reason = NULL;
		int result = alloc_check_config(change->config, &reason);

		if (result < 0) {
			tcmu_dev_err(dev, "%s", reason ? reason : "invalid configuration");
			free(reason);
			return result;
		}
	}
	if (change->what & TCMU_CHANGE_SIZE) {
		if (change->size > (uint64_t)INT64_MAX) {
			tcmu_dev_err(dev, "size %" PRIu64 " is too large", change->size);
			return -EFBIG;
		}
		/* Growing adds holes; shrinking keeps what lies inside the new size. */
		if (ftruncate(state->fd, (off_t)change->size) < 0) {
			int result = -errno;

			tcmu_dev_err(dev, "resize to %" PRIu64 " bytes: %m", change->size);
			return result;
		}
		tcmu_dev_info(dev, "dev size: %" PRIu64, change->size);
	}
	return 0;
}

static struct tcmu_handler alloc_handler = {
	.subtype = "alloc",
	.name = "Memory disk, kept in shared memory across daemon restarts",
	.config_description = ALLOC_CONFIG_DESCRIPTION,
	.load = alloc_load,
	.check_config = alloc_check_config,
	.open = alloc_open,
	.close = alloc_close,
	.remove = alloc_remove,
	.read = alloc_read,
	.write = alloc_write,
	.flush = alloc_flush,
	.unmap = alloc_unmap,
	.reconfigure = alloc_reconfigure,
	.get_lba_status = alloc_get_lba_status,
	.flags = TCMU_HANDLER_NON_ROTATING,
};

TCMU_HANDLER_REGISTER(alloc_handler)
