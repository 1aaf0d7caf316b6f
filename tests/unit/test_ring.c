/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ring processing against an in-memory mailbox laid out as the kernel lays
 * it out: mailbox, command ring, data area. The test plays the kernel: it
 * writes entries at the head and checks what the ring leaves at the tail.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tcmu_internal.h"

#define MAP_SIZE (64 * 1024)
#define CMDR_OFF 128
#define CMDR_SIZE 1024
#define DATA_OFF (CMDR_OFF + CMDR_SIZE)

struct fake_kernel {
	uint8_t *map;
	struct tcmu_mailbox *mailbox;
	struct tcmu_ring ring;
	struct tcmu_device dev;
	unsigned int kicks;
	struct tcmu_request *dispatched[64];
	unsigned int dispatched_count;
	bool complete_at_once;
};

static struct fake_kernel *current_kernel;

static void record_dispatch(struct tcmu_request *req)
{
	struct fake_kernel *kernel = current_kernel;

	kernel->dispatched[kernel->dispatched_count++] = req;
	if (kernel->complete_at_once)
		ring_complete_request(req, 0, NULL, 0, 0);
}

static void count_kick(struct tcmu_ring *ring)
{
	(void)ring;
	current_kernel->kicks++;
}

static int setup(void **state)
{
	struct fake_kernel *kernel = calloc(1, sizeof(*kernel));

	kernel->map = aligned_alloc(4096, MAP_SIZE);
	memset(kernel->map, 0, MAP_SIZE);
	kernel->mailbox = (struct tcmu_mailbox *)kernel->map;
	kernel->mailbox->version = TCMU_MAILBOX_VERSION;
	kernel->mailbox->flags = TCMU_MAILBOX_FLAG_CAP_OOOC | TCMU_MAILBOX_FLAG_CAP_READ_LEN;
	kernel->mailbox->cmdr_off = CMDR_OFF;
	kernel->mailbox->cmdr_size = CMDR_SIZE;
	kernel->dev.log_prefix = "test/ring";
	kernel->complete_at_once = true;
	current_kernel = kernel;
	assert_int_equal(ring_init(&kernel->ring, &kernel->dev, kernel->map, MAP_SIZE,
				   record_dispatch, count_kick), 0);
	*state = kernel;
	return 0;
}

static int teardown(void **state)
{
	struct fake_kernel *kernel = *state;

	ring_destroy(&kernel->ring);
	free(kernel->map);
	free(kernel);
	return 0;
}

/* As the kernel sizes entries: room for the response at least, then the CDB. */
static uint32_t cdb_position(uint32_t iov_count)
{
	uint32_t after_iovs = (uint32_t)offsetof(struct tcmu_cmd_entry, req.iov) +
			      iov_count * (uint32_t)sizeof(struct iovec);

	return after_iovs > sizeof(struct tcmu_cmd_entry) ? after_iovs
							   : (uint32_t)sizeof(struct tcmu_cmd_entry);
}

static uint32_t entry_length_for(uint32_t iov_count, uint32_t cdb_length)
{
	uint32_t length = cdb_position(iov_count) + cdb_length;

	return (length + TCMU_OP_ALIGN_SIZE - 1) & ~(uint32_t)(TCMU_OP_ALIGN_SIZE - 1);
}

/* len_op is a packed member: set it through a copy. */
static void set_len_op(struct tcmu_cmd_entry_hdr *hdr, enum tcmu_opcode op, uint32_t length)
{
	uint32_t len_op = 0;

	tcmu_hdr_set_op(&len_op, op);
	tcmu_hdr_set_len(&len_op, length);
	memcpy(&hdr->len_op, &len_op, sizeof(len_op));
}

static struct tcmu_cmd_entry *entry_at(struct fake_kernel *kernel, uint32_t offset)
{
	return (struct tcmu_cmd_entry *)(kernel->map + CMDR_OFF + offset);
}

static void put_pad(struct fake_kernel *kernel, uint32_t length)
{
	struct tcmu_cmd_entry *entry = entry_at(kernel, kernel->mailbox->cmd_head);

	memset(entry, 0, sizeof(entry->hdr));
	set_len_op(&entry->hdr, TCMU_OP_PAD, length);
	kernel->mailbox->cmd_head = (kernel->mailbox->cmd_head + length) % CMDR_SIZE;
}

/* Queues a command as the kernel does, wrapping with a PAD when it does not fit. */
static uint32_t put_command(struct fake_kernel *kernel, uint16_t cmd_id, const uint8_t *cdb,
			    uint32_t cdb_length, uint32_t data_offset, uint32_t data_length)
{
	uint32_t iov_count = data_length ? 1 : 0;
	uint32_t length = entry_length_for(iov_count, cdb_length);
	uint32_t head = kernel->mailbox->cmd_head;
	struct tcmu_cmd_entry *entry;
	struct iovec iov;
	uint32_t cdb_in_entry;

	if (CMDR_SIZE - head < length) {
		put_pad(kernel, CMDR_SIZE - head);
		head = 0;
	}
	entry = entry_at(kernel, head);
	memset(entry, 0, length);
	set_len_op(&entry->hdr, TCMU_OP_CMD, length);
	entry->hdr.cmd_id = cmd_id;
	entry->req.iov_cnt = iov_count;
	cdb_in_entry = cdb_position(iov_count);
	entry->req.cdb_off = CMDR_OFF + head + cdb_in_entry;
	memcpy((uint8_t *)entry + cdb_in_entry, cdb, cdb_length);
	if (iov_count) {
		iov.iov_base = (void *)(uintptr_t)data_offset;
		iov.iov_len = data_length;
		memcpy((uint8_t *)entry + offsetof(struct tcmu_cmd_entry, req.iov), &iov,
		       sizeof(iov));
	}
	kernel->mailbox->cmd_head = (head + length) % CMDR_SIZE;
	return head;
}

static const uint8_t test_unit_ready[6] = { 0x00 };
static const uint8_t read_10[10] = { 0x28, 0, 0, 0, 0, 8, 0, 0, 1, 0 };

static void test_single_command_completes_and_kicks_once(void **state)
{
	struct fake_kernel *kernel = *state;
	uint32_t offset = put_command(kernel, 7, read_10, sizeof(read_10), DATA_OFF, 512);

	assert_int_equal(ring_process(&kernel->ring), 1);
	assert_int_equal(kernel->dispatched_count, 1);
	assert_memory_equal(kernel->dispatched[0]->cdb, read_10, sizeof(read_10));
	assert_int_equal(kernel->dispatched[0]->cdb_length, 10);
	assert_int_equal(kernel->dispatched[0]->cmd_id, 7);
	assert_int_equal(kernel->dispatched[0]->iov_count, 1);
	assert_ptr_equal(kernel->dispatched[0]->iov[0].iov_base, kernel->map + DATA_OFF);
	assert_int_equal(kernel->dispatched[0]->data_length, 512);
	assert_int_equal(kernel->mailbox->cmd_tail, kernel->mailbox->cmd_head);
	assert_int_equal(entry_at(kernel, offset)->rsp.scsi_status, 0);
	assert_int_equal(kernel->kicks, 1);
}

static void test_batch_is_one_kick(void **state)
{
	struct fake_kernel *kernel = *state;
	int i;

	for (i = 0; i < 5; i++)
		put_command(kernel, (uint16_t)(i + 1), test_unit_ready, 6, 0, 0);
	assert_int_equal(ring_process(&kernel->ring), 5);
	assert_int_equal(kernel->kicks, 1);
	assert_int_equal(kernel->mailbox->cmd_tail, kernel->mailbox->cmd_head);
}

static void test_wraparound_skips_pad(void **state)
{
	struct fake_kernel *kernel = *state;
	uint32_t length = entry_length_for(1, 10);
	unsigned int round, expected = 0;

	/* Enough commands to wrap the 1 KiB ring several times. */
	for (round = 0; round < 40; round++) {
		uint8_t cdb[10];
		uint32_t offset;

		memcpy(cdb, read_10, sizeof(cdb));
		cdb[5] = (uint8_t)round;
		offset = put_command(kernel, (uint16_t)(round + 1), cdb, sizeof(cdb), DATA_OFF,
				     4096);
		assert_true(offset + length <= CMDR_SIZE);
		assert_int_equal(ring_process(&kernel->ring), 1);
		expected++;
		assert_int_equal(kernel->dispatched_count, expected);
		assert_int_equal(kernel->dispatched[0]->cdb[5], (uint8_t)round);
		assert_int_equal(kernel->mailbox->cmd_tail, kernel->mailbox->cmd_head);
		kernel->dispatched_count = 0;
		expected = 0;
	}
}

static void test_out_of_order_completion_moves_tail_in_order(void **state)
{
	struct fake_kernel *kernel = *state;
	uint32_t first, second, third, tail_before;
	uint8_t sense[18] = { 0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20 };

	kernel->complete_at_once = false;
	first = put_command(kernel, 1, read_10, 10, DATA_OFF, 512);
	second = put_command(kernel, 2, read_10, 10, DATA_OFF + 4096, 512);
	third = put_command(kernel, 3, test_unit_ready, 6, 0, 0);
	tail_before = kernel->mailbox->cmd_tail;
	assert_int_equal(ring_process(&kernel->ring), 3);
	assert_int_equal(kernel->mailbox->cmd_tail, tail_before);
	assert_int_equal(kernel->kicks, 0);

	/* The third finishes first: nothing can move yet. */
	ring_complete_request(kernel->dispatched[2], 0x02, sense, sizeof(sense), 0);
	assert_int_equal(kernel->mailbox->cmd_tail, tail_before);
	assert_int_equal(entry_at(kernel, third)->rsp.scsi_status, 0x02);
	assert_memory_equal(entry_at(kernel, third)->rsp.sense_buffer, sense, sizeof(sense));

	/* The first: the tail passes it and stops at the unfinished second. */
	ring_complete_request(kernel->dispatched[0], 0, NULL, 0, 0);
	assert_int_equal(kernel->mailbox->cmd_tail, second);
	assert_int_equal(entry_at(kernel, first)->hdr.cmd_id, 1);
	assert_int_equal(kernel->kicks, 1);

	/* The second: the tail passes both it and the already finished third. */
	ring_complete_request(kernel->dispatched[1], 0, NULL, 0, 0);
	assert_int_equal(kernel->mailbox->cmd_tail, kernel->mailbox->cmd_head);
	assert_int_equal(entry_at(kernel, second)->hdr.cmd_id, 2);
	assert_int_equal(entry_at(kernel, third)->hdr.cmd_id, 3);
	assert_int_equal(kernel->kicks, 2);
	assert_int_equal(ring_wait_drained(&kernel->ring, 10), 0);
}

static void test_tmr_and_pad_need_no_answer(void **state)
{
	struct fake_kernel *kernel = *state;
	struct tcmu_tmr_entry *tmr;

	tmr = (struct tcmu_tmr_entry *)entry_at(kernel, 0);
	memset(tmr, 0, sizeof(*tmr));
	set_len_op(&tmr->hdr, TCMU_OP_TMR, sizeof(*tmr));
	tmr->tmr_type = TCMU_TMR_ABORT_TASK;
	kernel->mailbox->cmd_head = sizeof(*tmr);
	put_pad(kernel, 64);
	assert_int_equal(ring_process(&kernel->ring), 0);
	assert_int_equal(kernel->dispatched_count, 0);
	assert_int_equal(kernel->mailbox->cmd_tail, kernel->mailbox->cmd_head);
	assert_int_equal(kernel->kicks, 1);
}

static void test_short_read_reports_read_length(void **state)
{
	struct fake_kernel *kernel = *state;
	uint32_t offset;

	kernel->complete_at_once = false;
	offset = put_command(kernel, 9, read_10, 10, DATA_OFF, 4096);
	assert_int_equal(ring_process(&kernel->ring), 1);
	ring_complete_request(kernel->dispatched[0], 0, NULL, 0, 36);
	assert_true(entry_at(kernel, offset)->hdr.uflags & TCMU_UFLAG_READ_LEN);
	assert_int_equal(entry_at(kernel, offset)->rsp.read_len, 36);
}

static void test_full_read_sets_no_read_length(void **state)
{
	struct fake_kernel *kernel = *state;
	uint32_t offset;

	kernel->complete_at_once = false;
	offset = put_command(kernel, 9, read_10, 10, DATA_OFF, 4096);
	assert_int_equal(ring_process(&kernel->ring), 1);
	ring_complete_request(kernel->dispatched[0], 0, NULL, 0, 0);
	assert_false(entry_at(kernel, offset)->hdr.uflags & TCMU_UFLAG_READ_LEN);
}

static void test_data_outside_map_gets_hardware_error(void **state)
{
	struct fake_kernel *kernel = *state;
	uint32_t offset = put_command(kernel, 4, read_10, 10, MAP_SIZE - 100, 512);
	struct tcmu_cmd_entry *entry = entry_at(kernel, offset);

	assert_int_equal(ring_process(&kernel->ring), 1);
	assert_int_equal(kernel->dispatched_count, 0);
	assert_int_equal(entry->rsp.scsi_status, 0x02);
	assert_int_equal(entry->rsp.sense_buffer[2] & 0x0f, 0x04);
	assert_int_equal((uint8_t)entry->rsp.sense_buffer[12], 0x44);
	assert_int_equal(kernel->mailbox->cmd_tail, kernel->mailbox->cmd_head);
	assert_false(kernel->ring.broken);
}

static void test_cdb_outside_map_gets_hardware_error(void **state)
{
	struct fake_kernel *kernel = *state;
	uint32_t offset = put_command(kernel, 4, test_unit_ready, 6, 0, 0);
	struct tcmu_cmd_entry *entry = entry_at(kernel, offset);

	entry->req.cdb_off = MAP_SIZE + 4;
	assert_int_equal(ring_process(&kernel->ring), 1);
	assert_int_equal(kernel->dispatched_count, 0);
	assert_int_equal(entry->rsp.scsi_status, 0x02);
	assert_int_equal(kernel->mailbox->cmd_tail, kernel->mailbox->cmd_head);
}

static void test_impossible_length_marks_ring_broken(void **state)
{
	struct fake_kernel *kernel = *state;
	struct tcmu_cmd_entry *entry = entry_at(kernel, 0);

	memset(entry, 0, 64);
	set_len_op(&entry->hdr, TCMU_OP_CMD, 0);
	kernel->mailbox->cmd_head = 64;
	assert_int_equal(ring_process(&kernel->ring), -EPROTO);
	assert_true(kernel->ring.broken);
	assert_int_equal(kernel->dispatched_count, 0);
	/* A broken ring is left alone from then on. */
	assert_int_equal(ring_process(&kernel->ring), -EPROTO);
}

static void test_entry_shorter_than_response_marks_ring_broken(void **state)
{
	struct fake_kernel *kernel = *state;
	struct tcmu_cmd_entry *entry = entry_at(kernel, 0);

	/* The response would spill into the next entry. */
	memset(entry, 0, 64);
	set_len_op(&entry->hdr, TCMU_OP_CMD, 64);
	kernel->mailbox->cmd_head = 64;
	assert_int_equal(ring_process(&kernel->ring), -EPROTO);
	assert_true(kernel->ring.broken);
}

static void test_length_beyond_head_marks_ring_broken(void **state)
{
	struct fake_kernel *kernel = *state;

	put_command(kernel, 1, test_unit_ready, 6, 0, 0);
	set_len_op(&entry_at(kernel, 0)->hdr, TCMU_OP_CMD, 512);
	assert_int_equal(ring_process(&kernel->ring), -EPROTO);
	assert_true(kernel->ring.broken);
}

static void test_iov_count_beyond_entry_gets_hardware_error(void **state)
{
	struct fake_kernel *kernel = *state;
	uint32_t offset = put_command(kernel, 4, read_10, 10, DATA_OFF, 512);
	struct tcmu_cmd_entry *entry = entry_at(kernel, offset);

	entry->req.iov_cnt = 1000;
	assert_int_equal(ring_process(&kernel->ring), 1);
	assert_int_equal(kernel->dispatched_count, 0);
	assert_int_equal(entry->rsp.scsi_status, 0x02);
}

static void test_bad_mailbox_is_refused(void **state)
{
	struct fake_kernel *kernel = *state;
	struct tcmu_ring ring;

	kernel->mailbox->cmdr_size = MAP_SIZE;
	assert_int_equal(ring_init(&ring, &kernel->dev, kernel->map, MAP_SIZE, record_dispatch,
				   count_kick), -EPROTO);
	kernel->mailbox->cmdr_size = CMDR_SIZE;
	kernel->mailbox->version = 1;
	assert_int_equal(ring_init(&ring, &kernel->dev, kernel->map, MAP_SIZE, record_dispatch,
				   count_kick), -EPROTO);
}

static void *complete_from_thread(void *argument)
{
	ring_complete_request(argument, 0, NULL, 0, 0);
	return NULL;
}

static void test_completion_from_another_thread_kicks_at_once(void **state)
{
	struct fake_kernel *kernel = *state;
	pthread_t thread;

	kernel->complete_at_once = false;
	put_command(kernel, 1, test_unit_ready, 6, 0, 0);
	assert_int_equal(ring_process(&kernel->ring), 1);
	assert_int_equal(ring_wait_drained(&kernel->ring, 10), -ETIMEDOUT);
	pthread_create(&thread, NULL, complete_from_thread, kernel->dispatched[0]);
	assert_int_equal(ring_wait_drained(&kernel->ring, 5000), 0);
	pthread_join(thread, NULL);
	assert_int_equal(kernel->kicks, 1);
	assert_int_equal(kernel->mailbox->cmd_tail, kernel->mailbox->cmd_head);
}

static void test_request_pool_reuses_slots(void **state)
{
	struct fake_kernel *kernel = *state;
	int i;

	for (i = 0; i < 1000; i++) {
		put_command(kernel, (uint16_t)i, read_10, 10, DATA_OFF, 512);
		assert_int_equal(ring_process(&kernel->ring), 1);
		kernel->dispatched_count = 0;
	}
	assert_int_equal(kernel->ring.pool_chunk_count, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define RING_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		RING_TEST(test_single_command_completes_and_kicks_once),
		RING_TEST(test_batch_is_one_kick),
		RING_TEST(test_wraparound_skips_pad),
		RING_TEST(test_out_of_order_completion_moves_tail_in_order),
		RING_TEST(test_tmr_and_pad_need_no_answer),
		RING_TEST(test_short_read_reports_read_length),
		RING_TEST(test_full_read_sets_no_read_length),
		RING_TEST(test_data_outside_map_gets_hardware_error),
		RING_TEST(test_cdb_outside_map_gets_hardware_error),
		RING_TEST(test_impossible_length_marks_ring_broken),
		RING_TEST(test_length_beyond_head_marks_ring_broken),
		RING_TEST(test_entry_shorter_than_response_marks_ring_broken),
		RING_TEST(test_iov_count_beyond_entry_gets_hardware_error),
		RING_TEST(test_bad_mailbox_is_refused),
		RING_TEST(test_completion_from_another_thread_kicks_at_once),
		RING_TEST(test_request_pool_reuses_slots),
	};

	log_set_level(TCMU_LOG_CRIT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
