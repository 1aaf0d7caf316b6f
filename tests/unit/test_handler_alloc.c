/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The alloc handler, dlopened from the build tree: data round trips, holes
 * read as zeros, UNMAP gives memory back, the memory file survives a daemon
 * restart and goes with remove(), and huge devices cost nothing until
 * written; the config string names the memory; files of the old /dev/shm
 * location move once, and only the daemon's own.
 */
#include "handler_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#define MIB (1024u * 1024u)

struct fixture {
	const struct tcmu_handler *handler;
	struct tcmu_device dev;
	char backstore[64];
	char shm_path[PATH_MAX];
	char old_path[128];
};

/* The memory directory of these tests, in place of /run/tcmu/alloc. */
static char memory_directory[] = "/tmp/tcmu-alloc-test-XXXXXX";

static int setup(void **state)
{
	static unsigned int counter;
	struct fixture *fixture = calloc(1, sizeof(*fixture));

	assert_non_null(fixture);
	fixture->handler = harness_load(HANDLER_ALLOC_PATH);
	snprintf(fixture->backstore, sizeof(fixture->backstore), "user_0/alloc_test_%d_%u",
		 (int)getpid(), counter);
	snprintf(fixture->shm_path, sizeof(fixture->shm_path),
		 "%s/user_0-alloc_test_%d_%u", memory_directory, (int)getpid(), counter);
	snprintf(fixture->old_path, sizeof(fixture->old_path),
		 "/dev/shm/tcmu-alloc-user_0-alloc_test_%d_%u", (int)getpid(), counter);
	counter++;
	fixture->dev = (struct tcmu_device){
		.name = strchr(fixture->backstore, '/') + 1,
		.subtype = "alloc",
		.backstore = fixture->backstore,
		.config = "",
		.size = 16 * MIB,
		.block_size = 512,
		.write_cache = true,
	};
	unlink(fixture->shm_path);
	unlink(fixture->old_path);
	*state = fixture;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fixture = *state;

	unlink(fixture->shm_path);
	unlink(fixture->old_path);
	harness_unload();
	free(fixture);
	return 0;
}

static void open_device(struct fixture *fixture)
{
	assert_int_equal(fixture->handler->open(&fixture->dev), 0);
	assert_non_null(fixture->dev.private_data);
}

static void close_device(struct fixture *fixture)
{
	fixture->handler->close(&fixture->dev);
}

static struct stat shm_status(const struct fixture *fixture)
{
	struct stat status;

	assert_int_equal(stat(fixture->shm_path, &status), 0);
	return status;
}

static void test_load_and_config(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	char *reason = NULL;

	assert_string_equal(handler->subtype, "alloc");
	assert_true(handler->flags & TCMU_HANDLER_NON_ROTATING);
	assert_non_null(handler->config_description);
	assert_non_null(strstr(handler->config_description, "/run/tcmu/alloc"));
	assert_non_null(handler->load);
	assert_int_equal(handler->load(), 0);
	assert_non_null(strstr(harness_log(), "handler_init"));

	assert_int_equal(handler->check_config("", &reason), 0);
	assert_null(reason);
	assert_int_equal(handler->check_config("test_0", &reason), 0);
	assert_null(reason);
	assert_int_equal(handler->check_config("Disk-1.mem", &reason), 0);
	assert_null(reason);
	assert_int_equal(handler->check_config("size=1G", &reason), -EINVAL);
	assert_non_null(reason);
	assert_non_null(strstr(reason, "size=1G"));
	assert_non_null(strstr(reason, "name of the memory"));
	free(reason);
	{
		/* Paths, hidden names, options, blanks and overlong names mean nothing. */
		const char *refused[] = { "/var/tmp/disk.img", "../x", "a/b", ".", "..", ".hidden",
					  "-x", "a b", "x;y", "\n" };
		char long_name[130];

		for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
			assert_int_equal(handler->check_config(refused[i], &reason), -EINVAL);
			assert_non_null(reason);
			free(reason);
		}
		memset(long_name, 'a', sizeof(long_name) - 1);
		long_name[sizeof(long_name) - 1] = '\0';
		assert_int_equal(handler->check_config(long_name, &reason), -EINVAL);
		free(reason);
		long_name[128] = '\0';
		assert_int_equal(handler->check_config(long_name, &reason), 0);
	}
}

static void test_open_logs_and_creates_private_file(void **state)
{
	struct fixture *fixture = *state;
	struct stat status;

	fixture->dev.size = 1048576;
	open_device(fixture);
	assert_non_null(strstr(harness_log(), "alloc_open\n"));
	assert_non_null(strstr(harness_log(), "dev size: 1048576\n"));
	status = shm_status(fixture);
	assert_true(S_ISREG(status.st_mode));
	assert_int_equal(status.st_mode & 0777, 0600);
	assert_int_equal(status.st_size, 1048576);
	assert_int_equal(status.st_blocks, 0);
	close_device(fixture);
}

static void test_open_refuses_bad_config(void **state)
{
	struct fixture *fixture = *state;

	fixture->dev.config = "../escape";
	assert_int_equal(fixture->handler->open(&fixture->dev), -EINVAL);
	assert_null(fixture->dev.private_data);
	assert_int_equal(access(fixture->shm_path, F_OK), -1);
	assert_int_equal(access("/tmp/escape", F_OK), -1);
}

static void test_config_names_the_memory(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	struct tcmu_device_change change = { .what = TCMU_CHANGE_CONFIG };
	char name[64], path[PATH_MAX];
	char written[4096], read_back[4096];
	struct stat status;

	snprintf(name, sizeof(name), "named_%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/%s", memory_directory, name);
	unlink(path);
	fixture->dev.config = name;
	open_device(fixture);
	assert_int_equal(access(fixture->shm_path, F_OK), -1);
	assert_int_equal(stat(path, &status), 0);
	assert_int_equal(status.st_mode & 0777, 0600);
	assert_int_equal(status.st_size, 16 * MIB);
	harness_pattern(written, sizeof(written), 9);
	assert_int_equal(harness_write(handler, &fixture->dev, 0, written, sizeof(written), 0), 0);

	/* The memory keeps its name: another name is refused, the same one taken. */
	change.config = "other_name";
	assert_int_equal(handler->reconfigure(&fixture->dev, &change), -EINVAL);
	assert_non_null(strstr(harness_log(), "keeps its name"));
	change.config = name;
	assert_int_equal(handler->reconfigure(&fixture->dev, &change), 0);
	close_device(fixture);

	open_device(fixture);
	assert_int_equal(harness_read(handler, &fixture->dev, 0, read_back, sizeof(read_back)), 0);
	assert_memory_equal(read_back, written, sizeof(written));
	close_device(fixture);
	handler->remove(&fixture->dev);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_moves_memory_of_the_old_location_once(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	char written[8192], read_back[8192];
	struct stat status;
	int fd;

	/* What an earlier version left: data at 1 MiB, holes elsewhere. */
	harness_pattern(written, sizeof(written), 13);
	fd = open(fixture->old_path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 16 * MIB), 0);
	assert_int_equal(pwrite(fd, written, sizeof(written), MIB), (ssize_t)sizeof(written));
	close(fd);

	open_device(fixture);
	assert_non_null(strstr(harness_log(), "moved to"));
	assert_int_equal(access(fixture->old_path, F_OK), -1);
	status = shm_status(fixture);
	assert_int_equal(status.st_size, 16 * MIB);
	assert_true(status.st_blocks <= 64);
	assert_int_equal(harness_read(handler, &fixture->dev, MIB, read_back, sizeof(read_back)), 0);
	assert_memory_equal(read_back, written, sizeof(written));
	assert_int_equal(harness_read(handler, &fixture->dev, 0, read_back, sizeof(read_back)), 0);
	assert_true(harness_is_zero(read_back, sizeof(read_back)));
	close_device(fixture);

	/* Once moved, a file that appears in the old place again is not read. */
	fd = open(fixture->old_path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "junk", 4, MIB), 4);
	close(fd);
	open_device(fixture);
	assert_int_equal(harness_read(handler, &fixture->dev, MIB, read_back, sizeof(read_back)), 0);
	assert_memory_equal(read_back, written, sizeof(written));
	close_device(fixture);
	assert_int_equal(access(fixture->old_path, F_OK), 0);
}

static void test_old_location_file_open_to_others_is_not_read(void **state)
{
	struct fixture *fixture = *state;
	char read_back[4096];
	int fd;

	fd = open(fixture->old_path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0666), 0);
	assert_int_equal(pwrite(fd, "planted", 7, 0), 7);
	close(fd);

	open_device(fixture);
	assert_non_null(strstr(harness_log(), "left alone, not read"));
	assert_int_equal(harness_read(fixture->handler, &fixture->dev, 0, read_back,
				      sizeof(read_back)), 0);
	assert_true(harness_is_zero(read_back, sizeof(read_back)));
	assert_int_equal(access(fixture->old_path, F_OK), 0);
	close_device(fixture);
}

static void test_write_read_back(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	size_t length = 3 * 4096 + 512;
	char *written = malloc(length);
	char *read_back = malloc(length);
	uint64_t offsets[] = { 0, 5 * MIB + 512, fixture->dev.size - length };

	open_device(fixture);
	for (unsigned int i = 0; i < 3; i++) {
		harness_pattern(written, length, i + 1);
		assert_int_equal(harness_write(handler, &fixture->dev, offsets[i], written,
					       length, i == 2 ? TCMU_WRITE_FUA : 0), 0);
	}
	for (unsigned int i = 0; i < 3; i++) {
		harness_pattern(written, length, i + 1);
		memset(read_back, 0xa5, length);
		assert_int_equal(harness_read(handler, &fixture->dev, offsets[i], read_back,
					      length), 0);
		assert_memory_equal(read_back, written, length);
	}

	memset(read_back, 0xa5, length);
	assert_int_equal(harness_read(handler, &fixture->dev, 2 * MIB, read_back, length), 0);
	assert_true(harness_is_zero(read_back, length));
	assert_int_equal(harness_flush(handler, &fixture->dev), 0);

	close_device(fixture);
	free(written);
	free(read_back);
}

static void test_unmap_frees_memory_and_reads_zeros(void **state)
{
	struct fixture *fixture = *state;

	open_device(fixture);
	assert_int_equal(harness_check_unmap_middle(fixture->handler, &fixture->dev,
						    fixture->shm_path), 0);
	harness_expect_extent(fixture->handler, &fixture->dev, 512, 4096, true, 4096);
	close_device(fixture);
}

static void test_content_survives_restart_until_remove(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	char written[8192];
	char read_back[8192];

	open_device(fixture);
	harness_pattern(written, sizeof(written), 11);
	assert_int_equal(harness_write(handler, &fixture->dev, 4096, written,
				       sizeof(written), 0), 0);
	close_device(fixture);
	assert_null(fixture->dev.private_data);

	/* A new daemon: a fresh dlopen of the handler. */
	harness_unload();
	fixture->handler = handler = harness_load(HANDLER_ALLOC_PATH);
	open_device(fixture);
	assert_non_null(strstr(harness_log(), "re-attached"));
	assert_int_equal(harness_read(handler, &fixture->dev, 4096, read_back,
				      sizeof(read_back)), 0);
	assert_memory_equal(read_back, written, sizeof(written));
	close_device(fixture);

	assert_non_null(handler->remove);
	handler->remove(&fixture->dev);
	assert_int_equal(access(fixture->shm_path, F_OK), -1);
	assert_int_equal(errno, ENOENT);

	open_device(fixture);
	assert_int_equal(harness_read(handler, &fixture->dev, 4096, read_back,
				      sizeof(read_back)), 0);
	assert_true(harness_is_zero(read_back, sizeof(read_back)));
	close_device(fixture);
}

static void test_huge_device_costs_nothing_until_written(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	uint64_t size = 1024ull * 1024 * MIB;
	char *read_back = malloc(MIB);
	char written[4096];
	struct stat status;

	fixture->dev.size = size;
	open_device(fixture);
	assert_non_null(strstr(harness_log(), "dev size: 1099511627776\n"));
	for (uint64_t offset = 0; offset < size; offset += size / 8) {
		memset(read_back, 0xa5, MIB);
		assert_int_equal(harness_read(handler, &fixture->dev, offset, read_back, MIB), 0);
		assert_true(harness_is_zero(read_back, MIB));
	}
	assert_int_equal(harness_read(handler, &fixture->dev, size - MIB, read_back, MIB), 0);
	assert_true(harness_is_zero(read_back, MIB));
	status = shm_status(fixture);
	assert_int_equal(status.st_size, (off_t)size);
	assert_int_equal(status.st_blocks, 0);
	harness_expect_extent(fixture->handler, &fixture->dev, 0, size, false, size);

	harness_pattern(written, sizeof(written), 3);
	assert_int_equal(harness_write(handler, &fixture->dev, size - sizeof(written),
				       written, sizeof(written), 0), 0);
	status = shm_status(fixture);
	assert_true(status.st_blocks > 0);
	assert_true(status.st_blocks <= 64);
	assert_int_equal(harness_read(handler, &fixture->dev, size - sizeof(written),
				      read_back, sizeof(written)), 0);
	assert_memory_equal(read_back, written, sizeof(written));
	harness_expect_extent(fixture->handler, &fixture->dev, 0, size, false, size - sizeof(written));
	harness_expect_extent(fixture->handler, &fixture->dev, size - sizeof(written), sizeof(written), true, sizeof(written));

	close_device(fixture);
	free(read_back);
}

static void test_reconfigure(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	struct tcmu_device_change change = { 0 };
	char written[4096];
	char read_back[4096];

	fixture->dev.size = 4 * MIB;
	open_device(fixture);
	harness_pattern(written, sizeof(written), 5);
	assert_int_equal(harness_write(handler, &fixture->dev, 4 * MIB - sizeof(written),
				       written, sizeof(written), 0), 0);

	change.what = TCMU_CHANGE_SIZE;
	change.size = 8 * MIB;
	assert_int_equal(handler->reconfigure(&fixture->dev, &change), 0);
	fixture->dev.size = change.size;
	assert_int_equal(shm_status(fixture).st_size, 8 * MIB);
	assert_int_equal(harness_read(handler, &fixture->dev, 4 * MIB - sizeof(written),
				      read_back, sizeof(read_back)), 0);
	assert_memory_equal(read_back, written, sizeof(written));
	assert_int_equal(harness_read(handler, &fixture->dev, 8 * MIB - sizeof(read_back),
				      read_back, sizeof(read_back)), 0);
	assert_true(harness_is_zero(read_back, sizeof(read_back)));

	change.size = 4 * MIB;
	assert_int_equal(handler->reconfigure(&fixture->dev, &change), 0);
	fixture->dev.size = change.size;
	assert_int_equal(shm_status(fixture).st_size, 4 * MIB);
	assert_int_equal(harness_read(handler, &fixture->dev, 4 * MIB - sizeof(written),
				      read_back, sizeof(read_back)), 0);
	assert_memory_equal(read_back, written, sizeof(written));

	change.what = TCMU_CHANGE_CONFIG | TCMU_CHANGE_SIZE;
	change.config = "junk";
	change.size = 16 * MIB;
	assert_int_equal(handler->reconfigure(&fixture->dev, &change), -EINVAL);
	assert_int_equal(shm_status(fixture).st_size, 4 * MIB);

	change.what = TCMU_CHANGE_CONFIG | TCMU_CHANGE_WRITE_CACHE;
	change.config = "";
	change.write_cache = false;
	assert_int_equal(handler->reconfigure(&fixture->dev, &change), 0);

	close_device(fixture);
}

static void test_refuses_foreign_memory_file(void **state)
{
	struct fixture *fixture = *state;
	int fd;

	/* Readable by others: somebody else could see the disk's data. */
	fd = open(fixture->shm_path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0644), 0);
	close(fd);
	assert_int_equal(fixture->handler->open(&fixture->dev), -EPERM);
	assert_null(fixture->dev.private_data);
	unlink(fixture->shm_path);

	/* A planted symbolic link must not redirect the disk anywhere. */
	assert_int_equal(symlink("/etc/passwd", fixture->shm_path), 0);
	assert_true(fixture->handler->open(&fixture->dev) < 0);
	assert_null(fixture->dev.private_data);
	unlink(fixture->shm_path);

	/* A second link: the data is reachable under another name. */
	{
		char other[PATH_MAX + 8];

		snprintf(other, sizeof(other), "%s.link", fixture->shm_path);
		fd = open(fixture->shm_path, O_RDWR | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(link(fixture->shm_path, other), 0);
		assert_int_equal(fixture->handler->open(&fixture->dev), -EPERM);
		assert_non_null(strstr(harness_log(), "one link (2 links)"));
		assert_null(fixture->dev.private_data);
		unlink(other);
		unlink(fixture->shm_path);
	}
}

static void test_memory_directory_is_private(void **state)
{
	struct fixture *fixture = *state;
	struct stat status;

	/* Opened once per load: a fresh load finds the directory open to others. */
	harness_unload();
	assert_int_equal(chmod(memory_directory, 0755), 0);
	fixture->handler = harness_load(HANDLER_ALLOC_PATH);
	open_device(fixture);
	assert_int_equal(stat(memory_directory, &status), 0);
	assert_int_equal(status.st_mode & 0777, 0700);
	close_device(fixture);
}

static void test_one_user_at_a_time(void **state)
{
	struct fixture *fixture = *state;
	struct tcmu_device second = fixture->dev;

	open_device(fixture);
	second.private_data = NULL;
	assert_int_equal(fixture->handler->open(&second), -EBUSY);
	assert_null(second.private_data);
	close_device(fixture);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_load_and_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_logs_and_creates_private_file,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_bad_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_read_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unmap_frees_memory_and_reads_zeros,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_content_survives_restart_until_remove,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_device_costs_nothing_until_written,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconfigure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_foreign_memory_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_user_at_a_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_names_the_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_moves_memory_of_the_old_location_once,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_location_file_open_to_others_is_not_read,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_directory_is_private, setup, teardown),
	};
	int failures;

	if (!mkdtemp(memory_directory) ||
	    setenv("TCMU_ALLOC_DIRECTORY", memory_directory, 1) < 0)
		return 1;
	failures = cmocka_run_group_tests_name("handler_alloc", tests, NULL, NULL);
	rmdir(memory_directory);
	return failures;
}
