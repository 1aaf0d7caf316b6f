/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_example.c: a disk kept in a file (or on a block device).
 *
 * Configuration string
 * --------------------
 * The handler part of dev_config is the path of the file that holds the
 * disk's data, taken verbatim (no quoting; spaces are part of the name),
 * after an optional "any_size:":
 *
 *   /var/lib/tcmu/disk0.img    absolute path
 *   disk0.img                  relative to the daemon's working directory
 *   any_size:disk0.img         the existing file may have another size
 *
 * A missing file is created (mode 0600, sparse) with the device size. An
 * existing file must have the device size: one of another size may be
 * another disk's, so it is refused unless any_size: says to grow a smaller
 * one (the new part reads as zeros) or use the head of a larger one (never
 * shrunk). A device that grows grows its file; one that shrinks needs
 * any_size:. A block device must be at least dev_size bytes and is opened
 * exclusively (O_EXCL), so a mounted one is refused. A symbolic link is
 * followed to what exists; no file is created through one.
 * check_config refuses, with the reason, an empty path, a path with control
 * characters, a directory, anything that is neither a regular file nor a
 * block device, a file that cannot be read and written, a symbolic link to
 * a missing file, and a missing file whose directory does not exist or does
 * not allow creating it.
 *
 * I/O
 * ---
 * Reads, writes and flushes are asynchronous, many of a device in flight on
 * an io_uring of its own (file_uring.c), completed from the device's ring
 * thread. Where io_uring cannot be set up (an old kernel, a seccomp filter
 * without io_uring_setup), or when the daemon's environment has
 * TCMU_FILE_SYNC_IO=1 (for tests), they are done one at a time on the ring
 * thread instead; the log says at open which of the two a device uses.
 *
 * Durability
 * ----------
 * Writes go to the page cache. A FUA write, or any write while the device's
 * write cache is disabled, is written through (RWF_DSYNC, or an fdatasync
 * after it when synchronous); a flush (SYNCHRONIZE CACHE) is an fdatasync
 * that starts once every request in flight before it completed. Once a
 * sync has failed, data acknowledged
 * earlier may be lost, so every later flush and durable write fails with the
 * same error until the medium is changed or the device reopened. The same
 * goes, with -EIO, for a file deleted while in use (its data would vanish
 * when the device closes) from the first flush that notices it.
 * UNMAP punches holes (fallocate) so the file's allocated size falls, and
 * without a write cache syncs them. Storage that cannot punch (vfat, NFSv3,
 * a block device without write zeroes; probed at open and medium change)
 * gets no thin provisioning. GET LBA STATUS reports the file's holes as
 * deallocated (SEEK_HOLE/SEEK_DATA).
 *
 * Reconfiguration: a new size grows the file as at open; a new path opens
 * (and sizes) the new file first and switches only when that succeeded, so a
 * failure leaves the old file in use. An advisory lock (flock) keeps two
 * devices or daemons from using the same file.
 */
#include "libtcmu.h"
#include "file_config.h"
#include "file_uring.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define FILE_CONFIG_DESCRIPTION							\
	"The path of the file that holds the disk, absolute or relative to the\n"	\
	"daemon's working directory, taken verbatim (e.g. /var/lib/tcmu/disk0.img).\n" \
	"A missing file is created (mode 0600) with the device size; an existing\n" \
	"one must have the device size unless the path is preceded by any_size:\n" \
	"(e.g. any_size:/var/lib/tcmu/disk0.img), which grows a smaller file and\n" \
	"uses the head of a larger one. A block device must be at least the device\n" \
	"size and not in use (mounted)."

#define FILE_OPEN_ATTEMPTS 3	/* of a path that keeps changing under us */

/* What file_ensure_size may do to a regular file whose size is not the device's. */
enum file_sizing {
	FILE_SIZING_EXACT,	/* nothing: an existing file nobody said to resize */
	FILE_SIZING_GROW,	/* grow a smaller one: just created, or the device grew */
	FILE_SIZING_ANY,	/* grow a smaller one, use the head of a larger one */
};

struct file_state {
	/*
	 * I/O holds it shared, switching to another file holds it exclusive,
	 * so no request uses a file descriptor that is being closed.
	 */
	pthread_rwlock_t lock;
	int fd;
	char *path;
	bool any_size;		/* the config's any_size: option */
	/* 0, or the -errno of the first failed fdatasync of this file. */
	int durability_error;
	/* A failing disk fails every request: log the first one at error level only. */
	bool io_error_logged;
	struct file_uring *uring;	/* NULL: synchronous I/O */
};

static int file_check_config(const char *config, char **ret_reason)
{
	return file_check_path(file_config_path(config, NULL), ret_reason);
}

/*
 * Makes the storage behind fd hold size bytes as sizing allows: grows a
 * regular file, checks a block device (at least size bytes). Never shrinks.
 * Returns 0 or -errno, logged.
 */
static int file_ensure_size(struct tcmu_device *dev, int fd, const char *path,
			    uint64_t size, enum file_sizing sizing)
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
static bool file_can_punch(struct tcmu_device *dev, int fd, const char *path)
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
static int file_open_storage(struct tcmu_device *dev, const char *path, uint64_t size,
			     bool any_size)
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

/*
 * Whether the file was deleted while in use; its data is then lost when the
 * device closes, so durable requests fail with -EIO from now on. An fstat
 * per durable write would cost the hot path a system call: flushes check,
 * and durable writes only when the write or fdatasync failed.
 */
static bool file_check_deleted(struct tcmu_device *dev, struct file_state *state)
{
	struct stat status;

	if (fstat(state->fd, &status) < 0 || !S_ISREG(status.st_mode) || status.st_nlink > 0)
		return false;
	if (__atomic_exchange_n(&state->durability_error, -EIO, __ATOMIC_SEQ_CST) != -EIO)
		tcmu_dev_err(dev, "'%s' was deleted: writes are lost when the device closes; "
			     "later flushes fail until the medium changes", state->path);
	return true;
}

/* A failed sync: data acknowledged earlier may be lost. Returns the request's error. */
static int file_sync_failed(struct tcmu_device *dev, struct file_state *state, int error)
{
	if (file_check_deleted(dev, state))
		return -EIO;
	errno = -error;
	tcmu_dev_err(dev, "fdatasync '%s': %m; later flushes fail until the medium changes",
		     state->path);
	__atomic_store_n(&state->durability_error, error, __ATOMIC_SEQ_CST);
	return error;
}

/* fdatasync with the sticky error described at the top. Returns 0 or -errno. */
static int file_sync(struct tcmu_device *dev, struct file_state *state, bool check_deleted)
{
	int result = __atomic_load_n(&state->durability_error, __ATOMIC_SEQ_CST);

	if (result < 0)
		return result;
	while (fdatasync(state->fd) < 0) {
		if (errno != EINTR)
			return file_sync_failed(dev, state, -errno);
	}
	if (check_deleted && file_check_deleted(dev, state))
		return -EIO;
	return 0;
}

static void file_uring_done(struct tcmu_device *dev, struct tcmu_request *req,
			    enum file_uring_operation operation, uint64_t offset,
			    uint64_t length, bool durable, int result);

static int file_open(struct tcmu_device *dev)
{
	pthread_rwlockattr_t lock_attributes;
	struct file_state *state;
	const char *path;
	bool any_size;
	int result;

	path = file_config_path(tcmu_device_get_config(dev), &any_size);

	tcmu_dev_info(dev, "file_open '%s'", path);
	tcmu_dev_info(dev, "dev size: %" PRIu64, tcmu_device_get_size(dev));

	state = calloc(1, sizeof(*state));
	if (!state)
		return -ENOMEM;
	state->path = strdup(path);
	if (!state->path) {
		result = -ENOMEM;
		goto out_free_state;
	}
	pthread_rwlockattr_init(&lock_attributes);
	/* A file switch must not wait behind an endless stream of I/O. */
	pthread_rwlockattr_setkind_np(&lock_attributes,
				      PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	result = -pthread_rwlock_init(&state->lock, &lock_attributes);
	pthread_rwlockattr_destroy(&lock_attributes);
	if (result < 0)
		goto out_free_path;
	state->durability_error = 0;
	state->io_error_logged = false;

	state->any_size = any_size;
	state->fd = file_open_storage(dev, path, tcmu_device_get_size(dev), any_size);
	if (state->fd < 0) {
		result = state->fd;
		goto out_destroy_lock;
	}
	tcmu_device_set_unmap_supported(dev, file_can_punch(dev, state->fd, path));
	tcmu_device_set_private(dev, state);
	if (file_uring_open(dev, state->fd, file_uring_done, &state->uring) < 0)
		state->uring = NULL;
	return 0;

out_destroy_lock:
	pthread_rwlock_destroy(&state->lock);
out_free_path:
	free(state->path);
out_free_state:
	free(state);
	return result;
}

static void file_close(struct tcmu_device *dev)
{
	struct file_state *state = tcmu_device_get_private(dev);

	/* The page cache outlives us, but not a power failure after shutdown. */
	file_sync(dev, state, true);
	if (state->uring)
		file_uring_close(state->uring);
	tcmu_device_set_private(dev, NULL);
	/* Unlocked now: an io_uring lets go of its file some time after it ends. */
	flock(state->fd, LOCK_UN);
	close(state->fd);
	pthread_rwlock_destroy(&state->lock);
	free(state->path);
	free(state);
}

static void file_log_io_error(struct tcmu_device *dev, struct file_state *state,
			      const char *operation, uint64_t offset, uint64_t length,
			      int error)
{
	int level = __atomic_exchange_n(&state->io_error_logged, true, __ATOMIC_SEQ_CST)
			    ? TCMU_LOG_DEBUG : TCMU_LOG_ERROR;

	errno = -error;
	tcmu_log_at(level, dev, "%s of %" PRIu64 " bytes at %" PRIu64 " in '%s': %m",
		    operation, length, offset, state->path);
}

static int file_read(struct tcmu_device *dev, struct tcmu_request *req,
		     const struct iovec *iov, size_t iov_count,
		     uint64_t offset, uint64_t length)
{
	struct file_state *state = tcmu_device_get_private(dev);
	int result;

	/*
	 * The range is not asserted against the device size: a request checked
	 * against the size before a reconfiguration may arrive after it.
	 */
	if (state->uring)
		return file_uring_read(state->uring, req, iov, iov_count, offset, length);
	pthread_rwlock_rdlock(&state->lock);
	result = tcmu_fd_read(state->fd, iov, iov_count, offset, length);
	/* Under the lock: a medium change frees state->path. */
	if (result < 0)
		file_log_io_error(dev, state, "read", offset, length, result);
	pthread_rwlock_unlock(&state->lock);
	tcmu_request_complete(req, result);
	return 0;
}

static int file_write(struct tcmu_device *dev, struct tcmu_request *req,
		      const struct iovec *iov, size_t iov_count,
		      uint64_t offset, uint64_t length, uint32_t flags)
{
	struct file_state *state = tcmu_device_get_private(dev);
	bool durable = (flags & TCMU_WRITE_FUA) || !tcmu_device_get_write_cache(dev);
	int result;

	if (state->uring)
		return file_uring_write(state->uring, req, iov, iov_count, offset, length, durable);
	pthread_rwlock_rdlock(&state->lock);
	result = tcmu_fd_write(state->fd, iov, iov_count, offset, length);
	if (result < 0) {
		file_log_io_error(dev, state, "write", offset, length, result);
		file_check_deleted(dev, state);
	} else if (durable) {
		result = file_sync(dev, state, false);
	}
	pthread_rwlock_unlock(&state->lock);
	tcmu_request_complete(req, result);
	return 0;
}

static int file_flush(struct tcmu_device *dev, struct tcmu_request *req)
{
	struct file_state *state = tcmu_device_get_private(dev);
	int result = __atomic_load_n(&state->durability_error, __ATOMIC_SEQ_CST);

	if (state->uring && result == 0)
		return file_uring_flush(state->uring, req);
	pthread_rwlock_rdlock(&state->lock);
	result = file_sync(dev, state, true);
	pthread_rwlock_unlock(&state->lock);
	tcmu_request_complete(req, result);
	return 0;
}

/* The end of a request done on the io_uring: as the synchronous path ends it. */
static void file_uring_done(struct tcmu_device *dev, struct tcmu_request *req,
			    enum file_uring_operation operation, uint64_t offset,
			    uint64_t length, bool durable, int result)
{
	struct file_state *state = tcmu_device_get_private(dev);

	pthread_rwlock_rdlock(&state->lock);
	if (operation == FILE_URING_FLUSH) {
		result = result < 0 ? file_sync_failed(dev, state, result)
				    : file_check_deleted(dev, state) ? -EIO : 0;
	} else if (result < 0) {
		file_log_io_error(dev, state, operation == FILE_URING_READ ? "read" : "write",
				  offset, length, result);
		/* A write through may have failed in its sync, taking an earlier error along. */
		if (!durable || result == -ENOSPC || result == -EDQUOT || result == -EFBIG)
			file_check_deleted(dev, state);
		else
			result = file_sync_failed(dev, state, result);
	} else if (durable) {
		result = __atomic_load_n(&state->durability_error, __ATOMIC_SEQ_CST);
	}
	pthread_rwlock_unlock(&state->lock);
	tcmu_request_complete(req, result);
}

static void file_fd_ready(struct tcmu_device *dev, int fd, uint32_t events)
{
	struct file_state *state = tcmu_device_get_private(dev);

	(void)events;
	file_uring_reap(state->uring, fd);
}

static void file_batch_done(struct tcmu_device *dev)
{
	struct file_state *state = tcmu_device_get_private(dev);

	if (state->uring)
		file_uring_submit(state->uring);
}

static int file_unmap(struct tcmu_device *dev, struct tcmu_request *req,
		      uint64_t offset, uint64_t length)
{
	struct file_state *state = tcmu_device_get_private(dev);
	int result = 0;

	pthread_rwlock_rdlock(&state->lock);
	if (fallocate(state->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)offset, (off_t)length) < 0) {
		result = -errno;
		tcmu_dev_err(dev, "punch hole of %" PRIu64 " bytes at %" PRIu64 " in '%s': %m",
			     length, offset, state->path);
	} else if (!tcmu_device_get_write_cache(dev)) {
		/* Without a write cache the zeros are promised now, not after a crash. */
		result = file_sync(dev, state, false);
	}
	pthread_rwlock_unlock(&state->lock);
	tcmu_request_complete(req, result);
	return 0;
}

static int file_get_lba_status(struct tcmu_device *dev, uint64_t offset, uint64_t length,
			       bool *ret_mapped, uint64_t *ret_length)
{
	struct file_state *state = tcmu_device_get_private(dev);
	int result;

	assert(length > 0);
	pthread_rwlock_rdlock(&state->lock);
	result = tcmu_fd_extent(state->fd, offset, length, ret_mapped, ret_length);
	pthread_rwlock_unlock(&state->lock);
	return result;
}

/* Whether path names the storage already open as fd. */
static bool file_is_same_storage(const char *path, int fd)
{
	struct stat path_status;
	struct stat fd_status;

	return stat(path, &path_status) == 0 && fstat(fd, &fd_status) == 0 &&
	       path_status.st_dev == fd_status.st_dev &&
	       path_status.st_ino == fd_status.st_ino;
}

/* Switches the device to the file at path, sized to size. 0 or -errno. */
static int file_switch_storage(struct tcmu_device *dev, struct file_state *state,
			       const char *path, uint64_t size, bool any_size)
{
	char *new_path = strdup(path);
	bool can_punch;
	int new_fd;
	int old_fd;
	char *old_path;

	if (!new_path)
		return -ENOMEM;
	new_fd = file_open_storage(dev, path, size, any_size);
	if (new_fd < 0) {
		free(new_path);
		return new_fd;
	}
	can_punch = file_can_punch(dev, new_fd, path);

	pthread_rwlock_wrlock(&state->lock);
	/*
	 * Writes acknowledged on the old file stay there: make them durable
	 * before letting it go. A failure is logged by file_sync; the data is
	 * lost either way, and the administrator asked for the new medium.
	 */
	file_sync(dev, state, true);
	if (state->uring && file_uring_replace_file(state->uring, new_fd) < 0) {
		pthread_rwlock_unlock(&state->lock);
		tcmu_dev_err(dev, "'%s' cannot replace '%s' on the io_uring", path, state->path);
		close(new_fd);
		free(new_path);
		return -EIO;
	}
	old_fd = state->fd;
	old_path = state->path;
	state->fd = new_fd;
	state->path = new_path;
	__atomic_store_n(&state->durability_error, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&state->io_error_logged, false, __ATOMIC_SEQ_CST);
	/* Under the lock: an UNMAP already checked against the old medium may still come. */
	tcmu_device_set_unmap_supported(dev, can_punch);
	pthread_rwlock_unlock(&state->lock);

	tcmu_dev_info(dev, "medium changed from '%s' to '%s'", old_path, new_path);
	flock(old_fd, LOCK_UN);
	close(old_fd);
	free(old_path);
	return 0;
}

static int file_reconfigure(struct tcmu_device *dev,
			    const struct tcmu_device_change *change)
{
	struct file_state *state = tcmu_device_get_private(dev);
	uint64_t size = (change->what & TCMU_CHANGE_SIZE) ? change->size
							  : tcmu_device_get_size(dev);
	bool any_size = state->any_size;
	const char *path = NULL;
	int result;

	/* A write cache turned off was flushed by the core already. */
	if (change->what & TCMU_CHANGE_CONFIG)
		path = file_config_path(change->config, &any_size);
	if (path && !file_is_same_storage(path, state->fd)) {
		result = file_switch_storage(dev, state, path, size, any_size);
		if (result < 0)
			return result;
	} else if (change->what & TCMU_CHANGE_SIZE) {
		/* The administrator asked for the new size: a growth, not a mistake. */
		result = file_ensure_size(dev, state->fd, state->path, size,
					  any_size ? FILE_SIZING_ANY : FILE_SIZING_GROW);
		if (result < 0)
			return result;
	}
	/* Only this thread (open, reconfigure) reads or writes it. */
	state->any_size = any_size;
	if (change->what & TCMU_CHANGE_SIZE)
		tcmu_dev_info(dev, "dev size: %" PRIu64, size);

	return 0;
}

static struct tcmu_handler file_handler = {
	.subtype = "file",
	.name = "File or block device backed disk",
	.config_description = FILE_CONFIG_DESCRIPTION,
	.check_config = file_check_config,
	.open = file_open,
	.close = file_close,
	.read = file_read,
	.write = file_write,
	.flush = file_flush,
	.unmap = file_unmap,
	.reconfigure = file_reconfigure,
	.get_lba_status = file_get_lba_status,
	.fd_ready = file_fd_ready,
	.batch_done = file_batch_done,
};

TCMU_HANDLER_REGISTER(file_handler)
