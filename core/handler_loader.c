/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handler_loader.c: finds handler_*.so files, checks that each keeps the
 * contract of libtcmu.h and keeps the ones that do.
 *
 * A file that describes itself (handler_info.c: the build embeds the
 * subtype, name and config description) is listed from that description
 * and dlopened only when it is first needed, by handler_require(): its
 * first device, or a CheckConfig. A dlopen or a check that fails then
 * fails that caller with the reason, and the next caller tries again. A
 * file without a description is loaded at once, as before.
 *
 * A handler is refused, by file name and with the reason, when it was
 * built for an ABI version the daemon does not load (handler_abi.c takes
 * each version it does), when its struct is too small to hold the
 * required callbacks, when a required callback is missing, when its
 * subtype is not a valid name or is already taken (or is not the one its
 * description promised), or when its load() fails. A refused handler is
 * dlclosed at once; the others still load.
 *
 * Handlers are listed before any device is served and stay until
 * handlers_unload() at exit, so the pointers handed out stay valid.
 * Everything here runs on the daemon's main thread; a handler's callbacks
 * are filled in before any device of it reaches a ring thread.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
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
	/*
	 * Our copy: fields the handler's build did not know are NULL. Until
	 * the handler is loaded only subtype, name and config_description
	 * are set, from info.
	 */
	struct tcmu_handler ops;
	void *dl_handle;
	char *path;
	struct handler_info info;
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

/* Sets *ret_reason (malloc'd) and returns result. */
static int refuse(char **ret_reason, int result, const char *format, ...)
{
	va_list arguments;

	va_start(arguments, format);
	if (vasprintf(ret_reason, format, arguments) < 0)
		*ret_reason = NULL;
	va_end(arguments);
	return result;
}

static struct loaded_handler *entry_find(const char *subtype)
{
	for (size_t i = 0; i < loaded_count; i++) {
		if (strcmp(loaded[i]->ops.subtype, subtype) == 0)
			return loaded[i];
	}
	return NULL;
}

/* Checks a subtype for listing under it, self being the entry that may already have it. */
static int subtype_check(const char *path, const char *subtype,
			 const struct loaded_handler *self, char **ret_reason)
{
	struct loaded_handler *found;

	if (!subtype_is_valid(subtype))
		return refuse(ret_reason, -EINVAL, "handler '%s' has subtype '%s'; a subtype is "
			      "1 to %d letters, digits or '_': refused", path, subtype,
			      SUBTYPE_MAX_LENGTH);
	found = entry_find(subtype);
	if (found && found != self)
		return refuse(ret_reason, -EEXIST, "handler '%s' has subtype '%s', which a "
			      "handler loaded before already has: refused", path, subtype);
	return 0;
}

/*
 * Takes the handler's struct, of its ABI version, into ops (handler_abi.c)
 * and checks it. Returns 0 or -errno with the reason.
 */
static int copy_checked(const char *path, const struct tcmu_handler *theirs,
			const struct loaded_handler *self, struct tcmu_handler *ops,
			char **ret_reason)
{
	const char *missing;
	int result = handler_abi_adapt(path, theirs, ops);

	if (result < 0)
		return refuse(ret_reason, result, "handler '%s' was built for a handler ABI "
			      "this daemon does not load: refused", path);
	if (!ops->subtype)
		return refuse(ret_reason, -EINVAL, "handler '%s' must have a .subtype: refused",
			      path);
	result = subtype_check(path, ops->subtype, self, ret_reason);
	if (result < 0)
		return result;
	missing = missing_required_op(ops);
	if (missing)
		return refuse(ret_reason, -EINVAL, "handler '%s' must have a .%s callback: refused",
			      path, missing);
	return 0;
}

/* dlopens path and takes its handler into ops, checked, without running its load(). */
static int probe(const char *path, const struct loaded_handler *self, struct tcmu_handler *ops,
		 void **ret_dl_handle, char **ret_reason)
{
	const struct tcmu_handler *(*init)(void);
	const struct tcmu_handler *theirs;
	void *dl_handle;
	int result;

	*ret_reason = NULL;
	dl_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl_handle)
		return refuse(ret_reason, -ENOEXEC, "handler '%s' cannot be loaded: %s", path,
			      dlerror());
	init = (const struct tcmu_handler *(*)(void))dlsym(dl_handle, "handler_init");
	if (!init) {
		result = refuse(ret_reason, -ENOEXEC, "handler '%s' has no handler_init symbol "
				"(TCMU_HANDLER_REGISTER): refused", path);
		goto close_handle;
	}
	theirs = init();
	if (!theirs) {
		result = refuse(ret_reason, -EINVAL, "handler '%s': handler_init returned NULL: "
				"refused", path);
		goto close_handle;
	}
	result = copy_checked(path, theirs, self, ops, ret_reason);
	if (result < 0)
		goto close_handle;
	*ret_dl_handle = dl_handle;
	return 0;

close_handle:
	dlclose(dl_handle);
	return result;
}

int handler_probe_file(const char *path, struct tcmu_handler *ops, void **ret_dl_handle,
		       char **ret_reason)
{
	return probe(path, NULL, ops, ret_dl_handle, ret_reason);
}

/*
 * dlopens the entry's file, checks it and runs its load(); on success the
 * entry's ops hold every callback. For a described entry the subtype must
 * be the described one, and the described texts stay. 0 or -errno with
 * the reason.
 */
static int entry_load(struct loaded_handler *entry, char **ret_reason)
{
	struct tcmu_handler ops;
	void *dl_handle;
	int result;

	result = probe(entry->path, entry, &ops, &dl_handle, ret_reason);
	if (result < 0)
		return result;
	if (entry->info.subtype && strcmp(ops.subtype, entry->info.subtype) != 0) {
		result = refuse(ret_reason, -EINVAL, "handler '%s' has subtype '%s', but its "
				"description says '%s' (a stale build?): refused", entry->path,
				ops.subtype, entry->info.subtype);
		goto close_handle;
	}
	if (ops.load) {
		result = ops.load();
		if (result != 0) {
			if (result > 0)
				result = -EINVAL;
			result = refuse(ret_reason, result, "handler '%s': load failed: %s: refused",
					entry->path, strerror(-result));
			goto close_handle;
		}
	}
	if (entry->info.subtype) {
		ops.subtype = entry->info.subtype;
		ops.name = entry->info.name;
		ops.config_description = entry->info.config_description;
	}
	entry->ops = ops;
	entry->dl_handle = dl_handle;
	return 0;

close_handle:
	dlclose(dl_handle);
	return result;
}

static void entry_free(struct loaded_handler *entry)
{
	handler_info_release(&entry->info);
	free(entry->path);
	free(entry);
}

static int entry_append(struct loaded_handler *entry)
{
	struct loaded_handler **grown = realloc(loaded, (loaded_count + 1) * sizeof(*loaded));

	if (!grown)
		return -ENOMEM;
	loaded = grown;
	loaded[loaded_count++] = entry;
	return 0;
}

/* Lists a described handler without loading it. 0 or -errno (logged). */
static int entry_describe(struct loaded_handler *entry)
{
	char *reason = NULL;
	int result;

	result = subtype_check(entry->path, entry->info.subtype, NULL, &reason);
	if (result < 0) {
		tcmu_err("%s", reason ? reason : strerror(-result));
		free(reason);
		return result;
	}
	entry->ops.subtype = entry->info.subtype;
	entry->ops.name = entry->info.name;
	entry->ops.config_description = entry->info.config_description;
	result = entry_append(entry);
	if (result == 0)
		tcmu_info("handler '%s' found in '%s' (loaded on first use)", entry->ops.subtype,
			  entry->path);
	return result;
}

/* With describe, a described file is listed and loaded later; otherwise now. */
static int handler_add_file(const char *path, bool describe)
{
	struct loaded_handler *entry;
	char *reason = NULL;
	int result;

	entry = calloc(1, sizeof(*entry));
	if (!entry)
		return -ENOMEM;
	entry->path = strdup(path);
	if (!entry->path) {
		result = -ENOMEM;
		goto free_entry;
	}
	if (describe) {
		result = handler_info_read(path, &entry->info);
		if (result == 0) {
			result = entry_describe(entry);
			if (result < 0)
				goto free_entry;
			return 0;
		}
		if (result != -ENODATA)
			tcmu_warn("handler '%s': its description cannot be read (%s): loading it "
				  "now", path, strerror(-result));
		handler_info_release(&entry->info);
	}

	result = entry_load(entry, &reason);
	if (result < 0) {
		tcmu_err("%s", reason ? reason : strerror(-result));
		free(reason);
		goto free_entry;
	}
	result = entry_append(entry);
	if (result < 0) {
		if (entry->ops.unload)
			entry->ops.unload();
		dlclose(entry->dl_handle);
		goto free_entry;
	}
	tcmu_info("handler '%s' loaded from '%s'", entry->ops.subtype, path);
	return 0;

free_entry:
	entry_free(entry);
	return result;
}

int handler_load_file(const char *path)
{
	return handler_add_file(path, false);
}

int handler_require(const struct tcmu_handler *handler, char **ret_reason)
{
	struct loaded_handler *entry = (struct loaded_handler *)handler;
	int result;

	*ret_reason = NULL;
	if (entry->dl_handle)
		return 0;
	result = entry_load(entry, ret_reason);
	if (result < 0) {
		tcmu_err("%s", *ret_reason ? *ret_reason : strerror(-result));
		return result;
	}
	tcmu_info("handler '%s' loaded from '%s'", entry->ops.subtype, entry->path);
	return 0;
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
			if (handler_add_file(path, true) == 0)
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

		if (entry->dl_handle) {
			if (entry->ops.unload)
				entry->ops.unload();
			dlclose(entry->dl_handle);
		}
		entry_free(entry);
	}
	free(loaded);
	loaded = NULL;
}

const struct tcmu_handler *handler_find(const char *subtype)
{
	struct loaded_handler *entry;

	if (!subtype)
		return NULL;
	entry = entry_find(subtype);
	return entry ? &entry->ops : NULL;
}

const struct tcmu_handler *handler_at(size_t index)
{
	return index < loaded_count ? &loaded[index]->ops : NULL;
}
