/* SPDX-License-Identifier: Apache-2.0 */
/* READ, WRITE (6/10/12/16) and SYNCHRONIZE CACHE against the fake handler. */
#include <errno.h>
#include <string.h>

#include "scsi_fixture.h"

#define BLOCKS (1024 * 1024 / 512)

static void test_write10_then_read10(void **state)
{
	uint8_t out[4 * 512], in[4 * 512];
	uint8_t write10[10] = { 0x2a, 0, 0, 0, 0, 10, 0, 0, 4, 0 };
	uint8_t read10[10] = { 0x28, 0, 0, 0, 0, 10, 0, 0, 4, 0 };

	(void)state;
	fill_pattern(out, sizeof(out), 3);
	EXECUTE(write10, out, sizeof(out));
	assert_good();
	assert_int_equal(fake.call_count, 1);
	assert_int_equal(fake.calls[0].op, 'w');
	assert_int_equal(fake.calls[0].offset, 10 * 512);
	assert_int_equal(fake.calls[0].length, 4 * 512);
	assert_int_equal(fake.calls[0].flags, 0);
	assert_memory_equal(fake.medium + 10 * 512, out, sizeof(out));

	memset(in, 0xee, sizeof(in));
	fake_execute_split(read10, sizeof(read10), in, sizeof(in), 3);
	assert_good();
	assert_memory_equal(in, out, sizeof(in));
	assert_int_equal(fake.calls[0].op, 'r');
	assert_int_equal(fake.completion.read_length, sizeof(in));
}

static void test_read6_length_zero_means_256(void **state)
{
	static uint8_t in[256 * 512];
	uint8_t read6[6] = { 0x08, 0x00, 0x00, 0x05, 0x00, 0x00 };

	(void)state;
	fake.dev.max_sectors = 256;
	fill_pattern(fake.medium + 5 * 512, sizeof(in), 9);
	EXECUTE(read6, in, sizeof(in));
	assert_good();
	assert_int_equal(fake.calls[0].offset, 5 * 512);
	assert_int_equal(fake.calls[0].length, 256 * 512);
	assert_memory_equal(in, fake.medium + 5 * 512, sizeof(in));
}

static void test_read6_21_bit_lba(void **state)
{
	uint8_t in[512];
	/* Bits 7-5 of byte 1 are reserved; the LBA is 21 bits. */
	uint8_t read6[6] = { 0x08, 0x00, 0x07, 0xff, 0x01, 0x00 };
	uint8_t reserved[6] = { 0x08, 0x20, 0x00, 0x00, 0x01, 0x00 };

	(void)state;
	EXECUTE(read6, in, sizeof(in));
	assert_good();
	assert_int_equal(fake.calls[0].offset, 0x7ffull * 512);
	EXECUTE(reserved, in, sizeof(in));
	assert_invalid_cdb_field(1, 5);
	assert_no_handler_call();
}

static void test_write6_and_fua_off(void **state)
{
	uint8_t out[512];
	uint8_t write6[6] = { 0x0a, 0x00, 0x00, 0x02, 0x01, 0x00 };

	(void)state;
	fill_pattern(out, sizeof(out), 1);
	EXECUTE(write6, out, sizeof(out));
	assert_good();
	assert_int_equal(fake.calls[0].offset, 2 * 512);
	assert_int_equal(fake.calls[0].flags, 0);
	assert_memory_equal(fake.medium + 1024, out, sizeof(out));
}

static void test_write_fua_and_write_through(void **state)
{
	uint8_t out[512] = { 1 };
	uint8_t write16_fua[16] = { 0x8a, 0x08, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0 };
	uint8_t write12[12] = { 0xaa, 0x00, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0 };

	(void)state;
	EXECUTE(write16_fua, out, sizeof(out));
	assert_good();
	assert_int_equal(fake.calls[0].offset, 512);
	assert_int_equal(fake.calls[0].flags, TCMU_WRITE_FUA);

	/* With the write cache off, every write must be durable at GOOD. */
	fake.dev.write_cache = false;
	EXECUTE(write12, out, sizeof(out));
	assert_good();
	assert_int_equal(fake.calls[0].flags, TCMU_WRITE_FUA);
}

static void test_read12_and_read16(void **state)
{
	uint8_t in[2 * 512];
	uint8_t read12[12] = { 0xa8, 0x08, 0, 0, 0x07, 0xfe, 0, 0, 0, 2, 0, 0 };
	uint8_t read16[16] = { 0x88, 0x1a, 0, 0, 0, 0, 0, 0, 0x07, 0xfe, 0, 0, 0, 2, 0x1f, 0 };

	(void)state;
	fill_pattern(fake.medium + (BLOCKS - 2) * 512, sizeof(in), 5);
	EXECUTE(read12, in, sizeof(in));
	assert_good();
	assert_memory_equal(in, fake.medium + (BLOCKS - 2) * 512, sizeof(in));
	memset(in, 0, sizeof(in));
	EXECUTE(read16, in, sizeof(in));
	assert_good();
	assert_memory_equal(in, fake.medium + (BLOCKS - 2) * 512, sizeof(in));
}

static void test_lba_out_of_range(void **state)
{
	uint8_t in[2 * 512];
	uint8_t read10_last[10] = { 0x28, 0, 0, 0, 0x07, 0xff, 0, 0, 2, 0 };
	uint8_t read16_huge[16] = { 0x88, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				    0, 0, 0, 2, 0, 0 };
	uint8_t write10_past[10] = { 0x2a, 0, 0, 0, 0x08, 0x00, 0, 0, 1, 0 };
	uint8_t read10_zero_at_end[10] = { 0x28, 0, 0, 0, 0x08, 0x00, 0, 0, 0, 0 };
	uint8_t read10_zero_past[10] = { 0x28, 0, 0, 0, 0x08, 0x01, 0, 0, 0, 0 };

	(void)state;
	EXECUTE(read10_last, in, sizeof(in));
	assert_lba_out_of_range(BLOCKS - 1);
	assert_no_handler_call();

	/* LBA + length wraps around 2^64: still out of range. */
	EXECUTE(read16_huge, in, sizeof(in));
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	/* Fixed format cannot hold a 64-bit INFORMATION: VALID is 0. */
	assert_int_equal(fake.completion.sense[0], 0x70);
	assert_no_handler_call();

	EXECUTE(write10_past, in, 512);
	assert_lba_out_of_range(BLOCKS);
	assert_no_handler_call();

	/* No blocks is not an error, but the LBA still must exist. */
	EXECUTE(read10_zero_at_end, NULL, 0);
	assert_good();
	assert_no_handler_call();
	EXECUTE(read10_zero_past, NULL, 0);
	assert_lba_out_of_range(BLOCKS + 1);
}

static void test_transfer_length_checks(void **state)
{
	static uint8_t buffer[129 * 512];
	uint8_t read10_too_long[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 129, 0 };
	uint8_t write10_two[10] = { 0x2a, 0, 0, 0, 0, 0, 0, 0, 2, 0 };
	uint8_t read10_one[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0 };

	(void)state;
	/* Above the block limits page's MAXIMUM TRANSFER LENGTH. */
	EXECUTE(read10_too_long, buffer, sizeof(buffer));
	assert_invalid_cdb_field(7, 7);
	assert_no_handler_call();
	/* Too long and past the end: the end is reported. */
	read10_too_long[5] = 0xf0;
	read10_too_long[4] = 0x07;
	EXECUTE(read10_too_long, buffer, sizeof(buffer));
	assert_lba_out_of_range(0x7f0);

	/* The buffer is smaller than the CDB's transfer. */
	EXECUTE(write10_two, buffer, 512);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_COMMAND_IU);
	assert_no_handler_call();

	/* A larger buffer is cut to the transfer for the handler; the rest is zeroed. */
	memset(buffer, 0xaa, 3 * 512);
	memset(fake.medium, 0x55, 512);
	fake_execute_split(read10_one, sizeof(read10_one), buffer, 3 * 512, 2);
	assert_good();
	assert_int_equal(fake.calls[0].length, 512);
	assert_int_equal(fake.completion.read_length, 512);
	assert_int_equal(buffer[511], 0x55);
	assert_int_equal(buffer[512], 0);
	assert_int_equal(buffer[3 * 512 - 1], 0);
}

static void test_protection_and_reserved_bits(void **state)
{
	uint8_t in[512];
	uint8_t rdprotect[10] = { 0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0 };
	uint8_t obsolete[10] = { 0x28, 0x01, 0, 0, 0, 0, 0, 0, 1, 0 };
	uint8_t group_reserved[10] = { 0x2a, 0, 0, 0, 0, 0, 0x20, 0, 1, 0 };
	uint8_t naca[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0x04 };
	uint8_t vendor_control[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0xc0 };

	(void)state;
	EXECUTE(rdprotect, in, sizeof(in));
	assert_invalid_cdb_field(1, 5);
	EXECUTE(obsolete, in, sizeof(in));
	assert_invalid_cdb_field(1, 0);
	EXECUTE(group_reserved, in, sizeof(in));
	assert_invalid_cdb_field(6, 5);
	EXECUTE(naca, in, sizeof(in));
	assert_invalid_cdb_field(9, 2);
	assert_no_handler_call();
	EXECUTE(vendor_control, in, sizeof(in));
	assert_good();
}

static void test_handler_errors(void **state)
{
	uint8_t buffer[512];
	uint8_t read10[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	uint8_t write10[10] = { 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0 };

	(void)state;
	fake.complete_error = -EIO;
	EXECUTE(read10, buffer, sizeof(buffer));
	assert_check(SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_UNRECOVERED_READ_ERROR);

	fake.op_error = -EIO;
	EXECUTE(write10, buffer, sizeof(buffer));
	assert_check(SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_WRITE_ERROR);

	fake.complete_error = -ENOSPC;
	EXECUTE(write10, buffer, sizeof(buffer));
	assert_check(SCSI_SENSE_DATA_PROTECT, SCSI_ASC_SPACE_ALLOCATION_FAILED_WRITE_PROTECT);

	fake.op_error = -EROFS;
	EXECUTE(write10, buffer, sizeof(buffer));
	assert_check(SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);

	fake.complete_error = -EPERM;
	EXECUTE(write10, buffer, sizeof(buffer));
	assert_check(SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);

	fake.op_error = -ENOMEM;
	EXECUTE(read10, buffer, sizeof(buffer));
	assert_status(SCSI_STATUS_BUSY);
	assert_int_equal(fake.completion.sense_length, 0);

	fake.complete_error = -EAGAIN;
	EXECUTE(write10, buffer, sizeof(buffer));
	assert_status(SCSI_STATUS_BUSY);

	fake.complete_error = -EINVAL;
	EXECUTE(read10, buffer, sizeof(buffer));
	assert_check(SCSI_SENSE_HARDWARE_ERROR, SCSI_ASC_INTERNAL_TARGET_FAILURE);
	assert_int_equal(fake.completion.read_length, 0);
}

static void test_asynchronous_completion(void **state)
{
	uint8_t buffer[512];
	uint8_t write10[10] = { 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0 };

	(void)state;
	fake.defer = true;
	fake_execute(write10, sizeof(write10), buffer, sizeof(buffer));
	assert_int_equal(fake.completion.count, 0);
	assert_int_equal(fake.deferred_count, 1);
	fake_release_deferred();
	assert_good();
}

static void test_synchronize_cache(void **state)
{
	uint8_t sync10[10] = { 0x35, 0x02, 0, 0, 0, 0, 0, 0, 0, 0 };
	uint8_t sync16[16] = { 0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x10, 0, 0 };
	uint8_t sync10_past[10] = { 0x35, 0, 0, 0, 0x07, 0xff, 0, 0, 2, 0 };
	uint8_t sync10_reserved[10] = { 0x35, 0x04, 0, 0, 0, 0, 0, 0, 0, 0 };

	(void)state;
	EXECUTE(sync10, NULL, 0);
	assert_good();
	assert_int_equal(fake.call_count, 1);
	assert_int_equal(fake.calls[0].op, 'f');

	EXECUTE(sync16, NULL, 0);
	assert_good();
	assert_int_equal(fake.calls[0].op, 'f');

	EXECUTE(sync10_past, NULL, 0);
	assert_lba_out_of_range(BLOCKS - 1);
	assert_no_handler_call();

	EXECUTE(sync10_reserved, NULL, 0);
	assert_invalid_cdb_field(1, 2);

	/* GOOD only after a flush that worked. */
	fake.complete_error = -EIO;
	EXECUTE(sync10, NULL, 0);
	assert_check(SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_WRITE_ERROR);

	fake.defer = true;
	fake_execute(sync10, sizeof(sync10), NULL, 0);
	assert_int_equal(fake.completion.count, 0);
	fake_release_deferred();
	assert_good();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write10_then_read10, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_read6_length_zero_means_256, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_read6_21_bit_lba, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_write6_and_fua_off, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_write_fua_and_write_through, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_read12_and_read16, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_lba_out_of_range, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_transfer_length_checks, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_protection_and_reserved_bits, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_handler_errors, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_asynchronous_completion, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_synchronize_cache, fake_setup, fake_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
