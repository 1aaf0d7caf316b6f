/* SPDX-License-Identifier: Apache-2.0 */
/*
 * copy_fixture.c: EXTENDED COPY parameter lists, and a second device the
 * daemon serves, for the test_scsi_copy*.c unit tests.
 */
#include <string.h>

#include "copy_fixture.h"

/* An EXTENDED COPY parameter list: cscd_count copies of cscd, then the segments. */
size_t copy_list(uint8_t *list, const uint8_t *cscd, size_t cscd_count,
			const struct segment *segments, size_t segment_count)
{
	size_t length = 16;

	memset(list, 0, 16);
	scsi_put_be16(list + 2, (uint16_t)(32 * cscd_count));
	scsi_put_be32(list + 8, (uint32_t)(28 * segment_count));
	for (size_t i = 0; i < cscd_count; i++, length += 32)
		memcpy(list + length, cscd, 32);
	for (size_t i = 0; i < segment_count; i++, length += 28) {
		uint8_t *descriptor = list + length;

		memset(descriptor, 0, 28);
		descriptor[0] = 0x02;
		scsi_put_be16(descriptor + 2, 0x18);
		scsi_put_be16(descriptor + 4, segments[i].source);
		scsi_put_be16(descriptor + 6, segments[i].destination);
		scsi_put_be16(descriptor + 10, segments[i].blocks);
		scsi_put_be64(descriptor + 12, segments[i].source_lba);
		scsi_put_be64(descriptor + 20, segments[i].destination_lba);
	}
	return length;
}

/* This logical unit's identification CSCD descriptor, as VPD page 83h names it. */
void own_cscd(uint8_t *cscd)
{
	uint8_t inquiry[6] = { 0x12, 0x01, 0x83, 0, 255, 0 };
	uint8_t page[255];

	EXECUTE(inquiry, page, sizeof(page));
	assert_good();
	memset(cscd, 0, 32);
	cscd[0] = 0xe4;
	memcpy(cscd + 4, page + 4, 20);	/* the NAA designation descriptor */
	cscd[30] = BLOCK >> 8;
}

void assert_copy_aborted(uint16_t asc_ascq)
{
	assert_check(SCSI_SENSE_COPY_ABORTED, asc_ascq);
}

void extended_copy(uint8_t *list, size_t length)
{
	uint8_t cdb[16] = { 0x83, 0x00 };

	scsi_put_be32(cdb + 10, (uint32_t)length);
	EXECUTE(cdb, list, length);
}

/*
 * A second device the daemon serves, "user_2/disk1", with a handler of
 * its own that completes at once; its block size varies by test.
 */
struct other_device other;

static int other_read(struct tcmu_device *dev, struct tcmu_request *req,
		      const struct iovec *iov, size_t iov_count, uint64_t offset, uint64_t length)
{
	assert_ptr_equal(dev, &other.dev);
	assert_int_equal(iov_count, 1);
	assert_int_equal(iov[0].iov_len, length);
	assert_true(offset % dev->block_size == 0 && offset + length <= dev->size);
	memcpy(iov[0].iov_base, other.medium + offset, length);
	other.reads++;
	if (other.on_read)
		other.on_read();
	tcmu_request_complete(req, 0);
	return 0;
}

static int other_write(struct tcmu_device *dev, struct tcmu_request *req,
		       const struct iovec *iov, size_t iov_count, uint64_t offset,
		       uint64_t length, uint32_t flags)
{
	assert_ptr_equal(dev, &other.dev);
	assert_int_equal(iov_count, 1);
	assert_int_equal(iov[0].iov_len, length);
	assert_true(offset % dev->block_size == 0 && offset + length <= dev->size);
	/* Its write cache is off: every write must be durable. */
	assert_int_equal(flags, TCMU_WRITE_FUA);
	memcpy(other.medium + offset, iov[0].iov_base, length);
	other.writes++;
	tcmu_request_complete(req, 0);
	return 0;
}

void other_attach(uint32_t block_size)
{
	memset(&other, 0, sizeof(other));
	other.handler.subtype = "other";
	other.handler.read = other_read;
	other.handler.write = other_write;
	other.dev.name = "disk1";
	other.dev.backstore = "user_2/disk1";
	other.dev.unit_serial = "99887766-5544-3322-1100-ffeeddccbbaa";
	other.dev.handler = &other.handler;
	other.dev.size = OTHER_SIZE;
	other.dev.block_size = block_size;
	scsi_device_init(&other.dev);
	device_list_add(&other.dev);
}

int other_setup(void **state)
{
	fake_setup(state);
	other_attach(BLOCK);
	return 0;
}

int other_teardown(void **state)
{
	/* Off the list first: a failed check must not leave it there for the next test. */
	device_list_remove(&other.dev);
	assert_int_equal(other.dev.references, 0);
	assert_int_equal(other.dev.scsi.writes_in_flight, 0);
	assert_false(other.dev.scsi.exclusive_in_flight);
	assert_int_equal(fake.dev.scsi.writes_in_flight, 0);
	scsi_device_destroy(&other.dev);
	copy_groups_set(NULL, 0);
	return fake_teardown(state);
}

void allow_groups(const char *first, const char *second)
{
	char *groups[2] = { (char *)first, (char *)second };

	assert_int_equal(copy_groups_set(groups, second ? 2 : 1), 0);
}

/* The other device's identification CSCD descriptor, with its block length. */
void other_cscd(uint8_t *cscd, uint32_t block_length)
{
	memset(cscd, 0, 32);
	cscd[0] = 0xe4;
	cscd[4] = 0x01;		/* binary */
	cscd[5] = 0x03;		/* logical unit, NAA */
	cscd[7] = 16;
	scsi_naa_designator(&other.dev, cscd + 8);
	cscd[29] = (uint8_t)(block_length >> 16);
	cscd[30] = (uint8_t)(block_length >> 8);
	cscd[31] = (uint8_t)block_length;
}

/* A list of two CSCDs, 0 this device and 1 the other one, and the segments. */
size_t two_device_list(uint8_t *list, const struct segment *segments, size_t count,
			      uint32_t other_block_length)
{
	uint8_t own[32], theirs[32];
	size_t length;

	own_cscd(own);
	other_cscd(theirs, other_block_length);
	length = copy_list(list, own, 2, segments, count);
	memcpy(list + 16 + 32, theirs, 32);
	return length;
}


void assert_segment_error(uint16_t asc_ascq, uint16_t segment, bool in_segment, int field,
			  int bit)
{
	const uint8_t *sense = fake.completion.sense;
	uint8_t expected = 0x80 | (in_segment ? 0x20 : 0);

	assert_copy_aborted(asc_ascq);
	assert_int_equal(scsi_get_be32(sense + 8), segment);
	if (field < 0) {
		assert_int_equal(sense[15], 0);
		return;
	}
	if (bit >= 0)
		expected |= 0x08 | (uint8_t)bit;
	assert_int_equal(sense[15], expected);
	assert_int_equal(scsi_get_be16(sense + 16), field);
}
