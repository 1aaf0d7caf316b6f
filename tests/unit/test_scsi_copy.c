/* SPDX-License-Identifier: Apache-2.0 */
/* EXTENDED COPY (LID1) and RECEIVE COPY RESULTS. */
#include <errno.h>
#include <string.h>

#include "scsi_fixture.h"

#define BLOCK 512

struct segment {
	uint16_t source, destination;
	uint16_t blocks;
	uint64_t source_lba, destination_lba;
};

/* An EXTENDED COPY parameter list: cscd_count copies of cscd, then the segments. */
static size_t copy_list(uint8_t *list, const uint8_t *cscd, size_t cscd_count,
			const struct segment *segments, size_t segment_count)
{
	size_t length = 16;

	memset(list, 0, 16);
	scsi_put_be16(list + 2, (uint16_t)(32 * cscd_count));
	scsi_put_be32(list + 8, (uint32_t)(28 * segment_count));
	for (size_t i = 0; i < cscd_count; i++, length += 32)
		memcpy(list + length, cscd, 32);
	for (size_t i = 0; i < segment_count; i++, length += 28) {
		uint8_t *descriptor = list + length;

		memset(descriptor, 0, 28);
		descriptor[0] = 0x02;
		scsi_put_be16(descriptor + 2, 0x18);
		scsi_put_be16(descriptor + 4, segments[i].source);
		scsi_put_be16(descriptor + 6, segments[i].destination);
		scsi_put_be16(descriptor + 10, segments[i].blocks);
		scsi_put_be64(descriptor + 12, segments[i].source_lba);
		scsi_put_be64(descriptor + 20, segments[i].destination_lba);
	}
	return length;
}

/* This logical unit's identification CSCD descriptor, as VPD page 83h names it. */
static void own_cscd(uint8_t *cscd)
{
	uint8_t inquiry[6] = { 0x12, 0x01, 0x83, 0, 255, 0 };
	uint8_t page[255];

	EXECUTE(inquiry, page, sizeof(page));
	assert_good();
	memset(cscd, 0, 32);
	cscd[0] = 0xe4;
	memcpy(cscd + 4, page + 4, 20);	/* the NAA designation descriptor */
	cscd[30] = BLOCK >> 8;
}

static void assert_copy_aborted(uint16_t asc_ascq)
{
	assert_check(SCSI_SENSE_COPY_ABORTED, asc_ascq);
}

static void extended_copy(uint8_t *list, size_t length)
{
	uint8_t cdb[16] = { 0x83, 0x00 };

	scsi_put_be32(cdb + 10, (uint32_t)length);
	EXECUTE(cdb, list, length);
}

static void fill_pattern(uint8_t *buffer, size_t length, uint8_t seed)
{
	for (size_t i = 0; i < length; i++)
		buffer[i] = (uint8_t)(seed + i * 31);
}

static void test_copy_within_the_device(void **state)
{
	uint8_t cscd[32], list[512], expected[8 * BLOCK];
	const struct segment segments[2] = {
		{ 0, 1, 8, 100, 500 },
		{ 1, 0, 2, 100, 700 },
	};
	size_t length;

	(void)state;
	own_cscd(cscd);
	fill_pattern(fake.medium + 100 * BLOCK, sizeof(expected), 3);
	memcpy(expected, fake.medium + 100 * BLOCK, sizeof(expected));
	length = copy_list(list, cscd, 2, segments, 2);
	extended_copy(list, length);
	assert_good();
	assert_memory_equal(fake.medium + 500 * BLOCK, expected, 8 * BLOCK);
	assert_memory_equal(fake.medium + 700 * BLOCK, expected, 2 * BLOCK);
	assert_int_equal(fake.medium[702 * BLOCK], 0);
	assert_int_equal(fake.call_count, 4);
	assert_int_equal(fake.calls[0].op, 'r');
	assert_int_equal(fake.calls[1].op, 'w');
	assert_int_equal(fake.calls[1].offset, 500 * BLOCK);
	assert_int_equal(fake.dev.scsi.writes_in_flight, 0);
}

/* Overlapping ranges copy as if through a buffer, in either direction. */
static void test_copy_overlapping(void **state)
{
	static uint8_t expected[1500 * BLOCK];
	uint8_t cscd[32], list[128];
	const struct segment up = { 0, 0, 1500, 10, 20 };
	const struct segment down = { 0, 0, 1500, 20, 10 };
	size_t length;

	(void)state;
	/* 1500 blocks go in 256 KiB chunks: the overlap spans chunk boundaries. */
	own_cscd(cscd);
	fill_pattern(fake.medium, 2048 * BLOCK, 7);
	memcpy(expected, fake.medium + 10 * BLOCK, sizeof(expected));
	length = copy_list(list, cscd, 1, &up, 1);
	extended_copy(list, length);
	assert_good();
	assert_true(fake.call_count > 2);
	assert_memory_equal(fake.medium + 20 * BLOCK, expected, sizeof(expected));

	memcpy(expected, fake.medium + 20 * BLOCK, sizeof(expected));
	length = copy_list(list, cscd, 1, &down, 1);
	extended_copy(list, length);
	assert_good();
	assert_memory_equal(fake.medium + 10 * BLOCK, expected, sizeof(expected));
}

static void test_copy_refuses_other_devices(void **state)
{
	uint8_t cscd[32], list[128];
	const struct segment segment = { 0, 0, 1, 0, 1 };
	size_t length;

	(void)state;
	own_cscd(cscd);
	cscd[23] ^= 1;
	length = copy_list(list, cscd, 1, &segment, 1);
	extended_copy(list, length);
	assert_check(SCSI_SENSE_COPY_ABORTED, SCSI_ASC_UNREACHABLE_COPY_TARGET);
	assert_no_handler_call();

	/* Not a designator of the logical unit (association 1: a port). */
	own_cscd(cscd);
	cscd[5] |= 0x10;
	length = copy_list(list, cscd, 1, &segment, 1);
	extended_copy(list, length);
	assert_check(SCSI_SENSE_COPY_ABORTED, SCSI_ASC_UNREACHABLE_COPY_TARGET);
}

static void test_copy_invalid_lists(void **state)
{
	uint8_t cscd[32], list[2048];
	struct segment segments[65];
	size_t length;

	(void)state;
	memset(segments, 0, sizeof(segments));
	for (int i = 0; i < 65; i++)
		segments[i].blocks = 1;
	own_cscd(cscd);

	length = copy_list(list, cscd, 9, segments, 1);
	extended_copy(list, length);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_TOO_MANY_TARGET_DESCRIPTORS);

	length = copy_list(list, cscd, 1, segments, 65);
	extended_copy(list, length);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_TOO_MANY_SEGMENT_DESCRIPTORS);

	length = copy_list(list, cscd, 1, segments, 1);
	list[16] = 0xe0;
	extended_copy(list, length);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_UNSUPPORTED_TARGET_DESCRIPTOR_TYPE);

	length = copy_list(list, cscd, 1, segments, 1);
	list[48] = 0x0a;
	extended_copy(list, length);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE);

	length = copy_list(list, cscd, 1, segments, 1);
	scsi_put_be32(list + 12, 16);
	extended_copy(list, length);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INLINE_DATA_LENGTH_EXCEEDED);

	/* A CSCD index past the list. */
	segments[0].destination = 1;
	length = copy_list(list, cscd, 1, segments, 1);
	extended_copy(list, length);
	assert_copy_aborted(SCSI_ASC_INVALID_FIELD_IN_PARAMETER_LIST);
	/* Segment pointer: SKSV, SD 0 (from the list's start), BPV, bit 7; byte 54. */
	assert_int_equal(fake.completion.sense[15], 0x80 | 0x08 | 7);
	assert_int_equal(scsi_get_be16(fake.completion.sense + 16), 48 + 6);
	segments[0].destination = 0;

	segments[0].destination_lba = 2048;
	length = copy_list(list, cscd, 1, segments, 1);
	extended_copy(list, length);
	assert_copy_aborted(SCSI_ASC_LBA_OUT_OF_RANGE);
	assert_int_equal(scsi_get_be32(fake.completion.sense + 3), 2048);
	segments[0].destination_lba = 0;

	/* A block length other than ours. */
	length = copy_list(list, cscd, 1, segments, 1);
	list[16 + 30] = 0x10;
	extended_copy(list, length);
	assert_invalid_parameter_field(16 + 29, 7);

	length = copy_list(list, cscd, 1, segments, 1);
	extended_copy(list, 8);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
	extended_copy(list, length - 1);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
	assert_no_handler_call();

	/* An empty list copies nothing. */
	extended_copy(list, 0);
	assert_good();
	assert_int_equal(fake.dev.scsi.writes_in_flight, 0);
}

static void test_copy_handler_error(void **state)
{
	uint8_t cscd[32], list[128];
	const struct segment segment = { 0, 0, 4, 0, 8 };
	size_t length;

	(void)state;
	own_cscd(cscd);
	length = copy_list(list, cscd, 1, &segment, 1);
	fake.complete_error = -EIO;
	extended_copy(list, length);
	assert_copy_aborted(SCSI_ASC_UNRECOVERED_READ_ERROR);
	assert_int_equal(fake.call_count, 1);
	assert_int_equal(fake.dev.scsi.writes_in_flight, 0);
}

static void test_receive_copy_results(void **state)
{
	uint8_t cdb[16] = { 0x84, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0 };
	uint8_t status_cdb[16] = { 0x84, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0 };
	uint8_t buffer[64];

	(void)state;
	memset(buffer, 0xaa, sizeof(buffer));
	EXECUTE(cdb, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 46);
	assert_int_equal(scsi_get_be32(buffer), 42);
	assert_int_equal(buffer[4], 0x01);
	assert_int_equal(scsi_get_be16(buffer + 8), 8);
	assert_int_equal(scsi_get_be16(buffer + 10), 64);
	assert_int_equal(scsi_get_be32(buffer + 16), 0xffff * 512);
	assert_int_equal(scsi_get_be32(buffer + 20), 0);	/* no inline data */
	assert_int_equal(buffer[37], 9);			/* 2^9 = 512 */
	assert_int_equal(buffer[43], 2);
	assert_int_equal(buffer[44], 0x02);
	assert_int_equal(buffer[45], 0xe4);
	assert_int_equal(buffer[46], 0);

	/* No copy with list identifier 0 yet. */
	EXECUTE(status_cdb, buffer, sizeof(buffer));
	assert_invalid_cdb_field(2, 7);
}

static void test_copy_status(void **state)
{
	uint8_t status_cdb[16] = { 0x84, 0x00, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0 };
	uint8_t cscd[32], list[128], buffer[64];
	const uint8_t expected[12] = { 0, 0, 0, 8, 0x01, 0, 1, 0x00, 0, 0, 0x08, 0x00 };
	const struct segment segment = { 0, 0, 4, 0, 8 };
	size_t length;

	(void)state;
	own_cscd(cscd);
	length = copy_list(list, cscd, 1, &segment, 1);
	list[0] = 7;
	extended_copy(list, length);
	assert_good();
	EXECUTE(status_cdb, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 12);
	assert_memory_equal(buffer, expected, sizeof(expected));

	/* A failed copy under the same identifier replaces it: completed with errors. */
	fake.complete_error = -EIO;
	extended_copy(list, length);
	EXECUTE(status_cdb, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(buffer[4], 0x02);
	assert_int_equal(scsi_get_be16(buffer + 5), 0);

	/* LIST ID USAGE 11b: nothing is held. */
	list[0] = 9;
	list[1] = 0x18;
	extended_copy(list, length);
	assert_good();
	status_cdb[2] = 9;
	EXECUTE(status_cdb, buffer, sizeof(buffer));
	assert_invalid_cdb_field(2, 7);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, fake_setup, fake_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_copy_within_the_device),
		TEST(test_copy_overlapping),
		TEST(test_copy_refuses_other_devices),
		TEST(test_copy_invalid_lists),
		TEST(test_copy_handler_error),
		TEST(test_receive_copy_results),
		TEST(test_copy_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
