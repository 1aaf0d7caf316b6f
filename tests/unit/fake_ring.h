/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_ring.h: the kernel's side of a TCMU ring, in memory, for unit tests.
 * The map is laid out as target_core_user lays it out (mailbox, command
 * ring, data area) and commands are queued as the kernel queues them; the
 * test plays the kernel and ring.c reads the map as it reads a uio map.
 */
#ifndef FAKE_RING_H
#define FAKE_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "tcmu_internal.h"

/* A test that keeps many commands in flight may define larger ones for its build. */
#ifndef FAKE_RING_MAP_SIZE
#define FAKE_RING_MAP_SIZE (64 * 1024)
#endif
#define FAKE_RING_CMDR_OFF 128
#ifndef FAKE_RING_CMDR_SIZE
#define FAKE_RING_CMDR_SIZE 1024
#endif
#define FAKE_RING_DATA_OFF (FAKE_RING_CMDR_OFF + FAKE_RING_CMDR_SIZE)

struct fake_ring {
	uint8_t *map;
	struct tcmu_mailbox *mailbox;
};

/* An empty ring with out-of-order completion and read length. 0 or -ENOMEM. */
int fake_ring_create(struct fake_ring *fake);
void fake_ring_destroy(struct fake_ring *fake);
struct tcmu_cmd_entry *fake_ring_entry_at(const struct fake_ring *fake, uint32_t offset);
/* As the kernel sizes entries: room for the response at least, then the CDB. */
uint32_t fake_ring_entry_length(uint32_t iov_count, uint32_t cdb_length);
/* len_op is a packed member: set it through a copy. */
void fake_ring_set_len_op(struct tcmu_cmd_entry_hdr *hdr, enum tcmu_opcode op, uint32_t length);
void fake_ring_put_pad(struct fake_ring *fake, uint32_t length);
/*
 * Queues a command at the head, wrapping with a PAD when it does not fit,
 * and publishes it by moving the head. data_length 0: no data buffer.
 * Does not check for room: the caller keeps few enough in flight. Returns
 * the entry's ring offset.
 */
uint32_t fake_ring_put_command(struct fake_ring *fake, uint16_t cmd_id, const uint8_t *cdb,
			       uint32_t cdb_length, uint32_t data_offset, uint32_t data_length);

/*
 * Fault injection, as a writer of the shared map would strike: the page
 * that holds [watched_offset, +watched_length) of the map is made
 * inaccessible, every access to it is let through one instruction at a
 * time, and right after the first instruction that touches the watched
 * bytes the 32-bit field at field_offset (same page) is set to value.
 * Returns 0, or -EOPNOTSUPP where single-stepping is not available (only
 * x86-64 has it here). fake_ring_untamper() ends it and says whether it
 * struck.
 */
int fake_ring_tamper(struct fake_ring *fake, uint32_t watched_offset, uint32_t watched_length,
		     uint32_t field_offset, uint32_t value);
bool fake_ring_untamper(struct fake_ring *fake);

#endif
