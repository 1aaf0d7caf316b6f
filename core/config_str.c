/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_str.c: the device config string as configfs stores it,
 * "<subtype>/[;option=value;...]<handler config>". The leading options
 * are a convention of the targetcli world (for example a per-device
 * command timeout); we accept and skip them so handlers see only their
 * own part. A trailing newline (from `echo` into configfs) is dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tcmu_internal.h"

int dev_config_split(const char *dev_config, char **ret_subtype, char **ret_handler_config)
{
	const char *slash, *rest;
	char *subtype, *handler_config;
	size_t rest_length;

	if (!dev_config)
		return -EINVAL;
	slash = strchr(dev_config, '/');
	if (!slash || slash == dev_config)
		return -EINVAL;

	rest = slash + 1;
	if (*rest == ';') {
		/* Each option is "name=value;"; the handler part follows the last one. */
		rest++;
		for (;;) {
			const char *end = strchr(rest, ';');
			const char *equals = strchr(rest, '=');

			if (!end || !equals || equals > end || equals == rest)
				break;
			rest = end + 1;
		}
	}

	subtype = strndup(dev_config, (size_t)(slash - dev_config));
	/* `echo alloc/x > dev_config` stores the newline too; it is never part of a config. */
	rest_length = strlen(rest);
	while (rest_length > 0 && rest[rest_length - 1] == '\n')
		rest_length--;
	handler_config = strndup(rest, rest_length);
	if (!subtype || !handler_config) {
		free(subtype);
		free(handler_config);
		return -ENOMEM;
	}
	*ret_subtype = subtype;
	*ret_handler_config = handler_config;
	return 0;
}
