/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file handler, dlopened from the build tree: config checks with their
 * reasons, creation and sizing of the file, data round trips and durable
 * requests. Its storage cases (full and deleted files, holes, medium
 * changes, block devices) are in test_handler_file_storage.c.
 */
#include "file_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

/* Runs check_config and checks its result and that the reason contains expected. */
static void expect_refusal(const struct tcmu_handler *handler, const char *config,
			   int expected_result, const char *expected_reason)
{
	char *reason = NULL;

	assert_int_equal(handler->check_config(config, &reason), expected_result);
	assert_non_null(reason);
	if (!strstr(reason, expected_reason))
		fail_msg("reason '%s' lacks '%s'", reason, expected_reason);
	free(reason);
}

static void test_check_config_reasons(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	char *missing_directory = in_directory(fixture, "missing/disk.img");
	char *fifo = in_directory(fixture, "fifo");
	char *under_file = in_directory(fixture, "disk.img/x");
	char *with_slash = in_directory(fixture, "new/");
	char long_path[PATH_MAX + 8];
	char *reason = NULL;
	int fd;

	assert_non_null(handler->check_config);
	assert_non_null(handler->config_description);
	expect_refusal(handler, "", -EINVAL, "no path");
	expect_refusal(handler, missing_directory, -ENOENT, "does not exist");
	expect_refusal(handler, fixture->directory, -EISDIR, "is a directory");
	expect_refusal(handler, with_slash, -EISDIR, "names a directory");
	expect_refusal(handler, "disk\n.img", -EINVAL, "control characters");
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	expect_refusal(handler, long_path, -ENAMETOOLONG, "longer");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	expect_refusal(handler, fifo, -EINVAL, "neither a regular file nor a block device");

	/* Missing but creatable, then existing: both usable. */
	assert_int_equal(handler->check_config(fixture->path, &reason), 0);
	assert_null(reason);
	fd = open(fixture->path, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(handler->check_config(fixture->path, &reason), 0);
	assert_null(reason);
	expect_refusal(handler, under_file, -ENOTDIR, "not a directory");
	assert_int_equal(handler->check_config("/dev/null", &reason), -EINVAL);
	free(reason);

	free(missing_directory);
	free(fifo);
	free(under_file);
	free(with_slash);
}

/* Permissions only bind users other than root: check them as nobody. */
static void test_check_config_unwritable_directory(void **state)
{
	struct fixture *fixture = *state;
	char *existing = in_directory(fixture, "existing.img");
	int child_status;
	pid_t child;
	int fd;

	if (geteuid() != 0) {
		char *reason = NULL;

		/* /proc refuses file creation to everybody but root. */
		assert_true(fixture->handler->check_config("/proc/tcmu-test.img", &reason) < 0);
		assert_non_null(reason);
		free(reason);
		free(existing);
		return;
	}
	fd = open(existing, O_RDWR | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(chmod(fixture->directory, 0755), 0);

	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		char *reason = NULL;
		int result;

		if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
			_exit(10);
		result = fixture->handler->check_config(fixture->path, &reason);
		if (result != -EACCES || !reason || !strstr(reason, "cannot create files"))
			_exit(11);
		free(reason);
		reason = NULL;
		result = fixture->handler->check_config(existing, &reason);
		if (result != -EACCES || !reason || !strstr(reason, "cannot be read and written"))
			_exit(12);
		free(reason);
		_exit(0);
	}
	assert_int_equal(waitpid(child, &child_status, 0), child);
	assert_true(WIFEXITED(child_status));
	assert_int_equal(WEXITSTATUS(child_status), 0);
	free(existing);
}

static void test_created_when_missing(void **state)
{
	struct fixture *fixture = *state;
	struct stat status;

	open_device(fixture);
	status = status_of(fixture->path);
	assert_true(S_ISREG(status.st_mode));
	assert_int_equal(status.st_mode & 0777, 0600);
	assert_int_equal(status.st_size, 16 * MIB);
	assert_true(status.st_blocks < 64);
	assert_non_null(strstr(harness_log(), "dev size: 16777216\n"));
	close_device(fixture);
}

static void test_relative_path(void **state)
{
	struct fixture *fixture = *state;
	char *relative_file = in_directory(fixture, "relative.img");
	char old_directory[PATH_MAX];
	char buffer[512];

	assert_non_null(getcwd(old_directory, sizeof(old_directory)));
	assert_int_equal(chdir(fixture->directory), 0);
	fixture->dev.config = "relative.img";
	open_device(fixture);
	harness_pattern(buffer, sizeof(buffer), 1);
	assert_int_equal(harness_write(fixture->handler, &fixture->dev, 0, buffer,
				       sizeof(buffer), 0), 0);
	close_device(fixture);
	assert_int_equal(chdir(old_directory), 0);
	assert_int_equal(status_of(relative_file).st_size, 16 * MIB);
	free(relative_file);
}

static void test_open_failure_creates_nothing(void **state)
{
	struct fixture *fixture = *state;
	char *missing_directory = in_directory(fixture, "missing/disk.img");

	fixture->dev.config = missing_directory;
	assert_int_equal(fixture->handler->open(&fixture->dev), -ENOENT);
	assert_null(fixture->dev.private_data);
	fixture->dev.config = fixture->directory;
	assert_int_equal(fixture->handler->open(&fixture->dev), -EISDIR);
	assert_null(fixture->dev.private_data);

	/* Created, then too big for the file system: the new file goes again. */
	fixture->dev.config = fixture->path;
	fixture->dev.size = 1ull << 62;
	assert_int_equal(fixture->handler->open(&fixture->dev), -EFBIG);
	assert_null(fixture->dev.private_data);
	assert_int_equal(access(fixture->path, F_OK), -1);
	free(missing_directory);
}

/* An existing file of another size may be another disk's: used only when asked. */
static void test_existing_file_size(void **state)
{
	struct fixture *fixture = *state;
	char *any_size_config = NULL;
	char written[4096];
	char read_back[4096];
	int fd;

	assert_true(asprintf(&any_size_config, "any_size:%s", fixture->path) > 0);
	harness_pattern(written, sizeof(written), 9);
	fd = open(fixture->path, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, written, sizeof(written), 0), (ssize_t)sizeof(written));
	assert_int_equal(ftruncate(fd, 32 * MIB), 0);
	close(fd);

	/* Bigger than the device: refused, saying how to ask... */
	assert_int_equal(fixture->handler->open(&fixture->dev), -EINVAL);
	assert_null(fixture->dev.private_data);
	assert_non_null(strstr(harness_log(), "not the device size 16777216"));
	assert_non_null(strstr(harness_log(), any_size_config));
	/* ...and when asked, never shrunk: its head is the disk. */
	assert_int_equal(fixture->handler->check_config(any_size_config, &(char *){ NULL }), 0);
	fixture->dev.config = any_size_config;
	open_device(fixture);
	assert_int_equal(status_of(fixture->path).st_size, 32 * MIB);
	assert_int_equal(harness_read(fixture->handler, &fixture->dev, 0, read_back,
				      sizeof(read_back)), 0);
	assert_memory_equal(read_back, written, sizeof(written));
	close_device(fixture);

	/* Smaller than the device: refused, untouched; when asked, grown, its content kept. */
	assert_int_equal(truncate(fixture->path, sizeof(written)), 0);
	fixture->dev.config = fixture->path;
	assert_int_equal(fixture->handler->open(&fixture->dev), -EINVAL);
	assert_int_equal(status_of(fixture->path).st_size, sizeof(written));
	fixture->dev.config = any_size_config;
	open_device(fixture);
	assert_int_equal(status_of(fixture->path).st_size, 16 * MIB);
	assert_int_equal(harness_read(fixture->handler, &fixture->dev, 0, read_back,
				      sizeof(read_back)), 0);
	assert_memory_equal(read_back, written, sizeof(written));
	close_device(fixture);

	/* The right size (a restart): used as it is. */
	fixture->dev.config = fixture->path;
	open_device(fixture);
	close_device(fixture);
	free(any_size_config);
}

static void test_write_read_back(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	size_t length = 64 * 1024 + 512;
	char *written = malloc(length);
	char *read_back = malloc(length);
	char *on_disk = malloc(length);
	uint64_t offsets[] = { 0, 3 * MIB + 512, fixture->dev.size - length };
	int fd;

	open_device(fixture);
	for (unsigned int i = 0; i < 3; i++) {
		harness_pattern(written, length, i + 20);
		assert_int_equal(harness_write(handler, &fixture->dev, offsets[i], written,
					       length, 0), 0);
	}
	fd = open(fixture->path, O_RDONLY);
	assert_true(fd >= 0);
	for (unsigned int i = 0; i < 3; i++) {
		harness_pattern(written, length, i + 20);
		memset(read_back, 0xa5, length);
		assert_int_equal(harness_read(handler, &fixture->dev, offsets[i], read_back,
					      length), 0);
		assert_memory_equal(read_back, written, length);
		assert_int_equal(pread(fd, on_disk, length, (off_t)offsets[i]), (ssize_t)length);
		assert_memory_equal(on_disk, written, length);
	}
	close(fd);

	memset(read_back, 0xa5, length);
	assert_int_equal(harness_read(handler, &fixture->dev, 8 * MIB, read_back, length), 0);
	assert_true(harness_is_zero(read_back, length));

	/* Shrunk underneath: the part past the end reads as zeros, not garbage. */
	assert_int_equal(truncate(fixture->path, 4096), 0);
	memset(read_back, 0xa5, length);
	assert_int_equal(harness_read(handler, &fixture->dev, 0, read_back, length), 0);
	harness_pattern(written, length, 20);
	assert_memory_equal(read_back, written, 4096);
	assert_true(harness_is_zero(read_back + 4096, length - 4096));

	close_device(fixture);
	free(written);
	free(read_back);
	free(on_disk);
}

static void test_durable_requests_succeed(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	char written[4096];
	char read_back[4096];

	open_device(fixture);
	harness_pattern(written, sizeof(written), 4);
	assert_int_equal(harness_write(handler, &fixture->dev, 4096, written, sizeof(written),
				       TCMU_WRITE_FUA), 0);
	assert_int_equal(harness_flush(handler, &fixture->dev), 0);
	fixture->dev.write_cache = false;
	assert_int_equal(harness_write(handler, &fixture->dev, 8192, written, sizeof(written),
				       0), 0);
	assert_int_equal(harness_read(handler, &fixture->dev, 8192, read_back,
				      sizeof(read_back)), 0);
	assert_memory_equal(read_back, written, sizeof(written));
	close_device(fixture);
}

/* A link to a missing file is refused at once, not created through or retried forever. */
static void test_dangling_symlink(void **state)
{
	struct fixture *fixture = *state;
	char *link_path = in_directory(fixture, "link.img");
	char *missing = in_directory(fixture, "missing.img");

	assert_int_equal(symlink(missing, link_path), 0);
	expect_refusal(fixture->handler, link_path, -ENOENT, "symbolic link");
	fixture->dev.config = link_path;
	assert_int_equal(fixture->handler->open(&fixture->dev), -ENOENT);
	fixture->dev.config = fixture->path;
	assert_null(fixture->dev.private_data);
	assert_int_equal(access(missing, F_OK), -1);
	assert_non_null(strstr(harness_log(), "symbolic link"));

	/* A link to a file that exists is followed. */
	assert_int_equal(rename(link_path, fixture->path), 0);
	assert_int_equal(close(open(missing, O_RDWR | O_CREAT, 0600)), 0);
	assert_int_equal(truncate(missing, 16 * MIB), 0);
	open_device(fixture);
	close_device(fixture);
	free(link_path);
	free(missing);
}

static void test_one_device_per_file(void **state)
{
	struct fixture *fixture = *state;
	struct tcmu_device second = fixture->dev;

	open_device(fixture);
	assert_int_equal(fixture->handler->open(&second), -EBUSY);
	assert_null(second.private_data);
	close_device(fixture);
}



int main(void)
{
	const struct CMUnitTest tests[] = {
		FILE_TEST(test_check_config_reasons),
		FILE_TEST(test_check_config_unwritable_directory),
		FILE_TEST(test_created_when_missing),
		FILE_TEST(test_relative_path),
		FILE_TEST(test_open_failure_creates_nothing),
		FILE_TEST(test_existing_file_size),
		FILE_TEST(test_write_read_back),
		FILE_TEST(test_durable_requests_succeed),
		FILE_TEST(test_one_device_per_file),
		FILE_TEST(test_dangling_symlink),
	};

	return cmocka_run_group_tests_name("handler_file", tests, NULL, NULL);
}
