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
	{ .opcode = 0x00, .cdb_length = 6, .execute = scsi_test_unit_ready,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { 0x00, 0, 0, 0, 0, CONTROL } },
	{ .opcode = 0x03, .cdb_length = 6, .execute = scsi_request_sense,
	  .usage = { 0x03, 0x01, 0, 0, 0xff, CONTROL } },
	{ .opcode = 0x04, .cdb_length = 6, .execute = scsi_format_unit,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { 0x04, 0x3f, 0, 0, 0, CONTROL } },
	{ .opcode = 0x08, .cdb_length = 6, .execute = scsi_read,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { 0x08, 0x1f, 0xff, 0xff, 0xff, CONTROL } },
	{ .opcode = 0x0a, .cdb_length = 6, .execute = scsi_write,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { 0x0a, 0x1f, 0xff, 0xff, 0xff, CONTROL } },
	{ .opcode = 0x12, .cdb_length = 6, .execute = scsi_inquiry,
	  .usage = { 0x12, 0x01, 0xff, 0xff, 0xff, CONTROL } },
	{ .opcode = 0x15, .cdb_length = 6, .execute = scsi_mode_select,
	  .usage = { 0x15, 0x11, 0, 0, 0xff, CONTROL } },
	{ .opcode = 0x1a, .cdb_length = 6, .execute = scsi_mode_sense,
	  .usage = { 0x1a, 0x08, 0xff, 0xff, 0xff, CONTROL } },
	{ .opcode = 0x1b, .cdb_length = 6, .execute = scsi_start_stop_unit,
	  .usage = { 0x1b, 0x01, 0, 0x0f, 0xf7, CONTROL } },
	{ .opcode = 0x1d, .cdb_length = 6, .execute = scsi_send_diagnostic,
	  .usage = { 0x1d, 0x17, 0, LENGTH16, CONTROL } },
	{ .opcode = 0x25, .cdb_length = 10, .execute = scsi_read_capacity_10,
	  .usage = { 0x25, 0, LBA32, 0, 0, 0x01, CONTROL } },
	{ .opcode = 0x28, .cdb_length = 10, .execute = scsi_read,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { 0x28, READ_WRITE_FLAGS, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = 0x2a, .cdb_length = 10, .execute = scsi_write,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { 0x2a, READ_WRITE_FLAGS, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = 0x2e, .cdb_length = 10, .execute = scsi_write_and_verify,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { 0x2e, BYTCHK_FLAGS, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = 0x2f, .cdb_length = 10, .execute = scsi_verify,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { 0x2f, BYTCHK_FLAGS, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = 0x34, .cdb_length = 10, .execute = scsi_pre_fetch,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { 0x34, 0x02, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = 0x35, .cdb_length = 10, .execute = scsi_synchronize_cache,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { 0x35, 0x02, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = 0x41, .cdb_length = 10, .execute = scsi_write_same,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { 0x41, 0x08, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = 0x42, .cdb_length = 10, .execute = scsi_unmap, .available = scsi_has_unmap,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { 0x42, 0, 0, 0, 0, 0, GROUP, LENGTH16, CONTROL } },
	{ .opcode = 0x55, .cdb_length = 10, .execute = scsi_mode_select,
	  .usage = { 0x55, 0x11, 0, 0, 0, 0, 0, LENGTH16, CONTROL } },
	{ .opcode = 0x5a, .cdb_length = 10, .execute = scsi_mode_sense,
	  .usage = { 0x5a, 0x18, 0xff, 0xff, 0, 0, 0, LENGTH16, CONTROL } },
	{ .opcode = 0x83, .has_service_action = true, .service_action = 0x00,
	  .cdb_length = 16, .execute = scsi_extended_copy,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { 0x83, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, LENGTH32, 0, CONTROL } },
	{ .opcode = 0x84, .has_service_action = true, .service_action = 0x00,
	  .cdb_length = 16, .execute = scsi_receive_copy_results,
	  .usage = { 0x84, 0x00, 0xff, 0, 0, 0, 0, 0, 0, 0, LENGTH32, 0, CONTROL } },
	{ .opcode = 0x84, .has_service_action = true, .service_action = 0x03,
	  .cdb_length = 16, .execute = scsi_receive_copy_results,
	  .usage = { 0x84, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, LENGTH32, 0, CONTROL } },
	{ .opcode = 0x88, .cdb_length = 16, .execute = scsi_read,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { 0x88, READ_WRITE_FLAGS, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = 0x89, .cdb_length = 16, .execute = scsi_compare_and_write,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES | SCSI_COMMAND_EXCLUSIVE,
	  .usage = { 0x89, READ_WRITE_FLAGS, LBA64, 0, 0, 0, 0xff, GROUP, CONTROL } },
	{ .opcode = 0x8a, .cdb_length = 16, .execute = scsi_write,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { 0x8a, READ_WRITE_FLAGS, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = 0x8e, .cdb_length = 16, .execute = scsi_write_and_verify,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { 0x8e, BYTCHK_FLAGS, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = 0x8f, .cdb_length = 16, .execute = scsi_verify,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { 0x8f, BYTCHK_FLAGS, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = 0x90, .cdb_length = 16, .execute = scsi_pre_fetch,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { 0x90, 0x02, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = 0x91, .cdb_length = 16, .execute = scsi_synchronize_cache,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { 0x91, 0x02, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = 0x93, .cdb_length = 16, .execute = scsi_write_same,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { 0x93, 0x09, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = 0x9e, .has_service_action = true, .service_action = 0x10,
	  .cdb_length = 16, .execute = scsi_read_capacity_16,
	  .usage = { 0x9e, 0x10, LBA64, LENGTH32, 0x01, CONTROL } },
	{ .opcode = 0x9e, .has_service_action = true, .service_action = 0x12,
	  .cdb_length = 16, .execute = scsi_get_lba_status, .available = scsi_has_unmap,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { 0x9e, 0x12, LBA64, LENGTH32, 0, CONTROL } },
	{ .opcode = 0xa0, .cdb_length = 12, .flags = SCSI_COMMAND_KERNEL,
	  .usage = { 0xa0, 0, 0xff, 0, 0, 0, LENGTH32, 0, CONTROL } },
	{ .opcode = 0xa3, .has_service_action = true, .service_action = 0x0c,
	  .cdb_length = 12, .execute = scsi_report_supported_operation_codes,
	  .usage = { 0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, LENGTH32, 0, CONTROL } },
	{ .opcode = 0xa8, .cdb_length = 12, .execute = scsi_read,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { 0xa8, READ_WRITE_FLAGS, LBA32, LENGTH32, GROUP, CONTROL } },
	{ .opcode = 0xaa, .cdb_length = 12, .execute = scsi_write,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { 0xaa, READ_WRITE_FLAGS, LBA32, LENGTH32, GROUP, CONTROL } },
	{ .opcode = 0xae, .cdb_length = 12, .execute = scsi_write_and_verify,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { 0xae, BYTCHK_FLAGS, LBA32, LENGTH32, GROUP, CONTROL } },
	{ .opcode = 0xaf, .cdb_length = 12, .execute = scsi_verify,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { 0xaf, BYTCHK_FLAGS, LBA32, LENGTH32, GROUP, CONTROL } },
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
	scsi_gate_leave(req->dev, scsi_command_of(req)->flags & SCSI_COMMAND_EXCLUSIVE);
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

void tcmu_request_complete(struct tcmu_request *req, int result)
{
	req->io_done(req, result);
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

const struct scsi_command *scsi_command_of(const struct tcmu_request *req)
{
	struct scsi_outcome unused;

	return find_command(req, &unused);
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
	return opcode == 0x03 || opcode == 0x12 || opcode == 0xa0;
}

static void execute_after_gate(struct tcmu_request *req)
{
	scsi_command_of(req)->execute(req);
}

void scsi_execute(struct tcmu_request *req)
{
	struct tcmu_device *dev = req->dev;
	const struct scsi_command *command;
	struct scsi_outcome outcome;

	req->io_done = NULL;
	req->scsi_private = NULL;

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
	if ((command->flags & SCSI_COMMAND_MEDIUM_ACCESS) &&
	    __atomic_load_n(&dev->scsi.stopped, __ATOMIC_ACQUIRE)) {
		outcome = scsi_check(SCSI_SENSE_NOT_READY, SCSI_ASC_NOT_READY_INITIALIZING_REQUIRED);
		scsi_finish(req, &outcome, 0);
		return;
	}
	if ((command->flags & SCSI_COMMAND_WRITES) &&
	    !scsi_gate_enter(dev, req, command->flags & SCSI_COMMAND_EXCLUSIVE,
			     execute_after_gate))
		return;
	command->execute(req);
}
