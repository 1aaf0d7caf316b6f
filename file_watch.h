/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_watch.h: notice, on the device's ring thread, that the file under a
 * device lost its last name (file_watch.c). Sees libtcmu.h only.
 */
#ifndef FILE_WATCH_H
#define FILE_WATCH_H

#include "libtcmu.h"

#include <stdbool.h>

struct file_watch;

/*
 * Watches the regular file open as fd (a block device is not watched: its
 * node is not its data) with an inotify fd that the device's ring thread
 * waits for (tcmu_device_watch_fd; from open()). 0 or -errno, logged
 * (inotify's limit of instances per user, fs.inotify.max_user_instances,
 * may be reached).
 */
int file_watch_open(struct tcmu_device *dev, int fd, struct file_watch **ret_watch);
/* The watches ended already (the core ends them before close()). */
void file_watch_close(struct file_watch *watch);
/*
 * Watches the file open as fd instead (a medium change; main thread).
 * Events of the old file may still come: the caller checks the file it
 * uses. 0 or -errno.
 */
int file_watch_replace(struct file_watch *watch, int fd);
/* Whether fd is the watch's (for fd_ready). */
bool file_watch_owns(const struct file_watch *watch, int fd);
/* fd_ready on the watch's fd: true when the file's names may have changed. */
bool file_watch_drain(struct file_watch *watch);

#endif
