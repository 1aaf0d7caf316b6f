/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_alua.c: asymmetric logical unit access (SPC-4 5.16) for storage that
 * several daemons serve as one logical unit: REPORT and SET TARGET PORT
 * GROUPS, the INQUIRY fields that advertise it, and the NOT READY that
 * keeps a non-active group off the medium.
 *
 * The daemon answers these itself (the kernel's alua_support is 0 for such
 * a device) because only the storage knows which gateway is active: the
 * kernel's own ALUA keeps each host's states in that host's configfs, where
 * the other gateway's changes never arrive, and it answers a Standby path's
 * I/O and SET TARGET PORT GROUPS without telling the daemon, which then
 * could neither take the storage over nor fence the old owner.
 */
#include <errno.h>
#include <string.h>

#include "scsi_internal.h"

/* Most groups one REPORT TARGET PORT GROUPS lists: one per gateway. */
#define MAX_PORT_GROUPS 16
/* Each group has the one port its daemon serves the device through. */
#define PORTS_PER_GROUP 1
/* Seconds an implicit transition may take, reported in the extended header. */
#define IMPLICIT_TRANSITION_SECONDS 30

/* Supported states of every group: AO, S, U, T (SPC-4 6.37, byte 1). */
#define SUPPORTED_STATES (0x80 | 0x08 | 0x04 | 0x01)

bool scsi_alua_enabled(const struct tcmu_device *dev)
{
	return dev->scsi.port_group != 0 && dev->handler->get_port_groups;
}

int scsi_alua_set_port_group(struct tcmu_device *dev, uint16_t group)
{
	if (dev->handler_open || group == 0 || !dev->handler->get_port_groups) {
		tcmu_dev_err(dev, "target port group %u: set in open(), 1 to 65535, by a "
			     "handler with get_port_groups", group);
		return -EINVAL;
	}
	dev->scsi.port_group = group;
	__atomic_store_n(&dev->scsi.port_state, TCMU_PORT_STANDBY, __ATOMIC_RELEASE);
	return 0;
}

static const char *state_name(uint8_t state)
{
	switch (state) {
	case TCMU_PORT_ACTIVE_OPTIMIZED:
		return "active/optimized";
	case TCMU_PORT_STANDBY:
		return "standby";
	case TCMU_PORT_UNAVAILABLE:
		return "unavailable";
	case TCMU_PORT_TRANSITIONING:
		return "transitioning";
	}
	return "unknown";
}

void scsi_alua_set_port_state(struct tcmu_device *dev, uint8_t state)
{
	uint8_t old = __atomic_exchange_n(&dev->scsi.port_state, state, __ATOMIC_ACQ_REL);

	if (old == state)
		return;
	tcmu_dev_info(dev, "target port group %u: %s", dev->scsi.port_group, state_name(state));
	/*
	 * Initiators learn of it by a unit attention (SPC-4 5.16.2.6), on
	 * which Linux's ALUA handler reads the groups again; a state set while
	 * the device opens is none an initiator saw.
	 */
	if (dev->handler_open)
		__atomic_store_n(&dev->scsi.port_state_changed, true, __ATOMIC_RELEASE);
}

uint8_t scsi_alua_tpgs(const struct tcmu_device *dev)
{
	if (!scsi_alua_enabled(dev))
		return 0;
	/* TPGS: implicit (01b), and explicit too (11b) with set_port_state. */
	return dev->handler->set_port_state ? 0x30 : 0x10;
}

size_t scsi_alua_designators(const struct tcmu_device *dev, uint8_t *descriptor)
{
	if (!scsi_alua_enabled(dev))
		return 0;
	/* Relative target port, then target port group: binary, PIV, target port. */
	for (int type = 4; type <= 5; type++) {
		memset(descriptor, 0, 8);
		descriptor[0] = 0x01;
		descriptor[1] = (uint8_t)(0x80 | 0x10 | type);
		descriptor[3] = 4;
		scsi_put_be16(descriptor + 6, dev->scsi.port_group);
		descriptor += 8;
	}
	return 16;
}

bool scsi_alua_blocks(const struct tcmu_request *req, struct scsi_outcome *ret_outcome)
{
	uint8_t state;

	if (!scsi_alua_enabled(req->dev) || !(req->command->flags & SCSI_COMMAND_MEDIUM_ACCESS))
		return false;
	state = __atomic_load_n(&req->dev->scsi.port_state, __ATOMIC_ACQUIRE);
	switch (state) {
	case TCMU_PORT_ACTIVE_OPTIMIZED:
		return false;
	case TCMU_PORT_TRANSITIONING:
		*ret_outcome = scsi_check(SCSI_SENSE_NOT_READY, SCSI_ASC_ALUA_TRANSITION);
		return true;
	case TCMU_PORT_STANDBY:
		*ret_outcome = scsi_check(SCSI_SENSE_NOT_READY, SCSI_ASC_ALUA_STANDBY);
		return true;
	default:
		*ret_outcome = scsi_check(SCSI_SENSE_NOT_READY, SCSI_ASC_ALUA_UNAVAILABLE);
		return true;
	}
}

bool scsi_has_explicit_alua(const struct tcmu_device *dev)
{
	return scsi_alua_enabled(dev) && dev->handler->set_port_state;
}

/* SPC-4 6.37 */
void scsi_report_target_port_groups(struct tcmu_request *req)
{
	struct tcmu_device *dev = req->dev;
	struct tcmu_port_group groups[MAX_PORT_GROUPS];
	uint8_t data[8 + MAX_PORT_GROUPS * (8 + 4 * PORTS_PER_GROUP)] = { 0 };
	bool extended = (req->cdb[1] & 0xe0) == 0x20;
	size_t header = extended ? 8 : 4, length = header;
	struct scsi_outcome outcome;
	int count;

	if ((req->cdb[1] & 0xe0) > 0x20) {
		outcome = scsi_invalid_cdb_field(1, 7);
		scsi_finish(req, &outcome, 0);
		return;
	}
	count = dev->handler->get_port_groups(dev, groups, MAX_PORT_GROUPS);
	if (count < 0 || count > MAX_PORT_GROUPS) {
		tcmu_dev_err(dev, "REPORT TARGET PORT GROUPS: the handler gave %d groups", count);
		outcome = scsi_check(SCSI_SENSE_NOT_READY, SCSI_ASC_ALUA_TRANSITION);
		scsi_finish(req, &outcome, 0);
		return;
	}
	for (int i = 0; i < count; i++) {
		uint8_t *descriptor = data + length;

		descriptor[0] = groups[i].state & 0x0f;
		descriptor[1] = SUPPORTED_STATES;
		scsi_put_be16(descriptor + 2, groups[i].id);
		descriptor[7] = PORTS_PER_GROUP;
		/* The group's port: its relative target port identifier is the group's. */
		scsi_put_be16(descriptor + 10, groups[i].id);
		length += 8 + 4 * PORTS_PER_GROUP;
	}
	scsi_put_be32(data, (uint32_t)(length - 4));
	if (extended) {
		data[4] = 0x10;
		data[5] = IMPLICIT_TRANSITION_SECONDS;
	}
	scsi_finish_data_in(req, data, length, scsi_get_be32(req->cdb + 6));
}

static void port_state_set(struct tcmu_request *req, int result)
{
	struct scsi_outcome outcome = scsi_good();

	if (result < 0) {
		tcmu_dev_warn(req->dev, "SET TARGET PORT GROUPS failed: %s", strerror(-result));
		outcome = scsi_check(SCSI_SENSE_HARDWARE_ERROR, SCSI_ASC_SET_TARGET_PORT_GROUPS_FAILED);
	}
	scsi_finish(req, &outcome, 0);
}

/*
 * SPC-4 6.44. Only this daemon's group can be changed from here: a
 * descriptor for another group is accepted if it asks that group to step
 * back (that is what taking over does to it) and refused otherwise.
 */
void scsi_set_target_port_groups(struct tcmu_request *req)
{
	struct tcmu_device *dev = req->dev;
	uint32_t list_length = scsi_get_be32(req->cdb + 6);
	uint8_t list[4 + MAX_PORT_GROUPS * 4];
	struct scsi_outcome outcome;
	int wanted = -1, result;

	if (list_length == 0) {
		scsi_finish_good(req);
		return;
	}
	if (list_length < 4 || list_length % 4 || list_length > sizeof(list)) {
		outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
		scsi_finish(req, &outcome, 0);
		return;
	}
	if (scsi_data_copy_out(req, 0, list, list_length) != list_length) {
		outcome = scsi_data_length_mismatch();
		scsi_finish(req, &outcome, 0);
		return;
	}
	for (uint32_t offset = 4; offset < list_length; offset += 4) {
		uint8_t state = list[offset] & 0x0f;
		uint16_t group = scsi_get_be16(list + offset + 2);
		bool valid = state == TCMU_PORT_ACTIVE_OPTIMIZED || state == TCMU_PORT_STANDBY ||
			     state == TCMU_PORT_UNAVAILABLE;

		if (!valid || (group != dev->scsi.port_group && state == TCMU_PORT_ACTIVE_OPTIMIZED)) {
			outcome = scsi_invalid_parameter_field((uint16_t)offset, 3);
			scsi_finish(req, &outcome, 0);
			return;
		}
		if (group == dev->scsi.port_group)
			wanted = state;
	}
	if (wanted < 0) {
		scsi_finish_good(req);
		return;
	}
	req->io_done = port_state_set;
	result = dev->handler->set_port_state(dev, req, (uint8_t)wanted);
	if (result < 0)
		port_state_set(req, result);
}
