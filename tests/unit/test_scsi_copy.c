/* SPDX-License-Identifier: Apache-2.0 */
/* EXTENDED COPY (LID1) and RECEIVE COPY RESULTS. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "copy_fixture.h"

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

static void test_copy_between_devices(void **state)
{
	uint8_t list[256], expected[20 * BLOCK];
	const struct segment out = { 0, 1, 20, 100, 40 };
	const struct segment back = { 1, 0, 20, 40, 900 };
	size_t length;

	(void)state;
	allow_groups("disk0 user_2/disk1", NULL);
	fill_pattern(fake.medium + 100 * BLOCK, sizeof(expected), 11);
	memcpy(expected, fake.medium + 100 * BLOCK, sizeof(expected));
	length = two_device_list(list, &out, 1, BLOCK);
	extended_copy(list, length);
	assert_good();
	assert_memory_equal(other.medium + 40 * BLOCK, expected, sizeof(expected));
	assert_int_equal(other.medium[60 * BLOCK], 0);
	assert_int_equal(other.writes, 1);
	assert_int_equal(fake.calls[0].op, 'r');
	assert_int_equal(fake.call_count, 1);

	/* And back, received by the same device: reads the other, writes this one. */
	length = two_device_list(list, &back, 1, 0);
	extended_copy(list, length);
	assert_good();
	assert_memory_equal(fake.medium + 900 * BLOCK, expected, sizeof(expected));
	assert_int_equal(other.reads, 1);
	assert_int_equal(fake.calls[0].op, 'w');
	assert_int_equal(fake.calls[0].offset, 900 * BLOCK);
}

static struct tcmu_request *started_after_gate;

static void record_start(struct tcmu_request *req)
{
	started_after_gate = req;
}

/* The other device stays referenced, and its gate held, until the copy ends. */
static void test_copy_holds_the_other_device(void **state)
{
	uint8_t list[256];
	const struct segment out = { 0, 1, 4, 0, 0 };
	struct tcmu_request req, blocker;
	struct iovec iov;
	size_t length;

	(void)state;
	allow_groups("disk0 disk1", NULL);
	length = two_device_list(list, &out, 1, BLOCK);
	fake.defer = true;
	{
		uint8_t cdb[16] = { 0x83, 0x00 };

		scsi_put_be32(cdb + 10, (uint32_t)length);
		fake_start(&req, &iov, cdb, sizeof(cdb), list, length);
	}
	assert_null(fake_completion_of(&req));
	assert_int_equal(other.dev.references, 1);
	assert_int_equal(other.dev.scsi.writes_in_flight, 1);
	assert_int_equal(fake.dev.scsi.writes_in_flight, 0);

	/* A COMPARE AND WRITE on the other device waits for the copy's write. */
	memset(&blocker, 0, sizeof(blocker));
	blocker.dev = &other.dev;
	started_after_gate = NULL;
	assert_false(scsi_gate_enter(&other.dev, &blocker, true, record_start));
	assert_int_equal(other.writes, 0);
	fake_release_deferred();
	assert_int_equal(fake_completion_of(&req)->status, SCSI_STATUS_GOOD);
	assert_int_equal(other.writes, 1);
	assert_int_equal(other.dev.references, 0);
	assert_ptr_equal(started_after_gate, &blocker);
	assert_true(other.dev.scsi.exclusive_in_flight);
	assert_ptr_equal(other.dev.scsi.gate_waiting_head, NULL);
	scsi_gate_leave(&other.dev, true);
}

static bool wait_returned;

static void *wait_unreferenced(void *dev)
{
	device_wait_unreferenced(dev);
	__atomic_store_n(&wait_returned, true, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Off the list mid-copy: the other device's detach waits until the copy
 * is done with it, and the copy finishes. removed_by_kernel: marked
 * leaving too, as its detach does; the copy stops at its next chunk
 * instead.
 */
static void remove_mid_copy(bool removed_by_kernel)
{
	uint8_t cdb[16] = { 0x83, 0x00 };
	uint8_t list[256], second_list[256];
	const struct segment out = { 0, 1, 4, 0, 0 };
	struct tcmu_request req;
	struct iovec iov;
	pthread_t waiter;
	size_t length;

	allow_groups("disk0 disk1", NULL);
	length = two_device_list(list, &out, 1, BLOCK);
	memcpy(second_list, list, length);
	scsi_put_be32(cdb + 10, (uint32_t)length);
	fake.defer = true;
	fake_start(&req, &iov, cdb, sizeof(cdb), list, length);
	assert_int_equal(other.dev.references, 1);

	device_list_remove(&other.dev);
	other.dev.leaving = removed_by_kernel;
	wait_returned = false;
	assert_int_equal(pthread_create(&waiter, NULL, wait_unreferenced, &other.dev), 0);
	usleep(100 * 1000);
	assert_false(__atomic_load_n(&wait_returned, __ATOMIC_ACQUIRE));
	/* A copy that comes now no longer finds it. */
	extended_copy(second_list, length);
	assert_copy_aborted(SCSI_ASC_UNREACHABLE_COPY_TARGET);

	fake_release_deferred();
	assert_int_equal(pthread_join(waiter, NULL), 0);
	assert_true(__atomic_load_n(&wait_returned, __ATOMIC_ACQUIRE));
	if (removed_by_kernel) {
		const struct fake_completion *completion = fake_completion_of(&req);

		assert_int_equal(completion->status, SCSI_STATUS_CHECK_CONDITION);
		assert_int_equal(completion->sense[2], SCSI_SENSE_COPY_ABORTED);
		assert_int_equal(scsi_get_be16(completion->sense + 12),
				 SCSI_ASC_UNREACHABLE_COPY_TARGET);
		assert_int_equal(other.writes, 0);
	} else {
		assert_int_equal(fake_completion_of(&req)->status, SCSI_STATUS_GOOD);
		assert_int_equal(other.writes, 1);
	}
}

static void test_detach_waits_for_the_copy(void **state)
{
	(void)state;
	remove_mid_copy(false);
}

static void test_removal_stops_the_copy(void **state)
{
	(void)state;
	remove_mid_copy(true);
}

/* A copy waits at the other device's gate while a COMPARE AND WRITE holds it. */
static void test_copy_waits_for_the_other_gate(void **state)
{
	uint8_t list[256];
	const struct segment out = { 0, 1, 4, 8, 16 };
	struct tcmu_request req, holder;
	struct iovec iov;
	size_t length;

	(void)state;
	allow_groups("disk0 disk1", NULL);
	fill_pattern(fake.medium + 8 * BLOCK, 4 * BLOCK, 5);
	length = two_device_list(list, &out, 1, BLOCK);
	memset(&holder, 0, sizeof(holder));
	holder.dev = &other.dev;
	assert_true(scsi_gate_enter(&other.dev, &holder, true, NULL));
	{
		uint8_t cdb[16] = { 0x83, 0x00 };

		scsi_put_be32(cdb + 10, (uint32_t)length);
		fake_start(&req, &iov, cdb, sizeof(cdb), list, length);
	}
	assert_null(fake_completion_of(&req));
	assert_int_equal(fake.call_count, 0);
	assert_int_equal(other.writes, 0);
	/* Waiting there, it holds no other gate: this device's writes go on. */
	assert_int_equal(fake.dev.scsi.writes_in_flight, 0);
	scsi_gate_leave(&other.dev, true);
	assert_int_equal(fake_completion_of(&req)->status, SCSI_STATUS_GOOD);
	assert_memory_equal(other.medium + 16 * BLOCK, fake.medium + 8 * BLOCK, 4 * BLOCK);
}

static void test_copy_between_devices_needs_the_opt_in(void **state)
{
	uint8_t list[256];
	const struct segment out = { 0, 1, 4, 0, 0 };
	size_t length;

	(void)state;
	length = two_device_list(list, &out, 1, BLOCK);
	extended_copy(list, length);
	assert_copy_aborted(SCSI_ASC_UNREACHABLE_COPY_TARGET);
	assert_no_handler_call();
	assert_int_equal(other.writes + other.reads, 0);

	/* Both named, but in different groups. */
	allow_groups("disk0 disk7", "disk1 user_0/disk0");
	extended_copy(list, length);
	assert_copy_aborted(SCSI_ASC_UNREACHABLE_COPY_TARGET);
	assert_int_equal(other.writes + other.reads, 0);

	/* A bare name covers devices of that name on any HBA, but not two by one member. */
	other.dev.name = "disk0";
	other.dev.backstore = "user_2/disk0";
	allow_groups("disk0 disk9", NULL);
	extended_copy(list, length);
	assert_copy_aborted(SCSI_ASC_UNREACHABLE_COPY_TARGET);

	/* The groups follow the file: allowed, then forbidden again. */
	other.dev.name = "disk1";
	other.dev.backstore = "user_2/disk1";
	allow_groups("disk7 disk1 disk0", NULL);
	extended_copy(list, length);
	assert_good();
	assert_int_equal(other.writes, 1);
	assert_int_equal(copy_groups_set(NULL, 0), 0);
	extended_copy(list, length);
	assert_copy_aborted(SCSI_ASC_UNREACHABLE_COPY_TARGET);
	assert_int_equal(other.writes, 1);

	/* A designator no device has is as unreachable as one of a device not allowed. */
	allow_groups("disk0 disk1", NULL);
	length = two_device_list(list, &out, 1, BLOCK);
	list[16 + 32 + 23] ^= 0x01;
	extended_copy(list, length);
	assert_copy_aborted(SCSI_ASC_UNREACHABLE_COPY_TARGET);
}

/* Block counts are in source blocks, or with DC in destination blocks. */
static void test_copy_between_block_sizes(void **state)
{
	uint8_t list[256];
	/* 16 blocks of 512 bytes are 2 blocks of 4096 at LBA 3 of the other device. */
	const struct segment out = { 0, 1, 16, 64, 3 };
	const struct segment inexact = { 0, 1, 12, 64, 3 };
	struct segment back = { 1, 0, 2, 3, 500 };
	size_t length;

	(void)state;
	device_list_remove(&other.dev);
	other_attach(4096);
	allow_groups("disk0 disk1", NULL);
	fill_pattern(fake.medium + 64 * BLOCK, 16 * BLOCK, 9);

	length = two_device_list(list, &out, 1, 4096);
	extended_copy(list, length);
	assert_good();
	assert_memory_equal(other.medium + 3 * 4096, fake.medium + 64 * BLOCK, 8192);
	assert_int_equal(other.medium[5 * 4096], 0);

	/* Source blocks of 4096 bytes: 2 of them fill 16 destination blocks. */
	length = two_device_list(list, &back, 1, 4096);
	extended_copy(list, length);
	assert_good();
	assert_memory_equal(fake.medium + 500 * BLOCK, other.medium + 3 * 4096, 8192);
	assert_int_equal(fake.calls[0].length, 8192);

	/* DC: the count is 16 destination blocks of 512 bytes, 2 source blocks. */
	memset(fake.medium + 700 * BLOCK, 0, 8192);
	back.blocks = 16;
	back.destination_lba = 700;
	length = two_device_list(list, &back, 1, 4096);
	list[16 + 64 + 1] = 0x02;
	extended_copy(list, length);
	assert_good();
	assert_memory_equal(fake.medium + 700 * BLOCK, other.medium + 3 * 4096, 8192);

	/* 12 blocks of 512 bytes are a block and a half of the destination. */
	length = two_device_list(list, &inexact, 1, 4096);
	extended_copy(list, length);
	assert_copy_aborted(SCSI_ASC_UNEXPECTED_INEXACT_SEGMENT);
	assert_no_handler_call();

	/* The CSCD's block length must be the other device's. */
	length = two_device_list(list, &out, 1, 512);
	extended_copy(list, length);
	assert_segment_error(SCSI_ASC_NONE, 0, false, 16 + 32 + 29, 7);

	/* 0xffff blocks of 4096 bytes: more than one segment may carry (page 8Fh). */
	back.blocks = 0xffff;
	back.destination_lba = 0;
	length = two_device_list(list, &back, 1, 4096);
	list[16 + 64 + 1] = 0;
	extended_copy(list, length);
	assert_segment_error(SCSI_ASC_NONE, 0, true, 10, 7);
	assert_int_equal(other.reads, 2);
}

static void test_copy_between_devices_out_of_range(void **state)
{
	uint8_t list[256];
	/* The other device has 512 blocks; this one 2048. */
	const struct segment past_end = { 0, 1, 8, 1000, 508 };
	const struct segment source_past_end = { 1, 0, 2, 511, 0 };
	const struct segment too_long = { 0, 1, 16385, 0, 0 };
	size_t length;

	(void)state;
	allow_groups("disk0 disk1", NULL);
	/* COPY ABORTED, the segment pointer at the LBA: no residual, nothing written. */
	length = two_device_list(list, &past_end, 1, BLOCK);
	extended_copy(list, length);
	assert_segment_error(SCSI_ASC_NONE, 0, true, 20, 7);
	assert_int_equal(fake.completion.sense[0], 0x70);
	assert_no_handler_call();

	length = two_device_list(list, &source_past_end, 1, BLOCK);
	extended_copy(list, length);
	assert_segment_error(SCSI_ASC_NONE, 0, true, 12, 7);
	assert_int_equal(other.writes + other.reads, 0);

	/* 16385 blocks of 512 bytes: one more than a segment's 8 MiB. */
	length = two_device_list(list, &too_long, 1, BLOCK);
	extended_copy(list, length);
	assert_segment_error(SCSI_ASC_NONE, 0, true, 10, 7);
	assert_int_equal(other.writes + other.reads, 0);
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

	/* A CSCD index past the list: the list's form, before any segment. */
	segments[0].destination = 1;
	length = copy_list(list, cscd, 1, segments, 1);
	extended_copy(list, length);
	assert_invalid_parameter_field(48 + 6, 7);
	segments[0].destination = 0;

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
	assert_int_equal(scsi_get_be32(buffer + 16), 8 << 20);	/* 8 MiB: less than 0xffff blocks */
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
#define OTHER_TEST(name) cmocka_unit_test_setup_teardown(name, other_setup, other_teardown)

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
		OTHER_TEST(test_copy_between_devices),
		OTHER_TEST(test_copy_holds_the_other_device),
		OTHER_TEST(test_copy_waits_for_the_other_gate),
		OTHER_TEST(test_detach_waits_for_the_copy),
		OTHER_TEST(test_removal_stops_the_copy),
		OTHER_TEST(test_copy_between_devices_needs_the_opt_in),
		OTHER_TEST(test_copy_between_block_sizes),
		OTHER_TEST(test_copy_between_devices_out_of_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
