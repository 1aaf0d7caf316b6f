/* SPDX-License-Identifier: Apache-2.0 */
/* VERIFY, WRITE AND VERIFY, COMPARE AND WRITE, and the write gate. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_fixture.h"

#define BLOCK 512

static void assert_miscompare(uint64_t offset)
{
	const uint8_t *sense = fake.completion.sense;

	assert_check(SCSI_SENSE_MISCOMPARE, SCSI_ASC_MISCOMPARE_DURING_VERIFY);
	assert_int_equal(sense[0], 0xf0);	/* VALID */
	assert_int_equal(scsi_get_be32(sense + 3), offset);
}

static void test_verify_medium_only(void **state)
{
	uint8_t verify10[10] = { 0x2f, 0x00, 0, 0, 0, 4, 0, 0, 8, 0 };

	(void)state;
	EXECUTE(verify10, NULL, 0);
	assert_good();
	assert_int_equal(fake.call_count, 1);
	assert_int_equal(fake.calls[0].op, 'r');
	assert_int_equal(fake.calls[0].offset, 4 * BLOCK);
	assert_int_equal(fake.calls[0].length, 8 * BLOCK);

	fake.complete_error = -EIO;
	EXECUTE(verify10, NULL, 0);
	assert_check(SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_UNRECOVERED_READ_ERROR);
}

static void test_verify_byte_check(void **state)
{
	uint8_t data[3 * BLOCK];
	uint8_t verify16[16] = { 0x8f, 0x02, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0 };

	(void)state;
	fill_pattern(fake.medium + 7 * BLOCK, sizeof(data), 1);
	memcpy(data, fake.medium + 7 * BLOCK, sizeof(data));
	EXECUTE(verify16, data, sizeof(data));
	assert_good();
	assert_int_equal(fake.completion.read_length, 0);

	data[700] ^= 0x40;
	EXECUTE(verify16, data, sizeof(data));
	assert_miscompare(700);

	/* The data-out must hold every block. */
	EXECUTE(verify16, data, 2 * BLOCK);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_COMMAND_IU);
	assert_no_handler_call();
}

static void test_verify_one_block(void **state)
{
	uint8_t block[BLOCK];
	uint8_t verify12[12] = { 0xaf, 0x06, 0, 0, 0, 20, 0, 0, 0, 4, 0, 0 };

	(void)state;
	fill_pattern(block, sizeof(block), 9);
	for (int i = 0; i < 4; i++)
		memcpy(fake.medium + (20 + i) * BLOCK, block, BLOCK);
	EXECUTE(verify12, block, sizeof(block));
	assert_good();

	fake.medium[22 * BLOCK + 5] ^= 1;
	EXECUTE(verify12, block, sizeof(block));
	assert_miscompare(5);
}

static void test_verify_invalid(void **state)
{
	uint8_t reserved_bytchk[10] = { 0x2f, 0x04, 0, 0, 0, 0, 0, 0, 1, 0 };
	uint8_t vrprotect[10] = { 0x2f, 0x20, 0, 0, 0, 0, 0, 0, 1, 0 };
	uint8_t past_end[10] = { 0x2f, 0x00, 0, 0, 0x07, 0xff, 0, 0, 2, 0 };
	uint8_t nothing[16] = { 0x8f, 0x00, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0 };
	uint8_t too_long[10] = { 0x2f, 0x02, 0, 0, 0, 0, 0, 0, 129, 0 };

	(void)state;
	EXECUTE(reserved_bytchk, NULL, 0);
	assert_invalid_cdb_field(1, 2);
	EXECUTE(vrprotect, NULL, 0);
	assert_invalid_cdb_field(1, 5);
	EXECUTE(past_end, NULL, 0);
	assert_lba_out_of_range(2047);
	EXECUTE(nothing, NULL, 0);
	assert_good();
	assert_no_handler_call();
	EXECUTE(too_long, NULL, 0);
	assert_invalid_cdb_field(7, 7);
}

static void test_write_and_verify(void **state)
{
	uint8_t data[2 * BLOCK];
	uint8_t write_verify10[10] = { 0x2e, 0x02, 0, 0, 0, 30, 0, 0, 2, 0 };
	uint8_t write_verify16[16] = { 0x8e, 0x00, 0, 0, 0, 0, 0, 0, 0, 40, 0, 0, 0, 2, 0, 0 };
	uint8_t one_block_check[10] = { 0x2e, 0x06, 0, 0, 0, 30, 0, 0, 2, 0 };

	(void)state;
	fill_pattern(data, sizeof(data), 4);
	EXECUTE(write_verify10, data, sizeof(data));
	assert_good();
	assert_int_equal(fake.call_count, 2);
	assert_int_equal(fake.calls[0].op, 'w');
	assert_int_equal(fake.calls[0].offset, 30 * BLOCK);
	assert_int_equal(fake.calls[0].flags, TCMU_WRITE_FUA);
	assert_int_equal(fake.calls[1].op, 'r');
	assert_memory_equal(fake.medium + 30 * BLOCK, data, sizeof(data));

	EXECUTE(write_verify16, data, sizeof(data));
	assert_good();
	assert_memory_equal(fake.medium + 40 * BLOCK, data, sizeof(data));

	fake.complete_error = -ENOSPC;
	EXECUTE(write_verify16, data, sizeof(data));
	assert_check(SCSI_SENSE_DATA_PROTECT, SCSI_ASC_SPACE_ALLOCATION_FAILED_WRITE_PROTECT);
	assert_int_equal(fake.call_count, 1);

	EXECUTE(one_block_check, data, sizeof(data));
	assert_invalid_cdb_field(1, 2);
	assert_no_handler_call();
}

static void test_compare_and_write(void **state)
{
	uint8_t cdb[16];
	uint8_t data[4 * BLOCK];

	(void)state;
	fill_pattern(fake.medium + 100 * BLOCK, 2 * BLOCK, 2);
	memcpy(data, fake.medium + 100 * BLOCK, 2 * BLOCK);
	fill_pattern(data + 2 * BLOCK, 2 * BLOCK, 77);

	fake_execute(compare_and_write_cdb(cdb, 100, 2, 0), 16, data, sizeof(data));
	assert_good();
	assert_int_equal(fake.call_count, 2);
	assert_int_equal(fake.calls[0].op, 'r');
	assert_int_equal(fake.calls[1].op, 'w');
	assert_int_equal(fake.calls[1].offset, 100 * BLOCK);
	assert_int_equal(fake.calls[1].length, 2 * BLOCK);
	assert_int_equal(fake.calls[1].flags, 0);
	assert_memory_equal(fake.medium + 100 * BLOCK, data + 2 * BLOCK, 2 * BLOCK);

	/* The medium now holds the write data: the old verify data miscompares at byte 0. */
	fake_execute(compare_and_write_cdb(cdb, 100, 2, 0x08), 16, data, sizeof(data));
	assert_miscompare(0);
	assert_int_equal(fake.call_count, 1);
	assert_memory_equal(fake.medium + 100 * BLOCK, data + 2 * BLOCK, 2 * BLOCK);

	memcpy(data, data + 2 * BLOCK, 2 * BLOCK);
	data[BLOCK + 3] ^= 0xff;
	fake_execute(compare_and_write_cdb(cdb, 100, 2, 0x08), 16, data, sizeof(data));
	assert_miscompare(BLOCK + 3);

	data[BLOCK + 3] ^= 0xff;
	fake_execute(compare_and_write_cdb(cdb, 100, 2, 0x08), 16, data, sizeof(data));
	assert_good();
	assert_int_equal(fake.calls[1].flags, TCMU_WRITE_FUA);
}

static void test_compare_and_write_invalid(void **state)
{
	uint8_t cdb[16];
	uint8_t data[2 * 65 * BLOCK];

	(void)state;
	memset(data, 0, sizeof(data));
	/* Zero blocks: nothing to do, not an error. */
	fake_execute(compare_and_write_cdb(cdb, 5, 0, 0), 16, NULL, 0);
	assert_good();
	assert_no_handler_call();
	/* The block limits page says 64 (half of 128). */
	fake_execute(compare_and_write_cdb(cdb, 0, 65, 0), 16, data, sizeof(data));
	assert_invalid_cdb_field(13, 7);
	fake_execute(compare_and_write_cdb(cdb, 2047, 2, 0), 16, data, 4 * BLOCK);
	assert_lba_out_of_range(2047);
	fake_execute(compare_and_write_cdb(cdb, 0, 2, 0), 16, data, 3 * BLOCK);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_COMMAND_IU);
	fake_execute(compare_and_write_cdb(cdb, 0, 1, 0x20), 16, data, 2 * BLOCK);
	assert_invalid_cdb_field(1, 5);
	cdb[1] = 0;
	cdb[10] = 1;
	fake_execute(cdb, 16, data, 2 * BLOCK);
	assert_invalid_cdb_field(10, 0);
	assert_no_handler_call();

	/* The gate was left on every path: a plain write still runs. */
	{
		uint8_t write10[10] = { 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0 };

		EXECUTE(write10, data, BLOCK);
		assert_good();
	}
}

/*
 * A write in flight holds COMPARE AND WRITE back; writes arriving after it
 * wait for it. The handler sees write A, then the compare-and-write's read
 * and write, then write C.
 */
static void test_compare_and_write_is_atomic(void **state)
{
	struct tcmu_request a, b, c;
	struct iovec iov_a, iov_b, iov_c;
	uint8_t data_a[BLOCK], data_b[2 * BLOCK], data_c[BLOCK];
	uint8_t write10[10] = { 0x2a, 0, 0, 0, 0, 50, 0, 0, 1, 0 };
	uint8_t cdb[16];

	(void)state;
	memset(data_a, 0x11, sizeof(data_a));
	memset(data_b, 0x11, BLOCK);		/* what A will have written */
	memset(data_b + BLOCK, 0x22, BLOCK);
	memset(data_c, 0x33, sizeof(data_c));
	fake.call_count = 0;
	fake.defer = true;

	fake_start(&a, &iov_a, write10, sizeof(write10), data_a, sizeof(data_a));
	assert_int_equal(fake.call_count, 1);
	fake_start(&b, &iov_b, compare_and_write_cdb(cdb, 50, 1, 0), 16, data_b, sizeof(data_b));
	assert_int_equal(fake.call_count, 1);
	fake_start(&c, &iov_c, write10, sizeof(write10), data_c, sizeof(data_c));
	assert_int_equal(fake.call_count, 1);

	fake_release_next();	/* A completes: the compare-and-write reads */
	assert_non_null(fake_completion_of(&a));
	assert_int_equal(fake.call_count, 2);
	assert_int_equal(fake.calls[1].op, 'r');
	fake_release_next();	/* read done, it compares equal and writes */
	assert_int_equal(fake.call_count, 3);
	assert_int_equal(fake.calls[2].op, 'w');
	assert_null(fake_completion_of(&c));
	fake_release_next();	/* B done: C goes */
	assert_int_equal(fake_completion_of(&b)->status, SCSI_STATUS_GOOD);
	assert_int_equal(fake.call_count, 4);
	assert_int_equal(fake.calls[3].op, 'w');
	fake_release_next();
	assert_int_equal(fake_completion_of(&c)->status, SCSI_STATUS_GOOD);
	assert_int_equal(fake.medium[50 * BLOCK], 0x33);
	assert_int_equal(fake.dev.scsi.writes_in_flight, 0);
	assert_false(fake.dev.scsi.exclusive_in_flight);
}

/* Reads are not held back by the gate. */
static void test_reads_pass_the_gate(void **state)
{
	struct tcmu_request a, b, c;
	struct iovec iov_a, iov_b, iov_c;
	uint8_t data_a[2 * BLOCK], data_b[BLOCK], data_c[BLOCK];
	uint8_t write10[10] = { 0x2a, 0, 0, 0, 0, 60, 0, 0, 1, 0 };
	uint8_t read10[10] = { 0x28, 0, 0, 0, 0, 60, 0, 0, 1, 0 };
	uint8_t cdb[16];

	(void)state;
	memset(data_a, 0, sizeof(data_a));
	fake.call_count = 0;
	fake.defer = true;
	fake_start(&a, &iov_a, compare_and_write_cdb(cdb, 60, 1, 0), 16, data_a, sizeof(data_a));
	fake_start(&b, &iov_b, write10, sizeof(write10), data_b, sizeof(data_b));
	fake_start(&c, &iov_c, read10, sizeof(read10), data_c, sizeof(data_c));
	assert_int_equal(fake.call_count, 2);	/* CAW's read and the READ */
	assert_int_equal(fake.calls[1].op, 'r');
	fake_release_deferred();
	assert_non_null(fake_completion_of(&a));
	assert_non_null(fake_completion_of(&b));
	assert_non_null(fake_completion_of(&c));
}

/*
 * SBC-4: MAXIMUM TRANSFER LENGTH bounds VERIFY whatever BYTCHK says, so a
 * check of the medium alone cannot read a whole large LUN in one command.
 */
static void test_verify_medium_only_is_limited(void **state)
{
	uint8_t verify16[16] = { 0x8f, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 129, 0, 0 };
	uint8_t verify10[10] = { 0x2f, 0x00, 0, 0, 0, 0, 0, 0, 128, 0 };

	(void)state;
	EXECUTE(verify16, NULL, 0);
	assert_invalid_cdb_field(10, 7);
	assert_no_handler_call();
	EXECUTE(verify10, NULL, 0);
	assert_good();
}

/*
 * On a ring worker, a VERIFY of several chunks reads one chunk per round
 * of the worker: it completes only after the last round, and a command
 * that arrives meanwhile on the same device is answered at once. The
 * handler completes each read before its call returns; the loop still
 * issues the next read from the worker's round, not from inside the call.
 */
static void test_verify_gives_way_between_chunks(void **state)
{
	const uint32_t blocks = 5000;	/* 2048 + 2048 + 904 blocks of 1 MiB chunks */
	uint8_t verify16[16] = { 0x8f, 0x00 };
	uint8_t read10[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	struct tcmu_request verify, read;
	struct iovec verify_iov, read_iov;
	uint8_t block[BLOCK];

	(void)state;
	free(fake.medium);
	fake.medium = calloc(1, (size_t)blocks * BLOCK);
	assert_non_null(fake.medium);
	fake.dev.size = (uint64_t)blocks * BLOCK;
	fake.dev.max_sectors = blocks;
	scsi_put_be32(verify16 + 10, blocks);
	fake.on_worker = true;

	fake_start(&verify, &verify_iov, verify16, sizeof(verify16), NULL, 0);
	assert_int_equal(fake.call_count, 1);
	assert_null(fake_completion_of(&verify));

	fake_start(&read, &read_iov, read10, sizeof(read10), block, sizeof(block));
	assert_non_null(fake_completion_of(&read));
	assert_int_equal(fake.call_count, 2);

	assert_int_equal(fake_worker_round(), 1);
	assert_int_equal(fake.call_count, 3);
	assert_int_equal(fake.calls[2].offset, 2048 * BLOCK);
	assert_null(fake_completion_of(&verify));
	assert_int_equal(fake_worker_round(), 1);
	assert_int_equal(fake.call_count, 4);
	assert_int_equal(fake.calls[3].length, 904 * BLOCK);
	assert_null(fake_completion_of(&verify));
	assert_int_equal(fake_worker_round(), 1);
	assert_non_null(fake_completion_of(&verify));
	assert_int_equal(fake_completion_of(&verify)->status, SCSI_STATUS_GOOD);
	assert_int_equal(fake_worker_round(), 0);
	assert_int_equal(fake.call_count, 4);
}

/* A read that fails mid-way ends the command at that chunk, on the worker too. */
static void test_verify_chunk_error_on_worker(void **state)
{
	const uint32_t blocks = 4096;
	uint8_t verify16[16] = { 0x8f, 0x00 };
	struct tcmu_request verify;
	struct iovec verify_iov;
	const struct fake_completion *completion;

	(void)state;
	free(fake.medium);
	fake.medium = calloc(1, (size_t)blocks * BLOCK);
	assert_non_null(fake.medium);
	fake.dev.size = (uint64_t)blocks * BLOCK;
	fake.dev.max_sectors = blocks;
	scsi_put_be32(verify16 + 10, blocks);
	fake.on_worker = true;

	fake_start(&verify, &verify_iov, verify16, sizeof(verify16), NULL, 0);
	fake.complete_error = -EIO;
	assert_int_equal(fake_worker_round(), 1);
	completion = fake_completion_of(&verify);
	assert_non_null(completion);
	assert_int_equal(completion->status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(completion->sense[2] & 0x0f, SCSI_SENSE_MEDIUM_ERROR);
	assert_int_equal(fake.call_count, 2);
	assert_int_equal(fake_worker_round(), 0);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, fake_setup, fake_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_verify_medium_only),
		TEST(test_verify_byte_check),
		TEST(test_verify_one_block),
		TEST(test_verify_invalid),
		TEST(test_write_and_verify),
		TEST(test_compare_and_write),
		TEST(test_compare_and_write_invalid),
		TEST(test_compare_and_write_is_atomic),
		TEST(test_reads_pass_the_gate),
		TEST(test_verify_medium_only_is_limited),
		TEST(test_verify_gives_way_between_chunks),
		TEST(test_verify_chunk_error_on_worker),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
