/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_inquiry.c: INQUIRY standard data and the vital product data pages
 * (SPC-4 6.6, 7.8; SBC-3 6.5).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_internal.h"

#define INQUIRY_VENDOR		"LIO-ORG"
#define INQUIRY_PRODUCT		"TCMU device"
#define INQUIRY_REVISION	"0002"
/* The IEEE company id LIO uses for its NAA designators. */
#define LIO_OUI			0x001405u

#define DIRECT_ACCESS_DEVICE	0x00
/* The longest unit serial number: LIO's, and what page 80h holds in 255 bytes. */
#define SCSI_UNIT_SERIAL_MAX_LENGTH	254

/* Space-padded ASCII field (SPC-4 4.4.1). */
static void put_ascii(uint8_t *field, size_t width, const char *text)
{
	size_t length = strlen(text);

	memset(field, ' ', width);
	memcpy(field, text, length < width ? length : width);
}

static void standard_inquiry(struct tcmu_request *req, uint16_t allocation_length)
{
	uint8_t data[96] = { 0 };

	data[0] = DIRECT_ACCESS_DEVICE;
	data[2] = 0x06;			/* SPC-4 */
	data[3] = 0x10 | 0x02;		/* HISUP, response data format 2 */
	data[4] = sizeof(data) - 5;
	data[5] = 0x08 | scsi_alua_tpgs(req->dev);	/* 3PC: EXTENDED COPY; TPGS */
	data[7] = 0x02;			/* CMDQUE */
	put_ascii(data + 8, 8, INQUIRY_VENDOR);
	put_ascii(data + 16, 16, INQUIRY_PRODUCT);
	put_ascii(data + 32, 4, INQUIRY_REVISION);
	/* Version descriptors: SAM-5, SPC-4, SBC-3. */
	scsi_put_be16(data + 58, 0x00a0);
	scsi_put_be16(data + 60, 0x0460);
	scsi_put_be16(data + 62, 0x04c0);
	scsi_finish_data_in(req, data, sizeof(data), allocation_length);
}

/* The identifier designators are built from: the WWN, or the name. */
static const char *device_identifier(const struct tcmu_device *dev)
{
	if (dev->unit_serial && dev->unit_serial[0])
		return dev->unit_serial;
	return dev->name ? dev->name : "";
}

/*
 * The hex digits the NAA designator carries: the WWN's, which is a UUID
 * when targetcli made it. Without a WWN, a hash of the backstore path
 * (unique among the kernel's TCMU devices) stands in, so that two devices
 * never share a designator.
 */
static const char *naa_digits(const struct tcmu_device *dev, char hash_digits[17])
{
	const char *source = dev->backstore ? dev->backstore : device_identifier(dev);
	uint64_t hash = 0xcbf29ce484222325ull;	/* FNV-1a */

	if (dev->unit_serial && dev->unit_serial[0])
		return dev->unit_serial;
	for (const char *p = source; *p; p++)
		hash = (hash ^ (uint8_t)*p) * 0x100000001b3ull;
	snprintf(hash_digits, 17, "%016llx", (unsigned long long)hash);
	return hash_digits;
}

static size_t page_supported(const struct tcmu_device *dev, uint8_t *page);
static size_t page_unit_serial(const struct tcmu_device *dev, uint8_t *page);
static size_t page_device_identification(const struct tcmu_device *dev, uint8_t *page);
static size_t page_extended_inquiry(const struct tcmu_device *dev, uint8_t *page);
static size_t page_third_party_copy(const struct tcmu_device *dev, uint8_t *page);
static size_t page_block_limits(const struct tcmu_device *dev, uint8_t *page);
static size_t page_block_characteristics(const struct tcmu_device *dev, uint8_t *page);
static size_t page_provisioning(const struct tcmu_device *dev, uint8_t *page);

/* Ascending page code order, as page 00h lists them. */
static const struct vpd_page {
	uint8_t code;
	/* Fills page (zeroed, 512 bytes) from byte 4; returns the page length field. */
	size_t (*build)(const struct tcmu_device *dev, uint8_t *page);
} vpd_pages[] = {
	{ 0x00, page_supported },
	{ 0x80, page_unit_serial },
	{ 0x83, page_device_identification },
	{ 0x86, page_extended_inquiry },
	{ 0x8f, page_third_party_copy },
	{ 0xb0, page_block_limits },
	{ 0xb1, page_block_characteristics },
	{ 0xb2, page_provisioning },
};

static size_t page_supported(const struct tcmu_device *dev, uint8_t *page)
{
	(void)dev;
	for (size_t i = 0; i < ARRAY_SIZE(vpd_pages); i++)
		page[4 + i] = vpd_pages[i].code;
	return ARRAY_SIZE(vpd_pages);
}

/*
 * A serial the storage gives (tcmu_device_set_unit_serial): what VPD page
 * 80h can carry, printable ASCII (SPC-4 7.8.15), without the spaces that
 * pad fields at either end, which initiators strip.
 */
int scsi_set_unit_serial(struct tcmu_device *dev, const char *serial)
{
	size_t length = serial ? strlen(serial) : 0;
	char *copy;

	if (dev->handler_open) {
		tcmu_dev_err(dev, "the unit serial number can only be set in open()");
		return -EINVAL;
	}
	if (length == 0 || length > SCSI_UNIT_SERIAL_MAX_LENGTH || serial[0] == ' ' ||
	    serial[length - 1] == ' ') {
		tcmu_dev_err(dev, "unit serial number '%s': 1 to %d characters without a space "
			     "at either end", serial ? serial : "", SCSI_UNIT_SERIAL_MAX_LENGTH);
		return -EINVAL;
	}
	for (size_t i = 0; i < length; i++) {
		if ((unsigned char)serial[i] < 0x20 || (unsigned char)serial[i] > 0x7e) {
			tcmu_dev_err(dev, "unit serial number: byte %zu is not printable ASCII", i);
			return -EINVAL;
		}
	}
	copy = strdup(serial);
	if (!copy)
		return -ENOMEM;
	if (dev->unit_serial && dev->unit_serial[0] && strcmp(dev->unit_serial, serial) != 0)
		tcmu_dev_info(dev, "unit serial number '%s' from the storage, not configfs's '%s'",
			      serial, dev->unit_serial);
	free(dev->unit_serial);
	dev->unit_serial = copy;
	return 0;
}

static size_t page_unit_serial(const struct tcmu_device *dev, uint8_t *page)
{
	size_t length = dev->unit_serial ? strlen(dev->unit_serial) : 0;

	if (length > SCSI_UNIT_SERIAL_MAX_LENGTH)
		length = SCSI_UNIT_SERIAL_MAX_LENGTH;
	if (length)
		memcpy(page + 4, dev->unit_serial, length);
	return length;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * NAA IEEE Registered Extended (type 6): the OUI, then the identifier's
 * hex digits as the 100-bit vendor specific part (LIO's convention, so
 * the same WWN yields the same designator as a kernel backstore).
 */
static void put_naa(uint8_t *designator, const char *identifier)
{
	unsigned int nibble = 7;

	designator[0] = 0x60 | (uint8_t)((LIO_OUI >> 20) & 0x0f);
	designator[1] = (uint8_t)(LIO_OUI >> 12);
	designator[2] = (uint8_t)(LIO_OUI >> 4);
	designator[3] = (uint8_t)((LIO_OUI & 0x0f) << 4);
	for (const char *p = identifier; *p && nibble < 32; p++) {
		int value = hex_value(*p);

		if (value < 0)
			continue;
		if (nibble % 2)
			designator[nibble / 2] |= (uint8_t)value;
		else
			designator[nibble / 2] |= (uint8_t)(value << 4);
		nibble++;
	}
}

void scsi_naa_designator(const struct tcmu_device *dev, uint8_t designator[16])
{
	char hash_digits[17];

	memset(designator, 0, 16);
	put_naa(designator, naa_digits(dev, hash_digits));
}

static size_t page_device_identification(const struct tcmu_device *dev, uint8_t *page)
{
	const char *identifier = device_identifier(dev);
	size_t identifier_length = strlen(identifier);
	uint8_t *descriptor = page + 4;

	/* NAA, binary, associated with the logical unit. */
	descriptor[0] = 0x01;
	descriptor[1] = 0x03;
	descriptor[3] = 16;
	scsi_naa_designator(dev, descriptor + 4);
	descriptor += 4 + 16;

	/* T10 vendor id, ASCII: the vendor, then the identifier. */
	if (identifier_length > 200)
		identifier_length = 200;
	descriptor[0] = 0x02;
	descriptor[1] = 0x01;
	descriptor[3] = (uint8_t)(8 + identifier_length);
	put_ascii(descriptor + 4, 8, INQUIRY_VENDOR);
	memcpy(descriptor + 12, identifier, identifier_length);
	descriptor += 12 + identifier_length;
	descriptor += scsi_alua_designators(dev, descriptor);

	return (size_t)(descriptor - (page + 4));
}

static size_t page_extended_inquiry(const struct tcmu_device *dev, uint8_t *page)
{
	(void)dev;
	page[5] = 0x07;		/* HEADSUP, ORDSUP, SIMPSUP: LIO orders tasks */
	page[6] = 0x01;		/* V_SUP: there is a volatile cache */
	return 0x3c;
}

/*
 * SPC-4 7.8.17: the copy manager of scsi_copy.c, described by the
 * mandatory descriptors and those EXTENDED COPY(LID1) requires, in
 * ascending type order, each padded to a multiple of 4 bytes.
 */
static size_t page_third_party_copy(const struct tcmu_device *dev, uint8_t *page)
{
	static const uint8_t commands[] = {
		0x83, 1, 0x00,		/* EXTENDED COPY(LID1) */
		0x84, 2, 0x00, 0x03,	/* RECEIVE COPY STATUS(LID1), OPERATING PARAMETERS */
	};
	static const uint8_t descriptors[] = {
		SCSI_COPY_SEGMENT_BLOCK_TO_BLOCK, SCSI_COPY_CSCD_IDENTIFICATION,
	};
	unsigned int granularity = 0;
	uint8_t *descriptor = page + 4;

	/* Supported Commands */
	scsi_put_be16(descriptor, 0x0001);
	scsi_put_be16(descriptor + 2, 8);
	descriptor[4] = sizeof(commands);
	memcpy(descriptor + 5, commands, sizeof(commands));
	descriptor += 12;	/* 5 + 7 bytes: no pad needed */

	/* Parameter Data */
	scsi_put_be16(descriptor, 0x0004);
	scsi_put_be16(descriptor + 2, 0x1c);
	scsi_put_be16(descriptor + 8, SCSI_COPY_MAX_CSCD_DESCRIPTORS);
	scsi_put_be16(descriptor + 10, SCSI_COPY_MAX_SEGMENT_DESCRIPTORS);
	scsi_put_be32(descriptor + 12, SCSI_COPY_MAX_LIST_LENGTH);
	descriptor += 32;

	/* Supported Descriptors */
	scsi_put_be16(descriptor, 0x0008);
	scsi_put_be16(descriptor + 2, 4);
	descriptor[4] = sizeof(descriptors);
	memcpy(descriptor + 5, descriptors, sizeof(descriptors));
	descriptor += 8;

	/* Supported CSCD IDs: none beyond 0 .. maximum count - 1 */
	scsi_put_be16(descriptor, 0x000c);
	scsi_put_be16(descriptor + 2, 4);
	descriptor += 8;

	/* General Copy Operations */
	while ((2u << granularity) <= dev->block_size)
		granularity++;
	scsi_put_be16(descriptor, 0x8001);
	scsi_put_be16(descriptor + 2, 0x20);
	scsi_put_be32(descriptor + 4, 1);
	scsi_put_be32(descriptor + 8, 1);
	scsi_put_be32(descriptor + 12, SCSI_COPY_MAX_SEGMENT_BYTES(dev->block_size));
	descriptor[16] = (uint8_t)granularity;
	descriptor += 36;

	return (size_t)(descriptor - (page + 4));
}

static size_t page_block_limits(const struct tcmu_device *dev, uint8_t *page)
{
	page[4] = 0x01;		/* WSNZ: WRITE SAME needs a block count */
	page[5] = (uint8_t)scsi_max_compare_and_write_blocks(dev);
	scsi_put_be32(page + 8, scsi_max_transfer_blocks(dev));
	if (scsi_has_unmap(dev)) {
		scsi_put_be32(page + 20, scsi_max_unmap_blocks(dev));
		scsi_put_be32(page + 24, SCSI_MAX_UNMAP_DESCRIPTORS);
	}
	scsi_put_be64(page + 36, scsi_max_write_same_blocks(dev));
	return 0x3c;
}

static size_t page_block_characteristics(const struct tcmu_device *dev, uint8_t *page)
{
	/* Rotation rate 1: non-rotating. Otherwise 0, not reported. */
	if (dev->handler && (dev->handler->flags & TCMU_HANDLER_NON_ROTATING))
		scsi_put_be16(page + 4, 0x0001);
	return 0x3c;
}

static size_t page_provisioning(const struct tcmu_device *dev, uint8_t *page)
{
	/*
	 * UNMAP and WRITE SAME (10)/(16) with UNMAP deallocate; unmapped
	 * blocks read as zeros (the handler contract), so LBPRZ.
	 */
	if (scsi_has_unmap(dev)) {
		page[5] = 0x80 | 0x40 | 0x20 | 0x04;	/* LBPU, LBPWS, LBPWS10, LBPRZ */
		page[6] = 0x02;				/* thin provisioned */
	}
	return 4;
}

void scsi_inquiry(struct tcmu_request *req)
{
	const uint8_t *cdb = req->cdb;
	uint16_t allocation_length = scsi_get_be16(cdb + 3);
	uint8_t page[512] = { 0 };
	struct scsi_outcome outcome;

	if (!(cdb[1] & 0x01)) {
		if (cdb[2] != 0) {
			outcome = scsi_invalid_cdb_field(2, 7);
			scsi_finish(req, &outcome, 0);
			return;
		}
		standard_inquiry(req, allocation_length);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(vpd_pages); i++) {
		size_t length;

		if (vpd_pages[i].code != cdb[2])
			continue;
		length = vpd_pages[i].build(req->dev, page);
		page[0] = DIRECT_ACCESS_DEVICE;
		page[1] = cdb[2];
		scsi_put_be16(page + 2, (uint16_t)length);
		scsi_finish_data_in(req, page, 4 + length, allocation_length);
		return;
	}
	outcome = scsi_invalid_cdb_field(2, 7);
	scsi_finish(req, &outcome, 0);
}
