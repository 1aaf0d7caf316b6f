/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handlers.h: the daemon's list of handlers (handler_loader.c) and the
 * descriptions that let it list a handler without loading it
 * (handler_info.c). Included through tcmu_internal.h.
 */
#ifndef TCMU_HANDLERS_H
#define TCMU_HANDLERS_H

#include <stddef.h>
#include <stdio.h>

#include "libtcmu.h"

/* ----------------------------------------------------- handler_loader.c */

/*
 * Lists every handler_*.so in dir: one that carries its description
 * (handler_info.c) is dlopened on first use, the others now. Returns the
 * number listed or -errno.
 */
int handlers_load(const char *dir);
void handlers_unload(void);
/*
 * A listed handler by subtype, or by index from 0 until NULL. Its subtype,
 * name and config_description are always set; its callbacks only after
 * handler_require() succeeded (NULL before).
 */
const struct tcmu_handler *handler_find(const char *subtype);
const struct tcmu_handler *handler_at(size_t index);
/*
 * Loads a listed handler if it is not yet: 0, or -errno with a malloc'd
 * reason naming the file (also logged); a later call tries again.
 */
int handler_require(const struct tcmu_handler *handler, char **ret_reason);
/* Loads one handler file now; exposed for the ABI test. */
int handler_load_file(const char *path);
/*
 * dlopens a handler file and checks its handler_init's struct, without
 * listing it or running its load(): for the build's description of it.
 */
int handler_probe_file(const char *path, struct tcmu_handler *ops, void **ret_dl_handle,
		       char **ret_reason);

/* --------------------------------------------------------- handler_info.c */

/* The ELF section that describes a handler file. */
#define HANDLER_INFO_SECTION ".tcmu_handler"

/*
 * Points into the section, which stays mapped from the file until released:
 * so /proc/PID/maps names every handler file the daemon offers, loaded or
 * not (user_create.sh looks there for the subtype it is asked for).
 */
struct handler_info {
	const char *subtype;
	const char *name;
	const char *config_description;
	void *mapping;
	size_t mapping_length;
};

/*
 * Reads the description of a handler file: 0, -ENODATA when it has none
 * (or is no ELF file), -EINVAL when it is malformed or of another class.
 */
int handler_info_read(const char *path, struct handler_info *info);
/* Writes the section's content for a handler: 0 or -EIO. */
int handler_info_write(const struct tcmu_handler *ops, FILE *out);
void handler_info_release(struct handler_info *info);

#endif
