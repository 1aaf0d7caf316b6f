/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_opcodes.c: REPORT SUPPORTED OPERATION CODES (SPC-4 6.35), read
 * straight from the dispatch table, so it reports exactly what
 * scsi_execute() accepts, with the same usage maps that reject reserved
 * bits.
 */
#include <string.h>

#include "scsi_internal.h"

enum support {
	NOT_SUPPORTED = 0x1,
	SUPPORTED = 0x3,
};

/* Command timeouts descriptor (SPC-4 6.35.4): 12 bytes. */
static size_t put_timeouts(const struct scsi_command *command, uint8_t *descriptor)
{
	scsi_put_be16(descriptor, 0x0a);
	scsi_put_be32(descriptor + 4, command->nominal_timeout_seconds);
	scsi_put_be32(descriptor + 8, command->nominal_timeout_seconds);
	return 12;
}

static bool listed(const struct scsi_command *command, const struct tcmu_device *dev)
{
	return scsi_command_available(command, dev);
}

static size_t all_commands(const struct tcmu_device *dev, bool timeouts, uint8_t *data)
{
	size_t length = 4;

	for (size_t i = 0; i < scsi_command_count; i++) {
		const struct scsi_command *command = &scsi_commands[i];
		uint8_t *descriptor = data + length;

		if (!listed(command, dev))
			continue;
		descriptor[0] = command->opcode;
		if (command->has_service_action) {
			scsi_put_be16(descriptor + 2, command->service_action);
			descriptor[5] |= 0x01;	/* SERVACTV */
		}
		if (timeouts)
			descriptor[5] |= 0x02;	/* CTDP */
		scsi_put_be16(descriptor + 6, command->cdb_length);
		length += 8;
		if (timeouts)
			length += put_timeouts(command, data + length);
	}
	scsi_put_be32(data, (uint32_t)(length - 4));
	return length;
}

static size_t one_command(const struct scsi_command *command, bool timeouts, uint8_t *data)
{
	size_t length = 4;

	if (!command) {
		data[1] = NOT_SUPPORTED;
		return length;
	}
	data[1] = SUPPORTED | (timeouts ? 0x80 : 0);	/* CTDP */
	scsi_put_be16(data + 2, command->cdb_length);
	memcpy(data + length, command->usage, command->cdb_length);
	length += command->cdb_length;
	if (timeouts)
		length += put_timeouts(command, data + length);
	return length;
}

void scsi_report_supported_operation_codes(struct tcmu_request *req)
{
	const uint8_t *cdb = req->cdb;
	struct tcmu_device *dev = req->dev;
	const bool timeouts = cdb[2] & 0x80;	/* RCTD */
	const uint8_t options = cdb[2] & 0x07;
	const uint8_t opcode = cdb[3];
	const uint16_t service_action = scsi_get_be16(cdb + 4);
	const uint32_t allocation_length = scsi_get_be32(cdb + 6);
	const struct scsi_command *found = NULL;
	bool opcode_has_service_actions = false;
	uint8_t data[4 + 64 * 20] = { 0 };
	struct scsi_outcome outcome;
	size_t length;

	if (options == 0) {
		length = all_commands(dev, timeouts, data);
		scsi_finish_data_in(req, data, length, allocation_length);
		return;
	}
	if (options > 3) {
		outcome = scsi_invalid_cdb_field(2, 2);
		goto fail;
	}
	for (size_t i = 0; i < scsi_command_count; i++) {
		const struct scsi_command *command = &scsi_commands[i];

		if (command->opcode != opcode || !listed(command, dev))
			continue;
		if (command->has_service_action)
			opcode_has_service_actions = true;
		if (!command->has_service_action || command->service_action == service_action)
			found = command;
	}
	/*
	 * 001b: by opcode alone (the service action is ignored); 010b: by
	 * opcode and service action; 011b: whichever applies.
	 */
	if (options == 1 && opcode_has_service_actions) {
		outcome = scsi_invalid_cdb_field(3, 7);
		goto fail;
	}
	if (options == 2 && found && !found->has_service_action) {
		outcome = scsi_invalid_cdb_field(3, 7);
		goto fail;
	}
	length = one_command(found, timeouts, data);
	scsi_finish_data_in(req, data, length, allocation_length);
	return;

fail:
	scsi_finish(req, &outcome, 0);
}
