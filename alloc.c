/* SPDX-License-Identifier: Apache-2.0 */
/*
 * alloc.c: a disk that lives in memory and survives daemon restarts.
 *
 * Configuration string
 * --------------------
 * The handler part of dev_config names the memory that holds the disk, a
 * file in the memory directory: "alloc/test_0" keeps the disk in
 * /run/tcmu/alloc/test_0, and targetcli lists "test_0" beside the device,
 * so that an administrator finds it. A name has up to 128 letters, digits,
 * '_', '.' and '-' and starts with neither '.' nor '-'. The empty string
 * (targetcli without cfgstring=) names it after the backstore,
 * "user_<hba>-<name>". Anything else, such as a path meant for the file
 * handler, is refused with a reason. Open refuses a name that another
 * alloc device in configfs uses: two devices never share a memory.
 *
 * Storage
 * -------
 * The memory directory, /run/tcmu/alloc (or $TCMU_ALLOC_DIRECTORY), belongs
 * to the daemon's user and nobody else may enter it: no local user can read
 * a disk, plant a file under a disk's name or fill the file system under it.
 * The systemd unit mounts a tmpfs of its own there; a daemon started
 * otherwise creates the directory in /run. A file is created with O_EXCL,
 * opened without following symbolic links and used only as a private
 * regular file of the daemon's user with one link; an advisory lock keeps
 * two daemons from serving it. It outlives the daemon: a daemon that
 * restarts, even after kill -9, finds the data again. The kernel's removal
 * of the device (the remove callback) deletes it; as a device removed while
 * no daemon ran cannot be told about, loading the handler deletes the files
 * that no alloc device in configfs names. Earlier versions kept the memory
 * in world-writable /dev/shm, as tcmu-alloc-user_<hba>-<name>: the first
 * open moves such a file of the daemon's user here, and leaves any other
 * alone, unread.
 *
 * The file is sparse: memory is used only for blocks that were written,
 * reads of holes return zeros without allocating (which is why I/O goes
 * through preadv/pwritev and not through a mapping, where a read fault on a
 * hole would allocate a page), UNMAP punches holes to give memory back and
 * GET LBA STATUS reports the holes (SEEK_HOLE/SEEK_DATA). Writes beyond the
 * capacity of the tmpfs fail with -ENOSPC. The memory counts as shared
 * memory (Shmem in /proc/meminfo), not as the daemon's RSS.
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

#define ALLOC_PARENT "/run/tcmu"
#define ALLOC_DIRECTORY ALLOC_PARENT "/alloc"
#define ALLOC_DIRECTORY_VARIABLE "TCMU_ALLOC_DIRECTORY"
#define ALLOC_OLD_DIRECTORY "/dev/shm"
#define ALLOC_OLD_PREFIX "tcmu-alloc-"
#define ALLOC_CONFIGFS_CORE "/sys/kernel/config/target/core"
#define ALLOC_NAME_MAX 128
#define ALLOC_NAME_CHARACTERS							\
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"
#define ALLOC_COPY_CHUNK (1024 * 1024)

#define ALLOC_CONFIG_DESCRIPTION						\
	"The name of the memory that holds the disk, a file in "		\
	ALLOC_DIRECTORY " (for example cfgstring=disk0):\n"			\
	"up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'.\n" \
	"Empty (no cfgstring=) names it user_<hba>-<name> after the backstore.\n" \
	"Memory is allocated as blocks are written, kept across daemon restarts\n" \
	"and freed when the backstore is deleted."

struct alloc_state {
	int fd;
	char *memory;
};

/* The memory directory, opened once; -1 until a device or load needs it. */
static int alloc_directory_fd = -1;

static const char *alloc_directory(void)
{
	const char *directory = getenv(ALLOC_DIRECTORY_VARIABLE);

	return directory && directory[0] ? directory : ALLOC_DIRECTORY;
}

/*
 * Opens the memory directory, creating it (and its parent) when missing.
 * Refuses a directory that another user owns; one of ours that others may
 * enter is made private.
 */
static int alloc_directory_open(void)
{
	const char *path = alloc_directory();
	struct stat status;
	int result;
	int fd;

	if (alloc_directory_fd >= 0)
		return 0;
	/* /run/tcmu, its parent, is missing on a first start outside systemd. */
	if (strcmp(path, ALLOC_DIRECTORY) == 0)
		mkdir(ALLOC_PARENT, 0755);
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		result = -errno;
		tcmu_err("alloc: create the memory directory '%s': %m", path);
		return result;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &status) < 0) {
		result = -errno;
		tcmu_err("alloc: open the memory directory '%s': %m", path);
	} else if (status.st_uid != geteuid()) {
		result = -EPERM;
		tcmu_err("alloc: the memory directory '%s' belongs to user %u, not to %u; refusing to use it",
			 path, (unsigned int)status.st_uid, (unsigned int)geteuid());
	} else if ((status.st_mode & (S_IRWXG | S_IRWXO)) && fchmod(fd, 0700) < 0) {
		result = -errno;
		tcmu_err("alloc: make the memory directory '%s' private: %m", path);
	} else {
		alloc_directory_fd = fd;
		return 0;
	}
	if (fd >= 0)
		close(fd);
	return result;
}

static bool alloc_name_valid(const char *name)
{
	size_t length = strlen(name);

	return length > 0 && length <= ALLOC_NAME_MAX && name[0] != '.' && name[0] != '-' &&
	       strspn(name, ALLOC_NAME_CHARACTERS) == length;
}

/* The malloc'd name of the memory for config and backstore, or NULL. */
static char *alloc_memory_name(const char *config, const char *backstore)
{
	char *name;

	if (config[0] != '\0')
		return strdup(config);
	name = strdup(backstore);
	if (name)
		for (char *c = name; *c; c++)
			if (*c == '/')
				*c = '-';
	return name;
}

/* Reads the configfs file "<backstore>/<attribute>": its first line, or -errno. */
static int alloc_configfs_read(const char *backstore, const char *attribute, char *buffer,
			       size_t size)
{
	ssize_t length = -1;
	char *path;
	int fd;

	if (asprintf(&path, ALLOC_CONFIGFS_CORE "/%s/%s", backstore, attribute) < 0)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return -errno;
	length = read(fd, buffer, size - 1);
	close(fd);
	if (length < 0)
		return -EIO;
	buffer[length] = '\0';
	buffer[strcspn(buffer, "\n")] = '\0';
	return 0;
}

/*
 * The name of the memory of the configfs device "user_<hba>/<name>" in
 * *ret_memory (malloc'd), or NULL when it is no enabled alloc device (one
 * that is not enabled holds no data yet). 0 or -errno.
 */
static int alloc_configfs_memory(const char *backstore, char **ret_memory)
{
	char dev_config[4096], enable[8];
	const char *config;
	int result;

	*ret_memory = NULL;
	result = alloc_configfs_read(backstore, "enable", enable, sizeof(enable));
	if (result == 0)
		result = alloc_configfs_read(backstore, "attrib/dev_config", dev_config,
					     sizeof(dev_config));
	if (result < 0)
		return result == -ENOENT || result == -ENOTDIR ? 0 : result;
	if (strcmp(enable, "1") != 0 || strncmp(dev_config, "alloc/", strlen("alloc/")) != 0)
		return 0;
	/* Options ("alloc/;name=value;<config>") end at the last ';', a name has none. */
	config = strrchr(dev_config, ';');
	*ret_memory = alloc_memory_name(config ? config + 1 : dev_config + strlen("alloc/"),
					backstore);
	return *ret_memory ? 0 : -ENOMEM;
}

/*
 * Whether an alloc device in configfs other than except_backstore (NULL:
 * none excepted) keeps its disk in the memory of that name: 1 (with its
 * backstore in *ret_owner, malloc'd, when not NULL), 0, or -errno when
 * configfs cannot tell.
 */
static int alloc_memory_owner(const char *memory, const char *except_backstore,
			      char **ret_owner)
{
	struct dirent **backstores;
	bool unknown = false;
	int result = 0;
	int count;

	/* Two levels, "user_<hba>/<name>", of which only directories are devices. */
	count = scandir(ALLOC_CONFIGFS_CORE, &backstores, NULL, alphasort);
	if (count < 0)
		return -errno;
	for (int i = 0; i < count; i++) {
		struct dirent **devices = NULL;
		int device_count = 0;
		char *hba_path;

		if (result == 0 && strncmp(backstores[i]->d_name, "user_", strlen("user_")) == 0 &&
		    asprintf(&hba_path, ALLOC_CONFIGFS_CORE "/%s", backstores[i]->d_name) >= 0) {
			device_count = scandir(hba_path, &devices, NULL, alphasort);
			free(hba_path);
		}
		for (int d = 0; d < device_count; d++) {
			char *backstore = NULL, *owner_memory = NULL;

			if (result == 0 && devices[d]->d_name[0] != '.' &&
			    asprintf(&backstore, "%s/%s", backstores[i]->d_name,
				     devices[d]->d_name) >= 0) {
				unknown |= alloc_configfs_memory(backstore, &owner_memory) < 0;
				result = owner_memory && strcmp(owner_memory, memory) == 0 &&
					 (!except_backstore || strcmp(backstore, except_backstore) != 0);
			}
			if (result == 1 && ret_owner && !*ret_owner)
				*ret_owner = backstore;
			else
				free(backstore);
			free(owner_memory);
			free(devices[d]);
		}
		free(devices);
		free(backstores[i]);
	}
	free(backstores);
	return result == 0 && unknown ? -EIO : result;
}

/* Whether fd is a regular file of ours that nobody else can reach. */
static bool alloc_file_private(const struct stat *status)
{
	return S_ISREG(status->st_mode) && status->st_uid == geteuid() &&
	       !(status->st_mode & (S_IRWXG | S_IRWXO)) && status->st_nlink == 1;
}

/* Deletes the files "<prefix><memory>" that no alloc device names. */
static void alloc_free_unnamed(const char *directory_path, const char *prefix)
{
	DIR *directory = opendir(directory_path);
	struct dirent *entry;

	if (!directory)
		return;
	while ((entry = readdir(directory))) {
		struct stat status;

		if (entry->d_name[0] == '.' ||
		    strncmp(entry->d_name, prefix, strlen(prefix)) != 0 ||
		    alloc_memory_owner(entry->d_name + strlen(prefix), NULL, NULL) != 0)
			continue;
		/* In /dev/shm, a file of another user is not ours to delete. */
		if (fstatat(dirfd(directory), entry->d_name, &status, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(status.st_mode) || status.st_uid != geteuid())
			continue;
		if (unlinkat(dirfd(directory), entry->d_name, 0) == 0)
			tcmu_info("alloc: freed memory '%s/%s' of a device removed while no daemon ran",
				  directory_path, entry->d_name);
		else
			tcmu_warn("alloc: unlink '%s/%s': %m", directory_path, entry->d_name);
	}
	closedir(directory);
}

static int alloc_load(void)
{
	tcmu_info("alloc: handler_init");
	/* A failure is logged; each open tries again and refuses with the reason. */
	if (alloc_directory_open() == 0)
		tcmu_info("alloc: memory directory '%s'", alloc_directory());
	/* Without the target configfs there is no telling which devices exist. */
	if (access(ALLOC_CONFIGFS_CORE, F_OK) < 0)
		return 0;
	if (alloc_directory_fd >= 0)
		alloc_free_unnamed(alloc_directory(), "");
	alloc_free_unnamed(ALLOC_OLD_DIRECTORY, ALLOC_OLD_PREFIX);
	return 0;
}

static void alloc_unload(void)
{
	if (alloc_directory_fd >= 0)
		close(alloc_directory_fd);
	alloc_directory_fd = -1;
}

static int alloc_check_config(const char *config, char **ret_reason)
{
	*ret_reason = NULL;
	if (config[0] == '\0' || alloc_name_valid(config))
		return 0;
	if (asprintf(ret_reason,
		     "alloc's config string is the name of the memory that holds the disk, a file in %s: "
		     "up to %d letters, digits, '_', '.' and '-', not starting with '.' or '-' "
		     "(or empty, for user_<hba>-<name>); got '%s'",
		     alloc_directory(), ALLOC_NAME_MAX, config) < 0)
		*ret_reason = NULL;
	return -EINVAL;
}

/* Copies the data regions of from into to, leaving holes as holes. */
static int alloc_copy_sparse(int from, int to, uint64_t size)
{
	struct iovec iov = { .iov_len = ALLOC_COPY_CHUNK };
	uint64_t position = 0;
	int result = 0;

	iov.iov_base = malloc(ALLOC_COPY_CHUNK);
	if (!iov.iov_base)
		return -ENOMEM;
	while (result == 0 && position < size) {
		off_t data = lseek(from, (off_t)position, SEEK_DATA);
		off_t hole = data < 0 ? -1 : lseek(from, data, SEEK_HOLE);

		if (hole < 0) {
			result = data < 0 && errno == ENXIO ? 0 : -errno;
			break;
		}
		for (position = (uint64_t)data; result == 0 && position < (uint64_t)hole;
		     position += iov.iov_len) {
			iov.iov_len = (uint64_t)hole - position < ALLOC_COPY_CHUNK ?
				      (size_t)((uint64_t)hole - position) : ALLOC_COPY_CHUNK;
			result = tcmu_fd_read(from, &iov, 1, position, iov.iov_len);
			if (result == 0)
				result = tcmu_fd_write(to, &iov, 1, position, iov.iov_len);
		}
	}
	free(iov.iov_base);
	if (result == 0 && ftruncate(to, (off_t)size) < 0)
		result = -errno;
	return result;
}

/*
 * Moves the memory of an earlier version, /dev/shm/tcmu-alloc-<memory>,
 * into the new, empty file fd. 0 (also when there is none, or none of
 * ours) or -errno: then fd holds nothing that counts and the old file is
 * intact.
 */
static int alloc_migrate(struct tcmu_device *dev, int fd, const char *memory)
{
	struct stat status;
	char *old_path;
	int result;
	int old;

	if (asprintf(&old_path, ALLOC_OLD_DIRECTORY "/" ALLOC_OLD_PREFIX "%s", memory) < 0)
		return -ENOMEM;
	old = open(old_path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (old < 0) {
		result = 0;
		if (errno == ELOOP)
			tcmu_dev_warn(dev, "'%s' is a symbolic link; left alone, not followed",
				      old_path);
		else if (errno != ENOENT)
			result = -errno;
		if (result < 0)
			tcmu_dev_err(dev, "open '%s' to move its data: %m", old_path);
		goto out_free;
	}
	if (fstat(old, &status) < 0 || !alloc_file_private(&status)) {
		tcmu_dev_warn(dev, "'%s' is not a private file of user %u; left alone, not read",
			      old_path, (unsigned int)geteuid());
		result = 0;
		goto out_close;
	}
	if (flock(old, LOCK_EX | LOCK_NB) < 0) {
		result = errno == EWOULDBLOCK ? -EBUSY : -errno;
		tcmu_dev_err(dev, "lock '%s': %m (another process serves this device)", old_path);
		goto out_close;
	}
	result = alloc_copy_sparse(old, fd, (uint64_t)status.st_size);
	if (result < 0) {
		tcmu_dev_err(dev, "move the data of '%s' to '%s/%s': %s; '%s' is kept", old_path,
			     alloc_directory(), memory, strerror(-result), old_path);
		goto out_close;
	}
	if (unlink(old_path) < 0)
		tcmu_dev_warn(dev, "unlink '%s': %m (its data now lives in '%s/%s')", old_path,
			      alloc_directory(), memory);
	tcmu_dev_info(dev, "memory '%s' moved to '%s/%s'", old_path, alloc_directory(), memory);
out_close:
	close(old);
out_free:
	free(old_path);
	return result;
}

/*
 * Opens the memory file, creating it when missing (with the data of the
 * old location when there is some). The descriptor or -errno.
 */
static int alloc_memory_open(struct tcmu_device *dev, const char *memory)
{
	bool created = false;
	struct stat status;
	int result;
	int fd;

	fd = openat(alloc_directory_fd, memory, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		fd = openat(alloc_directory_fd, memory,
			    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		created = fd >= 0;
	}
	if (fd < 0) {
		result = -errno;
		tcmu_dev_err(dev, "open '%s/%s': %m", alloc_directory(), memory);
		return result;
	}
	if (fstat(fd, &status) < 0) {
		result = -errno;
		tcmu_dev_err(dev, "stat '%s/%s': %m", alloc_directory(), memory);
		goto out_close;
	}
	if (!alloc_file_private(&status)) {
		result = -EPERM;
		tcmu_dev_err(dev, "'%s/%s' is not a private regular file of user %u with one link (%ju links); refusing to use it",
			     alloc_directory(), memory, (unsigned int)geteuid(),
			     (uintmax_t)status.st_nlink);
		goto out_close;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		result = errno == EWOULDBLOCK ? -EBUSY : -errno;
		tcmu_dev_err(dev, "lock '%s/%s': %m (another process serves this device)",
			     alloc_directory(), memory);
		goto out_close;
	}
	if (created) {
		result = alloc_migrate(dev, fd, memory);
		if (result < 0) {
			unlinkat(alloc_directory_fd, memory, 0);
			goto out_close;
		}
	}
	return fd;

out_close:
	close(fd);
	return result;
}

static int alloc_open(struct tcmu_device *dev)
{
	const char *backstore = tcmu_device_get_backstore(dev);
	uint64_t size = tcmu_device_get_size(dev);
	struct alloc_state *state;
	char *reason = NULL;
	char *owner = NULL;
	struct stat status;
	int result;
	int fd;

	tcmu_dev_info(dev, "alloc_open");
	tcmu_dev_info(dev, "dev size: %" PRIu64, size);

	/* A name with a '/' would leave the memory directory. */
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
	result = alloc_directory_open();
	if (result < 0) {
		tcmu_dev_err(dev, "no usable memory directory '%s': %s", alloc_directory(),
			     strerror(-result));
		return result;
	}
	state = calloc(1, sizeof(*state));
	if (!state)
		return -ENOMEM;
	state->memory = alloc_memory_name(tcmu_device_get_config(dev), backstore);
	if (!state->memory) {
		result = -ENOMEM;
		goto out_free;
	}
	if (alloc_memory_owner(state->memory, backstore, &owner) == 1) {
		tcmu_dev_err(dev, "memory '%s' holds the disk of %s; give this device another name",
			     state->memory, owner);
		free(owner);
		result = -EEXIST;
		goto out_free;
	}
	fd = alloc_memory_open(dev, state->memory);
	if (fd < 0) {
		result = fd;
		goto out_free;
	}
	if (fstat(fd, &status) < 0) {
		result = -errno;
		goto out_close;
	}
	if ((uint64_t)status.st_size != size && ftruncate(fd, (off_t)size) < 0) {
		result = -errno;
		tcmu_dev_err(dev, "resize '%s/%s' to %" PRIu64 " bytes: %m", alloc_directory(),
			     state->memory, size);
		goto out_close;
	}
	state->fd = fd;
	tcmu_device_set_private(dev, state);
	if (status.st_size > 0)
		tcmu_dev_info(dev, "memory '%s/%s' re-attached, %" PRIu64 " bytes in use",
			      alloc_directory(), state->memory, (uint64_t)status.st_blocks * 512);
	else
		tcmu_dev_info(dev, "memory '%s/%s' created", alloc_directory(), state->memory);
	return 0;

out_close:
	close(fd);
out_free:
	free(state->memory);
	free(state);
	return result;
}

static void alloc_close(struct tcmu_device *dev)
{
	struct alloc_state *state = tcmu_device_get_private(dev);

	tcmu_device_set_private(dev, NULL);
	close(state->fd);
	free(state->memory);
	free(state);
}

static void alloc_remove(struct tcmu_device *dev)
{
	char *memory = alloc_memory_name(tcmu_device_get_config(dev),
					 tcmu_device_get_backstore(dev));

	if (!memory || alloc_directory_fd < 0) {
		tcmu_dev_err(dev, "cannot free the device's memory in %s: %s", alloc_directory(),
			     memory ? "no memory directory" : "out of memory");
		free(memory);
		return;
	}
	if (unlinkat(alloc_directory_fd, memory, 0) == 0)
		tcmu_dev_info(dev, "memory '%s/%s' freed", alloc_directory(), memory);
	else if (errno != ENOENT)
		tcmu_dev_err(dev, "unlink '%s/%s': %m", alloc_directory(), memory);
	free(memory);
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
		char *memory;
		int result = alloc_check_config(change->config, &reason);

		if (result < 0) {
			tcmu_dev_err(dev, "%s", reason ? reason : "invalid configuration");
			free(reason);
			return result;
		}
		memory = alloc_memory_name(change->config, tcmu_device_get_backstore(dev));
		if (!memory)
			return -ENOMEM;
		result = strcmp(memory, state->memory) == 0 ? 0 : -EINVAL;
		if (result < 0)
			tcmu_dev_err(dev, "config '%s' names the memory '%s', but the disk is in '%s'; the memory of a device keeps its name",
				     change->config, memory, state->memory);
		free(memory);
		if (result < 0)
			return result;
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
	.name = "Memory disk, kept in a private tmpfs across daemon restarts",
	.config_description = ALLOC_CONFIG_DESCRIPTION,
	.load = alloc_load,
	.unload = alloc_unload,
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
