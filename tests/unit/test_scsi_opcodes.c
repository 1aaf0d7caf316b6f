/* SPDX-License-Identifier: Apache-2.0 */
/*
 * REPORT SUPPORTED OPERATION CODES, and its consistency with dispatch:
 * every command it lists is executed, every reserved bit of its usage
 * maps is refused.
 */
#include <string.h>

#include "scsi_fixture.h"

static void rsoc(uint8_t options, uint8_t opcode, uint16_t service_action,
		 uint32_t allocation_length, uint8_t *buffer, size_t length)
{
	uint8_t cdb[12] = { 0xa3, 0x0c, options, opcode };

	scsi_put_be16(cdb + 4, service_action);
	scsi_put_be32(cdb + 6, allocation_length);
	memset(buffer, 0xaa, length);
	EXECUTE(cdb, buffer, length);
}

/* The descriptor of opcode/service action in an all-commands answer, or NULL. */
static const uint8_t *find_descriptor(const uint8_t *data, size_t descriptor_size,
				      uint8_t opcode, uint16_t service_action)
{
	uint32_t length = scsi_get_be32(data);

	for (uint32_t at = 4; at < 4 + length; at += (uint32_t)descriptor_size) {
		const uint8_t *descriptor = data + at;

		if (descriptor[0] == opcode &&
		    (!(descriptor[5] & 0x01) || scsi_get_be16(descriptor + 2) == service_action))
			return descriptor;
	}
	return NULL;
}

static void test_all_commands(void **state)
{
	static uint8_t buffer[2048];
	const uint8_t *descriptor;
	uint32_t length;

	(void)state;
	rsoc(0, 0, 0, sizeof(buffer), buffer, sizeof(buffer));
	assert_good();
	length = scsi_get_be32(buffer);
	assert_int_equal(length % 8, 0);
	assert_int_equal(fake.completion.read_length, 4 + length);

	descriptor = find_descriptor(buffer, 8, 0x28, 0);
	assert_non_null(descriptor);
	assert_int_equal(descriptor[5], 0x00);
	assert_int_equal(scsi_get_be16(descriptor + 6), 10);
	descriptor = find_descriptor(buffer, 8, 0x9e, 0x10);
	assert_non_null(descriptor);
	assert_int_equal(descriptor[5], 0x01);	/* SERVACTV */
	assert_int_equal(scsi_get_be16(descriptor + 2), 0x10);
	assert_int_equal(scsi_get_be16(descriptor + 6), 16);
	assert_non_null(find_descriptor(buffer, 8, 0x42, 0));
	assert_non_null(find_descriptor(buffer, 8, 0x89, 0));
	assert_non_null(find_descriptor(buffer, 8, 0xa0, 0));
	assert_null(find_descriptor(buffer, 8, 0xc7, 0));
}

static void test_all_commands_without_unmap(void **state)
{
	static uint8_t buffer[2048];

	(void)state;
	rsoc(0, 0, 0, sizeof(buffer), buffer, sizeof(buffer));
	assert_good();
	assert_null(find_descriptor(buffer, 8, 0x42, 0));
	assert_null(find_descriptor(buffer, 8, 0x9e, 0x12));
	assert_non_null(find_descriptor(buffer, 8, 0x9e, 0x10));
}

static void test_all_commands_with_timeouts(void **state)
{
	static uint8_t buffer[2048];
	const uint8_t *descriptor;

	(void)state;
	rsoc(0x80, 0, 0, sizeof(buffer), buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(scsi_get_be32(buffer) % 20, 0);
	descriptor = find_descriptor(buffer, 20, 0x2a, 0);
	assert_non_null(descriptor);
	assert_int_equal(descriptor[5], 0x02);	/* CTDP */
	assert_int_equal(scsi_get_be16(descriptor + 8), 0x0a);
}

static void test_all_commands_truncated(void **state)
{
	uint8_t buffer[64];

	(void)state;
	rsoc(0, 0, 0, 10, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 10);
	assert_true(scsi_get_be32(buffer) > 100);
	assert_int_equal(buffer[10], 0);
}

static void test_one_command(void **state)
{
	uint8_t buffer[64];
	const uint8_t read10_usage[10] = { 0x28, 0x1a, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0 };
	const uint8_t read_capacity16_usage[4] = { 0x9e, 0x10, 0xff, 0xff };

	(void)state;
	rsoc(1, 0x28, 0, sizeof(buffer), buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 14);
	assert_int_equal(buffer[0], 0);
	assert_int_equal(buffer[1], 0x03);
	assert_int_equal(scsi_get_be16(buffer + 2), 10);
	assert_memory_equal(buffer + 4, read10_usage, sizeof(read10_usage));

	rsoc(0x81, 0x28, 0, sizeof(buffer), buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 26);
	assert_int_equal(buffer[1], 0x83);
	assert_int_equal(scsi_get_be16(buffer + 14), 0x0a);

	rsoc(2, 0x9e, 0x10, sizeof(buffer), buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(buffer[1], 0x03);
	assert_int_equal(scsi_get_be16(buffer + 2), 16);
	assert_memory_equal(buffer + 4, read_capacity16_usage, sizeof(read_capacity16_usage));

	rsoc(3, 0x2a, 0x1234, sizeof(buffer), buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(buffer[1], 0x03);

	/* Not supported: SUPPORT 001b and nothing else. */
	rsoc(1, 0xc7, 0, sizeof(buffer), buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 4);
	assert_int_equal(buffer[1], 0x01);
	assert_int_equal(scsi_get_be16(buffer + 2), 0);
	rsoc(2, 0x9e, 0x11, sizeof(buffer), buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(buffer[1], 0x01);
}

static void test_one_command_invalid(void **state)
{
	uint8_t buffer[64];

	(void)state;
	/* 001b for an opcode with service actions, 010b for one without. */
	rsoc(1, 0x9e, 0, sizeof(buffer), buffer, sizeof(buffer));
	assert_invalid_cdb_field(3, 7);
	rsoc(2, 0x28, 0, sizeof(buffer), buffer, sizeof(buffer));
	assert_invalid_cdb_field(3, 7);
	rsoc(4, 0x28, 0, sizeof(buffer), buffer, sizeof(buffer));
	assert_invalid_cdb_field(2, 2);
	rsoc(0x40, 0x28, 0, sizeof(buffer), buffer, sizeof(buffer));
	assert_invalid_cdb_field(2, 6);
}

/*
 * Every listed command is dispatched (never INVALID COMMAND OPERATION
 * CODE, except REPORT LUNS, which the kernel answers), and every bit its
 * usage map leaves clear is refused with a field pointer to it.
 */
static void test_usage_maps_match_dispatch(void **state)
{
	static uint8_t list[2048];
	static uint8_t buffer[64 * 1024];
	uint32_t length;

	(void)state;
	rsoc(0, 0, 0, sizeof(list), list, sizeof(list));
	length = scsi_get_be32(list);
	for (uint32_t at = 4; at < 4 + length; at += 8) {
		const uint8_t *descriptor = list + at;
		uint8_t opcode = descriptor[0];
		uint16_t service_action = scsi_get_be16(descriptor + 2);
		uint8_t answer[64];
		uint8_t usage[16];
		uint8_t cdb[16];
		size_t cdb_length;

		rsoc(descriptor[5] & 0x01 ? 2 : 1, opcode, service_action, sizeof(answer), answer,
		     sizeof(answer));
		assert_int_equal(answer[1] & 0x07, 0x03);
		cdb_length = scsi_get_be16(answer + 2);
		assert_int_equal(cdb_length, scsi_get_be16(descriptor + 6));
		memcpy(usage, answer + 4, cdb_length);
		assert_int_equal(usage[0], opcode);

		for (size_t byte = 1; byte < cdb_length; byte++) {
			for (int bit = 0; bit < 8; bit++) {
				uint8_t mask = (uint8_t)(1u << bit);

				if (usage[byte] & mask)
					continue;
				if (byte == cdb_length - 1 && bit >= 6)
					continue;	/* vendor specific */
				if (byte == 1 && (descriptor[5] & 0x01) && bit < 5)
					continue;	/* the service action */
				memset(cdb, 0, sizeof(cdb));
				cdb[0] = opcode;
				if (descriptor[5] & 0x01)
					cdb[1] = (uint8_t)service_action;
				cdb[byte] |= mask;
				fake_execute(cdb, cdb_length, buffer, sizeof(buffer));
				if (opcode == 0xa0) {
					assert_check(SCSI_SENSE_ILLEGAL_REQUEST,
						     SCSI_ASC_INVALID_COMMAND_OPERATION_CODE);
					continue;
				}
				assert_invalid_cdb_field((uint16_t)byte, bit);
			}
		}

		memset(cdb, 0, sizeof(cdb));
		cdb[0] = opcode;
		if (descriptor[5] & 0x01)
			cdb[1] = (uint8_t)service_action;
		fake_execute(cdb, cdb_length, buffer, sizeof(buffer));
		assert_int_equal(fake.completion.count, 1);
		if (opcode != 0xa0)
			assert_false(fake.completion.status == SCSI_STATUS_CHECK_CONDITION &&
				     scsi_get_be16(fake.completion.sense + 12) ==
					     SCSI_ASC_INVALID_COMMAND_OPERATION_CODE);
	}
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, fake_setup, fake_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_all_commands),
		cmocka_unit_test_setup_teardown(test_all_commands_without_unmap,
						fake_setup_no_unmap, fake_teardown),
		TEST(test_all_commands_with_timeouts),
		TEST(test_all_commands_truncated),
		TEST(test_one_command),
		TEST(test_one_command_invalid),
		TEST(test_usage_maps_match_dispatch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
