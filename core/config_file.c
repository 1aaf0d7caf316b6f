/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_file.c: /etc/tcmu/tcmu.conf. Lines are "key = value"; '#' starts
 * a comment. A bad line is reported with its number and skipped: the
 * daemon keeps its defaults rather than refusing to start storage over a
 * typo.
 */
#include <ctype.h>
#include <glib.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcmu_internal.h"

static char *trim(char *text)
{
	char *end;

	while (isspace((unsigned char)*text))
		text++;
	end = text + strlen(text);
	while (end > text && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return text;
}

/* A device name as configfs allows it, or a backstore "user_<hba>/<name>". */
static bool valid_device_name(const char *name)
{
	const char *slash = strchr(name, '/');
	size_t digits;

	if (!slash)
		return true;
	if (strncmp(name, "user_", 5) != 0)
		return false;
	digits = strspn(name + 5, "0123456789");
	return digits > 0 && name + 5 + digits == slash && slash[1] && !strchr(slash + 1, '/');
}

/*
 * "xcopy_group = NAME NAME ...": the group joined by single spaces, each
 * name once. A line that cannot be a group is dropped whole: a group that
 * lost a member would silently allow less than was meant, and nothing
 * more is ever allowed than the lines say.
 */
static void add_xcopy_group(struct tcmu_config *config, const char *path,
			    unsigned int line_number, const char *value)
{
	size_t length = strlen(value), members = 0;
	char *group, *cursor, **groups;

	group = calloc(1, length + 1);
	if (!group)
		return;
	cursor = group;
	for (const char *name = value + strspn(value, " \t"); *name;
	     name += strspn(name, " \t")) {
		size_t name_length = strcspn(name, " \t");
		char *copy = strndup(name, name_length);
		bool repeated = false;

		if (!copy)
			goto drop;
		if (!valid_device_name(copy)) {
			tcmu_warn("%s:%u: xcopy_group: '%s' is neither a device name nor "
				  "user_<hba>/<name>; line ignored", path, line_number, copy);
			free(copy);
			goto drop;
		}
		for (const char *member = group; *member && !repeated;
		     member += strcspn(member, " "), member += strspn(member, " "))
			repeated = strcspn(member, " ") == name_length &&
				   memcmp(member, name, name_length) == 0;
		free(copy);
		if (!repeated) {
			if (cursor != group)
				*cursor++ = ' ';
			memcpy(cursor, name, name_length);
			cursor += name_length;
			members++;
		}
		name += name_length;
	}
	if (members < 2) {
		tcmu_warn("%s:%u: xcopy_group needs two or more different devices; line ignored",
			  path, line_number);
		goto drop;
	}
	groups = realloc(config->xcopy_groups,
			 (config->xcopy_group_count + 1) * sizeof(*config->xcopy_groups));
	if (!groups)
		goto drop;
	groups[config->xcopy_group_count++] = group;
	config->xcopy_groups = groups;
	return;
drop:
	free(group);
}

static void config_apply(struct tcmu_config *config, const char *path, unsigned int line_number,
			 const char *key, const char *value)
{
	if (strcmp(key, "log_level") == 0) {
		char *end;
		long level;

		errno = 0;
		level = strtol(value, &end, 10);
		if (errno || end == value || *end || level < TCMU_LOG_CRIT ||
		    level > TCMU_LOG_DEBUG_SCSI_CMD) {
			tcmu_warn("%s:%u: log_level must be 0 to 5, not '%s'; kept %d", path,
				  line_number, value, config->log_level);
			return;
		}
		config->log_level = (int)level;
	} else if (strcmp(key, "log_dir") == 0 || strcmp(key, "log_dir_path") == 0) {
		char *copy;

		if (value[0] != '/') {
			tcmu_warn("%s:%u: log_dir must be an absolute path, not '%s'", path,
				  line_number, value);
			return;
		}
		copy = strdup(value);
		if (!copy)
			return;
		free(config->log_dir);
		config->log_dir = copy;
	} else if (strcmp(key, "ring_poll_us") == 0) {
		char *end;
		unsigned long microseconds;

		errno = 0;
		microseconds = strtoul(value, &end, 10);
		if (errno || end == value || *end || value[0] == '-' ||
		    microseconds > TCMU_RING_POLL_US_MAX) {
			tcmu_warn("%s:%u: ring_poll_us must be 0 to %d, not '%s'; kept %u", path,
				  line_number, TCMU_RING_POLL_US_MAX, value, config->ring_poll_us);
			return;
		}
		config->ring_poll_us = (unsigned int)microseconds;
	} else if (strcmp(key, "metrics_textfile") == 0) {
		char *copy;

		if (value[0] != '/' || !g_str_has_suffix(value, ".prom")) {
			tcmu_warn("%s:%u: metrics_textfile must be an absolute path ending in .prom "
				  "(node_exporter reads only those), not '%s'", path, line_number,
				  value);
			return;
		}
		copy = strdup(value);
		if (!copy)
			return;
		free(config->metrics_textfile);
		config->metrics_textfile = copy;
	} else if (strcmp(key, "xcopy_group") == 0) {
		add_xcopy_group(config, path, line_number, value);
	} else {
		tcmu_warn("%s:%u: unknown setting '%s' ignored", path, line_number, key);
	}
}

int config_file_load(const char *path, struct tcmu_config *config)
{
	unsigned int line_number = 0;
	char *line = NULL;
	size_t capacity = 0;
	FILE *file;

	file = fopen(path, "re");
	if (!file)
		return -errno;
	while (getline(&line, &capacity, file) >= 0) {
		char *text, *equals, *key, *value;

		line_number++;
		text = strchr(line, '#');
		if (text)
			*text = '\0';
		text = trim(line);
		if (!*text)
			continue;
		equals = strchr(text, '=');
		if (!equals) {
			tcmu_warn("%s:%u: expected 'key = value', got '%s'", path, line_number,
				  text);
			continue;
		}
		*equals = '\0';
		key = trim(text);
		value = trim(equals + 1);
		if (value[0] == '"' && strlen(value) >= 2 && value[strlen(value) - 1] == '"') {
			value[strlen(value) - 1] = '\0';
			value++;
		}
		config_apply(config, path, line_number, key, value);
	}
	free(line);
	fclose(file);
	return 0;
}

void config_release(struct tcmu_config *config)
{
	free(config->log_dir);
	config->log_dir = NULL;
	free(config->metrics_textfile);
	config->metrics_textfile = NULL;
	for (size_t i = 0; i < config->xcopy_group_count; i++)
		free(config->xcopy_groups[i]);
	free(config->xcopy_groups);
	config->xcopy_groups = NULL;
	config->xcopy_group_count = 0;
}
