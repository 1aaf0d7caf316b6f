/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Asymmetric access (scsi_alua.c): INQUIRY's TPGS and VPD 83h designators,
 * REPORT and SET TARGET PORT GROUPS, NOT READY off the active group, and
 * the unit attention a change of state raises.
 */
#include <errno.h>
#include <string.h>

#include "scsi_fixture.h"

static struct tcmu_port_group groups[2];
static int group_count;
static int set_state_calls;
static uint8_t set_state_wanted;
static int set_state_result;

static int get_port_groups(struct tcmu_device *dev, struct tcmu_port_group *out, size_t max)
{
	assert_ptr_equal(dev, &fake.dev);
	assert_true(max >= 2);
	memcpy(out, groups, sizeof(groups));
	return group_count;
}

static int set_port_state(struct tcmu_device *dev, struct tcmu_request *req, uint8_t state)
{
	set_state_calls++;
	set_state_wanted = state;
	if (set_state_result < 0)
		return set_state_result;
	scsi_alua_set_port_state(dev, state);
	tcmu_request_complete(req, 0);
	return 0;
}

/* Gateway 2 of two: group 1 active/optimized, group 2 (this one) standby. */
static int setup_gateway(void **state)
{
	fake_setup(state);
	fake.handler.get_port_groups = get_port_groups;
	groups[0] = (struct tcmu_port_group){ .id = 1, .state = TCMU_PORT_ACTIVE_OPTIMIZED };
	groups[1] = (struct tcmu_port_group){ .id = 2, .state = TCMU_PORT_STANDBY };
	group_count = 2;
	set_state_calls = 0;
	set_state_result = 0;
	assert_int_equal(scsi_alua_set_port_group(&fake.dev, 2), 0);
	return 0;
}

static int setup_explicit(void **state)
{
	setup_gateway(state);
	fake.handler.set_port_state = set_port_state;
	return 0;
}

static void inquiry(uint8_t evpd, uint8_t page, uint8_t *buffer, size_t length)
{
	uint8_t cdb[6] = { 0x12, evpd, page, 0, (uint8_t)length, 0 };

	memset(buffer, 0xaa, length);
	EXECUTE(cdb, buffer, length);
	assert_good();
}

static void read_10(void)
{
	uint8_t cdb[10] = { 0x28, 0, 0, 0, 0, 8, 0, 0, 1, 0 };
	uint8_t buffer[512];

	EXECUTE(cdb, buffer, sizeof(buffer));
}

static void rtpg(uint8_t format, uint8_t *buffer, uint32_t length)
{
	uint8_t cdb[12] = { 0xa3, (uint8_t)(format << 5 | 0x0a), 0, 0, 0, 0,
			    0, 0, (uint8_t)(length >> 8), (uint8_t)length, 0, 0 };

	memset(buffer, 0xaa, length);
	EXECUTE(cdb, buffer, length);
}

static void stpg(const uint8_t *list, uint32_t length)
{
	uint8_t cdb[12] = { 0xa4, 0x0a, 0, 0, 0, 0, 0, 0, 0, (uint8_t)length, 0, 0 };
	uint8_t buffer[64];

	memcpy(buffer, list, length);
	EXECUTE(cdb, buffer, length);
}

static void test_without_groups(void **state)
{
	uint8_t buffer[255];

	(void)state;
	inquiry(0, 0, buffer, 96);
	assert_int_equal(buffer[5], 0x08);	/* no TPGS */
	rtpg(0, buffer, 64);
	assert_invalid_cdb_field(1, 4);
	read_10();
	assert_good();
}

static void test_inquiry(void **state)
{
	uint8_t buffer[255];
	size_t length;
	const uint8_t *descriptor;
	int found = 0;

	(void)state;
	inquiry(0, 0, buffer, 96);
	assert_int_equal(buffer[5], 0x08 | 0x10);	/* 3PC, implicit ALUA */
	inquiry(1, 0x83, buffer, sizeof(buffer));
	length = scsi_get_be16(buffer + 2);
	for (descriptor = buffer + 4; descriptor < buffer + 4 + length;
	     descriptor += 4 + descriptor[3]) {
		uint8_t type = descriptor[1] & 0x0f;

		if (type != 4 && type != 5)
			continue;
		/* Binary, PIV, associated with the target port; the group's number. */
		assert_int_equal(descriptor[0] & 0x0f, 1);
		assert_int_equal(descriptor[1] & 0xf0, 0x90);
		assert_int_equal(descriptor[3], 4);
		assert_int_equal(scsi_get_be16(descriptor + 6), 2);
		found |= 1 << type;
	}
	assert_int_equal(found, (1 << 4) | (1 << 5));
}

static void test_report(void **state)
{
	uint8_t buffer[64];

	(void)state;
	rtpg(0, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 4 + 2 * 12);
	assert_int_equal(scsi_get_be32(buffer), 2 * 12);
	assert_int_equal(buffer[4] & 0x0f, TCMU_PORT_ACTIVE_OPTIMIZED);
	assert_int_equal(buffer[5], 0x8d);
	assert_int_equal(scsi_get_be16(buffer + 6), 1);
	assert_int_equal(buffer[11], 1);
	assert_int_equal(scsi_get_be16(buffer + 14), 1);
	assert_int_equal(buffer[16] & 0x0f, TCMU_PORT_STANDBY);
	assert_int_equal(scsi_get_be16(buffer + 18), 2);
	assert_int_equal(scsi_get_be16(buffer + 26), 2);

	/* Extended header: format 1, the implicit transition time. */
	rtpg(1, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(scsi_get_be32(buffer), 4 + 2 * 12);
	assert_int_equal(buffer[4], 0x10);
	assert_true(buffer[5] > 0);
	assert_int_equal(scsi_get_be16(buffer + 10), 1);

	/* Truncated to the allocation length. */
	rtpg(0, buffer, 8);
	assert_good();
	assert_int_equal(fake.completion.read_length, 8);
	assert_int_equal(scsi_get_be32(buffer), 2 * 12);

	rtpg(2, buffer, sizeof(buffer));
	assert_invalid_cdb_field(1, 7);

	/* The handler cannot say: the state is in transition, not made up. */
	group_count = -EIO;
	rtpg(0, buffer, sizeof(buffer));
	assert_check(SCSI_SENSE_NOT_READY, 0x040a);
}

static void test_medium_follows_state(void **state)
{
	uint8_t cdb_tur[6] = { 0 };
	uint8_t buffer[96];

	(void)state;
	read_10();
	assert_check(SCSI_SENSE_NOT_READY, 0x040b);
	assert_no_handler_call();
	/* TEST UNIT READY is refused in standby (SPC-4 5.16.2.4.4), INQUIRY is not. */
	EXECUTE(cdb_tur, NULL, 0);
	assert_check(SCSI_SENSE_NOT_READY, 0x040b);
	inquiry(0, 0, buffer, 96);

	tcmu_device_set_port_state(&fake.dev, TCMU_PORT_ACTIVE_OPTIMIZED);
	read_10();
	assert_good();
	tcmu_device_set_port_state(&fake.dev, TCMU_PORT_TRANSITIONING);
	read_10();
	assert_check(SCSI_SENSE_NOT_READY, 0x040a);
	tcmu_device_set_port_state(&fake.dev, TCMU_PORT_UNAVAILABLE);
	read_10();
	assert_check(SCSI_SENSE_NOT_READY, 0x040c);
}

static void test_set_implicit_only(void **state)
{
	const uint8_t list[8] = { 0, 0, 0, 0, TCMU_PORT_ACTIVE_OPTIMIZED, 0, 0, 2 };

	(void)state;
	stpg(list, sizeof(list));
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, 0x2000);
}

static void test_set_explicit(void **state)
{
	uint8_t buffer[96];
	const uint8_t take_over[8] = { 0, 0, 0, 0, TCMU_PORT_ACTIVE_OPTIMIZED, 0, 0, 2 };
	const uint8_t other_active[8] = { 0, 0, 0, 0, TCMU_PORT_ACTIVE_OPTIMIZED, 0, 0, 1 };
	const uint8_t other_standby[8] = { 0, 0, 0, 0, TCMU_PORT_STANDBY, 0, 0, 1 };
	const uint8_t bad_state[8] = { 0, 0, 0, 0, 0x1, 0, 0, 2 };

	(void)state;
	inquiry(0, 0, buffer, 96);
	assert_int_equal(buffer[5], 0x08 | 0x30);	/* implicit and explicit */

	stpg(other_active, sizeof(other_active));
	assert_invalid_parameter_field(4, 3);
	stpg(bad_state, sizeof(bad_state));
	assert_invalid_parameter_field(4, 3);
	stpg(other_standby, sizeof(other_standby));
	assert_good();
	stpg(take_over, 6);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, 0x1a00);
	assert_int_equal(set_state_calls, 0);

	set_state_result = -EIO;
	stpg(take_over, sizeof(take_over));
	assert_check(SCSI_SENSE_HARDWARE_ERROR, 0x670a);
	assert_int_equal(set_state_calls, 1);
	read_10();
	assert_check(SCSI_SENSE_NOT_READY, 0x040b);

	set_state_result = 0;
	stpg(take_over, sizeof(take_over));
	assert_good();
	assert_int_equal(set_state_calls, 2);
	assert_int_equal(set_state_wanted, TCMU_PORT_ACTIVE_OPTIMIZED);
	read_10();
	assert_good();
}

/* A change after the device opened: ASYMMETRIC ACCESS STATE CHANGED, once. */
static void test_state_change_unit_attention(void **state)
{
	const uint8_t take_over[8] = { 0, 0, 0, 0, TCMU_PORT_ACTIVE_OPTIMIZED, 0, 0, 2 };
	uint8_t buffer[96];

	(void)state;
	tcmu_device_set_port_state(&fake.dev, TCMU_PORT_ACTIVE_OPTIMIZED);
	read_10();
	assert_good();	/* set while opening */

	fake.dev.handler_open = true;
	tcmu_device_set_port_state(&fake.dev, TCMU_PORT_STANDBY);
	inquiry(0, 0, buffer, 96);	/* INQUIRY does not take it */
	read_10();
	assert_check(SCSI_SENSE_UNIT_ATTENTION, 0x2a06);
	read_10();
	assert_check(SCSI_SENSE_NOT_READY, 0x040b);

	stpg(take_over, sizeof(take_over));
	assert_good();
	read_10();
	assert_check(SCSI_SENSE_UNIT_ATTENTION, 0x2a06);
	read_10();
	assert_good();
	tcmu_device_set_port_state(&fake.dev, TCMU_PORT_ACTIVE_OPTIMIZED);
	read_10();
	assert_good();	/* no change */
	fake.dev.handler_open = false;
}

static void test_set_group_refused(void **state)
{
	(void)state;
	assert_int_equal(scsi_alua_set_port_group(&fake.dev, 0), -EINVAL);
	fake.handler.get_port_groups = NULL;
	assert_int_equal(scsi_alua_set_port_group(&fake.dev, 3), -EINVAL);
	fake.handler.get_port_groups = get_port_groups;
	fake.dev.handler_open = true;
	assert_int_equal(scsi_alua_set_port_group(&fake.dev, 3), -EINVAL);
	fake.dev.handler_open = false;
	assert_int_equal(fake.dev.scsi.port_group, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_without_groups, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_inquiry, setup_gateway, fake_teardown),
		cmocka_unit_test_setup_teardown(test_report, setup_gateway, fake_teardown),
		cmocka_unit_test_setup_teardown(test_medium_follows_state, setup_gateway,
						fake_teardown),
		cmocka_unit_test_setup_teardown(test_set_implicit_only, setup_gateway, fake_teardown),
		cmocka_unit_test_setup_teardown(test_set_explicit, setup_explicit, fake_teardown),
		cmocka_unit_test_setup_teardown(test_state_change_unit_attention, setup_explicit,
						fake_teardown),
		cmocka_unit_test_setup_teardown(test_set_group_refused, setup_gateway, fake_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
