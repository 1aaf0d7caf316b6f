/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dbus_medium.c: the ChangeMedium method of dbus.c's handler objects:
 * targetcli's changemedium, a running device's new size or backing.
 */
#include <errno.h>
#include <gio/gio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tcmu_internal.h"

/*
 * ChangeMedium goes through the kernel: the new config and size are
 * written to the device's configfs attrib/dev_config and attrib/dev_size.
 * For an enabled device each write makes the kernel send a RECONFIG
 * netlink event and wait for our reply; netlink.c answers it through
 * device_reconfigure(), and the kernel takes the new value only if that
 * succeeded. So the kernel (which LIO, targetcli and saveconfig read),
 * the daemon and the handler stay in agreement, and a refusal by the
 * handler fails the write. targetcli itself writes nothing to configfs.
 *
 * The writes block until the main thread has answered the netlink event,
 * and the kernel waits for that answer without a timeout, so they run on
 * a thread of their own; the reply is sent back on the main thread.
 */
struct medium_change {
	GDBusMethodInvocation *invocation;
	char *log_prefix;
	char *config_path;		/* NULL: the config stays */
	char *dev_config;
	char *size_path;		/* NULL: the size stays */
	char *size_text;
	const struct tcmu_handler *handler;
	char *handler_config;		/* the new config's handler part, to check */
	int status;
	const char *failed_attribute;	/* NULL: the handler refused the config */
	char *reason;
};

static void medium_change_free(gpointer data)
{
	struct medium_change *change = data;

	g_free(change->log_prefix);
	g_free(change->config_path);
	g_free(change->dev_config);
	g_free(change->size_path);
	g_free(change->size_text);
	free(change->handler_config);
	g_free(change->reason);
	g_free(change);
}

static void medium_change_thread(GTask *task, gpointer source, gpointer task_data,
				 GCancellable *cancellable)
{
	struct medium_change *change = task_data;

	(void)source;
	(void)cancellable;
	if (change->handler_config) {
		change->status = dbus_config_check_by_handler(change->handler, change->handler_config,
							 &change->reason);
		if (change->status < 0)
			goto out;
	}
	if (change->config_path) {
		change->status = sysfs_write_string(change->config_path, change->dev_config);
		if (change->status < 0) {
			change->failed_attribute = "dev_config";
			goto out;
		}
	}
	if (change->size_path) {
		change->status = sysfs_write_string(change->size_path, change->size_text);
		if (change->status < 0)
			change->failed_attribute = "dev_size";
	}
out:
	g_task_return_boolean(task, TRUE);
}

static void medium_change_done(GObject *source, GAsyncResult *result, gpointer unused)
{
	struct medium_change *change = g_task_get_task_data(G_TASK(result));
	char *reason = NULL;

	(void)source;
	(void)unused;
	if (change->status < 0 && !change->failed_attribute) {
		tcmu_warn("D-Bus ChangeMedium %s config '%s': %s", change->log_prefix,
			  change->dev_config, change->reason ? change->reason
			  : strerror(-change->status));
		reason = g_strdup(change->reason);
	} else if (change->status < 0) {
		reason = g_strdup_printf("%s: writing %s failed: %s%s", change->log_prefix,
					 change->failed_attribute, strerror(-change->status),
					 change->config_path && change->size_path &&
					 strcmp(change->failed_attribute, "dev_size") == 0 ?
					 " (the new config is in place)" : "");
		tcmu_err("D-Bus ChangeMedium %s", reason);
	} else {
		tcmu_info("D-Bus ChangeMedium %s: done", change->log_prefix);
	}
	dbus_call_reply_status(change->invocation, change->status, reason);
	g_free(reason);
}

/*
 * targetcli names a device by its configfs name alone, which two HBAs
 * (user_1/disk, user_2/disk) may share: that is refused rather than
 * guessed; "user_N/name" picks one. Only the main thread changes the
 * device list, so walking it here is safe.
 */
static int device_lookup(const char *name, struct tcmu_device **ret_device, char **ret_reason)
{
	struct tcmu_device *found = NULL;

	for (struct tcmu_device *dev = device_list_first(); dev; dev = dev->next) {
		if (strcmp(dev->name, name) != 0 && strcmp(dev->backstore, name) != 0)
			continue;
		if (found) {
			*ret_reason = g_strdup_printf("both %s and %s are named '%s': give "
						      "user_N/%s", found->backstore,
						      dev->backstore, name, name);
			return -EEXIST;
		}
		found = dev;
	}
	if (!found) {
		*ret_reason = g_strdup_printf("no device named '%s' is served", name);
		return -ENODEV;
	}
	*ret_device = found;
	return 0;
}

/* Decides what to write for ChangeMedium; returns 0, or -errno and a reason. */
static int medium_change_prepare(const struct tcmu_handler *handler, const char *name,
				 uint64_t size, const char *dev_config,
				 struct medium_change *change, char **ret_reason)
{
	struct tcmu_device *dev;
	int result;

	result = device_lookup(name, &dev, ret_reason);
	if (result < 0)
		return result;
	if (strcmp(dev->subtype, handler->subtype) != 0) {
		*ret_reason = g_strdup_printf("'%s' is served by the %s handler, not by %s", name,
					      dev->subtype, handler->subtype);
		return -EINVAL;
	}
	if (size < dev->block_size || size % dev->block_size) {
		*ret_reason = g_strdup_printf("the size %" PRIu64 " is not a positive multiple "
					      "of the block size %" PRIu32, size, dev->block_size);
		return -EINVAL;
	}
	if (strcmp(dev_config, dev->dev_config) != 0) {
		result = dbus_config_prepare(handler, dev_config, &change->handler_config,
					      ret_reason);
		if (result < 0)
			return result;
		change->handler = handler;
		change->config_path = g_strdup_printf("%s/attrib/dev_config", dev->configfs_dir);
		change->dev_config = g_strdup(dev_config);
	}
	if (size != tcmu_device_get_size(dev)) {
		change->size_path = g_strdup_printf("%s/attrib/dev_size", dev->configfs_dir);
		change->size_text = g_strdup_printf("%" PRIu64, size);
	}
	change->log_prefix = g_strdup(dev->log_prefix);
	return 0;
}

void dbus_change_medium_run(GDBusMethodInvocation *invocation,
			    const struct tcmu_handler *handler)
{
	GVariant *parameters = g_dbus_method_invocation_get_parameters(invocation);
	struct medium_change *change = g_new0(struct medium_change, 1);
	const char *name, *dev_config;
	char *reason = NULL;
	uint64_t size;
	GTask *task;
	int result;

	g_variant_get(parameters, "(&st&s)", &name, &size, &dev_config);
	result = medium_change_prepare(handler, name, size, dev_config, change, &reason);
	if (result < 0) {
		tcmu_warn("D-Bus ChangeMedium '%s' size %" PRIu64 " config '%s': %s", name, size,
			  dev_config, reason ? reason : strerror(-result));
		dbus_call_reply_status(invocation, result, reason);
		g_free(reason);
		medium_change_free(change);
		return;
	}
	if (!change->config_path && !change->size_path) {
		dbus_call_reply_status(invocation, 0, NULL);
		medium_change_free(change);
		return;
	}
	tcmu_info("D-Bus ChangeMedium %s:%s%s%s%s", change->log_prefix,
		  change->config_path ? " config " : "", change->config_path ? dev_config : "",
		  change->size_path ? " size " : "", change->size_path ? change->size_text : "");
	change->invocation = invocation;
	task = g_task_new(NULL, NULL, medium_change_done, NULL);
	g_task_set_task_data(task, change, medium_change_free);
	g_task_run_in_thread(task, medium_change_thread);
	g_object_unref(task);
}
