/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_ring.c: the kernel's side of an in-memory TCMU ring (fake_ring.h).
 * The head is stored with release ordering, as the kernel publishes it, so
 * that a ring served by another thread sees whole entries.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "fake_ring.h"

int fake_ring_create(struct fake_ring *fake)
{
	fake->map = aligned_alloc(4096, FAKE_RING_MAP_SIZE);
	if (!fake->map)
		return -ENOMEM;
	memset(fake->map, 0, FAKE_RING_MAP_SIZE);
	fake->mailbox = (struct tcmu_mailbox *)fake->map;
	fake->mailbox->version = TCMU_MAILBOX_VERSION;
	fake->mailbox->flags = TCMU_MAILBOX_FLAG_CAP_OOOC | TCMU_MAILBOX_FLAG_CAP_READ_LEN;
	fake->mailbox->cmdr_off = FAKE_RING_CMDR_OFF;
	fake->mailbox->cmdr_size = FAKE_RING_CMDR_SIZE;
	return 0;
}

void fake_ring_destroy(struct fake_ring *fake)
{
	free(fake->map);
	fake->map = NULL;
	fake->mailbox = NULL;
}

struct tcmu_cmd_entry *fake_ring_entry_at(const struct fake_ring *fake, uint32_t offset)
{
	return (struct tcmu_cmd_entry *)(fake->map + FAKE_RING_CMDR_OFF + offset);
}

static uint32_t cdb_position(uint32_t iov_count)
{
	uint32_t after_iovs = (uint32_t)offsetof(struct tcmu_cmd_entry, req.iov) +
			      iov_count * (uint32_t)sizeof(struct iovec);

	return after_iovs > sizeof(struct tcmu_cmd_entry) ? after_iovs
							   : (uint32_t)sizeof(struct tcmu_cmd_entry);
}

uint32_t fake_ring_entry_length(uint32_t iov_count, uint32_t cdb_length)
{
	uint32_t length = cdb_position(iov_count) + cdb_length;

	return (length + TCMU_OP_ALIGN_SIZE - 1) & ~(uint32_t)(TCMU_OP_ALIGN_SIZE - 1);
}

void fake_ring_set_len_op(struct tcmu_cmd_entry_hdr *hdr, enum tcmu_opcode op, uint32_t length)
{
	uint32_t len_op = 0;

	tcmu_hdr_set_op(&len_op, op);
	tcmu_hdr_set_len(&len_op, length);
	memcpy(&hdr->len_op, &len_op, sizeof(len_op));
}

static void publish_head(struct fake_ring *fake, uint32_t head)
{
	__atomic_store_n(&fake->mailbox->cmd_head, head, __ATOMIC_RELEASE);
}

void fake_ring_put_pad(struct fake_ring *fake, uint32_t length)
{
	uint32_t head = fake->mailbox->cmd_head;
	struct tcmu_cmd_entry *entry = fake_ring_entry_at(fake, head);

	memset(entry, 0, sizeof(entry->hdr));
	fake_ring_set_len_op(&entry->hdr, TCMU_OP_PAD, length);
	publish_head(fake, (head + length) % FAKE_RING_CMDR_SIZE);
}

uint32_t fake_ring_put_command(struct fake_ring *fake, uint16_t cmd_id, const uint8_t *cdb,
			       uint32_t cdb_length, uint32_t data_offset, uint32_t data_length)
{
	uint32_t iov_count = data_length ? 1 : 0;
	uint32_t length = fake_ring_entry_length(iov_count, cdb_length);
	uint32_t head = fake->mailbox->cmd_head;
	struct tcmu_cmd_entry *entry;
	struct iovec iov;
	uint32_t cdb_in_entry;

	if (FAKE_RING_CMDR_SIZE - head < length) {
		fake_ring_put_pad(fake, FAKE_RING_CMDR_SIZE - head);
		head = 0;
	}
	entry = fake_ring_entry_at(fake, head);
	memset(entry, 0, length);
	fake_ring_set_len_op(&entry->hdr, TCMU_OP_CMD, length);
	entry->hdr.cmd_id = cmd_id;
	entry->req.iov_cnt = iov_count;
	cdb_in_entry = cdb_position(iov_count);
	entry->req.cdb_off = FAKE_RING_CMDR_OFF + head + cdb_in_entry;
	memcpy((uint8_t *)entry + cdb_in_entry, cdb, cdb_length);
	if (iov_count) {
		iov.iov_base = (void *)(uintptr_t)data_offset;
		iov.iov_len = data_length;
		memcpy((uint8_t *)entry + offsetof(struct tcmu_cmd_entry, req.iov), &iov,
		       sizeof(iov));
	}
	publish_head(fake, (head + length) % FAKE_RING_CMDR_SIZE);
	return head;
}
