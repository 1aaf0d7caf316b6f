/* SPDX-License-Identifier: Apache-2.0 */
/*
 * COMPARE AND WRITE done by the handler (tcmu_handler.compare_and_write):
 * the iovecs and arguments it gets, a miscompare it reports, the write
 * gate held around it, and -EOPNOTSUPP handing the command back to the
 * core's read, compare and write.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_fixture.h"

#define BLOCK 512

/* What the handler's compare_and_write got, and what it does next. */
static struct {
	unsigned int calls;
	uint8_t compared[4 * BLOCK];	/* compare_iov, gathered */
	uint8_t written[4 * BLOCK];	/* write_iov, gathered */
	size_t compare_count, write_count;
	uint64_t offset, length;
	uint32_t flags;
	int returned;		/* without taking the request */
	bool miscompare;	/* complete with tcmu_request_complete_miscompare */
	uint64_t miscompare_offset;
	int result;		/* else complete with it */
	bool defer;		/* keep the request in parked */
	struct tcmu_request *parked;
} op;

static size_t gather(uint8_t *into, const struct iovec *iov, size_t count)
{
	size_t total = 0;

	for (size_t i = 0; i < count; i++) {
		assert_true(total + iov[i].iov_len <= 4 * BLOCK);
		memcpy(into + total, iov[i].iov_base, iov[i].iov_len);
		total += iov[i].iov_len;
	}
	return total;
}

static int handler_compare_and_write(struct tcmu_device *dev, struct tcmu_request *req,
				     const struct iovec *compare_iov, size_t compare_count,
				     const struct iovec *write_iov, size_t write_count,
				     uint64_t offset, uint64_t length, uint32_t flags)
{
	assert_ptr_equal(dev, &fake.dev);
	op.calls++;
	assert_int_equal(gather(op.compared, compare_iov, compare_count), length);
	assert_int_equal(gather(op.written, write_iov, write_count), length);
	op.compare_count = compare_count;
	op.write_count = write_count;
	op.offset = offset;
	op.length = length;
	op.flags = flags;
	/* The core holds the write gate alone meanwhile. */
	assert_true(dev->scsi.exclusive_in_flight);
	if (op.returned)
		return op.returned;
	if (op.defer) {
		op.parked = req;
		return 0;
	}
	if (op.miscompare)
		tcmu_request_complete_miscompare(req, op.miscompare_offset);
	else
		tcmu_request_complete(req, op.result);
	return 0;
}

static int setup(void **state)
{
	fake_setup(state);
	memset(&op, 0, sizeof(op));
	fake.handler.compare_and_write = handler_compare_and_write;
	return 0;
}

/* The data-out in three pieces that do not fall on the verify/write boundary. */
static void test_handler_gets_both_halves(void **state)
{
	uint8_t cdb[16];
	uint8_t data[4 * BLOCK];

	(void)state;
	fill_pattern(data, sizeof(data), 9);
	fake_execute_split(compare_and_write_cdb(cdb, 100, 2, 0), 16, data, sizeof(data), 3);
	assert_good();
	assert_int_equal(op.calls, 1);
	assert_int_equal(op.offset, 100 * BLOCK);
	assert_int_equal(op.length, 2 * BLOCK);
	assert_memory_equal(op.compared, data, 2 * BLOCK);
	assert_memory_equal(op.written, data + 2 * BLOCK, 2 * BLOCK);
	assert_true(op.compare_count >= 2);	/* the pieces are passed in place */
	assert_int_equal(op.flags, 0);
	/* The core neither read nor wrote: the handler did it all. */
	assert_no_handler_call();
	assert_int_equal(fake.dev.scsi.writes_in_flight, 0);
	assert_false(fake.dev.scsi.exclusive_in_flight);

	/* FUA, or the write cache off, asks for a durable write. */
	fake_execute(compare_and_write_cdb(cdb, 0, 1, 0x08), 16, data, 2 * BLOCK);
	assert_good();
	assert_int_equal(op.flags, TCMU_WRITE_FUA);
	fake.dev.write_cache = false;
	fake_execute(compare_and_write_cdb(cdb, 0, 1, 0), 16, data, 2 * BLOCK);
	assert_good();
	assert_int_equal(op.flags, TCMU_WRITE_FUA);
	assert_int_equal(op.calls, 3);
}

static void test_miscompare_reaches_the_sense(void **state)
{
	uint8_t cdb[16];
	uint8_t data[4 * BLOCK] = { 0 };
	const uint8_t *sense = fake.completion.sense;

	(void)state;
	op.miscompare = true;
	op.miscompare_offset = BLOCK + 77;
	fake_execute(compare_and_write_cdb(cdb, 7, 2, 0), 16, data, sizeof(data));
	assert_check(SCSI_SENSE_MISCOMPARE, SCSI_ASC_MISCOMPARE_DURING_VERIFY);
	assert_int_equal(sense[0], 0xf0);	/* VALID: INFORMATION holds the offset */
	assert_int_equal(scsi_get_be32(sense + 3), BLOCK + 77);

	/* In descriptor format, the information descriptor carries it. */
	fake.dev.scsi.descriptor_sense = true;
	op.miscompare_offset = 3;
	fake_execute(compare_and_write_cdb(cdb, 7, 2, 0), 16, data, sizeof(data));
	assert_status(SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(sense[0], 0x72);
	assert_int_equal(sense[1], SCSI_SENSE_MISCOMPARE);
	assert_int_equal(sense[8], 0x00);	/* information descriptor */
	assert_int_equal(sense[10], 0x80);	/* VALID */
	assert_int_equal(scsi_get_be64(sense + 12), 3);
	assert_int_equal(fake.dev.scsi.writes_in_flight, 0);
	assert_false(fake.dev.scsi.exclusive_in_flight);
}

static void test_errors(void **state)
{
	uint8_t cdb[16];
	uint8_t data[2 * BLOCK] = { 0 };

	(void)state;
	/* Not taken: the core completes it with the error. */
	op.returned = -EIO;
	fake_execute(compare_and_write_cdb(cdb, 0, 1, 0), 16, data, sizeof(data));
	assert_check(SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_WRITE_ERROR);
	/* Taken, then failed. */
	op.returned = 0;
	op.result = -ENOSPC;
	fake_execute(compare_and_write_cdb(cdb, 0, 1, 0), 16, data, sizeof(data));
	assert_check(SCSI_SENSE_DATA_PROTECT, SCSI_ASC_SPACE_ALLOCATION_FAILED_WRITE_PROTECT);
	assert_no_handler_call();
	assert_false(fake.dev.scsi.exclusive_in_flight);
}

/* -EOPNOTSUPP: the core reads, compares and writes as for a handler without the op. */
static void test_not_supported_falls_back(void **state)
{
	uint8_t cdb[16];
	uint8_t data[4 * BLOCK];

	(void)state;
	op.returned = -EOPNOTSUPP;
	fill_pattern(fake.medium + 10 * BLOCK, 2 * BLOCK, 1);
	memcpy(data, fake.medium + 10 * BLOCK, 2 * BLOCK);
	fill_pattern(data + 2 * BLOCK, 2 * BLOCK, 200);
	fake_execute_split(compare_and_write_cdb(cdb, 10, 2, 0), 16, data, sizeof(data), 3);
	assert_good();
	assert_int_equal(op.calls, 1);
	assert_int_equal(fake.call_count, 2);
	assert_int_equal(fake.calls[0].op, 'r');
	assert_int_equal(fake.calls[1].op, 'w');
	assert_memory_equal(fake.medium + 10 * BLOCK, data + 2 * BLOCK, 2 * BLOCK);

	/* And the fallback's own miscompare: nothing written. */
	fake_execute(compare_and_write_cdb(cdb, 10, 2, 0), 16, data, sizeof(data));
	assert_check(SCSI_SENSE_MISCOMPARE, SCSI_ASC_MISCOMPARE_DURING_VERIFY);
	assert_int_equal(fake.call_count, 1);
	assert_false(fake.dev.scsi.exclusive_in_flight);
}

/* This daemon's writes to the device wait for the handler's compare_and_write. */
static void test_gate_held_around_the_op(void **state)
{
	struct tcmu_request caw, write;
	struct iovec caw_iov, write_iov;
	uint8_t caw_data[2 * BLOCK] = { 0 }, write_data[BLOCK];
	uint8_t write10[10] = { 0x2a, 0, 0, 0, 0, 50, 0, 0, 1, 0 };
	uint8_t cdb[16];

	(void)state;
	memset(write_data, 0x5a, sizeof(write_data));
	op.defer = true;
	fake_start(&caw, &caw_iov, compare_and_write_cdb(cdb, 50, 1, 0), 16, caw_data,
		   sizeof(caw_data));
	assert_non_null(op.parked);
	fake_start(&write, &write_iov, write10, sizeof(write10), write_data, sizeof(write_data));
	assert_no_handler_call();
	assert_null(fake_completion_of(&write));

	tcmu_request_complete(op.parked, 0);
	assert_int_equal(fake_completion_of(&caw)->status, SCSI_STATUS_GOOD);
	assert_int_equal(fake.call_count, 1);
	assert_int_equal(fake.calls[0].op, 'w');
	assert_int_equal(fake_completion_of(&write)->status, SCSI_STATUS_GOOD);
	assert_int_equal(fake.medium[50 * BLOCK], 0x5a);
	assert_int_equal(fake.dev.scsi.writes_in_flight, 0);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, fake_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_handler_gets_both_halves),
		TEST(test_miscompare_reaches_the_sense),
		TEST(test_errors),
		TEST(test_not_supported_falls_back),
		TEST(test_gate_held_around_the_op),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
