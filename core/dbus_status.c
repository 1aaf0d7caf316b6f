/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dbus_status.c: what the daemon and each device are doing, on the bus
 * for operators (tcmu-admin reads it). Two interfaces beside the handler
 * objects of dbus.c:
 *
 *   /org/kernel/TCMUService1/daemon            org.kernel.TCMUService1.Daemon
 *   /org/kernel/TCMUService1/devices/<escaped> org.kernel.TCMUService1.Device
 *
 * They are registered directly on the connection, not through dbus.c's
 * ObjectManager: targetcli reads every managed object as a handler, and a
 * device there would break its listing. The devices are a subtree that
 * lists the device list as it is at each call, so attach and removal need
 * no bookkeeping here. Reading properties is open to everyone (the policy
 * in tcmu-runner.conf); SetLogLevel is root's, like every method.
 *
 * Threads: the main thread's GLib loop, which also owns the device list.
 */
#include <errno.h>
#include <gio/gio.h>
#include <string.h>

#include "tcmu_internal.h"

#define STATUS_PATH "/org/kernel/TCMUService1"
#define DEVICES_PATH STATUS_PATH "/devices"
#define DAEMON_INTERFACE "org.kernel.TCMUService1.Daemon"
#define DEVICE_INTERFACE "org.kernel.TCMUService1.Device"

static const char status_xml[] =
	"<node>"
	"  <interface name='" DAEMON_INTERFACE "'>"
	"    <method name='SetLogLevel'>"
	"      <arg name='level' type='i' direction='in'/>"
	"      <arg name='status' type='i' direction='out'/>"
	"      <arg name='reason' type='s' direction='out'/>"
	"    </method>"
	"    <property name='Version' type='s' access='read'/>"
	"    <property name='StartTime' type='t' access='read'/>"
	"    <property name='Handlers' type='as' access='read'/>"
	"    <property name='Workers' type='u' access='read'/>"
	"    <property name='RingPollMaxUs' type='u' access='read'/>"
	"    <property name='LogLevel' type='i' access='read'/>"
	"    <property name='Devices' type='ao' access='read'/>"
	"    <property name='LatencyBucketBoundsNs' type='at' access='read'/>"
	"    <property name='Metrics' type='s' access='read'/>"
	"  </interface>"
	"  <interface name='" DEVICE_INTERFACE "'>"
	"    <property name='Name' type='s' access='read'/>"
	"    <property name='Backstore' type='s' access='read'/>"
	"    <property name='Handler' type='s' access='read'/>"
	"    <property name='Config' type='s' access='read'/>"
	"    <property name='Size' type='t' access='read'/>"
	"    <property name='BlockSize' type='u' access='read'/>"
	"    <property name='WriteCache' type='b' access='read'/>"
	"    <property name='State' type='s' access='read'/>"
	"    <property name='StateReason' type='s' access='read'/>"
	"    <property name='InFlight' type='u' access='read'/>"
	"    <property name='InFlightMax' type='u' access='read'/>"
	"    <property name='LastCommandTime' type='t' access='read'/>"
	"    <property name='LastErrorTime' type='t' access='read'/>"
	"    <property name='Commands' type='a{st}' access='read'/>"
	"    <property name='Bytes' type='a{st}' access='read'/>"
	"    <property name='LatencySumNs' type='a{st}' access='read'/>"
	"    <property name='LatencyBuckets' type='a{sat}' access='read'/>"
	"    <property name='Errors' type='a{st}' access='read'/>"
	"  </interface>"
	"</node>";

static GDBusNodeInfo *status_info;
static GDBusConnection *status_connection;
static unsigned int daemon_registration;
static unsigned int devices_registration;

/* "user_0/test_0" as one object path element. */
static char *device_node_name(const struct tcmu_device *dev)
{
	return g_dbus_escape_object_path(dev->backstore);
}

static struct tcmu_device *device_of_node(const char *node)
{
	for (struct tcmu_device *dev = device_list_first(); dev; dev = dev->next) {
		g_autofree char *name = device_node_name(dev);

		if (node && strcmp(name, node) == 0)
			return dev;
	}
	return NULL;
}

/* ---- the daemon ---- */

static void set_log_level_run(GDBusMethodInvocation *invocation, void *unused)
{
	int previous = tcmu_log_level_current, level;

	(void)unused;
	g_variant_get(g_dbus_method_invocation_get_parameters(invocation), "(i)", &level);
	if (level < TCMU_LOG_CRIT || level > TCMU_LOG_DEBUG_SCSI_CMD) {
		g_autofree char *reason = g_strdup_printf("the log level must be %d to %d, not %d",
							  TCMU_LOG_CRIT, TCMU_LOG_DEBUG_SCSI_CMD,
							  level);

		dbus_call_reply_status(invocation, -EINVAL, reason);
		return;
	}
	/* Said at the level that still shows it, before or after the change. */
	if (level < previous)
		tcmu_info("log level %d -> %d (D-Bus SetLogLevel)", previous, level);
	log_set_level(level);
	if (level > previous)
		tcmu_info("log level %d -> %d (D-Bus SetLogLevel)", previous, level);
	dbus_call_reply_status(invocation, 0, NULL);
}

static void daemon_method_call(GDBusConnection *connection, const char *sender,
			       const char *object_path, const char *interface_name,
			       const char *method_name, GVariant *parameters,
			       GDBusMethodInvocation *invocation, gpointer user_data)
{
	(void)connection;
	(void)sender;
	(void)object_path;
	(void)interface_name;
	(void)method_name;
	(void)parameters;
	(void)user_data;
	dbus_call_as_root(invocation, set_log_level_run, NULL);
}

static GVariant *daemon_get_property(GDBusConnection *connection, const char *sender,
				     const char *object_path, const char *interface_name,
				     const char *property, GError **error, gpointer user_data)
{
	GVariantBuilder builder;

	(void)connection;
	(void)sender;
	(void)object_path;
	(void)interface_name;
	(void)user_data;
	if (strcmp(property, "Version") == 0)
		return g_variant_new_string(TCMU_VERSION_STRING);
	if (strcmp(property, "StartTime") == 0)
		return g_variant_new_uint64(metrics_daemon_start_us());
	if (strcmp(property, "Workers") == 0)
		return g_variant_new_uint32(workers_count());
	if (strcmp(property, "RingPollMaxUs") == 0)
		return g_variant_new_uint32(workers_get_poll_limit());
	if (strcmp(property, "LogLevel") == 0)
		return g_variant_new_int32(tcmu_log_level_current);
	if (strcmp(property, "Metrics") == 0)
		return g_variant_new_take_string(metrics_render());
	if (strcmp(property, "Handlers") == 0) {
		const struct tcmu_handler *handler;

		g_variant_builder_init(&builder, G_VARIANT_TYPE("as"));
		for (size_t index = 0; (handler = handler_at(index)); index++)
			g_variant_builder_add(&builder, "s", handler->subtype);
		return g_variant_builder_end(&builder);
	}
	if (strcmp(property, "Devices") == 0) {
		g_variant_builder_init(&builder, G_VARIANT_TYPE("ao"));
		for (struct tcmu_device *dev = device_list_first(); dev; dev = dev->next) {
			g_autofree char *node = device_node_name(dev);
			g_autofree char *path = g_strdup_printf(DEVICES_PATH "/%s", node);

			g_variant_builder_add(&builder, "o", path);
		}
		return g_variant_builder_end(&builder);
	}
	if (strcmp(property, "LatencyBucketBoundsNs") == 0) {
		g_variant_builder_init(&builder, G_VARIANT_TYPE("at"));
		for (unsigned int bucket = 0; bucket < STATS_LATENCY_BUCKETS; bucket++)
			g_variant_builder_add(&builder, "t", histogram_bound_ns(bucket));
		return g_variant_builder_end(&builder);
	}
	g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "no property %s", property);
	return NULL;
}

static const GDBusInterfaceVTable daemon_vtable = {
	.method_call = daemon_method_call,
	.get_property = daemon_get_property,
};

/* ---- the devices ---- */

static GVariant *per_kind(const struct device_stats *stats, size_t offset)
{
	GVariantBuilder builder;

	g_variant_builder_init(&builder, G_VARIANT_TYPE("a{st}"));
	for (unsigned int kind = 0; kind < STATS_KIND_COUNT; kind++) {
		uint64_t value;

		memcpy(&value, (const uint8_t *)&stats->kinds[kind] + offset, sizeof(value));
		g_variant_builder_add(&builder, "{st}", stats_kind_name(kind), value);
	}
	return g_variant_builder_end(&builder);
}

static GVariant *device_stats_property(struct tcmu_device *dev, const char *property)
{
	struct device_stats stats;
	GVariantBuilder builder;
	uint32_t in_flight;

	stats_snapshot(dev, &stats, &in_flight);
	if (strcmp(property, "InFlight") == 0)
		return g_variant_new_uint32(in_flight);
	if (strcmp(property, "InFlightMax") == 0)
		return g_variant_new_uint32(stats.in_flight_max);
	if (strcmp(property, "LastCommandTime") == 0)
		return g_variant_new_uint64(stats.last_command_us);
	if (strcmp(property, "LastErrorTime") == 0)
		return g_variant_new_uint64(stats.last_error_us);
	if (strcmp(property, "Commands") == 0)
		return per_kind(&stats, offsetof(struct stats_kind_counters, commands));
	if (strcmp(property, "Bytes") == 0)
		return per_kind(&stats, offsetof(struct stats_kind_counters, bytes));
	if (strcmp(property, "LatencySumNs") == 0)
		return per_kind(&stats, offsetof(struct stats_kind_counters, latency_sum_ns));
	if (strcmp(property, "LatencyBuckets") == 0) {
		g_variant_builder_init(&builder, G_VARIANT_TYPE("a{sat}"));
		for (unsigned int kind = 0; kind < STATS_KIND_COUNT; kind++) {
			GVariant *buckets = g_variant_new_fixed_array(
				G_VARIANT_TYPE_UINT64, stats.kinds[kind].latency_buckets,
				STATS_LATENCY_BUCKETS, sizeof(uint64_t));

			g_variant_builder_add(&builder, "{s@at}", stats_kind_name(kind), buckets);
		}
		return g_variant_builder_end(&builder);
	}
	/* Errors: by sense key, and "none" for other statuses than CHECK CONDITION. */
	g_variant_builder_init(&builder, G_VARIANT_TYPE("a{st}"));
	for (unsigned int key = 0; key < 16; key++)
		g_variant_builder_add(&builder, "{st}", stats_sense_key_name(key),
				      stats.errors_by_sense_key[key]);
	g_variant_builder_add(&builder, "{st}", "none", stats.errors_other_status);
	return g_variant_builder_end(&builder);
}

static GVariant *device_get_property(GDBusConnection *connection, const char *sender,
				     const char *object_path, const char *interface_name,
				     const char *property, GError **error, gpointer user_data)
{
	const char *node = strrchr(object_path, '/') + 1;
	struct tcmu_device *dev = device_of_node(node);
	char reason[sizeof(dev->state_reason)];

	(void)connection;
	(void)sender;
	(void)interface_name;
	(void)user_data;
	if (!dev) {
		g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT,
			    "no device at %s (removed?)", object_path);
		return NULL;
	}
	if (strcmp(property, "Name") == 0)
		return g_variant_new_string(dev->name);
	if (strcmp(property, "Backstore") == 0)
		return g_variant_new_string(dev->backstore);
	if (strcmp(property, "Handler") == 0)
		return g_variant_new_string(dev->subtype);
	if (strcmp(property, "Config") == 0)
		return g_variant_new_string(g_utf8_validate(dev->config, -1, NULL) ? dev->config : "");
	if (strcmp(property, "Size") == 0)
		return g_variant_new_uint64(tcmu_device_get_size(dev));
	if (strcmp(property, "BlockSize") == 0)
		return g_variant_new_uint32(dev->block_size);
	if (strcmp(property, "WriteCache") == 0)
		return g_variant_new_boolean(tcmu_device_get_write_cache(dev));
	if (strcmp(property, "State") == 0)
		return g_variant_new_string(
			stats_state_name(stats_device_state(dev, reason, sizeof(reason))));
	if (strcmp(property, "StateReason") == 0) {
		stats_device_state(dev, reason, sizeof(reason));
		return g_variant_new_string(g_utf8_validate(reason, -1, NULL) ? reason : "");
	}
	return device_stats_property(dev, property);
}

static const GDBusInterfaceVTable device_vtable = {
	.get_property = device_get_property,
};

static char **devices_enumerate(GDBusConnection *connection, const char *sender,
				const char *object_path, gpointer user_data)
{
	GPtrArray *nodes = g_ptr_array_new();

	(void)connection;
	(void)sender;
	(void)object_path;
	(void)user_data;
	for (struct tcmu_device *dev = device_list_first(); dev; dev = dev->next)
		g_ptr_array_add(nodes, device_node_name(dev));
	g_ptr_array_add(nodes, NULL);
	return (char **)g_ptr_array_free(nodes, FALSE);
}

static GDBusInterfaceInfo **devices_introspect(GDBusConnection *connection, const char *sender,
					       const char *object_path, const char *node,
					       gpointer user_data)
{
	GDBusInterfaceInfo **interfaces;

	(void)connection;
	(void)sender;
	(void)object_path;
	(void)user_data;
	if (!device_of_node(node))
		return NULL;
	interfaces = g_new0(GDBusInterfaceInfo *, 2);
	interfaces[0] = g_dbus_interface_info_ref(status_info->interfaces[1]);
	return interfaces;
}

static const GDBusInterfaceVTable *devices_dispatch(GDBusConnection *connection,
						    const char *sender, const char *object_path,
						    const char *interface_name, const char *node,
						    gpointer *ret_user_data, gpointer user_data)
{
	(void)connection;
	(void)sender;
	(void)object_path;
	(void)user_data;
	*ret_user_data = NULL;
	if (!device_of_node(node) || g_strcmp0(interface_name, DEVICE_INTERFACE) != 0)
		return NULL;
	return &device_vtable;
}

static const GDBusSubtreeVTable devices_subtree_vtable = {
	.enumerate = devices_enumerate,
	.introspect = devices_introspect,
	.dispatch = devices_dispatch,
};

int dbus_status_register(GDBusConnection *connection)
{
	GError *error = NULL;

	g_set_object(&status_connection, connection);
	if (!status_info) {
		status_info = g_dbus_node_info_new_for_xml(status_xml, &error);
		if (!status_info)
			goto fail;
	}
	daemon_registration = g_dbus_connection_register_object(
		connection, STATUS_PATH "/daemon", status_info->interfaces[0], &daemon_vtable,
		NULL, NULL, &error);
	if (!daemon_registration)
		goto fail;
	devices_registration = g_dbus_connection_register_subtree(
		connection, DEVICES_PATH, &devices_subtree_vtable,
		G_DBUS_SUBTREE_FLAGS_NONE, NULL, NULL, &error);
	if (!devices_registration)
		goto fail;
	return 0;

fail:
	tcmu_err("D-Bus: status objects not offered: %s", error->message);
	g_error_free(error);
	dbus_status_unregister();
	return -EIO;
}

void dbus_status_unregister(void)
{
	GDBusConnection *connection = status_connection;

	if (connection && daemon_registration)
		g_dbus_connection_unregister_object(connection, daemon_registration);
	if (connection && devices_registration)
		g_dbus_connection_unregister_subtree(connection, devices_registration);
	daemon_registration = 0;
	devices_registration = 0;
	g_clear_object(&status_connection);
}
