/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ring processing against an in-memory mailbox laid out as the kernel lays
 * it out (fake_ring.c). The test plays the kernel: it writes entries at the
 * head and checks what the ring leaves at the tail.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_ring.h"
#include "tcmu_internal.h"

struct fake_kernel {
	struct fake_ring fake;
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

	assert_int_equal(fake_ring_create(&kernel->fake), 0);
	kernel->dev.log_prefix = "test/ring";
	kernel->complete_at_once = true;
	current_kernel = kernel;
	assert_int_equal(ring_init(&kernel->ring, &kernel->dev, kernel->fake.map, FAKE_RING_MAP_SIZE,
				   record_dispatch, count_kick), 0);
	*state = kernel;
	return 0;
}

static int teardown(void **state)
{
	struct fake_kernel *kernel = *state;

	ring_destroy(&kernel->ring);
	fake_ring_destroy(&kernel->fake);
	free(kernel);
	return 0;
}

static const uint8_t test_unit_ready[6] = { 0x00 };
static const uint8_t read_10[10] = { 0x28, 0, 0, 0, 0, 8, 0, 0, 1, 0 };

static void test_single_command_completes_and_kicks_once(void **state)
{
	struct fake_kernel *kernel = *state;
	uint32_t offset = fake_ring_put_command(&kernel->fake, 7, read_10, sizeof(read_10),
						FAKE_RING_DATA_OFF, 512);

	assert_int_equal(ring_process(&kernel->ring), 1);
	assert_int_equal(kernel->dispatched_count, 1);
	assert_memory_equal(kernel->dispatched[0]->cdb, read_10, sizeof(read_10));
	assert_int_equal(kernel->dispatched[0]->cdb_length, 10);
	assert_int_equal(kernel->dispatched[0]->cmd_id, 7);
	assert_int_equal(kernel->dispatched[0]->iov_count, 1);
	assert_ptr_equal(kernel->dispatched[0]->iov[0].iov_base, kernel->fake.map + FAKE_RING_DATA_OFF);
	assert_int_equal(kernel->dispatched[0]->data_length, 512);
	assert_int_equal(kernel->fake.mailbox->cmd_tail, kernel->fake.mailbox->cmd_head);
	assert_int_equal(fake_ring_entry_at(&kernel->fake, offset)->rsp.scsi_status, 0);
	assert_int_equal(kernel->kicks, 1);
}

static void test_batch_is_one_kick(void **state)
{
	struct fake_kernel *kernel = *state;
	int i;

	for (i = 0; i < 5; i++)
		fake_ring_put_command(&kernel->fake, (uint16_t)(i + 1), test_unit_ready, 6, 0, 0);
	assert_int_equal(ring_process(&kernel->ring), 5);
	assert_int_equal(kernel->kicks, 1);
	assert_int_equal(kernel->fake.mailbox->cmd_tail, kernel->fake.mailbox->cmd_head);
}

static void test_wraparound_skips_pad(void **state)
{
	struct fake_kernel *kernel = *state;
	uint32_t length = fake_ring_entry_length(1, 10);
	unsigned int round, expected = 0;

	/* Enough commands to wrap the 1 KiB ring several times. */
	for (round = 0; round < 40; round++) {
		uint8_t cdb[10];
		uint32_t offset;

		memcpy(cdb, read_10, sizeof(cdb));
		cdb[5] = (uint8_t)round;
		offset = fake_ring_put_command(&kernel->fake, (uint16_t)(round + 1), cdb,
					       sizeof(cdb), FAKE_RING_DATA_OFF, 4096);
		assert_true(offset + length <= FAKE_RING_CMDR_SIZE);
		assert_int_equal(ring_process(&kernel->ring), 1);
		expected++;
		assert_int_equal(kernel->dispatched_count, expected);
		assert_int_equal(kernel->dispatched[0]->cdb[5], (uint8_t)round);
		assert_int_equal(kernel->fake.mailbox->cmd_tail, kernel->fake.mailbox->cmd_head);
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
	first = fake_ring_put_command(&kernel->fake, 1, read_10, 10, FAKE_RING_DATA_OFF, 512);
	second = fake_ring_put_command(&kernel->fake, 2, read_10, 10, FAKE_RING_DATA_OFF + 4096, 512);
	third = fake_ring_put_command(&kernel->fake, 3, test_unit_ready, 6, 0, 0);
	tail_before = kernel->fake.mailbox->cmd_tail;
	assert_int_equal(ring_process(&kernel->ring), 3);
	assert_int_equal(kernel->fake.mailbox->cmd_tail, tail_before);
	assert_int_equal(kernel->kicks, 0);

	/* The third finishes first: nothing can move yet. */
	ring_complete_request(kernel->dispatched[2], 0x02, sense, sizeof(sense), 0);
	assert_int_equal(kernel->fake.mailbox->cmd_tail, tail_before);
	assert_int_equal(fake_ring_entry_at(&kernel->fake, third)->rsp.scsi_status, 0x02);
	assert_memory_equal(fake_ring_entry_at(&kernel->fake, third)->rsp.sense_buffer, sense,
			    sizeof(sense));

	/* The first: the tail passes it and stops at the unfinished second. */
	ring_complete_request(kernel->dispatched[0], 0, NULL, 0, 0);
	assert_int_equal(kernel->fake.mailbox->cmd_tail, second);
	assert_int_equal(fake_ring_entry_at(&kernel->fake, first)->hdr.cmd_id, 1);
	assert_int_equal(kernel->kicks, 1);

	/* The second: the tail passes both it and the already finished third. */
	ring_complete_request(kernel->dispatched[1], 0, NULL, 0, 0);
	assert_int_equal(kernel->fake.mailbox->cmd_tail, kernel->fake.mailbox->cmd_head);
	assert_int_equal(fake_ring_entry_at(&kernel->fake, second)->hdr.cmd_id, 2);
	assert_int_equal(fake_ring_entry_at(&kernel->fake, third)->hdr.cmd_id, 3);
	assert_int_equal(kernel->kicks, 2);
	assert_int_equal(ring_wait_drained(&kernel->ring, 10), 0);
}

static void test_tmr_and_pad_need_no_answer(void **state)
{
	struct fake_kernel *kernel = *state;
	struct tcmu_tmr_entry *tmr;

	tmr = (struct tcmu_tmr_entry *)fake_ring_entry_at(&kernel->fake, 0);
	memset(tmr, 0, sizeof(*tmr));
	fake_ring_set_len_op(&tmr->hdr, TCMU_OP_TMR, sizeof(*tmr));
	tmr->tmr_type = TCMU_TMR_ABORT_TASK;
	kernel->fake.mailbox->cmd_head = sizeof(*tmr);
	fake_ring_put_pad(&kernel->fake, 64);
	assert_int_equal(ring_process(&kernel->ring), 0);
	assert_int_equal(kernel->dispatched_count, 0);
	assert_int_equal(kernel->fake.mailbox->cmd_tail, kernel->fake.mailbox->cmd_head);
	assert_int_equal(kernel->kicks, 1);
}

static void test_short_read_reports_read_length(void **state)
{
	struct fake_kernel *kernel = *state;
	uint32_t offset;

	kernel->complete_at_once = false;
	offset = fake_ring_put_command(&kernel->fake, 9, read_10, 10, FAKE_RING_DATA_OFF, 4096);
	assert_int_equal(ring_process(&kernel->ring), 1);
	ring_complete_request(kernel->dispatched[0], 0, NULL, 0, 36);
	assert_true(fake_ring_entry_at(&kernel->fake, offset)->hdr.uflags & TCMU_UFLAG_READ_LEN);
	assert_int_equal(fake_ring_entry_at(&kernel->fake, offset)->rsp.read_len, 36);
}

static void test_full_read_sets_no_read_length(void **state)
{
	struct fake_kernel *kernel = *state;
	uint32_t offset;

	kernel->complete_at_once = false;
	offset = fake_ring_put_command(&kernel->fake, 9, read_10, 10, FAKE_RING_DATA_OFF, 4096);
	assert_int_equal(ring_process(&kernel->ring), 1);
	ring_complete_request(kernel->dispatched[0], 0, NULL, 0, 0);
	assert_false(fake_ring_entry_at(&kernel->fake, offset)->hdr.uflags & TCMU_UFLAG_READ_LEN);
}

static void test_data_outside_map_gets_hardware_error(void **state)
{
	struct fake_kernel *kernel = *state;
	uint32_t offset = fake_ring_put_command(&kernel->fake, 4, read_10, 10,
						FAKE_RING_MAP_SIZE - 100, 512);
	struct tcmu_cmd_entry *entry = fake_ring_entry_at(&kernel->fake, offset);

	assert_int_equal(ring_process(&kernel->ring), 1);
	assert_int_equal(kernel->dispatched_count, 0);
	assert_int_equal(entry->rsp.scsi_status, 0x02);
	assert_int_equal(entry->rsp.sense_buffer[2] & 0x0f, 0x04);
	assert_int_equal((uint8_t)entry->rsp.sense_buffer[12], 0x44);
	assert_int_equal(kernel->fake.mailbox->cmd_tail, kernel->fake.mailbox->cmd_head);
	assert_false(kernel->ring.broken);
}

/* The SCSI layer's encoder builds that sense, in the format the device uses. */
static void test_hardware_error_in_descriptor_format(void **state)
{
	struct fake_kernel *kernel = *state;
	uint32_t offset = fake_ring_put_command(&kernel->fake, 4, read_10, 10,
						FAKE_RING_MAP_SIZE - 100, 512);
	struct tcmu_cmd_entry *entry = fake_ring_entry_at(&kernel->fake, offset);

	kernel->dev.scsi.descriptor_sense = true;
	assert_int_equal(ring_process(&kernel->ring), 1);
	assert_int_equal(entry->rsp.scsi_status, 0x02);
	assert_int_equal((uint8_t)entry->rsp.sense_buffer[0], 0x72);
	assert_int_equal(entry->rsp.sense_buffer[1], 0x04);
	assert_int_equal(entry->rsp.sense_buffer[2], 0x44);
}

static void test_cdb_outside_map_gets_hardware_error(void **state)
{
	struct fake_kernel *kernel = *state;
	uint32_t offset = fake_ring_put_command(&kernel->fake, 4, test_unit_ready, 6, 0, 0);
	struct tcmu_cmd_entry *entry = fake_ring_entry_at(&kernel->fake, offset);

	entry->req.cdb_off = FAKE_RING_MAP_SIZE + 4;
	assert_int_equal(ring_process(&kernel->ring), 1);
	assert_int_equal(kernel->dispatched_count, 0);
	assert_int_equal(entry->rsp.scsi_status, 0x02);
	assert_int_equal(kernel->fake.mailbox->cmd_tail, kernel->fake.mailbox->cmd_head);
}

static void test_impossible_length_marks_ring_broken(void **state)
{
	struct fake_kernel *kernel = *state;
	struct tcmu_cmd_entry *entry = fake_ring_entry_at(&kernel->fake, 0);

	memset(entry, 0, 64);
	fake_ring_set_len_op(&entry->hdr, TCMU_OP_CMD, 0);
	kernel->fake.mailbox->cmd_head = 64;
	assert_int_equal(ring_process(&kernel->ring), -EPROTO);
	assert_true(kernel->ring.broken);
	assert_int_equal(kernel->dispatched_count, 0);
	/* A broken ring is left alone from then on. */
	assert_int_equal(ring_process(&kernel->ring), -EPROTO);
}

static void test_entry_shorter_than_response_marks_ring_broken(void **state)
{
	struct fake_kernel *kernel = *state;
	struct tcmu_cmd_entry *entry = fake_ring_entry_at(&kernel->fake, 0);

	/* The response would spill into the next entry. */
	memset(entry, 0, 64);
	fake_ring_set_len_op(&entry->hdr, TCMU_OP_CMD, 64);
	kernel->fake.mailbox->cmd_head = 64;
	assert_int_equal(ring_process(&kernel->ring), -EPROTO);
	assert_true(kernel->ring.broken);
}

static void test_length_beyond_head_marks_ring_broken(void **state)
{
	struct fake_kernel *kernel = *state;

	fake_ring_put_command(&kernel->fake, 1, test_unit_ready, 6, 0, 0);
	fake_ring_set_len_op(&fake_ring_entry_at(&kernel->fake, 0)->hdr, TCMU_OP_CMD, 512);
	assert_int_equal(ring_process(&kernel->ring), -EPROTO);
	assert_true(kernel->ring.broken);
}

static void test_iov_count_beyond_entry_gets_hardware_error(void **state)
{
	struct fake_kernel *kernel = *state;
	uint32_t offset = fake_ring_put_command(&kernel->fake, 4, read_10, 10, FAKE_RING_DATA_OFF, 512);
	struct tcmu_cmd_entry *entry = fake_ring_entry_at(&kernel->fake, offset);

	entry->req.iov_cnt = 1000;
	assert_int_equal(ring_process(&kernel->ring), 1);
	assert_int_equal(kernel->dispatched_count, 0);
	assert_int_equal(entry->rsp.scsi_status, 0x02);
}

static void test_bad_mailbox_is_refused(void **state)
{
	struct fake_kernel *kernel = *state;
	struct tcmu_ring ring;

	kernel->fake.mailbox->cmdr_size = FAKE_RING_MAP_SIZE;
	assert_int_equal(ring_init(&ring, &kernel->dev, kernel->fake.map, FAKE_RING_MAP_SIZE,
				   record_dispatch, count_kick), -EPROTO);
	kernel->fake.mailbox->cmdr_size = FAKE_RING_CMDR_SIZE;
	kernel->fake.mailbox->version = 1;
	assert_int_equal(ring_init(&ring, &kernel->dev, kernel->fake.map, FAKE_RING_MAP_SIZE,
				   record_dispatch, count_kick), -EPROTO);
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
	fake_ring_put_command(&kernel->fake, 1, test_unit_ready, 6, 0, 0);
	assert_int_equal(ring_process(&kernel->ring), 1);
	assert_int_equal(ring_wait_drained(&kernel->ring, 10), -ETIMEDOUT);
	pthread_create(&thread, NULL, complete_from_thread, kernel->dispatched[0]);
	assert_int_equal(ring_wait_drained(&kernel->ring, 5000), 0);
	pthread_join(thread, NULL);
	assert_int_equal(kernel->kicks, 1);
	assert_int_equal(kernel->fake.mailbox->cmd_tail, kernel->fake.mailbox->cmd_head);
}

static void test_request_pool_reuses_slots(void **state)
{
	struct fake_kernel *kernel = *state;
	int i;

	for (i = 0; i < 1000; i++) {
		fake_ring_put_command(&kernel->fake, (uint16_t)i, read_10, 10, FAKE_RING_DATA_OFF, 512);
		assert_int_equal(ring_process(&kernel->ring), 1);
		kernel->dispatched_count = 0;
	}
	assert_int_equal(kernel->ring.pool_chunk_count, 1);
}

/*
 * A writer of the map raises iov_cnt once the ring has checked it and
 * reads the first iovec: the request must keep the count that was checked
 * (one iovec, in its one-entry array), not overflow the array.
 */
static void test_header_fields_are_read_once(void **state)
{
	struct fake_kernel *kernel = *state;
	uint32_t offset, entry_offset;
	int tampered;

	kernel->complete_at_once = false;
	offset = fake_ring_put_command(&kernel->fake, 11, read_10, sizeof(read_10),
				       FAKE_RING_DATA_OFF, 512);
	entry_offset = FAKE_RING_CMDR_OFF + offset;
	tampered = fake_ring_tamper(&kernel->fake,
				    entry_offset + offsetof(struct tcmu_cmd_entry, req.iov),
				    sizeof(struct iovec),
				    entry_offset + offsetof(struct tcmu_cmd_entry, req.iov_cnt), 200);
	if (tampered == -EOPNOTSUPP)
		fail_msg("this test needs x86-64 single-stepping for its fault injection");
	assert_int_equal(tampered, 0);
	assert_int_equal(ring_process(&kernel->ring), 1);
	assert_true(fake_ring_untamper(&kernel->fake));

	assert_int_equal(kernel->dispatched_count, 1);
	assert_int_equal(kernel->dispatched[0]->iov_count, 1);
	assert_int_equal(kernel->dispatched[0]->data_length, 512);
	assert_true(kernel->dispatched[0]->iov_capacity >= kernel->dispatched[0]->iov_count);
	ring_complete_request(kernel->dispatched[0], 0, NULL, 0, 0);
	assert_int_equal(kernel->fake.mailbox->cmd_tail, kernel->fake.mailbox->cmd_head);
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
		RING_TEST(test_hardware_error_in_descriptor_format),
		RING_TEST(test_cdb_outside_map_gets_hardware_error),
		RING_TEST(test_impossible_length_marks_ring_broken),
		RING_TEST(test_length_beyond_head_marks_ring_broken),
		RING_TEST(test_entry_shorter_than_response_marks_ring_broken),
		RING_TEST(test_iov_count_beyond_entry_gets_hardware_error),
		RING_TEST(test_bad_mailbox_is_refused),
		RING_TEST(test_completion_from_another_thread_kicks_at_once),
		RING_TEST(test_request_pool_reuses_slots),
		RING_TEST(test_header_fields_are_read_once),
	};

	log_set_level(TCMU_LOG_CRIT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
