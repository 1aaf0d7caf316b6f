/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SCSI layer under real concurrency: a handler that completes from
 * worker threads (sometimes before its call returns), several initiator
 * threads issuing COMPARE AND WRITE increments of one counter while
 * others write and unmap around it. Every request must be answered once,
 * and no increment may be lost: a lost one means two compare-and-writes
 * overlapped, or a write slipped between a compare and its write.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "scsi_internal.h"

#define BLOCK 512
#define SIZE (1024 * 1024)
#define INCREMENTERS 3
#define INCREMENTS 150
#define WRITERS 2
#define WRITES 300
#define QUEUE 64

struct request {
	struct tcmu_request req;
	struct iovec iov;
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	unsigned int completions;
	uint8_t status;
	uint8_t sense_key;
};

static struct {
	struct tcmu_device dev;
	struct tcmu_handler handler;
	uint8_t medium[SIZE];
	pthread_mutex_t medium_lock;

	pthread_mutex_t queue_lock;
	pthread_cond_t queue_cond;
	struct tcmu_request *queue[QUEUE];
	unsigned int queue_length;
	bool stopping;
	pthread_t workers[2];
	unsigned int seed;
} fake;

void ring_complete_request(struct tcmu_request *req, uint8_t scsi_status,
			   const uint8_t *sense, size_t sense_length, uint32_t read_length)
{
	struct request *request = (struct request *)req;

	(void)read_length;
	pthread_mutex_lock(&request->lock);
	request->completions++;
	request->status = scsi_status;
	request->sense_key = sense_length >= 3 ? sense[2] & 0x0f : 0;
	pthread_cond_signal(&request->done_cond);
	pthread_mutex_unlock(&request->lock);
}

/* Ops complete on handler threads here, which are no ring workers: the loop goes on inline. */
bool worker_defer(struct worker_task *task)
{
	(void)task;
	return false;
}

static unsigned int random_below(unsigned int limit)
{
	return (unsigned int)rand_r(&fake.seed) % limit;
}

/* A third of the ops complete before returning, the rest on a worker. */
static int finish_op(struct tcmu_request *req)
{
	bool now;

	pthread_mutex_lock(&fake.queue_lock);
	now = random_below(3) == 0 || fake.queue_length == QUEUE;
	if (!now) {
		fake.queue[fake.queue_length++] = req;
		pthread_cond_signal(&fake.queue_cond);
	}
	pthread_mutex_unlock(&fake.queue_lock);
	if (now)
		tcmu_request_complete(req, 0);
	return 0;
}

static void *worker(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&fake.queue_lock);
	for (;;) {
		struct tcmu_request *req;
		unsigned int pick, delay;

		while (!fake.queue_length && !fake.stopping)
			pthread_cond_wait(&fake.queue_cond, &fake.queue_lock);
		if (!fake.queue_length)
			break;
		/* Out of order, as a real handler may. */
		pick = random_below(fake.queue_length);
		req = fake.queue[pick];
		fake.queue[pick] = fake.queue[--fake.queue_length];
		delay = random_below(50);
		pthread_mutex_unlock(&fake.queue_lock);
		usleep(delay);
		tcmu_request_complete(req, 0);
		pthread_mutex_lock(&fake.queue_lock);
	}
	pthread_mutex_unlock(&fake.queue_lock);
	return NULL;
}

static void copy_iov(const struct iovec *iov, size_t iov_count, uint64_t offset, bool to_medium)
{
	pthread_mutex_lock(&fake.medium_lock);
	for (size_t i = 0; i < iov_count; i++) {
		if (to_medium)
			memcpy(fake.medium + offset, iov[i].iov_base, iov[i].iov_len);
		else
			memcpy(iov[i].iov_base, fake.medium + offset, iov[i].iov_len);
		offset += iov[i].iov_len;
	}
	pthread_mutex_unlock(&fake.medium_lock);
}

static int fake_read(struct tcmu_device *dev, struct tcmu_request *req, const struct iovec *iov,
		     size_t iov_count, uint64_t offset, uint64_t length)
{
	(void)dev;
	(void)length;
	copy_iov(iov, iov_count, offset, false);
	return finish_op(req);
}

static int fake_write(struct tcmu_device *dev, struct tcmu_request *req, const struct iovec *iov,
		      size_t iov_count, uint64_t offset, uint64_t length, uint32_t flags)
{
	(void)dev;
	(void)length;
	(void)flags;
	copy_iov(iov, iov_count, offset, true);
	return finish_op(req);
}

static int fake_flush(struct tcmu_device *dev, struct tcmu_request *req)
{
	(void)dev;
	return finish_op(req);
}

static int fake_unmap(struct tcmu_device *dev, struct tcmu_request *req, uint64_t offset,
		      uint64_t length)
{
	(void)dev;
	pthread_mutex_lock(&fake.medium_lock);
	memset(fake.medium + offset, 0, length);
	pthread_mutex_unlock(&fake.medium_lock);
	return finish_op(req);
}

/* Runs one CDB and waits for its answer; returns the status. */
static uint8_t run(const uint8_t *cdb, size_t cdb_length, void *buffer, size_t length,
		   uint8_t *ret_sense_key)
{
	struct request request;
	uint8_t status;

	memset(&request, 0, sizeof(request));
	pthread_mutex_init(&request.lock, NULL);
	pthread_cond_init(&request.done_cond, NULL);
	request.req.dev = &fake.dev;
	memcpy(request.req.cdb, cdb, cdb_length);
	request.req.cdb_length = (uint32_t)cdb_length;
	request.iov.iov_base = buffer;
	request.iov.iov_len = length;
	request.req.iov = &request.iov;
	request.req.iov_count = length ? 1 : 0;
	request.req.data_length = length;
	scsi_execute(&request.req);

	pthread_mutex_lock(&request.lock);
	while (!request.completions)
		pthread_cond_wait(&request.done_cond, &request.lock);
	pthread_mutex_unlock(&request.lock);
	/* A second completion would come right after the first: give it time. */
	usleep(100);
	pthread_mutex_lock(&request.lock);
	if (request.completions != 1)
		abort();
	status = request.status;
	if (ret_sense_key)
		*ret_sense_key = request.sense_key;
	pthread_mutex_unlock(&request.lock);
	pthread_cond_destroy(&request.done_cond);
	pthread_mutex_destroy(&request.lock);
	return status;
}

/* Adds one to the counter in block 0 with READ then COMPARE AND WRITE, retrying on miscompare. */
static void *incrementer(void *result)
{
	unsigned int *successes = result;

	for (int i = 0; i < INCREMENTS; i++) {
		for (;;) {
			uint8_t read10[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
			uint8_t caw[16] = { 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0 };
			uint8_t data[2 * BLOCK] = { 0 };
			uint64_t value;
			uint8_t sense_key = 0;
			uint8_t status;

			if (run(read10, sizeof(read10), data, BLOCK, NULL) != SCSI_STATUS_GOOD)
				abort();
			memcpy(&value, data, sizeof(value));
			value++;
			memcpy(data + BLOCK, &value, sizeof(value));
			status = run(caw, sizeof(caw), data, sizeof(data), &sense_key);
			if (status == SCSI_STATUS_GOOD) {
				(*successes)++;
				break;
			}
			if (status != SCSI_STATUS_CHECK_CONDITION || sense_key != SCSI_SENSE_MISCOMPARE)
				abort();
		}
	}
	return NULL;
}

/* Writes, write-sames and unmaps of blocks 1 and up, and flushes. */
static void *writer(void *unused)
{
	unsigned int seed = (unsigned int)(uintptr_t)&seed;

	(void)unused;
	for (int i = 0; i < WRITES; i++) {
		uint8_t data[8 * BLOCK];
		uint8_t cdb[16] = { 0 };
		size_t cdb_length = 10, length = 0;
		uint32_t lba = 1 + (uint32_t)rand_r(&seed) % 1000;

		memset(data, i, sizeof(data));
		switch (rand_r(&seed) % 4) {
		case 0:
			cdb[0] = 0x2a;
			scsi_put_be32(cdb + 2, lba);
			cdb[8] = 8;
			length = sizeof(data);
			break;
		case 1:
			cdb[0] = 0x41;
			scsi_put_be32(cdb + 2, lba);
			cdb[8] = 16;
			length = BLOCK;
			break;
		case 2: {
			cdb[0] = 0x42;
			cdb[8] = 24;
			length = 24;
			memset(data, 0, 24);
			scsi_put_be16(data + 2, 16);
			scsi_put_be64(data + 8, lba);
			scsi_put_be32(data + 16, 4);
			break;
		}
		default:
			cdb[0] = 0x35;
			break;
		}
		if (run(cdb, cdb_length, data, length, NULL) != SCSI_STATUS_GOOD)
			abort();
	}
	return NULL;
}

static void test_compare_and_write_under_concurrency(void **state)
{
	pthread_t incrementers[INCREMENTERS], writers[WRITERS];
	unsigned int successes[INCREMENTERS] = { 0 };
	unsigned int total = 0;
	uint64_t counter;

	(void)state;
	for (int i = 0; i < INCREMENTERS; i++)
		assert_int_equal(pthread_create(&incrementers[i], NULL, incrementer, &successes[i]), 0);
	for (int i = 0; i < WRITERS; i++)
		assert_int_equal(pthread_create(&writers[i], NULL, writer, NULL), 0);
	for (int i = 0; i < INCREMENTERS; i++)
		pthread_join(incrementers[i], NULL);
	for (int i = 0; i < WRITERS; i++)
		pthread_join(writers[i], NULL);

	for (int i = 0; i < INCREMENTERS; i++)
		total += successes[i];
	memcpy(&counter, fake.medium, sizeof(counter));
	assert_int_equal(total, INCREMENTERS * INCREMENTS);
	assert_int_equal(counter, total);
	assert_int_equal(fake.dev.scsi.writes_in_flight, 0);
	assert_false(fake.dev.scsi.exclusive_in_flight);
	assert_null(fake.dev.scsi.gate_waiting_head);
}

static int setup(void **state)
{
	(void)state;
	memset(&fake, 0, sizeof(fake));
	fake.seed = 1;
	pthread_mutex_init(&fake.medium_lock, NULL);
	pthread_mutex_init(&fake.queue_lock, NULL);
	pthread_cond_init(&fake.queue_cond, NULL);
	fake.handler.read = fake_read;
	fake.handler.write = fake_write;
	fake.handler.flush = fake_flush;
	fake.handler.unmap = fake_unmap;
	fake.dev.handler = &fake.handler;
	fake.dev.name = "threads";
	fake.dev.size = SIZE;
	fake.dev.block_size = BLOCK;
	fake.dev.max_sectors = 128;
	fake.dev.write_cache = true;
	scsi_device_init(&fake.dev);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&fake.workers[i], NULL, worker, NULL), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pthread_mutex_lock(&fake.queue_lock);
	fake.stopping = true;
	pthread_cond_broadcast(&fake.queue_cond);
	pthread_mutex_unlock(&fake.queue_lock);
	for (int i = 0; i < 2; i++)
		pthread_join(fake.workers[i], NULL);
	scsi_device_destroy(&fake.dev);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_compare_and_write_under_concurrency, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
