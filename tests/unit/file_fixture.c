/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_fixture.c: the file handler's unit tests' device and scratch
 * directory (file_fixture.h).
 */
#include "file_fixture.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>

unsigned int fdatasync_calls;
unsigned int fstat_calls;

int fdatasync(int fd)
{
	__atomic_fetch_add(&fdatasync_calls, 1, __ATOMIC_SEQ_CST);
	return (int)syscall(SYS_fdatasync, fd);
}

int fstat(int fd, struct stat *status)
{
	__atomic_fetch_add(&fstat_calls, 1, __ATOMIC_SEQ_CST);
	return (int)syscall(SYS_fstat, fd, status);
}

int file_fixture_setup(void **state)
{
	struct fixture *fixture = calloc(1, sizeof(*fixture));

	assert_non_null(fixture);
	fixture->handler = harness_load(HANDLER_FILE_PATH);
	snprintf(fixture->directory, sizeof(fixture->directory), "/var/tmp/tcmu-file-test-XXXXXX");
	assert_non_null(mkdtemp(fixture->directory));
	snprintf(fixture->path, sizeof(fixture->path), "%s/disk.img", fixture->directory);
	snprintf(fixture->second_path, sizeof(fixture->second_path), "%s/second.img",
		 fixture->directory);
	fixture->dev = (struct tcmu_device){
		.name = "test_1",
		.subtype = "file",
		.backstore = "user_1/test_1",
		.config = fixture->path,
		.size = 16 * MIB,
		.block_size = 512,
		.write_cache = true,
	};
	*state = fixture;
	return 0;
}

int file_fixture_teardown(void **state)
{
	struct fixture *fixture = *state;
	char *command;

	if (fixture->mount_point) {
		umount2(fixture->mount_point, MNT_DETACH);
		free(fixture->mount_point);
	}
	assert_true(asprintf(&command, "rm -rf '%s'", fixture->directory) > 0);
	assert_int_equal(system(command), 0);
	free(command);
	harness_unload();
	unsetenv("TCMU_FILE_SYNC_IO");
	free(fixture);
	return 0;
}

char *in_directory(const struct fixture *fixture, const char *name)
{
	char *path;

	assert_true(asprintf(&path, "%s/%s", fixture->directory, name) > 0);
	return path;
}

void open_device(struct fixture *fixture)
{
	assert_int_equal(fixture->handler->open(&fixture->dev), 0);
	assert_non_null(fixture->dev.private_data);
}

void close_device(struct fixture *fixture)
{
	fixture->handler->close(&fixture->dev);
	assert_null(fixture->dev.private_data);
}

struct stat status_of(const char *path)
{
	struct stat status;

	assert_int_equal(stat(path, &status), 0);
	return status;
}
