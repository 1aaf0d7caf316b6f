/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_verify.c: commands that read the medium back and compare: VERIFY
 * (10/12/16), WRITE AND VERIFY (10/12/16) and COMPARE AND WRITE (SBC-3
 * 5.2, 5.33-5.35, 5.41-5.43). A miscompare is MISCOMPARE, MISCOMPARE
 * DURING VERIFY OPERATION with the offset of the first differing byte in
 * the data-out buffer in INFORMATION. COMPARE AND WRITE is the handler's
 * own when it has one (atomic for every writer of the storage), else a
 * read, compare and write here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_internal.h"

/* Reads go through a bounce buffer of at most this many bytes at a time. */
#define VERIFY_CHUNK_BYTES (1u << 20)

enum byte_check {
	CHECK_MEDIUM = 0,	/* read only: the medium is readable */
	CHECK_ALL = 1,		/* compare every block with the data-out */
	CHECK_ONE_BLOCK = 3,	/* compare every block with the one data-out block */
};

struct verify_job {
	struct scsi_steps steps;
	uint64_t lba;
	uint64_t blocks;
	uint64_t blocks_done;
	uint64_t chunk_blocks;
	uint64_t reading_blocks;	/* of the op in flight */
	enum byte_check check;
	/* WRITE AND VERIFY: the data-out is written before it is read back. */
	struct iovec *write_iov;
	size_t write_iov_count;
	uint32_t write_flags;
	bool written;
	uint8_t *compare_block;		/* CHECK_ONE_BLOCK's data-out */
	struct iovec read_iov;
	uint8_t buffer[];
};

static struct scsi_outcome miscompare(uint64_t offset)
{
	struct scsi_outcome outcome = scsi_check(SCSI_SENSE_MISCOMPARE,
						 SCSI_ASC_MISCOMPARE_DURING_VERIFY);

	outcome.information_valid = true;
	outcome.information = offset;
	return outcome;
}

/* The first byte where a and b differ, or length. */
static size_t first_difference(const uint8_t *a, const uint8_t *b, size_t length)
{
	size_t i = 0;

	if (memcmp(a, b, length) == 0)
		return length;
	while (a[i] == b[i])
		i++;
	return i;
}

static int verify_issue(struct scsi_steps *steps)
{
	struct verify_job *job = (struct verify_job *)steps;
	struct tcmu_request *req = steps->req;
	struct tcmu_device *dev = req->dev;
	uint64_t blocks;

	if (job->write_iov && !job->written)
		return dev->handler->write(dev, req, job->write_iov, job->write_iov_count,
					   job->lba * dev->block_size,
					   job->blocks * dev->block_size, job->write_flags);
	if (job->blocks_done == job->blocks)
		return 1;
	blocks = job->blocks - job->blocks_done;
	if (blocks > job->chunk_blocks)
		blocks = job->chunk_blocks;
	job->reading_blocks = blocks;
	job->read_iov.iov_base = job->buffer;
	job->read_iov.iov_len = blocks * dev->block_size;
	return dev->handler->read(dev, req, &job->read_iov, 1,
				  (job->lba + job->blocks_done) * dev->block_size,
				  blocks * dev->block_size);
}

static bool verify_completed(struct scsi_steps *steps, int result)
{
	struct verify_job *job = (struct verify_job *)steps;
	struct tcmu_request *req = steps->req;
	const uint32_t block_size = req->dev->block_size;
	uint64_t length = job->reading_blocks * block_size;

	if (result) {
		bool writing = job->write_iov && !job->written;

		steps->outcome = scsi_outcome_from_errno(result, writing);
		return false;
	}
	if (job->write_iov && !job->written) {
		job->written = true;
		return true;
	}
	if (job->check == CHECK_ALL) {
		uint8_t expected[4096];
		uint64_t base = job->blocks_done * block_size;

		for (uint64_t done = 0; done < length;) {
			size_t part = length - done < sizeof(expected) ? length - done
								       : sizeof(expected);
			size_t at;

			scsi_data_copy_out(req, base + done, expected, part);
			at = first_difference(job->buffer + done, expected, part);
			if (at < part) {
				steps->outcome = miscompare(base + done + at);
				return false;
			}
			done += part;
		}
	} else if (job->check == CHECK_ONE_BLOCK) {
		for (uint64_t block = 0; block < job->reading_blocks; block++) {
			size_t at = first_difference(job->buffer + block * block_size,
						     job->compare_block, block_size);

			if (at < block_size) {
				steps->outcome = miscompare(at);
				return false;
			}
		}
	}
	job->blocks_done += job->reading_blocks;
	return true;
}

static void verify_done(struct scsi_steps *steps)
{
	struct verify_job *job = (struct verify_job *)steps;

	free(job->write_iov);
	free(job->compare_block);
	free(job);
}

static void finish_early(struct tcmu_request *req, bool writes,
			 const struct scsi_outcome *outcome)
{
	if (writes)
		scsi_finish_writer(req, outcome);
	else
		scsi_finish(req, outcome, 0);
}

/* VERIFY and WRITE AND VERIFY: the same checks, then write (or not) and read back. */
static void verify_command(struct tcmu_request *req, bool writes)
{
	struct tcmu_device *dev = req->dev;
	const struct scsi_block_range range = scsi_decode_range(req->cdb);
	const enum byte_check check = (req->cdb[1] >> 1) & 0x03;
	const uint32_t max_blocks = scsi_max_transfer_blocks(dev);
	const uint64_t bytes = (uint64_t)range.blocks * dev->block_size;
	uint64_t chunk_blocks = VERIFY_CHUNK_BYTES / dev->block_size;
	struct scsi_outcome outcome;
	struct verify_job *job;

	/* 10b is reserved; WRITE AND VERIFY defines only 00b and 01b. */
	if (check == 2 || (writes && check == CHECK_ONE_BLOCK)) {
		outcome = scsi_invalid_cdb_field(1, 2);
		goto fail;
	}
	if (!scsi_range_inside(dev, range.lba, range.blocks)) {
		outcome = scsi_lba_out_of_range(range.lba);
		goto fail;
	}
	/*
	 * SBC-4 puts VERIFY under MAXIMUM TRANSFER LENGTH whatever BYTCHK
	 * says: a check of the medium alone moves no data over the ring, but
	 * reads as much, and the command must end within the initiator's
	 * timeout.
	 */
	if (max_blocks && range.blocks > max_blocks) {
		outcome = scsi_invalid_cdb_field(range.length_byte, 7);
		goto fail;
	}
	if (range.blocks == 0) {
		outcome = scsi_good();
		goto fail;
	}
	if (((writes || check == CHECK_ALL) && req->data_length < bytes) ||
	    (check == CHECK_ONE_BLOCK && req->data_length < dev->block_size)) {
		outcome = scsi_data_length_mismatch();
		goto fail;
	}

	if (chunk_blocks == 0)
		chunk_blocks = 1;
	if (chunk_blocks > range.blocks)
		chunk_blocks = range.blocks;
	job = calloc(1, sizeof(*job) + chunk_blocks * dev->block_size);
	if (!job)
		goto out_of_memory;
	job->steps.req = req;
	job->steps.issue = verify_issue;
	job->steps.completed = verify_completed;
	job->steps.done = verify_done;
	job->steps.gated = writes;
	job->lba = range.lba;
	job->blocks = range.blocks;
	job->chunk_blocks = chunk_blocks;
	job->check = check;
	if (writes) {
		/* The medium is what gets verified: the write must reach it. */
		job->write_flags = TCMU_WRITE_FUA;
		job->write_iov = scsi_data_slice(req, 0, bytes, &job->write_iov_count);
		if (!job->write_iov) {
			free(job);
			goto out_of_memory;
		}
	}
	if (check == CHECK_ONE_BLOCK) {
		job->compare_block = malloc(dev->block_size);
		if (!job->compare_block) {
			free(job);
			goto out_of_memory;
		}
		scsi_data_copy_out(req, 0, job->compare_block, dev->block_size);
	}
	scsi_steps_run(&job->steps);
	return;

out_of_memory:
	outcome = scsi_outcome_from_errno(-ENOMEM, writes);
fail:
	finish_early(req, writes, &outcome);
}

void scsi_verify(struct tcmu_request *req)
{
	verify_command(req, false);
}

void scsi_write_and_verify(struct tcmu_request *req)
{
	verify_command(req, true);
}

struct compare_and_write_job {
	struct scsi_steps steps;
	uint64_t offset;
	uint64_t length;	/* of the compare, and of the write */
	bool compared;
	bool written;
	uint32_t write_flags;
	struct iovec *write_iov;
	size_t write_iov_count;
	/* The handler's compare_and_write: the verify data, in place. */
	struct iovec *compare_iov;
	size_t compare_iov_count;
	struct iovec read_iov;
	uint8_t buffer[];
};

static int compare_and_write_issue(struct scsi_steps *steps)
{
	struct compare_and_write_job *job = (struct compare_and_write_job *)steps;
	struct tcmu_request *req = steps->req;
	struct tcmu_device *dev = req->dev;

	if (!job->compared) {
		job->read_iov.iov_base = job->buffer;
		job->read_iov.iov_len = job->length;
		return dev->handler->read(dev, req, &job->read_iov, 1, job->offset, job->length);
	}
	if (job->written)
		return 1;
	return dev->handler->write(dev, req, job->write_iov, job->write_iov_count, job->offset,
				   job->length, job->write_flags);
}

static bool compare_and_write_completed(struct scsi_steps *steps, int result)
{
	struct compare_and_write_job *job = (struct compare_and_write_job *)steps;
	uint8_t expected[4096];

	if (result) {
		steps->outcome = scsi_outcome_from_errno(result, job->compared);
		return false;
	}
	if (job->compared) {
		job->written = true;
		return true;
	}
	for (uint64_t done = 0; done < job->length;) {
		size_t part = job->length - done < sizeof(expected) ? job->length - done
								    : sizeof(expected);
		size_t at;

		scsi_data_copy_out(steps->req, done, expected, part);
		at = first_difference(job->buffer + done, expected, part);
		if (at < part) {
			steps->outcome = miscompare(done + at);
			return false;
		}
		done += part;
	}
	job->compared = true;
	return true;
}

static void compare_and_write_done(struct scsi_steps *steps)
{
	struct compare_and_write_job *job = (struct compare_and_write_job *)steps;

	free(job->compare_iov);
	free(job->write_iov);
	free(job);
}

/* The read, compare and write of the core, for a handler without its own. */
static void compare_and_write_steps(struct compare_and_write_job *job)
{
	job->steps.issue = compare_and_write_issue;
	job->steps.completed = compare_and_write_completed;
	job->steps.done = compare_and_write_done;
	job->steps.gated = true;
	job->steps.exclusive = true;
	scsi_steps_run(&job->steps);
}

static void handler_compare_and_write_done(struct tcmu_request *req, int result)
{
	struct compare_and_write_job *job = req->scsi_private;
	struct scsi_outcome outcome;

	if (result == REQUEST_MISCOMPARE)
		outcome = miscompare(req->miscompare_offset);
	else
		outcome = scsi_outcome_from_errno(result, true);
	compare_and_write_done(&job->steps);
	scsi_finish_writer(req, &outcome);
}

/*
 * The handler's compare_and_write, atomic against every writer of the
 * storage. -EOPNOTSUPP, the request not taken, leaves it to the core.
 */
static void handler_compare_and_write(struct compare_and_write_job *job)
{
	struct tcmu_request *req = job->steps.req;
	struct tcmu_device *dev = req->dev;
	int result;

	req->scsi_private = job;
	req->io_done = handler_compare_and_write_done;
	job->compare_iov = scsi_data_slice(req, 0, job->length, &job->compare_iov_count);
	if (!job->compare_iov) {
		handler_compare_and_write_done(req, -ENOMEM);
		return;
	}
	result = dev->handler->compare_and_write(dev, req, job->compare_iov, job->compare_iov_count,
						 job->write_iov, job->write_iov_count, job->offset,
						 job->length, job->write_flags);
	if (result == -EOPNOTSUPP) {
		free(job->compare_iov);
		job->compare_iov = NULL;
		compare_and_write_steps(job);
	} else if (result < 0) {
		handler_compare_and_write_done(req, result);
	}
}

/*
 * SBC-3 5.2. The data-out holds the verify data, then the write data,
 * NUMBER OF LOGICAL BLOCKS each. The dispatcher holds the write gate
 * alone for it, so nothing of this daemon writes these blocks between
 * read and write, nor while the handler's own compare_and_write runs.
 */
void scsi_compare_and_write(struct tcmu_request *req)
{
	const uint8_t *cdb = req->cdb;
	struct tcmu_device *dev = req->dev;
	const uint64_t lba = scsi_get_be64(cdb + 2);
	const uint32_t blocks = cdb[13];
	const uint64_t length = (uint64_t)blocks * dev->block_size;
	struct compare_and_write_job *job;
	struct scsi_outcome outcome;

	if (!scsi_range_inside(dev, lba, blocks)) {
		outcome = scsi_lba_out_of_range(lba);
		goto fail;
	}
	if (blocks > scsi_max_compare_and_write_blocks(dev)) {
		outcome = scsi_invalid_cdb_field(13, 7);
		goto fail;
	}
	if (blocks == 0) {
		outcome = scsi_good();
		goto fail;
	}
	if (req->data_length < 2 * length) {
		outcome = scsi_data_length_mismatch();
		goto fail;
	}
	job = calloc(1, sizeof(*job) + length);
	if (!job)
		goto out_of_memory;
	job->steps.req = req;
	job->offset = lba * dev->block_size;
	job->length = length;
	job->write_flags = scsi_write_flags(req->dev, cdb[1] & 0x08);
	job->write_iov = scsi_data_slice(req, length, length, &job->write_iov_count);
	if (!job->write_iov) {
		free(job);
		goto out_of_memory;
	}
	if (dev->handler->compare_and_write)
		handler_compare_and_write(job);
	else
		compare_and_write_steps(job);
	return;

out_of_memory:
	outcome = scsi_outcome_from_errno(-ENOMEM, true);
fail:
	scsi_finish_writer(req, &outcome);
}
