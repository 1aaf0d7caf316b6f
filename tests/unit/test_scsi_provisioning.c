/* SPDX-License-Identifier: Apache-2.0 */
/* WRITE SAME, UNMAP and GET LBA STATUS. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_fixture.h"

#define BLOCK 512
#define BLOCKS 2048

static void write_same16(uint8_t flags, uint64_t lba, uint32_t blocks, void *data, size_t length)
{
	uint8_t cdb[16] = { 0x93, flags };

	scsi_put_be64(cdb + 2, lba);
	scsi_put_be32(cdb + 10, blocks);
	EXECUTE(cdb, data, length);
}

static void test_write_same_pattern(void **state)
{
	uint8_t block[BLOCK];
	uint8_t write_same10[10] = { 0x41, 0x00, 0, 0, 0, 10, 0, 0, 5, 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(block); i++)
		block[i] = (uint8_t)i;
	EXECUTE(write_same10, block, sizeof(block));
	assert_good();
	assert_int_equal(fake.call_count, 1);
	assert_int_equal(fake.calls[0].op, 'w');
	assert_int_equal(fake.calls[0].offset, 10 * BLOCK);
	assert_int_equal(fake.calls[0].length, 5 * BLOCK);
	for (int i = 0; i < 5; i++)
		assert_memory_equal(fake.medium + (10 + i) * BLOCK, block, BLOCK);
	assert_int_equal(fake.medium[15 * BLOCK], 0);

	/* With the write cache off, GOOD means durable: one flush after the writes. */
	fake.dev.write_cache = false;
	EXECUTE(write_same10, block, sizeof(block));
	assert_good();
	assert_int_equal(fake.call_count, 2);
	assert_int_equal(fake.calls[0].op, 'w');
	assert_int_equal(fake.calls[0].flags, 0);
	assert_int_equal(fake.calls[1].op, 'f');
}

static void test_write_same_unmap(void **state)
{
	uint8_t zero[BLOCK] = { 0 };
	uint8_t ones[BLOCK];

	(void)state;
	memset(ones, 0xff, sizeof(ones));
	memset(fake.medium, 0x5a, 64 * BLOCK);

	/* UNMAP with a zero block deallocates. */
	write_same16(0x08, 0, 16, zero, sizeof(zero));
	assert_good();
	assert_int_equal(fake.call_count, 1);
	assert_int_equal(fake.calls[0].op, 'u');
	assert_int_equal(fake.calls[0].offset, 0);
	assert_int_equal(fake.calls[0].length, 16 * BLOCK);

	/* NDOB: no data-out, zeros. */
	write_same16(0x09, 16, 16, NULL, 0);
	assert_good();
	assert_int_equal(fake.calls[0].op, 'u');
	assert_int_equal(fake.calls[0].offset, 16 * BLOCK);

	/* Deallocated blocks would read zeros, not this: it is written. */
	write_same16(0x08, 32, 4, ones, sizeof(ones));
	assert_good();
	assert_int_equal(fake.calls[0].op, 'w');
	assert_int_equal(fake.medium[35 * BLOCK + 511], 0xff);

	/* NDOB without UNMAP writes zeros. */
	write_same16(0x01, 40, 2, NULL, 0);
	assert_good();
	assert_int_equal(fake.calls[0].op, 'w');
	assert_int_equal(fake.medium[40 * BLOCK], 0);
	assert_int_equal(fake.medium[42 * BLOCK], 0x5a);
}

static void test_write_same_unmap_without_handler_unmap(void **state)
{
	uint8_t zero[BLOCK] = { 0 };

	(void)state;
	memset(fake.medium, 0x5a, 8 * BLOCK);
	write_same16(0x08, 0, 8, zero, sizeof(zero));
	assert_good();
	assert_int_equal(fake.calls[0].op, 'w');
	assert_int_equal(fake.medium[7 * BLOCK], 0);
}

static void test_write_same_invalid(void **state)
{
	uint8_t block[BLOCK] = { 0 };
	uint8_t zero_blocks[10] = { 0x41, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	uint8_t anchor[10] = { 0x41, 0x10, 0, 0, 0, 0, 0, 0, 1, 0 };
	uint8_t ndob_in_10[10] = { 0x41, 0x01, 0, 0, 0, 0, 0, 0, 1, 0 };
	uint8_t lbdata[10] = { 0x41, 0x02, 0, 0, 0, 0, 0, 0, 1, 0 };

	(void)state;
	EXECUTE(zero_blocks, block, sizeof(block));
	assert_invalid_cdb_field(7, 7);
	EXECUTE(anchor, block, sizeof(block));
	assert_invalid_cdb_field(1, 4);
	EXECUTE(ndob_in_10, block, sizeof(block));
	assert_invalid_cdb_field(1, 0);
	EXECUTE(lbdata, block, sizeof(block));
	assert_invalid_cdb_field(1, 1);
	write_same16(0, BLOCKS - 1, 2, block, sizeof(block));
	assert_lba_out_of_range(BLOCKS - 1);
	write_same16(0, 0, 4, block, 100);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_COMMAND_IU);
	/* Above the block limits page's MAXIMUM WRITE SAME LENGTH (1 GiB). */
	fake.dev.size = 1ull << 40;
	write_same16(0, 0, (1u << 21) + 1, block, sizeof(block));
	assert_invalid_cdb_field(10, 7);
	assert_no_handler_call();
	assert_int_equal(fake.dev.scsi.writes_in_flight, 0);
}

static void test_write_same_error(void **state)
{
	uint8_t block[BLOCK] = { 1 };

	(void)state;
	fake.complete_error = -EIO;
	write_same16(0, 0, 4, block, sizeof(block));
	assert_check(SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_WRITE_ERROR);
	fake.op_error = -ENOSPC;
	write_same16(0x09, 0, 4, NULL, 0);
	assert_check(SCSI_SENSE_DATA_PROTECT, SCSI_ASC_SPACE_ALLOCATION_FAILED_WRITE_PROTECT);
	assert_int_equal(fake.dev.scsi.writes_in_flight, 0);
}

/* A parameter list of UNMAP descriptors; returns its length. */
static size_t unmap_list(uint8_t *list, const uint64_t *lbas, const uint32_t *counts, size_t n)
{
	memset(list, 0, 8 + 16 * n);
	scsi_put_be16(list, (uint16_t)(6 + 16 * n));
	scsi_put_be16(list + 2, (uint16_t)(16 * n));
	for (size_t i = 0; i < n; i++) {
		scsi_put_be64(list + 8 + 16 * i, lbas[i]);
		scsi_put_be32(list + 8 + 16 * i + 8, counts[i]);
	}
	return 8 + 16 * n;
}

static void unmap(uint8_t byte1, uint8_t *list, size_t list_length, size_t data_length)
{
	uint8_t cdb[10] = { 0x42, byte1, 0, 0, 0, 0, 0, (uint8_t)(list_length >> 8),
			    (uint8_t)list_length, 0 };

	EXECUTE(cdb, list, data_length);
}

static void test_unmap(void **state)
{
	uint8_t list[8 + 16 * 3];
	const uint64_t lbas[3] = { 100, 0, 2000 };
	const uint32_t counts[3] = { 20, 0, 48 };
	size_t length = unmap_list(list, lbas, counts, 3);

	(void)state;
	memset(fake.medium, 0x77, 1024 * 1024);
	unmap(0, list, length, length);
	assert_good();
	/* The empty descriptor is skipped. */
	assert_int_equal(fake.call_count, 2);
	assert_int_equal(fake.calls[0].op, 'u');
	assert_int_equal(fake.calls[0].offset, 100 * BLOCK);
	assert_int_equal(fake.calls[0].length, 20 * BLOCK);
	assert_int_equal(fake.calls[1].offset, 2000 * BLOCK);
	assert_int_equal(fake.calls[1].length, 48 * BLOCK);
	assert_int_equal(fake.medium[100 * BLOCK], 0);
	assert_int_equal(fake.medium[120 * BLOCK], 0x77);

	/* A partial trailing descriptor is ignored. */
	scsi_put_be16(list + 2, 16 + 10);
	unmap(0, list, 8 + 16 + 10, 8 + 16 + 10);
	assert_good();
	assert_int_equal(fake.call_count, 1);

	unmap(0, list, 0, 0);
	assert_good();
	assert_no_handler_call();
}

static void test_unmap_invalid(void **state)
{
	static uint8_t list[8 + 16 * 257];
	uint64_t lbas[257] = { 0 };
	uint32_t counts[257];
	size_t length;

	(void)state;
	for (int i = 0; i < 257; i++)
		counts[i] = 1;
	length = unmap_list(list, lbas, counts, 257);
	unmap(0, list, length, length);
	assert_invalid_parameter_field(2, 7);

	/* Nothing is deallocated when a later descriptor is out of range. */
	lbas[1] = BLOCKS;
	length = unmap_list(list, lbas, counts, 2);
	unmap(0, list, length, length);
	assert_lba_out_of_range(BLOCKS);
	assert_no_handler_call();

	/* More than MAXIMUM UNMAP LBA COUNT in total. */
	fake.dev.size = 1ull << 40;
	lbas[1] = 1u << 20;
	counts[0] = 1u << 20;
	counts[1] = 1;
	length = unmap_list(list, lbas, counts, 2);
	unmap(0, list, length, length);
	assert_invalid_parameter_field(8 + 16 + 8, 7);
	assert_no_handler_call();

	unmap(0, list, 4, 4);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
	unmap(0, list, 24, 8);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
	unmap(0x01, list, 24, 24);
	assert_invalid_cdb_field(1, 0);
	assert_int_equal(fake.dev.scsi.writes_in_flight, 0);
}

static void test_unmap_not_offered_without_handler_unmap(void **state)
{
	uint8_t list[24] = { 0 };
	uint8_t get_lba_status[16] = { 0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 24, 0, 0 };
	uint8_t buffer[24];

	(void)state;
	unmap(0, list, 24, 24);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_COMMAND_OPERATION_CODE);
	EXECUTE(get_lba_status, buffer, sizeof(buffer));
	assert_invalid_cdb_field(1, 4);
}

/* Many descriptors, completed now and later: every one is done once, in order. */
static void test_unmap_many_descriptors(void **state)
{
	static uint8_t list[8 + 16 * 200];
	uint64_t lbas[200];
	uint32_t counts[200];
	size_t length;

	(void)state;
	for (int i = 0; i < 200; i++) {
		lbas[i] = (uint64_t)i * 10;
		counts[i] = 5;
	}
	length = unmap_list(list, lbas, counts, 200);
	unmap(0, list, length, length);
	assert_good();
	assert_int_equal(fake.call_count, 200);
	assert_int_equal(fake.calls[63].offset, 630 * BLOCK);

	fake.defer = true;
	length = unmap_list(list, lbas, counts, 3);
	unmap(0, list, length, length);
	assert_int_equal(fake.completion.count, 0);
	assert_int_equal(fake.call_count, 1);
	fake_release_next();
	assert_int_equal(fake.call_count, 2);
	assert_int_equal(fake.completion.count, 0);
	fake.deferred_results[0] = 0;
	fake_release_next();
	assert_int_equal(fake.call_count, 3);
	fake_release_deferred();
	assert_good();

	/* A failure in the middle stops the rest. */
	fake.defer = true;
	unmap(0, list, length, length);
	fake.deferred_results[0] = -EIO;
	fake_release_deferred();
	assert_check(SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_WRITE_ERROR);
	assert_int_equal(fake.call_count, 1);
}

static void get_lba_status(uint64_t lba, uint32_t allocation_length, uint8_t *buffer,
			   size_t length)
{
	uint8_t cdb[16] = { 0x9e, 0x12 };

	scsi_put_be64(cdb + 2, lba);
	scsi_put_be32(cdb + 10, allocation_length);
	memset(buffer, 0xaa, length);
	EXECUTE(cdb, buffer, length);
}

static void assert_descriptor(const uint8_t *descriptor, uint64_t lba, uint32_t blocks,
			      uint8_t status)
{
	assert_int_equal(scsi_get_be64(descriptor), lba);
	assert_int_equal(scsi_get_be32(descriptor + 8), blocks);
	assert_int_equal(descriptor[12], status);
	assert_int_equal(descriptor[13] | descriptor[14] | descriptor[15], 0);
}

static void test_get_lba_status(void **state)
{
	uint8_t data[10 * BLOCK];
	uint8_t write10[10] = { 0x2a, 0, 0, 0, 0, 10, 0, 0, 10, 0 };
	uint8_t buffer[128];

	(void)state;
	memset(data, 1, sizeof(data));
	EXECUTE(write10, data, sizeof(data));
	assert_good();

	get_lba_status(0, sizeof(buffer), buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 8 + 3 * 16);
	assert_int_equal(scsi_get_be32(buffer), 4 + 3 * 16);
	assert_int_equal(scsi_get_be32(buffer + 4), 0);
	assert_descriptor(buffer + 8, 0, 10, 0x01);
	assert_descriptor(buffer + 24, 10, 10, 0x00);
	assert_descriptor(buffer + 40, 20, BLOCKS - 20, 0x01);
	assert_int_equal(buffer[56], 0);

	get_lba_status(15, sizeof(buffer), buffer, sizeof(buffer));
	assert_good();
	assert_descriptor(buffer + 8, 15, 5, 0x00);

	/* Room for one descriptor: one, and the length says so. */
	get_lba_status(0, 24, buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(fake.completion.read_length, 24);
	assert_int_equal(scsi_get_be32(buffer), 4 + 16);
	assert_descriptor(buffer + 8, 0, 10, 0x01);
	assert_int_equal(buffer[24], 0);

	get_lba_status(BLOCKS, sizeof(buffer), buffer, sizeof(buffer));
	assert_lba_out_of_range(BLOCKS);

	fake.op_error = -EIO;
	get_lba_status(0, sizeof(buffer), buffer, sizeof(buffer));
	assert_check(SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_UNRECOVERED_READ_ERROR);
}

static void test_get_lba_status_without_handler_op(void **state)
{
	uint8_t buffer[64];

	(void)state;
	fake.handler.get_lba_status = NULL;
	get_lba_status(7, sizeof(buffer), buffer, sizeof(buffer));
	assert_good();
	assert_int_equal(scsi_get_be32(buffer), 4 + 16);
	assert_descriptor(buffer + 8, 7, BLOCKS - 7, 0x00);
}

/* query_lba_status's requests, parked until the test answers them. */
struct parked_query {
	struct tcmu_request *req;
	uint64_t offset;
	uint64_t length;
};

static struct parked_query parked[8];
static unsigned int parked_count;

static int park_query(struct tcmu_device *dev, struct tcmu_request *req, uint64_t offset,
		      uint64_t length)
{
	assert_ptr_equal(dev, &fake.dev);
	assert_true(length > 0 && offset + length <= dev->size);
	if (fake.op_error) {
		int result = fake.op_error;

		fake.op_error = 0;
		return result;
	}
	assert_true(parked_count < 8);
	parked[parked_count++] = (struct parked_query){ req, offset, length };
	return 0;
}

/* The handler has both ops: the asynchronous one is used, the other never. */
static void use_query_lba_status(void)
{
	fake.handler.query_lba_status = park_query;
	parked_count = 0;
	fake.call_count = 0;
}

/* Takes the parked query of req (it must be the only one of req). */
static struct parked_query take_query(const struct tcmu_request *req)
{
	for (unsigned int i = 0; i < parked_count; i++) {
		if (parked[i].req == req) {
			struct parked_query query = parked[i];

			parked[i] = parked[--parked_count];
			return query;
		}
	}
	fail_msg("no query parked for the request");
	return (struct parked_query){ 0 };
}

static void start_get_lba_status(struct tcmu_request *req, struct iovec *iov, uint64_t lba,
				 uint8_t *buffer, size_t length)
{
	uint8_t cdb[16] = { 0x9e, 0x12 };

	scsi_put_be64(cdb + 2, lba);
	scsi_put_be32(cdb + 10, (uint32_t)length);
	memset(buffer, 0xaa, length);
	fake_start(req, iov, cdb, sizeof(cdb), buffer, length);
}

/*
 * A query answered after the call returned: the command waits for it, then
 * asks from where the answer ended, and completes with both extents.
 */
static void test_get_lba_status_answered_later(void **state)
{
	uint8_t buffer[64];
	struct tcmu_request req;
	struct parked_query query;
	struct iovec iov;

	(void)state;
	use_query_lba_status();
	start_get_lba_status(&req, &iov, 4, buffer, sizeof(buffer));
	assert_null(fake_completion_of(&req));
	query = take_query(&req);
	assert_int_equal(query.offset, 4 * BLOCK);
	assert_int_equal(query.length, (BLOCKS - 4) * BLOCK);
	tcmu_request_complete_lba_status(&req, true, 10 * BLOCK);

	assert_null(fake_completion_of(&req));
	query = take_query(&req);
	assert_int_equal(query.offset, 14 * BLOCK);
	assert_int_equal(query.length, (BLOCKS - 14) * BLOCK);
	/* Less than a block: that block is mapped, and merges with the extent before. */
	tcmu_request_complete_lba_status(&req, false, BLOCK - 1);
	query = take_query(&req);
	assert_int_equal(query.offset, 15 * BLOCK);
	tcmu_request_complete_lba_status(&req, false, query.length);

	assert_non_null(fake_completion_of(&req));
	assert_int_equal(fake_completion_of(&req)->status, SCSI_STATUS_GOOD);
	assert_int_equal(fake_completion_of(&req)->read_length, 8 + 2 * 16);
	assert_int_equal(scsi_get_be32(buffer), 4 + 2 * 16);
	assert_descriptor(buffer + 8, 4, 11, 0x00);
	assert_descriptor(buffer + 24, 15, BLOCKS - 15, 0x01);
	assert_int_equal(buffer[40], 0);
	assert_int_equal(parked_count, 0);
	assert_int_equal(fake.call_count, 0);	/* the synchronous op was not asked */
}

/* Two commands in flight, answered newest first: each gets its own answer. */
static void test_get_lba_status_answered_in_reverse(void **state)
{
	uint8_t first_buffer[24], second_buffer[24];
	struct tcmu_request first, second;
	struct iovec first_iov, second_iov;

	(void)state;
	use_query_lba_status();
	start_get_lba_status(&first, &first_iov, 0, first_buffer, sizeof(first_buffer));
	start_get_lba_status(&second, &second_iov, 100, second_buffer, sizeof(second_buffer));
	assert_int_equal(parked_count, 2);
	take_query(&second);
	tcmu_request_complete_lba_status(&second, false, 50 * BLOCK);
	/* One descriptor fits: the second command asks again only to extend it. */
	take_query(&second);
	tcmu_request_complete_lba_status(&second, true, BLOCK);
	assert_non_null(fake_completion_of(&second));
	assert_null(fake_completion_of(&first));
	take_query(&first);
	tcmu_request_complete_lba_status(&first, true, 7 * BLOCK);
	take_query(&first);
	tcmu_request_complete_lba_status(&first, false, BLOCK);

	assert_int_equal(fake_completion_of(&first)->status, SCSI_STATUS_GOOD);
	assert_int_equal(fake_completion_of(&second)->status, SCSI_STATUS_GOOD);
	assert_descriptor(first_buffer + 8, 0, 7, 0x00);
	assert_descriptor(second_buffer + 8, 100, 50, 0x01);
	assert_int_equal(parked_count, 0);
}

static void assert_sense_of(const struct tcmu_request *req, uint8_t sense_key,
			    uint16_t asc_ascq)
{
	const struct fake_completion *completion = fake_completion_of(req);

	assert_non_null(completion);
	assert_int_equal(completion->status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(completion->sense[2] & 0x0f, sense_key);
	assert_int_equal(completion->sense[12] << 8 | completion->sense[13], asc_ascq);
}

/* An error answer, in the middle or at once, gives the errno's sense and no data. */
static void test_get_lba_status_error_answer(void **state)
{
	uint8_t buffer[64];
	struct tcmu_request req;
	struct iovec iov;

	(void)state;
	use_query_lba_status();
	start_get_lba_status(&req, &iov, 0, buffer, sizeof(buffer));
	take_query(&req);
	tcmu_request_complete_lba_status(&req, true, 3 * BLOCK);
	take_query(&req);
	tcmu_request_complete(&req, -EIO);
	assert_sense_of(&req, SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_UNRECOVERED_READ_ERROR);
	assert_int_equal(fake_completion_of(&req)->read_length, 0);
	assert_int_equal(parked_count, 0);

	/* The storage is late: BUSY, which the initiator retries. */
	fake.completion_count = 0;
	start_get_lba_status(&req, &iov, 0, buffer, sizeof(buffer));
	take_query(&req);
	tcmu_request_complete(&req, -EAGAIN);
	assert_int_equal(fake_completion_of(&req)->status, SCSI_STATUS_BUSY);

	/* Not taken: completed with that error, nothing parked. */
	fake.completion_count = 0;
	fake.op_error = -ESHUTDOWN;
	start_get_lba_status(&req, &iov, 0, buffer, sizeof(buffer));
	assert_sense_of(&req, SCSI_SENSE_NOT_READY, SCSI_ASC_ALUA_UNAVAILABLE);
	assert_int_equal(parked_count, 0);
}

/* On a ring worker the next query waits for a round, as every step does. */
static void test_get_lba_status_gives_way_on_worker(void **state)
{
	uint8_t buffer[64];
	struct tcmu_request req;
	struct iovec iov;

	(void)state;
	use_query_lba_status();
	fake.on_worker = true;
	start_get_lba_status(&req, &iov, 0, buffer, sizeof(buffer));
	take_query(&req);
	tcmu_request_complete_lba_status(&req, true, BLOCK);
	assert_int_equal(parked_count, 0);
	assert_int_equal(fake_worker_round(), 1);
	take_query(&req);
	tcmu_request_complete_lba_status(&req, false, (BLOCKS - 1) * BLOCK);
	assert_int_equal(fake_worker_round(), 0);
	assert_int_equal(fake_completion_of(&req)->status, SCSI_STATUS_GOOD);
	assert_descriptor(buffer + 8, 0, 1, 0x00);
	assert_descriptor(buffer + 24, 1, BLOCKS - 1, 0x01);
}

/*
 * MAXIMUM WRITE SAME LENGTH (VPD page B0h) is 128 MiB: one block more is
 * refused before anything is written, on a device large enough for it.
 */
static void test_write_same_length_limit(void **state)
{
	uint8_t block[BLOCK] = { 0 };
	const uint32_t limit = (128u << 20) / BLOCK;

	(void)state;
	fake.dev.size = 1ull << 30;	/* no op reaches the 1 MiB medium */
	write_same16(0x00, 0, limit + 1, block, sizeof(block));
	assert_invalid_cdb_field(10, 7);
	write_same16(0x08, 0, limit + 1, block, sizeof(block));
	assert_invalid_cdb_field(10, 7);
	assert_no_handler_call();
}

/* On a ring worker, the chunks and the final flush each wait for a round. */
static void test_write_same_gives_way_on_worker(void **state)
{
	uint8_t write_same16_cdb[16] = { 0x93, 0x00 };
	uint8_t block[BLOCK];
	struct tcmu_request req;
	struct iovec iov;

	(void)state;
	memset(block, 0x6b, sizeof(block));
	fake.dev.write_cache = false;
	scsi_put_be32(write_same16_cdb + 10, 2048);	/* the whole medium: one 1 MiB chunk */
	fake.on_worker = true;
	fake_start(&req, &iov, write_same16_cdb, sizeof(write_same16_cdb), block, sizeof(block));
	assert_int_equal(fake.call_count, 1);
	assert_int_equal(fake.calls[0].op, 'w');
	assert_int_equal(fake.calls[0].flags, 0);
	assert_null(fake_completion_of(&req));
	assert_int_equal(fake_worker_round(), 1);
	assert_int_equal(fake.call_count, 2);
	assert_int_equal(fake.calls[1].op, 'f');
	assert_null(fake_completion_of(&req));
	assert_int_equal(fake_worker_round(), 1);
	assert_non_null(fake_completion_of(&req));
	assert_int_equal(fake_completion_of(&req)->status, SCSI_STATUS_GOOD);
	assert_memory_equal(fake.medium + 2047 * BLOCK, block, BLOCK);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, fake_setup, fake_teardown)
#define TEST_NO_UNMAP(name) cmocka_unit_test_setup_teardown(name, fake_setup_no_unmap, fake_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_write_same_pattern),
		TEST(test_write_same_unmap),
		TEST_NO_UNMAP(test_write_same_unmap_without_handler_unmap),
		TEST(test_write_same_invalid),
		TEST(test_write_same_error),
		TEST(test_unmap),
		TEST(test_unmap_invalid),
		TEST_NO_UNMAP(test_unmap_not_offered_without_handler_unmap),
		TEST(test_unmap_many_descriptors),
		TEST(test_get_lba_status),
		TEST(test_get_lba_status_without_handler_op),
		TEST(test_get_lba_status_answered_later),
		TEST(test_get_lba_status_answered_in_reverse),
		TEST(test_get_lba_status_error_answer),
		TEST(test_get_lba_status_gives_way_on_worker),
		TEST(test_write_same_length_limit),
		TEST(test_write_same_gives_way_on_worker),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
