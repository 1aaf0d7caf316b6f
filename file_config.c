/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_config.c: the file handler's config string, the any_size: option
 * and the checks of the path that check_config and open share, each
 * refusal with its reason (see file_example.c for the grammar).
 */
#include "file_config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int file_refuse(char **ret_reason, int error, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

/* Returns error after storing a malloc'd reason; "%m" prints -error. */
static int file_refuse(char **ret_reason, int error, const char *format, ...)
{
	va_list arguments;

	va_start(arguments, format);
	errno = -error;
	if (vasprintf(ret_reason, format, arguments) < 0)
		*ret_reason = NULL;
	va_end(arguments);
	return error;
}

/* The path in a config string, after the any_size: option when there is one. */
const char *file_config_path(const char *config, bool *ret_any_size)
{
	bool any_size = strncmp(config, FILE_OPTION_ANY_SIZE, strlen(FILE_OPTION_ANY_SIZE)) == 0;

	if (ret_any_size)
		*ret_any_size = any_size;
	return any_size ? config + strlen(FILE_OPTION_ANY_SIZE) : config;
}

int file_check_path(const char *path, char **ret_reason)
{
	struct stat status;
	char *directory_copy;
	const char *directory;
	int result = 0;

	*ret_reason = NULL;
	if (path[0] == '\0')
		return file_refuse(ret_reason, -EINVAL,
				   "no path given: the configuration string is the path of the file that holds the disk");
	if (strlen(path) >= PATH_MAX)
		return file_refuse(ret_reason, -ENAMETOOLONG,
				   "path is longer than %d bytes", PATH_MAX - 1);
	for (const char *c = path; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return file_refuse(ret_reason, -EINVAL,
					   "path contains control characters");
	if (path[strlen(path) - 1] == '/')
		return file_refuse(ret_reason, -EISDIR, "'%s' names a directory", path);

	if (stat(path, &status) == 0) {
		if (S_ISDIR(status.st_mode))
			return file_refuse(ret_reason, -EISDIR, "'%s' is a directory", path);
		if (!S_ISREG(status.st_mode) && !S_ISBLK(status.st_mode))
			return file_refuse(ret_reason, -EINVAL,
					   "'%s' is neither a regular file nor a block device", path);
		if (faccessat(AT_FDCWD, path, R_OK | W_OK, AT_EACCESS) < 0)
			return file_refuse(ret_reason, -errno,
					   "'%s' cannot be read and written: %m", path);
		return 0;
	}
	if (errno == ENOTDIR)
		return file_refuse(ret_reason, -ENOTDIR,
				   "a component of '%s' is not a directory", path);
	if (errno != ENOENT)
		return file_refuse(ret_reason, -errno, "cannot access '%s': %m", path);
	if (lstat(path, &status) == 0 && S_ISLNK(status.st_mode))
		return file_refuse(ret_reason, -ENOENT,
				   "'%s' is a symbolic link to a file that does not exist; "
				   "files are not created through links", path);

	directory_copy = strdup(path);
	if (!directory_copy)
		return file_refuse(ret_reason, -ENOMEM, "out of memory");
	directory = dirname(directory_copy);
	if (stat(directory, &status) < 0) {
		if (errno == ENOENT)
			result = file_refuse(ret_reason, -ENOENT,
					     "directory '%s' does not exist", directory);
		else
			result = file_refuse(ret_reason, -errno,
					     "cannot access directory '%s': %m", directory);
	} else if (!S_ISDIR(status.st_mode)) {
		result = file_refuse(ret_reason, -ENOTDIR, "'%s' is not a directory", directory);
	} else if (faccessat(AT_FDCWD, directory, W_OK | X_OK, AT_EACCESS) < 0) {
		result = file_refuse(ret_reason, -errno,
				     "cannot create files in directory '%s': %m", directory);
	}
	free(directory_copy);
	return result;
}
