/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dbus_fixture.c: what test_dbus.c's tests run against. A private
 * dbus-daemon (its policy by mode), the D-Bus service (dbus.c) in a child
 * process with the real alloc and file handlers and fake devices whose
 * configfs directories are plain directories, and the client calls a
 * targetcli would make.
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

#include "dbus_fixture.h"

enum test_mode test_mode;
char test_directory[] = "/tmp/tcmu-dbus-test-XXXXXX";
char bus_address[256];
static pid_t bus_pid = -1;
pid_t service_pid = -1;
char service_log[320];
static char alloc_directory[320];
char slow_dev_size[320];
GDBusConnection *test_connection;
const struct tcmu_handler *file_handler;
const struct tcmu_handler *alloc_handler;

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
	    asprintf(&dev->configfs_dir, "%s/user_%u/%s", test_directory, hba, name) < 0)
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

	snprintf(dev_config, sizeof(dev_config), "file/%s/f1.img", test_directory);
	fake_device_add("file", 1, "f1", dev_config, 16 * MIB, true);
	snprintf(dev_config, sizeof(dev_config), "file/%s/dup1.img", test_directory);
	fake_device_add("file", 1, "dup", dev_config, MIB, true);
	snprintf(dev_config, sizeof(dev_config), "file/%s/dup2.img", test_directory);
	fake_device_add("file", 2, "dup", dev_config, MIB, true);
	snprintf(dev_config, sizeof(dev_config), "file/%s/gone.img", test_directory);
	fake_device_add("file", 1, "gone", dev_config, MIB, false);
	fake_device_add("alloc", 3, "a1", "alloc/", MIB, true);
	/* A dev_size that blocks its writer until the test reads it, as the kernel does. */
	snprintf(dev_config, sizeof(dev_config), "file/%s/slow.img", test_directory);
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
		"  <listen>unix:path=%s/bus</listen>\n", test_directory);
	if (test_mode == MODE_OPEN) {
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

	snprintf(config_path, sizeof(config_path), "%s/bus.conf", test_directory);
	bus_config_write(config_path);
	argv[1] = g_strdup_printf("--config-file=%s", config_path);
	if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &output, &errors,
			  &status, NULL) || !g_spawn_check_wait_status(status, NULL)) {
		fprintf(stderr, "dbus-daemon did not start: %s\n", errors ? errors : "");
		return -1;
	}
	bus_pid = (pid_t)strtol(output, NULL, 10);
	snprintf(bus_address, sizeof(bus_address), "unix:path=%s/bus", test_directory);
	g_free(argv[1]);
	g_free(output);
	g_free(errors);
	return bus_pid > 0 ? 0 : -1;
}

static bool service_owns_name(void)
{
	GVariant *reply;
	gboolean owned = FALSE;

	reply = g_dbus_connection_call_sync(test_connection, "org.freedesktop.DBus",
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

int group_setup(void **state)
{
	GError *error = NULL;

	(void)state;
	if (!mkdtemp(test_directory) || chmod(test_directory, 0755) < 0)
		return -1;
	snprintf(service_log, sizeof(service_log), "%s/service.log", test_directory);
	snprintf(slow_dev_size, sizeof(slow_dev_size), "%s/user_1/slow/attrib/dev_size", test_directory);
	/* The alloc handler keeps its memory here, not in the host's /run. */
	snprintf(alloc_directory, sizeof(alloc_directory), "%s/alloc", test_directory);
	if (setenv("TCMU_ALLOC_DIRECTORY", alloc_directory, 1) < 0 ||
	    handler_load_file(HANDLER_FILE_PATH) < 0 || handler_load_file(HANDLER_ALLOC_PATH) < 0 ||
	    handler_load_file(HANDLER_CHECK_WAITS_PATH) < 0)
		return -1;
	file_handler = handler_find("file");
	alloc_handler = handler_find("alloc");

	if (test_mode == MODE_NOBUS)
		snprintf(bus_address, sizeof(bus_address), "unix:path=%s/no-bus-here", test_directory);
	else if (bus_start() < 0)
		return -1;

	/* Fork before this process starts GLib's threads. */
	service_pid = fork();
	if (service_pid < 0)
		return -1;
	if (service_pid == 0)
		service_run();
	if (test_mode == MODE_NOBUS)
		return 0;

	test_connection = g_dbus_connection_new_for_address_sync(bus_address,
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION, NULL, NULL, &error);
	if (!test_connection) {
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
int service_stop_wait(void)
{
	int status;

	if (service_pid <= 0)
		return -1;
	if (waitpid(service_pid, &status, 0) < 0)
		return -1;
	service_pid = -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int service_stop(void)
{
	if (service_pid <= 0)
		return -1;
	kill(service_pid, SIGTERM);
	return service_stop_wait();
}

int group_teardown(void **state)
{
	char *command;

	(void)state;
	if (service_pid > 0)
		service_stop();
	g_clear_object(&test_connection);
	if (bus_pid > 0)
		kill(bus_pid, SIGTERM);
	command = g_strdup_printf("rm -rf '%s'", test_directory);
	if (system(command) != 0)
		fprintf(stderr, "could not remove %s\n", test_directory);
	g_free(command);
	return 0;
}

/* ---- client helpers ---- */

GVariant *call(const char *subtype, const char *method, GVariant *parameters,
		      const char *reply_type, GError **error)
{
	char *path = g_strdup_printf("/org/kernel/TCMUService1/%s", subtype);
	GVariant *reply;

	reply = g_dbus_connection_call_sync(test_connection, SERVICE, path, SERVICE, method,
					    parameters, G_VARIANT_TYPE(reply_type),
					    G_DBUS_CALL_FLAGS_NONE, 10000, NULL, error);
	g_free(path);
	return reply;
}

bool check_config(const char *subtype, const char *config, char **ret_reason)
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

int change_medium(const char *subtype, const char *name, uint64_t size,
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

char *attribute_read(const char *hba_and_name, const char *attribute)
{
	char *path = g_strdup_printf("%s/%s/attrib/%s", test_directory, hba_and_name, attribute);
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
int gdbus_as_nobody(char **arguments, char **ret_output)
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
