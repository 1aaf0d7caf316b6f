/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handler_loader.c: finds handler_*.so files, checks that each keeps the
 * contract of libtcmu.h and keeps the ones that do.
 *
 * A handler is refused, by file name and with the reason, when it was
 * built for an ABI version the daemon does not load (handler_abi.c takes
 * each version it does), when its struct is too small to hold the
 * required callbacks, when a required callback is missing, when its
 * subtype is not a valid name or is already taken, or when its load()
 * fails. A refused handler is dlclosed at once; the others still load.
 *
 * Handlers are loaded before any device is served and stay until
 * handlers_unload() at exit, so the pointers handed out stay valid and
 * lookups need no lock.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fnmatch.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "tcmu_internal.h"

/*
 * The subtype names a D-Bus object (/org/kernel/TCMUService1/<subtype>)
 * and prefixes config strings ("<subtype>/..."), so it is kept to what
 * both accept.
 */
#define SUBTYPE_MAX_LENGTH 64

struct loaded_handler {
	/* Our copy: fields the handler's build did not know are NULL. */
	struct tcmu_handler ops;
	void *dl_handle;
	char *path;
};

static struct loaded_handler **loaded;
static size_t loaded_count;

static bool subtype_is_valid(const char *subtype)
{
	size_t length = 0;

	for (const char *c = subtype; *c; c++, length++) {
		bool word = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			    (*c >= '0' && *c <= '9') || *c == '_';
		if (!word)
			return false;
	}
	return length > 0 && length <= SUBTYPE_MAX_LENGTH;
}

/* Names the first required callback the handler lacks, NULL when it has all. */
static const char *missing_required_op(const struct tcmu_handler *ops)
{
	if (!ops->open)
		return "open";
	if (!ops->close)
		return "close";
	if (!ops->read)
		return "read";
	if (!ops->write)
		return "write";
	if (!ops->flush)
		return "flush";
	return NULL;
}

/*
 * Takes the handler's struct, of its ABI version, into ops (handler_abi.c)
 * and checks it. Returns 0 or -errno, logging why the handler is refused.
 */
static int copy_checked(const char *path, const struct tcmu_handler *theirs,
			struct tcmu_handler *ops)
{
	const char *missing;
	int result = handler_abi_adapt(path, theirs, ops);

	if (result < 0)
		return result;
	if (!ops->subtype) {
		tcmu_err("handler '%s' must have a .subtype: refused", path);
		return -EINVAL;
	}
	if (!subtype_is_valid(ops->subtype)) {
		tcmu_err("handler '%s' has subtype '%s'; a subtype is 1 to %d letters, digits or '_': refused",
			 path, ops->subtype, SUBTYPE_MAX_LENGTH);
		return -EINVAL;
	}
	missing = missing_required_op(ops);
	if (missing) {
		tcmu_err("handler '%s' must have a .%s callback: refused", path, missing);
		return -EINVAL;
	}
	if (handler_find(ops->subtype)) {
		tcmu_err("handler '%s' has subtype '%s', which a handler loaded before already has: refused",
			 path, ops->subtype);
		return -EEXIST;
	}
	return 0;
}

int handler_load_file(const char *path)
{
	const struct tcmu_handler *(*init)(void);
	const struct tcmu_handler *theirs;
	struct loaded_handler *entry, **grown;
	int result;

	entry = calloc(1, sizeof(*entry));
	if (!entry)
		return -ENOMEM;
	entry->path = strdup(path);
	if (!entry->path) {
		result = -ENOMEM;
		goto free_entry;
	}

	entry->dl_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!entry->dl_handle) {
		tcmu_err("handler '%s' cannot be loaded: %s", path, dlerror());
		result = -ENOEXEC;
		goto free_entry;
	}

	init = (const struct tcmu_handler *(*)(void))dlsym(entry->dl_handle, "handler_init");
	if (!init) {
		tcmu_err("handler '%s' has no handler_init symbol (TCMU_HANDLER_REGISTER): refused",
			 path);
		result = -ENOEXEC;
		goto close_handle;
	}
	theirs = init();
	if (!theirs) {
		tcmu_err("handler '%s': handler_init returned NULL: refused", path);
		result = -EINVAL;
		goto close_handle;
	}

	result = copy_checked(path, theirs, &entry->ops);
	if (result < 0)
		goto close_handle;

	grown = realloc(loaded, (loaded_count + 1) * sizeof(*loaded));
	if (!grown) {
		result = -ENOMEM;
		goto close_handle;
	}
	loaded = grown;

	if (entry->ops.load) {
		result = entry->ops.load();
		if (result != 0) {
			if (result > 0)
				result = -EINVAL;
			tcmu_err("handler '%s': load failed: %s: refused", path, strerror(-result));
			goto close_handle;
		}
	}

	loaded[loaded_count++] = entry;
	tcmu_info("handler '%s' loaded from '%s'", entry->ops.subtype, path);
	return 0;

close_handle:
	dlclose(entry->dl_handle);
free_entry:
	free(entry->path);
	free(entry);
	return result;
}

static int handler_file_filter(const struct dirent *entry)
{
	return fnmatch("handler_*.so", entry->d_name, FNM_PERIOD) == 0;
}

int handlers_load(const char *dir)
{
	struct dirent **names;
	int count, loaded_here = 0;

	count = scandir(dir, &names, handler_file_filter, alphasort);
	if (count < 0) {
		int result = -errno;

		tcmu_err("handler directory '%s' cannot be read: %m", dir);
		return result;
	}

	for (int i = 0; i < count; i++) {
		char *path;

		if (asprintf(&path, "%s/%s", dir, names[i]->d_name) < 0) {
			tcmu_err("handler '%s/%s' not loaded: out of memory", dir, names[i]->d_name);
		} else {
			if (handler_load_file(path) == 0)
				loaded_here++;
			free(path);
		}
		free(names[i]);
	}
	free(names);

	if (loaded_here == 0)
		tcmu_warn("no handler loaded from '%s'", dir);
	return loaded_here;
}

void handlers_unload(void)
{
	/* Reverse load order, so that teardown mirrors setup. */
	while (loaded_count > 0) {
		struct loaded_handler *entry = loaded[--loaded_count];

		if (entry->ops.unload)
			entry->ops.unload();
		dlclose(entry->dl_handle);
		free(entry->path);
		free(entry);
	}
	free(loaded);
	loaded = NULL;
}

const struct tcmu_handler *handler_find(const char *subtype)
{
	if (!subtype)
		return NULL;
	for (size_t i = 0; i < loaded_count; i++) {
		if (strcmp(loaded[i]->ops.subtype, subtype) == 0)
			return &loaded[i]->ops;
	}
	return NULL;
}

const struct tcmu_handler *handler_at(size_t index)
{
	return index < loaded_count ? &loaded[index]->ops : NULL;
}
