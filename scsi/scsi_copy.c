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
 * Errors (SPC-4 5.17.7): the list's form is checked whole before a segment
 * is processed, and is ILLEGAL REQUEST; what concerns a copy target (a CSCD
 * naming none the copy can use, a segment outside it, a unit stopped, shrunk
 * or detached meanwhile, a write-protected destination, a failing read or
 * write) is COPY ABORTED in the segment it stops, after the ones before it.
 *
 * Another device is referenced from the check of the list until the copy
 * ends, so its detach waits for the copy, which stops at its next chunk.
 * Writes pass the destination's write gate, which the copy enters in
 * place of the receiving device's (one gate held at a time: two copies in
 * opposite directions cannot wait for each other).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_internal.h"

#define MAX_CSCD_DESCRIPTORS	SCSI_COPY_MAX_CSCD_DESCRIPTORS
#define MAX_SEGMENT_DESCRIPTORS	SCSI_COPY_MAX_SEGMENT_DESCRIPTORS
#define MAX_LIST_LENGTH		SCSI_COPY_MAX_LIST_LENGTH
/* A multiple of every block size (powers of two up to 64 KiB). */
#define COPY_CHUNK_BYTES	(256u << 10)

#define CSCD_IDENTIFICATION	SCSI_COPY_CSCD_IDENTIFICATION
#define SEGMENT_BLOCK_TO_BLOCK	SCSI_COPY_SEGMENT_BLOCK_TO_BLOCK
#define SEGMENT_LENGTH		28	/* of a block-to-block segment descriptor */
/* Block-to-block segment byte 1: the block count is in destination blocks. */
#define SEGMENT_DESTINATION_COUNT	0x02

/*
 * A CSCD descriptor of the list: the device it names or, when no segment
 * can use it, why not (the additional sense and the byte of the list at
 * fault), for the segment that tries.
 */
struct copy_target {
	struct tcmu_device *device;
	uint16_t asc_ascq;
	uint16_t field;
	int bit;
};

/* Its length in bytes: a whole number of blocks of both devices. */
struct copy_segment {
	struct tcmu_device *source;
	struct tcmu_device *destination;
	uint64_t source_lba;
	uint64_t destination_lba;
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
	size_t count;		/* segments to copy */
	/* Segment count could not be processed: said once the ones before it are copied. */
	bool refused;
	struct scsi_outcome refusal;
	size_t segment;
	uint64_t bytes_done;	/* of the current segment */
	uint64_t moving;	/* bytes of the chunk in flight */
	enum copy_phase phase;
	struct tcmu_device *gate_device;	/* whose write gate the copy holds, or NULL */
	struct tcmu_device *borrowed[MAX_CSCD_DESCRIPTORS];	/* referenced other devices */
	size_t borrowed_count;
	struct iovec iov;
	uint8_t *buffer;
	uint64_t buffer_size;
	struct device_io op;	/* the chunk's read or write, on its device's thread */
	struct copy_segment segments[];
};

static bool device_leaving(const struct tcmu_device *dev)
{
	return __atomic_load_n(&dev->leaving, __ATOMIC_ACQUIRE);
}

static bool device_stopped(const struct tcmu_device *dev)
{
	return __atomic_load_n(&dev->scsi.stopped, __ATOMIC_ACQUIRE);
}

/*
 * What may change while a copy runs, checked before each chunk: both ends
 * started (a stopped unit answers no media access, so it is no copy target),
 * the destination writable, both holding the segment's blocks (may shrink).
 */
static bool segment_ready(const struct copy_segment *segment, uint16_t number,
			  struct scsi_outcome *ret_outcome)
{
	const uint32_t source_block = segment->source->block_size;
	const uint32_t destination_block = segment->destination->block_size;

	if (device_stopped(segment->source)) {
		*ret_outcome = scsi_copy_aborted(SCSI_ASC_COPY_TARGET_DEVICE_NOT_REACHABLE, number,
					     true, 4, 7);
		return false;
	}
	if (device_stopped(segment->destination)) {
		*ret_outcome = scsi_copy_aborted(SCSI_ASC_COPY_TARGET_DEVICE_NOT_REACHABLE, number,
					     true, 6, 7);
		return false;
	}
	if (scsi_write_protected(segment->destination)) {
		*ret_outcome = scsi_copy_aborted(SCSI_ASC_WRITE_PROTECTED, number, true, 6, 7);
		return false;
	}
	/* Past the end: the pointer to the LBA says what no ASC of a copy does. */
	if (!scsi_range_inside(segment->source, segment->source_lba,
			       segment->length / source_block)) {
		*ret_outcome = scsi_copy_aborted(SCSI_ASC_NONE, number, true, 12, 7);
		return false;
	}
	if (!scsi_range_inside(segment->destination, segment->destination_lba,
			       segment->length / destination_block)) {
		*ret_outcome = scsi_copy_aborted(SCSI_ASC_NONE, number, true, 20, 7);
		return false;
	}
	return true;
}

/*
 * The kernel removed a device the copy uses, or the daemon is stopping:
 * the copy ends at its next chunk, so that the device's detach does not
 * wait for all of it. The receiving device counts, whichever devices the
 * segment moves data between.
 */
static bool copy_lost_device(const struct copy_job *job, const struct copy_segment *segment)
{
	return device_leaving(job->steps.req->dev) || device_leaving(segment->source) ||
	       device_leaving(segment->destination);
}

/*
 * The copy stops in the segment in progress: COPY ABORTED with its number
 * and, when part of it was written, the residual in destination blocks in
 * the INFORMATION field (SPC-4 5.17.7.3).
 */
static struct scsi_outcome stopped_in_segment(const struct copy_job *job,
					      struct scsi_outcome outcome)
{
	const struct copy_segment *segment = &job->segments[job->segment];

	if (outcome.status != SCSI_STATUS_CHECK_CONDITION)
		return outcome;
	outcome.sense_key = SCSI_SENSE_COPY_ABORTED;
	outcome.command_specific_valid = true;
	outcome.command_specific = (uint16_t)job->segment;
	if (job->bytes_done) {
		outcome.information_valid = true;
		outcome.information = (segment->length - job->bytes_done) /
				      segment->destination->block_size;
	}
	return outcome;
}

/* Ends the copy with outcome; returns 1 as issue does when all is done. */
static int copy_stop(struct copy_job *job, struct scsi_outcome outcome)
{
	job->steps.outcome = stopped_in_segment(job, outcome);
	return 1;
}

/* The first byte of the chunk in flight, relative to the segment start. */
static uint64_t chunk_start(const struct copy_job *job, const struct copy_segment *segment)
{
	if (segment->backwards)
		return segment->length - job->bytes_done - job->moving;
	return job->bytes_done;
}

/* The byte offsets of a segment that segment_ready() found inside its devices. */
static uint64_t source_offset(const struct copy_segment *segment)
{
	return segment->source_lba * segment->source->block_size;
}

static uint64_t destination_offset(const struct copy_segment *segment)
{
	return segment->destination_lba * segment->destination->block_size;
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

static int copy_issue(struct scsi_steps *steps)
{
	struct copy_job *job = (struct copy_job *)steps;
	const struct copy_segment *segment;
	struct scsi_outcome outcome;
	uint64_t start;

	if (job->phase == COPY_WRITING) {
		segment = &job->segments[job->segment];
		if (copy_lost_device(job, segment))
			return copy_stop(job, scsi_copy_aborted(SCSI_ASC_UNREACHABLE_COPY_TARGET,
							    job->segment, false, -1, -1));
		start = chunk_start(job, segment);
		return device_io_issue(&job->op, segment->destination, steps->req, true, &job->iov,
				       destination_offset(segment) + start, job->moving,
				       scsi_write_flags(segment->destination, false));
	}
	while (job->segment < job->count && job->bytes_done == job->segments[job->segment].length) {
		job->segment++;
		job->bytes_done = 0;
	}
	if (job->segment == job->count) {
		if (job->refused)
			steps->outcome = job->refusal;
		return 1;
	}
	segment = &job->segments[job->segment];
	if (copy_lost_device(job, segment))
		return copy_stop(job, scsi_copy_aborted(SCSI_ASC_UNREACHABLE_COPY_TARGET, job->segment,
						    false, -1, -1));
	if (!segment_ready(segment, job->segment, &outcome))
		return copy_stop(job, outcome);
	if (segment->destination != job->gate_device)
		return enter_destination_gate(job, segment->destination);
	job->moving = segment->length - job->bytes_done;
	if (job->moving > job->buffer_size)
		job->moving = job->buffer_size;
	start = chunk_start(job, segment);
	job->iov.iov_base = job->buffer;
	job->iov.iov_len = job->moving;
	return device_io_issue(&job->op, segment->source, steps->req, false, &job->iov,
			       source_offset(segment) + start, job->moving, 0);
}

/* A failing read or write aborts the copy with the additional sense of the cause. */
static bool copy_completed(struct scsi_steps *steps, int result)
{
	struct copy_job *job = (struct copy_job *)steps;

	if (result) {
		steps->outcome = stopped_in_segment(job, scsi_outcome_from_errno(
			result, job->phase == COPY_WRITING));
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
 * The device a CSCD's designator names: this logical unit, or another
 * device that may take part, which is then referenced and added to
 * borrowed. NULL for a designator other than a logical unit's binary NAA.
 */
static struct tcmu_device *resolve_cscd(struct tcmu_device *dev, const uint8_t *cscd,
					struct tcmu_device **borrowed, size_t *borrowed_count)
{
	uint8_t ours[16];
	struct tcmu_device *other;

	if ((cscd[4] & 0x0f) != 0x01 || (cscd[5] & 0x3f) != 0x03 || cscd[7] != 16)
		return NULL;
	scsi_naa_designator(dev, ours);
	if (memcmp(cscd + 8, ours, 16) == 0)
		return dev;
	other = device_get_by_designator(cscd + 8);
	if (!other)
		return NULL;
	if (other != dev && !copy_groups_allow(dev, other)) {
		tcmu_dev_dbg(dev, "EXTENDED COPY names %s, which no xcopy_group puts with this "
			     "device", other->backstore);
		device_put(other);
		return NULL;
	}
	borrowed[(*borrowed_count)++] = other;
	return other;
}

static void target_unusable(struct copy_target *target, uint16_t asc_ascq, size_t field, int bit)
{
	*target = (struct copy_target){
		.asc_ascq = asc_ascq, .field = (uint16_t)field, .bit = bit,
	};
}

/*
 * Reads the CSCD descriptor at offset in the list: what the list may not
 * say is ILLEGAL REQUEST (SPC-4 6.4.5); a copy target that cannot be
 * used is an error of the segments that use it, if any does.
 */
static bool parse_cscd(struct tcmu_device *dev, const uint8_t *list, size_t offset,
		       struct copy_target *target, struct tcmu_device **borrowed,
		       size_t *borrowed_count, struct scsi_outcome *ret_outcome)
{
	const uint8_t *cscd = list + offset;
	uint32_t block_length;

	if (cscd[0] != CSCD_IDENTIFICATION) {
		*ret_outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST,
					  SCSI_ASC_UNSUPPORTED_TARGET_DESCRIPTOR_TYPE);
		return false;
	}
	/* NUL: a place holder, which names no copy target. */
	if (cscd[1] & 0x20) {
		target_unusable(target, SCSI_ASC_COPY_TARGET_DEVICE_NOT_REACHABLE, offset + 1, 5);
		return true;
	}
	/* LU ID TYPE 00b: the designator says which logical unit. */
	if (cscd[1] & 0xc0) {
		*ret_outcome = scsi_invalid_parameter_field((uint16_t)(offset + 1), 7);
		return false;
	}
	if ((cscd[1] & 0x1f) != 0) {		/* not a direct-access block device */
		target_unusable(target, SCSI_ASC_INCORRECT_COPY_TARGET_DEVICE_TYPE, offset + 1, 4);
		return true;
	}
	target->device = resolve_cscd(dev, cscd, borrowed, borrowed_count);
	if (!target->device) {
		target_unusable(target, SCSI_ASC_UNREACHABLE_COPY_TARGET, offset + 4, -1);
		return true;
	}
	block_length = scsi_get_be24(cscd + 29);
	if (block_length != 0 && block_length != target->device->block_size)
		target_unusable(target, SCSI_ASC_NONE, offset + 29, 7);
	return true;
}

/*
 * The form of the block-to-block segment descriptor at offset, which
 * ends before end: what no copy manager could process is ILLEGAL REQUEST
 * before any segment is (SPC-4 5.17.7.2, 6.4.6).
 */
static bool parse_segment(const uint8_t *list, size_t offset, size_t end, size_t cscd_count,
			  struct scsi_outcome *ret_outcome)
{
	const uint8_t *descriptor = list + offset;

	if (end - offset < 4 || end - offset < 4u + scsi_get_be16(descriptor + 2)) {
		*ret_outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST,
					  SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
		return false;
	}
	if (descriptor[0] != SEGMENT_BLOCK_TO_BLOCK) {
		*ret_outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST,
					  SCSI_ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE);
		return false;
	}
	if (scsi_get_be16(descriptor + 2) != SEGMENT_LENGTH - 4) {
		*ret_outcome = scsi_invalid_parameter_field((uint16_t)(offset + 2), 7);
		return false;
	}
	/* A CSCD descriptor the list does not have. */
	if (scsi_get_be16(descriptor + 4) >= cscd_count) {
		*ret_outcome = scsi_invalid_parameter_field((uint16_t)(offset + 4), 7);
		return false;
	}
	if (scsi_get_be16(descriptor + 6) >= cscd_count) {
		*ret_outcome = scsi_invalid_parameter_field((uint16_t)(offset + 6), 7);
		return false;
	}
	return true;
}

/*
 * Processes segment descriptor number against its copy targets and fills
 * segment; what fails is COPY ABORTED (SPC-4 5.17.7.3). SPC-4 6.4.6.5:
 * the block count is in source blocks, or with DC in destination blocks;
 * bytes that would not fill whole blocks at the other end are an inexact
 * segment, which needs residue handling that this copy manager (which
 * holds no data) does not offer.
 */
static bool check_segment(const struct tcmu_device *dev, const uint8_t *descriptor,
			  uint16_t number, const struct copy_target *targets,
			  struct copy_segment *segment, struct scsi_outcome *ret_outcome)
{
	const struct copy_target *ends[2] = {
		&targets[scsi_get_be16(descriptor + 4)], &targets[scsi_get_be16(descriptor + 6)],
	};
	struct tcmu_device *source, *destination;
	uint64_t blocks = scsi_get_be16(descriptor + 10);

	for (size_t i = 0; i < 2; i++) {
		if (!ends[i]->device) {
			*ret_outcome = scsi_copy_aborted(ends[i]->asc_ascq, number, false, ends[i]->field,
						     ends[i]->bit);
			return false;
		}
	}
	source = ends[0]->device;
	destination = ends[1]->device;
	/* Each CSCD may be reachable from here, and yet not from the other. */
	if (!copy_groups_allow(source, destination)) {
		*ret_outcome = scsi_copy_aborted(SCSI_ASC_UNREACHABLE_COPY_TARGET, number, true, 6, 7);
		return false;
	}
	segment->length = blocks * ((descriptor[1] & SEGMENT_DESTINATION_COUNT)
					    ? destination->block_size : source->block_size);
	if (segment->length % source->block_size || segment->length % destination->block_size) {
		*ret_outcome = scsi_copy_aborted(SCSI_ASC_UNEXPECTED_INEXACT_SEGMENT, number, true, 10, 7);
		return false;
	}
	/* The length VPD page 8Fh and OPERATING PARAMETERS report. */
	if (segment->length > SCSI_COPY_MAX_SEGMENT_BYTES(dev->block_size)) {
		*ret_outcome = scsi_copy_aborted(SCSI_ASC_NONE, number, true, 10, 7);
		return false;
	}
	segment->source = source;
	segment->destination = destination;
	segment->source_lba = scsi_get_be64(descriptor + 12);
	segment->destination_lba = scsi_get_be64(descriptor + 20);
	if (!segment_ready(segment, number, ret_outcome))
		return false;
	segment->backwards = source == destination &&
			     destination_offset(segment) > source_offset(segment) &&
			     destination_offset(segment) < source_offset(segment) + segment->length;
	return true;
}

/*
 * SPC-4 6.4: the form of the whole list is checked before a block moves
 * (ILLEGAL REQUEST); then the segments are processed in order, and one
 * that cannot be ends the copy with COPY ABORTED once the ones before it
 * are copied, as its segment number tells the initiator.
 */
void scsi_extended_copy(struct tcmu_request *req)
{
	struct tcmu_device *dev = req->dev;
	const uint32_t list_length = scsi_get_be32(req->cdb + 10);
	uint8_t list[MAX_LIST_LENGTH];
	struct copy_target targets[MAX_CSCD_DESCRIPTORS];
	struct tcmu_device *borrowed[MAX_CSCD_DESCRIPTORS];
	struct copy_segment segments[MAX_SEGMENT_DESCRIPTORS];
	size_t cscd_length, segments_length, inline_length, cscd_count, borrowed_count = 0;
	size_t segments_start, segments_end, count = 0;
	uint64_t largest_segment = 0;
	struct scsi_outcome outcome, refusal = scsi_good();
	bool refused = false;
	struct copy_job *job;

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
		if (!parse_cscd(dev, list, 16 + 32 * i, &targets[i], borrowed, &borrowed_count,
				&outcome))
			goto fail;

	segments_start = 16 + cscd_length;
	segments_end = segments_start + segments_length;
	for (size_t offset = segments_start; offset < segments_end; offset += SEGMENT_LENGTH) {
		if (count == MAX_SEGMENT_DESCRIPTORS) {
			outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST,
					     SCSI_ASC_TOO_MANY_SEGMENT_DESCRIPTORS);
			goto fail;
		}
		if (!parse_segment(list, offset, segments_end, cscd_count, &outcome))
			goto fail;
		count++;
	}
	for (size_t i = 0; i < count; i++) {
		if (!check_segment(dev, list + segments_start + SEGMENT_LENGTH * i, i, targets,
				   &segments[i], &refusal)) {
			refused = true;
			count = i;
			break;
		}
		if (segments[i].length > largest_segment)
			largest_segment = segments[i].length;
	}
	if (refused && count == 0) {
		outcome = refusal;
		goto fail;
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
	job->refused = refused;
	job->refusal = refusal;
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
