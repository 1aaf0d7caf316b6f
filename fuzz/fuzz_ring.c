/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_ring: ring_process() over an arbitrary UIO map image. The input is
 * the map itself, mailbox included, so the fuzzer controls cmdr_off,
 * cmdr_size, head, tail and every entry. The map is allocated at exactly
 * the input's size so that AddressSanitizer catches any access beyond it.
 *
 * The dispatcher checks that every request it is handed points inside the
 * map, touches all of its data, and completes it either at once or after
 * ring_process() returns, in reverse order (out-of-order completion). At
 * the end no request may be left in flight, and on a healthy ring the
 * tail must have caught up with the head.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tcmu_internal.h"

#define MAX_DEFERRED 4096

static struct {
	uint8_t *map;
	size_t map_size;
	struct tcmu_request *deferred[MAX_DEFERRED];
	size_t deferred_count;
	size_t dispatched;
	size_t completed_at_dispatch;
} state;

static const uint8_t check_condition_sense[18] = { [0] = 0x70, [2] = 0x05, [7] = 10 };

static void check_inside_map(const void *pointer, uint64_t length)
{
	uintptr_t start = (uintptr_t)state.map, address = (uintptr_t)pointer;

	if (address < start || address - start > state.map_size ||
	    length > state.map_size - (address - start))
		abort();
}

static void complete(struct tcmu_request *req)
{
	/* A data-in command reports a short read now and then to cover READ_LEN. */
	uint32_t read_length = req->data_length > 1 ? (uint32_t)(req->data_length / 2) : 0;

	if (req->cdb[0] & 0x02)
		ring_complete_request(req, 0x02, check_condition_sense,
				      sizeof(check_condition_sense), 0);
	else
		ring_complete_request(req, 0, NULL, 0, req->cdb[0] & 0x04 ? read_length : 0);
}

static void dispatch(struct tcmu_request *req)
{
	uint64_t total = 0;
	uint32_t i;

	state.dispatched++;
	if (req->cdb_length == 0 || req->cdb_length > TCMU_MAX_CDB_LENGTH)
		abort();
	check_inside_map(req->entry, sizeof(struct tcmu_cmd_entry));
	for (i = 0; i < req->iov_count; i++) {
		check_inside_map(req->iov[i].iov_base, req->iov[i].iov_len);
		/* Both directions of a data transfer, as a handler would do them. */
		if (req->iov[i].iov_len) {
			volatile uint8_t first = ((uint8_t *)req->iov[i].iov_base)[0];
			(void)first;
			((uint8_t *)req->iov[i].iov_base)[req->iov[i].iov_len - 1] = 0xa5;
		}
		total += req->iov[i].iov_len;
	}
	if (total != req->data_length)
		abort();
	if ((req->cdb[0] & 0x01) && state.deferred_count < MAX_DEFERRED) {
		state.deferred[state.deferred_count++] = req;
		return;
	}
	state.completed_at_dispatch++;
	complete(req);
}

static void kick(struct tcmu_ring *ring)
{
	(void)ring;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(TCMU_LOG_CRIT);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tcmu_device dev = { .log_prefix = "fuzz/ring" };
	struct tcmu_ring ring;
	int round;

	if (size < sizeof(struct tcmu_mailbox))
		return 0;
	/* Page aligned as the UIO map is; the mailbox type asks for that alignment. */
	if (posix_memalign((void **)&state.map, 4096, size))
		return 0;
	memcpy(state.map, data, size);
	state.map_size = size;
	state.deferred_count = 0;
	state.dispatched = 0;
	state.completed_at_dispatch = 0;
	((struct tcmu_mailbox *)state.map)->version = TCMU_MAILBOX_VERSION;

	if (ring_init(&ring, &dev, state.map, size, dispatch, kick) == 0) {
		/* Twice: a second pass over an already consumed ring must dispatch nothing new. */
		for (round = 0; round < 2; round++) {
			size_t before = state.dispatched;
			int result = ring_process(&ring);

			/* The count includes commands answered at once for pointing outside the map. */
			if (result >= 0 && (size_t)result < state.dispatched - before)
				abort();
			while (state.deferred_count > 0)
				complete(state.deferred[--state.deferred_count]);
			if (ring.in_flight != 0 || ring.in_flight_head)
				abort();
			if (!ring.broken &&
			    ring.mailbox->cmd_tail != ring.mailbox->cmd_head % ring.cmdr_size &&
			    ring.mailbox->cmd_head < ring.cmdr_size)
				abort();
			if (round == 1 && !ring.broken && state.dispatched != before)
				abort();
		}
		ring_destroy(&ring);
	}
	free(state.map);
	return 0;
}
