/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_copy.c: the copy manager: EXTENDED COPY (LID1) with identification
 * descriptor CSCDs (E4h) and block-to-block segments (02h), and RECEIVE
 * COPY RESULTS with OPERATING PARAMETERS (SPC-4 6.4, 6.18).
 *
 * Security: the ring does not say which initiator sent a command, so the
 * copy manager cannot know which logical units that initiator may reach.
 * A CSCD must therefore name this very logical unit (its NAA designator),
 * or a device the daemon serves that the administrator put in one
 * xcopy_group with it (copy_groups.c); any other is UNREACHABLE COPY
 * TARGET, whether it exists or not. Copies run to completion before the
 * command completes, so no list is held for COPY STATUS.
 *
 * Another device is referenced from the check of the list until the copy
 * ends, so its removal waits for the copy, which stops at its next chunk
 * with UNREACHABLE COPY TARGET once the kernel removed a device it uses.
 * Writes pass the destination's write gate, which the copy enters in
 * place of the receiving device's (one gate held at a time: two copies in
 * opposite directions cannot wait for each other).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tcmu_internal.h"

#define MAX_CSCD_DESCRIPTORS	SCSI_COPY_MAX_CSCD_DESCRIPTORS
#define MAX_SEGMENT_DESCRIPTORS	SCSI_COPY_MAX_SEGMENT_DESCRIPTORS
#define MAX_LIST_LENGTH		SCSI_COPY_MAX_LIST_LENGTH
/* A multiple of every block size (powers of two up to 64 KiB). */
#define COPY_CHUNK_BYTES	(256u << 10)

#define CSCD_IDENTIFICATION	SCSI_COPY_CSCD_IDENTIFICATION
#define SEGMENT_BLOCK_TO_BLOCK	SCSI_COPY_SEGMENT_BLOCK_TO_BLOCK
/* Block-to-block segment byte 1: the block count is in destination blocks. */
#define SEGMENT_DESTINATION_COUNT	0x02

/* In bytes: a segment's length is a whole number of blocks of both devices. */
struct copy_segment {
	struct tcmu_device *source;
	struct tcmu_device *destination;
	uint64_t source_offset;
	uint64_t destination_offset;
	uint64_t length;
	bool backwards;		/* destination overlaps the source from above */
};

enum copy_phase {
	COPY_READING,
	COPY_WRITING,
	COPY_ENTERING_GATE,	/* of the current segment's destination */
};

struct copy_job {
	struct scsi_steps steps;
	bool hold_status;	/* LIST ID USAGE asks for COPY STATUS */
	uint8_t list_identifier;
	uint64_t bytes_copied;
	size_t count;
	size_t segment;
	uint64_t bytes_done;	/* of the current segment */
	uint64_t moving;	/* bytes of the chunk in flight */
	enum copy_phase phase;
	struct tcmu_device *gate_device;	/* whose write gate the copy holds, or NULL */
	bool device_left;	/* a device of the segment was removed meanwhile */
	struct tcmu_device *borrowed[MAX_CSCD_DESCRIPTORS];	/* referenced other devices */
	size_t borrowed_count;
	struct iovec iov;
	uint8_t *buffer;
	uint64_t buffer_size;
	struct copy_segment segments[];
};

/* The first byte of the chunk in flight, relative to the segment start. */
static uint64_t chunk_start(const struct copy_job *job, const struct copy_segment *segment)
{
	if (segment->backwards)
		return segment->length - job->bytes_done - job->moving;
	return job->bytes_done;
}

static void gate_opened(struct tcmu_request *req)
{
	scsi_steps_io_done(req, 0);
}

/* Holds the destination's write gate instead of the one held; 0 as an op does. */
static int enter_destination_gate(struct copy_job *job, struct tcmu_device *destination)
{
	struct tcmu_request *req = job->steps.req;

	if (job->gate_device)
		scsi_gate_leave(job->gate_device, false);
	job->gate_device = NULL;
	job->phase = COPY_ENTERING_GATE;
	if (scsi_gate_enter(destination, req, false, gate_opened))
		scsi_steps_io_done(req, 0);
	return 0;
}

/* The kernel removed the source or the destination: the copy ends here. */
static bool segment_lost_device(struct copy_job *job, const struct copy_segment *segment)
{
	job->device_left = __atomic_load_n(&segment->source->leaving, __ATOMIC_ACQUIRE) ||
			   __atomic_load_n(&segment->destination->leaving, __ATOMIC_ACQUIRE);
	return job->device_left;
}

static int copy_issue(struct scsi_steps *steps)
{
	struct copy_job *job = (struct copy_job *)steps;
	struct tcmu_request *req = steps->req;
	const struct copy_segment *segment;
	uint64_t start;

	if (job->phase == COPY_WRITING) {
		segment = &job->segments[job->segment];
		if (segment_lost_device(job, segment))
			return -ENODEV;
		start = chunk_start(job, segment);
		return segment->destination->handler->write(
			segment->destination, req, &job->iov, 1,
			segment->destination_offset + start, job->moving,
			scsi_write_flags(segment->destination, false));
	}
	while (job->segment < job->count && job->bytes_done == job->segments[job->segment].length) {
		job->segment++;
		job->bytes_done = 0;
	}
	if (job->segment == job->count)
		return 1;
	segment = &job->segments[job->segment];
	if (segment_lost_device(job, segment))
		return -ENODEV;
	if (segment->destination != job->gate_device)
		return enter_destination_gate(job, segment->destination);
	job->moving = segment->length - job->bytes_done;
	if (job->moving > job->buffer_size)
		job->moving = job->buffer_size;
	start = chunk_start(job, segment);
	job->iov.iov_base = job->buffer;
	job->iov.iov_len = job->moving;
	return segment->source->handler->read(segment->source, req, &job->iov, 1,
					      segment->source_offset + start, job->moving);
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

	if (job->device_left) {
		steps->outcome = scsi_check(SCSI_SENSE_COPY_ABORTED,
					    SCSI_ASC_UNREACHABLE_COPY_TARGET);
		return false;
	}
	if (result) {
		steps->outcome = copy_aborted(scsi_outcome_from_errno(result,
								      job->phase == COPY_WRITING));
		return false;
	}
	switch (job->phase) {
	case COPY_ENTERING_GATE:
		job->gate_device = job->segments[job->segment].destination;
		job->phase = COPY_READING;
		break;
	case COPY_READING:
		job->phase = COPY_WRITING;
		break;
	case COPY_WRITING:
		job->bytes_done += job->moving;
		job->bytes_copied += job->moving;
		job->phase = COPY_READING;
		break;
	}
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

static void put_borrowed(struct tcmu_device *const *borrowed, size_t count)
{
	for (size_t i = 0; i < count; i++)
		device_put(borrowed[i]);
}

static void copy_done(struct scsi_steps *steps)
{
	struct copy_job *job = (struct copy_job *)steps;

	if (job->hold_status)
		record_status(steps->req->dev, job);
	if (job->gate_device)
		scsi_gate_leave(job->gate_device, false);
	put_borrowed(job->borrowed, job->borrowed_count);
	free(job->buffer);
	free(job);
}

/*
 * What a CSCD descriptor names: this logical unit, or another device that
 * may take part, which is then referenced and added to borrowed.
 */
static bool resolve_cscd(struct tcmu_device *dev, const uint8_t *cscd,
			 struct tcmu_device **ret_device, struct tcmu_device **borrowed,
			 size_t *borrowed_count)
{
	uint8_t ours[16];
	struct tcmu_device *other;

	/* NUL, or anything but a binary NAA designator of a logical unit. */
	if ((cscd[1] & 0x20) || (cscd[4] & 0x0f) != 0x01 || (cscd[5] & 0x3f) != 0x03 ||
	    cscd[7] != 16)
		return false;
	scsi_naa_designator(dev, ours);
	if (memcmp(cscd + 8, ours, 16) == 0) {
		*ret_device = dev;
		return true;
	}
	other = device_get_by_designator(cscd + 8);
	if (!other)
		return false;
	if (other != dev && !copy_groups_allow(dev, other)) {
		tcmu_dev_dbg(dev, "EXTENDED COPY names %s, which no xcopy_group puts with this "
			     "device", other->backstore);
		device_put(other);
		return false;
	}
	borrowed[(*borrowed_count)++] = other;
	*ret_device = other;
	return true;
}

/* Checks one CSCD descriptor at offset in the list and finds its device. */
static bool check_cscd(struct tcmu_device *dev, const uint8_t *cscd, size_t offset,
		       struct tcmu_device **ret_device, struct tcmu_device **borrowed,
		       size_t *borrowed_count, struct scsi_outcome *ret_outcome)
{
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
	if (!resolve_cscd(dev, cscd, ret_device, borrowed, borrowed_count)) {
		*ret_outcome = scsi_check(SCSI_SENSE_COPY_ABORTED,
					  SCSI_ASC_UNREACHABLE_COPY_TARGET);
		return false;
	}
	block_length = scsi_get_be24(cscd + 29);
	if (block_length != 0 && block_length != (*ret_device)->block_size) {
		*ret_outcome = scsi_invalid_parameter_field((uint16_t)(offset + 29), 7);
		return false;
	}
	return true;
}

/*
 * Checks the block-to-block segment descriptor at offset and fills
 * segment. SPC-4 6.4.6.5: the block count is in source blocks, or with
 * DC in destination blocks; bytes that would not fill whole blocks at the
 * other end are an inexact segment, which needs residue handling that
 * this copy manager (which holds no data) does not offer.
 */
static bool check_segment(const struct tcmu_device *dev, const uint8_t *descriptor,
			  size_t offset, struct tcmu_device *const *devices, size_t cscd_count,
			  struct copy_segment *segment, struct scsi_outcome *ret_outcome)
{
	uint16_t source_index = scsi_get_be16(descriptor + 4);
	uint16_t destination_index = scsi_get_be16(descriptor + 6);
	uint64_t source_lba, destination_lba;
	struct tcmu_device *source, *destination;
	uint32_t source_block, destination_block;
	uint64_t blocks = scsi_get_be16(descriptor + 10);

	if (scsi_get_be16(descriptor + 2) != 0x18) {
		*ret_outcome = scsi_invalid_parameter_field((uint16_t)(offset + 2), 7);
		return false;
	}
	if (source_index >= cscd_count) {
		*ret_outcome = copy_aborted(scsi_invalid_parameter_field((uint16_t)(offset + 4), 7));
		return false;
	}
	if (destination_index >= cscd_count) {
		*ret_outcome = copy_aborted(scsi_invalid_parameter_field((uint16_t)(offset + 6), 7));
		return false;
	}
	source = devices[source_index];
	destination = devices[destination_index];
	source_block = source->block_size;
	destination_block = destination->block_size;
	/* Each CSCD may be reachable from here, and yet not from the other. */
	if (!copy_groups_allow(source, destination)) {
		*ret_outcome = scsi_check(SCSI_SENSE_COPY_ABORTED,
					  SCSI_ASC_UNREACHABLE_COPY_TARGET);
		return false;
	}
	segment->length = blocks * ((descriptor[1] & SEGMENT_DESTINATION_COUNT) ? destination_block
									  : source_block);
	if (segment->length % source_block || segment->length % destination_block) {
		*ret_outcome = scsi_check(SCSI_SENSE_COPY_ABORTED,
					  SCSI_ASC_UNEXPECTED_INEXACT_SEGMENT);
		return false;
	}
	/* The length VPD page 8Fh and OPERATING PARAMETERS report. */
	if (segment->length > SCSI_COPY_MAX_SEGMENT_BYTES(dev->block_size)) {
		*ret_outcome = copy_aborted(scsi_invalid_parameter_field((uint16_t)(offset + 10), 7));
		return false;
	}
	source_lba = scsi_get_be64(descriptor + 12);
	destination_lba = scsi_get_be64(descriptor + 20);
	if (!scsi_range_inside(source, source_lba, segment->length / source_block)) {
		*ret_outcome = copy_aborted(scsi_lba_out_of_range(source_lba));
		return false;
	}
	if (!scsi_range_inside(destination, destination_lba,
			       segment->length / destination_block)) {
		*ret_outcome = copy_aborted(scsi_lba_out_of_range(destination_lba));
		return false;
	}
	segment->source = source;
	segment->destination = destination;
	segment->source_offset = source_lba * source_block;
	segment->destination_offset = destination_lba * destination_block;
	segment->backwards = source == destination &&
			     segment->destination_offset > segment->source_offset &&
			     segment->destination_offset < segment->source_offset + segment->length;
	return true;
}

/* SPC-4 6.4: the whole list is checked before a block moves. */
void scsi_extended_copy(struct tcmu_request *req)
{
	struct tcmu_device *dev = req->dev;
	const uint32_t list_length = scsi_get_be32(req->cdb + 10);
	uint8_t list[MAX_LIST_LENGTH];
	struct tcmu_device *devices[MAX_CSCD_DESCRIPTORS];
	struct tcmu_device *borrowed[MAX_CSCD_DESCRIPTORS];
	struct copy_segment segments[MAX_SEGMENT_DESCRIPTORS];
	size_t cscd_length, segments_length, inline_length, cscd_count, borrowed_count = 0;
	uint64_t largest_segment = 0;
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
		if (!check_cscd(dev, list + 16 + 32 * i, 16 + 32 * i, &devices[i], borrowed,
				&borrowed_count, &outcome))
			goto fail;

	segments_end = 16 + cscd_length + segments_length;
	for (offset = 16 + cscd_length; offset < segments_end; count++) {
		const uint8_t *segment = list + offset;

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
		if (!check_segment(dev, segment, offset, devices, cscd_count, &segments[count],
				   &outcome))
			goto fail;
		if (segments[count].length > largest_segment)
			largest_segment = segments[count].length;
		offset += 28;
	}

	job = calloc(1, sizeof(*job) + count * sizeof(job->segments[0]));
	if (!job) {
		outcome = scsi_outcome_from_errno(-ENOMEM, true);
		goto fail;
	}
	job->buffer_size = largest_segment < COPY_CHUNK_BYTES ? largest_segment : COPY_CHUNK_BYTES;
	/* Only segments of no blocks: nothing moves, and malloc(0) may say NULL. */
	if (job->buffer_size) {
		job->buffer = malloc(job->buffer_size);
		if (!job->buffer) {
			free(job);
			outcome = scsi_outcome_from_errno(-ENOMEM, true);
			goto fail;
		}
	}
	memcpy(job->segments, segments, count * sizeof(segments[0]));
	memcpy(job->borrowed, borrowed, borrowed_count * sizeof(borrowed[0]));
	job->borrowed_count = borrowed_count;
	job->count = count;
	/* LIST ID USAGE 11b: no identifier, nothing to hold. */
	job->hold_status = (list[1] & 0x18) != 0x18;
	job->list_identifier = list[0];
	job->gate_device = dev;		/* the dispatcher entered it */
	job->steps.req = req;
	job->steps.issue = copy_issue;
	job->steps.completed = copy_completed;
	job->steps.done = copy_done;
	scsi_steps_run(&job->steps);
	return;

fail:
	put_borrowed(borrowed, borrowed_count);
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
