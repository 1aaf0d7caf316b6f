/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dbus.c: the org.kernel.TCMUService1 service on the system bus. targetcli
 * lists the handlers through it (each becomes a user:<subtype> backstore),
 * prints a handler's config string grammar (ConfigDesc), asks whether a
 * config string is usable before it creates a backstore (CheckConfig) and
 * changes a running device's size or backing (ChangeMedium).
 *
 * Layout: an ObjectManager at /org/kernel/TCMUService1 and one object per
 * loaded handler at /org/kernel/TCMUService1/<subtype> carrying the
 * org.kernel.TCMUService1 interface. Handlers are loaded before the
 * service starts and stay until it stops, so the objects never change.
 *
 * Who may call: the bus policy (tcmu-runner.conf) lets only root call the
 * methods; the daemon checks again, with the bus's word on the caller's
 * uid, so that a policy file that is too open does not hand configfs to
 * every local user. Introspection and properties stay open.
 *
 * Threads: everything here runs on the main thread's GLib loop, the one
 * that handles netlink events, so the device list does not change under a
 * method call. Two things must not block that loop and run on threads of
 * GLib's pool: a handler's own check of a config string (CheckConfig, and
 * ChangeMedium's new config), which may wait seconds for a cluster or a
 * server, and the configfs writes of ChangeMedium (dbus_medium.c).
 *
 * The service is optional: without a system bus, or without the right to
 * own the name, the daemon logs a warning and goes on serving devices.
 */
#include <errno.h>
#include <gio/gio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tcmu_internal.h"

#define SERVICE_NAME "org.kernel.TCMUService1"
#define SERVICE_PATH "/org/kernel/TCMUService1"
#define HANDLER_INTERFACE "org.kernel.TCMUService1"

/* The kernel's dev_config buffer (TCMU_CONFIG_LEN) holds this much plus the NUL. */
#define DEV_CONFIG_MAX_LENGTH 255
/* How long dbus_stop() lets running method calls finish. */
#define STOP_TIMEOUT_MS 30000

static const char interface_xml[] =
	"<node>"
	"  <interface name='" HANDLER_INTERFACE "'>"
	"    <method name='CheckConfig'>"
	"      <arg name='config' type='s' direction='in'/>"
	"      <arg name='valid' type='b' direction='out'/>"
	"      <arg name='reason' type='s' direction='out'/>"
	"    </method>"
	"    <method name='ChangeMedium'>"
	"      <arg name='name' type='s' direction='in'/>"
	"      <arg name='size' type='t' direction='in'/>"
	"      <arg name='config' type='s' direction='in'/>"
	"      <arg name='status' type='i' direction='out'/>"
	"      <arg name='reason' type='s' direction='out'/>"
	"    </method>"
	"    <property name='ConfigDesc' type='s' access='read'/>"
	"  </interface>"
	"</node>";

static GDBusNodeInfo *node_info;
static GDBusObjectManagerServer *object_manager;
static GDBusConnection *bus_connection;
static guint owner_id;
static bool no_bus_warned;
/* Method calls between arrival and reply; dbus_stop() waits for them. */
static unsigned int calls_in_flight;

/* ---- config string checks ---- */

/*
 * rtslib writes dev_config through configfs "control", whose parser ends
 * a value at ',' or a newline and silently cuts it at 255 bytes, and
 * reads it back from "info" up to the first space or ':'. A string with
 * any of those would be stored, or saved by saveconfig, as something else
 * than the handler was asked about.
 */
static int dev_config_check_transport(const char *dev_config, char **ret_reason)
{
	size_t length = strlen(dev_config);

	if (length > DEV_CONFIG_MAX_LENGTH) {
		*ret_reason = g_strdup_printf("the config string is %zu bytes long; the kernel "
					      "keeps at most %d", length, DEV_CONFIG_MAX_LENGTH);
		return -ENAMETOOLONG;
	}
	for (const char *c = dev_config; *c; c++) {
		if (*c == ',' || *c == ':' || *c == ' ' || (unsigned char)*c < 0x20 ||
		    *c == 0x7f) {
			*ret_reason = g_strdup_printf("the config string must not contain %s: "
						      "configfs and targetcli would not keep it "
						      "intact",
						      *c == ',' ? "','" : *c == ':' ? "':'" :
						      *c == ' ' ? "spaces" : "control characters");
			return -EINVAL;
		}
	}
	return 0;
}

int dbus_config_prepare(const struct tcmu_handler *handler, const char *dev_config,
			char **ret_config, char **ret_reason)
{
	char *subtype = NULL, *config = NULL, *reason = NULL;
	int result;

	*ret_config = NULL;
	*ret_reason = NULL;
	result = dev_config_split(dev_config, &subtype, &config);
	if (result == -EINVAL) {
		*ret_reason = g_strdup_printf("'%s' is not of the form '%s/<config>'", dev_config,
					      handler->subtype);
		return result;
	}
	if (result < 0)
		return result;

	if (strcmp(subtype, handler->subtype) != 0) {
		*ret_reason = g_strdup_printf("'%s' is a config string for the '%s' handler, "
					      "not for '%s'", dev_config, subtype,
					      handler->subtype);
		result = -EINVAL;
		goto out;
	}
	result = dev_config_check_transport(dev_config, ret_reason);
	if (result < 0)
		goto out;
	result = handler_require(handler, &reason);
	if (result < 0) {
		*ret_reason = g_strdup_printf("the %s handler is not available: %s",
					      handler->subtype, reason ? reason : strerror(-result));
		goto out;
	}
	*ret_config = config;
	config = NULL;
out:
	free(reason);
	free(subtype);
	free(config);
	return result;
}

int dbus_config_check_by_handler(const struct tcmu_handler *handler, const char *config,
				 char **ret_reason)
{
	char *reason = NULL;
	int result;

	*ret_reason = NULL;
	if (!handler->check_config)
		return 0;
	result = handler->check_config(config, &reason);
	if (result > 0)
		result = 0;
	if (result < 0)
		/* The handler's reason is malloc'd; ours are GLib's: hand back one kind. */
		*ret_reason = reason ? g_strdup(reason) :
			      g_strdup_printf("the %s handler refuses '%s': %s", handler->subtype,
					      config, strerror(-result));
	free(reason);
	return result;
}

/* D-Bus strings must be UTF-8; handler texts may quote file names that are not. */
static GVariant *variant_new_text(const char *text)
{
	GVariant *variant;
	char *valid;

	if (g_utf8_validate(text, -1, NULL))
		return g_variant_new_string(text);
	valid = g_utf8_make_valid(text, -1);
	variant = g_variant_new_string(valid);
	g_free(valid);
	return variant;
}

/* ---- one interface skeleton per handler ---- */

typedef struct {
	GDBusInterfaceSkeleton parent_instance;
	const struct tcmu_handler *handler;
} HandlerSkeleton;

typedef struct {
	GDBusInterfaceSkeletonClass parent_class;
} HandlerSkeletonClass;

G_DEFINE_TYPE(HandlerSkeleton, handler_skeleton, G_TYPE_DBUS_INTERFACE_SKELETON)

static const char *handler_config_description(const struct tcmu_handler *handler)
{
	return handler->config_description ? handler->config_description : "";
}

/* A method call whose caller is not known yet. */
struct pending_call {
	GDBusMethodInvocation *invocation;
	void (*run)(GDBusMethodInvocation *invocation, void *data);
	void *data;
};

void dbus_call_reply_status(GDBusMethodInvocation *invocation, int status, const char *reason)
{
	g_dbus_method_invocation_return_value(invocation,
		g_variant_new("(i@s)", status,
			      variant_new_text(reason ? reason : status ? strerror(-status) : "")));
	calls_in_flight--;
}

struct config_check {
	GDBusMethodInvocation *invocation;
	const struct tcmu_handler *handler;
	char *dev_config;
	char *config;			/* the handler's part */
	int result;
	char *reason;
};

static void config_check_free(gpointer data)
{
	struct config_check *check = data;

	g_free(check->dev_config);
	free(check->config);
	g_free(check->reason);
	g_free(check);
}

static void check_config_reply(GDBusMethodInvocation *invocation, const char *dev_config,
			       int result, const char *reason)
{
	if (result < 0)
		tcmu_info("D-Bus CheckConfig '%s': refused: %s", dev_config,
			  reason ? reason : strerror(-result));
	g_dbus_method_invocation_return_value(invocation,
		g_variant_new("(b@s)", result == 0,
			      variant_new_text(result == 0 ? ""
					       : reason ? reason : strerror(-result))));
	calls_in_flight--;
}

static void config_check_thread(GTask *task, gpointer source, gpointer task_data,
				GCancellable *cancellable)
{
	struct config_check *check = task_data;

	(void)source;
	(void)cancellable;
	check->result = dbus_config_check_by_handler(check->handler, check->config, &check->reason);
	g_task_return_boolean(task, TRUE);
}

static void config_check_done(GObject *source, GAsyncResult *result, gpointer unused)
{
	struct config_check *check = g_task_get_task_data(G_TASK(result));

	(void)source;
	(void)unused;
	check_config_reply(check->invocation, check->dev_config, check->result, check->reason);
}

static void check_config_run(GDBusMethodInvocation *invocation, void *data)
{
	GVariant *parameters = g_dbus_method_invocation_get_parameters(invocation);
	struct config_check *check;
	const char *dev_config;
	char *config, *reason;
	GTask *task;
	int result;

	g_variant_get(parameters, "(&s)", &dev_config);
	result = dbus_config_prepare(data, dev_config, &config, &reason);
	if (result < 0) {
		check_config_reply(invocation, dev_config, result, reason);
		g_free(reason);
		return;
	}
	check = g_new0(struct config_check, 1);
	check->invocation = invocation;
	check->handler = data;
	check->dev_config = g_strdup(dev_config);
	check->config = config;
	task = g_task_new(NULL, NULL, config_check_done, NULL);
	g_task_set_task_data(task, check, config_check_free);
	g_task_run_in_thread(task, config_check_thread);
	g_object_unref(task);
}

/* ---- caller check and dispatch ---- */

static void on_caller_uid(GObject *source, GAsyncResult *result, gpointer user_data)
{
	struct pending_call *call = user_data;
	const char *method = g_dbus_method_invocation_get_method_name(call->invocation);
	GError *error = NULL;
	GVariant *reply;
	guint32 uid;

	reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
	if (!reply) {
		tcmu_err("D-Bus %s: cannot tell who is calling: %s", method, error->message);
		g_dbus_method_invocation_return_error(call->invocation, G_DBUS_ERROR,
						      G_DBUS_ERROR_ACCESS_DENIED,
						      "cannot identify the caller: %s",
						      error->message);
		g_error_free(error);
		calls_in_flight--;
		goto out;
	}
	g_variant_get(reply, "(u)", &uid);
	g_variant_unref(reply);

	/* Our own uid may call too: it could take over the daemon anyway. */
	if (uid != 0 && uid != geteuid()) {
		tcmu_warn("D-Bus %s from uid %" PRIu32 " refused: only root may call it", method,
			  uid);
		g_dbus_method_invocation_return_dbus_error(call->invocation,
			"org.freedesktop.DBus.Error.AccessDenied",
			"only root may call " HANDLER_INTERFACE " methods");
		calls_in_flight--;
		goto out;
	}
	call->run(call->invocation, call->data);
out:
	g_free(call);
}

void dbus_call_as_root(GDBusMethodInvocation *invocation,
		       void (*run)(GDBusMethodInvocation *invocation, void *data), void *data)
{
	struct pending_call *call = g_new0(struct pending_call, 1);

	call->invocation = invocation;
	call->run = run;
	call->data = data;
	calls_in_flight++;
	g_dbus_connection_call(g_dbus_method_invocation_get_connection(invocation),
			       "org.freedesktop.DBus", "/org/freedesktop/DBus",
			       "org.freedesktop.DBus", "GetConnectionUnixUser",
			       g_variant_new("(s)", g_dbus_method_invocation_get_sender(invocation)),
			       G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
			       on_caller_uid, call);
}

static void handler_method_run(GDBusMethodInvocation *invocation, void *handler)
{
	if (strcmp(g_dbus_method_invocation_get_method_name(invocation), "CheckConfig") == 0)
		check_config_run(invocation, handler);
	else
		dbus_change_medium_run(invocation, handler);
}

static void handler_method_call(GDBusConnection *connection, const char *sender,
				const char *object_path, const char *interface_name,
				const char *method_name, GVariant *parameters,
				GDBusMethodInvocation *invocation, gpointer user_data)
{
	HandlerSkeleton *skeleton = user_data;

	(void)connection;
	(void)sender;
	(void)object_path;
	(void)interface_name;
	(void)method_name;
	(void)parameters;
	dbus_call_as_root(invocation, handler_method_run, (void *)skeleton->handler);
}

static GVariant *handler_get_property(GDBusConnection *connection, const char *sender,
				      const char *object_path, const char *interface_name,
				      const char *property_name, GError **error,
				      gpointer user_data)
{
	HandlerSkeleton *skeleton = user_data;

	(void)connection;
	(void)sender;
	(void)object_path;
	(void)interface_name;
	if (strcmp(property_name, "ConfigDesc") != 0) {
		g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY,
			    "no property %s", property_name);
		return NULL;
	}
	return variant_new_text(handler_config_description(skeleton->handler));
}

static const GDBusInterfaceVTable handler_vtable = {
	.method_call = handler_method_call,
	.get_property = handler_get_property,
};

static GDBusInterfaceInfo *handler_skeleton_get_info(GDBusInterfaceSkeleton *skeleton)
{
	(void)skeleton;
	return node_info->interfaces[0];
}

static GDBusInterfaceVTable *handler_skeleton_get_vtable(GDBusInterfaceSkeleton *skeleton)
{
	(void)skeleton;
	return (GDBusInterfaceVTable *)&handler_vtable;
}

static GVariant *handler_skeleton_get_properties(GDBusInterfaceSkeleton *interface)
{
	HandlerSkeleton *skeleton = (HandlerSkeleton *)interface;
	GVariantBuilder builder;

	g_variant_builder_init(&builder, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&builder, "{sv}", "ConfigDesc",
			      variant_new_text(handler_config_description(skeleton->handler)));
	return g_variant_builder_end(&builder);
}

/* Properties never change, so there is nothing to flush. */
static void handler_skeleton_flush(GDBusInterfaceSkeleton *skeleton)
{
	(void)skeleton;
}

static void handler_skeleton_class_init(HandlerSkeletonClass *klass)
{
	GDBusInterfaceSkeletonClass *skeleton_class = G_DBUS_INTERFACE_SKELETON_CLASS(klass);

	skeleton_class->get_info = handler_skeleton_get_info;
	skeleton_class->get_vtable = handler_skeleton_get_vtable;
	skeleton_class->get_properties = handler_skeleton_get_properties;
	skeleton_class->flush = handler_skeleton_flush;
}

static void handler_skeleton_init(HandlerSkeleton *skeleton)
{
	(void)skeleton;
}

/* ---- the bus name ---- */

static void on_bus_acquired(GDBusConnection *connection, const char *name, gpointer unused)
{
	(void)name;
	(void)unused;
	/* GLib's default would SIGTERM the daemon when the bus goes away. */
	g_dbus_connection_set_exit_on_close(connection, FALSE);
	g_set_object(&bus_connection, connection);
	g_dbus_object_manager_server_set_connection(object_manager, connection);
	dbus_status_register(connection);
}

static void on_name_acquired(GDBusConnection *connection, const char *name, gpointer unused)
{
	(void)connection;
	(void)unused;
	tcmu_info("D-Bus service %s ready on the system bus", name);
}

static void on_name_lost(GDBusConnection *connection, const char *name, gpointer unused)
{
	(void)unused;
	if (!connection) {
		if (!no_bus_warned)
			tcmu_warn("no system bus: D-Bus service %s not offered (targetcli will not "
				  "list user:* backstores); devices are served as usual", name);
		no_bus_warned = true;
		return;
	}
	tcmu_warn("cannot own %s on the system bus: is tcmu-runner.conf installed in "
		  "/etc/dbus-1/system.d/ and is no other service holding the name? Devices "
		  "are served as usual", name);
}

static int handler_objects_export(void)
{
	const struct tcmu_handler *handler;
	int exported = 0;

	for (size_t index = 0; (handler = handler_at(index)); index++) {
		char *path = g_strdup_printf(SERVICE_PATH "/%s", handler->subtype);
		GDBusObjectSkeleton *object;
		HandlerSkeleton *skeleton;

		if (!g_variant_is_object_path(path)) {
			tcmu_warn("handler '%s' not offered on D-Bus: its subtype is not a valid "
				  "object path element", handler->subtype);
			g_free(path);
			continue;
		}
		object = g_dbus_object_skeleton_new(path);
		skeleton = g_object_new(handler_skeleton_get_type(), NULL);
		skeleton->handler = handler;
		g_dbus_object_skeleton_add_interface(object, G_DBUS_INTERFACE_SKELETON(skeleton));
		g_dbus_object_manager_server_export(object_manager, object);
		g_object_unref(skeleton);
		g_object_unref(object);
		g_free(path);
		exported++;
	}
	return exported;
}

int dbus_start(void)
{
	GError *error = NULL;

	if (object_manager)
		return -EALREADY;
	node_info = g_dbus_node_info_new_for_xml(interface_xml, &error);
	if (!node_info) {
		tcmu_err("D-Bus interface description: %s", error->message);
		g_error_free(error);
		return -EINVAL;
	}
	object_manager = g_dbus_object_manager_server_new(SERVICE_PATH);
	handler_objects_export();
	no_bus_warned = false;
	owner_id = g_bus_own_name(G_BUS_TYPE_SYSTEM, SERVICE_NAME, G_BUS_NAME_OWNER_FLAGS_NONE,
				  on_bus_acquired, on_name_acquired, on_name_lost, NULL, NULL);
	return 0;
}

unsigned int dbus_stop(void)
{
	gint64 deadline = g_get_monotonic_time() + STOP_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;

	if (!object_manager)
		return 0;
	g_bus_unown_name(owner_id);
	owner_id = 0;
	/*
	 * Calls already taken still need the loop: a ChangeMedium write
	 * waits for the netlink answer that this thread gives.
	 */
	while (calls_in_flight > 0 && g_get_monotonic_time() < deadline) {
		if (!g_main_context_iteration(NULL, FALSE))
			g_usleep(10000);
	}
	if (calls_in_flight > 0)
		tcmu_err("D-Bus: %u method call(s) still running at exit", calls_in_flight);
	/* Replies are queued for GDBus's thread; send them before the process ends. */
	if (bus_connection)
		g_dbus_connection_flush_sync(bus_connection, NULL, NULL);
	dbus_status_unregister();
	g_clear_object(&bus_connection);
	g_dbus_object_manager_server_set_connection(object_manager, NULL);
	g_clear_object(&object_manager);
	g_clear_pointer(&node_info, g_dbus_node_info_unref);
	return calls_in_flight;
}
