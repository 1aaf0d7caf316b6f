/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_scsi: scsi_execute() on arbitrary CDBs and data buffers, over a
 * fake device whose in-memory handler may finish I/O at once, later, out
 * of order, or with an error. Linked instead of ring.c: the
 * ring_complete_request() below counts answers per request.
 *
 * Input: 4 bytes of device geometry, then up to MAX_COMMANDS records of
 *   1 byte  behaviour (iovec pieces, defer, handler error, completion error)
 *   32 bytes CDB (its length follows from the opcode, as ring.c derives it)
 *   2 bytes data length, followed by that many data bytes (zero-filled
 *           when the input runs out).
 * Every request must be answered exactly once, with sense and read length
 * in bounds, and every handler call must stay inside the device.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_internal.h"

#define MAX_COMMANDS 16
#define MAX_PIECES 4
#define MAX_DEFERRED 64

struct fuzz_request {
	struct tcmu_request req;
	struct iovec iov[MAX_PIECES];
	uint8_t *buffer;
	unsigned int completions;
	uint8_t behaviour;
};

static struct {
	struct tcmu_device dev;
	struct tcmu_handler handler;
	uint8_t *medium;
	struct fuzz_request requests[MAX_COMMANDS];
	struct tcmu_request *deferred[MAX_DEFERRED];
	int deferred_results[MAX_DEFERRED];
	unsigned int deferred_count;
} fuzz;

#define BEHAVIOUR_PIECES(b)	(((b) & 0x03) + 1)
#define BEHAVIOUR_DEFER		0x04
#define BEHAVIOUR_REFUSE	0x08
#define BEHAVIOUR_FAIL		0x10
#define BEHAVIOUR_ERROR(b)	(((b) >> 5) & 0x07)

static const int handler_errors[8] = {
	-EIO, -ENOSPC, -EROFS, -EPERM, -ENOMEM, -EAGAIN, -EINVAL, -ESTALE,
};

static struct fuzz_request *fuzz_request_of(struct tcmu_request *req)
{
	return (struct fuzz_request *)((uint8_t *)req - offsetof(struct fuzz_request, req));
}

void ring_complete_request(struct tcmu_request *req, uint8_t scsi_status,
			   const uint8_t *sense, size_t sense_length, uint32_t read_length)
{
	struct fuzz_request *request = fuzz_request_of(req);
	volatile uint8_t last;

	if (request < fuzz.requests || request >= fuzz.requests + MAX_COMMANDS)
		abort();
	if (++request->completions != 1)
		abort();
	if (sense_length > SCSI_SENSE_BUFFER_SIZE || read_length > req->data_length)
		abort();
	if ((sense_length > 0) != (sense != NULL))
		abort();
	if (scsi_status == SCSI_STATUS_CHECK_CONDITION && sense_length == 0)
		abort();
	if (sense_length) {
		last = sense[sense_length - 1];
		(void)last;
	}
}

static uint64_t iov_total(const struct iovec *iov, size_t iov_count)
{
	uint64_t total = 0;

	for (size_t i = 0; i < iov_count; i++)
		total += iov[i].iov_len;
	return total;
}

/* The core promises handlers a range inside the device that the iovecs cover exactly. */
static void check_range(struct tcmu_device *dev, const struct iovec *iov, size_t iov_count,
			uint64_t offset, uint64_t length)
{
	if (dev != &fuzz.dev)
		abort();
	if (offset > dev->size || length > dev->size - offset)
		abort();
	if (iov && iov_total(iov, iov_count) != length)
		abort();
}

static int finish_op(struct tcmu_request *req)
{
	uint8_t behaviour = fuzz_request_of(req)->behaviour;
	int result = 0;

	if (behaviour & BEHAVIOUR_REFUSE)
		return handler_errors[BEHAVIOUR_ERROR(behaviour)];
	if (behaviour & BEHAVIOUR_FAIL)
		result = handler_errors[BEHAVIOUR_ERROR(behaviour)];
	if ((behaviour & BEHAVIOUR_DEFER) && fuzz.deferred_count < MAX_DEFERRED) {
		fuzz.deferred[fuzz.deferred_count] = req;
		fuzz.deferred_results[fuzz.deferred_count++] = result;
		return 0;
	}
	tcmu_request_complete(req, result);
	return 0;
}

static int fake_read(struct tcmu_device *dev, struct tcmu_request *req, const struct iovec *iov,
		     size_t iov_count, uint64_t offset, uint64_t length)
{
	check_range(dev, iov, iov_count, offset, length);
	for (size_t i = 0; i < iov_count; i++) {
		memcpy(iov[i].iov_base, fuzz.medium + offset, iov[i].iov_len);
		offset += iov[i].iov_len;
	}
	return finish_op(req);
}

static int fake_write(struct tcmu_device *dev, struct tcmu_request *req, const struct iovec *iov,
		      size_t iov_count, uint64_t offset, uint64_t length, uint32_t flags)
{
	check_range(dev, iov, iov_count, offset, length);
	if (flags & ~TCMU_WRITE_FUA)
		abort();
	for (size_t i = 0; i < iov_count; i++) {
		memcpy(fuzz.medium + offset, iov[i].iov_base, iov[i].iov_len);
		offset += iov[i].iov_len;
	}
	return finish_op(req);
}

static int fake_flush(struct tcmu_device *dev, struct tcmu_request *req)
{
	if (dev != &fuzz.dev)
		abort();
	return finish_op(req);
}

static int fake_unmap(struct tcmu_device *dev, struct tcmu_request *req, uint64_t offset,
		      uint64_t length)
{
	check_range(dev, NULL, 0, offset, length);
	if (length == 0)
		abort();
	memset(fuzz.medium + offset, 0, length);
	return finish_op(req);
}

/* Takes up to length bytes of input; what is missing reads as zero. */
static void take(const uint8_t **data, size_t *size, void *destination, size_t length)
{
	size_t available = *size < length ? *size : length;

	memset(destination, 0, length);
	memcpy(destination, *data, available);
	*data += available;
	*size -= available;
}

static void release_deferred(bool newest_first)
{
	while (fuzz.deferred_count > 0) {
		unsigned int index = newest_first ? fuzz.deferred_count - 1 : 0;
		struct tcmu_request *req = fuzz.deferred[index];
		int result = fuzz.deferred_results[index];

		fuzz.deferred_count--;
		memmove(&fuzz.deferred[index], &fuzz.deferred[index + 1],
			(fuzz.deferred_count - index) * sizeof(fuzz.deferred[0]));
		memmove(&fuzz.deferred_results[index], &fuzz.deferred_results[index + 1],
			(fuzz.deferred_count - index) * sizeof(fuzz.deferred_results[0]));
		/* Completing may start the next step of the command, which may be deferred again. */
		tcmu_request_complete(req, result);
	}
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
	uint8_t geometry[4];
	unsigned int count = 0, i;

	if (size < sizeof(geometry))
		return 0;
	take(&data, &size, geometry, sizeof(geometry));
	memset(&fuzz, 0, sizeof(fuzz));
	fuzz.handler.subtype = "fuzz";
	fuzz.handler.read = fake_read;
	fuzz.handler.write = fake_write;
	fuzz.handler.flush = fake_flush;
	if (geometry[0] & 0x01)
		fuzz.handler.unmap = fake_unmap;
	fuzz.dev.name = "fuzz0";
	fuzz.dev.log_prefix = "fuzz/fuzz0";
	fuzz.dev.unit_serial = geometry[0] & 0x04 ? "" : "5f0c7a3e-1b2d-4e6f-8a9b-0c1d2e3f4a5b";
	fuzz.dev.handler = &fuzz.handler;
	fuzz.dev.write_cache = geometry[0] & 0x02;
	fuzz.dev.block_size = geometry[0] & 0x08 ? 4096 : 512;
	/* Up to 256 blocks, possibly none: a zero-sized device must not break anything either. */
	fuzz.dev.size = (uint64_t)geometry[1] * fuzz.dev.block_size;
	fuzz.dev.max_sectors = geometry[2] ? geometry[2] : 128;
	fuzz.medium = calloc(1, fuzz.dev.size ? fuzz.dev.size : 1);
	if (!fuzz.medium)
		return 0;
	scsi_device_init(&fuzz.dev);
	fuzz.dev.scsi.capacity_changed = geometry[3] & 0x01;

	while (size > 0 && count < MAX_COMMANDS) {
		struct fuzz_request *request = &fuzz.requests[count++];
		struct tcmu_request *req = &request->req;
		uint8_t length_bytes[2];
		unsigned int pieces;
		size_t length, piece;

		take(&data, &size, &request->behaviour, 1);
		take(&data, &size, req->cdb, TCMU_MAX_CDB_LENGTH);
		take(&data, &size, length_bytes, sizeof(length_bytes));
		length = (size_t)length_bytes[0] << 8 | length_bytes[1];
		/* Exactly the transfer's size, so that ASan sees any access beyond it. */
		request->buffer = malloc(length ? length : 1);
		if (!request->buffer)
			abort();
		take(&data, &size, request->buffer, length);

		req->dev = &fuzz.dev;
		/* ring.c refuses a CDB longer than the entry holds; this one takes 16. */
		req->cdb_length = scsi_cdb_length(req->cdb, TCMU_MAX_CDB_LENGTH);
		if (req->cdb_length > TCMU_MAX_CDB_LENGTH)
			req->cdb_length = 16;
		req->cmd_id = (uint16_t)count;
		pieces = length ? BEHAVIOUR_PIECES(request->behaviour) : 0;
		piece = pieces ? length / pieces : 0;
		for (i = 0; i < pieces; i++) {
			request->iov[i].iov_base = request->buffer + i * piece;
			request->iov[i].iov_len = i + 1 == pieces ? length - i * piece : piece;
		}
		req->iov = request->iov;
		req->iov_count = pieces;
		req->iov_capacity = MAX_PIECES;
		req->data_length = length;
		scsi_execute(req);
		/* Some commands find others still in flight, some find them done. */
		if (geometry[3] & 0x02)
			release_deferred(geometry[3] & 0x04);
	}
	release_deferred(geometry[3] & 0x04);

	for (i = 0; i < count; i++) {
		if (fuzz.requests[i].completions != 1)
			abort();
		free(fuzz.requests[i].buffer);
	}
	scsi_device_destroy(&fuzz.dev);
	free(fuzz.medium);
	return 0;
}
