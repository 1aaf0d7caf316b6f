/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_provisioning.c: thin provisioning (SBC-3 4.7): WRITE SAME (10)/(16)
 * with UNMAP and NDOB, UNMAP, GET LBA STATUS. Deallocated blocks read as
 * zeros (LBPRZ), so deallocating is only a stand-in for writing zeros.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_internal.h"

/*
 * WRITE SAME writes through a buffer of at most this many bytes; with the
 * write cache off, one flush after the last chunk makes them all durable.
 */
#define WRITE_SAME_CHUNK_BYTES (1u << 20)
/* GET LBA STATUS answers with at most this many descriptors. */
#define LBA_STATUS_MAX_DESCRIPTORS 64
/* ...and asks the handler at most this often: a short answer is allowed. */
#define LBA_STATUS_MAX_QUERIES 4096

struct write_same_job {
	struct scsi_steps steps;
	uint64_t lba;
	uint64_t blocks;
	uint64_t blocks_done;
	uint64_t chunk_blocks;
	uint64_t writing_blocks;
	bool deallocate;
	bool flush;		/* write-through: one flush at the end, not per chunk */
	bool flushed;
	struct iovec iov;
	uint8_t buffer[];
};

static int write_same_issue(struct scsi_steps *steps)
{
	struct write_same_job *job = (struct write_same_job *)steps;
	struct tcmu_request *req = steps->req;
	struct tcmu_device *dev = req->dev;
	uint64_t blocks;

	if (job->blocks_done == job->blocks) {
		if (!job->flush || job->flushed)
			return 1;
		job->flushed = true;
		job->writing_blocks = 0;
		return dev->handler->flush(dev, req);
	}
	if (job->deallocate) {
		job->writing_blocks = job->blocks;
		return dev->handler->unmap(dev, req, job->lba * dev->block_size,
					   job->blocks * dev->block_size);
	}
	blocks = job->blocks - job->blocks_done;
	if (blocks > job->chunk_blocks)
		blocks = job->chunk_blocks;
	job->writing_blocks = blocks;
	job->iov.iov_base = job->buffer;
	job->iov.iov_len = blocks * dev->block_size;
	return dev->handler->write(dev, req, &job->iov, 1,
				   (job->lba + job->blocks_done) * dev->block_size,
				   blocks * dev->block_size, 0);
}

static bool write_same_completed(struct scsi_steps *steps, int result)
{
	struct write_same_job *job = (struct write_same_job *)steps;

	if (result) {
		steps->outcome = scsi_outcome_from_errno(result, true);
		return false;
	}
	job->blocks_done += job->writing_blocks;
	return true;
}

static void free_steps(struct scsi_steps *steps)
{
	free(steps);
}

static bool all_zero(const uint8_t *data, size_t length)
{
	return length == 0 || (data[0] == 0 && memcmp(data, data + 1, length - 1) == 0);
}

/*
 * SBC-3 5.45-5.46. UNMAP asks to deallocate; that is done only when the
 * blocks would then read back as what was asked for (zeros: NDOB, or a
 * zero data block), and otherwise the data is written. ANCHOR is refused
 * by the usage map (ANC_SUP is 0); WSNZ forbids a zero block count.
 */
void scsi_write_same(struct tcmu_request *req)
{
	const uint8_t *cdb = req->cdb;
	struct tcmu_device *dev = req->dev;
	const struct scsi_block_range range = scsi_decode_range(cdb);
	const bool unmap = cdb[1] & 0x08;
	const bool no_data = cdb[0] == SCSI_OP_WRITE_SAME_16 && (cdb[1] & 0x01);
	const uint32_t block_size = dev->block_size;
	uint64_t chunk_blocks = WRITE_SAME_CHUNK_BYTES / block_size;
	struct write_same_job *job;
	struct scsi_outcome outcome;
	bool deallocate;

	if (!scsi_range_inside(dev, range.lba, range.blocks)) {
		outcome = scsi_lba_out_of_range(range.lba);
		goto fail;
	}
	if (range.blocks == 0 || range.blocks > scsi_max_write_same_blocks(dev)) {
		outcome = scsi_invalid_cdb_field(range.length_byte, 7);
		goto fail;
	}
	if (!no_data && req->data_length < block_size) {
		outcome = scsi_data_length_mismatch();
		goto fail;
	}
	if (chunk_blocks == 0)
		chunk_blocks = 1;
	if (chunk_blocks > range.blocks)
		chunk_blocks = range.blocks;
	job = calloc(1, sizeof(*job) + chunk_blocks * block_size);
	if (!job) {
		outcome = scsi_outcome_from_errno(-ENOMEM, true);
		goto fail;
	}
	if (!no_data)
		scsi_data_copy_out(req, 0, job->buffer, block_size);
	deallocate = unmap && scsi_has_unmap(dev) && all_zero(job->buffer, block_size);
	for (uint64_t block = 1; !deallocate && block < chunk_blocks; block++)
		memcpy(job->buffer + block * block_size, job->buffer, block_size);

	job->steps.req = req;
	job->steps.issue = write_same_issue;
	job->steps.completed = write_same_completed;
	job->steps.done = free_steps;
	job->steps.gated = true;
	job->lba = range.lba;
	job->blocks = range.blocks;
	job->chunk_blocks = chunk_blocks;
	job->deallocate = deallocate;
	job->flush = scsi_write_flags(req->dev, false) & TCMU_WRITE_FUA;
	scsi_steps_run(&job->steps);
	return;

fail:
	scsi_finish_writer(req, &outcome);
}

struct unmap_extent {
	uint64_t offset;
	uint64_t length;
};

struct unmap_job {
	struct scsi_steps steps;
	size_t count;
	size_t next;
	struct unmap_extent extents[];
};

static int unmap_issue(struct scsi_steps *steps)
{
	struct unmap_job *job = (struct unmap_job *)steps;
	struct tcmu_request *req = steps->req;
	const struct unmap_extent *extent;

	if (job->next == job->count)
		return 1;
	extent = &job->extents[job->next];
	return req->dev->handler->unmap(req->dev, req, extent->offset, extent->length);
}

static bool unmap_completed(struct scsi_steps *steps, int result)
{
	struct unmap_job *job = (struct unmap_job *)steps;

	if (result) {
		steps->outcome = scsi_outcome_from_errno(result, true);
		return false;
	}
	job->next++;
	return true;
}

static struct scsi_outcome parameter_list_length_error(void)
{
	return scsi_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
}

/*
 * SBC-3 5.28. Every descriptor is checked before anything is deallocated,
 * so a bad list changes nothing. A descriptor data length that is not a
 * multiple of 16 leaves a partial descriptor, which is ignored.
 */
void scsi_unmap(struct tcmu_request *req)
{
	struct tcmu_device *dev = req->dev;
	const size_t list_length = scsi_get_be16(req->cdb + 7);
	uint8_t list[8 + 16 * SCSI_MAX_UNMAP_DESCRIPTORS];
	uint64_t total_blocks = 0;
	struct scsi_outcome outcome;
	struct unmap_job *job;
	size_t descriptors;

	if (list_length == 0) {
		outcome = scsi_good();
		goto fail;
	}
	if (list_length < 8 || req->data_length < list_length) {
		outcome = parameter_list_length_error();
		goto fail;
	}
	scsi_data_copy_out(req, 0, list, 8);
	descriptors = scsi_get_be16(list + 2);
	if (descriptors > list_length - 8)
		descriptors = list_length - 8;
	descriptors /= 16;
	if (descriptors > SCSI_MAX_UNMAP_DESCRIPTORS) {
		outcome = scsi_invalid_parameter_field(2, 7);
		goto fail;
	}
	scsi_data_copy_out(req, 8, list + 8, descriptors * 16);

	job = calloc(1, sizeof(*job) + descriptors * sizeof(job->extents[0]));
	if (!job) {
		outcome = scsi_outcome_from_errno(-ENOMEM, true);
		goto fail;
	}
	for (size_t i = 0; i < descriptors; i++) {
		const uint8_t *descriptor = list + 8 + 16 * i;
		uint64_t lba = scsi_get_be64(descriptor);
		uint32_t blocks = scsi_get_be32(descriptor + 8);

		if (!scsi_range_inside(dev, lba, blocks)) {
			free(job);
			outcome = scsi_lba_out_of_range(lba);
			goto fail;
		}
		total_blocks += blocks;
		if (total_blocks > scsi_max_unmap_blocks(dev)) {
			free(job);
			outcome = scsi_invalid_parameter_field((uint16_t)(8 + 16 * i + 8), 7);
			goto fail;
		}
		if (blocks == 0)
			continue;
		job->extents[job->count].offset = lba * dev->block_size;
		job->extents[job->count].length = (uint64_t)blocks * dev->block_size;
		job->count++;
	}
	job->steps.req = req;
	job->steps.issue = unmap_issue;
	job->steps.completed = unmap_completed;
	job->steps.done = free_steps;
	job->steps.gated = true;
	scsi_steps_run(&job->steps);
	return;

fail:
	scsi_finish_writer(req, &outcome);
}

struct lba_status_job {
	struct scsi_steps steps;
	uint64_t block_count;
	uint64_t next;		/* the first block not reported yet */
	uint64_t asking;	/* blocks the query in flight asks about */
	unsigned int queries;
	size_t count;
	size_t max_descriptors;
	uint32_t allocation_length;
	uint8_t data[8 + 16 * LBA_STATUS_MAX_DESCRIPTORS];
};

/* Adds blocks from job->next on, merged with the last descriptor when it agrees. */
static bool lba_status_add(struct lba_status_job *job, uint64_t blocks, bool mapped)
{
	uint8_t *descriptor = job->count ? job->data + 8 + 16 * (job->count - 1) : NULL;

	if (descriptor && (descriptor[12] == 0) == mapped &&
	    scsi_get_be32(descriptor + 8) + blocks <= UINT32_MAX) {
		scsi_put_be32(descriptor + 8, (uint32_t)(scsi_get_be32(descriptor + 8) + blocks));
	} else {
		if (job->count == job->max_descriptors)
			return false;
		descriptor = job->data + 8 + 16 * job->count++;
		scsi_put_be64(descriptor, job->next);
		scsi_put_be32(descriptor + 8, (uint32_t)blocks);
		descriptor[12] = mapped ? 0x00 : 0x01;	/* mapped, deallocated */
	}
	job->next += blocks;
	return job->next < job->block_count && ++job->queries < LBA_STATUS_MAX_QUERIES;
}

/*
 * One query from job->next on: the handler's query_lba_status, or its
 * synchronous get_lba_status answered in place.
 */
static int lba_status_issue(struct scsi_steps *steps)
{
	struct lba_status_job *job = (struct lba_status_job *)steps;
	struct tcmu_request *req = steps->req;
	struct tcmu_device *dev = req->dev;
	const uint32_t block_size = dev->block_size;
	bool mapped = true;
	uint64_t length;
	int result;

	job->asking = job->block_count - job->next;
	if (job->asking > UINT32_MAX)
		job->asking = UINT32_MAX;
	if (dev->handler->query_lba_status)
		return dev->handler->query_lba_status(dev, req, job->next * block_size,
						      job->asking * block_size);
	/* Without either op every block is mapped. */
	length = job->asking * block_size;
	if (dev->handler->get_lba_status) {
		result = dev->handler->get_lba_status(dev, job->next * block_size, length,
						      &mapped, &length);
		if (result < 0)
			return result;
	}
	tcmu_request_complete_lba_status(req, mapped, length);
	return 0;
}

static bool lba_status_completed(struct scsi_steps *steps, int result)
{
	struct lba_status_job *job = (struct lba_status_job *)steps;
	const uint32_t block_size = steps->req->dev->block_size;
	uint64_t length = steps->req->lba_status_length;
	bool mapped = steps->req->lba_status_mapped;
	uint64_t blocks = job->asking;

	if (result) {
		steps->outcome = scsi_outcome_from_errno(result, false);
		return false;
	}
	/* A block the handler reports as partly mapped is mapped. */
	if (length < block_size) {
		mapped = true;
		blocks = 1;
	} else if (length / block_size < blocks) {
		blocks = length / block_size;
	}
	if (lba_status_add(job, blocks, mapped))
		return true;
	/* The answer, as scsi_finish_data_in gives it: the rest of the buffer zeroed. */
	scsi_put_be32(job->data, (uint32_t)(4 + 16 * job->count));
	length = 8 + 16 * job->count;
	if (length > job->allocation_length)
		length = job->allocation_length;
	steps->read_length = (uint32_t)scsi_data_copy_in(steps->req, 0, job->data, length);
	scsi_data_zero(steps->req, steps->read_length);
	return false;
}

static void lba_status_done(struct scsi_steps *steps)
{
	free(steps);
}

/*
 * SBC-3 5.16. Extents of one provisioning status from the starting LBA
 * on, as many as the allocation length holds (at most 64), merged when
 * neighbours agree. A block the handler reports as partly mapped is
 * mapped. The handler is asked one extent at a time (scsi_steps.c), so
 * a query_lba_status that answers later holds no thread meanwhile.
 */
void scsi_get_lba_status(struct tcmu_request *req)
{
	const uint8_t *cdb = req->cdb;
	struct tcmu_device *dev = req->dev;
	const uint64_t lba = scsi_get_be64(cdb + 2);
	const uint32_t allocation_length = scsi_get_be32(cdb + 10);
	struct lba_status_job *job;
	struct scsi_outcome outcome;

	if (lba >= scsi_block_count(dev)) {
		outcome = scsi_lba_out_of_range(lba);
		scsi_finish(req, &outcome, 0);
		return;
	}
	job = calloc(1, sizeof(*job));
	if (!job) {
		outcome = scsi_outcome_from_errno(-ENOMEM, false);
		scsi_finish(req, &outcome, 0);
		return;
	}
	job->block_count = scsi_block_count(dev);
	job->next = lba;
	job->allocation_length = allocation_length;
	job->max_descriptors = LBA_STATUS_MAX_DESCRIPTORS;
	if (allocation_length < 8 + 16 * job->max_descriptors)
		job->max_descriptors = allocation_length > 24 ? (allocation_length - 8) / 16 : 1;
	job->steps.req = req;
	job->steps.issue = lba_status_issue;
	job->steps.completed = lba_status_completed;
	job->steps.done = lba_status_done;
	scsi_steps_run(&job->steps);
}
