/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handler_info.c: a build step, not installed. Loads a built handler
 * through the daemon's loader checks and writes the content of its
 * description section (core/handler_info.c), which the build then adds to
 * the handler file, so that the daemon can list it without loading it.
 *
 * usage: tcmu-handler-info HANDLER.so OUTPUT
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcmu_internal.h"

int main(int argc, char **argv)
{
	struct tcmu_handler ops;
	char *reason = NULL;
	void *dl_handle;
	FILE *out;
	int result;

	if (argc != 3) {
		fprintf(stderr, "usage: %s HANDLER.so OUTPUT\n", argv[0]);
		return 2;
	}
	result = handler_probe_file(argv[1], &ops, &dl_handle, &reason);
	if (result < 0) {
		fprintf(stderr, "%s: %s\n", argv[0], reason ? reason : strerror(-result));
		free(reason);
		return 1;
	}
	out = fopen(argv[2], "wb");
	if (!out) {
		fprintf(stderr, "%s: %s: %m\n", argv[0], argv[2]);
		return 1;
	}
	result = handler_info_write(&ops, out);
	if (fclose(out) != 0 || result < 0) {
		fprintf(stderr, "%s: %s: write failed\n", argv[0], argv[2]);
		remove(argv[2]);
		return 1;
	}
	/* Left loaded: a handler's libraries may not expect to be unloaded. */
	(void)dl_handle;
	return 0;
}
