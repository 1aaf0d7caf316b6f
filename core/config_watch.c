/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_watch.c: applies a new log_level, ring_poll_us and new
 * xcopy_group lines from the config file while the daemon runs, so that an
 * administrator can turn debugging on and off, tune polling, or allow and
 * forbid copies between devices without restarting (a restart would make
 * every initiator see the devices go away and come back).
 *
 * The directory is watched rather than the file: editors and `sed -i`
 * replace the file by a rename, which a watch on the old inode would never
 * report. Events come from the GLib main loop, so the reload runs on the
 * main thread like every other configuration change.
 */
#include <errno.h>
#include <glib-unix.h>
#include <glib.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "tcmu_internal.h"

static struct {
	int fd;
	guint source;
	char *path;
	char *file_name;
	int pinned_level;
} watch = { .fd = -1, .pinned_level = -1 };

static void config_reload(void)
{
	struct tcmu_config config = TCMU_CONFIG_DEFAULTS;
	int previous = __atomic_load_n(&tcmu_log_level_current, __ATOMIC_RELAXED);
	int result;

	result = config_file_load(watch.path, &config);
	if (result == -ENOENT) {
		/* Mid-replace, or removed: the level in force stays until a file is back. */
		tcmu_dbg("config file %s is gone; log level stays %d", watch.path, previous);
		goto out;
	}
	if (result < 0) {
		tcmu_warn("config file %s changed but cannot be read: %s; log level stays %d",
			  watch.path, strerror(-result), previous);
		goto out;
	}
	workers_set_poll_limit(config.ring_poll_us);
	metrics_textfile_set(config.metrics_textfile);
	if (copy_groups_set(config.xcopy_groups, config.xcopy_group_count) < 0)
		tcmu_err("out of memory for the xcopy_group lines of %s; the groups before stay",
			 watch.path);
	if (watch.pinned_level >= 0) {
		if (config.log_level != watch.pinned_level)
			tcmu_info("config file %s sets log_level %d; ignored, --debug keeps %d",
				  watch.path, config.log_level, watch.pinned_level);
		goto out;
	}
	if (config.log_level == previous)
		goto out;
	/* Announce before a lower level would hide the message, and after a higher one. */
	if (config.log_level < previous)
		tcmu_info("log level %d -> %d (%s changed)", previous, config.log_level,
			  watch.path);
	log_set_level(config.log_level);
	if (config.log_level > previous)
		tcmu_info("log level %d -> %d (%s changed)", previous, config.log_level,
			  watch.path);
out:
	config_release(&config);
}

static bool event_concerns_file(const struct inotify_event *event)
{
	if (event->mask & IN_Q_OVERFLOW)
		return true;	/* events were lost: reread to be sure */
	return event->len > 0 && strcmp(event->name, watch.file_name) == 0;
}

static gboolean on_config_event(gint fd, GIOCondition condition, gpointer unused)
{
	/* inotify hands out whole events only, each aligned like the struct. */
	char buffer[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool changed = false;
	ssize_t length;

	(void)condition;
	(void)unused;
	for (;;) {
		length = read(fd, buffer, sizeof(buffer));
		if (length <= 0)
			break;
		for (char *cursor = buffer; cursor < buffer + length;) {
			const struct inotify_event *event = (const struct inotify_event *)cursor;

			if (event_concerns_file(event))
				changed = true;
			cursor += sizeof(*event) + event->len;
		}
	}
	if (length < 0 && errno != EAGAIN && errno != EINTR)
		tcmu_err("read config file events: %m");
	if (changed)
		config_reload();
	return G_SOURCE_CONTINUE;
}

int config_watch_start(const char *path, int pinned_level)
{
	char *directory_copy = NULL, *name_copy = NULL;
	const char *directory;
	int result;

	if (watch.fd >= 0)
		return -EBUSY;
	watch.path = strdup(path);
	directory_copy = strdup(path);
	name_copy = strdup(path);
	if (!watch.path || !directory_copy || !name_copy) {
		result = -ENOMEM;
		goto fail;
	}
	watch.file_name = strdup(basename(name_copy));
	if (!watch.file_name) {
		result = -ENOMEM;
		goto fail;
	}
	watch.pinned_level = pinned_level;
	directory = dirname(directory_copy);

	watch.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (watch.fd < 0) {
		result = -errno;
		tcmu_warn("inotify: %m; changes to %s need a restart", path);
		goto fail;
	}
	if (inotify_add_watch(watch.fd, directory,
			      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
			      IN_ONLYDIR) < 0) {
		result = -errno;
		/* No directory, no file to follow: the default config is optional. */
		if (result == -ENOENT)
			tcmu_dbg("cannot watch %s: %m", directory);
		else
			tcmu_warn("cannot watch %s: %m; changes to %s need a restart",
				  directory, path);
		goto fail;
	}
	watch.source = g_unix_fd_add(watch.fd, G_IO_IN, on_config_event, NULL);
	tcmu_dbg("following changes to %s", path);
	free(directory_copy);
	free(name_copy);
	return 0;

fail:
	free(directory_copy);
	free(name_copy);
	config_watch_stop();
	return result;
}

void config_watch_stop(void)
{
	if (watch.source)
		g_source_remove(watch.source);
	watch.source = 0;
	if (watch.fd >= 0)
		close(watch.fd);
	watch.fd = -1;
	free(watch.path);
	watch.path = NULL;
	free(watch.file_name);
	watch.file_name = NULL;
	watch.pinned_level = -1;
}
