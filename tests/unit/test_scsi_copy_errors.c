/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EXTENDED COPY errors (SPC-4 5.17.7): the list's form is ILLEGAL REQUEST
 * before anything moves; a copy target that cannot be used, is
 * write-protected, or goes away, stops or shrinks mid-copy, is COPY ABORTED
 * in the segment it stops, with the segment number, a segment pointer and
 * the residual.
 */
#include <errno.h>
#include <string.h>

#include "copy_fixture.h"

static void test_nul_cscd(void **state)
{
	uint8_t cscd[32], list[256];
	const struct segment within = { 0, 0, 4, 0, 8 };
	const struct segment to_nul = { 0, 1, 4, 0, 8 };
	size_t length;

	(void)state;
	own_cscd(cscd);
	/* A NUL descriptor no segment uses is no error. */
	length = copy_list(list, cscd, 2, &within, 1);
	list[16 + 32 + 1] |= 0x20;
	extended_copy(list, length);
	assert_good();
	assert_int_equal(fake.call_count, 2);

	fake.call_count = 0;
	length = copy_list(list, cscd, 2, &to_nul, 1);
	list[16 + 32 + 1] |= 0x20;
	extended_copy(list, length);
	/* The pointer is at the NUL bit of CSCD 1, from the list's start. */
	assert_segment_error(SCSI_ASC_COPY_TARGET_DEVICE_NOT_REACHABLE, 0, false, 16 + 32 + 1, 5);
	assert_no_handler_call();
}

static void test_unusable_cscd(void **state)
{
	uint8_t cscd[32], list[256];
	const struct segment segment = { 0, 0, 4, 0, 8 };
	size_t length;

	(void)state;
	own_cscd(cscd);
	/* Peripheral device type 01h: a tape, which this logical unit is not. */
	length = copy_list(list, cscd, 1, &segment, 1);
	list[16 + 1] = 0x01;
	extended_copy(list, length);
	assert_segment_error(SCSI_ASC_INCORRECT_COPY_TARGET_DEVICE_TYPE, 0, false, 16 + 1, 4);

	/* A designator no device has. */
	length = copy_list(list, cscd, 1, &segment, 1);
	list[16 + 23] ^= 0x01;
	extended_copy(list, length);
	assert_segment_error(SCSI_ASC_UNREACHABLE_COPY_TARGET, 0, false, 16 + 4, -1);

	/* A block length other than this device's. */
	length = copy_list(list, cscd, 1, &segment, 1);
	list[16 + 30] = 0x10;
	extended_copy(list, length);
	assert_segment_error(SCSI_ASC_NONE, 0, false, 16 + 29, 7);

	/* LU ID TYPE 01b (a LUN): the list's form, ILLEGAL REQUEST. */
	length = copy_list(list, cscd, 1, &segment, 1);
	list[16 + 1] = 0x40;
	extended_copy(list, length);
	assert_invalid_parameter_field(16 + 1, 7);
	assert_no_handler_call();
}

/* Segment 1 past the end: segment 0 is copied, and the copy ends in segment 1. */
static void test_segments_before_the_error_are_copied(void **state)
{
	uint8_t status_cdb[16] = { 0x84, 0x00, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0 };
	uint8_t cscd[32], list[256], buffer[64];
	const struct segment segments[2] = {
		{ 0, 0, 4, 0, 100 },
		{ 0, 0, 4, 0, 2046 },
	};
	size_t length;

	(void)state;
	own_cscd(cscd);
	fill_pattern(fake.medium, 4 * BLOCK, 1);
	length = copy_list(list, cscd, 1, segments, 2);
	list[0] = 5;
	extended_copy(list, length);
	assert_segment_error(SCSI_ASC_NONE, 1, true, 20, 7);
	assert_int_equal(fake.completion.sense[0], 0x70);	/* nothing of it written */
	assert_memory_equal(fake.medium + 100 * BLOCK, fake.medium, 4 * BLOCK);
	assert_int_equal(fake.call_count, 2);

	/* COPY STATUS: completed with errors, one segment, 2048 bytes. */
	EXECUTE(status_cdb, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(buffer[4], 0x02);
	assert_int_equal(scsi_get_be16(buffer + 5), 1);
	assert_int_equal(scsi_get_be32(buffer + 8), 4 * BLOCK);
}

/* An error in the list's form anywhere: ILLEGAL REQUEST, and no segment is copied. */
static void test_form_errors_before_any_segment(void **state)
{
	uint8_t cscd[32], list[256];
	const struct segment segments[2] = {
		{ 0, 0, 4, 0, 100 },
		{ 0, 0, 4, 0, 200 },
	};
	size_t length;

	(void)state;
	own_cscd(cscd);
	length = copy_list(list, cscd, 1, segments, 2);
	list[16 + 32 + 28] = 0x0a;
	extended_copy(list, length);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE);

	length = copy_list(list, cscd, 1, segments, 2);
	scsi_put_be16(list + 16 + 32 + 28 + 4, 3);
	extended_copy(list, length);
	assert_invalid_parameter_field(16 + 32 + 28 + 4, 7);

	length = copy_list(list, cscd, 1, segments, 2);
	scsi_put_be16(list + 16 + 32 + 28 + 2, 0x14);
	extended_copy(list, length);
	assert_invalid_parameter_field(16 + 32 + 28 + 2, 7);
	assert_no_handler_call();
}

/* A read fails in the second chunk: the residual is what the segment did not write. */
static void test_residual_after_a_failed_chunk(void **state)
{
	uint8_t cdb[16] = { 0x83, 0x00 };
	uint8_t cscd[32], list[128];
	const struct segment segment = { 0, 0, 1500, 0, 0 };
	struct tcmu_request req;
	struct iovec iov;
	const struct fake_completion *completion;
	size_t length;

	(void)state;
	own_cscd(cscd);
	length = copy_list(list, cscd, 1, &segment, 1);
	scsi_put_be32(cdb + 10, (uint32_t)length);
	fake.defer = true;
	fake_start(&req, &iov, cdb, sizeof(cdb), list, length);
	fake_release_next();		/* read of the first 256 KiB */
	fake_release_next();		/* its write */
	assert_int_equal(fake.deferred_count, 1);
	fake.deferred_results[0] = -EIO;
	fake_release_next();
	completion = fake_completion_of(&req);
	assert_non_null(completion);
	assert_int_equal(completion->status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(completion->sense[0], 0xf0);	/* VALID: the residual */
	assert_int_equal(completion->sense[2], SCSI_SENSE_COPY_ABORTED);
	assert_int_equal(scsi_get_be32(completion->sense + 3), 1500 - 512);
	assert_int_equal(scsi_get_be32(completion->sense + 8), 0);
	assert_int_equal(scsi_get_be16(completion->sense + 12), SCSI_ASC_UNRECOVERED_READ_ERROR);
}

/* The descriptor format carries the same: command-specific and segment pointer descriptors. */
static void test_descriptor_format(void **state)
{
	uint8_t cscd[32], list[256];
	const struct segment segments[2] = {
		{ 0, 0, 4, 0, 100 },
		{ 0, 1, 4, 0, 8 },
	};
	const uint8_t *sense = fake.completion.sense;
	size_t length;

	(void)state;
	fake.dev.scsi.descriptor_sense = true;
	own_cscd(cscd);
	length = copy_list(list, cscd, 2, segments, 2);
	list[16 + 32 + 1] |= 0x20;
	extended_copy(list, length);
	assert_int_equal(fake.completion.status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(sense[0], 0x72);
	assert_int_equal(sense[1], SCSI_SENSE_COPY_ABORTED);
	assert_int_equal(scsi_get_be16(sense + 2), SCSI_ASC_COPY_TARGET_DEVICE_NOT_REACHABLE);
	assert_int_equal(sense[7], 20);
	assert_int_equal(sense[8], 0x01);	/* command-specific information */
	assert_int_equal(sense[9], 0x0a);
	assert_int_equal(scsi_get_be64(sense + 12), 1);
	assert_int_equal(sense[20], 0x02);	/* sense key specific */
	assert_int_equal(sense[24], 0x80 | 0x08 | 5);
	assert_int_equal(scsi_get_be16(sense + 25), 16 + 32 + 1);
}

static void stop_the_receiving_device(void)
{
	__atomic_store_n(&fake.dev.leaving, true, __ATOMIC_RELEASE);
}

/* A copy between two other devices ends when the device that received it leaves. */
static void test_receiving_device_leaves(void **state)
{
	uint8_t list[256];
	const struct segment within_other[2] = {
		{ 1, 1, 64, 0, 256 },
		{ 1, 1, 64, 64, 320 },
	};
	size_t length;

	(void)state;
	allow_groups("disk0 disk1", NULL);
	length = two_device_list(list, within_other, 2, BLOCK);
	other.on_read = stop_the_receiving_device;
	extended_copy(list, length);
	/* Read, but not written: the copy stopped before the write. */
	assert_segment_error(SCSI_ASC_UNREACHABLE_COPY_TARGET, 0, false, -1, -1);
	assert_int_equal(other.reads, 1);
	assert_int_equal(other.writes, 0);
	assert_int_equal(other.dev.references, 0);

	/* Leaving already: nothing is read. */
	other.reads = 0;
	extended_copy(list, length);
	assert_segment_error(SCSI_ASC_UNREACHABLE_COPY_TARGET, 0, false, -1, -1);
	assert_int_equal(other.reads, 0);
	fake.dev.leaving = false;
}

/*
 * Copies 64 blocks of the other device from LBA 0 to this device's LBA 0,
 * then 64 from second_lba to LBA 64, calling on_read at each read of the
 * other device.
 */
static void copy_two_segments_from_other(uint64_t second_lba, void (*on_read)(void))
{
	uint8_t list[256];
	const struct segment from_other[2] = {
		{ 1, 0, 64, 0, 0 },
		{ 1, 0, 64, second_lba, 64 },
	};
	size_t length;

	allow_groups("disk0 disk1", NULL);
	length = two_device_list(list, from_other, 2, BLOCK);
	other.on_read = on_read;
	extended_copy(list, length);
}

/* When the daemon stops, all devices leave at once: copies stop at their next chunk. */
static void test_shutdown_stops_copies(void **state)
{
	(void)state;
	copy_two_segments_from_other(64, device_list_mark_leaving);
	assert_true(other.dev.leaving);
	assert_segment_error(SCSI_ASC_UNREACHABLE_COPY_TARGET, 0, false, -1, -1);
	assert_int_equal(other.reads, 1);
	assert_no_handler_call();
}

static void stop_the_other_device(void)
{
	__atomic_store_n(&other.dev.scsi.stopped, true, __ATOMIC_RELEASE);
}

/* A stopped unit (START STOP UNIT) is no copy target, before or during a copy. */
static void test_stopped_device(void **state)
{
	uint8_t list[256];
	const struct segment to_other = { 0, 1, 4, 0, 0 };
	size_t length;

	(void)state;
	allow_groups("disk0 disk1", NULL);
	other.dev.scsi.stopped = true;
	length = two_device_list(list, &to_other, 1, BLOCK);
	extended_copy(list, length);
	assert_segment_error(SCSI_ASC_COPY_TARGET_DEVICE_NOT_REACHABLE, 0, true, 6, 7);
	assert_no_handler_call();
	assert_int_equal(other.writes, 0);

	/* Stopped while segment 0 is copied: segment 1 is not. */
	other.dev.scsi.stopped = false;
	copy_two_segments_from_other(64, stop_the_other_device);
	assert_segment_error(SCSI_ASC_COPY_TARGET_DEVICE_NOT_REACHABLE, 1, true, 4, 7);
	assert_int_equal(other.reads, 1);
	assert_int_equal(fake.call_count, 1);
	assert_int_equal(fake.calls[0].op, 'w');
	other.dev.scsi.stopped = false;
}

static void shrink_the_other_device(void)
{
	__atomic_store_n(&other.dev.size, OTHER_SIZE / 2, __ATOMIC_RELEASE);
}

/* A device that shrinks mid-copy: the next chunk finds its segment outside. */
static void test_size_change_mid_copy(void **state)
{
	(void)state;
	copy_two_segments_from_other(256, shrink_the_other_device);
	assert_segment_error(SCSI_ASC_NONE, 1, true, 12, 7);
	assert_int_equal(other.reads, 1);
	assert_int_equal(fake.call_count, 1);
	assert_memory_equal(fake.medium, other.medium, 64 * BLOCK);
}

/*
 * A write-protected destination ends the copy with COPY ABORTED, WRITE
 * PROTECTED; a write-protected source is read as usual.
 */
static void test_write_protected_destination(void **state)
{
	uint8_t cscd[32], list[256];
	const struct segment to_other = { 0, 1, 4, 0, 0 };
	const struct segment within = { 0, 0, 4, 0, 8 };
	size_t length;

	(void)state;
	allow_groups("disk0 disk1", NULL);
	tcmu_device_set_write_protected(&other.dev, true);
	length = two_device_list(list, &to_other, 1, BLOCK);
	extended_copy(list, length);
	assert_segment_error(SCSI_ASC_WRITE_PROTECTED, 0, true, 6, 7);
	assert_no_handler_call();
	assert_int_equal(other.writes, 0);

	copy_two_segments_from_other(64, NULL);
	assert_good();
	assert_int_equal(other.reads, 2);
	assert_memory_equal(fake.medium, other.medium, 64 * BLOCK);

	/* Within a write-protected device: refused in its first segment too. */
	tcmu_device_set_write_protected(&other.dev, false);
	tcmu_device_set_write_protected(&fake.dev, true);
	fake.call_count = 0;
	own_cscd(cscd);
	length = copy_list(list, cscd, 1, &within, 1);
	extended_copy(list, length);
	assert_segment_error(SCSI_ASC_WRITE_PROTECTED, 0, true, 6, 7);
	assert_no_handler_call();
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, fake_setup, fake_teardown)
#define OTHER_TEST(name) cmocka_unit_test_setup_teardown(name, other_setup, other_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_nul_cscd),
		TEST(test_unusable_cscd),
		TEST(test_segments_before_the_error_are_copied),
		TEST(test_form_errors_before_any_segment),
		TEST(test_residual_after_a_failed_chunk),
		TEST(test_descriptor_format),
		OTHER_TEST(test_receiving_device_leaves),
		OTHER_TEST(test_shutdown_stops_copies),
		OTHER_TEST(test_stopped_device),
		OTHER_TEST(test_size_change_mid_copy),
		OTHER_TEST(test_write_protected_destination),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
