/* SPDX-License-Identifier: Apache-2.0 */
/*
 * copy_fixture.h: EXTENDED COPY parameter lists, and a second device the
 * daemon serves ("user_2/disk1", handler "other"), for the
 * test_scsi_copy*.c unit tests, over scsi_fixture's device.
 */
#ifndef COPY_FIXTURE_H
#define COPY_FIXTURE_H

#include "scsi_fixture.h"

#define BLOCK 512
#define OTHER_SIZE (256 * 1024)

struct segment {
	uint16_t source, destination;
	uint16_t blocks;
	uint64_t source_lba, destination_lba;
};

/* A second device with a handler of its own that completes at once. */
struct other_device {
	struct tcmu_device dev;
	struct tcmu_handler handler;
	uint8_t medium[OTHER_SIZE];
	unsigned int reads, writes;
	/* Called by each read of the other device before it completes, if set. */
	void (*on_read)(void);
};

extern struct other_device other;

/* An EXTENDED COPY parameter list: cscd_count copies of cscd, then the segments. */
size_t copy_list(uint8_t *list, const uint8_t *cscd, size_t cscd_count,
		 const struct segment *segments, size_t segment_count);
/* This logical unit's identification CSCD descriptor, as VPD page 83h names it. */
void own_cscd(uint8_t *cscd);
void extended_copy(uint8_t *list, size_t length);
void assert_copy_aborted(uint16_t asc_ascq);
/*
 * COPY ABORTED in segment number segment (COMMAND-SPECIFIC INFORMATION),
 * with a segment pointer to field (bit, or -1) from the start of the
 * segment descriptor (in_segment) or of the list; field -1: no pointer.
 */
void assert_segment_error(uint16_t asc_ascq, uint16_t segment, bool in_segment, int field,
			  int bit);

/* Lists the other device with this block size. */
void other_attach(uint32_t block_size);
/* fake_setup() and the other device with 512-byte blocks. */
int other_setup(void **state);
int other_teardown(void **state);
/* Sets the xcopy_groups: one, or two when second is not NULL. */
void allow_groups(const char *first, const char *second);
/* The other device's identification CSCD descriptor, with its block length. */
void other_cscd(uint8_t *cscd, uint32_t block_length);
/* A list of two CSCDs, 0 this device and 1 the other one, and the segments. */
size_t two_device_list(uint8_t *list, const struct segment *segments, size_t count,
		       uint32_t other_block_length);

#endif
