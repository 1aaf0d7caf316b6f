/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_copy.c: the copy manager: EXTENDED COPY (LID1) with identification
 * descriptor CSCDs (E4h) and block-to-block segments (02h), and RECEIVE
 * COPY RESULTS with OPERATING PARAMETERS (SPC-4 6.4, 6.18).
 *
 * Security: the ring does not say which initiator sent a command, so the
 * copy manager cannot know which logical units that initiator may reach.
 * A CSCD must therefore name this very logical unit (its NAA designator);
 * any other is UNREACHABLE COPY TARGET. Copies run to completion before
 * the command completes, so no list is held for COPY STATUS.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tcmu_internal.h"

#define MAX_CSCD_DESCRIPTORS	SCSI_COPY_MAX_CSCD_DESCRIPTORS
#define MAX_SEGMENT_DESCRIPTORS	SCSI_COPY_MAX_SEGMENT_DESCRIPTORS
#define MAX_LIST_LENGTH		SCSI_COPY_MAX_LIST_LENGTH
#define COPY_CHUNK_BYTES	(256u << 10)

#define CSCD_IDENTIFICATION	SCSI_COPY_CSCD_IDENTIFICATION
#define SEGMENT_BLOCK_TO_BLOCK	SCSI_COPY_SEGMENT_BLOCK_TO_BLOCK

struct copy_segment {
	uint64_t source_lba;
	uint64_t destination_lba;
	uint32_t blocks;
	bool backwards;		/* destination overlaps the source from above */
};

struct copy_job {
	struct scsi_steps steps;
	bool hold_status;	/* LIST ID USAGE asks for COPY STATUS */
	uint8_t list_identifier;
	uint64_t bytes_copied;
	size_t count;
	size_t segment;
	uint64_t blocks_done;	/* of the current segment */
	uint64_t chunk_blocks;
	uint64_t moving_blocks;	/* of the chunk in flight */
	bool writing;		/* the chunk was read and is being written */
	uint32_t write_flags;
	struct iovec iov;
	uint8_t *buffer;
	struct copy_segment segments[];
};

/* The first block of the chunk in flight, relative to the segment start. */
static uint64_t chunk_start(const struct copy_job *job, const struct copy_segment *segment)
{
	if (segment->backwards)
		return segment->blocks - job->blocks_done - job->moving_blocks;
	return job->blocks_done;
}

static int copy_issue(struct scsi_steps *steps)
{
	struct copy_job *job = (struct copy_job *)steps;
	struct tcmu_request *req = steps->req;
	struct tcmu_device *dev = req->dev;
	const struct copy_segment *segment;
	uint64_t start;

	while (job->segment < job->count && job->blocks_done == job->segments[job->segment].blocks) {
		job->segment++;
		job->blocks_done = 0;
	}
	if (job->segment == job->count)
		return 1;
	segment = &job->segments[job->segment];
	if (!job->writing) {
		job->moving_blocks = segment->blocks - job->blocks_done;
		if (job->moving_blocks > job->chunk_blocks)
			job->moving_blocks = job->chunk_blocks;
	}
	start = chunk_start(job, segment);
	job->iov.iov_base = job->buffer;
	job->iov.iov_len = job->moving_blocks * dev->block_size;
	if (job->writing)
		return dev->handler->write(dev, req, &job->iov, 1,
					   (segment->destination_lba + start) * dev->block_size,
					   job->iov.iov_len, job->write_flags);
	return dev->handler->read(dev, req, &job->iov, 1,
				  (segment->source_lba + start) * dev->block_size, job->iov.iov_len);
}

/*
 * SPC-4 5.17.7: a segment that cannot be processed (a CSCD it does not
 * have, blocks the device does not have, a failing read or write) aborts
 * the copy: COPY ABORTED, with the additional sense code of the cause.
 */
static struct scsi_outcome copy_aborted(struct scsi_outcome outcome)
{
	if (outcome.status == SCSI_STATUS_CHECK_CONDITION)
		outcome.sense_key = SCSI_SENSE_COPY_ABORTED;
	return outcome;
}

static bool copy_completed(struct scsi_steps *steps, int result)
{
	struct copy_job *job = (struct copy_job *)steps;

	if (result) {
		steps->outcome = copy_aborted(scsi_outcome_from_errno(result, job->writing));
		return false;
	}
	if (job->writing) {
		job->blocks_done += job->moving_blocks;
		job->bytes_copied += job->moving_blocks * steps->req->dev->block_size;
	}
	job->writing = !job->writing;
	return true;
}

/* Keeps how a copy ended for COPY STATUS, replacing the oldest or the same list. */
static void record_status(struct tcmu_device *dev, const struct copy_job *job)
{
	struct scsi_device_state *state = &dev->scsi;
	struct scsi_copy_status *slot = NULL;

	pthread_mutex_lock(&state->gate_lock);
	for (size_t i = 0; i < ARRAY_SIZE(state->copy_statuses); i++)
		if (state->copy_statuses[i].valid &&
		    state->copy_statuses[i].list_identifier == job->list_identifier)
			slot = &state->copy_statuses[i];
	if (!slot) {
		slot = &state->copy_statuses[state->copy_status_next];
		state->copy_status_next = (state->copy_status_next + 1) %
					  ARRAY_SIZE(state->copy_statuses);
	}
	*slot = (struct scsi_copy_status){
		.valid = true,
		.list_identifier = job->list_identifier,
		.status = job->steps.outcome.status == SCSI_STATUS_GOOD ? 0x01 : 0x02,
		.segments = (uint16_t)job->segment,
		.bytes = job->bytes_copied,
	};
	pthread_mutex_unlock(&state->gate_lock);
}

static void copy_done(struct scsi_steps *steps)
{
	struct copy_job *job = (struct copy_job *)steps;

	if (job->hold_status)
		record_status(steps->req->dev, job);
	free(job->buffer);
	free(job);
}

/* Checks one CSCD descriptor at offset in the list: it must be this logical unit. */
static bool check_cscd(const struct tcmu_device *dev, const uint8_t *cscd, size_t offset,
		       struct scsi_outcome *ret_outcome)
{
	uint8_t ours[16];
	uint32_t block_length;

	if (cscd[0] != CSCD_IDENTIFICATION) {
		*ret_outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST,
					  SCSI_ASC_UNSUPPORTED_TARGET_DESCRIPTOR_TYPE);
		return false;
	}
	/* LU ID TYPE 00b (the designator says which), a block device. */
	if ((cscd[1] & 0xc0) != 0 || (cscd[1] & 0x1f) != 0) {
		*ret_outcome = scsi_invalid_parameter_field((uint16_t)(offset + 1), 7);
		return false;
	}
	block_length = scsi_get_be24(cscd + 29);
	if (block_length != 0 && block_length != dev->block_size) {
		*ret_outcome = scsi_invalid_parameter_field((uint16_t)(offset + 29), 7);
		return false;
	}
	scsi_naa_designator(dev, ours);
	/* NUL, or anything but a binary NAA designator of the logical unit equal to ours. */
	if ((cscd[1] & 0x20) || (cscd[4] & 0x0f) != 0x01 || (cscd[5] & 0x3f) != 0x03 ||
	    cscd[7] != 16 || memcmp(cscd + 8, ours, 16) != 0) {
		*ret_outcome = scsi_check(SCSI_SENSE_COPY_ABORTED,
					  SCSI_ASC_UNREACHABLE_COPY_TARGET);
		return false;
	}
	return true;
}

/* SPC-4 6.4: the whole list is checked before a block moves. */
void scsi_extended_copy(struct tcmu_request *req)
{
	struct tcmu_device *dev = req->dev;
	const uint32_t list_length = scsi_get_be32(req->cdb + 10);
	uint8_t list[MAX_LIST_LENGTH];
	size_t cscd_length, segments_length, inline_length, cscd_count;
	uint64_t chunk_blocks = COPY_CHUNK_BYTES / dev->block_size;
	uint32_t max_segment_blocks = 0;
	struct scsi_outcome outcome;
	struct copy_job *job;
	size_t offset, segments_end, count = 0;

	if (list_length == 0) {
		outcome = scsi_good();
		goto fail;
	}
	if (list_length < 16 || list_length > sizeof(list) || req->data_length < list_length) {
		outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST,
				     SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
		goto fail;
	}
	scsi_data_copy_out(req, 0, list, list_length);
	cscd_length = scsi_get_be16(list + 2);
	segments_length = scsi_get_be32(list + 8);
	inline_length = scsi_get_be32(list + 12);
	if (inline_length) {
		outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INLINE_DATA_LENGTH_EXCEEDED);
		goto fail;
	}
	if (cscd_length % 32) {
		outcome = scsi_invalid_parameter_field(2, 7);
		goto fail;
	}
	cscd_count = cscd_length / 32;
	if (cscd_count > MAX_CSCD_DESCRIPTORS) {
		outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_TOO_MANY_TARGET_DESCRIPTORS);
		goto fail;
	}
	if (16 + cscd_length + segments_length > list_length) {
		outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST,
				     SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
		goto fail;
	}
	for (size_t i = 0; i < cscd_count; i++)
		if (!check_cscd(dev, list + 16 + 32 * i, 16 + 32 * i, &outcome))
			goto fail;

	/* Count and check the segments before allocating for them. */
	segments_end = 16 + cscd_length + segments_length;
	for (offset = 16 + cscd_length; offset < segments_end; count++) {
		const uint8_t *segment = list + offset;
		uint64_t source, destination;
		uint32_t blocks;

		if (segments_end - offset < 4 ||
		    segments_end - offset < 4u + scsi_get_be16(segment + 2)) {
			outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST,
					     SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
			goto fail;
		}
		if (count == MAX_SEGMENT_DESCRIPTORS) {
			outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST,
					     SCSI_ASC_TOO_MANY_SEGMENT_DESCRIPTORS);
			goto fail;
		}
		if (segment[0] != SEGMENT_BLOCK_TO_BLOCK) {
			outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST,
					     SCSI_ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE);
			goto fail;
		}
		if (scsi_get_be16(segment + 2) != 0x18) {
			outcome = scsi_invalid_parameter_field((uint16_t)(offset + 2), 7);
			goto fail;
		}
		if (scsi_get_be16(segment + 4) >= cscd_count) {
			outcome = copy_aborted(scsi_invalid_parameter_field((uint16_t)(offset + 4), 7));
			goto fail;
		}
		if (scsi_get_be16(segment + 6) >= cscd_count) {
			outcome = copy_aborted(scsi_invalid_parameter_field((uint16_t)(offset + 6), 7));
			goto fail;
		}
		blocks = scsi_get_be16(segment + 10);
		source = scsi_get_be64(segment + 12);
		destination = scsi_get_be64(segment + 20);
		if (!scsi_range_inside(dev, source, blocks)) {
			outcome = copy_aborted(scsi_lba_out_of_range(source));
			goto fail;
		}
		if (!scsi_range_inside(dev, destination, blocks)) {
			outcome = copy_aborted(scsi_lba_out_of_range(destination));
			goto fail;
		}
		if (blocks > max_segment_blocks)
			max_segment_blocks = blocks;
		offset += 28;
	}

	job = calloc(1, sizeof(*job) + count * sizeof(job->segments[0]));
	if (!job) {
		outcome = scsi_outcome_from_errno(-ENOMEM, true);
		goto fail;
	}
	if (chunk_blocks == 0)
		chunk_blocks = 1;
	if (chunk_blocks > max_segment_blocks)
		chunk_blocks = max_segment_blocks ? max_segment_blocks : 1;
	job->buffer = malloc(chunk_blocks * dev->block_size);
	if (!job->buffer) {
		free(job);
		outcome = scsi_outcome_from_errno(-ENOMEM, true);
		goto fail;
	}
	for (size_t i = 0; i < count; i++) {
		const uint8_t *segment = list + 16 + cscd_length + 28 * i;
		struct copy_segment *copy = &job->segments[i];

		copy->blocks = scsi_get_be16(segment + 10);
		copy->source_lba = scsi_get_be64(segment + 12);
		copy->destination_lba = scsi_get_be64(segment + 20);
		copy->backwards = copy->destination_lba > copy->source_lba &&
				  copy->destination_lba < copy->source_lba + copy->blocks;
	}
	job->count = count;
	job->chunk_blocks = chunk_blocks;
	/* LIST ID USAGE 11b: no identifier, nothing to hold. */
	job->hold_status = (list[1] & 0x18) != 0x18;
	job->list_identifier = list[0];
	job->write_flags = scsi_write_flags(req, false);
	job->steps.req = req;
	job->steps.issue = copy_issue;
	job->steps.completed = copy_completed;
	job->steps.done = copy_done;
	job->steps.gated = true;
	scsi_steps_run(&job->steps);
	return;

fail:
	scsi_finish_writer(req, &outcome);
}

/*
 * SPC-4 6.18.3 (COPY STATUS, LID1): how the last copy with this list
 * identifier ended. Copies finish before their command does, so the
 * status is never "in progress". No data is held (HDD 0).
 */
static void copy_status(struct tcmu_request *req)
{
	struct scsi_device_state *state = &req->dev->scsi;
	const uint8_t list_identifier = req->cdb[2];
	struct scsi_copy_status found = { 0 };
	struct scsi_outcome outcome;
	uint8_t data[12] = { 0 };
	uint64_t count;
	uint8_t units = 0x00;	/* bytes */

	pthread_mutex_lock(&state->gate_lock);
	for (size_t i = 0; i < ARRAY_SIZE(state->copy_statuses); i++)
		if (state->copy_statuses[i].valid &&
		    state->copy_statuses[i].list_identifier == list_identifier)
			found = state->copy_statuses[i];
	pthread_mutex_unlock(&state->gate_lock);
	if (!found.valid) {
		outcome = scsi_invalid_cdb_field(2, 7);
		scsi_finish(req, &outcome, 0);
		return;
	}
	/* Units of 1024^n bytes (F1h, F2h, ...) when the count needs them. */
	for (count = found.bytes; count > UINT32_MAX; count >>= 10)
		units = units ? units + 1 : 0xf1;
	scsi_put_be32(data, sizeof(data) - 4);
	data[4] = found.status;
	scsi_put_be16(data + 5, found.segments);
	data[7] = units;
	scsi_put_be32(data + 8, (uint32_t)count);
	scsi_finish_data_in(req, data, sizeof(data), scsi_get_be32(req->cdb + 10));
}

/*
 * SPC-4 6.18: COPY STATUS, and the copy manager's limits (OPERATING
 * PARAMETERS). No data is ever held, so RECEIVE DATA and FAILED SEGMENT
 * DETAILS are not offered.
 */
void scsi_receive_copy_results(struct tcmu_request *req)
{
	const struct tcmu_device *dev = req->dev;
	uint8_t data[44 + 2] = { 0 };
	unsigned int granularity = 0;

	if ((req->cdb[1] & 0x1f) == 0x00) {
		copy_status(req);
		return;
	}
	while ((2u << granularity) <= dev->block_size)
		granularity++;
	scsi_put_be32(data, sizeof(data) - 4);	/* AVAILABLE DATA: what follows it */
	data[4] = 0x01;		/* SNLID: lists without an identifier are fine */
	scsi_put_be16(data + 8, MAX_CSCD_DESCRIPTORS);
	scsi_put_be16(data + 10, MAX_SEGMENT_DESCRIPTORS);
	scsi_put_be32(data + 12, MAX_LIST_LENGTH);
	scsi_put_be32(data + 16, SCSI_COPY_MAX_SEGMENT_BYTES(dev->block_size));
	scsi_put_be16(data + 34, 1);	/* TOTAL CONCURRENT COPIES */
	data[36] = 1;			/* MAXIMUM CONCURRENT COPIES */
	data[37] = (uint8_t)granularity;
	data[43] = 2;
	data[44] = SEGMENT_BLOCK_TO_BLOCK;
	data[45] = CSCD_IDENTIFICATION;
	scsi_finish_data_in(req, data, sizeof(data), scsi_get_be32(req->cdb + 10));
}
