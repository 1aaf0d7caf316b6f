/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c: the one logging API. Every line carries time, level and, when a
 * device is known, "subtype/name"; it goes to stderr (the console or the
 * journal) and, once log_open_file() was called, to <log_dir>/tcmu-runner.log.
 * On the journal, a "<N>" syslog priority before each line sets its
 * priority (journalctl -p err).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "tcmu_internal.h"

#define LOG_FILE_NAME "tcmu-runner.log"

static pthread_mutex_t log_file_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_file_fd = -1;
static char *log_file_path;

static const char *const level_names[] = {
	[TCMU_LOG_CRIT] = "CRIT",
	[TCMU_LOG_ERROR] = "ERROR",
	[TCMU_LOG_WARN] = "WARN",
	[TCMU_LOG_INFO] = "INFO",
	[TCMU_LOG_DEBUG] = "DEBUG",
	[TCMU_LOG_DEBUG_SCSI_CMD] = "DEBUG_SCSI",
};

static const int level_priorities[] = {
	[TCMU_LOG_CRIT] = LOG_CRIT,
	[TCMU_LOG_ERROR] = LOG_ERR,
	[TCMU_LOG_WARN] = LOG_WARNING,
	[TCMU_LOG_INFO] = LOG_INFO,
	[TCMU_LOG_DEBUG] = LOG_DEBUG,
	[TCMU_LOG_DEBUG_SCSI_CMD] = LOG_DEBUG,
};

static pthread_once_t journal_check_once = PTHREAD_ONCE_INIT;
static bool stderr_is_journal;

/*
 * systemd names the stream it gave the service as stderr in JOURNAL_STREAM
 * ("device:inode"); the variable alone is not enough, since a child whose
 * stderr was redirected inherits it.
 */
static void check_journal_stream(void)
{
	const char *stream = getenv("JOURNAL_STREAM");
	unsigned long long device, inode;
	struct stat status;

	if (!stream || sscanf(stream, "%llu:%llu", &device, &inode) != 2)
		return;
	if (fstat(STDERR_FILENO, &status) == 0 && status.st_dev == device &&
	    status.st_ino == inode)
		stderr_is_journal = true;
}

void log_set_level(int level)
{
	if (level < TCMU_LOG_CRIT)
		level = TCMU_LOG_CRIT;
	if (level > TCMU_LOG_DEBUG_SCSI_CMD)
		level = TCMU_LOG_DEBUG_SCSI_CMD;
	__atomic_store_n(&tcmu_log_level_current, level, __ATOMIC_RELAXED);
}

static int open_log_path(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);

	return fd < 0 ? -errno : fd;
}

int log_open_file(const char *dir)
{
	char *path;
	int fd;

	if (asprintf(&path, "%s/%s", dir, LOG_FILE_NAME) < 0)
		return -ENOMEM;
	fd = open_log_path(path);
	if (fd < 0) {
		free(path);
		return fd;
	}
	pthread_mutex_lock(&log_file_lock);
	if (log_file_fd >= 0)
		close(log_file_fd);
	free(log_file_path);
	log_file_fd = fd;
	log_file_path = path;
	pthread_mutex_unlock(&log_file_lock);
	return 0;
}

int log_reopen_file(void)
{
	int fd, result = 0;

	pthread_mutex_lock(&log_file_lock);
	if (log_file_path) {
		fd = open_log_path(log_file_path);
		if (fd < 0) {
			result = fd;
		} else {
			close(log_file_fd);
			log_file_fd = fd;
		}
	}
	pthread_mutex_unlock(&log_file_lock);
	return result;
}

void log_close_file(void)
{
	pthread_mutex_lock(&log_file_lock);
	if (log_file_fd >= 0)
		close(log_file_fd);
	log_file_fd = -1;
	free(log_file_path);
	log_file_path = NULL;
	pthread_mutex_unlock(&log_file_lock);
}

void log_message_v(int level, const struct tcmu_device *dev, const char *format, va_list args)
{
	int saved_errno = errno;
	char line[1024];
	struct timespec now;
	struct tm tm;
	size_t length;
	int written;

	if (level < TCMU_LOG_CRIT)
		level = TCMU_LOG_CRIT;
	if (level > TCMU_LOG_DEBUG_SCSI_CMD)
		level = TCMU_LOG_DEBUG_SCSI_CMD;

	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	length = strftime(line, sizeof(line), "%F %T", &tm);
	written = snprintf(line + length, sizeof(line) - length, ".%03ld %s %s%s%s",
			   now.tv_nsec / 1000000, level_names[level],
			   dev ? "[" : "", dev ? dev->log_prefix : "", dev ? "] " : "");
	if (written > 0)
		length += (size_t)written;
	if (length >= sizeof(line))
		length = sizeof(line) - 1;

	errno = saved_errno;	/* so that %m names the caller's error */
	written = vsnprintf(line + length, sizeof(line) - length, format, args);
	if (written > 0)
		length += (size_t)written;
	if (length > sizeof(line) - 2)
		length = sizeof(line) - 2;
	line[length++] = '\n';

	/* One write per line so that lines from several threads never interleave. */
	pthread_once(&journal_check_once, check_journal_stream);
	if (stderr_is_journal) {
		char priority[8];
		struct iovec parts[2] = {
			{ .iov_base = priority,
			  .iov_len = (size_t)snprintf(priority, sizeof(priority), "<%d>",
						      level_priorities[level]) },
			{ .iov_base = line, .iov_len = length },
		};

		if (writev(STDERR_FILENO, parts, 2) < 0) {
			/* Nowhere better to report it. */
		}
	} else if (write(STDERR_FILENO, line, length) < 0) {
		/* Nowhere better to report it. */
	}
	pthread_mutex_lock(&log_file_lock);
	if (log_file_fd >= 0 && write(log_file_fd, line, length) < 0) {
		/* The console copy above still went out. */
	}
	pthread_mutex_unlock(&log_file_lock);
	errno = saved_errno;
}
