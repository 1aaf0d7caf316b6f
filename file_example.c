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
 * Reads, writes, flushes and unmaps are asynchronous, many of a device in
 * flight on an io_uring of its own (file_uring.c), completed from the
 * device's ring thread. Where io_uring cannot be set up (an old kernel, a seccomp filter
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
 * sync has failed, data acknowledged earlier may be lost, so every later
 * flush and durable write fails with the same error until the medium is
 * changed or the device reopened. A file deleted while in use (its data
 * would vanish when the device closes) is noticed at once (an inotify watch,
 * file_watch.c): the device's state says failed, and every later write,
 * unmap and flush fails with -EIO (MEDIUM ERROR) until the medium changes;
 * reads go on. UNMAP punches holes (fallocate) so the file's allocated size
 * falls, and without a write cache syncs them. Storage that cannot punch (vfat, NFSv3,
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
#include "file_storage.h"
#include "file_uring.h"
#include "file_watch.h"

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
	/* The file lost its last name: writes fail until the medium changes. */
	bool deleted;
	struct file_uring *uring;	/* NULL: synchronous I/O */
	struct file_watch *watch;	/* tells the ring thread of a deletion */
};

static int file_check_config(const char *config, char **ret_reason)
{
	return file_check_path(file_config_path(config, NULL), ret_reason);
}

/*
 * Whether the file was deleted while in use; what is written to it is then
 * lost when the device closes, so writes, unmaps and flushes fail with -EIO
 * from now on, and the device's state says why. The inotify watch has the
 * ring thread check at once; flushes and failed writes check too.
 */
static bool file_check_deleted(struct tcmu_device *dev, struct file_state *state)
{
	struct stat status;

	if (__atomic_load_n(&state->deleted, __ATOMIC_ACQUIRE))
		return true;
	if (fstat(state->fd, &status) < 0 || !S_ISREG(status.st_mode) || status.st_nlink > 0)
		return false;
	__atomic_store_n(&state->durability_error, -EIO, __ATOMIC_SEQ_CST);
	if (!__atomic_exchange_n(&state->deleted, true, __ATOMIC_ACQ_REL)) {
		tcmu_dev_err(dev, "'%s' was deleted: writes fail until the medium changes "
			     "(their data would be lost when the device closes)", state->path);
		tcmu_device_set_state(dev, TCMU_DEVICE_STATE_FAILED, "backing file deleted");
	}
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
	/* Without it (inotify's limit of instances reached) the next flush still notices. */
	if (file_watch_open(dev, state->fd, &state->watch) < 0)
		state->watch = NULL;
	tcmu_device_set_private(dev, state);
	if (file_uring_open(dev, state->fd, file_uring_done, &state->uring) < 0)
		state->uring = NULL;
	/* Deleted before the watch began: the watch says nothing of that. */
	file_check_deleted(dev, state);
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
	if (state->watch)
		file_watch_close(state->watch);
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

	if (__atomic_load_n(&state->deleted, __ATOMIC_ACQUIRE))
		return -EIO;
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
	static const char *const names[] = {
		[FILE_URING_READ] = "read", [FILE_URING_WRITE] = "write",
		[FILE_URING_UNMAP] = "punch hole",
	};

	pthread_rwlock_rdlock(&state->lock);
	if (operation == FILE_URING_FLUSH) {
		result = result < 0 ? file_sync_failed(dev, state, result)
				    : file_check_deleted(dev, state) ? -EIO : 0;
	} else if (result < 0) {
		file_log_io_error(dev, state, names[operation], offset, length, result);
		/* A write through may have failed in its sync, taking an earlier error along. */
		if (operation != FILE_URING_WRITE || !durable || result == -ENOSPC ||
		    result == -EDQUOT || result == -EFBIG)
			file_check_deleted(dev, state);
		else
			result = file_sync_failed(dev, state, result);
	} else if (operation != FILE_URING_READ &&
		   __atomic_load_n(&state->deleted, __ATOMIC_ACQUIRE)) {
		/* Done to a file deleted meanwhile: lost when the device closes. */
		result = -EIO;
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
	if (!file_watch_owns(state->watch, fd)) {
		file_uring_reap(state->uring);
		return;
	}
	if (file_watch_drain(state->watch)) {
		pthread_rwlock_rdlock(&state->lock);
		file_check_deleted(dev, state);
		pthread_rwlock_unlock(&state->lock);
	}
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
	/* Without a write cache the zeros are promised now, not after a crash. */
	bool durable = !tcmu_device_get_write_cache(dev);
	int result = 0;

	if (__atomic_load_n(&state->deleted, __ATOMIC_ACQUIRE))
		return -EIO;
	if (state->uring)
		return file_uring_unmap(state->uring, req, offset, length, durable);
	pthread_rwlock_rdlock(&state->lock);
	if (fallocate(state->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)offset, (off_t)length) < 0) {
		result = -errno;
		file_log_io_error(dev, state, "punch hole", offset, length, result);
	} else if (durable) {
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
	if ((state->uring && file_uring_replace_file(state->uring, new_fd) < 0) ||
	    (state->watch && file_watch_replace(state->watch, new_fd) < 0)) {
		if (state->uring)
			file_uring_replace_file(state->uring, state->fd);
		pthread_rwlock_unlock(&state->lock);
		tcmu_dev_err(dev, "'%s' cannot replace '%s' on the io_uring or the watch", path,
			     state->path);
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
	if (__atomic_exchange_n(&state->deleted, false, __ATOMIC_ACQ_REL))
		tcmu_device_set_state(dev, TCMU_DEVICE_STATE_OPEN, "medium changed");
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
