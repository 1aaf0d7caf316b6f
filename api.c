/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api.c: the SCSI layer's entry points. scsi_execute() looks a CDB up in
 * the one table of implemented commands (which REPORT SUPPORTED OPERATION
 * CODES also reports), rejects reserved bits with the table's usage map,
 * and hands the command to its implementation in scsi_*.c. Every path
 * ends in scsi_finish(), the only caller of ring_complete_request().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tcmu_internal.h"

/* Usage data helpers: the opcode's own bytes in RSOC form. */
#define CONTROL 0x00
#define LBA32 0xff, 0xff, 0xff, 0xff
#define LBA64 LBA32, LBA32
#define LENGTH16 0xff, 0xff
#define LENGTH32 0xff, 0xff, 0xff, 0xff
#define GROUP 0x1f
/* DPO, FUA, FUA_NV of READ/WRITE (10/12/16); protection fields are not supported. */
#define READ_WRITE_FLAGS 0x1a
/* DPO and the 2-bit BYTCHK of VERIFY and WRITE AND VERIFY. */
#define BYTCHK_FLAGS 0x16

const struct scsi_command scsi_commands[] = {
	{ .opcode = SCSI_OP_TEST_UNIT_READY, .cdb_length = 6, .execute = scsi_test_unit_ready,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_TEST_UNIT_READY, 0, 0, 0, 0, CONTROL } },
	{ .opcode = SCSI_OP_REQUEST_SENSE, .cdb_length = 6, .execute = scsi_request_sense,
	  .usage = { SCSI_OP_REQUEST_SENSE, 0x01, 0, 0, 0xff, CONTROL } },
	{ .opcode = SCSI_OP_FORMAT_UNIT, .cdb_length = 6, .execute = scsi_format_unit,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_FORMAT_UNIT, 0x3f, 0, 0, 0, CONTROL } },
	{ .opcode = SCSI_OP_READ_6, .cdb_length = 6, .execute = scsi_read,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_READ_6, 0x1f, 0xff, 0xff, 0xff, CONTROL } },
	{ .opcode = SCSI_OP_WRITE_6, .cdb_length = 6, .execute = scsi_write,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { SCSI_OP_WRITE_6, 0x1f, 0xff, 0xff, 0xff, CONTROL } },
	{ .opcode = SCSI_OP_INQUIRY, .cdb_length = 6, .execute = scsi_inquiry,
	  .usage = { SCSI_OP_INQUIRY, 0x01, 0xff, 0xff, 0xff, CONTROL } },
	{ .opcode = SCSI_OP_MODE_SELECT_6, .cdb_length = 6, .execute = scsi_mode_select,
	  .usage = { SCSI_OP_MODE_SELECT_6, 0x11, 0, 0, 0xff, CONTROL } },
	{ .opcode = SCSI_OP_MODE_SENSE_6, .cdb_length = 6, .execute = scsi_mode_sense,
	  .usage = { SCSI_OP_MODE_SENSE_6, 0x08, 0xff, 0xff, 0xff, CONTROL } },
	{ .opcode = SCSI_OP_START_STOP_UNIT, .cdb_length = 6, .execute = scsi_start_stop_unit,
	  .usage = { SCSI_OP_START_STOP_UNIT, 0x01, 0, 0x0f, 0xf7, CONTROL } },
	{ .opcode = SCSI_OP_SEND_DIAGNOSTIC, .cdb_length = 6, .execute = scsi_send_diagnostic,
	  .usage = { SCSI_OP_SEND_DIAGNOSTIC, 0x17, 0, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_READ_CAPACITY_10, .cdb_length = 10, .execute = scsi_read_capacity_10,
	  .usage = { SCSI_OP_READ_CAPACITY_10, 0, LBA32, 0, 0, 0x01, CONTROL } },
	{ .opcode = SCSI_OP_READ_10, .cdb_length = 10, .execute = scsi_read,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_READ_10, READ_WRITE_FLAGS, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_WRITE_10, .cdb_length = 10, .execute = scsi_write,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { SCSI_OP_WRITE_10, READ_WRITE_FLAGS, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_WRITE_AND_VERIFY_10, .cdb_length = 10, .execute = scsi_write_and_verify,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { SCSI_OP_WRITE_AND_VERIFY_10, BYTCHK_FLAGS, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_VERIFY_10, .cdb_length = 10, .execute = scsi_verify,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_VERIFY_10, BYTCHK_FLAGS, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_PRE_FETCH_10, .cdb_length = 10, .execute = scsi_pre_fetch,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_PRE_FETCH_10, 0x02, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_SYNCHRONIZE_CACHE_10, .cdb_length = 10,
	  .execute = scsi_synchronize_cache,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_SYNCHRONIZE_CACHE_10, 0x02, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_WRITE_SAME_10, .cdb_length = 10, .execute = scsi_write_same,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { SCSI_OP_WRITE_SAME_10, 0x08, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_UNMAP, .cdb_length = 10, .execute = scsi_unmap,
	  .available = scsi_has_unmap,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { SCSI_OP_UNMAP, 0, 0, 0, 0, 0, GROUP, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_MODE_SELECT_10, .cdb_length = 10, .execute = scsi_mode_select,
	  .usage = { SCSI_OP_MODE_SELECT_10, 0x11, 0, 0, 0, 0, 0, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_MODE_SENSE_10, .cdb_length = 10, .execute = scsi_mode_sense,
	  .usage = { SCSI_OP_MODE_SENSE_10, 0x18, 0xff, 0xff, 0, 0, 0, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_EXTENDED_COPY, .has_service_action = true,
	  .service_action = SCSI_SA_EXTENDED_COPY_LID1,
	  .cdb_length = 16, .execute = scsi_extended_copy,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { SCSI_OP_EXTENDED_COPY, SCSI_SA_EXTENDED_COPY_LID1, 0, 0, 0, 0, 0, 0, 0, 0,
		     LENGTH32, 0, CONTROL } },
	{ .opcode = SCSI_OP_RECEIVE_COPY_RESULTS, .has_service_action = true,
	  .service_action = SCSI_SA_COPY_STATUS_LID1,
	  .cdb_length = 16, .execute = scsi_receive_copy_results,
	  .usage = { SCSI_OP_RECEIVE_COPY_RESULTS, SCSI_SA_COPY_STATUS_LID1, 0xff, 0, 0, 0, 0, 0,
		     0, 0, LENGTH32, 0, CONTROL } },
	{ .opcode = SCSI_OP_RECEIVE_COPY_RESULTS, .has_service_action = true,
	  .service_action = SCSI_SA_OPERATING_PARAMETERS,
	  .cdb_length = 16, .execute = scsi_receive_copy_results,
	  .usage = { SCSI_OP_RECEIVE_COPY_RESULTS, SCSI_SA_OPERATING_PARAMETERS, 0, 0, 0, 0, 0, 0,
		     0, 0, LENGTH32, 0, CONTROL } },
	{ .opcode = SCSI_OP_READ_16, .cdb_length = 16, .execute = scsi_read,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_READ_16, READ_WRITE_FLAGS, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_COMPARE_AND_WRITE, .cdb_length = 16, .execute = scsi_compare_and_write,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES | SCSI_COMMAND_EXCLUSIVE,
	  .usage = { SCSI_OP_COMPARE_AND_WRITE, READ_WRITE_FLAGS, LBA64, 0, 0, 0, 0xff, GROUP,
		     CONTROL } },
	{ .opcode = SCSI_OP_WRITE_16, .cdb_length = 16, .execute = scsi_write,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { SCSI_OP_WRITE_16, READ_WRITE_FLAGS, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_WRITE_AND_VERIFY_16, .cdb_length = 16, .execute = scsi_write_and_verify,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { SCSI_OP_WRITE_AND_VERIFY_16, BYTCHK_FLAGS, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_VERIFY_16, .cdb_length = 16, .execute = scsi_verify,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_VERIFY_16, BYTCHK_FLAGS, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_PRE_FETCH_16, .cdb_length = 16, .execute = scsi_pre_fetch,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_PRE_FETCH_16, 0x02, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_SYNCHRONIZE_CACHE_16, .cdb_length = 16,
	  .execute = scsi_synchronize_cache,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_SYNCHRONIZE_CACHE_16, 0x02, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_WRITE_SAME_16, .cdb_length = 16, .execute = scsi_write_same,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { SCSI_OP_WRITE_SAME_16, 0x09, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_SERVICE_ACTION_IN_16, .has_service_action = true,
	  .service_action = SCSI_SA_READ_CAPACITY_16,
	  .cdb_length = 16, .execute = scsi_read_capacity_16,
	  .usage = { SCSI_OP_SERVICE_ACTION_IN_16, SCSI_SA_READ_CAPACITY_16, LBA64, LENGTH32, 0x01,
		     CONTROL } },
	{ .opcode = SCSI_OP_SERVICE_ACTION_IN_16, .has_service_action = true,
	  .service_action = SCSI_SA_GET_LBA_STATUS,
	  .cdb_length = 16, .execute = scsi_get_lba_status, .available = scsi_has_unmap,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_SERVICE_ACTION_IN_16, SCSI_SA_GET_LBA_STATUS, LBA64, LENGTH32, 0,
		     CONTROL } },
	{ .opcode = SCSI_OP_REPORT_LUNS, .cdb_length = 12, .flags = SCSI_COMMAND_KERNEL,
	  .usage = { SCSI_OP_REPORT_LUNS, 0, 0xff, 0, 0, 0, LENGTH32, 0, CONTROL } },
	{ .opcode = SCSI_OP_MAINTENANCE_IN, .has_service_action = true,
	  .service_action = SCSI_SA_REPORT_SUPPORTED_OPERATION_CODES,
	  .cdb_length = 12, .execute = scsi_report_supported_operation_codes,
	  .usage = { SCSI_OP_MAINTENANCE_IN, SCSI_SA_REPORT_SUPPORTED_OPERATION_CODES, 0x87, 0xff,
		     0xff, 0xff, LENGTH32, 0, CONTROL } },
	{ .opcode = SCSI_OP_READ_12, .cdb_length = 12, .execute = scsi_read,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_READ_12, READ_WRITE_FLAGS, LBA32, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_WRITE_12, .cdb_length = 12, .execute = scsi_write,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { SCSI_OP_WRITE_12, READ_WRITE_FLAGS, LBA32, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_WRITE_AND_VERIFY_12, .cdb_length = 12, .execute = scsi_write_and_verify,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { SCSI_OP_WRITE_AND_VERIFY_12, BYTCHK_FLAGS, LBA32, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_VERIFY_12, .cdb_length = 12, .execute = scsi_verify,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_VERIFY_12, BYTCHK_FLAGS, LBA32, LENGTH32, GROUP, CONTROL } },
};

const size_t scsi_command_count = ARRAY_SIZE(scsi_commands);

bool scsi_command_available(const struct scsi_command *command, const struct tcmu_device *dev)
{
	return !command->available || command->available(dev);
}

uint64_t scsi_block_count(const struct tcmu_device *dev)
{
	return dev->block_size ? dev->size / dev->block_size : 0;
}

/*
 * What bounds one command is the ring's data area, which must hold all of
 * its data: the kernel does not enforce hw_max_sectors for TCMU, and its
 * default (128) is far below what the ring carries. Half the data area
 * leaves room for a second command while one of the largest is in flight.
 */
uint32_t scsi_max_transfer_blocks(const struct tcmu_device *dev)
{
	const struct tcmu_ring *ring = &dev->ring;
	uint64_t data_area, blocks;

	if (!ring->map || !ring->cmdr || !dev->block_size)
		return dev->max_sectors;
	data_area = ring->map_size - (size_t)(ring->cmdr - (const uint8_t *)ring->map) -
		    ring->cmdr_size;
	blocks = data_area / 2 / dev->block_size;
	if (blocks < dev->max_sectors)
		blocks = dev->max_sectors;
	return blocks > UINT32_MAX ? UINT32_MAX : (uint32_t)blocks;
}

bool scsi_has_unmap(const struct tcmu_device *dev)
{
	return dev->handler && dev->handler->unmap &&
	       !__atomic_load_n(&dev->unmap_unsupported, __ATOMIC_RELAXED);
}

/*
 * What one command may ask of the handler, in bytes. Unmap stays at 1M
 * blocks of 512 bytes: hosts take larger explicit limits for garbage.
 */
#define MAX_UNMAP_BYTES		(1ull << 29)
#define MAX_WRITE_SAME_BYTES	(1ull << 30)

uint32_t scsi_max_compare_and_write_blocks(const struct tcmu_device *dev)
{
	/* The data-out holds twice the blocks; the CDB field is one byte. */
	uint32_t max_transfer = scsi_max_transfer_blocks(dev);
	uint32_t blocks = max_transfer ? max_transfer / 2 : 255;

	if (blocks > 255)
		blocks = 255;
	return blocks ? blocks : 1;
}

uint64_t scsi_max_write_same_blocks(const struct tcmu_device *dev)
{
	return dev->block_size ? MAX_WRITE_SAME_BYTES / dev->block_size : 0;
}

uint32_t scsi_max_unmap_blocks(const struct tcmu_device *dev)
{
	return dev->block_size ? (uint32_t)(MAX_UNMAP_BYTES / dev->block_size) : 0;
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

void scsi_finish_good(struct tcmu_request *req)
{
	struct scsi_outcome outcome = scsi_good();

	scsi_finish(req, &outcome, 0);
}

/*
 * The one walk over a request's data buffer: calls visit on each piece of
 * the length bytes from offset (fewer where the buffer ends first), with
 * the bytes that came before it. Returns the bytes visited.
 */
typedef void data_visit_fn(uint8_t *piece, size_t piece_length, uint64_t done, void *context);

static uint64_t data_walk(const struct tcmu_request *req, uint64_t offset, uint64_t length,
			  data_visit_fn *visit, void *context)
{
	uint64_t done = 0;

	for (uint32_t i = 0; i < req->iov_count && done < length; i++) {
		uint64_t part = req->iov[i].iov_len;

		if (offset >= part) {
			offset -= part;
			continue;
		}
		part -= offset;
		if (part > length - done)
			part = length - done;
		visit((uint8_t *)req->iov[i].iov_base + offset, (size_t)part, done, context);
		done += part;
		offset = 0;
	}
	return done;
}

static void visit_copy_in(uint8_t *piece, size_t piece_length, uint64_t done, void *source)
{
	memcpy(piece, (const uint8_t *)source + done, piece_length);
}

static void visit_copy_out(uint8_t *piece, size_t piece_length, uint64_t done, void *destination)
{
	memcpy((uint8_t *)destination + done, piece, piece_length);
}

static void visit_zero(uint8_t *piece, size_t piece_length, uint64_t done, void *unused)
{
	(void)done;
	(void)unused;
	memset(piece, 0, piece_length);
}

struct slice {
	struct iovec *iov;
	size_t count;
};

static void visit_slice(uint8_t *piece, size_t piece_length, uint64_t done, void *context)
{
	struct slice *slice = context;

	(void)done;
	slice->iov[slice->count++] = (struct iovec){ .iov_base = piece, .iov_len = piece_length };
}

size_t scsi_data_copy_in(struct tcmu_request *req, size_t offset, const void *source,
			 size_t length)
{
	return (size_t)data_walk(req, offset, length, visit_copy_in, (void *)source);
}

size_t scsi_data_copy_out(struct tcmu_request *req, size_t offset, void *destination,
			  size_t length)
{
	return (size_t)data_walk(req, offset, length, visit_copy_out, destination);
}

void scsi_data_zero(struct tcmu_request *req, size_t offset)
{
	data_walk(req, offset, UINT64_MAX, visit_zero, NULL);
}

struct iovec *scsi_data_slice(const struct tcmu_request *req, uint64_t offset, uint64_t length,
			      size_t *ret_count)
{
	struct slice slice = { .iov = calloc(req->iov_count ? req->iov_count : 1,
					     sizeof(*slice.iov)) };

	if (!slice.iov)
		return NULL;
	if (data_walk(req, offset, length, visit_slice, &slice) < length) {
		free(slice.iov);
		return NULL;
	}
	*ret_count = slice.count;
	return slice.iov;
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

	/* A plain load first: the exchange would dirty the cache line on every command. */
	if (!opcode_ignores_unit_attention(req->cdb[0]) &&
	    __atomic_load_n(&dev->scsi.capacity_changed, __ATOMIC_ACQUIRE) &&
	    __atomic_exchange_n(&dev->scsi.capacity_changed, false, __ATOMIC_ACQ_REL)) {
		outcome = scsi_check(SCSI_SENSE_UNIT_ATTENTION, SCSI_ASC_CAPACITY_DATA_HAS_CHANGED);
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
	if ((command->flags & SCSI_COMMAND_WRITES) &&
	    !scsi_gate_enter(dev, req, command->flags & SCSI_COMMAND_EXCLUSIVE,
			     execute_after_gate))
		return;
	command->execute(req);
}
