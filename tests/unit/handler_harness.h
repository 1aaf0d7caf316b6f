/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handler_harness.h: runs a handler shared object outside the daemon.
 *
 * The test executable defines the libtcmu.h functions a handler resolves
 * against the daemon (tcmu_request_complete, the device accessors, the
 * logger) and exports them, so the real handler_<subtype>.so is dlopened
 * and driven through its struct tcmu_handler exactly as the daemon would.
 */
#ifndef HANDLER_HARNESS_H
#define HANDLER_HARNESS_H

#include "libtcmu.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HARNESS_MAX_WATCHES 8

/* What the accessors return; the test fills it in. */
struct tcmu_device {
	const char *name;
	const char *subtype;
	const char *backstore;
	const char *config;
	uint64_t size;
	uint32_t block_size;
	bool write_cache;
	void *private_data;
	/* What the handler last passed to tcmu_device_set_unmap_supported(). */
	bool unmap_unsupported;
	/* ...to tcmu_device_set_write_protected() and tcmu_device_set_unit_serial(). */
	bool write_protected;
	char unit_serial[255];
	/* The fds an asynchronous handler watches (tcmu_device_watch_fd). */
	int watched_fds[HARNESS_MAX_WATCHES];
	uint32_t watched_events[HARNESS_MAX_WATCHES];
	unsigned int watched_count;
	unsigned int fd_ready_calls;
	/* What the handler last passed to tcmu_device_set_state(). */
	enum tcmu_device_state state;
	char state_reason[128];
};

/*
 * A request: how many times it was completed, with what, and when (the
 * completions of a test process are numbered from 1 in the order they came).
 */
struct tcmu_request {
	int completions;
	int result;
	unsigned int sequence;
	/* Completed by tcmu_request_complete_miscompare(), at this offset. */
	bool miscompare;
	uint64_t miscompare_offset;
};

/* dlopens path and returns its handler; fails the test on any problem. */
const struct tcmu_handler *harness_load(const char *path);
void harness_unload(void);

/*
 * Each runs one request through the handler, splitting buffers into several
 * unequal iovecs, checks that it was completed exactly once and returns the
 * completion result (or the -errno the handler returned without taking it).
 * An asynchronous handler is driven as the ring thread drives it: batch_done
 * after the call, then its watched fds are waited for and fd_ready (and
 * batch_done) called until the request is complete.
 */
int harness_read(const struct tcmu_handler *handler, struct tcmu_device *dev,
		 uint64_t offset, void *buffer, size_t length);
int harness_write(const struct tcmu_handler *handler, struct tcmu_device *dev,
		  uint64_t offset, const void *buffer, size_t length, uint32_t flags);
int harness_flush(const struct tcmu_handler *handler, struct tcmu_device *dev);
int harness_unmap(const struct tcmu_handler *handler, struct tcmu_device *dev,
		  uint64_t offset, uint64_t length);
/*
 * The handler's compare_and_write of length bytes at offset: compare with
 * compare, write write. Its result, or 1 for a miscompare, with the offset
 * in *ret_miscompare_offset.
 */
int harness_compare_and_write(const struct tcmu_handler *handler, struct tcmu_device *dev,
			      uint64_t offset, const void *compare, const void *write,
			      size_t length, uint32_t flags, uint64_t *ret_miscompare_offset);

/*
 * For a request the handler took (returned 0 for): batch_done, then the
 * watched fds served as the ring thread would until req is completed, by
 * this thread or another one. Returns its result; fails after 10 s.
 */
int harness_wait(const struct tcmu_handler *handler, struct tcmu_device *dev,
		 struct tcmu_request *req);

/*
 * One wait of the ring thread, of up to 100 ms: fd_ready for each watched
 * fd that is ready, then batch_done.
 */
void harness_serve_watched_fds(const struct tcmu_handler *handler, struct tcmu_device *dev);

/*
 * The handler's get_lba_status at offset for up to length bytes must give
 * one extent of expected_length bytes, mapped or not as expected_mapped.
 */
void harness_expect_extent(const struct tcmu_handler *handler, struct tcmu_device *dev,
			   uint64_t offset, uint64_t length, bool expected_mapped,
			   uint64_t expected_length);

/*
 * Writes 4 MiB at offset 0 (and flushes), unmaps the middle 2 MiB, and
 * checks that backing_path, the file that holds the device's data, gave
 * back those blocks and kept its size, that the outer MiBs read as written
 * and the middle as zeros, and that get_lba_status sees the three extents.
 * Returns 0, or the unmap's error (e.g. -EOPNOTSUPP) with nothing checked.
 */
int harness_check_unmap_middle(const struct tcmu_handler *handler, struct tcmu_device *dev,
			       const char *backing_path);

/* Everything logged since the last harness_log_clear(), one message a line. */
const char *harness_log(void);
void harness_log_clear(void);

/* Fills buffer with bytes derived from seed, so that distinct writes differ. */
void harness_pattern(void *buffer, size_t length, unsigned int seed);
bool harness_is_zero(const void *buffer, size_t length);

#endif
