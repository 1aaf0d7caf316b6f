/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nbd_extents.c: the server's base:allocation map for GET LBA STATUS,
 * asked on a connection that has other commands in flight, without
 * waiting for the answer.
 */
#include "nbd.h"

#include <string.h>
#include <sys/param.h>

/*
 * base:allocation's extents, as (length, flags) pairs from the offset
 * asked for. Deallocated means a hole that reads as zeros (the handler
 * contract: LBPRZ); a hole of undefined content is reported mapped.
 * Inside libnbd, which it must not call.
 */
static int nbd_extents_received(void *user_data, const char *context, uint64_t offset,
				uint32_t *entries, size_t entry_count, int *error)
{
	struct nbd_extent_answer *answer = user_data;
	const uint32_t deallocated = LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO;

	(void)offset;
	(void)error;
	if (answer->has_extent || strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0 ||
	    entry_count < 2)
		return 0;
	answer->has_extent = true;
	answer->mapped = (entries[1] & deallocated) != deallocated;
	for (size_t i = 0; i + 1 < entry_count && answer->run < answer->length; i += 2) {
		if (((entries[i + 1] & deallocated) != deallocated) != answer->mapped)
			break;
		answer->run += entries[i];
	}
	answer->run = MIN(answer->run, answer->length);
	return 0;
}

/*
 * On the data connection itself, answered through the device's ring
 * thread like its reads. Not on a second connection kept for metadata:
 * an exec: target would start a second server (for nbdkit memory, a
 * second, empty disk), qemu-nbd serves one client unless told otherwise,
 * and without multi-conn a second connection need not see the writes
 * this one completed. The extent callback needs no free of its own:
 * libnbd calls it only before the completion, whose free ends the
 * caller's use of answer.
 */
int64_t nbd_extent_query_start(struct nbd_handle *handle, uint64_t offset,
			       struct nbd_extent_answer *answer,
			       nbd_completion_callback completion)
{
	answer->has_extent = false;
	answer->mapped = true;
	answer->run = 0;
	return nbd_aio_block_status(handle, answer->length, offset,
				    (nbd_extent_callback){ .callback = nbd_extents_received,
							   .user_data = answer },
				    completion, 0);
}
