/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_fixture.h"

#define FAKE_SIZE (1024 * 1024)
#define FAKE_BLOCK_SIZE 512

struct fake fake;

void ring_complete_request(struct tcmu_request *req, uint8_t scsi_status,
			   const uint8_t *sense, size_t sense_length, uint32_t read_length)
{
	struct fake_completion *completion = NULL;

	assert_true(sense_length <= SCSI_SENSE_BUFFER_SIZE);
	assert_true(read_length <= req->data_length);
	for (unsigned int i = 0; i < fake.completion_count; i++)
		if (fake.completions[i].req == req)
			completion = &fake.completions[i];
	if (!completion) {
		assert_true(fake.completion_count < 16);
		completion = &fake.completions[fake.completion_count++];
		memset(completion, 0, sizeof(*completion));
		completion->req = req;
	}
	/* Exactly one completion per request. */
	assert_int_equal(completion->count, 0);
	completion->count++;
	completion->status = scsi_status;
	memset(completion->sense, 0, sizeof(completion->sense));
	if (sense_length)
		memcpy(completion->sense, sense, sense_length);
	completion->sense_length = sense_length;
	completion->read_length = read_length;
	fake.completion = *completion;
}

bool worker_defer(struct worker_task *task)
{
	if (!fake.on_worker)
		return false;
	task->next = NULL;
	if (fake.tasks_tail)
		fake.tasks_tail->next = task;
	else
		fake.tasks_head = task;
	fake.tasks_tail = task;
	return true;
}

unsigned int fake_worker_round(void)
{
	struct worker_task *task = fake.tasks_head;
	unsigned int count = 0;

	fake.tasks_head = NULL;
	fake.tasks_tail = NULL;
	while (task) {
		struct worker_task *next = task->next;

		task->run(task);
		task = next;
		count++;
	}
	return count;
}

const struct fake_completion *fake_completion_of(const struct tcmu_request *req)
{
	for (unsigned int i = 0; i < fake.completion_count; i++)
		if (fake.completions[i].req == req)
			return &fake.completions[i];
	return NULL;
}

static void record(char op, uint64_t offset, uint64_t length, uint32_t flags)
{
	if (fake.call_count < sizeof(fake.calls) / sizeof(fake.calls[0]))
		fake.calls[fake.call_count] = (struct fake_handler_call){ op, offset, length, flags };
	fake.call_count++;
}

static uint64_t iov_total(const struct iovec *iov, size_t iov_count)
{
	uint64_t total = 0;

	for (size_t i = 0; i < iov_count; i++)
		total += iov[i].iov_len;
	return total;
}

/* Takes or refuses a request the way a handler would. */
static int finish_op(struct tcmu_request *req)
{
	int result;

	if (fake.op_error) {
		result = fake.op_error;
		fake.op_error = 0;
		return result;
	}
	result = fake.complete_error;
	fake.complete_error = 0;
	if (fake.defer) {
		assert_true(fake.deferred_count < 8);
		fake.deferred[fake.deferred_count] = req;
		fake.deferred_results[fake.deferred_count++] = result;
		return 0;
	}
	tcmu_request_complete(req, result);
	return 0;
}

static int fake_read(struct tcmu_device *dev, struct tcmu_request *req,
		     const struct iovec *iov, size_t iov_count, uint64_t offset, uint64_t length)
{
	assert_ptr_equal(dev, &fake.dev);
	assert_int_equal(iov_total(iov, iov_count), length);
	assert_true(offset + length <= dev->size);
	record('r', offset, length, 0);
	if (!fake.op_error && !fake.complete_error) {
		for (size_t i = 0; i < iov_count; i++) {
			memcpy(iov[i].iov_base, fake.medium + offset, iov[i].iov_len);
			offset += iov[i].iov_len;
		}
	}
	return finish_op(req);
}

static int fake_write(struct tcmu_device *dev, struct tcmu_request *req,
		      const struct iovec *iov, size_t iov_count, uint64_t offset,
		      uint64_t length, uint32_t flags)
{
	assert_ptr_equal(dev, &fake.dev);
	assert_int_equal(iov_total(iov, iov_count), length);
	assert_true(offset + length <= dev->size);
	record('w', offset, length, flags);
	if (!fake.op_error && !fake.complete_error) {
		for (uint64_t block = offset / FAKE_BLOCK_SIZE; block < (offset + length) / FAKE_BLOCK_SIZE;
		     block++)
			fake.mapped[block] = true;
		for (size_t i = 0; i < iov_count; i++) {
			memcpy(fake.medium + offset, iov[i].iov_base, iov[i].iov_len);
			offset += iov[i].iov_len;
		}
	}
	return finish_op(req);
}

static int fake_flush(struct tcmu_device *dev, struct tcmu_request *req)
{
	assert_ptr_equal(dev, &fake.dev);
	record('f', 0, 0, 0);
	return finish_op(req);
}

static int fake_unmap(struct tcmu_device *dev, struct tcmu_request *req, uint64_t offset,
		      uint64_t length)
{
	assert_ptr_equal(dev, &fake.dev);
	assert_true(length > 0);
	assert_true(offset + length <= dev->size);
	record('u', offset, length, 0);
	if (!fake.op_error && !fake.complete_error) {
		memset(fake.medium + offset, 0, length);
		for (uint64_t block = offset / FAKE_BLOCK_SIZE; block < (offset + length) / FAKE_BLOCK_SIZE;
		     block++)
			fake.mapped[block] = false;
	}
	return finish_op(req);
}

static int fake_get_lba_status(struct tcmu_device *dev, uint64_t offset, uint64_t length,
			       bool *ret_mapped, uint64_t *ret_length)
{
	uint64_t block = offset / FAKE_BLOCK_SIZE;
	uint64_t same = 0;

	assert_ptr_equal(dev, &fake.dev);
	assert_true(length > 0 && offset + length <= dev->size);
	record('s', offset, length, 0);
	if (fake.op_error) {
		int result = fake.op_error;

		fake.op_error = 0;
		return result;
	}
	while (same < length && fake.mapped[block + same / FAKE_BLOCK_SIZE] == fake.mapped[block])
		same += FAKE_BLOCK_SIZE;
	*ret_mapped = fake.mapped[block];
	*ret_length = same < length ? same : length;
	return 0;
}

static int setup(bool with_unmap)
{
	memset(&fake, 0, sizeof(fake));
	fake.medium = calloc(1, FAKE_SIZE);
	assert_non_null(fake.medium);
	fake.handler.subtype = "fake";
	fake.handler.read = fake_read;
	fake.handler.write = fake_write;
	fake.handler.flush = fake_flush;
	if (with_unmap) {
		fake.handler.unmap = fake_unmap;
		fake.handler.get_lba_status = fake_get_lba_status;
	}
	fake.dev.name = "disk0";
	fake.dev.log_prefix = "fake/disk0";
	fake.dev.unit_serial = "0a1b2c3d-4e5f-6789-abcd-ef0123456789";
	fake.dev.handler = &fake.handler;
	fake.dev.size = FAKE_SIZE;
	fake.dev.block_size = FAKE_BLOCK_SIZE;
	fake.dev.max_sectors = 128;
	fake.dev.write_cache = true;
	scsi_device_init(&fake.dev);
	return 0;
}

int fake_setup(void **state)
{
	(void)state;
	return setup(true);
}

int fake_setup_no_unmap(void **state)
{
	(void)state;
	return setup(false);
}

int fake_teardown(void **state)
{
	(void)state;
	scsi_device_destroy(&fake.dev);
	free(fake.medium);
	fake.medium = NULL;
	return 0;
}

void fake_start(struct tcmu_request *req, struct iovec *iov, const uint8_t *cdb,
		size_t cdb_length, void *buffer, size_t length)
{
	assert_true(cdb_length <= TCMU_MAX_CDB_LENGTH);
	memset(req, 0, sizeof(*req));
	req->dev = &fake.dev;
	memcpy(req->cdb, cdb, cdb_length);
	req->cdb_length = (uint32_t)cdb_length;
	iov->iov_base = buffer;
	iov->iov_len = length;
	req->iov = iov;
	req->iov_count = length ? 1 : 0;
	req->data_length = length;
	scsi_execute(req);
}

static void start(const uint8_t *cdb, size_t cdb_length, void *buffer, size_t length,
		  unsigned int iov_count)
{
	size_t piece;

	assert_true(cdb_length <= TCMU_MAX_CDB_LENGTH);
	assert_true(iov_count >= 1 && iov_count <= 4);
	memset(&fake.req, 0, sizeof(fake.req));
	memset(&fake.completion, 0, sizeof(fake.completion));
	fake.completion_count = 0;
	fake.call_count = 0;
	fake.req.dev = &fake.dev;
	memcpy(fake.req.cdb, cdb, cdb_length);
	fake.req.cdb_length = (uint32_t)cdb_length;
	piece = length / iov_count;
	for (unsigned int i = 0; i < iov_count; i++) {
		fake.iov[i].iov_base = (uint8_t *)buffer + i * piece;
		fake.iov[i].iov_len = i + 1 == iov_count ? length - i * piece : piece;
	}
	fake.req.iov = fake.iov;
	fake.req.iov_count = length ? iov_count : 0;
	fake.req.data_length = length;
	scsi_execute(&fake.req);
}

void fake_execute_split(const uint8_t *cdb, size_t cdb_length, void *buffer, size_t length,
			unsigned int iov_count)
{
	start(cdb, cdb_length, buffer, length, iov_count);
	if (!fake.defer)
		assert_int_equal(fake.completion.count, 1);
}

void fake_execute(const uint8_t *cdb, size_t cdb_length, void *buffer, size_t length)
{
	fake_execute_split(cdb, cdb_length, buffer, length, 1);
}

void fake_release_deferred(void)
{
	unsigned int count = fake.deferred_count;

	fake.deferred_count = 0;
	fake.defer = false;
	for (unsigned int i = 0; i < count; i++)
		tcmu_request_complete(fake.deferred[i], fake.deferred_results[i]);
}

void fake_release_next(void)
{
	struct tcmu_request *req;
	int result;

	assert_true(fake.deferred_count > 0);
	req = fake.deferred[0];
	result = fake.deferred_results[0];
	fake.deferred_count--;
	memmove(fake.deferred, fake.deferred + 1, fake.deferred_count * sizeof(fake.deferred[0]));
	memmove(fake.deferred_results, fake.deferred_results + 1,
		fake.deferred_count * sizeof(fake.deferred_results[0]));
	tcmu_request_complete(req, result);
}

void fill_pattern(uint8_t *buffer, size_t length, uint8_t seed)
{
	for (size_t i = 0; i < length; i++)
		buffer[i] = (uint8_t)(seed + i * 31);
}

uint8_t *compare_and_write_cdb(uint8_t *cdb, uint64_t lba, uint8_t blocks, uint8_t flags)
{
	memset(cdb, 0, 16);
	cdb[0] = SCSI_OP_COMPARE_AND_WRITE;
	cdb[1] = flags;
	scsi_put_be64(cdb + 2, lba);
	cdb[13] = blocks;
	return cdb;
}

void assert_status(uint8_t status)
{
	assert_int_equal(fake.completion.count, 1);
	assert_int_equal(fake.completion.status, status);
}

void assert_good(void)
{
	assert_status(SCSI_STATUS_GOOD);
	assert_int_equal(fake.completion.sense_length, 0);
}

void assert_check(uint8_t sense_key, uint16_t asc_ascq)
{
	const uint8_t *sense = fake.completion.sense;

	assert_status(SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(fake.completion.sense_length, 18);
	assert_int_equal(sense[0] & 0x7f, 0x70);
	assert_int_equal(sense[2], sense_key);
	assert_int_equal(sense[7], 10);
	assert_int_equal(sense[12], asc_ascq >> 8);
	assert_int_equal(sense[13], asc_ascq & 0xff);
	assert_int_equal(fake.completion.read_length, 0);
}

static void assert_field(uint16_t asc_ascq, bool in_cdb, uint16_t byte, int bit)
{
	const uint8_t *sense = fake.completion.sense;
	uint8_t expected = 0x80 | (in_cdb ? 0x40 : 0);

	if (bit >= 0)
		expected |= 0x08 | (uint8_t)bit;
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, asc_ascq);
	assert_int_equal(sense[15], expected);
	assert_int_equal(sense[16], byte >> 8);
	assert_int_equal(sense[17], byte & 0xff);
}

void assert_invalid_cdb_field(uint16_t byte, int bit)
{
	assert_field(SCSI_ASC_INVALID_FIELD_IN_CDB, true, byte, bit);
}

void assert_invalid_parameter_field(uint16_t byte, int bit)
{
	assert_field(SCSI_ASC_INVALID_FIELD_IN_PARAMETER_LIST, false, byte, bit);
}

void assert_lba_out_of_range(uint64_t lba)
{
	const uint8_t *sense = fake.completion.sense;

	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	assert_int_equal(sense[0], 0xf0);	/* VALID */
	assert_int_equal(scsi_get_be32(sense + 3), lba);
	assert_int_equal(sense[15], 0);
}

void assert_no_handler_call(void)
{
	assert_int_equal(fake.call_count, 0);
}
