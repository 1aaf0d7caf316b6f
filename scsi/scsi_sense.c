/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_sense.c: typed command outcomes and the one place that turns them
 * into sense bytes (SPC-4 4.5: fixed format 70h, descriptor format 72h).
 */
#include <errno.h>
#include <string.h>

#include "scsi_internal.h"

struct scsi_outcome scsi_good(void)
{
	return (struct scsi_outcome){ .status = SCSI_STATUS_GOOD };
}

struct scsi_outcome scsi_check(uint8_t sense_key, uint16_t asc_ascq)
{
	return (struct scsi_outcome){
		.status = SCSI_STATUS_CHECK_CONDITION,
		.sense_key = sense_key,
		.asc_ascq = asc_ascq,
	};
}

static void point_at(struct scsi_outcome *outcome, uint16_t byte, int bit)
{
	outcome->field_pointer_valid = true;
	outcome->field_pointer = byte;
	if (bit >= 0 && bit <= 7) {
		outcome->bit_pointer_valid = true;
		outcome->bit_pointer = (uint8_t)bit;
	}
}

static struct scsi_outcome invalid_field(uint16_t asc_ascq, bool in_cdb, uint16_t byte, int bit)
{
	struct scsi_outcome outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST, asc_ascq);

	point_at(&outcome, byte, bit);
	outcome.field_in_cdb = in_cdb;
	return outcome;
}

struct scsi_outcome scsi_invalid_cdb_field(uint16_t byte, int bit)
{
	return invalid_field(SCSI_ASC_INVALID_FIELD_IN_CDB, true, byte, bit);
}

struct scsi_outcome scsi_invalid_parameter_field(uint16_t byte, int bit)
{
	return invalid_field(SCSI_ASC_INVALID_FIELD_IN_PARAMETER_LIST, false, byte, bit);
}

struct scsi_outcome scsi_copy_aborted(uint16_t asc_ascq, uint16_t segment, bool in_segment,
				      int byte, int bit)
{
	struct scsi_outcome outcome = scsi_check(SCSI_SENSE_COPY_ABORTED, asc_ascq);

	/* Bytes 0 and 1 would say where copy targets' own sense data is: none. */
	outcome.command_specific_valid = true;
	outcome.command_specific = segment;
	if (byte >= 0) {
		point_at(&outcome, (uint16_t)byte, bit);
		outcome.field_in_segment = in_segment;
	}
	return outcome;
}

struct scsi_outcome scsi_lba_out_of_range(uint64_t lba)
{
	struct scsi_outcome outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST,
						 SCSI_ASC_LBA_OUT_OF_RANGE);

	outcome.information_valid = true;
	outcome.information = lba;
	return outcome;
}

struct scsi_outcome scsi_data_length_mismatch(void)
{
	return scsi_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_COMMAND_IU);
}

struct scsi_outcome scsi_outcome_from_errno(int error, bool is_write)
{
	switch (error) {
	case 0:
		return scsi_good();
	case -EIO:
		return scsi_check(SCSI_SENSE_MEDIUM_ERROR,
				  is_write ? SCSI_ASC_WRITE_ERROR : SCSI_ASC_UNRECOVERED_READ_ERROR);
	case -ENOSPC:
		return scsi_check(SCSI_SENSE_DATA_PROTECT,
				  SCSI_ASC_SPACE_ALLOCATION_FAILED_WRITE_PROTECT);
	case -EROFS:
	case -EPERM:
		return scsi_check(SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
	case -ENOMEM:
	case -EAGAIN:
		return (struct scsi_outcome){ .status = SCSI_STATUS_BUSY };
	/*
	 * The storage refuses this daemon for good (a Ceph client that was
	 * blocklisted because another gateway took the image): this path to
	 * the logical unit is dead, the others may not be. SPC-4 5.16.2.4.5's
	 * unavailable state says exactly that; Linux fails the command without
	 * retrying it on the same path (a transition, 04h/0Ah, would be retried
	 * there) and dm-multipath retries it on another path, where HARDWARE
	 * ERROR would count as a failure of the device.
	 */
	case -ESHUTDOWN:
		return scsi_check(SCSI_SENSE_NOT_READY, SCSI_ASC_ALUA_UNAVAILABLE);
	default:
		return scsi_check(SCSI_SENSE_HARDWARE_ERROR, SCSI_ASC_INTERNAL_TARGET_FAILURE);
	}
}

/* The 3 bytes of the sense-key specific field (SPC-4 4.5.2.4.2, 4.5.2.4.5). */
static void format_field_pointer(const struct scsi_outcome *outcome, uint8_t *bytes)
{
	bytes[0] = 0x80;	/* SKSV */
	if (outcome->field_in_cdb)
		bytes[0] |= 0x40;
	if (outcome->field_in_segment)
		bytes[0] |= 0x20;
	if (outcome->bit_pointer_valid)
		bytes[0] |= 0x08 | (outcome->bit_pointer & 0x07);
	bytes[1] = (uint8_t)(outcome->field_pointer >> 8);
	bytes[2] = (uint8_t)outcome->field_pointer;
}

static size_t format_fixed(const struct scsi_outcome *outcome, uint8_t *sense)
{
	sense[0] = 0x70;
	sense[2] = outcome->sense_key & 0x0f;
	/* The 4-byte INFORMATION field cannot hold a larger value: VALID stays 0. */
	if (outcome->information_valid && outcome->information <= UINT32_MAX) {
		sense[0] |= 0x80;
		scsi_put_be32(sense + 3, (uint32_t)outcome->information);
	}
	sense[7] = 10;		/* additional sense length: bytes 8..17 */
	if (outcome->command_specific_valid)
		scsi_put_be32(sense + 8, outcome->command_specific);
	sense[12] = (uint8_t)(outcome->asc_ascq >> 8);
	sense[13] = (uint8_t)outcome->asc_ascq;
	if (outcome->field_pointer_valid)
		format_field_pointer(outcome, sense + 15);
	return 18;
}

static size_t format_descriptor(const struct scsi_outcome *outcome, uint8_t *sense)
{
	size_t length = 8;

	sense[0] = 0x72;
	sense[1] = outcome->sense_key & 0x0f;
	sense[2] = (uint8_t)(outcome->asc_ascq >> 8);
	sense[3] = (uint8_t)outcome->asc_ascq;
	if (outcome->information_valid) {
		uint8_t *descriptor = sense + length;

		descriptor[0] = 0x00;	/* information */
		descriptor[1] = 0x0a;
		descriptor[2] = 0x80;	/* VALID */
		scsi_put_be64(descriptor + 4, outcome->information);
		length += 12;
	}
	/* The fixed format's 4 bytes, as a number in the descriptor's 8. */
	if (outcome->command_specific_valid) {
		uint8_t *descriptor = sense + length;

		descriptor[0] = 0x01;	/* command-specific information */
		descriptor[1] = 0x0a;
		scsi_put_be64(descriptor + 4, outcome->command_specific);
		length += 12;
	}
	if (outcome->field_pointer_valid) {
		uint8_t *descriptor = sense + length;

		descriptor[0] = 0x02;	/* sense key specific */
		descriptor[1] = 0x06;
		format_field_pointer(outcome, descriptor + 4);
		length += 8;
	}
	sense[7] = (uint8_t)(length - 8);
	return length;
}

size_t scsi_sense_format(const struct scsi_outcome *outcome, bool descriptor_format,
			 uint8_t sense[SCSI_SENSE_BUFFER_SIZE])
{
	memset(sense, 0, SCSI_SENSE_BUFFER_SIZE);
	if (descriptor_format)
		return format_descriptor(outcome, sense);
	return format_fixed(outcome, sense);
}
