/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The D-Bus service (dbus.c) against a private dbus-daemon: the service
 * runs in a child process, as in the daemon, with the real alloc and file
 * handlers and fake devices whose configfs directories are plain
 * directories; this process is the client, as targetcli would be.
 *
 * One mode per run (argv[1]):
 *   open    a bus that lets anyone call: the service's own caller check
 *           is what refuses other users.
 *   policy  a bus with the system bus's default policy plus the
 *           project's tcmu-runner.conf (needs root).
 *   nobus   no bus at all: one warning, and the service keeps running.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <gio/gio.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "tcmu_internal.h"

#define SERVICE "org.kernel.TCMUService1"
#define NOBODY_UID 65534
#define MIB (1024u * 1024u)

enum mode { MODE_OPEN, MODE_POLICY, MODE_NOBUS };

static enum mode mode;
static char directory[] = "/tmp/tcmu-dbus-test-XXXXXX";
static char bus_address[256];
static pid_t bus_pid = -1;
static pid_t service_pid = -1;
static char service_log[320];
static char alloc_directory[320];
static char slow_dev_size[320];
static GDBusConnection *connection;
static const struct tcmu_handler *file_handler;
static const struct tcmu_handler *alloc_handler;

/* ---- the service side (child process) ---- */

static void fake_device_add(const char *subtype, unsigned int hba, const char *name,
			    const char *dev_config, uint64_t size, bool with_configfs)
{
	struct tcmu_device *dev = calloc(1, sizeof(*dev));
	char *subtype_part, *config;

	if (!dev || dev_config_split(dev_config, &subtype_part, &config) < 0)
		abort();
	free(subtype_part);
	dev->name = strdup(name);
	dev->subtype = strdup(subtype);
	dev->config = config;
	dev->dev_config = strdup(dev_config);
	dev->hba_number = hba;
	dev->handler = handler_find(subtype);
	dev->block_size = 512;
	dev->size = size;
	if (asprintf(&dev->backstore, "user_%u/%s", hba, name) < 0 ||
	    asprintf(&dev->log_prefix, "%s/%s", subtype, name) < 0 ||
	    asprintf(&dev->configfs_dir, "%s/user_%u/%s", directory, hba, name) < 0)
		abort();
	if (with_configfs) {
		char path[512];

		snprintf(path, sizeof(path), "%s/attrib", dev->configfs_dir);
		if (g_mkdir_with_parents(path, 0755) < 0)
			abort();
		snprintf(path, sizeof(path), "%s/attrib/dev_size", dev->configfs_dir);
		g_file_set_contents(path, "", 0, NULL);
		snprintf(path, sizeof(path), "%s/attrib/dev_config", dev->configfs_dir);
		g_file_set_contents(path, "", 0, NULL);
	}
	device_list_add(dev);
}

static gboolean on_terminate(gpointer loop)
{
	g_main_loop_quit(loop);
	return G_SOURCE_REMOVE;
}

static void service_run(void)
{
	char dev_config[256];
	GMainLoop *loop;
	int log_fd;

	log_fd = open(service_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (log_fd < 0 || dup2(log_fd, STDERR_FILENO) < 0)
		_exit(3);
	setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_address, 1);

	snprintf(dev_config, sizeof(dev_config), "file/%s/f1.img", directory);
	fake_device_add("file", 1, "f1", dev_config, 16 * MIB, true);
	snprintf(dev_config, sizeof(dev_config), "file/%s/dup1.img", directory);
	fake_device_add("file", 1, "dup", dev_config, MIB, true);
	snprintf(dev_config, sizeof(dev_config), "file/%s/dup2.img", directory);
	fake_device_add("file", 2, "dup", dev_config, MIB, true);
	snprintf(dev_config, sizeof(dev_config), "file/%s/gone.img", directory);
	fake_device_add("file", 1, "gone", dev_config, MIB, false);
	fake_device_add("alloc", 3, "a1", "alloc/", MIB, true);
	/* A dev_size that blocks its writer until the test reads it, as the kernel does. */
	snprintf(dev_config, sizeof(dev_config), "file/%s/slow.img", directory);
	fake_device_add("file", 1, "slow", dev_config, MIB, true);
	if (unlink(slow_dev_size) < 0 || mkfifo(slow_dev_size, 0644) < 0)
		_exit(5);

	loop = g_main_loop_new(NULL, FALSE);
	g_unix_signal_add(SIGTERM, on_terminate, loop);
	if (dbus_start() < 0)
		_exit(4);
	g_main_loop_run(loop);
	dbus_stop();
	_exit(0);
}

/* ---- the bus ---- */

static void bus_config_write(const char *path)
{
	GString *text = g_string_new(NULL);

	g_string_append_printf(text,
		"<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
		" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
		"<busconfig>\n"
		"  <type>system</type>\n"
		"  <auth>EXTERNAL</auth>\n"
		"  <listen>unix:path=%s/bus</listen>\n", directory);
	if (mode == MODE_OPEN) {
		g_string_append(text,
			"  <policy context=\"default\">\n"
			"    <allow user=\"*\"/>\n"
			"    <allow own=\"*\"/>\n"
			"    <allow send_destination=\"*\"/>\n"
			"    <allow receive_sender=\"*\"/>\n"
			"  </policy>\n");
	} else {
		/* What Debian's system.conf denies and allows by default. */
		g_string_append_printf(text,
			"  <policy context=\"default\">\n"
			"    <allow user=\"*\"/>\n"
			"    <deny own=\"*\"/>\n"
			"    <deny send_type=\"method_call\"/>\n"
			"    <allow send_type=\"signal\"/>\n"
			"    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
			"    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
			"    <allow receive_type=\"method_call\"/>\n"
			"    <allow receive_type=\"method_return\"/>\n"
			"    <allow receive_type=\"error\"/>\n"
			"    <allow receive_type=\"signal\"/>\n"
			"    <allow send_destination=\"org.freedesktop.DBus\"\n"
			"           send_interface=\"org.freedesktop.DBus\"/>\n"
			"    <allow send_destination=\"org.freedesktop.DBus\"\n"
			"           send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
			"    <allow send_destination=\"org.freedesktop.DBus\"\n"
			"           send_interface=\"org.freedesktop.DBus.Properties\"/>\n"
			"  </policy>\n"
			"  <include>%s</include>\n", TCMU_POLICY_FILE);
	}
	g_string_append(text, "</busconfig>\n");
	if (!g_file_set_contents(path, text->str, -1, NULL))
		abort();
	g_string_free(text, TRUE);
}

static int bus_start(void)
{
	char config_path[320], *output = NULL, *errors = NULL;
	char *argv[] = { "dbus-daemon", NULL, "--fork", "--print-pid=1", NULL };
	int status;

	snprintf(config_path, sizeof(config_path), "%s/bus.conf", directory);
	bus_config_write(config_path);
	argv[1] = g_strdup_printf("--config-file=%s", config_path);
	if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &output, &errors,
			  &status, NULL) || !g_spawn_check_wait_status(status, NULL)) {
		fprintf(stderr, "dbus-daemon did not start: %s\n", errors ? errors : "");
		return -1;
	}
	bus_pid = (pid_t)strtol(output, NULL, 10);
	snprintf(bus_address, sizeof(bus_address), "unix:path=%s/bus", directory);
	g_free(argv[1]);
	g_free(output);
	g_free(errors);
	return bus_pid > 0 ? 0 : -1;
}

static bool service_owns_name(void)
{
	GVariant *reply;
	gboolean owned = FALSE;

	reply = g_dbus_connection_call_sync(connection, "org.freedesktop.DBus",
					    "/org/freedesktop/DBus", "org.freedesktop.DBus",
					    "NameHasOwner", g_variant_new("(s)", SERVICE),
					    G_VARIANT_TYPE("(b)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
					    NULL);
	if (reply) {
		g_variant_get(reply, "(b)", &owned);
		g_variant_unref(reply);
	}
	return owned;
}

static int group_setup(void **state)
{
	GError *error = NULL;

	(void)state;
	if (!mkdtemp(directory) || chmod(directory, 0755) < 0)
		return -1;
	snprintf(service_log, sizeof(service_log), "%s/service.log", directory);
	snprintf(slow_dev_size, sizeof(slow_dev_size), "%s/user_1/slow/attrib/dev_size", directory);
	/* The alloc handler keeps its memory here, not in the host's /run. */
	snprintf(alloc_directory, sizeof(alloc_directory), "%s/alloc", directory);
	if (setenv("TCMU_ALLOC_DIRECTORY", alloc_directory, 1) < 0 ||
	    handler_load_file(HANDLER_FILE_PATH) < 0 || handler_load_file(HANDLER_ALLOC_PATH) < 0)
		return -1;
	file_handler = handler_find("file");
	alloc_handler = handler_find("alloc");

	if (mode == MODE_NOBUS)
		snprintf(bus_address, sizeof(bus_address), "unix:path=%s/no-bus-here", directory);
	else if (bus_start() < 0)
		return -1;

	/* Fork before this process starts GLib's threads. */
	service_pid = fork();
	if (service_pid < 0)
		return -1;
	if (service_pid == 0)
		service_run();
	if (mode == MODE_NOBUS)
		return 0;

	connection = g_dbus_connection_new_for_address_sync(bus_address,
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION, NULL, NULL, &error);
	if (!connection) {
		fprintf(stderr, "connect to the test bus: %s\n", error->message);
		return -1;
	}
	for (int tries = 0; !service_owns_name(); tries++) {
		if (tries == 500) {
			fprintf(stderr, "the service did not take its name\n");
			return -1;
		}
		g_usleep(20000);
	}
	return 0;
}

/* Waits for the service to exit; its exit status, or 128 + signal. */
static int service_stop_wait(void)
{
	int status;

	if (service_pid <= 0)
		return -1;
	if (waitpid(service_pid, &status, 0) < 0)
		return -1;
	service_pid = -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int service_stop(void)
{
	if (service_pid <= 0)
		return -1;
	kill(service_pid, SIGTERM);
	return service_stop_wait();
}

static int group_teardown(void **state)
{
	char *command;

	(void)state;
	if (service_pid > 0)
		service_stop();
	g_clear_object(&connection);
	if (bus_pid > 0)
		kill(bus_pid, SIGTERM);
	command = g_strdup_printf("rm -rf '%s'", directory);
	if (system(command) != 0)
		fprintf(stderr, "could not remove %s\n", directory);
	g_free(command);
	return 0;
}

/* ---- client helpers ---- */

static GVariant *call(const char *subtype, const char *method, GVariant *parameters,
		      const char *reply_type, GError **error)
{
	char *path = g_strdup_printf("/org/kernel/TCMUService1/%s", subtype);
	GVariant *reply;

	reply = g_dbus_connection_call_sync(connection, SERVICE, path, SERVICE, method,
					    parameters, G_VARIANT_TYPE(reply_type),
					    G_DBUS_CALL_FLAGS_NONE, 10000, NULL, error);
	g_free(path);
	return reply;
}

static bool check_config(const char *subtype, const char *config, char **ret_reason)
{
	GError *error = NULL;
	GVariant *reply;
	gboolean valid;

	reply = call(subtype, "CheckConfig", g_variant_new("(s)", config), "(bs)", &error);
	if (!reply)
		fail_msg("CheckConfig '%s': %s", config, error->message);
	g_variant_get(reply, "(bs)", &valid, ret_reason);
	g_variant_unref(reply);
	return valid;
}

static int change_medium(const char *subtype, const char *name, uint64_t size,
			 const char *config, char **ret_reason)
{
	GError *error = NULL;
	GVariant *reply;
	gint32 status;

	reply = call(subtype, "ChangeMedium", g_variant_new("(sts)", name, size, config),
		     "(is)", &error);
	if (!reply)
		fail_msg("ChangeMedium '%s': %s", name, error->message);
	g_variant_get(reply, "(is)", &status, ret_reason);
	g_variant_unref(reply);
	return status;
}

static char *attribute_read(const char *hba_and_name, const char *attribute)
{
	char *path = g_strdup_printf("%s/%s/attrib/%s", directory, hba_and_name, attribute);
	char *contents = NULL;

	assert_true(g_file_get_contents(path, &contents, NULL, NULL));
	g_free(path);
	return contents;
}

/*
 * Runs gdbus as the nobody user, so that the bus and the service see
 * another uid. exec follows fork directly: this process has threads.
 * Returns the exit status; the output (stdout and stderr) in *ret_output.
 */
static int gdbus_as_nobody(char **arguments, char **ret_output)
{
	char *gdbus = g_find_program_in_path("gdbus");
	char *environment_entry = g_strdup_printf("DBUS_SYSTEM_BUS_ADDRESS=%s", bus_address);
	char *environment[] = { environment_entry, NULL };
	GString *output = g_string_new(NULL);
	char buffer[4096];
	int pipe_fds[2], status;
	ssize_t length;
	pid_t pid;

	assert_non_null(gdbus);
	arguments[0] = gdbus;
	assert_int_equal(pipe(pipe_fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		gid_t nobody_gid = NOBODY_UID;

		dup2(pipe_fds[1], STDOUT_FILENO);
		dup2(pipe_fds[1], STDERR_FILENO);
		if (setgroups(1, &nobody_gid) < 0 ||
		    setresgid(nobody_gid, nobody_gid, nobody_gid) < 0 ||
		    setresuid(NOBODY_UID, NOBODY_UID, NOBODY_UID) < 0)
			_exit(120);
		execve(gdbus, arguments, environment);
		_exit(121);
	}
	close(pipe_fds[1]);
	while ((length = read(pipe_fds[0], buffer, sizeof(buffer))) > 0)
		g_string_append_len(output, buffer, length);
	close(pipe_fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	g_free(gdbus);
	g_free(environment_entry);
	*ret_output = g_string_free(output, FALSE);
	assert_true(WIFEXITED(status));
	assert_int_not_equal(WEXITSTATUS(status), 120);
	assert_int_not_equal(WEXITSTATUS(status), 121);
	return WEXITSTATUS(status);
}

/* ---- tests ---- */

/* targetcli's listing: GetManagedObjects, one object per handler with ConfigDesc. */
static void test_managed_objects_list_handlers(void **state)
{
	GVariant *reply, *interfaces, *properties;
	GVariantIter *objects;
	const char *path;
	bool seen_file = false, seen_alloc = false;
	GError *error = NULL;

	(void)state;
	reply = g_dbus_connection_call_sync(connection, SERVICE, "/org/kernel/TCMUService1",
					    "org.freedesktop.DBus.ObjectManager",
					    "GetManagedObjects", NULL,
					    G_VARIANT_TYPE("(a{oa{sa{sv}}})"),
					    G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
	if (!reply)
		fail_msg("GetManagedObjects: %s", error->message);
	g_variant_get(reply, "(a{oa{sa{sv}}})", &objects);
	while (g_variant_iter_next(objects, "{&o@a{sa{sv}}}", &path, &interfaces)) {
		const struct tcmu_handler *handler = NULL;
		const char *description;

		if (strcmp(path, "/org/kernel/TCMUService1/file") == 0) {
			handler = file_handler;
			seen_file = true;
		} else if (strcmp(path, "/org/kernel/TCMUService1/alloc") == 0) {
			handler = alloc_handler;
			seen_alloc = true;
		} else {
			fail_msg("unexpected object %s", path);
		}
		properties = g_variant_lookup_value(interfaces, SERVICE, G_VARIANT_TYPE("a{sv}"));
		assert_non_null(properties);
		assert_true(g_variant_lookup(properties, "ConfigDesc", "&s", &description));
		assert_string_equal(description, handler->config_description);
		g_variant_unref(properties);
		g_variant_unref(interfaces);
	}
	g_variant_iter_free(objects);
	g_variant_unref(reply);
	assert_true(seen_file);
	assert_true(seen_alloc);
}

static void test_config_desc_property(void **state)
{
	GVariant *reply, *value;
	GError *error = NULL;

	(void)state;
	reply = g_dbus_connection_call_sync(connection, SERVICE, "/org/kernel/TCMUService1/file",
					    "org.freedesktop.DBus.Properties", "Get",
					    g_variant_new("(ss)", SERVICE, "ConfigDesc"),
					    G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, 10000,
					    NULL, &error);
	if (!reply)
		fail_msg("Get ConfigDesc: %s", error->message);
	g_variant_get(reply, "(v)", &value);
	assert_string_equal(g_variant_get_string(value, NULL), file_handler->config_description);
	g_variant_unref(value);
	g_variant_unref(reply);
}

static void test_check_config_accepts_usable_path(void **state)
{
	char *config = g_strdup_printf("file/%s/new.img", directory);
	char *reason;

	(void)state;
	assert_true(check_config("file", config, &reason));
	assert_string_equal(reason, "");
	g_free(reason);
	/* The ";option=value;" prefix of the targetcli world is not the handler's business. */
	g_free(config);
	config = g_strdup_printf("file/;cmd_time_out=10;%s/new.img", directory);
	assert_true(check_config("file", config, &reason));
	g_free(reason);
	g_free(config);
	assert_true(check_config("alloc", "alloc/", &reason));
	g_free(reason);
}

/* A refusal carries the handler's own reason, as targetcli prints it. */
static void test_check_config_gives_handler_reason(void **state)
{
	char *handler_reason = NULL, *reason;

	(void)state;
	assert_true(file_handler->check_config("/nonexistent/dir/x.img", &handler_reason) < 0);
	assert_non_null(handler_reason);
	assert_false(check_config("file", "file//nonexistent/dir/x.img", &reason));
	assert_string_equal(reason, handler_reason);
	free(handler_reason);
	g_free(reason);

	handler_reason = NULL;
	assert_true(alloc_handler->check_config("size=1G", &handler_reason) < 0);
	assert_false(check_config("alloc", "alloc/size=1G", &reason));
	assert_string_equal(reason, handler_reason);
	free(handler_reason);
	g_free(reason);
}

static void test_check_config_refuses_other_subtype_and_bad_form(void **state)
{
	char *reason;

	(void)state;
	assert_false(check_config("file", "alloc/", &reason));
	assert_non_null(strstr(reason, "alloc"));
	g_free(reason);
	assert_false(check_config("file", "no-slash-at-all", &reason));
	assert_true(reason[0] != '\0');
	g_free(reason);
	assert_false(check_config("file", "", &reason));
	assert_true(reason[0] != '\0');
	g_free(reason);
}

/* What configfs or rtslib would cut or split must not pass as checked. */
static void test_check_config_refuses_what_configfs_would_mangle(void **state)
{
	char long_config[400], *reason, *config;

	(void)state;
	config = g_strdup_printf("file/%s/a,b.img", directory);
	assert_false(check_config("file", config, &reason));
	assert_non_null(strstr(reason, "','"));
	g_free(reason);
	g_free(config);

	config = g_strdup_printf("file/%s/a b.img", directory);
	assert_false(check_config("file", config, &reason));
	g_free(reason);
	g_free(config);

	config = g_strdup_printf("file/%s/a\nb.img", directory);
	assert_false(check_config("file", config, &reason));
	g_free(reason);
	g_free(config);

	snprintf(long_config, sizeof(long_config), "file/%s/", directory);
	while (strlen(long_config) < 256)
		strcat(long_config, "x");
	assert_false(check_config("file", long_config, &reason));
	assert_non_null(strstr(reason, "255"));
	g_free(reason);
	/* 255 bytes is what the kernel keeps: accepted. */
	long_config[255] = '\0';
	assert_true(check_config("file", long_config, &reason));
	g_free(reason);
}

static void test_change_medium_writes_new_size_to_configfs(void **state)
{
	char *config = g_strdup_printf("file/%s/f1.img", directory);
	char *reason, *size, *dev_config;

	(void)state;
	assert_int_equal(change_medium("file", "f1", 32 * MIB, config, &reason), 0);
	assert_string_equal(reason, "");
	size = attribute_read("user_1/f1", "dev_size");
	assert_string_equal(size, "33554432");
	/* Same config: the kernel is not asked to change it. */
	dev_config = attribute_read("user_1/f1", "dev_config");
	assert_string_equal(dev_config, "");
	g_free(size);
	g_free(dev_config);
	g_free(reason);
	g_free(config);
}

static void test_change_medium_writes_new_config_to_configfs(void **state)
{
	char *config = g_strdup_printf("file/%s/other.img", directory);
	char *reason, *dev_config, *size;

	(void)state;
	/* user_N/name names the device too; the size stays 1 MiB. */
	assert_int_equal(change_medium("file", "user_2/dup", MIB, config, &reason), 0);
	dev_config = attribute_read("user_2/dup", "dev_config");
	assert_string_equal(dev_config, config);
	size = attribute_read("user_2/dup", "dev_size");
	assert_string_equal(size, "");
	g_free(dev_config);
	g_free(size);
	g_free(reason);
	g_free(config);
}

static void test_change_medium_refusals(void **state)
{
	char *config = g_strdup_printf("file/%s/f1.img", directory);
	char *reason, *dev_config;

	(void)state;
	assert_int_equal(change_medium("file", "nosuch", MIB, config, &reason), -ENODEV);
	assert_non_null(strstr(reason, "nosuch"));
	g_free(reason);

	/* Two devices called "dup": the caller must say which. */
	assert_int_equal(change_medium("file", "dup", 2 * MIB, config, &reason), -EEXIST);
	assert_non_null(strstr(reason, "user_1/dup"));
	g_free(reason);

	assert_int_equal(change_medium("file", "f1", 1000, config, &reason), -EINVAL);
	g_free(reason);
	assert_int_equal(change_medium("file", "f1", 0, config, &reason), -EINVAL);
	g_free(reason);

	/* alloc's object does not change file devices. */
	assert_int_equal(change_medium("alloc", "f1", 64 * MIB, "alloc/", &reason), -EINVAL);
	g_free(reason);

	/* A new config the handler refuses: its reason, and nothing written. */
	assert_true(change_medium("file", "user_1/dup", MIB, "file//nonexistent/dir/x.img",
				  &reason) < 0);
	assert_non_null(strstr(reason, "nonexistent"));
	g_free(reason);
	dev_config = attribute_read("user_1/dup", "dev_config");
	assert_string_equal(dev_config, "");
	g_free(dev_config);
	g_free(config);
}

/* The kernel refusing the write (here: no such attribute) is reported with the attribute. */
static void test_change_medium_reports_configfs_failure(void **state)
{
	char *config = g_strdup_printf("file/%s/gone.img", directory);
	char *reason;

	(void)state;
	assert_int_equal(change_medium("file", "gone", 2 * MIB, config, &reason), -ENOENT);
	assert_non_null(strstr(reason, "dev_size"));
	g_free(reason);
	g_free(config);
}

static void test_unchanged_medium_is_accepted_without_writes(void **state)
{
	char *reason, *size;

	(void)state;
	assert_int_equal(change_medium("alloc", "a1", MIB, "alloc/", &reason), 0);
	size = attribute_read("user_3/a1", "dev_size");
	assert_string_equal(size, "");
	g_free(size);
	g_free(reason);
}

/* Anyone may look; only root (or the daemon's own user) may call. */
static void test_other_users_may_introspect_but_not_call(void **state)
{
	char *introspect[] = { NULL, "introspect", "--system", "--dest", SERVICE,
			       "--object-path", "/org/kernel/TCMUService1/file", NULL };
	char *get_property[] = { NULL, "call", "--system", "--dest", SERVICE,
				 "--object-path", "/org/kernel/TCMUService1/file", "--method",
				 "org.freedesktop.DBus.Properties.Get", SERVICE, "ConfigDesc",
				 NULL };
	char *list[] = { NULL, "call", "--system", "--dest", SERVICE, "--object-path",
			 "/org/kernel/TCMUService1", "--method",
			 "org.freedesktop.DBus.ObjectManager.GetManagedObjects", NULL };
	char *check[] = { NULL, "call", "--system", "--dest", SERVICE, "--object-path",
			  "/org/kernel/TCMUService1/file", "--method", SERVICE ".CheckConfig",
			  "file//tmp/x.img", NULL };
	char *change[] = { NULL, "call", "--system", "--dest", SERVICE, "--object-path",
			   "/org/kernel/TCMUService1/file", "--method", SERVICE ".ChangeMedium",
			   "f1", "67108864", "file//tmp/x.img", NULL };
	char *output, *size;

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(gdbus_as_nobody(introspect, &output), 0);
	assert_non_null(strstr(output, "CheckConfig"));
	assert_non_null(strstr(output, "ConfigDesc"));
	g_free(output);
	assert_int_equal(gdbus_as_nobody(get_property, &output), 0);
	assert_non_null(strstr(output, "The path of the file"));
	g_free(output);
	assert_int_equal(gdbus_as_nobody(list, &output), 0);
	assert_non_null(strstr(output, "/org/kernel/TCMUService1/alloc"));
	g_free(output);

	assert_int_not_equal(gdbus_as_nobody(check, &output), 0);
	assert_non_null(strstr(output, "AccessDenied"));
	g_free(output);
	assert_int_not_equal(gdbus_as_nobody(change, &output), 0);
	assert_non_null(strstr(output, "AccessDenied"));
	g_free(output);
	size = attribute_read("user_1/f1", "dev_size");
	assert_string_not_equal(size, "67108864");
	g_free(size);
}

struct async_reply {
	bool done;
	gint32 status;
};

static void on_change_medium_reply(GObject *source, GAsyncResult *result, gpointer user_data)
{
	struct async_reply *reply = user_data;
	GError *error = NULL;
	GVariant *value = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);

	if (!value) {
		print_error("ChangeMedium: %s\n", error->message);
		g_error_free(error);
	}
	reply->status = value ? 0 : INT32_MIN;
	if (value) {
		g_variant_get(value, "(is)", &reply->status, NULL);
		g_variant_unref(value);
	}
	reply->done = true;
}

static bool service_log_has(const char *text)
{
	char *log = NULL;
	bool found;

	g_file_get_contents(service_log, &log, NULL, NULL);
	found = log && strstr(log, text);
	g_free(log);
	return found;
}

/*
 * A stop request while a ChangeMedium write waits for the kernel: the
 * service keeps its loop running (in the daemon, the netlink answer the
 * kernel waits for comes from it), answers the call once the write is
 * through, then exits cleanly.
 */
static void test_stop_waits_for_change_in_flight(void **state)
{
	char *config = g_strdup_printf("file/%s/slow.img", directory);
	struct async_reply reply = { 0 };
	char written[64] = "";
	ssize_t length;
	int status, fd;

	(void)state;
	g_dbus_connection_call(connection, SERVICE, "/org/kernel/TCMUService1/file", SERVICE,
			       "ChangeMedium", g_variant_new("(sts)", "slow", (guint64)2 * MIB, config),
			       G_VARIANT_TYPE("(is)"), G_DBUS_CALL_FLAGS_NONE, 30000, NULL,
			       on_change_medium_reply, &reply);
	for (int tries = 0; !service_log_has("ChangeMedium file/slow: size"); tries++) {
		assert_true(tries < 500);
		g_main_context_iteration(NULL, FALSE);
		g_usleep(10000);
	}
	assert_int_equal(kill(service_pid, SIGTERM), 0);
	g_usleep(300000);
	assert_int_equal(waitpid(service_pid, &status, WNOHANG), 0);
	g_main_context_iteration(NULL, FALSE);
	assert_false(reply.done);

	fd = open(slow_dev_size, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	length = read(fd, written, sizeof(written) - 1);
	close(fd);
	assert_true(length > 0);
	assert_string_equal(written, "2097152");
	for (int tries = 0; !reply.done; tries++) {
		assert_true(tries < 1000);
		g_main_context_iteration(NULL, FALSE);
		g_usleep(10000);
	}
	assert_int_equal(reply.status, 0);
	assert_int_equal(service_stop_wait(), 0);
	g_free(config);
}

/* Without a bus: one warning, and the daemon's loop goes on until it is stopped. */
static void test_no_bus_warns_once_and_keeps_running(void **state)
{
	char *log = NULL;
	int warnings = 0;

	(void)state;
	for (int tries = 0; tries < 250; tries++) {
		g_free(log);
		log = NULL;
		g_file_get_contents(service_log, &log, NULL, NULL);
		if (log && strstr(log, "no system bus"))
			break;
		g_usleep(20000);
	}
	assert_non_null(log);
	/* Give a second warning the chance to appear. */
	g_usleep(300000);
	g_free(log);
	assert_true(g_file_get_contents(service_log, &log, NULL, NULL));
	for (const char *at = log; (at = strstr(at, "no system bus")); at++)
		warnings++;
	assert_int_equal(warnings, 1);
	g_free(log);
	assert_int_equal(service_stop(), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest bus_tests[] = {
		cmocka_unit_test(test_managed_objects_list_handlers),
		cmocka_unit_test(test_config_desc_property),
		cmocka_unit_test(test_check_config_accepts_usable_path),
		cmocka_unit_test(test_check_config_gives_handler_reason),
		cmocka_unit_test(test_check_config_refuses_other_subtype_and_bad_form),
		cmocka_unit_test(test_check_config_refuses_what_configfs_would_mangle),
		cmocka_unit_test(test_change_medium_writes_new_size_to_configfs),
		cmocka_unit_test(test_change_medium_writes_new_config_to_configfs),
		cmocka_unit_test(test_change_medium_refusals),
		cmocka_unit_test(test_change_medium_reports_configfs_failure),
		cmocka_unit_test(test_unchanged_medium_is_accepted_without_writes),
		cmocka_unit_test(test_other_users_may_introspect_but_not_call),
		cmocka_unit_test(test_stop_waits_for_change_in_flight),
	};
	const struct CMUnitTest no_bus_tests[] = {
		cmocka_unit_test(test_no_bus_warns_once_and_keeps_running),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s open|policy|nobus\n", argv[0]);
		return 2;
	}
	if (strcmp(argv[1], "nobus") == 0) {
		mode = MODE_NOBUS;
		return cmocka_run_group_tests_name("dbus without a bus", no_bus_tests,
						   group_setup, group_teardown);
	}
	if (strcmp(argv[1], "policy") == 0) {
		/* Exit status 77: skipped, for ctest's SKIP_RETURN_CODE. */
		if (geteuid() != 0) {
			fprintf(stderr, "the policy allows only root to own the name: skipped\n");
			return 77;
		}
		if (access(TCMU_POLICY_FILE, R_OK) < 0) {
			fprintf(stderr, "%s: %m: skipped\n", TCMU_POLICY_FILE);
			return 77;
		}
		mode = MODE_POLICY;
		return cmocka_run_group_tests_name("dbus behind tcmu-runner.conf", bus_tests,
						   group_setup, group_teardown);
	}
	mode = MODE_OPEN;
	return cmocka_run_group_tests_name("dbus on an open bus", bus_tests, group_setup,
					   group_teardown);
}
