/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file handler's storage cases, dlopened from the build tree: a full
 * file system, the file deleted underneath, hole punching, medium changes
 * (also under I/O) and a block device as the backing store.
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

/* A full file system fails writes with -ENOSPC, and they work again once space is freed. */
static void test_full_file_system(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	size_t length = 2 * MIB;
	char *written = malloc(length);
	char *read_back = malloc(length);
	char *path;

	fixture->mount_point = in_directory(fixture, "small");
	assert_int_equal(mkdir(fixture->mount_point, 0700), 0);
	if (mount("tmpfs", fixture->mount_point, "tmpfs", 0, "size=1m") < 0) {
		free(fixture->mount_point);
		fixture->mount_point = NULL;
		free(written);
		free(read_back);
		skip();
	}
	path = in_directory(fixture, "small/disk.img");
	fixture->dev.config = path;
	fixture->dev.size = 4 * MIB;
	open_device(fixture);

	harness_pattern(written, length, 60);
	assert_int_equal(harness_write(handler, &fixture->dev, 0, written, length, 0), -ENOSPC);
	assert_int_equal(harness_read(handler, &fixture->dev, 3 * MIB, read_back, MIB), 0);
	assert_true(harness_is_zero(read_back, MIB));

	assert_int_equal(harness_unmap(handler, &fixture->dev, 0, 4 * MIB), 0);
	assert_int_equal(harness_write(handler, &fixture->dev, MIB, written, MIB / 2,
				       TCMU_WRITE_FUA), 0);
	assert_int_equal(harness_read(handler, &fixture->dev, MIB, read_back, MIB / 2), 0);
	assert_memory_equal(read_back, written, MIB / 2);
	assert_int_equal(harness_flush(handler, &fixture->dev), 0);
	close_device(fixture);
	free(path);
	free(written);
	free(read_back);
}

/*
 * Deleted while in use: once the ring thread hears of it (the watched
 * inotify fd), reads go on but nothing is written any more, durable or not:
 * it would vanish when the device closes. Writes look at a flag only.
 */
static void test_deleted_file_fails_durable_requests(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	char *second_path = in_directory(fixture, "second.img");
	struct tcmu_device_change change = { .what = TCMU_CHANGE_CONFIG };
	char written[4096];
	char read_back[4096];

	open_device(fixture);
	harness_pattern(written, sizeof(written), 50);
	assert_int_equal(harness_write(handler, &fixture->dev, 0, written, sizeof(written), 0), 0);
	assert_int_equal(unlink(fixture->path), 0);
	harness_serve_watched_fds(handler, &fixture->dev);
	assert_int_equal(fixture->dev.state, TCMU_DEVICE_STATE_FAILED);

	assert_int_equal(harness_read(handler, &fixture->dev, 0, read_back, sizeof(read_back)), 0);
	assert_memory_equal(read_back, written, sizeof(written));
	fstat_calls = 0;
	assert_int_equal(harness_write(handler, &fixture->dev, 0, written, sizeof(written), 0),
			 -EIO);
	fixture->dev.write_cache = false;
	assert_int_equal(harness_write(handler, &fixture->dev, 0, written, sizeof(written), 0),
			 -EIO);
	assert_int_equal(fstat_calls, 0);
	assert_int_equal(harness_flush(handler, &fixture->dev), -EIO);
	fixture->dev.write_cache = true;
	assert_int_equal(harness_flush(handler, &fixture->dev), -EIO);
	assert_int_equal(harness_write(handler, &fixture->dev, 0, written, sizeof(written),
				       TCMU_WRITE_FUA), -EIO);

	/* A new medium starts clean. */
	change.config = second_path;
	assert_int_equal(handler->reconfigure(&fixture->dev, &change), 0);
	assert_int_equal(harness_write(handler, &fixture->dev, 0, written, sizeof(written),
				       TCMU_WRITE_FUA), 0);
	assert_int_equal(harness_flush(handler, &fixture->dev), 0);
	close_device(fixture);
	free(second_path);
}

static void test_unmap_punches_holes(void **state)
{
	struct fixture *fixture = *state;
	int result;

	open_device(fixture);
	result = harness_check_unmap_middle(fixture->handler, &fixture->dev, fixture->path);
	if (result == -EOPNOTSUPP) {
		close_device(fixture);
		skip();
	}
	assert_int_equal(result, 0);
	harness_expect_extent(fixture->handler, &fixture->dev, MIB + 4096, 8192, false, 8192);
	close_device(fixture);
}

static void test_reconfigure_size(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	struct tcmu_device_change change = { .what = TCMU_CHANGE_SIZE };
	char *any_size_config = NULL;
	char written[4096];
	char read_back[4096];

	open_device(fixture);
	harness_pattern(written, sizeof(written), 12);
	assert_int_equal(harness_write(handler, &fixture->dev, 16 * MIB - sizeof(written),
				       written, sizeof(written), 0), 0);

	change.size = 64 * MIB;
	assert_int_equal(handler->reconfigure(&fixture->dev, &change), 0);
	fixture->dev.size = change.size;
	assert_int_equal(status_of(fixture->path).st_size, 64 * MIB);
	assert_int_equal(harness_read(handler, &fixture->dev, 16 * MIB - sizeof(written),
				      read_back, sizeof(read_back)), 0);
	assert_memory_equal(read_back, written, sizeof(written));
	assert_int_equal(harness_read(handler, &fixture->dev, 64 * MIB - sizeof(read_back),
				      read_back, sizeof(read_back)), 0);
	assert_true(harness_is_zero(read_back, sizeof(read_back)));

	/* A smaller device would leave a larger file, refused at the next open: only when asked... */
	change.size = 8 * MIB;
	assert_int_equal(handler->reconfigure(&fixture->dev, &change), -EINVAL);
	assert_non_null(strstr(harness_log(), "never shrunk"));
	/* ...and then the device uses the head of the file, which keeps its data. */
	assert_true(asprintf(&any_size_config, "any_size:%s", fixture->path) > 0);
	change.what = TCMU_CHANGE_SIZE | TCMU_CHANGE_CONFIG;
	change.config = any_size_config;
	assert_int_equal(handler->reconfigure(&fixture->dev, &change), 0);
	fixture->dev.size = change.size;
	fixture->dev.config = any_size_config;
	assert_int_equal(status_of(fixture->path).st_size, 64 * MIB);

	change.what = TCMU_CHANGE_WRITE_CACHE;
	change.write_cache = false;
	assert_int_equal(handler->reconfigure(&fixture->dev, &change), 0);
	close_device(fixture);
	free(any_size_config);
}

static void test_reconfigure_switches_file(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	char *second_path = in_directory(fixture, "second.img");
	char *missing_directory = in_directory(fixture, "missing/x.img");
	struct tcmu_device_change change = { 0 };
	char first_data[4096];
	char second_data[4096];
	char read_back[4096];

	open_device(fixture);
	harness_pattern(first_data, sizeof(first_data), 30);
	harness_pattern(second_data, sizeof(second_data), 31);
	assert_int_equal(harness_write(handler, &fixture->dev, 0, first_data,
				       sizeof(first_data), 0), 0);

	/* A new file that cannot be opened: refused, the old one stays. */
	change.what = TCMU_CHANGE_CONFIG;
	change.config = missing_directory;
	assert_true(handler->reconfigure(&fixture->dev, &change) < 0);
	assert_int_equal(harness_read(handler, &fixture->dev, 0, read_back,
				      sizeof(read_back)), 0);
	assert_memory_equal(read_back, first_data, sizeof(first_data));

	/* The same file again is not a switch (and does not trip over its own lock). */
	change.config = fixture->path;
	assert_int_equal(handler->reconfigure(&fixture->dev, &change), 0);

	change.what = TCMU_CHANGE_CONFIG | TCMU_CHANGE_SIZE;
	change.config = second_path;
	change.size = 32 * MIB;
	assert_int_equal(handler->reconfigure(&fixture->dev, &change), 0);
	fixture->dev.size = change.size;
	assert_int_equal(status_of(second_path).st_size, 32 * MIB);
	assert_int_equal(harness_read(handler, &fixture->dev, 0, read_back,
				      sizeof(read_back)), 0);
	assert_true(harness_is_zero(read_back, sizeof(read_back)));
	assert_int_equal(harness_write(handler, &fixture->dev, 0, second_data,
				       sizeof(second_data), TCMU_WRITE_FUA), 0);
	close_device(fixture);

	/* Each file holds its own data; the old one is no longer locked. */
	fixture->dev.config = fixture->path;
	fixture->dev.size = 16 * MIB;
	open_device(fixture);
	assert_int_equal(harness_read(handler, &fixture->dev, 0, read_back,
				      sizeof(read_back)), 0);
	assert_memory_equal(read_back, first_data, sizeof(first_data));
	close_device(fixture);
	fixture->dev.config = second_path;
	fixture->dev.size = 32 * MIB;
	open_device(fixture);
	assert_int_equal(harness_read(handler, &fixture->dev, 0, read_back,
				      sizeof(read_back)), 0);
	assert_memory_equal(read_back, second_data, sizeof(second_data));
	close_device(fixture);

	free(second_path);
	free(missing_directory);
}

/*
 * Attaches backing to a free loop device that goes away when its last user
 * closes it. Returns an open fd of the loop device and its path in
 * ret_path, or -1 when this machine has no loop devices for us.
 */
static int loop_attach(const char *backing, char *ret_path, size_t path_size)
{
	int control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	int backing_fd = open(backing, O_RDWR | O_CLOEXEC);
	int loop_fd = -1;

	for (int tries = 0; control >= 0 && backing_fd >= 0 && tries < 10; tries++) {
		struct loop_config config = {
			.fd = (uint32_t)backing_fd,
			.info.lo_flags = LO_FLAGS_AUTOCLEAR,
		};
		int number = ioctl(control, LOOP_CTL_GET_FREE);

		if (number < 0)
			break;
		snprintf(ret_path, path_size, "/dev/loop%d", number);
		loop_fd = open(ret_path, O_RDWR | O_CLOEXEC);
		if (loop_fd >= 0 && ioctl(loop_fd, LOOP_CONFIGURE, &config) == 0)
			break;
		/* Taken by somebody else between GET_FREE and CONFIGURE: next one. */
		if (loop_fd >= 0)
			close(loop_fd);
		loop_fd = -1;
	}
	if (control >= 0)
		close(control);
	if (backing_fd >= 0)
		close(backing_fd);
	return loop_fd;
}

static void test_block_device(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	char *backing = in_directory(fixture, "backing.img");
	char written[8192];
	char read_back[8192];
	char loop_path[64];
	char *reason = NULL;
	bool mapped = false;
	uint64_t extent_length = 0;
	int loop_fd;
	int result;
	int fd;

	fd = open(backing, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 16 * MIB), 0);
	close(fd);
	loop_fd = geteuid() == 0 ? loop_attach(backing, loop_path, sizeof(loop_path)) : -1;
	free(backing);
	if (loop_fd < 0)
		skip();

	assert_int_equal(handler->check_config(loop_path, &reason), 0);
	assert_null(reason);
	fixture->dev.config = loop_path;

	/* Block devices cannot grow: one too small is refused. */
	fixture->dev.size = 32 * MIB;
	assert_int_equal(handler->open(&fixture->dev), -ENOSPC);
	assert_null(fixture->dev.private_data);

	fixture->dev.size = 16 * MIB;
	/* Claimed by somebody else (as a mount does): refused. */
	fd = open(loop_path, O_RDONLY | O_EXCL | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(handler->open(&fixture->dev), -EBUSY);
	assert_non_null(strstr(harness_log(), "in use"));
	close(fd);

	open_device(fixture);
	/* And now ours: nobody else can claim it. */
	assert_int_equal(open(loop_path, O_RDONLY | O_EXCL | O_CLOEXEC), -1);
	assert_int_equal(errno, EBUSY);
	harness_pattern(written, sizeof(written), 40);
	assert_int_equal(harness_write(handler, &fixture->dev, 16 * MIB - sizeof(written),
				       written, sizeof(written), TCMU_WRITE_FUA), 0);
	assert_int_equal(harness_flush(handler, &fixture->dev), 0);
	assert_int_equal(harness_read(handler, &fixture->dev, 16 * MIB - sizeof(written),
				      read_back, sizeof(read_back)), 0);
	assert_memory_equal(read_back, written, sizeof(written));
	assert_int_equal(handler->get_lba_status(&fixture->dev, 0, 16 * MIB, &mapped,
						 &extent_length), 0);
	assert_true(extent_length > 0 && extent_length <= 16 * MIB);

	result = harness_unmap(handler, &fixture->dev, 16 * MIB - sizeof(written),
			       sizeof(written));
	assert_true(result == 0 || result == -EOPNOTSUPP);
	if (result == 0) {
		assert_int_equal(harness_read(handler, &fixture->dev, 16 * MIB - sizeof(written),
					      read_back, sizeof(read_back)), 0);
		assert_true(harness_is_zero(read_back, sizeof(read_back)));
	}
	close_device(fixture);
	close(loop_fd);
}

struct io_thread {
	struct fixture *fixture;
	bool *stop;
	unsigned int seed;
	unsigned int requests;
	int first_error;
};

static void *io_thread_run(void *argument)
{
	struct io_thread *thread = argument;
	const struct tcmu_handler *handler = thread->fixture->handler;
	char buffer[16384];

	while (!__atomic_load_n(thread->stop, __ATOMIC_SEQ_CST) && thread->first_error == 0) {
		uint64_t offset = (uint64_t)(thread->requests * 7919u + thread->seed * 104729u) %
				  (8 * MIB / sizeof(buffer)) * sizeof(buffer);
		int result;

		harness_pattern(buffer, sizeof(buffer), thread->seed + thread->requests);
		result = harness_write(handler, &thread->fixture->dev, offset, buffer,
				       sizeof(buffer), thread->requests % 8 == 0 ? TCMU_WRITE_FUA : 0);
		if (result == 0)
			result = harness_read(handler, &thread->fixture->dev, offset, buffer,
					      sizeof(buffer));
		if (result == 0 && thread->requests % 16 == 0)
			result = harness_flush(handler, &thread->fixture->dev);
		if (result == 0 && thread->requests % 32 == 0)
			result = harness_unmap(handler, &thread->fixture->dev, offset, sizeof(buffer));
		thread->first_error = result;
		thread->requests++;
	}
	return NULL;
}

/*
 * Requests never meet a file being switched away by the main thread. They
 * come from the device's one ring thread, as the core makes them; the
 * synchronous path, which holds no state of its own between requests, is
 * driven from four threads at once for a harsher test of the file switch.
 */
static void test_reconfigure_under_io(void **state)
{
	struct fixture *fixture = *state;
	const char *forced = getenv("TCMU_FILE_SYNC_IO");
	unsigned int thread_count = forced && strcmp(forced, "1") == 0 ? 4 : 1;
	char *paths[2];
	struct io_thread threads[4];
	pthread_t thread_ids[4];
	bool stop = false;

	/* Each switch comes with a new size: the files may have another. */
	assert_true(asprintf(&paths[0], "any_size:%s/a.img", fixture->directory) > 0);
	assert_true(asprintf(&paths[1], "any_size:%s/b.img", fixture->directory) > 0);
	fixture->dev.config = paths[0];
	open_device(fixture);
	for (unsigned int i = 0; i < thread_count; i++) {
		threads[i] = (struct io_thread){ .fixture = fixture, .stop = &stop, .seed = i };
		assert_int_equal(pthread_create(&thread_ids[i], NULL, io_thread_run, &threads[i]), 0);
	}
	for (unsigned int switches = 0; switches < 200; switches++) {
		struct tcmu_device_change change = {
			.what = TCMU_CHANGE_CONFIG | TCMU_CHANGE_SIZE,
			.config = paths[(switches + 1) % 2],
			.size = 16 * MIB + (switches % 3) * MIB,
		};

		assert_int_equal(fixture->handler->reconfigure(&fixture->dev, &change), 0);
	}
	__atomic_store_n(&stop, true, __ATOMIC_SEQ_CST);
	for (unsigned int i = 0; i < thread_count; i++) {
		assert_int_equal(pthread_join(thread_ids[i], NULL), 0);
		assert_int_equal(threads[i].first_error, 0);
		assert_true(threads[i].requests > 0);
	}
	close_device(fixture);
	free(paths[0]);
	free(paths[1]);
}

/* Thin provisioning only where holes can be punched; ramfs cannot. */
static void test_unmap_probed(void **state)
{
	struct fixture *fixture = *state;
	struct tcmu_device_change change = { .what = TCMU_CHANGE_CONFIG };
	char *path;

	open_device(fixture);
	assert_false(fixture->dev.unmap_unsupported);
	fixture->mount_point = in_directory(fixture, "ramfs");
	assert_int_equal(mkdir(fixture->mount_point, 0700), 0);
	if (geteuid() != 0 || mount("ramfs", fixture->mount_point, "ramfs", 0, NULL) < 0) {
		free(fixture->mount_point);
		fixture->mount_point = NULL;
		close_device(fixture);
		skip();
	}
	path = in_directory(fixture, "ramfs/disk.img");
	/* A medium change probes the new file... */
	change.config = path;
	assert_int_equal(fixture->handler->reconfigure(&fixture->dev, &change), 0);
	assert_true(fixture->dev.unmap_unsupported);
	assert_non_null(strstr(harness_log(), "cannot punch holes"));
	change.config = fixture->path;
	assert_int_equal(fixture->handler->reconfigure(&fixture->dev, &change), 0);
	assert_false(fixture->dev.unmap_unsupported);
	close_device(fixture);

	/* ...as open does. */
	fixture->dev.config = path;
	open_device(fixture);
	assert_true(fixture->dev.unmap_unsupported);
	close_device(fixture);
	free(path);
}

/*
 * Without a write cache the zeros of a punched hole are durable when UNMAP
 * completes: synchronous, by an fdatasync; asynchronous, by the io_uring's
 * own sync after the punch (no fdatasync on the ring thread).
 */
static void test_unmap_write_through_syncs(void **state)
{
	struct fixture *fixture = *state;
	const char *forced = getenv("TCMU_FILE_SYNC_IO");
	bool synchronous = forced && strcmp(forced, "1") == 0;
	unsigned int before;

	open_device(fixture);
	before = __atomic_load_n(&fdatasync_calls, __ATOMIC_SEQ_CST);
	assert_int_equal(harness_unmap(fixture->handler, &fixture->dev, 0, MIB), 0);
	assert_int_equal(__atomic_load_n(&fdatasync_calls, __ATOMIC_SEQ_CST), before);
	fixture->dev.write_cache = false;
	assert_int_equal(harness_unmap(fixture->handler, &fixture->dev, 0, MIB), 0);
	assert_int_equal(__atomic_load_n(&fdatasync_calls, __ATOMIC_SEQ_CST),
			 before + (synchronous ? 1 : 0));
	close_device(fixture);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FILE_TEST(test_full_file_system),
		FILE_TEST(test_deleted_file_fails_durable_requests),
		FILE_TEST(test_unmap_punches_holes),
		FILE_TEST(test_reconfigure_size),
		FILE_TEST(test_reconfigure_switches_file),
		FILE_TEST(test_reconfigure_under_io),
		FILE_TEST(test_block_device),
		FILE_TEST(test_unmap_probed),
		FILE_TEST(test_unmap_write_through_syncs),
	};

	return cmocka_run_group_tests_name("handler_file_storage", tests, NULL, NULL);
}
