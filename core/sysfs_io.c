/* SPDX-License-Identifier: Apache-2.0 */
/* sysfs_io.c: reading and writing the one-value files of sysfs and configfs. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tcmu_internal.h"

#define SYSFS_VALUE_MAX 4096

int sysfs_read_string(const char *path, char **ret_value)
{
	char *buffer;
	ssize_t length;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buffer = malloc(SYSFS_VALUE_MAX + 1);
	if (!buffer) {
		close(fd);
		return -ENOMEM;
	}
	do {
		length = read(fd, buffer, SYSFS_VALUE_MAX);
	} while (length < 0 && errno == EINTR);
	if (length < 0) {
		int saved = -errno;

		free(buffer);
		close(fd);
		return saved;
	}
	close(fd);
	while (length > 0 && (buffer[length - 1] == '\n' || buffer[length - 1] == ' '))
		length--;
	buffer[length] = '\0';
	*ret_value = buffer;
	return 0;
}

int sysfs_read_u64(const char *path, uint64_t *ret_value)
{
	char *text, *end;
	uint64_t value;
	int result;

	result = sysfs_read_string(path, &text);
	if (result < 0)
		return result;
	errno = 0;
	value = strtoull(text, &end, 0);	/* base 0: uio map sizes are hex */
	result = (errno || end == text || *end) ? -EINVAL : 0;
	free(text);
	if (result == 0)
		*ret_value = value;
	return result;
}

int sysfs_write_string(const char *path, const char *value)
{
	size_t length = strlen(value);
	ssize_t written;
	int fd;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	do {
		written = write(fd, value, length);
	} while (written < 0 && errno == EINTR);
	if (written < 0) {
		int saved = -errno;

		close(fd);
		return saved;
	}
	close(fd);
	return (size_t)written == length ? 0 : -EIO;
}
