/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_fixture.h: one file device of handler_file.so in a scratch
 * directory, shared by the file handler's unit tests (test_handler_file*.c).
 */
#ifndef FILE_FIXTURE_H
#define FILE_FIXTURE_H

#include <sys/stat.h>

#include "handler_harness.h"

#define MIB (1024u * 1024u)

struct fixture {
	const struct tcmu_handler *handler;
	struct tcmu_device dev;
	/* Under /var/tmp, not /dev/shm: hole punching and st_blocks of a disk file system. */
	char directory[64];
	char path[128];		/* the device's file, directory/disk.img */
	char second_path[128];	/* directory/second.img, for medium changes */
	/* A file system the test mounted, unmounted by teardown. */
	char *mount_point;
};

/*
 * The handler's fdatasync and fstat calls, and the test's own: the
 * executable's symbols come first when the handler's are bound.
 */
extern unsigned int fdatasync_calls;
extern unsigned int fstat_calls;

/* cmocka setup and teardown: a 16 MiB device user_1/test_1 with the write cache on. */
int file_fixture_setup(void **state);
int file_fixture_teardown(void **state);

#define FILE_TEST(test) \
	cmocka_unit_test_setup_teardown(test, file_fixture_setup, file_fixture_teardown)

/* A malloc'd path of name in the fixture's directory. */
char *in_directory(const struct fixture *fixture, const char *name);
void open_device(struct fixture *fixture);
void close_device(struct fixture *fixture);
struct stat status_of(const char *path);

#endif
