/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_watch.c: an inotify watch on the file under a device, so that its
 * deletion is noticed when it happens, not at the next flush.
 *
 * Unlinking an open file does not send IN_DELETE_SELF (that comes when the
 * last descriptor closes, which is ours); it sends IN_ATTRIB, the link
 * count's change, at once. The watch is taken through /proc/self/fd, so it
 * is on the very inode the device uses even when the path was replaced
 * between open and watch. An event only says "look": the handler asks the
 * file it uses (fstat) whether it still has a name, so events of a file
 * left by a medium change, or of a chmod, change nothing.
 */
#include "file_watch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_WATCH_EVENTS (IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

struct file_watch {
	struct tcmu_device *dev;
	int inotify_fd;
	int watch_descriptor;	/* -1: none (a block device) */
};

/* The watch descriptor of the regular file open as fd, -1 for other files, or -errno. */
static int file_watch_add(struct file_watch *watch, int fd)
{
	char proc_path[64];
	struct stat status;
	int descriptor;

	if (fstat(fd, &status) < 0)
		return -errno;
	if (!S_ISREG(status.st_mode))
		return -1;
	snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", fd);
	descriptor = inotify_add_watch(watch->inotify_fd, proc_path, FILE_WATCH_EVENTS);
	return descriptor < 0 ? -errno : descriptor;
}

int file_watch_open(struct tcmu_device *dev, int fd, struct file_watch **ret_watch)
{
	struct file_watch *watch = calloc(1, sizeof(*watch));
	int result;

	if (!watch)
		return -ENOMEM;
	watch->dev = dev;
	watch->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (watch->inotify_fd < 0) {
		result = -errno;
		goto out_free;
	}
	result = file_watch_add(watch, fd);
	if (result < -1)
		goto out_close;
	watch->watch_descriptor = result;
	result = tcmu_device_watch_fd(dev, watch->inotify_fd, TCMU_FD_READABLE);
	if (result < 0)
		goto out_close;
	*ret_watch = watch;
	return 0;

out_close:
	close(watch->inotify_fd);
out_free:
	free(watch);
	errno = -result;
	tcmu_dev_warn(dev, "no inotify watch of the file (%m): its deletion is noticed at the "
		      "next flush only");
	return result;
}

void file_watch_close(struct file_watch *watch)
{
	close(watch->inotify_fd);
	free(watch);
}

int file_watch_replace(struct file_watch *watch, int fd)
{
	int result = file_watch_add(watch, fd);

	if (result < -1)
		return result;
	/* A medium change to the same inode keeps its descriptor: not removed twice. */
	if (watch->watch_descriptor >= 0 && watch->watch_descriptor != result)
		inotify_rm_watch(watch->inotify_fd, watch->watch_descriptor);
	watch->watch_descriptor = result;
	return 0;
}

bool file_watch_owns(const struct file_watch *watch, int fd)
{
	return watch && watch->inotify_fd == fd;
}

bool file_watch_drain(struct file_watch *watch)
{
	/* Every event, IN_IGNORED and IN_Q_OVERFLOW too, says only "look". */
	char buffer[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool changed = false;
	ssize_t length;

	while ((length = read(watch->inotify_fd, buffer, sizeof(buffer))) > 0)
		changed = true;
	if (length < 0 && errno != EAGAIN && errno != EINTR)
		tcmu_dev_err(watch->dev, "read of the file's inotify watch: %m");
	return changed;
}
