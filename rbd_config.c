/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbd_config.c: the rbd handler's configuration string,
 *   pool/image[;osd_op_timeout=N][;conf=/path/ceph.conf][;id=client][;gateway=N/M]
 *   pool/namespace/image[;...]
 * so targetcli's cfgstring=rbd/lun0 and the dev_config
 * rbd/rbd/lun0;osd_op_timeout=30 that other gateways save both name image
 * lun0 of pool rbd. Each option at most once, in any order. Snapshots
 * (pool/image@snap) are not served.
 */
#include "rbd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rbd_refuse(char **ret_reason, int error, const char *format, ...)
{
	va_list arguments;

	va_start(arguments, format);
	if (vasprintf(ret_reason, format, arguments) < 0)
		*ret_reason = NULL;
	va_end(arguments);
	return error;
}

void rbd_config_clear(struct rbd_config *config)
{
	free(config->pool);
	free(config->namespace);
	free(config->image);
	free(config->name);
	free(config->conf);
	free(config->id);
	memset(config, 0, sizeof(*config));
}

/* Splits "pool/image" or "pool/namespace/image" into config. 0 or -errno. */
static int rbd_parse_image(const char *spec, struct rbd_config *config, char **ret_reason)
{
	const char *first = strchr(spec, '/');
	const char *second = first ? strchr(first + 1, '/') : NULL;
	const char *image;

	if (!first || (second && strchr(second + 1, '/')))
		return rbd_refuse(ret_reason, -EINVAL,
				  "'%s' is not pool/image or pool/namespace/image", spec);
	image = second ? second + 1 : first + 1;
	if (first == spec || image[0] == '\0' || (second && second == first + 1))
		return rbd_refuse(ret_reason, -EINVAL,
				  "'%s' has an empty pool, namespace or image name", spec);
	if (strchr(image, '@'))
		return rbd_refuse(ret_reason, -EINVAL,
				  "'%s' names a snapshot: only images are served", spec);
	config->pool = strndup(spec, (size_t)(first - spec));
	config->namespace = second ? strndup(first + 1, (size_t)(second - first - 1)) : strdup("");
	config->image = strdup(image);
	config->name = strdup(spec);
	if (!config->pool || !config->namespace || !config->image || !config->name)
		return rbd_refuse(ret_reason, -ENOMEM, "out of memory");
	return 0;
}

static int rbd_parse_option(char *option, struct rbd_config *config, char **ret_reason)
{
	char *value = strchr(option, '=');
	char *end;

	if (!value || value == option)
		return rbd_refuse(ret_reason, -EINVAL,
				  "option '%s' is not name=value", option);
	*value++ = '\0';
	if ((strcmp(option, "osd_op_timeout") == 0 && config->osd_op_timeout_given) ||
	    (strcmp(option, "conf") == 0 && config->conf) ||
	    (strcmp(option, "id") == 0 && config->id) ||
	    (strcmp(option, "gateway") == 0 && config->gateway_group))
		return rbd_refuse(ret_reason, -EINVAL, "%s= is given twice", option);
	if (strcmp(option, "osd_op_timeout") == 0) {
		unsigned long seconds;

		config->osd_op_timeout_given = true;
		errno = 0;
		seconds = strtoul(value, &end, 10);
		if (value[0] < '0' || value[0] > '9' || *end || errno ||
		    seconds > RBD_MAX_OSD_OP_TIMEOUT)
			return rbd_refuse(ret_reason, -EINVAL,
					  "osd_op_timeout=%s is not a number of seconds from 0 to %d",
					  value, RBD_MAX_OSD_OP_TIMEOUT);
		config->osd_op_timeout = (unsigned)seconds;
	} else if (strcmp(option, "conf") == 0) {
		if (value[0] != '/')
			return rbd_refuse(ret_reason, -EINVAL,
					  "conf=%s is not an absolute path", value);
		config->conf = strdup(value);
		if (!config->conf)
			return rbd_refuse(ret_reason, -ENOMEM, "out of memory");
	} else if (strcmp(option, "id") == 0) {
		if (value[0] == '\0' || strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
						"abcdefghijklmnopqrstuvwxyz0123456789_.-") !=
					strlen(value))
			return rbd_refuse(ret_reason, -EINVAL,
					  "id=%s is not a client name (letters, digits, '_', '.', '-')",
					  value);
		config->id = strdup(strncmp(value, "client.", 7) == 0 ? value + 7 : value);
		if (!config->id)
			return rbd_refuse(ret_reason, -ENOMEM, "out of memory");
	} else if (strcmp(option, "gateway") == 0) {
		unsigned long group, count = 0;

		errno = 0;
		group = strtoul(value, &end, 10);
		if (*end == '/' && end[1] >= '1' && end[1] <= '9')
			count = strtoul(end + 1, &end, 10);
		if (value[0] < '1' || value[0] > '9' || *end || errno || group > count ||
		    count > RBD_MAX_GATEWAYS)
			return rbd_refuse(ret_reason, -EINVAL,
					  "gateway=%s is not N/M, gateway N of M (1 <= N <= M <= %d)",
					  value, RBD_MAX_GATEWAYS);
		config->gateway_group = (unsigned)group;
		config->gateway_count = (unsigned)count;
	} else {
		return rbd_refuse(ret_reason, -EINVAL,
				  "unknown option '%s' (known: osd_op_timeout, conf, id, gateway)",
				  option);
	}
	return 0;
}

int rbd_parse_config(const char *text, struct rbd_config *config, char **ret_reason)
{
	char *copy, *cursor, *field;
	int result;

	*ret_reason = NULL;
	memset(config, 0, sizeof(*config));
	config->osd_op_timeout = RBD_DEFAULT_OSD_OP_TIMEOUT;
	if (text[0] == '\0')
		return rbd_refuse(ret_reason, -EINVAL,
				  "no image given: the configuration string is pool/image[;option=value...]");
	for (const char *c = text; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return rbd_refuse(ret_reason, -EINVAL,
					  "the configuration string contains control characters");
	copy = strdup(text);
	if (!copy)
		return rbd_refuse(ret_reason, -ENOMEM, "out of memory");
	cursor = copy;
	field = strsep(&cursor, ";");
	result = rbd_parse_image(field, config, ret_reason);
	while (result == 0 && (field = strsep(&cursor, ";")))
		if (field[0] != '\0')	/* a trailing or doubled ';' */
			result = rbd_parse_option(field, config, ret_reason);
	free(copy);
	if (result < 0)
		rbd_config_clear(config);
	return result;
}
