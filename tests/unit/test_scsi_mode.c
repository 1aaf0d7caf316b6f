/* SPDX-License-Identifier: Apache-2.0 */
/* MODE SENSE (6)/(10) and MODE SELECT (6)/(10). */
#include <errno.h>
#include <string.h>

#include "scsi_fixture.h"

static const uint8_t error_recovery_page[12] = { 0x01, 0x0a };
static const uint8_t caching_page_wce[20] = { 0x08, 0x12, 0x04 };
static const uint8_t control_page[12] = { 0x0a, 0x0a, 0x00, 0x10 };
static const uint8_t control_extension_page[32] = { 0x4a, 0x01, 0x00, 0x1c };
static const uint8_t informational_exceptions_page[12] = { 0x1c, 0x0a, 0x08 };

static void mode_sense6(uint8_t byte1, uint8_t page, uint8_t subpage, uint8_t allocation,
			uint8_t *buffer, size_t length)
{
	uint8_t cdb[6] = { 0x1a, byte1, page, subpage, allocation, 0 };

	memset(buffer, 0xaa, length);
	EXECUTE(cdb, buffer, length);
}

static void mode_sense10(uint8_t byte1, uint8_t page, uint8_t subpage, uint16_t allocation,
			 uint8_t *buffer, size_t length)
{
	uint8_t cdb[10] = { 0x5a, byte1, page, subpage, 0, 0, 0,
			    (uint8_t)(allocation >> 8), (uint8_t)allocation, 0 };

	memset(buffer, 0xaa, length);
	EXECUTE(cdb, buffer, length);
}

static void test_sense6_caching_with_block_descriptor(void **state)
{
	uint8_t buffer[64];
	const uint8_t header[12] = { 4 + 8 + 20 - 1, 0x00, 0x10, 0x08,
				     0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x02, 0x00 };

	(void)state;
	mode_sense6(0, 0x08, 0, 255, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 32);
	assert_memory_equal(buffer, header, sizeof(header));
	assert_memory_equal(buffer + 12, caching_page_wce, sizeof(caching_page_wce));
	assert_int_equal(buffer[32], 0);

	fake.dev.write_cache = false;
	mode_sense6(0x08, 0x08, 0, 255, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 24);
	assert_int_equal(buffer[0], 23);
	assert_int_equal(buffer[3], 0);
	assert_int_equal(buffer[4], 0x08);
	assert_int_equal(buffer[6], 0x00);	/* WCE off */
}

static void test_sense6_all_pages(void **state)
{
	uint8_t buffer[128];

	(void)state;
	mode_sense6(0x08, 0x3f, 0, 255, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 4 + 12 + 20 + 12 + 12);
	assert_int_equal(buffer[0], 4 + 12 + 20 + 12 + 12 - 1);
	assert_memory_equal(buffer + 4, error_recovery_page, 12);
	assert_memory_equal(buffer + 16, caching_page_wce, 20);
	assert_memory_equal(buffer + 36, control_page, 12);
	assert_memory_equal(buffer + 48, informational_exceptions_page, 12);

	mode_sense6(0x08, 0x3f, 0xff, 255, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 4 + 12 + 20 + 12 + 32 + 12);
	assert_memory_equal(buffer + 48, control_extension_page, 32);
	assert_memory_equal(buffer + 80, informational_exceptions_page, 12);

	mode_sense6(0x08, 0x0a, 0xff, 255, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 4 + 12 + 32);
	mode_sense6(0x08, 0x0a, 0x01, 255, buffer, sizeof(buffer));
	assert_good();
	assert_memory_equal(buffer + 4, control_extension_page, 32);
}

static void test_sense6_truncated(void **state)
{
	uint8_t buffer[64];

	(void)state;
	mode_sense6(0, 0x3f, 0, 10, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 10);
	/* The header still tells the full length. */
	assert_int_equal(buffer[0], 4 + 8 + 56 - 1);
	for (size_t i = 10; i < sizeof(buffer); i++)
		assert_int_equal(buffer[i], 0);
}

static void test_sense_changeable_and_default(void **state)
{
	uint8_t buffer[64];

	(void)state;
	mode_sense6(0x08, 0x48, 0, 255, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(buffer[4], 0x08);
	assert_int_equal(buffer[6], 0x04);	/* WCE can change */
	mode_sense6(0x08, 0x4a, 0, 255, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(buffer[6], 0x04);	/* D_SENSE can change */
	assert_int_equal(buffer[7], 0x00);
	mode_sense6(0x08, 0x8a, 0, 255, buffer, sizeof(buffer));
	assert_good();
	assert_memory_equal(buffer + 4, control_page, 12);
}

static void test_sense_invalid_fields(void **state)
{
	uint8_t buffer[64];

	(void)state;
	/* Saved values are not kept. */
	mode_sense6(0, 0xc8, 0, 255, buffer, sizeof(buffer));
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_SAVING_PARAMETERS_NOT_SUPPORTED);
	mode_sense6(0, 0x02, 0, 255, buffer, sizeof(buffer));
	assert_invalid_cdb_field(2, 5);
	mode_sense6(0, 0x08, 0x01, 255, buffer, sizeof(buffer));
	assert_invalid_cdb_field(3, 7);
	mode_sense6(0, 0x3f, 0x05, 255, buffer, sizeof(buffer));
	assert_invalid_cdb_field(3, 7);
	/* LLBAA exists only in MODE SENSE(10). */
	mode_sense6(0x10, 0x08, 0, 255, buffer, sizeof(buffer));
	assert_invalid_cdb_field(1, 4);
}

static void test_sense10(void **state)
{
	uint8_t buffer[128];
	const uint8_t header[16] = { 0, 8 + 8 + 12 - 2, 0, 0x10, 0, 0, 0, 8,
				     0, 0, 0x08, 0x00, 0, 0, 0x02, 0x00 };
	const uint8_t long_descriptor[16] = { 0, 0, 0, 0, 0, 0, 0x08, 0x00,
					      0, 0, 0, 0, 0, 0, 0x02, 0x00 };

	(void)state;
	mode_sense10(0, 0x0a, 0, 128, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 28);
	assert_memory_equal(buffer, header, sizeof(header));
	assert_memory_equal(buffer + 16, control_page, 12);

	mode_sense10(0x10, 0x0a, 0, 128, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 8 + 16 + 12);
	assert_int_equal(scsi_get_be16(buffer), 8 + 16 + 12 - 2);
	assert_int_equal(buffer[4], 0x01);	/* LONGLBA */
	assert_int_equal(scsi_get_be16(buffer + 6), 16);
	assert_memory_equal(buffer + 8, long_descriptor, 16);

	mode_sense10(0x08, 0x3f, 0xff, 128, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 8 + 12 + 20 + 12 + 32 + 12);
	assert_int_equal(scsi_get_be16(buffer + 6), 0);
}

static void test_sense_block_count_saturates(void **state)
{
	uint8_t buffer[64];

	(void)state;
	fake.dev.size = (1ull << 33) * 512;
	mode_sense6(0, 0x08, 0, 255, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(scsi_get_be32(buffer + 4), 0xffffffff);
}

static void mode_select6(uint8_t byte1, const uint8_t *list, uint8_t length)
{
	uint8_t cdb[6] = { 0x15, byte1, 0, 0, length, 0 };
	uint8_t buffer[256];

	memcpy(buffer, list, length);
	EXECUTE(cdb, buffer, length);
}

static void test_select_write_cache(void **state)
{
	uint8_t list[4 + 20] = { 0, 0, 0, 0, 0x08, 0x12, 0x00 };
	uint8_t buffer[64];

	(void)state;
	/* Turning the cache off flushes what it holds. */
	mode_select6(0x10, list, sizeof(list));
	assert_good();
	assert_false(fake.dev.write_cache);
	assert_int_equal(fake.call_count, 1);
	assert_int_equal(fake.calls[0].op, 'f');
	mode_sense6(0x08, 0x08, 0, 255, buffer, sizeof(buffer));
	assert_int_equal(buffer[6], 0x00);

	list[6] = 0x04;
	mode_select6(0x10, list, sizeof(list));
	assert_good();
	assert_true(fake.dev.write_cache);
	assert_no_handler_call();
	mode_sense6(0x08, 0x08, 0, 255, buffer, sizeof(buffer));
	assert_int_equal(buffer[6], 0x04);
}

static struct tcmu_device_change reconfigured;
static unsigned int reconfigure_count;
static int reconfigure_result;

static int record_reconfigure(struct tcmu_device *dev, const struct tcmu_device_change *change)
{
	(void)dev;
	reconfigured = *change;
	reconfigure_count++;
	return reconfigure_result;
}

/* The handler hears of the change as of a RECONFIG's, and may refuse it. */
static void test_select_write_cache_reaches_handler(void **state)
{
	uint8_t list[4 + 20] = { 0, 0, 0, 0, 0x08, 0x12, 0x00 };

	(void)state;
	fake.handler.reconfigure = record_reconfigure;
	reconfigure_count = 0;
	reconfigure_result = -EIO;
	mode_select6(0x10, list, sizeof(list));
	assert_int_equal(fake.completion.status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(fake.completion.sense[2] & 0x0f, SCSI_SENSE_MEDIUM_ERROR);
	assert_true(fake.dev.write_cache);
	assert_int_equal(reconfigure_count, 1);
	assert_false(reconfigured.write_cache);

	reconfigure_result = 0;
	fake.call_count = 0;
	mode_select6(0x10, list, sizeof(list));
	assert_good();
	assert_int_equal(reconfigure_count, 2);
	assert_int_equal(reconfigured.what, TCMU_CHANGE_WRITE_CACHE);
	assert_false(reconfigured.write_cache);
	assert_false(fake.dev.write_cache);
	/* Flushed before the handler heard of it. */
	assert_int_equal(fake.call_count, 1);
	assert_int_equal(fake.calls[0].op, 'f');

	/* Unchanged: the handler is not asked. */
	mode_select6(0x10, list, sizeof(list));
	assert_good();
	assert_int_equal(reconfigure_count, 2);

	list[6] = 0x04;
	mode_select6(0x10, list, sizeof(list));
	assert_good();
	assert_int_equal(reconfigure_count, 3);
	assert_true(reconfigured.write_cache);
	assert_true(fake.dev.write_cache);
}

/* A failed flush leaves the cache on; the handler is not told. */
static void test_select_write_cache_failed_flush(void **state)
{
	uint8_t list[4 + 20] = { 0, 0, 0, 0, 0x08, 0x12, 0x00 };

	(void)state;
	fake.handler.reconfigure = record_reconfigure;
	reconfigure_count = 0;
	fake.complete_error = -EIO;
	mode_select6(0x10, list, sizeof(list));
	assert_int_equal(fake.completion.status, SCSI_STATUS_CHECK_CONDITION);
	assert_true(fake.dev.write_cache);
	assert_int_equal(reconfigure_count, 0);
}

static void test_select_descriptor_sense(void **state)
{
	uint8_t list[8 + 8 + 12] = { 0, 0, 0, 0, 0, 0, 0, 8,
				     0, 0, 0x08, 0x00, 0, 0, 0x02, 0x00,
				     0x0a, 0x0a, 0x04, 0x10 };
	uint8_t cdb[10] = { 0x55, 0x10, 0, 0, 0, 0, 0, 0, sizeof(list), 0 };
	uint8_t read10[10] = { 0x28, 0, 0, 0, 0x10, 0, 0, 0, 1, 0 };
	uint8_t buffer[512];

	(void)state;
	EXECUTE(cdb, list, sizeof(list));
	assert_good();
	assert_true(fake.dev.scsi.descriptor_sense);
	EXECUTE(read10, buffer, sizeof(buffer));
	assert_int_equal(fake.completion.sense[0], 0x72);
}

static void test_select_refuses_unchangeable(void **state)
{
	uint8_t caching_rcd[4 + 20] = { 0, 0, 0, 0, 0x08, 0x12, 0x05 };
	uint8_t control_qam[4 + 12] = { 0, 0, 0, 0, 0x0a, 0x0a, 0x00, 0x00 };
	uint8_t bad_length[4 + 12] = { 0, 0, 0, 0, 0x08, 0x0a, 0x04 };
	uint8_t unknown_page[4 + 12] = { 0, 0, 0, 0, 0x02, 0x0e };
	uint8_t medium_type[4] = { 0, 0x01, 0, 0 };
	uint8_t block_size[4 + 8] = { 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x10, 0x00 };
	uint8_t block_count_zero[4 + 8] = { 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x02, 0x00 };
	uint8_t truncated_page[4 + 10] = { 0, 0, 0, 0, 0x08, 0x12, 0x04 };

	(void)state;
	mode_select6(0x10, caching_rcd, sizeof(caching_rcd));
	assert_invalid_parameter_field(6, 0);
	assert_true(fake.dev.write_cache);
	mode_select6(0x10, control_qam, sizeof(control_qam));
	assert_invalid_parameter_field(7, 4);
	mode_select6(0x10, bad_length, sizeof(bad_length));
	assert_invalid_parameter_field(5, 7);
	mode_select6(0x10, unknown_page, sizeof(unknown_page));
	assert_invalid_parameter_field(4, 5);
	mode_select6(0x10, medium_type, sizeof(medium_type));
	assert_invalid_parameter_field(1, 7);
	mode_select6(0x10, block_size, sizeof(block_size));
	assert_invalid_parameter_field(10, 7);
	mode_select6(0x10, block_count_zero, sizeof(block_count_zero));
	assert_good();
	mode_select6(0x10, truncated_page, sizeof(truncated_page));
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
	assert_true(fake.dev.write_cache);
}

static void test_select_all_or_nothing(void **state)
{
	/* A valid caching page, then an invalid control page: nothing applies. */
	uint8_t list[4 + 20 + 12] = { 0, 0, 0, 0,
				      0x08, 0x12, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				      0, 0, 0, 0, 0, 0, 0, 0,
				      0x0a, 0x0a, 0x04, 0x11 };

	(void)state;
	mode_select6(0x10, list, sizeof(list));
	assert_invalid_parameter_field(27, 0);
	assert_true(fake.dev.write_cache);
	assert_false(fake.dev.scsi.descriptor_sense);
	assert_no_handler_call();
}

static void test_select_informational_exceptions(void **state)
{
	uint8_t same[4 + 12] = { 0, 0, 0, 0, 0x1c, 0x0a, 0x08 };
	uint8_t enable[4 + 12] = { 0, 0, 0, 0, 0x1c, 0x0a, 0x00 };

	(void)state;
	mode_select6(0x10, same, sizeof(same));
	assert_good();
	mode_select6(0x10, enable, sizeof(enable));
	assert_invalid_parameter_field(6, 3);
}

static void test_select_cdb_fields(void **state)
{
	uint8_t list[4 + 20] = { 0, 0, 0, 0, 0x08, 0x12, 0x04 };

	(void)state;
	/* SP: nothing can be saved. */
	mode_select6(0x11, list, sizeof(list));
	assert_invalid_cdb_field(1, 0);
	/* PF=0 means vendor-specific pages. */
	mode_select6(0x00, list, sizeof(list));
	assert_invalid_cdb_field(1, 4);
	/* An empty list does nothing. */
	mode_select6(0x10, list, 0);
	assert_good();
	mode_select6(0x10, list, 2);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, fake_setup, fake_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_sense6_caching_with_block_descriptor),
		TEST(test_sense6_all_pages),
		TEST(test_sense6_truncated),
		TEST(test_sense_changeable_and_default),
		TEST(test_sense_invalid_fields),
		TEST(test_sense10),
		TEST(test_sense_block_count_saturates),
		TEST(test_select_write_cache),
		TEST(test_select_write_cache_reaches_handler),
		TEST(test_select_write_cache_failed_flush),
		TEST(test_select_descriptor_sense),
		TEST(test_select_refuses_unchangeable),
		TEST(test_select_all_or_nothing),
		TEST(test_select_informational_exceptions),
		TEST(test_select_cdb_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
