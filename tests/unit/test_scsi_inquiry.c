/* SPDX-License-Identifier: Apache-2.0 */
/* INQUIRY: standard data and the VPD pages, byte by byte. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_fixture.h"

static void inquiry(uint8_t evpd, uint8_t page, uint16_t allocation_length, uint8_t *buffer,
		    size_t length)
{
	uint8_t cdb[6] = { 0x12, evpd, page, (uint8_t)(allocation_length >> 8),
			   (uint8_t)allocation_length, 0 };

	memset(buffer, 0xaa, length);
	EXECUTE(cdb, buffer, length);
}

static void test_standard(void **state)
{
	uint8_t buffer[128];

	(void)state;
	inquiry(0, 0, 96, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 96);
	assert_int_equal(buffer[0], 0x00);
	assert_int_equal(buffer[1], 0x00);
	assert_int_equal(buffer[2], 0x06);
	assert_int_equal(buffer[3], 0x12);
	assert_int_equal(buffer[4], 91);
	assert_int_equal(buffer[5], 0x08);	/* 3PC */
	assert_int_equal(buffer[6], 0x00);
	assert_int_equal(buffer[7], 0x02);
	assert_memory_equal(buffer + 8, "LIO-ORG TCMU device     0002", 28);
	assert_int_equal(scsi_get_be16(buffer + 58), 0x00a0);
	assert_int_equal(scsi_get_be16(buffer + 60), 0x0460);
	assert_int_equal(scsi_get_be16(buffer + 62), 0x04c0);
	for (size_t i = 64; i < sizeof(buffer); i++)
		assert_int_equal(buffer[i], 0);
}

static void test_standard_truncated(void **state)
{
	uint8_t buffer[64];

	(void)state;
	inquiry(0, 0, 5, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 5);
	assert_int_equal(buffer[4], 91);
	for (size_t i = 5; i < sizeof(buffer); i++)
		assert_int_equal(buffer[i], 0);

	/* The buffer is shorter than the allocation length: it bounds the data. */
	inquiry(0, 0, 96, buffer, 36);
	assert_good();
	assert_int_equal(fake.completion.read_length, 36);

	inquiry(0, 0, 0, buffer, 0);
	assert_good();
	assert_int_equal(fake.completion.read_length, 0);
}

static void test_invalid_fields(void **state)
{
	uint8_t buffer[64];

	(void)state;
	/* A page code without EVPD. */
	inquiry(0, 0x80, 64, buffer, sizeof(buffer));
	assert_invalid_cdb_field(2, 7);
	/* CMDDT is obsolete. */
	inquiry(0x02, 0, 64, buffer, sizeof(buffer));
	assert_invalid_cdb_field(1, 1);
	/* An unsupported page. */
	inquiry(1, 0x89, 64, buffer, sizeof(buffer));
	assert_invalid_cdb_field(2, 7);
}

static void test_supported_pages(void **state)
{
	uint8_t buffer[64];
	const uint8_t expected[] = { 0, 0, 0, 8, 0x00, 0x80, 0x83, 0x86, 0x8f, 0xb0, 0xb1, 0xb2 };

	(void)state;
	inquiry(1, 0x00, 64, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, sizeof(expected));
	assert_memory_equal(buffer, expected, sizeof(expected));
	assert_int_equal(buffer[sizeof(expected)], 0);
}

static void test_unit_serial(void **state)
{
	uint8_t buffer[64];
	const char *serial = fake.dev.unit_serial;

	(void)state;
	inquiry(1, 0x80, 64, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(buffer[1], 0x80);
	assert_int_equal(scsi_get_be16(buffer + 2), strlen(serial));
	assert_memory_equal(buffer + 4, serial, strlen(serial));

	fake.dev.unit_serial = "";
	inquiry(1, 0x80, 64, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 4);
	assert_int_equal(scsi_get_be16(buffer + 2), 0);
}

/* A serial from the storage (tcmu_device_set_unit_serial) replaces configfs's everywhere. */
static void test_unit_serial_from_storage(void **state)
{
	uint8_t buffer[512];
	const char *serial = "5e3b6b8b4567";
	const uint8_t naa[16] = { 0x60, 0x01, 0x40, 0x55, 0xe3, 0xb6, 0xb8, 0xb4, 0x56, 0x70 };
	char longest[255];

	(void)state;
	fake.dev.unit_serial = strdup("0a1b2c3d-4e5f-6789-abcd-ef0123456789");
	assert_int_equal(tcmu_device_set_unit_serial(&fake.dev, serial), 0);
	inquiry(1, 0x80, 512, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(scsi_get_be16(buffer + 2), strlen(serial));
	assert_memory_equal(buffer + 4, serial, strlen(serial));
	inquiry(1, 0x83, 512, buffer, sizeof(buffer));
	assert_good();
	assert_memory_equal(buffer + 8, naa, sizeof(naa));
	assert_int_equal(buffer[27], 8 + strlen(serial));
	assert_memory_equal(buffer + 36, serial, strlen(serial));

	/* Refused, and the serial stays: empty, spaces at an end, not printable, too long. */
	assert_int_equal(tcmu_device_set_unit_serial(&fake.dev, ""), -EINVAL);
	assert_int_equal(tcmu_device_set_unit_serial(&fake.dev, NULL), -EINVAL);
	assert_int_equal(tcmu_device_set_unit_serial(&fake.dev, " abc"), -EINVAL);
	assert_int_equal(tcmu_device_set_unit_serial(&fake.dev, "abc "), -EINVAL);
	assert_int_equal(tcmu_device_set_unit_serial(&fake.dev, "ab\tc"), -EINVAL);
	assert_int_equal(tcmu_device_set_unit_serial(&fake.dev, "caf\xc3\xa9"), -EINVAL);
	memset(longest, 'a', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	longest[0] = 'b';
	assert_int_equal(tcmu_device_set_unit_serial(&fake.dev, longest), 0);
	inquiry(1, 0x80, 512, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(scsi_get_be16(buffer + 2), 254);
	assert_memory_equal(buffer + 4, longest, 254);
	{
		char too_long[256];

		memset(too_long, 'a', sizeof(too_long) - 1);
		too_long[sizeof(too_long) - 1] = '\0';
		assert_int_equal(tcmu_device_set_unit_serial(&fake.dev, too_long), -EINVAL);
	}
	assert_string_equal(fake.dev.unit_serial, longest);
	/* Spaces inside are printable ASCII like the rest. */
	assert_int_equal(tcmu_device_set_unit_serial(&fake.dev, "pool image 1"), 0);
	assert_string_equal(fake.dev.unit_serial, "pool image 1");

	/* Only from open(). */
	fake.dev.handler_open = true;
	assert_int_equal(tcmu_device_set_unit_serial(&fake.dev, serial), -EINVAL);
	assert_string_equal(fake.dev.unit_serial, "pool image 1");
	free(fake.dev.unit_serial);
	fake.dev.unit_serial = NULL;
}

static void test_device_identification(void **state)
{
	uint8_t buffer[128];
	uint8_t first_naa[16];
	const char *serial = fake.dev.unit_serial;
	const uint8_t naa[20] = {
		0x01, 0x03, 0x00, 0x10,
		/* NAA 6, OUI 001405, then the serial's hex digits 0a1b2c3d4e5f6789abcdef012 */
		0x60, 0x01, 0x40, 0x50, 0xa1, 0xb2, 0xc3, 0xd4,
		0xe5, 0xf6, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x12,
	};

	(void)state;
	inquiry(1, 0x83, 128, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(buffer[1], 0x83);
	assert_int_equal(scsi_get_be16(buffer + 2), 20 + 12 + strlen(serial));
	assert_memory_equal(buffer + 4, naa, sizeof(naa));
	/* T10 vendor id: ASCII, LU, "LIO-ORG " and the serial. */
	assert_int_equal(buffer[24], 0x02);
	assert_int_equal(buffer[25], 0x01);
	assert_int_equal(buffer[27], 8 + strlen(serial));
	assert_memory_equal(buffer + 28, "LIO-ORG ", 8);
	assert_memory_equal(buffer + 36, serial, strlen(serial));
	assert_int_equal(fake.completion.read_length, 4 + 20 + 12 + strlen(serial));

	/* Without a WWN the name stands in, so designators stay distinct. */
	fake.dev.unit_serial = "";
	inquiry(1, 0x83, 128, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(buffer[27], 8 + strlen("disk0"));
	assert_memory_equal(buffer + 36, "disk0", 5);
	/* The NAA then comes from a hash of the backstore: distinct per device. */
	fake.dev.backstore = "user_1/disk0";
	inquiry(1, 0x83, 128, buffer, sizeof(buffer));
	memcpy(first_naa, buffer + 8, 16);
	assert_int_equal(first_naa[0], 0x60);
	assert_int_equal(first_naa[1], 0x01);
	assert_int_equal(first_naa[2], 0x40);
	assert_int_equal(first_naa[3] & 0xf0, 0x50);
	fake.dev.backstore = "user_2/disk0";
	inquiry(1, 0x83, 128, buffer, sizeof(buffer));
	assert_memory_not_equal(buffer + 8, first_naa, 16);
	assert_memory_equal(buffer + 8, first_naa, 3);
}

static void test_extended_inquiry(void **state)
{
	uint8_t buffer[64];

	(void)state;
	inquiry(1, 0x86, 64, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 64);
	assert_int_equal(buffer[1], 0x86);
	assert_int_equal(scsi_get_be16(buffer + 2), 0x3c);
	assert_int_equal(buffer[5], 0x07);
	assert_int_equal(buffer[6], 0x01);
}

static void test_third_party_copy(void **state)
{
	uint8_t buffer[128];
	const uint8_t commands[12] = { 0x00, 0x01, 0x00, 0x08, 7, 0x83, 1, 0x00, 0x84, 2, 0x00, 0x03 };
	const uint8_t descriptors[8] = { 0x00, 0x08, 0x00, 0x04, 2, 0x02, 0xe4, 0 };
	const uint8_t cscd_ids[8] = { 0x00, 0x0c, 0x00, 0x04, 0, 0, 0, 0 };
	const uint8_t *descriptor = buffer + 4;

	(void)state;
	inquiry(1, 0x8f, 128, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(buffer[1], 0x8f);
	assert_int_equal(scsi_get_be16(buffer + 2), 12 + 32 + 8 + 8 + 36);
	assert_int_equal(fake.completion.read_length, 4 + 12 + 32 + 8 + 8 + 36);
	assert_memory_equal(descriptor, commands, sizeof(commands));
	descriptor += 12;
	assert_int_equal(scsi_get_be16(descriptor), 0x0004);
	assert_int_equal(scsi_get_be16(descriptor + 2), 0x1c);
	assert_int_equal(scsi_get_be16(descriptor + 8), 8);
	assert_int_equal(scsi_get_be16(descriptor + 10), 64);
	assert_int_equal(scsi_get_be32(descriptor + 16), 0);	/* no inline data */
	descriptor += 32;
	assert_memory_equal(descriptor, descriptors, sizeof(descriptors));
	descriptor += 8;
	assert_memory_equal(descriptor, cscd_ids, sizeof(cscd_ids));
	descriptor += 8;
	assert_int_equal(scsi_get_be16(descriptor), 0x8001);
	assert_int_equal(scsi_get_be16(descriptor + 2), 0x20);
	assert_int_equal(scsi_get_be32(descriptor + 12), 8 << 20);	/* 8 MiB: less than 0xffff blocks */
	assert_int_equal(descriptor[16], 9);
}

static void test_block_limits(void **state)
{
	uint8_t buffer[64];

	(void)state;
	inquiry(1, 0xb0, 64, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 64);
	assert_int_equal(buffer[1], 0xb0);
	assert_int_equal(scsi_get_be16(buffer + 2), 0x3c);
	assert_int_equal(buffer[4], 0x01);
	assert_int_equal(scsi_get_be32(buffer + 8), 128);
	assert_int_equal(scsi_get_be32(buffer + 20), (1u << 29) / 512);
	assert_int_equal(scsi_get_be32(buffer + 24), 256);
	/* MAXIMUM WRITE SAME LENGTH: 128 MiB. */
	assert_int_equal(scsi_get_be64(buffer + 36), (128u << 20) / 512);
}

/* With a ring, half its data area bounds a transfer, if above hw_max_sectors. */
static void test_block_limits_from_ring(void **state)
{
	static uint8_t map[4096 + 8192 + 1024 * 1024];
	uint8_t buffer[64];

	(void)state;
	fake.dev.ring.map = map;
	fake.dev.ring.map_size = sizeof(map);
	fake.dev.ring.cmdr = map + 4096;
	fake.dev.ring.cmdr_size = 8192;
	inquiry(1, 0xb0, 64, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(scsi_get_be32(buffer + 8), 1024 * 1024 / 2 / 512);
	/* The compare-and-write limit follows, within its one-byte field. */
	assert_int_equal(buffer[5], 255);

	fake.dev.max_sectors = 4096;
	inquiry(1, 0xb0, 64, buffer, sizeof(buffer));
	assert_int_equal(scsi_get_be32(buffer + 8), 4096);
}

static void test_block_limits_without_unmap(void **state)
{
	uint8_t buffer[64];

	(void)state;
	inquiry(1, 0xb0, 64, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(scsi_get_be32(buffer + 8), 128);
	assert_int_equal(scsi_get_be32(buffer + 20), 0);
	assert_int_equal(scsi_get_be32(buffer + 24), 0);
}

static void test_block_characteristics(void **state)
{
	uint8_t buffer[64];

	(void)state;
	inquiry(1, 0xb1, 64, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(buffer[1], 0xb1);
	assert_int_equal(scsi_get_be16(buffer + 2), 0x3c);
}

static void test_provisioning(void **state)
{
	uint8_t buffer[16];

	(void)state;
	inquiry(1, 0xb2, 16, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 8);
	assert_int_equal(buffer[1], 0xb2);
	assert_int_equal(scsi_get_be16(buffer + 2), 4);
	assert_int_equal(buffer[5] & 0x80, 0x80);	/* LBPU */
	assert_int_equal(buffer[5] & 0x04, 0x04);	/* LBPRZ */
	assert_int_equal(buffer[6], 0x02);		/* thin */
}

static void test_provisioning_without_unmap(void **state)
{
	uint8_t buffer[16];

	(void)state;
	inquiry(1, 0xb2, 16, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(buffer[5], 0);
	assert_int_equal(buffer[6], 0);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, fake_setup, fake_teardown)
#define TEST_NO_UNMAP(name) cmocka_unit_test_setup_teardown(name, fake_setup_no_unmap, fake_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_standard),
		TEST(test_standard_truncated),
		TEST(test_invalid_fields),
		TEST(test_supported_pages),
		TEST(test_unit_serial),
		TEST(test_unit_serial_from_storage),
		TEST(test_device_identification),
		TEST(test_extended_inquiry),
		TEST(test_third_party_copy),
		TEST(test_block_limits),
		TEST(test_block_limits_from_ring),
		TEST_NO_UNMAP(test_block_limits_without_unmap),
		TEST(test_block_characteristics),
		TEST(test_provisioning),
		TEST_NO_UNMAP(test_provisioning_without_unmap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
