/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A write-protected device (tcmu_device_set_write_protected): every
 * command that would change the medium is DATA PROTECT, WRITE PROTECTED
 * before the handler hears of it; reads and cache flushes still work, and
 * MODE SENSE shows WP.
 */
#include <string.h>

#include "scsi_fixture.h"

#define BLOCK 512

struct refused_command {
	const char *name;
	uint8_t cdb[16];
	size_t cdb_length;
	size_t data_length;
};

/* LBA 8, one block (or its descriptor), wherever the CDB has them. */
static const struct refused_command refused[] = {
	{ "WRITE(6)", { 0x0a, 0, 0, 8, 1, 0 }, 6, BLOCK },
	{ "WRITE(10)", { 0x2a, 0, 0, 0, 0, 8, 0, 0, 1, 0 }, 10, BLOCK },
	{ "WRITE(12)", { 0xaa, 0, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0 }, 12, BLOCK },
	{ "WRITE(16)", { 0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0 }, 16, BLOCK },
	{ "WRITE AND VERIFY(10)", { 0x2e, 0, 0, 0, 0, 8, 0, 0, 1, 0 }, 10, BLOCK },
	{ "WRITE AND VERIFY(12)", { 0xae, 0, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0 }, 12, BLOCK },
	{ "WRITE AND VERIFY(16)", { 0x8e, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0 }, 16,
	  BLOCK },
	{ "WRITE SAME(10)", { 0x41, 0, 0, 0, 0, 8, 0, 0, 1, 0 }, 10, BLOCK },
	{ "WRITE SAME(16) UNMAP", { 0x93, 0x08, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0 }, 16,
	  BLOCK },
	{ "UNMAP", { 0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0 }, 10, 24 },
	{ "COMPARE AND WRITE", { 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0 }, 16,
	  2 * BLOCK },
	{ "FORMAT UNIT", { 0x04, 0, 0, 0, 0, 0 }, 6, 0 },
};

static void unmap_parameters(uint8_t *data)
{
	memset(data, 0, 24);
	scsi_put_be16(data, 22);
	scsi_put_be16(data + 2, 16);
	scsi_put_be64(data + 8, 8);
	scsi_put_be32(data + 16, 1);
}

static void test_medium_changing_commands_refused(void **state)
{
	uint8_t data[2 * BLOCK];

	(void)state;
	memset(fake.medium + 8 * BLOCK, 0x77, BLOCK);
	tcmu_device_set_write_protected(&fake.dev, true);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		const struct refused_command *command = &refused[i];

		memset(data, 0xee, sizeof(data));
		if (command->cdb[0] == 0x42)
			unmap_parameters(data);
		print_message("%s\n", command->name);
		fake_execute(command->cdb, command->cdb_length, command->data_length ? data : NULL,
			     command->data_length);
		assert_check(SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		assert_no_handler_call();
		/* Refused before the write gate: nothing holds or waits there. */
		assert_int_equal(fake.dev.scsi.writes_in_flight, 0);
		assert_false(fake.dev.scsi.exclusive_in_flight);
	}
	for (unsigned int i = 0; i < BLOCK; i++)
		assert_int_equal(fake.medium[8 * BLOCK + i], 0x77);

	/* Writable again: the same commands reach the handler. */
	tcmu_device_set_write_protected(&fake.dev, false);
	memset(data, 0xee, sizeof(data));
	fake_execute(refused[1].cdb, refused[1].cdb_length, data, BLOCK);
	assert_good();
	assert_int_equal(fake.medium[8 * BLOCK], 0xee);
}

static void test_reads_and_flushes_work(void **state)
{
	const uint8_t read10[10] = { 0x28, 0, 0, 0, 0, 8, 0, 0, 1, 0 };
	const uint8_t verify10[10] = { 0x2f, 0, 0, 0, 0, 8, 0, 0, 1, 0 };
	const uint8_t synchronize_cache10[10] = { 0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	const uint8_t test_unit_ready[6] = { 0 };
	uint8_t data[BLOCK];

	(void)state;
	memset(fake.medium + 8 * BLOCK, 0x42, BLOCK);
	tcmu_device_set_write_protected(&fake.dev, true);
	EXECUTE(read10, data, sizeof(data));
	assert_good();
	assert_int_equal(data[0], 0x42);
	EXECUTE(verify10, NULL, 0);
	assert_good();
	EXECUTE(synchronize_cache10, NULL, 0);
	assert_good();
	assert_int_equal(fake.calls[0].op, 'f');
	EXECUTE(test_unit_ready, NULL, 0);
	assert_good();
}

/* The device-specific parameter: WP (bit 7) next to DPOFUA (bit 4). */
static void test_mode_sense_shows_write_protect(void **state)
{
	const uint8_t mode_sense6[6] = { 0x1a, 0x08, 0x3f, 0, 255, 0 };
	const uint8_t mode_sense10[10] = { 0x5a, 0x08, 0x3f, 0, 0, 0, 0, 1, 0, 0 };
	uint8_t data[256];

	(void)state;
	EXECUTE(mode_sense6, data, sizeof(data));
	assert_good();
	assert_int_equal(data[2], 0x10);
	EXECUTE(mode_sense10, data, sizeof(data));
	assert_good();
	assert_int_equal(data[3], 0x10);

	tcmu_device_set_write_protected(&fake.dev, true);
	EXECUTE(mode_sense6, data, sizeof(data));
	assert_good();
	assert_int_equal(data[2], 0x90);
	EXECUTE(mode_sense10, data, sizeof(data));
	assert_good();
	assert_int_equal(data[3], 0x90);

	tcmu_device_set_write_protected(&fake.dev, false);
	EXECUTE(mode_sense6, data, sizeof(data));
	assert_int_equal(data[2], 0x10);
}

/* A stopped unit is NOT READY first: it answers no media access at all. */
static void test_not_ready_comes_first(void **state)
{
	uint8_t data[BLOCK] = { 0 };

	(void)state;
	tcmu_device_set_write_protected(&fake.dev, true);
	fake.dev.scsi.stopped = true;
	fake_execute(refused[1].cdb, refused[1].cdb_length, data, BLOCK);
	assert_check(SCSI_SENSE_NOT_READY, SCSI_ASC_NOT_READY_INITIALIZING_REQUIRED);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, fake_setup, fake_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_medium_changing_commands_refused),
		TEST(test_reads_and_flushes_work),
		TEST(test_mode_sense_shows_write_protect),
		TEST(test_not_ready_comes_first),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
