/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c: syslog priorities before each line when stderr is the journal
 * (JOURNAL_STREAM names it), plain lines on a console and in the log file.
 * log.c decides once per process, so each case logs from a child of its own.
 */
#include <errno.h>
#include <setjmp.h>
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

enum stream { STREAM_JOURNAL, STREAM_OTHER, STREAM_UNSET };

/* What a child wrote to stderr, a pipe, after an error and an info line. */
static char *log_from_child(enum stream stream, const char *log_dir)
{
	static char output[4096];
	size_t length = 0;
	ssize_t got;
	int pipe_fds[2], status;
	pid_t child;

	assert_int_equal(pipe(pipe_fds), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct stat pipe_status;
		char value[64];

		close(pipe_fds[0]);
		dup2(pipe_fds[1], STDERR_FILENO);
		fstat(pipe_fds[1], &pipe_status);
		/* Another inode: stderr was redirected after systemd set it. */
		snprintf(value, sizeof(value), "%llu:%llu",
			 (unsigned long long)pipe_status.st_dev,
			 (unsigned long long)pipe_status.st_ino + (stream == STREAM_OTHER));
		if (stream == STREAM_UNSET)
			unsetenv("JOURNAL_STREAM");
		else
			setenv("JOURNAL_STREAM", value, 1);
		if (log_dir && log_open_file(log_dir) != 0)
			_exit(2);
		tcmu_err("disk %d failed", 7);
		tcmu_info("disk %d fine", 8);
		log_close_file();
		_exit(0);
	}
	close(pipe_fds[1]);
	while ((got = read(pipe_fds[0], output + length, sizeof(output) - 1 - length)) > 0)
		length += (size_t)got;
	close(pipe_fds[0]);
	output[length] = '\0';
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	return output;
}

static void test_journal_lines_carry_priorities(void **state)
{
	char *output = log_from_child(STREAM_JOURNAL, NULL);
	char *second = strchr(output, '\n');

	(void)state;
	assert_non_null(second);
	assert_memory_equal(output, "<3>", 3);
	assert_non_null(strstr(output, " ERROR disk 7 failed"));
	assert_memory_equal(second + 1, "<6>", 3);
	assert_non_null(strstr(second, " INFO disk 8 fine"));
}

static void test_console_lines_are_plain(void **state)
{
	(void)state;
	assert_null(strchr(log_from_child(STREAM_OTHER, NULL), '<'));
	assert_null(strchr(log_from_child(STREAM_UNSET, NULL), '<'));
	assert_non_null(strstr(log_from_child(STREAM_UNSET, NULL), " ERROR disk 7 failed"));
}

static void test_log_file_lines_are_plain(void **state)
{
	char dir[] = "/tmp/test_log.XXXXXX", path[64], file_text[1024];
	size_t length;
	FILE *file;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_memory_equal(log_from_child(STREAM_JOURNAL, dir), "<3>", 3);
	snprintf(path, sizeof(path), "%s/tcmu-runner.log", dir);
	file = fopen(path, "r");
	assert_non_null(file);
	length = fread(file_text, 1, sizeof(file_text) - 1, file);
	fclose(file);
	file_text[length] = '\0';
	assert_non_null(strstr(file_text, " ERROR disk 7 failed"));
	assert_null(strchr(file_text, '<'));
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_journal_lines_carry_priorities),
		cmocka_unit_test(test_console_lines_are_plain),
		cmocka_unit_test(test_log_file_lines_are_plain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
