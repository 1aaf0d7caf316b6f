/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_unit.c: the logical unit's state and size: TEST UNIT READY,
 * START STOP UNIT, READ CAPACITY (10)/(16), REQUEST SENSE.
 */
#include <string.h>

#include "scsi_internal.h"

void scsi_test_unit_ready(struct tcmu_request *req)
{
	/* The dispatcher already answered NOT READY for a stopped unit. */
	scsi_finish_good(req);
}

static void stop_flushed(struct tcmu_request *req, int result)
{
	struct scsi_outcome outcome = scsi_outcome_from_errno(result, true);

	if (result == 0)
		__atomic_store_n(&req->dev->scsi.stopped, true, __ATOMIC_RELEASE);
	scsi_finish(req, &outcome, 0);
}

/*
 * SBC-3 5.25. There is no medium to eject and no power condition to
 * enter; the stopped state is real: media access then gets NOT READY,
 * INITIALIZING COMMAND REQUIRED until a START.
 */
void scsi_start_stop_unit(struct tcmu_request *req)
{
	const uint8_t *cdb = req->cdb;
	struct tcmu_device *dev = req->dev;
	struct scsi_outcome outcome;
	int result;

	if (cdb[4] & 0xf0) {
		outcome = scsi_invalid_cdb_field(4, 7);
		goto finish;
	}
	/* The modifier only qualifies a power condition, and we take none. */
	if (cdb[3] & 0x0f) {
		outcome = scsi_invalid_cdb_field(3, 3);
		goto finish;
	}
	if (cdb[4] & 0x02) {
		outcome = scsi_invalid_cdb_field(4, 1);
		goto finish;
	}
	if (cdb[4] & 0x01) {
		__atomic_store_n(&dev->scsi.stopped, false, __ATOMIC_RELEASE);
		scsi_finish_good(req);
		return;
	}
	if (cdb[4] & 0x04) {	/* NO_FLUSH */
		__atomic_store_n(&dev->scsi.stopped, true, __ATOMIC_RELEASE);
		scsi_finish_good(req);
		return;
	}
	req->io_done = stop_flushed;
	result = dev->handler->flush(dev, req);
	if (result < 0)
		stop_flushed(req, result);
	return;

finish:
	scsi_finish(req, &outcome, 0);
}

void scsi_read_capacity_10(struct tcmu_request *req)
{
	const uint8_t *cdb = req->cdb;
	uint64_t blocks = scsi_block_count(req->dev);
	uint8_t data[8] = { 0 };

	/* Without PMI the LOGICAL BLOCK ADDRESS field must be zero (SBC-3 5.15). */
	if (!(cdb[8] & 0x01) && scsi_get_be32(cdb + 2) != 0) {
		struct scsi_outcome outcome = scsi_invalid_cdb_field(2, 7);

		scsi_finish(req, &outcome, 0);
		return;
	}
	/* Too large for 32 bits: the initiator must use READ CAPACITY(16). */
	scsi_put_be32(data, blocks == 0 ? 0 :
		      blocks - 1 >= UINT32_MAX ? UINT32_MAX : (uint32_t)(blocks - 1));
	scsi_put_be32(data + 4, req->dev->block_size);
	scsi_finish_data_in(req, data, sizeof(data), sizeof(data));
}

void scsi_read_capacity_16(struct tcmu_request *req)
{
	const uint8_t *cdb = req->cdb;
	struct tcmu_device *dev = req->dev;
	uint64_t blocks = scsi_block_count(dev);
	uint8_t data[32] = { 0 };

	if (!(cdb[14] & 0x01) && scsi_get_be64(cdb + 2) != 0) {
		struct scsi_outcome outcome = scsi_invalid_cdb_field(2, 7);

		scsi_finish(req, &outcome, 0);
		return;
	}
	scsi_put_be64(data, blocks ? blocks - 1 : 0);
	scsi_put_be32(data + 8, dev->block_size);
	/* Unmapped blocks read as zeros: handlers guarantee it (libtcmu.h). */
	if (scsi_has_unmap(dev))
		data[14] = 0x80 | 0x40;	/* LBPME, LBPRZ */
	scsi_finish_data_in(req, data, sizeof(data), scsi_get_be32(cdb + 10));
}

/*
 * Clears flag, saying whether it was set: a plain load first, as the
 * exchange would dirty the cache line on every command.
 */
static bool take_flag(bool *flag)
{
	return __atomic_load_n(flag, __ATOMIC_ACQUIRE) &&
	       __atomic_exchange_n(flag, false, __ATOMIC_ACQ_REL);
}

bool scsi_unit_attention(struct tcmu_device *dev, struct scsi_outcome *ret_outcome)
{
	if (take_flag(&dev->scsi.capacity_changed))
		*ret_outcome = scsi_check(SCSI_SENSE_UNIT_ATTENTION,
					  SCSI_ASC_CAPACITY_DATA_HAS_CHANGED);
	else if (take_flag(&dev->scsi.port_state_changed))
		*ret_outcome = scsi_check(SCSI_SENSE_UNIT_ATTENTION,
					  SCSI_ASC_ASYMMETRIC_ACCESS_STATE_CHANGED);
	else
		return false;
	return true;
}

/*
 * SPC-4 6.39. Sense data travels with each CHECK CONDITION (autosense),
 * so all that is left to report here is a pending unit attention or the
 * stopped state.
 */
void scsi_request_sense(struct tcmu_request *req)
{
	struct tcmu_device *dev = req->dev;
	uint8_t sense[SCSI_SENSE_BUFFER_SIZE];
	struct scsi_outcome outcome;
	size_t length;

	if (scsi_unit_attention(dev, &outcome))
		;	/* outcome is the unit attention */
	else if (__atomic_load_n(&dev->scsi.stopped, __ATOMIC_ACQUIRE))
		outcome = scsi_check(SCSI_SENSE_NOT_READY, SCSI_ASC_NOT_READY_INITIALIZING_REQUIRED);
	else
		outcome = scsi_check(SCSI_SENSE_NO_SENSE, SCSI_ASC_NONE);
	length = scsi_sense_format(&outcome, req->cdb[1] & 0x01, sense);
	scsi_finish_data_in(req, sense, length, req->cdb[4]);
}

/*
 * SBC-3 5.3. The medium is always formatted: nothing to do but check
 * that no protection information, initialization pattern or defect list
 * is asked for, which we could not honour.
 */
void scsi_format_unit(struct tcmu_request *req)
{
	const uint8_t *cdb = req->cdb;
	const bool long_list = cdb[1] & 0x20;
	const size_t header_length = long_list ? 8 : 4;
	uint8_t header[8] = { 0 };
	struct scsi_outcome outcome;
	uint32_t defect_list_length;

	/* FMTPINFO is refused by the usage map: no protection information. */
	if (!(cdb[1] & 0x10)) {	/* FMTDATA: no parameter list */
		scsi_finish_good(req);
		return;
	}
	if (req->data_length < header_length) {
		outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST,
				     SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
		goto finish;
	}
	scsi_data_copy_out(req, 0, header, header_length);
	defect_list_length = long_list ? scsi_get_be32(header + 4) : scsi_get_be16(header + 2);
	if (header[0] & 0x07) {			/* PROTECTION FIELD USAGE */
		outcome = scsi_invalid_parameter_field(0, 2);
		goto finish;
	}
	if (header[1] & 0x08) {			/* IP: initialization pattern */
		outcome = scsi_invalid_parameter_field(1, 3);
		goto finish;
	}
	if (defect_list_length) {
		outcome = scsi_invalid_parameter_field(long_list ? 4 : 2, 7);
		goto finish;
	}
	scsi_finish_good(req);
	return;

finish:
	scsi_finish(req, &outcome, 0);
}

/*
 * SPC-4 6.32. The default self-test has nothing to find: GOOD. Background
 * self-tests and diagnostic pages are not supported.
 */
void scsi_send_diagnostic(struct tcmu_request *req)
{
	const uint8_t *cdb = req->cdb;
	struct scsi_outcome outcome;

	/* SELF-TEST CODE (background self-tests) is refused by the usage map. */
	if (scsi_get_be16(cdb + 3)) {		/* PARAMETER LIST LENGTH */
		outcome = scsi_invalid_cdb_field(3, 7);
		scsi_finish(req, &outcome, 0);
		return;
	}
	scsi_finish_good(req);
}
