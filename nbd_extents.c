/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nbd_extents.c: the server's base:allocation map for GET LBA STATUS,
 * asked on a connection that has other commands in flight.
 */
#include "nbd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>

/*
 * One block status answer, shared by the ring thread that waits for it
 * and libnbd, which may keep it after the wait gave up: the last of the
 * two to let go frees it.
 */
struct nbd_extent_query {
	unsigned int references;
	bool completed, has_extent;
	int error;
	uint64_t length;	/* asked for */
	bool mapped;		/* the first extent's state */
	uint64_t run;		/* bytes from the offset in that state */
};

static void nbd_extent_query_release(void *user_data)
{
	struct nbd_extent_query *query = user_data;

	if (--query->references == 0)
		free(query);
}

/*
 * base:allocation's extents, as (length, flags) pairs from the offset
 * asked for. Deallocated means a hole that reads as zeros (the handler
 * contract: LBPRZ); a hole of undefined content is reported mapped.
 */
static int nbd_extents_received(void *user_data, const char *context, uint64_t offset,
				uint32_t *entries, size_t entry_count, int *error)
{
	struct nbd_extent_query *query = user_data;
	const uint32_t deallocated = LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO;

	(void)offset;
	(void)error;
	if (query->has_extent || strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0 ||
	    entry_count < 2)
		return 0;
	query->has_extent = true;
	query->mapped = (entries[1] & deallocated) != deallocated;
	for (size_t i = 0; i + 1 < entry_count && query->run < query->length; i += 2) {
		if (((entries[i + 1] & deallocated) != deallocated) != query->mapped)
			break;
		query->run += entries[i];
	}
	query->run = MIN(query->run, query->length);
	return 0;
}

static int nbd_extent_query_done(void *user_data, int *error)
{
	struct nbd_extent_query *query = user_data;

	query->completed = true;
	query->error = *error;
	return 1;
}

static bool nbd_extent_query_completed(struct nbd_handle *handle, void *argument)
{
	(void)handle;
	return ((struct nbd_extent_query *)argument)->completed;
}

/*
 * For GET LBA STATUS: asked on the data connection itself with the aio
 * call, waiting here on the ring thread a bounded time. Not on a second connection kept for metadata: an exec:
 * target would start a second server (for nbdkit memory, a second, empty
 * disk), qemu-nbd serves one client unless told otherwise, and without
 * multi-conn a second connection need not see the writes this one
 * completed. Not with the synchronous nbd_block_status either: it waits
 * without a bound. Driving the data connection here also runs the
 * completion callbacks of the commands in flight; that is safe because
 * those only count and queue (nbd_command_done, nbd_command_freed), and
 * the core calls batch_done, which completes them, after this command.
 */
int nbd_extent_query(struct nbd_handle *handle, uint64_t offset, uint64_t length,
		     unsigned int wait_ms, bool *ret_mapped, uint64_t *ret_length)
{
	struct nbd_extent_query *query = malloc(sizeof(*query));
	int result = 0;

	if (!query)
		return -ENOMEM;
	*query = (struct nbd_extent_query){ .references = 2, .length = length };
	if (nbd_aio_block_status(handle, length, offset,
				 (nbd_extent_callback){ .callback = nbd_extents_received,
							.user_data = query },
				 (nbd_completion_callback){ .callback = nbd_extent_query_done,
							    .user_data = query,
							    .free = nbd_extent_query_release },
				 0) < 0)
		result = nbd_aio_is_ready(handle) ? nbd_result_from_error(nbd_get_errno()) : -EAGAIN;
	else if (!nbd_drive_until(handle, nbd_extent_query_completed, query, nbd_now_ms() + wait_ms))
		result = -EAGAIN;	/* a lost connection is the caller's to notice */
	else if (query->error)
		result = nbd_result_from_error(query->error);
	if (result == 0 && query->has_extent && query->run > 0) {
		*ret_mapped = query->mapped;
		*ret_length = query->run;
	}
	nbd_extent_query_release(query);
	return result;
}
