/* SPDX-License-Identifier: Apache-2.0 */
/*
 * admin_daemon.c: tcmu-admin's side of the daemon's status objects
 * (core/dbus_status.c): the properties of the daemon and of each device,
 * and clear errors when the daemon is not there to ask.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "admin_daemon.h"

const char *const admin_kinds[ADMIN_KIND_COUNT] = {
	"read", "write", "flush", "unmap", "write_same", "compare_and_write", "extended_copy",
	"other",
};

GDBusConnection *bus;

int fail(const char *format, ...)
{
	va_list arguments;

	fputs("tcmu-admin: ", stderr);
	va_start(arguments, format);
	vfprintf(stderr, format, arguments);
	va_end(arguments);
	fputc('\n', stderr);
	return 1;
}

/* Every property of an interface at path, as a{sv}; NULL after a message. */
GVariant *get_all(const char *path, const char *interface)
{
	g_autoptr(GError) error = NULL;
	GVariant *reply, *properties;

	reply = g_dbus_connection_call_sync(bus, SERVICE, path, "org.freedesktop.DBus.Properties",
					    "GetAll", g_variant_new("(s)", interface),
					    G_VARIANT_TYPE("(a{sv})"), G_DBUS_CALL_FLAGS_NONE,
					    CALL_TIMEOUT_MS, NULL, &error);
	if (!reply) {
		if (g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
		    g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER))
			fail("tcmu-runner is not running (nobody owns %s on the system bus)",
			     SERVICE);
		else if (g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD) ||
			 g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT) ||
			 g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_INTERFACE))
			fail("%s: not offered by this tcmu-runner (too old, or the device is gone)",
			     path);
		else
			fail("asking tcmu-runner: %s", error->message);
		return NULL;
	}
	properties = g_variant_get_child_value(reply, 0);
	g_variant_unref(reply);
	return properties;
}

uint64_t lookup_u64(GVariant *dict, const char *key)
{
	guint64 value = 0;

	g_variant_lookup(dict, key, "t", &value);
	return value;
}

static void device_release(struct device *device)
{
	if (device->properties)
		g_variant_unref(device->properties);
}

static int device_read(const char *path, struct device *ret_device)
{
	GVariant *properties = get_all(path, DEVICE_INTERFACE);

	if (!properties)
		return -EIO;
	memset(ret_device, 0, sizeof(*ret_device));
	ret_device->properties = properties;
	g_variant_lookup(properties, "Name", "&s", &ret_device->name);
	g_variant_lookup(properties, "Backstore", "&s", &ret_device->backstore);
	g_variant_lookup(properties, "Handler", "&s", &ret_device->handler);
	g_variant_lookup(properties, "Config", "&s", &ret_device->config);
	g_variant_lookup(properties, "State", "&s", &ret_device->state);
	g_variant_lookup(properties, "StateReason", "&s", &ret_device->state_reason);
	g_variant_lookup(properties, "Size", "t", &ret_device->size);
	g_variant_lookup(properties, "InFlight", "u", &ret_device->in_flight);
	g_variant_lookup(properties, "InFlightMax", "u", &ret_device->in_flight_max);
	return 0;
}

/* A kind's histogram from LatencyBuckets; 0 buckets when the kind is missing. */
size_t device_buckets(const struct device *device, const char *kind,
			     uint64_t buckets[HISTOGRAM_BUCKETS])
{
	g_autoptr(GVariant) all = g_variant_lookup_value(device->properties, "LatencyBuckets",
							 G_VARIANT_TYPE("a{sat}"));
	g_autoptr(GVariant) one = NULL;
	const uint64_t *values;
	size_t count = 0;

	memset(buckets, 0, HISTOGRAM_BUCKETS * sizeof(*buckets));
	if (!all || !(one = g_variant_lookup_value(all, kind, G_VARIANT_TYPE("at"))))
		return 0;
	values = g_variant_get_fixed_array(one, &count, sizeof(uint64_t));
	if (count > HISTOGRAM_BUCKETS)
		count = HISTOGRAM_BUCKETS;
	memcpy(buckets, values, count * sizeof(*values));
	return count;
}

uint64_t device_kind_value(const struct device *device, const char *property,
				  const char *kind)
{
	g_autoptr(GVariant) dict = g_variant_lookup_value(device->properties, property,
							  G_VARIANT_TYPE("a{st}"));

	return dict ? lookup_u64(dict, kind) : 0;
}

/* The daemon's devices; DEVICE arguments select by name or backstore. */
int devices_read(GVariant *daemon, char **wanted, struct device **ret_devices,
			size_t *ret_count)
{
	g_autoptr(GVariant) paths = g_variant_lookup_value(daemon, "Devices", G_VARIANT_TYPE("ao"));
	size_t count = paths ? g_variant_n_children(paths) : 0, taken = 0;
	struct device *devices = g_new0(struct device, count ? count : 1);

	for (size_t i = 0; i < count; i++) {
		const char *path;
		bool selected = !wanted || !*wanted;

		g_variant_get_child(paths, i, "&o", &path);
		/* Gone between the listing and now: not an error, just not there. */
		if (device_read(path, &devices[taken]) < 0)
			continue;
		for (char **name = wanted; name && *name; name++)
			selected |= g_strcmp0(*name, devices[taken].name) == 0 ||
				    g_strcmp0(*name, devices[taken].backstore) == 0;
		if (selected)
			taken++;
		else
			device_release(&devices[taken]);
	}
	for (char **name = wanted; name && *name; name++) {
		bool found = false;

		for (size_t i = 0; i < taken; i++)
			found |= g_strcmp0(*name, devices[i].name) == 0 ||
				 g_strcmp0(*name, devices[i].backstore) == 0;
		if (!found) {
			for (size_t i = 0; i < taken; i++)
				device_release(&devices[i]);
			g_free(devices);
			return fail("no device '%s' (tcmu-admin list shows them)", *name);
		}
	}
	*ret_devices = devices;
	*ret_count = taken;
	return 0;
}

void devices_release(struct device *devices, size_t count)
{
	for (size_t i = 0; i < count; i++)
		device_release(&devices[i]);
	g_free(devices);
}

void bucket_bounds(GVariant *daemon, uint64_t bounds[HISTOGRAM_BUCKETS])
{
	g_autoptr(GVariant) daemon_bounds = g_variant_lookup_value(daemon, "LatencyBucketBoundsNs",
								   G_VARIANT_TYPE("at"));
	size_t count = 0;
	const uint64_t *values = daemon_bounds ?
		g_variant_get_fixed_array(daemon_bounds, &count, sizeof(uint64_t)) : NULL;

	/* The daemon's bounds when it gives them: it may be of another release. */
	for (unsigned int i = 0; i < HISTOGRAM_BUCKETS; i++)
		bounds[i] = i < count ? values[i] : histogram_bound_ns(i);
}

