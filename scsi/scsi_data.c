/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_data.c: moving bytes between a request's data buffer (the ring's
 * iovecs) and the SCSI layer's own buffers, and cutting part of it out
 * for a handler.
 */
#include <stdlib.h>
#include <string.h>

#include "scsi_internal.h"

/*
 * The one walk over a request's data buffer: calls visit on each piece of
 * the length bytes from offset (fewer where the buffer ends first), with
 * the bytes that came before it. Returns the bytes visited.
 */
typedef void data_visit_fn(uint8_t *piece, size_t piece_length, uint64_t done, void *context);

static uint64_t data_walk(const struct tcmu_request *req, uint64_t offset, uint64_t length,
			  data_visit_fn *visit, void *context)
{
	uint64_t done = 0;

	for (uint32_t i = 0; i < req->iov_count && done < length; i++) {
		uint64_t part = req->iov[i].iov_len;

		if (offset >= part) {
			offset -= part;
			continue;
		}
		part -= offset;
		if (part > length - done)
			part = length - done;
		visit((uint8_t *)req->iov[i].iov_base + offset, (size_t)part, done, context);
		done += part;
		offset = 0;
	}
	return done;
}

static void visit_copy_in(uint8_t *piece, size_t piece_length, uint64_t done, void *source)
{
	memcpy(piece, (const uint8_t *)source + done, piece_length);
}

static void visit_copy_out(uint8_t *piece, size_t piece_length, uint64_t done, void *destination)
{
	memcpy((uint8_t *)destination + done, piece, piece_length);
}

static void visit_zero(uint8_t *piece, size_t piece_length, uint64_t done, void *unused)
{
	(void)done;
	(void)unused;
	memset(piece, 0, piece_length);
}

struct slice {
	struct iovec *iov;
	size_t count;
};

static void visit_slice(uint8_t *piece, size_t piece_length, uint64_t done, void *context)
{
	struct slice *slice = context;

	(void)done;
	slice->iov[slice->count++] = (struct iovec){ .iov_base = piece, .iov_len = piece_length };
}

size_t scsi_data_copy_in(struct tcmu_request *req, size_t offset, const void *source,
			 size_t length)
{
	return (size_t)data_walk(req, offset, length, visit_copy_in, (void *)source);
}

size_t scsi_data_copy_out(struct tcmu_request *req, size_t offset, void *destination,
			  size_t length)
{
	return (size_t)data_walk(req, offset, length, visit_copy_out, destination);
}

void scsi_data_zero(struct tcmu_request *req, size_t offset)
{
	data_walk(req, offset, UINT64_MAX, visit_zero, NULL);
}

struct iovec *scsi_data_slice(const struct tcmu_request *req, uint64_t offset, uint64_t length,
			      size_t *ret_count)
{
	struct slice slice = { .iov = calloc(req->iov_count ? req->iov_count : 1,
					     sizeof(*slice.iov)) };

	if (!slice.iov)
		return NULL;
	if (data_walk(req, offset, length, visit_slice, &slice) < length) {
		free(slice.iov);
		return NULL;
	}
	*ret_count = slice.count;
	return slice.iov;
}
