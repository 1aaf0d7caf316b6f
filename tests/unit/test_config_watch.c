/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_watch.c against a real inotify watch on a temporary directory:
 * the ways administrators and their tools change a file (rewrite in place,
 * rename over it, remove it) and changes the watch must not act on.
 */
#include <errno.h>
#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tcmu_internal.h"

struct fixture {
	char directory[64];
	char path[96];
};

static void write_file(const char *path, const char *text)
{
	FILE *file = fopen(path, "w");

	assert_non_null(file);
	assert_int_equal(fputs(text, file) >= 0, 1);
	assert_int_equal(fclose(file), 0);
}

static void replace_file(const struct fixture *fixture, const char *text)
{
	char temporary[128];

	snprintf(temporary, sizeof(temporary), "%s/.tcmu.conf.new", fixture->directory);
	write_file(temporary, text);
	assert_int_equal(rename(temporary, fixture->path), 0);
}

/* Runs the main loop until the level is expected, or for timeout_ms; returns the level. */
static int run_loop_until_level(int expected, int timeout_ms)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	while (g_get_monotonic_time() < deadline) {
		while (g_main_context_iteration(NULL, FALSE))
			;
		if (tcmu_log_level_current == expected)
			break;
		g_usleep(5000);
	}
	return tcmu_log_level_current;
}

static int setup(void **state)
{
	struct fixture *fixture = calloc(1, sizeof(*fixture));

	assert_non_null(fixture);
	strcpy(fixture->directory, "/tmp/test_config_watch.XXXXXX");
	assert_non_null(mkdtemp(fixture->directory));
	snprintf(fixture->path, sizeof(fixture->path), "%s/tcmu.conf", fixture->directory);
	write_file(fixture->path, "log_level = 3\n");
	log_set_level(TCMU_LOG_INFO);
	*state = fixture;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fixture = *state;
	char command[128];

	config_watch_stop();
	snprintf(command, sizeof(command), "rm -rf '%s'", fixture->directory);
	assert_int_equal(system(command), 0);
	free(fixture);
	log_set_level(TCMU_LOG_INFO);
	return 0;
}

static void test_rewrite_in_place_applies_level(void **state)
{
	struct fixture *fixture = *state;

	assert_int_equal(config_watch_start(fixture->path, -1), 0);
	write_file(fixture->path, "# more detail\nlog_level = 4\n");
	assert_int_equal(run_loop_until_level(TCMU_LOG_DEBUG, 2000), TCMU_LOG_DEBUG);
	write_file(fixture->path, "log_level=1\n");
	assert_int_equal(run_loop_until_level(TCMU_LOG_ERROR, 2000), TCMU_LOG_ERROR);
}

static void test_rename_over_file_applies_level(void **state)
{
	struct fixture *fixture = *state;

	assert_int_equal(config_watch_start(fixture->path, -1), 0);
	replace_file(fixture, "log_level = 5\n");
	assert_int_equal(run_loop_until_level(TCMU_LOG_DEBUG_SCSI_CMD, 2000),
			 TCMU_LOG_DEBUG_SCSI_CMD);
}

static void test_other_files_are_ignored(void **state)
{
	struct fixture *fixture = *state;
	char other[128];

	assert_int_equal(config_watch_start(fixture->path, -1), 0);
	/* The watched file says 1 from now on; a reload would apply it. */
	write_file(fixture->path, "log_level = 1\n");
	assert_int_equal(run_loop_until_level(TCMU_LOG_ERROR, 2000), TCMU_LOG_ERROR);
	log_set_level(TCMU_LOG_WARN);
	snprintf(other, sizeof(other), "%s/tcmu.conf.bak", fixture->directory);
	write_file(other, "log_level = 0\n");
	snprintf(other, sizeof(other), "%s/other.conf", fixture->directory);
	write_file(other, "log_level = 0\n");
	assert_int_equal(run_loop_until_level(-1, 300), TCMU_LOG_WARN);
}

static void test_removed_file_keeps_level(void **state)
{
	struct fixture *fixture = *state;

	assert_int_equal(config_watch_start(fixture->path, -1), 0);
	write_file(fixture->path, "log_level = 4\n");
	assert_int_equal(run_loop_until_level(TCMU_LOG_DEBUG, 2000), TCMU_LOG_DEBUG);
	assert_int_equal(unlink(fixture->path), 0);
	assert_int_equal(run_loop_until_level(-1, 300), TCMU_LOG_DEBUG);
	/* And a file that comes back is followed again. */
	replace_file(fixture, "log_level = 2\n");
	assert_int_equal(run_loop_until_level(TCMU_LOG_WARN, 2000), TCMU_LOG_WARN);
}

static void test_file_without_level_restores_default(void **state)
{
	struct fixture *fixture = *state;

	assert_int_equal(config_watch_start(fixture->path, -1), 0);
	write_file(fixture->path, "log_level = 0\n");
	assert_int_equal(run_loop_until_level(TCMU_LOG_CRIT, 2000), TCMU_LOG_CRIT);
	/* As at start: what the file no longer sets is back to its default. */
	write_file(fixture->path, "# log_level = 0\n");
	assert_int_equal(run_loop_until_level(TCMU_LOG_INFO, 2000), TCMU_LOG_INFO);
}

static void test_pinned_level_wins(void **state)
{
	struct fixture *fixture = *state;

	log_set_level(TCMU_LOG_DEBUG);
	assert_int_equal(config_watch_start(fixture->path, TCMU_LOG_DEBUG), 0);
	write_file(fixture->path, "log_level = 1\n");
	assert_int_equal(run_loop_until_level(TCMU_LOG_ERROR, 300), TCMU_LOG_DEBUG);
}

static void test_missing_directory_is_refused_cleanly(void **state)
{
	struct fixture *fixture = *state;
	char missing[128];

	snprintf(missing, sizeof(missing), "%s/absent/tcmu.conf", fixture->directory);
	assert_int_equal(config_watch_start(missing, -1), -ENOENT);
	/* Nothing is left behind: a second start on a good path works. */
	assert_int_equal(config_watch_start(fixture->path, -1), 0);
	assert_int_equal(config_watch_start(fixture->path, -1), -EBUSY);
	write_file(fixture->path, "log_level = 4\n");
	assert_int_equal(run_loop_until_level(TCMU_LOG_DEBUG, 2000), TCMU_LOG_DEBUG);
}

/* xcopy_group lines: normalised, and dropped whole when they cannot be a group. */
static void test_xcopy_group_lines(void **state)
{
	struct fixture *fixture = *state;
	struct tcmu_config config = TCMU_CONFIG_DEFAULTS;

	write_file(fixture->path,
		   "xcopy_group = user_1/disk1 \t disk2   disk2\n"
		   "xcopy_group = disk3\n"
		   "xcopy_group = disk4 disk4\n"
		   "xcopy_group = disk5 iblock_0/disk6\n"
		   "xcopy_group = disk5 user_x/disk6\n"
		   "xcopy_group = disk5 user_1/\n"
		   "xcopy_group = \"disk7 disk8 user_12/disk9\"\n");
	assert_int_equal(config_file_load(fixture->path, &config), 0);
	assert_int_equal(config.xcopy_group_count, 2);
	assert_string_equal(config.xcopy_groups[0], "user_1/disk1 disk2");
	assert_string_equal(config.xcopy_groups[1], "disk7 disk8 user_12/disk9");
	config_release(&config);
	assert_int_equal(config.xcopy_group_count, 0);
	assert_null(config.xcopy_groups);
}

static bool allowed(const char *first_backstore, const char *second_backstore)
{
	struct tcmu_device first = { .backstore = (char *)first_backstore };
	struct tcmu_device second = { .backstore = (char *)second_backstore };

	first.name = strchr(first.backstore, '/') + 1;
	second.name = strchr(second.backstore, '/') + 1;
	return copy_groups_allow(&first, &second);
}

/* Groups follow the file like the level does; a removed file changes nothing. */
static void test_reload_applies_xcopy_groups(void **state)
{
	struct fixture *fixture = *state;
	gint64 deadline;

	assert_int_equal(copy_groups_set(NULL, 0), 0);
	assert_int_equal(config_watch_start(fixture->path, -1), 0);
	write_file(fixture->path, "xcopy_group = a user_3/b\nlog_level = 4\n");
	assert_int_equal(run_loop_until_level(TCMU_LOG_DEBUG, 2000), TCMU_LOG_DEBUG);
	assert_true(allowed("user_1/a", "user_3/b"));
	assert_true(allowed("user_3/b", "user_7/a"));
	assert_false(allowed("user_1/a", "user_4/b"));
	assert_false(allowed("user_1/a", "user_2/a"));

	write_file(fixture->path, "log_level = 3\n");
	assert_int_equal(run_loop_until_level(TCMU_LOG_INFO, 2000), TCMU_LOG_INFO);
	assert_false(allowed("user_1/a", "user_3/b"));

	write_file(fixture->path, "xcopy_group = a b\nlog_level = 2\n");
	assert_int_equal(run_loop_until_level(TCMU_LOG_WARN, 2000), TCMU_LOG_WARN);
	assert_int_equal(unlink(fixture->path), 0);
	deadline = g_get_monotonic_time() + 300 * 1000;
	while (g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, FALSE);
	assert_true(allowed("user_1/a", "user_2/b"));
	assert_int_equal(copy_groups_set(NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rewrite_in_place_applies_level, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rename_over_file_applies_level, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_other_files_are_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_file_keeps_level, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_without_level_restores_default, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pinned_level_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_directory_is_refused_cleanly, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_xcopy_group_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_applies_xcopy_groups, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
