/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Dispatch, sense formats, TEST UNIT READY, START STOP UNIT, READ
 * CAPACITY and REQUEST SENSE.
 */
#include <errno.h>
#include <string.h>

#include "scsi_fixture.h"

static void test_unknown_opcode(void **state)
{
	uint8_t cdb[10] = { 0xc7 };
	uint8_t buffer[64];

	(void)state;
	memset(buffer, 0x5a, sizeof(buffer));
	EXECUTE(cdb, buffer, sizeof(buffer));
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_COMMAND_OPERATION_CODE);
	/* No field pointer for an unknown opcode. */
	assert_int_equal(fake.completion.sense[15], 0);
	assert_int_equal(fake.completion.sense[0], 0x70);
	assert_no_handler_call();
}

static void test_unknown_service_action(void **state)
{
	uint8_t cdb[16] = { 0x9e, 0x1f };
	uint8_t buffer[32];

	(void)state;
	EXECUTE(cdb, buffer, sizeof(buffer));
	assert_invalid_cdb_field(1, 4);
}

static void test_test_unit_ready(void **state)
{
	uint8_t tur[6] = { 0 };
	uint8_t tur_reserved[6] = { 0, 0, 0, 0x80, 0, 0 };

	(void)state;
	EXECUTE(tur, NULL, 0);
	assert_good();
	assert_no_handler_call();
	EXECUTE(tur_reserved, NULL, 0);
	assert_invalid_cdb_field(3, 7);
}

static void test_capacity_changed_unit_attention(void **state)
{
	uint8_t tur[6] = { 0 };
	uint8_t inquiry[6] = { 0x12, 0, 0, 0, 36, 0 };
	uint8_t buffer[36];

	(void)state;
	fake.dev.scsi.capacity_changed = true;
	/* INQUIRY neither reports nor clears it. */
	EXECUTE(inquiry, buffer, sizeof(buffer));
	assert_good();
	EXECUTE(tur, NULL, 0);
	assert_check(SCSI_SENSE_UNIT_ATTENTION, SCSI_ASC_CAPACITY_DATA_HAS_CHANGED);
	EXECUTE(tur, NULL, 0);
	assert_good();
}

static void test_descriptor_format_sense(void **state)
{
	uint8_t read10[10] = { 0x28, 0, 0, 0, 0x10, 0, 0, 0, 1, 0 };
	uint8_t inquiry_bad[6] = { 0x12, 0, 0x80, 0, 36, 0 };
	uint8_t buffer[512];
	const uint8_t *sense = fake.completion.sense;

	(void)state;
	fake.dev.scsi.descriptor_sense = true;
	EXECUTE(read10, buffer, sizeof(buffer));
	assert_status(SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(fake.completion.sense_length, 20);
	assert_int_equal(sense[0], 0x72);
	assert_int_equal(sense[1], SCSI_SENSE_ILLEGAL_REQUEST);
	assert_int_equal(sense[2], 0x21);
	assert_int_equal(sense[3], 0x00);
	assert_int_equal(sense[7], 12);
	/* Information descriptor: type 0, length 10, VALID, 8-byte LBA. */
	assert_int_equal(sense[8], 0x00);
	assert_int_equal(sense[9], 0x0a);
	assert_int_equal(sense[10], 0x80);
	assert_int_equal(scsi_get_be64(sense + 12), 0x1000);

	EXECUTE(inquiry_bad, buffer, 36);
	assert_int_equal(fake.completion.sense_length, 16);
	assert_int_equal(sense[0], 0x72);
	assert_int_equal(sense[2], 0x24);
	assert_int_equal(sense[7], 8);
	/* Sense key specific descriptor: type 2, length 6, SKSV C/D BPV bit 7, byte 2. */
	assert_int_equal(sense[8], 0x02);
	assert_int_equal(sense[9], 0x06);
	assert_int_equal(sense[12], 0x80 | 0x40 | 0x08 | 7);
	assert_int_equal(sense[13], 0);
	assert_int_equal(sense[14], 2);
}

static void test_sense_format_large_information(void **state)
{
	struct scsi_outcome outcome = scsi_lba_out_of_range(0x123456789ull);
	uint8_t sense[SCSI_SENSE_BUFFER_SIZE];

	(void)state;
	assert_int_equal(scsi_sense_format(&outcome, false, sense), 18);
	assert_int_equal(sense[0], 0x70);	/* does not fit: VALID 0 */
	assert_int_equal(scsi_get_be32(sense + 3), 0);
	assert_int_equal(scsi_sense_format(&outcome, true, sense), 20);
	assert_int_equal(scsi_get_be64(sense + 12), 0x123456789ull);
}

static void test_start_stop_unit(void **state)
{
	uint8_t stop[6] = { 0x1b, 0, 0, 0, 0x00, 0 };
	uint8_t stop_no_flush[6] = { 0x1b, 0, 0, 0, 0x04, 0 };
	uint8_t start[6] = { 0x1b, 0x01, 0, 0, 0x01, 0 };
	uint8_t eject[6] = { 0x1b, 0, 0, 0, 0x02, 0 };
	uint8_t power_condition[6] = { 0x1b, 0, 0, 0, 0x30, 0 };
	uint8_t modifier[6] = { 0x1b, 0, 0, 0x01, 0x01, 0 };
	uint8_t tur[6] = { 0 };
	uint8_t read10[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	uint8_t inquiry[6] = { 0x12, 0, 0, 0, 36, 0 };
	uint8_t request_sense[6] = { 0x03, 0, 0, 0, 18, 0 };
	uint8_t buffer[512];

	(void)state;
	EXECUTE(stop, NULL, 0);
	assert_good();
	assert_int_equal(fake.call_count, 1);
	assert_int_equal(fake.calls[0].op, 'f');
	EXECUTE(tur, NULL, 0);
	assert_check(SCSI_SENSE_NOT_READY, SCSI_ASC_NOT_READY_INITIALIZING_REQUIRED);
	EXECUTE(read10, buffer, sizeof(buffer));
	assert_check(SCSI_SENSE_NOT_READY, SCSI_ASC_NOT_READY_INITIALIZING_REQUIRED);
	assert_no_handler_call();
	EXECUTE(inquiry, buffer, 36);
	assert_good();
	EXECUTE(request_sense, buffer, 18);
	assert_good();
	assert_int_equal(buffer[2], SCSI_SENSE_NOT_READY);
	assert_int_equal(buffer[12], 0x04);
	assert_int_equal(buffer[13], 0x02);

	EXECUTE(start, NULL, 0);
	assert_good();
	EXECUTE(tur, NULL, 0);
	assert_good();

	EXECUTE(stop_no_flush, NULL, 0);
	assert_good();
	assert_no_handler_call();
	EXECUTE(tur, NULL, 0);
	assert_status(SCSI_STATUS_CHECK_CONDITION);
	EXECUTE(start, NULL, 0);
	assert_good();

	/* A failed flush leaves the unit started. */
	fake.complete_error = -EIO;
	EXECUTE(stop, NULL, 0);
	assert_check(SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_WRITE_ERROR);
	EXECUTE(tur, NULL, 0);
	assert_good();

	EXECUTE(eject, NULL, 0);
	assert_invalid_cdb_field(4, 1);
	EXECUTE(power_condition, NULL, 0);
	assert_invalid_cdb_field(4, 7);
	EXECUTE(modifier, NULL, 0);
	assert_invalid_cdb_field(3, 3);
}

static void test_read_capacity_10(void **state)
{
	uint8_t cdb[10] = { 0x25 };
	uint8_t lba_without_pmi[10] = { 0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0 };
	uint8_t lba_with_pmi[10] = { 0x25, 0, 0, 0, 0, 1, 0, 0, 1, 0 };
	uint8_t expected[8] = { 0, 0, 0x07, 0xff, 0, 0, 0x02, 0x00 };
	uint8_t buffer[8];

	(void)state;
	EXECUTE(cdb, buffer, sizeof(buffer));
	assert_good();
	assert_memory_equal(buffer, expected, 8);

	EXECUTE(lba_without_pmi, buffer, sizeof(buffer));
	assert_invalid_cdb_field(2, 7);
	EXECUTE(lba_with_pmi, buffer, sizeof(buffer));
	assert_good();

	/* More than 2^32 blocks: FFFFFFFFh sends the initiator to (16). */
	fake.dev.size = (1ull << 32) * 4096;
	fake.dev.block_size = 4096;
	EXECUTE(cdb, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(scsi_get_be32(buffer), 0xffffffff);
	assert_int_equal(scsi_get_be32(buffer + 4), 4096);

	fake.dev.size = (1ull << 32) * 4096 - 4096;
	EXECUTE(cdb, buffer, sizeof(buffer));
	assert_int_equal(scsi_get_be32(buffer), 0xfffffffe);
}

static void test_read_capacity_16(void **state)
{
	uint8_t cdb[16] = { 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0 };
	uint8_t short_allocation[16] = { 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0 };
	uint8_t reserved[16] = { 0x9e, 0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0 };
	uint8_t lba_without_pmi[16] = { 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 32, 0, 0 };
	uint8_t expected[32] = { 0, 0, 0, 0, 0, 0, 0x07, 0xff, 0, 0, 0x02, 0x00, 0, 0, 0xc0, 0 };
	uint8_t buffer[40];

	(void)state;
	memset(buffer, 0xaa, sizeof(buffer));
	EXECUTE(cdb, buffer, sizeof(buffer));
	assert_good();
	assert_memory_equal(buffer, expected, 32);
	/* Past the allocation length: zeroed, never stale. */
	assert_int_equal(buffer[39], 0);
	assert_int_equal(fake.completion.read_length, 32);

	memset(buffer, 0xaa, sizeof(buffer));
	EXECUTE(short_allocation, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 12);
	assert_memory_equal(buffer, expected, 12);
	assert_int_equal(buffer[12], 0);

	EXECUTE(reserved, buffer, sizeof(buffer));
	assert_invalid_cdb_field(1, 5);
	EXECUTE(lba_without_pmi, buffer, sizeof(buffer));
	assert_invalid_cdb_field(2, 7);
}

static void test_read_capacity_16_without_unmap(void **state)
{
	uint8_t cdb[16] = { 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0 };
	uint8_t buffer[32];

	(void)state;
	EXECUTE(cdb, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(buffer[14], 0);	/* no LBPME, no LBPRZ */
}

static void test_request_sense(void **state)
{
	uint8_t fixed[6] = { 0x03, 0, 0, 0, 252, 0 };
	uint8_t descriptor[6] = { 0x03, 0x01, 0, 0, 252, 0 };
	uint8_t truncated[6] = { 0x03, 0, 0, 0, 8, 0 };
	uint8_t reserved[6] = { 0x03, 0x02, 0, 0, 252, 0 };
	uint8_t tur[6] = { 0 };
	uint8_t buffer[252];

	(void)state;
	EXECUTE(fixed, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 18);
	assert_int_equal(buffer[0], 0x70);
	assert_int_equal(buffer[2], SCSI_SENSE_NO_SENSE);
	assert_int_equal(buffer[7], 10);
	assert_int_equal(buffer[12], 0);

	EXECUTE(descriptor, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 8);
	assert_int_equal(buffer[0], 0x72);
	assert_int_equal(buffer[1], 0);
	assert_int_equal(buffer[7], 0);

	/* A pending unit attention is reported once, then cleared. */
	fake.dev.scsi.capacity_changed = true;
	EXECUTE(truncated, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 8);
	assert_int_equal(buffer[2], SCSI_SENSE_UNIT_ATTENTION);
	assert_int_equal(buffer[8], 0);
	EXECUTE(tur, NULL, 0);
	assert_good();

	EXECUTE(reserved, buffer, sizeof(buffer));
	assert_invalid_cdb_field(1, 1);
}

static void test_format_unit(void **state)
{
	uint8_t plain[6] = { 0x04, 0, 0, 0, 0, 0 };
	uint8_t protection[6] = { 0x04, 0x40, 0, 0, 0, 0 };
	uint8_t with_data[6] = { 0x04, 0x10, 0, 0, 0, 0 };
	uint8_t with_long_data[6] = { 0x04, 0x30, 0, 0, 0, 0 };
	uint8_t header[8] = { 0 };

	(void)state;
	EXECUTE(plain, NULL, 0);
	assert_good();
	assert_no_handler_call();
	EXECUTE(protection, NULL, 0);
	assert_invalid_cdb_field(1, 6);
	EXECUTE(with_data, header, 4);
	assert_good();
	EXECUTE(with_long_data, header, 8);
	assert_good();
	EXECUTE(with_data, header, 2);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
	header[1] = 0x08;	/* IP */
	EXECUTE(with_data, header, 4);
	assert_invalid_parameter_field(1, 3);
	header[1] = 0;
	header[3] = 8;		/* a defect list */
	EXECUTE(with_data, header, 4);
	assert_invalid_parameter_field(2, 7);
	header[3] = 0;
	header[7] = 8;
	EXECUTE(with_long_data, header, 8);
	assert_invalid_parameter_field(4, 7);
	header[7] = 0;
	header[0] = 0x01;	/* protection field usage */
	EXECUTE(with_data, header, 4);
	assert_invalid_parameter_field(0, 2);
}

static void test_send_diagnostic(void **state)
{
	uint8_t self_test[6] = { 0x1d, 0x04, 0, 0, 0, 0 };
	uint8_t nothing[6] = { 0x1d, 0x10, 0, 0, 0, 0 };
	uint8_t background[6] = { 0x1d, 0x20, 0, 0, 0, 0 };
	uint8_t pages[6] = { 0x1d, 0x10, 0, 0, 4, 0 };
	uint8_t buffer[4] = { 0 };

	(void)state;
	EXECUTE(self_test, NULL, 0);
	assert_good();
	EXECUTE(nothing, NULL, 0);
	assert_good();
	EXECUTE(background, NULL, 0);
	assert_invalid_cdb_field(1, 5);
	EXECUTE(pages, buffer, sizeof(buffer));
	assert_invalid_cdb_field(3, 7);
}

static void test_errno_mapping(void **state)
{
	struct scsi_outcome outcome;

	(void)state;
	outcome = scsi_outcome_from_errno(0, true);
	assert_int_equal(outcome.status, SCSI_STATUS_GOOD);
	outcome = scsi_outcome_from_errno(-EIO, false);
	assert_int_equal(outcome.sense_key, SCSI_SENSE_MEDIUM_ERROR);
	assert_int_equal(outcome.asc_ascq, SCSI_ASC_UNRECOVERED_READ_ERROR);
	outcome = scsi_outcome_from_errno(-ENOSPC, true);
	assert_int_equal(outcome.sense_key, SCSI_SENSE_DATA_PROTECT);
	assert_int_equal(outcome.asc_ascq, 0x2707);
	outcome = scsi_outcome_from_errno(-ENOMEM, true);
	assert_int_equal(outcome.status, SCSI_STATUS_BUSY);
	outcome = scsi_outcome_from_errno(-ESHUTDOWN, true);
	assert_int_equal(outcome.sense_key, SCSI_SENSE_NOT_READY);
	assert_int_equal(outcome.asc_ascq, 0x040c);
	outcome = scsi_outcome_from_errno(-ENODEV, true);
	assert_int_equal(outcome.sense_key, SCSI_SENSE_HARDWARE_ERROR);
	assert_int_equal(outcome.asc_ascq, 0x4400);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, fake_setup, fake_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_unknown_opcode),
		TEST(test_unknown_service_action),
		TEST(test_test_unit_ready),
		TEST(test_capacity_changed_unit_attention),
		TEST(test_descriptor_format_sense),
		TEST(test_sense_format_large_information),
		TEST(test_start_stop_unit),
		TEST(test_read_capacity_10),
		TEST(test_read_capacity_16),
		cmocka_unit_test_setup_teardown(test_read_capacity_16_without_unmap,
						fake_setup_no_unmap, fake_teardown),
		TEST(test_request_sense),
		TEST(test_format_unit),
		TEST(test_send_diagnostic),
		TEST(test_errno_mapping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
