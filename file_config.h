/* SPDX-License-Identifier: Apache-2.0 */
/* file_config.h: the file handler's config string and path checks (file_config.c). */
#ifndef FILE_CONFIG_H
#define FILE_CONFIG_H

#include <stdbool.h>

#define FILE_OPTION_ANY_SIZE "any_size:"	/* the file may differ from the device size */

/* The path in a config string, after the any_size: option when there is one. */
const char *file_config_path(const char *config, bool *ret_any_size);
/*
 * Whether path can hold a disk (an existing regular file or block device
 * we may read and write, or a file we may create). 0, or -errno and a
 * malloc'd reason in *ret_reason.
 */
int file_check_path(const char *path, char **ret_reason);

#endif
