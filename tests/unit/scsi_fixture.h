/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_fixture.h: a fake device with an in-memory handler, and a
 * ring_complete_request() that records what the SCSI layer answered, for
 * the test_scsi_*.c unit tests. Linked instead of ring.c.
 */
#ifndef SCSI_FIXTURE_H
#define SCSI_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "scsi_internal.h"

struct fake_completion {
	struct tcmu_request *req;
	unsigned int count;
	uint8_t status;
	uint8_t sense[SCSI_SENSE_BUFFER_SIZE];
	size_t sense_length;
	uint32_t read_length;
};

struct fake_handler_call {
	char op;		/* 'r', 'w', 'f', 'u' */
	uint64_t offset;
	uint64_t length;
	uint32_t flags;
};

struct fake {
	struct tcmu_device dev;
	struct tcmu_handler handler;
	uint8_t *medium;
	struct tcmu_request req;
	struct iovec iov[4];
	struct fake_completion completion;	/* the last one */
	struct fake_completion completions[16];	/* by request */
	unsigned int completion_count;
	/* Provisioning state per block, for get_lba_status. */
	bool mapped[2048];

	/* Returned by the next handler op: the request is not taken. */
	int op_error;
	/* Passed to tcmu_request_complete by the next handler op. */
	int complete_error;
	/* Park the next requests instead of completing them. */
	bool defer;
	struct tcmu_request *deferred[8];
	int deferred_results[8];
	unsigned int deferred_count;

	struct fake_handler_call calls[64];
	unsigned int call_count;

	/* Plays a ring worker thread: worker_defer() queues tasks here. */
	bool on_worker;
	struct worker_task *tasks_head;
	struct worker_task *tasks_tail;
};

extern struct fake fake;

/* A 1 MiB device with 512-byte blocks, write cache on, unmap available. */
int fake_setup(void **state);
int fake_teardown(void **state);
/* Same, without the unmap op. */
int fake_setup_no_unmap(void **state);

/* Runs one CDB against a buffer split into iov_count pieces; checks one completion. */
void fake_execute_split(const uint8_t *cdb, size_t cdb_length, void *buffer, size_t length,
			unsigned int iov_count);
void fake_execute(const uint8_t *cdb, size_t cdb_length, void *buffer, size_t length);
#define EXECUTE(cdb, buffer, length) fake_execute((cdb), sizeof(cdb), (buffer), (length))
/* Completes the parked requests in order, with their results; stops parking. */
void fake_release_deferred(void);
/* Completes the oldest parked request; later ops are still parked. */
void fake_release_next(void);

/* Starts a CDB on a request of the caller's (several may be in flight). */
void fake_start(struct tcmu_request *req, struct iovec *iov, const uint8_t *cdb,
		size_t cdb_length, void *buffer, size_t length);
/*
 * Runs the tasks worker_defer() queued, as a worker does after serving its
 * events (those they queue wait for the next round). Returns how many ran.
 */
unsigned int fake_worker_round(void);
/* What the request was completed with; NULL while it is not. */
const struct fake_completion *fake_completion_of(const struct tcmu_request *req);

/* Fills buffer with bytes that differ from those of another seed. */
void fill_pattern(uint8_t *buffer, size_t length, uint8_t seed);
/* A COMPARE AND WRITE CDB in cdb (16 bytes); returns cdb. */
uint8_t *compare_and_write_cdb(uint8_t *cdb, uint64_t lba, uint8_t blocks, uint8_t flags);

void assert_good(void);
void assert_status(uint8_t status);
/* CHECK CONDITION with fixed-format sense of that key and ASC/ASCQ. */
void assert_check(uint8_t sense_key, uint16_t asc_ascq);
/* ILLEGAL REQUEST, INVALID FIELD IN CDB at byte/bit (bit -1: no bit pointer). */
void assert_invalid_cdb_field(uint16_t byte, int bit);
void assert_invalid_parameter_field(uint16_t byte, int bit);
void assert_lba_out_of_range(uint64_t lba);
void assert_no_handler_call(void);

#endif
