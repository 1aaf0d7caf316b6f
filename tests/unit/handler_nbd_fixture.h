/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handler_nbd_fixture.h: the core as test_handler_nbd.c plays it for the
 * nbd handler (handler_nbd_fixture.c), and the helpers its tests share.
 */
#ifndef HANDLER_NBD_FIXTURE_H
#define HANDLER_NBD_FIXTURE_H

#include "libtcmu.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define MIB (1024u * 1024u)
#define MAX_WATCHES 8

struct tcmu_device {
	const char *config;
	uint64_t size;
	bool write_cache;
	bool unmap_supported;
	bool write_protected;
	void *private_data;
	int watched_fds[MAX_WATCHES];
	uint32_t watched_events[MAX_WATCHES];
};

struct tcmu_request {
	int completions;
	int result;
	/* A write the core would issue from the completion (a command's next step). */
	struct tcmu_device *next_dev;
	struct tcmu_request *next;
	struct iovec *next_iov;
	/* Completed by tcmu_request_complete_lba_status(), with this answer. */
	bool lba_status;
	bool lba_status_mapped;
	uint64_t lba_status_length;
};

extern char log_text[1 << 16];
extern const struct tcmu_handler *handler;

int64_t now_ms(void);
/* One round of the ring thread's loop: wait up to 100 ms, call fd_ready, batch_done. */
void loop_once(struct tcmu_device *dev);
/* The result of req once the loop completed it; fails after 10 s. */
int wait_request(struct tcmu_device *dev, struct tcmu_request *req, int returned);
/* Two unequal iovecs over buffer, as a ring's data area may give. */
int transfer(struct tcmu_device *dev, bool is_write, uint64_t offset, void *buffer,
	     size_t length, uint32_t flags);
int flush(struct tcmu_device *dev);
/*
 * The handler's query_lba_status, driven as a read is: 0 and the answer,
 * or the -errno; *ret_answered_later: it was not answered within the call.
 */
int lba_status(struct tcmu_device *dev, uint64_t offset, uint64_t length, bool *ret_mapped,
	       uint64_t *ret_length, bool *ret_answered_later);
int unmap(struct tcmu_device *dev, uint64_t offset, uint64_t length);
void fill(void *buffer, size_t length, unsigned int seed);
struct tcmu_device new_device(const char *config, uint64_t size);
void close_device(struct tcmu_device *dev);
int setup(void **state);
/* check_config's answer, with its reason required to contain expected. */
void expect_refused(const char *config, const char *expected);
void expect_accepted(const char *config);
/* The pid nbdkit -P writes, once it has (it may write it after its parent exits). */
pid_t read_pid_file(const char *path);
/* Starts a background nbdkit on a Unix socket in directory; returns its pid. */
pid_t start_nbdkit(const char *directory, const char *arguments);

#endif
