/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nbd_config.c: the nbd handler's config string: percent-decoding, the
 * ;timeout= option, an NBD URI or an exec: command split into argv (never
 * given to a shell), each refusal with its reason.
 */
#include "nbd.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int nbd_refuse(char **ret_reason, int error, const char *format, ...)
{
	va_list arguments;

	va_start(arguments, format);
	if (vasprintf(ret_reason, format, arguments) < 0)
		*ret_reason = NULL;
	va_end(arguments);
	return error;
}

static int nbd_percent_decode(const char *config, char *text, char **ret_reason)
{
	for (const char *c = config; *c; c++) {
		char hex[3] = { c[1], c[1] ? c[2] : '\0', '\0' };

		*text = *c;
		if (*c == '%' && (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1])))
			return nbd_refuse(ret_reason, -EINVAL, "'%%' at byte %zu is not followed by two "
					  "hex digits (%%25 is a '%%')", (size_t)(c - config));
		if (*c == '%') {
			*text = (char)strtol(hex, NULL, 16);
			c += 2;
		}
		if ((unsigned char)*text < 0x20 || *text == 0x7f)
			return nbd_refuse(ret_reason, -EINVAL, "the config string contains control characters");
		text++;
	}
	*text = '\0';
	return 0;
}

/*
 * Takes a trailing ;timeout=SECONDS off text. Only that name makes an
 * option: any other ';' belongs to the URI or to the command's words.
 */
static int nbd_take_options(char *text, struct nbd_target *target, char **ret_reason)
{
	char *option = NULL, *end;
	unsigned long seconds;

	for (char *found = strstr(text, NBD_OPTION_TIMEOUT); found;
	     found = strstr(found + 1, NBD_OPTION_TIMEOUT))
		option = found;
	target->command_timeout_s = NBD_COMMAND_TIMEOUT_DEFAULT_S;
	if (!option)
		return 0;
	errno = 0;
	seconds = strtoul(option + strlen(NBD_OPTION_TIMEOUT), &end, 10);
	if (!isdigit((unsigned char)option[strlen(NBD_OPTION_TIMEOUT)]) || *end || errno ||
	    seconds > NBD_COMMAND_TIMEOUT_MAX_S)
		return nbd_refuse(ret_reason, -EINVAL, "'%s' is not a timeout: give 0 (commands wait "
				  "as long as the server takes) to %u seconds", option + 1,
				  NBD_COMMAND_TIMEOUT_MAX_S);
	target->command_timeout_s = (unsigned int)seconds;
	*option = '\0';
	return 0;
}

/* argv points into words, which this splits at spaces. */
static int nbd_split_command(char *words, char ***ret_argv, char **ret_reason)
{
	/* n bytes hold at most (n + 1) / 2 words, and the NULL ends them. */
	char **argv = calloc(strlen(words) / 2 + 2, sizeof(*argv));
	size_t count = 0;
	char *saved;

	*ret_argv = argv;
	if (!argv)
		return nbd_refuse(ret_reason, -ENOMEM, "out of memory");
	for (char *word = strtok_r(words, " ", &saved); word; word = strtok_r(NULL, " ", &saved))
		argv[count++] = word;
	if (count == 0)
		return nbd_refuse(ret_reason, -EINVAL,
				  "exec: needs a server command, e.g. exec:nbdkit memory 1G");
	return 0;
}

void nbd_target_free(struct nbd_target *target)
{
	free(target->argv);
	free(target->words);
	free(target->text);
	*target = (struct nbd_target){ 0 };
}

int nbd_target_parse(const char *config, struct nbd_target *target, char **ret_reason)
{
	int result;

	*target = (struct nbd_target){ .text = malloc(strlen(config) + 1) };
	result = target->text ? nbd_percent_decode(config, target->text, ret_reason)
			      : nbd_refuse(ret_reason, -ENOMEM, "out of memory");
	if (result == 0)
		result = nbd_take_options(target->text, target, ret_reason);
	if (result == 0 && strncmp(target->text, "exec:", strlen("exec:")) == 0) {
		target->words = strdup(target->text + strlen("exec:"));
		result = target->words ? nbd_split_command(target->words, &target->argv, ret_reason)
				       : nbd_refuse(ret_reason, -ENOMEM, "out of memory");
		target->connect_timeout_ms = NBD_EXEC_CONNECT_TIMEOUT_MS;
		target->kind = "the server started by";
	} else if (result == 0 && strncmp(target->text, "nbd", 3) == 0 &&
		   strstr(target->text, "://")) {
		/* libnbd's URI parser judges the rest, scheme included. */
		target->uri = target->text;
		target->connect_timeout_ms = NBD_CONNECT_TIMEOUT_MS;
		target->kind = "the NBD server at";
	} else if (result == 0) {
		result = nbd_refuse(ret_reason, -EINVAL,
				    "'%s' is neither an NBD URI (nbd://HOST/EXPORT, "
				    "nbd+unix:///EXPORT?socket=PATH, nbds://...) nor exec:SERVER "
				    "COMMAND", target->text);
	}
	if (result < 0)
		nbd_target_free(target);
	return result;
}
