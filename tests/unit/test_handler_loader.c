/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_handler_loader.c: the loader's verdict on handlers that keep or
 * break the contract of libtcmu.h. Each TEST_MODULE_* path is a build of
 * loader_test_handler.c (see tests/unit/handler_loader_netlink.cmake).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tcmu_internal.h"

static char events_path[] = "/tmp/test_handler_loader_events_XXXXXX";

/* What load()/unload() of the test modules recorded since the last call. */
static char *take_events(void)
{
	static char buffer[4096];
	ssize_t length = 0;
	int fd = open(events_path, O_RDONLY);

	if (fd >= 0) {
		length = read(fd, buffer, sizeof(buffer) - 1);
		close(fd);
		assert_true(length >= 0);
	}
	buffer[length] = '\0';
	assert_int_equal(truncate(events_path, 0), 0);
	return buffer;
}

static bool module_is_loaded(const char *path)
{
	void *handle = dlopen(path, RTLD_NOW | RTLD_NOLOAD);

	if (!handle)
		return false;
	dlclose(handle);
	return true;
}

/* Whether the process maps the file at path: its description only, or all of it. */
static bool file_is_mapped(const char *path)
{
	char *real_path = realpath(path, NULL);
	char line[4096];
	bool found = false;
	FILE *maps = fopen("/proc/self/maps", "r");

	assert_non_null(real_path);
	assert_non_null(maps);
	while (!found && fgets(line, sizeof(line), maps))
		found = strstr(line, real_path) != NULL;
	fclose(maps);
	free(real_path);
	return found;
}

static int setup(void **state)
{
	int fd = mkstemp(events_path);

	(void)state;
	if (fd < 0)
		return -1;
	close(fd);
	setenv("TEST_HANDLER_EVENTS", events_path, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(events_path);
	return 0;
}

static int reset(void **state)
{
	(void)state;
	handlers_unload();
	take_events();
	return 0;
}

static void test_good_handler_loads_and_unloads(void **state)
{
	const struct tcmu_handler *handler;

	(void)state;
	assert_int_equal(handler_load_file(TEST_MODULE_GOOD), 0);
	handler = handler_find("good");
	assert_non_null(handler);
	assert_ptr_equal(handler_at(0), handler);
	assert_null(handler_at(1));
	assert_string_equal(handler->name, "good");
	assert_int_equal(handler->abi_version, TCMU_HANDLER_ABI_VERSION);
	assert_non_null(handler->open);
	assert_non_null(handler->unmap);
	assert_non_null(handler->reconfigure);
	assert_true(module_is_loaded(TEST_MODULE_GOOD));
	assert_string_equal(take_events(), "load good\n");

	handlers_unload();
	assert_string_equal(take_events(), "unload good\n");
	assert_null(handler_find("good"));
	assert_null(handler_at(0));
	assert_false(module_is_loaded(TEST_MODULE_GOOD));
}

static void assert_refused(const char *path, int expected_error, const char *subtype)
{
	assert_int_equal(handler_load_file(path), expected_error);
	assert_null(handler_find(subtype));
	assert_null(handler_at(0));
	assert_false(module_is_loaded(path));
}

static void test_other_abi_version_refused(void **state)
{
	(void)state;
	assert_refused(TEST_MODULE_OTHER_ABI, -EPROTO, "otherabi");
	/* Refused before anything of it ran. */
	assert_string_equal(take_events(), "");
}

static void test_struct_too_small_refused(void **state)
{
	(void)state;
	assert_refused(TEST_MODULE_TINY_STRUCT, -EPROTO, "tiny");
	assert_string_equal(take_events(), "");
}

static void test_missing_open_refused(void **state)
{
	(void)state;
	assert_refused(TEST_MODULE_NO_OPEN, -EINVAL, "noopen");
	assert_string_equal(take_events(), "");
}

static void test_failing_load_refused(void **state)
{
	(void)state;
	assert_refused(TEST_MODULE_LOAD_FAILS, -EIO, "loadfails");
	/* load() ran and failed; unload() is not called for a handler that never loaded. */
	assert_string_equal(take_events(), "load loadfails\n");
}

static void test_bad_subtype_refused(void **state)
{
	(void)state;
	assert_refused(TEST_MODULE_BAD_SUBTYPE, -EINVAL, "bad/subtype");
	assert_string_equal(take_events(), "");
}

static void test_missing_init_refused(void **state)
{
	(void)state;
	assert_refused(TEST_MODULE_NO_INIT, -ENOEXEC, "good");
}

static void test_init_returning_null_refused(void **state)
{
	(void)state;
	assert_refused(TEST_MODULE_INIT_NULL, -EINVAL, "good");
}

static void test_not_a_library_refused(void **state)
{
	char path[] = "/tmp/handler_junk_XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not ELF\n", 8), 8);
	close(fd);
	assert_int_equal(handler_load_file(path), -ENOEXEC);
	assert_null(handler_at(0));
	unlink(path);
}

static void test_duplicate_subtype_refused(void **state)
{
	const struct tcmu_handler *handler;

	(void)state;
	assert_int_equal(handler_load_file(TEST_MODULE_GOOD), 0);
	assert_int_equal(handler_load_file(TEST_MODULE_DUPLICATE), -EEXIST);
	handler = handler_find("good");
	assert_non_null(handler);
	assert_string_equal(handler->name, "good");
	assert_null(handler_at(1));
	assert_false(module_is_loaded(TEST_MODULE_DUPLICATE));
	/* The duplicate's load() never ran. */
	assert_string_equal(take_events(), "load good\n");
}

static void test_older_handler_fields_zero_filled(void **state)
{
	const struct tcmu_handler *handler;

	(void)state;
	assert_int_equal(handler_load_file(TEST_MODULE_OLDER), 0);
	handler = handler_find("older");
	assert_non_null(handler);
	assert_non_null(handler->flush);
	/* The module's struct has them set, beyond the size it declares. */
	assert_null(handler->unmap);
	assert_null(handler->reconfigure);
}

/*
 * A handler built against the version-1 layout (handler_abi_v1.h), not
 * libtcmu.h: each callback lands in its place, each answering with its
 * own number; one built before the later fields has them NULL.
 */
static void test_version_one_handler_loads_through_its_adapter(void **state)
{
	const struct tcmu_handler *handler;
	char *reason = NULL;
	bool mapped;
	uint64_t length;

	(void)state;
	assert_int_equal(handler_load_file(TEST_MODULE_VERSION_ONE), 0);
	handler = handler_find("versionone");
	assert_non_null(handler);
	assert_int_equal(handler->abi_version, 1);
	assert_string_equal(handler->name, "built for version 1");
	assert_string_equal(handler->config_description, "none");
	assert_int_equal(handler->flags, TCMU_HANDLER_NON_ROTATING);
	assert_int_equal(handler->check_config("x", &reason), -101);
	assert_int_equal(handler->open(NULL), -102);
	assert_int_equal(handler->read(NULL, NULL, NULL, 0, 0, 0), -103);
	assert_int_equal(handler->write(NULL, NULL, NULL, 0, 0, 0, 0), -104);
	assert_int_equal(handler->flush(NULL, NULL), -105);
	assert_int_equal(handler->unmap(NULL, NULL, 0, 0), -106);
	assert_int_equal(handler->reconfigure(NULL, NULL), -107);
	assert_int_equal(handler->get_lba_status(NULL, 0, 0, &mapped, &length), -108);
	assert_int_equal(handler->compare_and_write(NULL, NULL, NULL, 0, NULL, 0, 0, 0, 0), -109);
	assert_int_equal(handler->query_lba_status(NULL, NULL, 0, 0), -110);
	assert_non_null(handler->load);
	assert_non_null(handler->unload);
	assert_non_null(handler->close);
	assert_non_null(handler->remove);
	assert_non_null(handler->fd_ready);
	assert_non_null(handler->batch_done);

	assert_int_equal(handler_load_file(TEST_MODULE_VERSION_ONE_OLDER), 0);
	handler = handler_find("versiononeolder");
	assert_non_null(handler);
	assert_int_equal(handler->unmap(NULL, NULL, 0, 0), -106);
	assert_int_equal(handler->reconfigure(NULL, NULL), -107);
	assert_null(handler->get_lba_status);
	assert_int_equal(handler->flags, 0);
	assert_null(handler->fd_ready);
	assert_null(handler->batch_done);
	assert_null(handler->compare_and_write);
	assert_null(handler->query_lba_status);
}

static char *make_directory(void)
{
	static char path[] = "/tmp/test_handler_dir_XXXXXX";

	strcpy(path, "/tmp/test_handler_dir_XXXXXX");
	assert_non_null(mkdtemp(path));
	return path;
}

static void link_module(const char *dir, const char *name, const char *target)
{
	char *path;

	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	assert_int_equal(symlink(target, path), 0);
	free(path);
}

static void remove_directory(const char *dir)
{
	char *command;

	assert_true(asprintf(&command, "rm -rf '%s'", dir) > 0);
	assert_int_equal(system(command), 0);
	free(command);
}

static void test_directory_loads_good_ones_in_order(void **state)
{
	char *dir = make_directory();
	char *junk;
	int fd;

	(void)state;
	link_module(dir, "handler_1.so", TEST_MODULE_OLDER);
	link_module(dir, "handler_2.so", TEST_MODULE_OTHER_ABI);
	link_module(dir, "handler_3.so", TEST_MODULE_NO_OPEN);
	link_module(dir, "handler_4.so", TEST_MODULE_LOAD_FAILS);
	link_module(dir, "handler_5.so", TEST_MODULE_GOOD);
	link_module(dir, "handler_6.so", TEST_MODULE_DUPLICATE);
	/* Not handler_*.so: never opened, though it would load. */
	link_module(dir, "other_good.so", TEST_MODULE_GOOD_TWO);
	link_module(dir, "handler_8.so.disabled", TEST_MODULE_GOOD_TWO);
	assert_true(asprintf(&junk, "%s/handler_7.so", dir) > 0);
	fd = open(junk, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	free(junk);

	assert_int_equal(handlers_load(dir), 2);
	assert_string_equal(handler_at(0)->subtype, "older");
	assert_string_equal(handler_at(1)->subtype, "good");
	assert_string_equal(handler_find("good")->name, "good");
	assert_null(handler_at(2));
	assert_null(handler_find("goodtwo"));
	assert_false(module_is_loaded(TEST_MODULE_GOOD_TWO));
	assert_false(module_is_loaded(TEST_MODULE_LOAD_FAILS));
	assert_string_equal(take_events(), "load older\nload loadfails\nload good\n");

	handlers_unload();
	assert_string_equal(take_events(), "unload good\nunload older\n");
	remove_directory(dir);
}

/* handler_*.so in a directory of its own, as the daemon finds it. */
static char *directory_with(const char *module)
{
	char *dir = make_directory();

	link_module(dir, "handler_lazy.so", module);
	assert_int_equal(handlers_load(dir), 1);
	return dir;
}

static void test_described_handler_loads_on_first_use(void **state)
{
	char *dir = directory_with(TEST_MODULE_LAZY);
	const struct tcmu_handler *handler = handler_find("lazy");
	char *reason = (char *)"unset";

	(void)state;
	/* Listed from its description, nothing of it run or mapped. */
	assert_non_null(handler);
	assert_ptr_equal(handler_at(0), handler);
	assert_string_equal(handler->name, "lazy");
	assert_string_equal(handler->config_description, "config of lazy");
	assert_null(handler->open);
	assert_false(module_is_loaded(TEST_MODULE_LAZY));
	assert_string_equal(take_events(), "");
	/* The description stays mapped: /proc/PID/maps lists the handlers offered. */
	assert_true(file_is_mapped(TEST_MODULE_LAZY));

	assert_int_equal(handler_require(handler, &reason), 0);
	assert_null(reason);
	assert_true(module_is_loaded(TEST_MODULE_LAZY));
	assert_string_equal(take_events(), "load lazy\n");
	assert_ptr_equal(handler_find("lazy"), handler);
	assert_non_null(handler->open);
	assert_non_null(handler->unmap);
	assert_string_equal(handler->config_description, "config of lazy");
	/* Once. */
	assert_int_equal(handler_require(handler, &reason), 0);
	assert_string_equal(take_events(), "");

	handlers_unload();
	assert_string_equal(take_events(), "unload lazy\n");
	assert_false(module_is_loaded(TEST_MODULE_LAZY));
	assert_false(file_is_mapped(TEST_MODULE_LAZY));
	remove_directory(dir);
}

static void test_described_handler_never_used_is_never_loaded(void **state)
{
	char *dir = directory_with(TEST_MODULE_LAZY);

	(void)state;
	handlers_unload();
	assert_string_equal(take_events(), "");
	assert_false(module_is_loaded(TEST_MODULE_LAZY));
	remove_directory(dir);
}

/* A load that fails on first use fails that use, with the reason, every time. */
static void assert_require_fails(const char *module, int expected_error, const char *why)
{
	char *dir = directory_with(module);
	const struct tcmu_handler *handler = handler_find("lazy");
	char *reason = NULL;

	assert_non_null(handler);
	for (int attempt = 0; attempt < 2; attempt++) {
		assert_int_equal(handler_require(handler, &reason), expected_error);
		assert_non_null(reason);
		assert_non_null(strstr(reason, "handler_lazy.so"));
		assert_non_null(strstr(reason, why));
		free(reason);
		reason = NULL;
		assert_null(handler->open);
		assert_false(module_is_loaded(module));
	}
	assert_string_equal(take_events(), "");
	handlers_unload();
	assert_string_equal(take_events(), "");
	remove_directory(dir);
}

static void test_described_handler_that_cannot_load(void **state)
{
	(void)state;
	assert_require_fails(TEST_MODULE_LAZY_UNRESOLVED, -ENOEXEC, "loader_test_missing_symbol");
}

static void test_described_handler_with_another_subtype(void **state)
{
	(void)state;
	assert_require_fails(TEST_MODULE_LAZY_STALE, -EINVAL, "'stale'");
}

static void test_unreadable_directory(void **state)
{
	(void)state;
	assert_int_equal(handlers_load("/nonexistent/handlers"), -ENOENT);
	assert_null(handler_at(0));
}

static void test_empty_directory(void **state)
{
	char *dir = make_directory();

	(void)state;
	assert_int_equal(handlers_load(dir), 0);
	remove_directory(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_good_handler_loads_and_unloads, reset),
		cmocka_unit_test_teardown(test_other_abi_version_refused, reset),
		cmocka_unit_test_teardown(test_struct_too_small_refused, reset),
		cmocka_unit_test_teardown(test_missing_open_refused, reset),
		cmocka_unit_test_teardown(test_failing_load_refused, reset),
		cmocka_unit_test_teardown(test_bad_subtype_refused, reset),
		cmocka_unit_test_teardown(test_missing_init_refused, reset),
		cmocka_unit_test_teardown(test_init_returning_null_refused, reset),
		cmocka_unit_test_teardown(test_not_a_library_refused, reset),
		cmocka_unit_test_teardown(test_duplicate_subtype_refused, reset),
		cmocka_unit_test_teardown(test_older_handler_fields_zero_filled, reset),
		cmocka_unit_test_teardown(test_version_one_handler_loads_through_its_adapter, reset),
		cmocka_unit_test_teardown(test_directory_loads_good_ones_in_order, reset),
		cmocka_unit_test_teardown(test_described_handler_loads_on_first_use, reset),
		cmocka_unit_test_teardown(test_described_handler_never_used_is_never_loaded, reset),
		cmocka_unit_test_teardown(test_described_handler_that_cannot_load, reset),
		cmocka_unit_test_teardown(test_described_handler_with_another_subtype, reset),
		cmocka_unit_test_teardown(test_unreadable_directory, reset),
		cmocka_unit_test_teardown(test_empty_directory, reset),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
