/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_dispatch.c: the SCSI layer's entry and exit. scsi_execute() looks a
 * CDB up in the command table (api.c), rejects reserved bits with its
 * usage map, and hands the command to its implementation in scsi_*.c.
 * Every path ends in scsi_finish(), the only caller of
 * ring_complete_request().
 */
#include <string.h>

#include "scsi_internal.h"

uint32_t scsi_cdb_length(const uint8_t *cdb, size_t available)
{
	switch (cdb[0] >> 5) {
	case 0:
		return 6;
	case 1:
	case 2:
		return 10;
	case 4:
		return 16;
	case 5:
		return 12;
	default:
		/* Variable length and vendor groups: length in byte 7 when present. */
		if (cdb[0] == SCSI_OP_VARIABLE_LENGTH && available >= 8)
			return 8u + cdb[7];
		return 16;
	}
}

bool scsi_command_available(const struct scsi_command *command, const struct tcmu_device *dev)
{
	return !command->available || command->available(dev);
}

void scsi_device_init(struct tcmu_device *dev)
{
	memset(&dev->scsi, 0, sizeof(dev->scsi));
	pthread_mutex_init(&dev->scsi.gate_lock, NULL);
}

void scsi_device_destroy(struct tcmu_device *dev)
{
	pthread_mutex_destroy(&dev->scsi.gate_lock);
}

void scsi_set_write_protected(struct tcmu_device *dev, bool write_protected)
{
	if (__atomic_exchange_n(&dev->scsi.write_protected, write_protected,
				__ATOMIC_ACQ_REL) != write_protected)
		tcmu_dev_info(dev, "%s", write_protected ? "write-protected" : "writable again");
}

bool scsi_write_protected(const struct tcmu_device *dev)
{
	return __atomic_load_n(&dev->scsi.write_protected, __ATOMIC_ACQUIRE);
}

void scsi_finish(struct tcmu_request *req, const struct scsi_outcome *outcome,
		 uint32_t read_length)
{
	uint8_t sense[SCSI_SENSE_BUFFER_SIZE];
	size_t sense_length = 0;

	if (outcome->status == SCSI_STATUS_CHECK_CONDITION) {
		bool descriptor = __atomic_load_n(&req->dev->scsi.descriptor_sense,
						  __ATOMIC_RELAXED);

		sense_length = scsi_sense_format(outcome, descriptor, sense);
	}
	ring_complete_request(req, outcome->status, sense_length ? sense : NULL, sense_length,
			      read_length);
}

void scsi_finish_internal_failure(struct tcmu_request *req)
{
	struct scsi_outcome outcome = scsi_check(SCSI_SENSE_HARDWARE_ERROR,
						 SCSI_ASC_INTERNAL_TARGET_FAILURE);

	scsi_finish(req, &outcome, 0);
}

void scsi_finish_good(struct tcmu_request *req)
{
	struct scsi_outcome outcome = scsi_good();

	scsi_finish(req, &outcome, 0);
}

void scsi_finish_writer(struct tcmu_request *req, const struct scsi_outcome *outcome)
{
	scsi_gate_leave(req->dev, req->command->flags & SCSI_COMMAND_EXCLUSIVE);
	scsi_finish(req, outcome, 0);
}

void scsi_finish_data_in(struct tcmu_request *req, const void *data, size_t length,
			 size_t allocation_length)
{
	struct scsi_outcome outcome = scsi_good();
	size_t filled;

	if (length > allocation_length)
		length = allocation_length;
	filled = scsi_data_copy_in(req, 0, data, length);
	scsi_data_zero(req, filled);
	scsi_finish(req, &outcome, (uint32_t)filled);
}

/*
 * Finds the table entry for a CDB. An opcode we know with a service
 * action we do not is an invalid field, not an unknown command.
 */
static const struct scsi_command *find_command(const struct tcmu_request *req,
					       struct scsi_outcome *ret_outcome)
{
	const uint8_t opcode = req->cdb[0];
	bool opcode_known = false;

	for (size_t i = 0; i < scsi_command_count; i++) {
		const struct scsi_command *command = &scsi_commands[i];

		if (command->opcode != opcode || (command->flags & SCSI_COMMAND_KERNEL) ||
		    !scsi_command_available(command, req->dev))
			continue;
		opcode_known = true;
		if (!command->has_service_action ||
		    command->service_action == (req->cdb[1] & 0x1f))
			return command;
	}
	if (opcode_known)
		*ret_outcome = scsi_invalid_cdb_field(1, 4);
	else
		*ret_outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST,
					  SCSI_ASC_INVALID_COMMAND_OPERATION_CODE);
	return NULL;
}

/* Any CDB bit the usage map does not claim is reserved and must be zero. */
static bool check_reserved_bits(const struct scsi_command *command, const uint8_t *cdb,
				struct scsi_outcome *ret_outcome)
{
	for (unsigned int i = 1; i < command->cdb_length; i++) {
		uint8_t allowed = command->usage[i];
		uint8_t bad;

		if (i == 1 && command->has_service_action)
			allowed |= 0x1f;
		/* The control byte's top two bits are vendor specific. */
		if (i == command->cdb_length - 1u)
			allowed |= 0xc0;
		bad = cdb[i] & (uint8_t)~allowed;
		if (bad) {
			*ret_outcome = scsi_invalid_cdb_field((uint16_t)i,
							      31 - __builtin_clz(bad));
			return false;
		}
	}
	return true;
}

/* REQUEST SENSE, INQUIRY and REPORT LUNS run without reporting a unit attention. */
static bool opcode_ignores_unit_attention(uint8_t opcode)
{
	return opcode == SCSI_OP_REQUEST_SENSE || opcode == SCSI_OP_INQUIRY ||
	       opcode == SCSI_OP_REPORT_LUNS;
}

static void execute_after_gate(struct tcmu_request *req)
{
	req->command->execute(req);
}

void scsi_execute(struct tcmu_request *req)
{
	struct tcmu_device *dev = req->dev;
	const struct scsi_command *command;
	struct scsi_outcome outcome;

	req->io_done = NULL;
	req->scsi_private = NULL;
	req->command = NULL;

	if (!opcode_ignores_unit_attention(req->cdb[0]) && scsi_unit_attention(dev, &outcome)) {
		scsi_finish(req, &outcome, 0);
		return;
	}
	command = find_command(req, &outcome);
	if (!command || !check_reserved_bits(command, req->cdb, &outcome)) {
		scsi_finish(req, &outcome, 0);
		return;
	}
	req->command = command;
	if ((command->flags & SCSI_COMMAND_MEDIUM_ACCESS) &&
	    __atomic_load_n(&dev->scsi.stopped, __ATOMIC_ACQUIRE)) {
		outcome = scsi_check(SCSI_SENSE_NOT_READY,
				     SCSI_ASC_NOT_READY_INITIALIZING_REQUIRED);
		scsi_finish(req, &outcome, 0);
		return;
	}
	/* Before the gate: a refused write must not wait there, nor hold anyone. */
	if ((command->flags & SCSI_COMMAND_CHANGES_MEDIUM) && scsi_write_protected(dev)) {
		outcome = scsi_check(SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		scsi_finish(req, &outcome, 0);
		return;
	}
	if (scsi_alua_blocks(req, &outcome)) {
		scsi_finish(req, &outcome, 0);
		return;
	}
	if ((command->flags & SCSI_COMMAND_WRITES) &&
	    !scsi_gate_enter(dev, req, command->flags & SCSI_COMMAND_EXCLUSIVE,
			     execute_after_gate))
		return;
	command->execute(req);
}
