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

#include "dbus_fixture.h"

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
	reply = g_dbus_connection_call_sync(test_connection, SERVICE, "/org/kernel/TCMUService1",
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
		} else if (strcmp(path, "/org/kernel/TCMUService1/checkwaits") == 0) {
			handler = handler_find("checkwaits");
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
	reply = g_dbus_connection_call_sync(test_connection, SERVICE, "/org/kernel/TCMUService1/file",
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
	char *config = g_strdup_printf("file/%s/new.img", test_directory);
	char *reason;

	(void)state;
	assert_true(check_config("file", config, &reason));
	assert_string_equal(reason, "");
	g_free(reason);
	/* The ";option=value;" prefix of the targetcli world is not the handler's business. */
	g_free(config);
	config = g_strdup_printf("file/;cmd_time_out=10;%s/new.img", test_directory);
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
	config = g_strdup_printf("file/%s/a,b.img", test_directory);
	assert_false(check_config("file", config, &reason));
	assert_non_null(strstr(reason, "','"));
	g_free(reason);
	g_free(config);

	config = g_strdup_printf("file/%s/a b.img", test_directory);
	assert_false(check_config("file", config, &reason));
	g_free(reason);
	g_free(config);

	config = g_strdup_printf("file/%s/a\nb.img", test_directory);
	assert_false(check_config("file", config, &reason));
	g_free(reason);
	g_free(config);

	snprintf(long_config, sizeof(long_config), "file/%s/", test_directory);
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
	char *config = g_strdup_printf("file/%s/f1.img", test_directory);
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
	char *config = g_strdup_printf("file/%s/other.img", test_directory);
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
	char *config = g_strdup_printf("file/%s/f1.img", test_directory);
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
	char *config = g_strdup_printf("file/%s/gone.img", test_directory);
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

static void on_check_config_reply(GObject *source, GAsyncResult *result, gpointer user_data)
{
	struct async_reply *reply = user_data;
	GError *error = NULL;
	GVariant *value = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
	gboolean valid = FALSE;

	if (!value) {
		print_error("CheckConfig: %s\n", error->message);
		g_error_free(error);
	} else {
		g_variant_get(value, "(b&s)", &valid, NULL);
		g_variant_unref(value);
	}
	reply->status = valid;
	reply->done = true;
}

/*
 * A handler's check that waits (for a cluster, a server; here: for the
 * writer of a FIFO) holds up neither other calls nor, in the daemon, the
 * netlink events the same loop answers; its answer comes when it ends.
 */
static void test_waiting_check_leaves_the_loop_free(void **state)
{
	char *fifo = g_strdup_printf("%s/check.fifo", test_directory);
	char *config = g_strdup_printf("checkwaits/%s", fifo);
	struct async_reply waiting = { 0 };
	GError *error = NULL;
	GVariant *other;
	int fd;

	(void)state;
	assert_int_equal(mkfifo(fifo, 0600), 0);
	g_dbus_connection_call(test_connection, SERVICE, "/org/kernel/TCMUService1/checkwaits",
			       SERVICE, "CheckConfig", g_variant_new("(s)", config),
			       G_VARIANT_TYPE("(bs)"), G_DBUS_CALL_FLAGS_NONE, 30000, NULL,
			       on_check_config_reply, &waiting);
	/* The bus delivers in order: this call arrives while the first one waits. */
	other = call("alloc", "CheckConfig", g_variant_new("(s)", "alloc/"), "(bs)", &error);
	g_main_context_iteration(NULL, FALSE);
	assert_false(waiting.done);

	/* Only now does the check's open() of the FIFO return. */
	fd = open(fifo, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	close(fd);
	for (int tries = 0; !waiting.done; tries++) {
		assert_true(tries < 1000);
		g_main_context_iteration(NULL, FALSE);
		g_usleep(10000);
	}
	if (!other)
		fail_msg("CheckConfig of alloc while another check waited: %s", error->message);
	g_variant_unref(other);
	assert_int_equal(waiting.status, TRUE);
	unlink(fifo);
	g_free(config);
	g_free(fifo);
}

/*
 * A stop request while a ChangeMedium write waits for the kernel: the
 * service keeps its loop running (in the daemon, the netlink answer the
 * kernel waits for comes from it), answers the call once the write is
 * through, then exits cleanly.
 */
static void test_stop_waits_for_change_in_flight(void **state)
{
	char *config = g_strdup_printf("file/%s/slow.img", test_directory);
	struct async_reply reply = { 0 };
	char written[64] = "";
	ssize_t length;
	int status, fd;

	(void)state;
	g_dbus_connection_call(test_connection, SERVICE, "/org/kernel/TCMUService1/file", SERVICE,
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
		cmocka_unit_test(test_waiting_check_leaves_the_loop_free),
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
		test_mode = MODE_NOBUS;
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
		test_mode = MODE_POLICY;
		return cmocka_run_group_tests_name("dbus behind tcmu-runner.conf", bus_tests,
						   group_setup, group_teardown);
	}
	test_mode = MODE_OPEN;
	return cmocka_run_group_tests_name("dbus on an open bus", bus_tests, group_setup,
					   group_teardown);
}
