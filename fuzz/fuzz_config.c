/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_config: config strings as configfs hands them over. The input is
 * a dev_config "<subtype>/[;option=value;...]<handler config>", split by
 * dev_config_split(); the handler part then goes to the check_config of
 * every handler built alongside (loaded through the daemon's own loader
 * from FUZZ_HANDLER_DIR, or $TCMU_FUZZ_HANDLER_DIR), whatever the subtype.
 * check_config must answer 0, or -errno with a reason, and must not
 * touch the file system beyond looking.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tcmu_internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *directory = getenv("TCMU_FUZZ_HANDLER_DIR");

	(void)argc;
	(void)argv;
	/* Loader messages stay visible: a handler that does not load is the first thing to see. */
	log_set_level(TCMU_LOG_WARN);
	const struct tcmu_handler *handler;
	char *reason;

	if (handlers_load(directory ? directory : FUZZ_HANDLER_DIR) <= 0)
		abort();
	for (size_t index = 0; (handler = handler_at(index)); index++)
		if (handler_require(handler, &reason) < 0)
			abort();
	log_set_level(TCMU_LOG_CRIT);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *dev_config, *subtype = NULL, *handler_config = NULL;
	const struct tcmu_handler *handler;
	const char *slash;
	size_t index;
	int result;

	dev_config = malloc(size + 1);
	if (!dev_config)
		return 0;
	memcpy(dev_config, data, size);
	dev_config[size] = '\0';

	result = dev_config_split(dev_config, &subtype, &handler_config);
	slash = strchr(dev_config, '/');
	if (result == 0) {
		/*
		 * The subtype is everything before the first slash, the handler part
		 * a suffix of the rest once trailing newlines (from echo) are dropped.
		 */
		size_t config_length = strlen(dev_config), handler_length = strlen(handler_config);

		if (!slash || strlen(subtype) != (size_t)(slash - dev_config) || !subtype[0] ||
		    strncmp(subtype, dev_config, strlen(subtype)) != 0)
			abort();
		while (config_length > (size_t)(slash - dev_config) + 1 &&
		       dev_config[config_length - 1] == '\n')
			config_length--;
		if (handler_length > config_length - strlen(subtype) - 1 ||
		    strncmp(dev_config + config_length - handler_length, handler_config,
			    handler_length) != 0)
			abort();
	} else if (result != -EINVAL || (slash && slash != dev_config)) {
		/* Only a string without a subtype is refused. */
		abort();
	}

	for (index = 0; (handler = handler_at(index)); index++) {
		char *reason = NULL;
		int check;

		if (!handler->check_config)
			continue;
		check = handler->check_config(handler_config ? handler_config : dev_config, &reason);
		if (check > 0 || (check < 0 && check < -4095))
			abort();
		if (reason && !check)
			abort();
		if (reason)
			(void)strlen(reason);
		free(reason);
	}

	free(subtype);
	free(handler_config);
	free(dev_config);
	return 0;
}
