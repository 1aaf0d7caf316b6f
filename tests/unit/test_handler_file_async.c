/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file handler's asynchronous I/O on io_uring, dlopened from the build
 * tree: many requests in flight before any completes, cached reads completed
 * in the batch that submits them, flushes that wait for
 * the writes before them, write-through without a flush per write, reads
 * past the end of the file, a medium change with requests in flight, a
 * request queued outside a batch, asynchronous UNMAP, the file deleted
 * underneath, and the synchronous fallback that TCMU_FILE_SYNC_IO=1 forces.
 */
#include "file_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>

#define BLOCK 4096u
#define IN_FLIGHT 32u

/* Opens the device on io_uring: the handler says so and watches the ring and the file (inotify). */
static void open_async(struct fixture *fixture)
{
	harness_log_clear();
	assert_int_equal(fixture->handler->open(&fixture->dev), 0);
	assert_non_null(strstr(harness_log(), "asynchronous I/O on io_uring"));
	assert_int_equal(fixture->dev.watched_count, 2);
}

/* Starts a write of one block without waiting; it must not complete yet. */
static void start_write(struct fixture *fixture, struct tcmu_request *req, struct iovec *iov,
			uint64_t offset, uint32_t flags)
{
	*req = (struct tcmu_request){ 0 };
	assert_int_equal(fixture->handler->write(&fixture->dev, req, iov, 1, offset,
						 iov->iov_len, flags), 0);
}

/* Reaps until every request in reqs is completed once. */
static void wait_all(struct fixture *fixture, struct tcmu_request *reqs, unsigned int count)
{
	for (unsigned int i = 0; i < count; i++)
		assert_int_equal(harness_wait(fixture->handler, &fixture->dev, &reqs[i]), 0);
}

/*
 * Requests are taken without completing: none completes before batch_done
 * submits them together, then all end.
 */
static void test_many_in_flight(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	struct tcmu_request reqs[IN_FLIGHT];
	struct iovec iov[IN_FLIGHT];
	char *written = malloc(IN_FLIGHT * BLOCK);
	char *read_back = calloc(IN_FLIGHT, BLOCK);

	assert_non_null(written);
	assert_non_null(read_back);
	open_async(fixture);
	harness_pattern(written, IN_FLIGHT * BLOCK, 7);
	for (unsigned int i = 0; i < IN_FLIGHT; i++) {
		iov[i] = (struct iovec){ written + i * BLOCK, BLOCK };
		/* Scattered over the device, newest first. */
		start_write(fixture, &reqs[i], &iov[i], (uint64_t)(IN_FLIGHT - i) * 3 * BLOCK, 0);
	}
	for (unsigned int i = 0; i < IN_FLIGHT; i++)
		assert_int_equal(reqs[i].completions, 0);
	handler->batch_done(&fixture->dev);
	wait_all(fixture, reqs, IN_FLIGHT);

	for (unsigned int i = 0; i < IN_FLIGHT; i++) {
		iov[i] = (struct iovec){ read_back + i * BLOCK, BLOCK };
		reqs[i] = (struct tcmu_request){ 0 };
		assert_int_equal(handler->read(&fixture->dev, &reqs[i], &iov[i], 1,
					       (uint64_t)(IN_FLIGHT - i) * 3 * BLOCK, BLOCK), 0);
	}
	for (unsigned int i = 0; i < IN_FLIGHT; i++)
		assert_int_equal(reqs[i].completions, 0);
	handler->batch_done(&fixture->dev);
	wait_all(fixture, reqs, IN_FLIGHT);
	assert_memory_equal(read_back, written, IN_FLIGHT * BLOCK);
	close_device(fixture);
	free(written);
	free(read_back);
}

/*
 * A read the page cache serves completes inside the submission, so
 * batch_done completes it without waiting for the ring thread's next wake-up
 * by the io_uring (a command at queue depth 1 would pay that wake-up). The
 * page cache may refuse a read that must not block now and then (a page
 * under lock): one of a few attempts is enough.
 */
static void test_cached_read_completes_in_batch(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	char written[BLOCK];
	char read_back[BLOCK];
	struct iovec iov = { read_back, BLOCK };
	unsigned int in_batch = 0;

	open_async(fixture);
	harness_pattern(written, BLOCK, 15);
	assert_int_equal(harness_write(handler, &fixture->dev, 0, written, BLOCK, 0), 0);
	for (unsigned int attempt = 0; attempt < 8; attempt++) {
		struct tcmu_request req = { 0 };

		memset(read_back, 0, BLOCK);
		assert_int_equal(handler->read(&fixture->dev, &req, &iov, 1, 0, BLOCK), 0);
		assert_int_equal(req.completions, 0);
		handler->batch_done(&fixture->dev);
		if (req.completions == 1) {
			assert_int_equal(req.result, 0);
			assert_memory_equal(read_back, written, BLOCK);
			in_batch++;
		}
		assert_int_equal(harness_wait(handler, &fixture->dev, &req), 0);
	}
	assert_true(in_batch > 0);
	close_device(fixture);
}

/*
 * A flush queued behind writes still in flight completes after all of
 * them (the core's flush when the write cache goes off relies on it).
 */
static void test_flush_after_writes_in_flight(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	struct tcmu_request reqs[IN_FLIGHT];
	struct tcmu_request flush = { 0 };
	struct iovec iov[IN_FLIGHT];
	char *written = malloc(IN_FLIGHT * 16 * BLOCK);

	assert_non_null(written);
	open_async(fixture);
	harness_pattern(written, IN_FLIGHT * 16 * BLOCK, 8);
	for (unsigned int i = 0; i < IN_FLIGHT; i++) {
		iov[i] = (struct iovec){ written + i * 16 * BLOCK, 16 * BLOCK };
		start_write(fixture, &reqs[i], &iov[i], (uint64_t)i * 16 * BLOCK, 0);
	}
	assert_int_equal(handler->flush(&fixture->dev, &flush), 0);
	assert_int_equal(harness_wait(handler, &fixture->dev, &flush), 0);
	for (unsigned int i = 0; i < IN_FLIGHT; i++) {
		assert_int_equal(reqs[i].completions, 1);
		assert_int_equal(reqs[i].result, 0);
		assert_true(reqs[i].sequence < flush.sequence);
	}
	close_device(fixture);
	free(written);
}

/* Write-through and FUA writes are durable by themselves: no fdatasync per write. */
static void test_write_through_without_flush(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	char written[BLOCK];
	char read_back[BLOCK];
	unsigned int before;

	open_async(fixture);
	harness_pattern(written, sizeof(written), 9);
	before = __atomic_load_n(&fdatasync_calls, __ATOMIC_SEQ_CST);
	assert_int_equal(harness_write(handler, &fixture->dev, 0, written, sizeof(written),
				       TCMU_WRITE_FUA), 0);
	fixture->dev.write_cache = false;
	assert_int_equal(harness_write(handler, &fixture->dev, BLOCK, written, sizeof(written),
				       0), 0);
	assert_int_equal(__atomic_load_n(&fdatasync_calls, __ATOMIC_SEQ_CST), before);
	assert_int_equal(harness_read(handler, &fixture->dev, BLOCK, read_back,
				      sizeof(read_back)), 0);
	assert_memory_equal(read_back, written, sizeof(written));
	assert_int_equal(harness_flush(handler, &fixture->dev), 0);
	close_device(fixture);
}

/* A file shorter than the device (cut by someone else) reads as zeros past its end. */
static void test_read_past_end_of_file(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	char written[2 * BLOCK];
	char read_back[2 * BLOCK];
	int fd;

	open_async(fixture);
	harness_pattern(written, sizeof(written), 10);
	assert_int_equal(harness_write(handler, &fixture->dev, 0, written, sizeof(written), 0), 0);
	fd = open(fixture->path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, BLOCK + 100), 0);
	close(fd);
	memset(read_back, 0xa5, sizeof(read_back));
	assert_int_equal(harness_read(handler, &fixture->dev, 0, read_back, sizeof(read_back)), 0);
	assert_memory_equal(read_back, written, BLOCK + 100);
	assert_true(harness_is_zero(read_back + BLOCK + 100, BLOCK - 100));
	close_device(fixture);
}

/* Writes in flight during a medium change land in the old file; later ones in the new. */
static void test_medium_change_in_flight(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	struct tcmu_device_change change = { .what = TCMU_CHANGE_CONFIG };
	struct tcmu_request reqs[IN_FLIGHT];
	struct iovec iov[IN_FLIGHT];
	char *written = malloc(IN_FLIGHT * BLOCK);
	char *read_back = malloc(IN_FLIGHT * BLOCK);
	int fd;

	assert_non_null(written);
	assert_non_null(read_back);
	open_async(fixture);
	harness_pattern(written, IN_FLIGHT * BLOCK, 11);
	for (unsigned int i = 0; i < IN_FLIGHT; i++) {
		iov[i] = (struct iovec){ written + i * BLOCK, BLOCK };
		start_write(fixture, &reqs[i], &iov[i], (uint64_t)i * BLOCK, 0);
	}
	handler->batch_done(&fixture->dev);
	change.config = fixture->second_path;
	assert_int_equal(handler->reconfigure(&fixture->dev, &change), 0);
	wait_all(fixture, reqs, IN_FLIGHT);

	fd = open(fixture->path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, read_back, IN_FLIGHT * BLOCK, 0), IN_FLIGHT * BLOCK);
	close(fd);
	assert_memory_equal(read_back, written, IN_FLIGHT * BLOCK);
	/* The new file is empty and takes the next writes. */
	assert_int_equal(harness_read(handler, &fixture->dev, 0, read_back, BLOCK), 0);
	assert_true(harness_is_zero(read_back, BLOCK));
	assert_int_equal(harness_write(handler, &fixture->dev, 0, written, BLOCK, 0), 0);
	fd = open(fixture->second_path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, read_back, BLOCK, 0), BLOCK);
	close(fd);
	assert_memory_equal(read_back, written, BLOCK);
	close_device(fixture);
	free(written);
	free(read_back);
}

/*
 * UNMAPs are asynchronous too: many queued before any completes, the
 * holes punched (the file's blocks fall, the range reads zeros, the rest
 * stays), and without a write cache synced on the ring (no fdatasync call
 * on the ring thread).
 */
static void test_unmap_in_flight(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	struct tcmu_request reqs[IN_FLIGHT];
	const size_t length = IN_FLIGHT * 2 * 16 * BLOCK;
	char *written = malloc(length);
	char *read_back = malloc(length);
	struct stat before, after;
	unsigned int syncs;

	assert_non_null(written);
	assert_non_null(read_back);
	open_async(fixture);
	harness_pattern(written, length, 13);
	assert_int_equal(harness_write(handler, &fixture->dev, 0, written, length, 0), 0);
	assert_int_equal(harness_flush(handler, &fixture->dev), 0);
	assert_int_equal(stat(fixture->path, &before), 0);
	for (unsigned int round = 0; round < 2; round++) {
		/* The second round without a write cache: each unmap is durable. */
		fixture->dev.write_cache = round == 0;
		syncs = __atomic_load_n(&fdatasync_calls, __ATOMIC_SEQ_CST);
		for (unsigned int i = round; i < IN_FLIGHT * 2; i += 4) {
			struct tcmu_request *req = &reqs[i / 2];

			*req = (struct tcmu_request){ 0 };
			assert_int_equal(handler->unmap(&fixture->dev, req, (uint64_t)i * 16 * BLOCK,
							16 * BLOCK), 0);
		}
		for (unsigned int i = round; i < IN_FLIGHT * 2; i += 4)
			assert_int_equal(reqs[i / 2].completions, 0);
		handler->batch_done(&fixture->dev);
		for (unsigned int i = round; i < IN_FLIGHT * 2; i += 4)
			assert_int_equal(harness_wait(handler, &fixture->dev, &reqs[i / 2]), 0);
		assert_int_equal(__atomic_load_n(&fdatasync_calls, __ATOMIC_SEQ_CST), syncs);
	}
	assert_int_equal(stat(fixture->path, &after), 0);
	assert_true(after.st_blocks < before.st_blocks);
	assert_int_equal(after.st_size, before.st_size);
	assert_int_equal(harness_read(handler, &fixture->dev, 0, read_back, length), 0);
	for (unsigned int i = 0; i < IN_FLIGHT * 2; i++) {
		const char *block = read_back + (size_t)i * 16 * BLOCK;

		if (i % 4 < 2)
			assert_true(harness_is_zero(block, 16 * BLOCK));
		else
			assert_memory_equal(block, written + (size_t)i * 16 * BLOCK, 16 * BLOCK);
	}
	close_device(fixture);
	free(written);
	free(read_back);
}

/*
 * The file deleted while in use, asynchronous and synchronous: the ring
 * thread hears of it from the watched inotify fd, the device's state says
 * failed, and later writes, unmaps and flushes fail with EIO (their data
 * would vanish when the device closes) while reads go on. A medium change
 * makes the device open again.
 */
static void test_deleted_file(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	struct tcmu_device_change change = { .what = TCMU_CHANGE_CONFIG };
	char written[BLOCK];
	char read_back[BLOCK];

	for (unsigned int mode = 0; mode < 2; mode++) {
		assert_int_equal(setenv("TCMU_FILE_SYNC_IO", mode ? "1" : "0", 1), 0);
		fixture->dev.config = fixture->path;
		fixture->dev.state = TCMU_DEVICE_STATE_OPEN;
		assert_int_equal(handler->open(&fixture->dev), 0);
		harness_pattern(written, sizeof(written), 14 + mode);
		assert_int_equal(harness_write(handler, &fixture->dev, 0, written, BLOCK, 0), 0);
		assert_int_equal(unlink(fixture->path), 0);
		harness_serve_watched_fds(handler, &fixture->dev);
		assert_int_equal(fixture->dev.state, TCMU_DEVICE_STATE_FAILED);
		assert_string_equal(fixture->dev.state_reason, "backing file deleted");
		assert_non_null(strstr(harness_log(), "was deleted: writes fail"));

		assert_int_equal(harness_write(handler, &fixture->dev, BLOCK, written, BLOCK, 0),
				 -EIO);
		assert_int_equal(harness_unmap(handler, &fixture->dev, 0, BLOCK), -EIO);
		assert_int_equal(harness_flush(handler, &fixture->dev), -EIO);
		assert_int_equal(harness_read(handler, &fixture->dev, 0, read_back, BLOCK), 0);
		assert_memory_equal(read_back, written, BLOCK);

		change.config = fixture->second_path;
		assert_int_equal(handler->reconfigure(&fixture->dev, &change), 0);
		assert_int_equal(fixture->dev.state, TCMU_DEVICE_STATE_OPEN);
		assert_int_equal(harness_write(handler, &fixture->dev, BLOCK, written, BLOCK, 0), 0);
		assert_int_equal(harness_flush(handler, &fixture->dev), 0);
		close_device(fixture);
		assert_int_equal(unlink(fixture->second_path), 0);
	}
}

/* TCMU_FILE_SYNC_IO=1: no io_uring, every request completes before it returns. */
static void test_forced_synchronous_fallback(void **state)
{
	struct fixture *fixture = *state;
	const struct tcmu_handler *handler = fixture->handler;
	struct tcmu_request req = { 0 };
	char written[BLOCK];
	struct iovec iov = { written, sizeof(written) };

	assert_int_equal(setenv("TCMU_FILE_SYNC_IO", "1", 1), 0);
	harness_log_clear();
	assert_int_equal(handler->open(&fixture->dev), 0);
	assert_non_null(strstr(harness_log(), "synchronous I/O, one request at a time"));
	/* The file's deletion watch only. */
	assert_int_equal(fixture->dev.watched_count, 1);
	harness_pattern(written, sizeof(written), 12);
	assert_int_equal(handler->write(&fixture->dev, &req, &iov, 1, 0, sizeof(written), 0), 0);
	assert_int_equal(req.completions, 1);
	assert_int_equal(req.result, 0);
	handler->batch_done(&fixture->dev);
	close_device(fixture);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FILE_TEST(test_many_in_flight),
		FILE_TEST(test_cached_read_completes_in_batch),
		FILE_TEST(test_flush_after_writes_in_flight),
		FILE_TEST(test_write_through_without_flush),
		FILE_TEST(test_read_past_end_of_file),
		FILE_TEST(test_medium_change_in_flight),
		FILE_TEST(test_unmap_in_flight),
		FILE_TEST(test_deleted_file),
		FILE_TEST(test_forced_synchronous_fallback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
