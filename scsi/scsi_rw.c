/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_rw.c: commands that move blocks through the handler: READ and
 * WRITE (6/10/12/16) and SYNCHRONIZE CACHE (10/16) (SBC-3 5.x). The CDB
 * is checked completely here, so the handler only ever sees ranges
 * inside the device and buffers of exactly the right size.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_internal.h"

struct scsi_block_range scsi_decode_range(const uint8_t *cdb)
{
	struct scsi_block_range range = { 0 };

	switch (cdb[0] >> 5) {
	case 0:		/* 6-byte CDB: 21-bit LBA; a length of 0 means 256 */
		range.lba = scsi_get_be24(cdb + 1) & 0x1fffff;
		range.blocks = cdb[4] ? cdb[4] : 256;
		range.length_byte = 4;
		break;
	case 1:
	case 2:		/* 10-byte */
		range.lba = scsi_get_be32(cdb + 2);
		range.blocks = scsi_get_be16(cdb + 7);
		range.length_byte = 7;
		break;
	case 5:		/* 12-byte */
		range.lba = scsi_get_be32(cdb + 2);
		range.blocks = scsi_get_be32(cdb + 6);
		range.length_byte = 6;
		break;
	case 4:		/* 16-byte */
		range.lba = scsi_get_be64(cdb + 2);
		range.blocks = scsi_get_be32(cdb + 10);
		range.length_byte = 10;
		break;
	}
	return range;
}

bool scsi_range_inside(const struct tcmu_device *dev, uint64_t lba, uint64_t blocks)
{
	uint64_t count = scsi_block_count(dev);

	return lba <= count && blocks <= count - lba;
}

uint32_t scsi_write_flags(const struct tcmu_device *dev, bool fua)
{
	if (fua || !__atomic_load_n(&dev->write_cache, __ATOMIC_ACQUIRE))
		return TCMU_WRITE_FUA;
	return 0;
}

/*
 * The checks every data transfer shares: the block limit, the range and
 * the buffer. On success *ret_bytes is the transfer size in bytes.
 */
static bool check_transfer(const struct tcmu_request *req, const struct scsi_block_range *range,
			   uint64_t *ret_bytes, struct scsi_outcome *ret_outcome)
{
	const struct tcmu_device *dev = req->dev;
	uint32_t max_blocks = scsi_max_transfer_blocks(dev);
	uint64_t bytes = (uint64_t)range->blocks * dev->block_size;

	/* Past the end is the more telling error when both apply. */
	if (!scsi_range_inside(dev, range->lba, range->blocks)) {
		*ret_outcome = scsi_lba_out_of_range(range->lba);
		return false;
	}
	if (max_blocks && range->blocks > max_blocks) {
		*ret_outcome = scsi_invalid_cdb_field(range->length_byte, 7);
		return false;
	}
	/* The initiator's buffer cannot hold what the CDB asks for. */
	if (req->data_length < bytes) {
		*ret_outcome = scsi_data_length_mismatch();
		return false;
	}
	*ret_bytes = bytes;
	return true;
}

static void read_done(struct tcmu_request *req, int result)
{
	struct scsi_outcome outcome = scsi_outcome_from_errno(result, false);
	struct scsi_block_range range = scsi_decode_range(req->cdb);
	uint32_t read_length = result ? 0 : (uint32_t)((uint64_t)range.blocks * req->dev->block_size);

	/* A cut buffer's tail must not carry stale ring data to the initiator. */
	if (req->scsi_private && result == 0)
		scsi_data_zero(req, read_length);
	free(req->scsi_private);
	scsi_finish(req, &outcome, read_length);
}

static void write_done(struct tcmu_request *req, int result)
{
	struct scsi_outcome outcome = scsi_outcome_from_errno(result, true);

	free(req->scsi_private);
	scsi_gate_leave(req->dev, false);
	scsi_finish(req, &outcome, 0);
}

static void transfer(struct tcmu_request *req, bool is_write)
{
	struct tcmu_device *dev = req->dev;
	const struct scsi_block_range range = scsi_decode_range(req->cdb);
	const struct iovec *iov = req->iov;
	size_t iov_count = req->iov_count;
	struct scsi_outcome outcome;
	uint64_t bytes;
	int result;

	if (!check_transfer(req, &range, &bytes, &outcome)) {
		if (is_write)
			scsi_gate_leave(dev, false);
		scsi_finish(req, &outcome, 0);
		return;
	}
	if (bytes == 0) {
		if (is_write)
			scsi_gate_leave(dev, false);
		scsi_finish_good(req);
		return;
	}
	req->io_done = is_write ? write_done : read_done;
	/*
	 * A buffer larger than the transfer is cut to it: the handler contract
	 * says the iov sums to the length. Rare, so it may allocate.
	 */
	if (req->data_length > bytes) {
		struct iovec *slice = scsi_data_slice(req, 0, bytes, &iov_count);

		if (!slice) {
			req->io_done(req, -ENOMEM);
			return;
		}
		req->scsi_private = slice;
		iov = slice;
	}
	if (is_write) {
		/* WRITE(6) has no FUA bit. */
		uint32_t flags = scsi_write_flags(req->dev, req->cdb[0] != SCSI_OP_WRITE_6 &&
						  (req->cdb[1] & 0x08));

		result = dev->handler->write(dev, req, iov, iov_count, range.lba * dev->block_size,
					 bytes, flags);
	} else {
		/* A FUA read needs nothing more: handlers read what was written. */
		result = dev->handler->read(dev, req, iov, iov_count, range.lba * dev->block_size,
					bytes);
	}
	if (result < 0)
		req->io_done(req, result);
}

void scsi_read(struct tcmu_request *req)
{
	transfer(req, false);
}

void scsi_write(struct tcmu_request *req)
{
	transfer(req, true);
}

static void synchronize_done(struct tcmu_request *req, int result)
{
	struct scsi_outcome outcome = scsi_outcome_from_errno(result, true);

	scsi_finish(req, &outcome, 0);
}

/*
 * SBC-3 5.22-5.23. Handlers flush everything; the range is only checked.
 * IMMED is allowed but status still waits for the flush: GOOD means the
 * data is durable.
 */
void scsi_synchronize_cache(struct tcmu_request *req)
{
	struct tcmu_device *dev = req->dev;
	const struct scsi_block_range range = scsi_decode_range(req->cdb);
	struct scsi_outcome outcome;
	int result;

	if (!scsi_range_inside(dev, range.lba, range.blocks)) {
		outcome = scsi_lba_out_of_range(range.lba);
		scsi_finish(req, &outcome, 0);
		return;
	}
	req->io_done = synchronize_done;
	result = dev->handler->flush(dev, req);
	if (result < 0)
		synchronize_done(req, result);
}

/*
 * SBC-3 5.8-5.9. There is no cache to load: GOOD ("not all blocks were
 * loaded"), never CONDITION MET, once the range is checked.
 */
void scsi_pre_fetch(struct tcmu_request *req)
{
	const struct scsi_block_range range = scsi_decode_range(req->cdb);
	struct scsi_outcome outcome;

	if (!scsi_range_inside(req->dev, range.lba, range.blocks)) {
		outcome = scsi_lba_out_of_range(range.lba);
		scsi_finish(req, &outcome, 0);
		return;
	}
	scsi_finish_good(req);
}
