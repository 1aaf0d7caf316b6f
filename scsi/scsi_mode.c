/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_mode.c: MODE SENSE (6)/(10) and MODE SELECT (6)/(10) (SPC-4 6.11,
 * 6.13-6.14, 7.5). Each page is built from the device's state in one of
 * three forms: current, changeable mask, default. MODE SELECT checks a
 * whole parameter list against the changeable masks before applying any
 * of it. There are no saved pages.
 */
#include <string.h>

#include "scsi_internal.h"

enum page_control {
	PAGE_CURRENT = 0,
	PAGE_CHANGEABLE = 1,
	PAGE_DEFAULT = 2,
	PAGE_SAVED = 3,
};

#define PAGE_SPF 0x40	/* sub_page format: 4-byte page header */

/* The two values MODE SELECT may change. */
struct mode_settings {
	bool write_cache;
	bool descriptor_sense;
};

static void read_write_error_recovery(const struct mode_settings *settings, uint8_t *page,
				      enum page_control control)
{
	(void)settings;
	(void)control;
	page[0] = 0x01;
	page[1] = 0x0a;
}

static void caching(const struct mode_settings *settings, uint8_t *page,
		    enum page_control control)
{
	page[0] = 0x08;
	page[1] = 0x12;
	if (control == PAGE_CHANGEABLE)
		page[2] = 0x04;
	else if (settings->write_cache)
		page[2] = 0x04;	/* WCE */
}

static void control(const struct mode_settings *settings, uint8_t *page,
		    enum page_control page_control)
{
	page[0] = 0x0a;
	page[1] = 0x0a;
	if (page_control == PAGE_CHANGEABLE) {
		page[2] = 0x04;
		return;
	}
	if (page_control == PAGE_CURRENT && settings->descriptor_sense)
		page[2] = 0x04;	/* D_SENSE */
	page[3] = 0x10;		/* QUEUE ALGORITHM MODIFIER: unrestricted reordering */
}

static void control_extension(const struct mode_settings *settings, uint8_t *page,
			      enum page_control control)
{
	(void)settings;
	(void)control;
	page[0] = 0x0a | PAGE_SPF;
	page[1] = 0x01;
	scsi_put_be16(page + 2, 0x1c);
}

/* Nothing is monitored, so no informational exception is ever reported. */
static void informational_exceptions(const struct mode_settings *settings, uint8_t *page,
				     enum page_control control)
{
	(void)settings;
	page[0] = 0x1c;
	page[1] = 0x0a;
	if (control != PAGE_CHANGEABLE)
		page[2] = 0x08;	/* DEXCPT */
}

/* Page code order; a page's subpages follow it. */
static const struct mode_page {
	uint8_t code;
	uint8_t subpage;
	uint8_t length;		/* including the header */
	void (*build)(const struct mode_settings *settings, uint8_t *page,
		      enum page_control control);
} mode_pages[] = {
	{ 0x01, 0x00, 12, read_write_error_recovery },
	{ 0x08, 0x00, 20, caching },
	{ 0x0a, 0x00, 12, control },
	{ 0x0a, 0x01, 32, control_extension },
	{ 0x1c, 0x00, 12, informational_exceptions },
};

static struct mode_settings current_settings(const struct tcmu_device *dev)
{
	return (struct mode_settings){
		.write_cache = __atomic_load_n(&dev->write_cache, __ATOMIC_RELAXED),
		.descriptor_sense = __atomic_load_n(&dev->scsi.descriptor_sense,
						    __ATOMIC_RELAXED),
	};
}

static bool page_selected(const struct mode_page *page, uint8_t code, uint8_t subpage)
{
	if (code != 0x3f && code != page->code)
		return false;
	return subpage == 0xff || subpage == page->subpage;
}

static size_t put_block_descriptor(const struct tcmu_device *dev, uint8_t *data, bool long_lba,
				   enum page_control control)
{
	uint64_t blocks = scsi_block_count(dev);

	if (control == PAGE_CHANGEABLE)
		return long_lba ? 16 : 8;
	if (long_lba) {
		scsi_put_be64(data, blocks);
		scsi_put_be32(data + 12, dev->block_size);
		return 16;
	}
	scsi_put_be32(data, blocks > UINT32_MAX ? UINT32_MAX : (uint32_t)blocks);
	data[5] = (uint8_t)(dev->block_size >> 16);
	data[6] = (uint8_t)(dev->block_size >> 8);
	data[7] = (uint8_t)dev->block_size;
	return 8;
}

void scsi_mode_sense(struct tcmu_request *req)
{
	const uint8_t *cdb = req->cdb;
	struct tcmu_device *dev = req->dev;
	const bool ten = cdb[0] == SCSI_OP_MODE_SENSE_10;
	const size_t header_length = ten ? 8 : 4;
	const bool disable_block_descriptors = cdb[1] & 0x08;
	const bool long_lba = ten && (cdb[1] & 0x10);
	const enum page_control control = cdb[2] >> 6;
	const uint8_t code = cdb[2] & 0x3f;
	const uint8_t subpage = cdb[3];
	const size_t allocation_length = ten ? scsi_get_be16(cdb + 7) : cdb[4];
	const struct mode_settings settings = current_settings(dev);
	uint8_t data[512] = { 0 };
	size_t length = header_length;
	bool code_known = false;
	bool any = false;
	uint8_t device_specific;
	struct scsi_outcome outcome;

	if (control == PAGE_SAVED) {
		outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST,
				     SCSI_ASC_SAVING_PARAMETERS_NOT_SUPPORTED);
		goto fail;
	}
	if (!disable_block_descriptors) {
		size_t descriptor_length = put_block_descriptor(dev, data + header_length,
								long_lba, control);

		if (ten) {
			if (long_lba)
				data[4] = 0x01;	/* LONGLBA */
			scsi_put_be16(data + 6, (uint16_t)descriptor_length);
		} else {
			data[3] = (uint8_t)descriptor_length;
		}
		length += descriptor_length;
	}
	for (size_t i = 0; i < ARRAY_SIZE(mode_pages); i++) {
		const struct mode_page *page = &mode_pages[i];

		if (code == 0x3f || code == page->code)
			code_known = true;
		if (!page_selected(page, code, subpage))
			continue;
		page->build(&settings, data + length, control);
		length += page->length;
		any = true;
	}
	if (!any) {
		outcome = code_known ? scsi_invalid_cdb_field(3, 7) : scsi_invalid_cdb_field(2, 5);
		goto fail;
	}
	/* Device-specific parameter (SBC-3 6.4.1): WP, and DPOFUA (DPO and FUA are honoured). */
	device_specific = 0x10;
	if (scsi_write_protected(dev))
		device_specific |= 0x80;
	if (ten) {
		scsi_put_be16(data, (uint16_t)(length - 2));
		data[3] = device_specific;
	} else {
		data[0] = (uint8_t)(length - 1);
		data[2] = device_specific;
	}
	scsi_finish_data_in(req, data, length, allocation_length);
	return;

fail:
	scsi_finish(req, &outcome, 0);
}

/* The rest of the write cache's way off (write_cache.c), once it was flushed. */
static void select_flushed(struct tcmu_request *req, int result)
{
	struct scsi_outcome outcome;

	if (result < 0)
		write_cache_flush_failed(req->dev, result);
	else
		result = write_cache_tell_handler(req->dev, false);
	if (result == 0)
		write_cache_commit(req->dev, false);
	outcome = scsi_outcome_from_errno(result, true);
	scsi_finish(req, &outcome, 0);
}

/*
 * Checks one page of a MODE SELECT parameter list against the changeable
 * mask and records its new values in settings. offset is the page's
 * position in the list, for field pointers.
 */
static bool select_page(const uint8_t *page, size_t available, size_t offset,
			struct mode_settings *settings, struct scsi_outcome *ret_outcome)
{
	const bool subpage_format = page[0] & PAGE_SPF;
	const uint8_t code = page[0] & 0x3f;
	const uint8_t subpage = subpage_format ? page[1] : 0;
	uint8_t current[64] = { 0 };
	uint8_t changeable[64] = { 0 };
	const struct mode_page *known = NULL;
	size_t length;

	if (available < 2 || (subpage_format && available < 4)) {
		*ret_outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST,
					  SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
		return false;
	}
	length = subpage_format ? 4u + scsi_get_be16(page + 2) : 2u + page[1];
	for (size_t i = 0; i < ARRAY_SIZE(mode_pages); i++)
		if (mode_pages[i].code == code && mode_pages[i].subpage == subpage)
			known = &mode_pages[i];
	if (!known || (!subpage_format && known->subpage != 0)) {
		*ret_outcome = scsi_invalid_parameter_field((uint16_t)offset, 5);
		return false;
	}
	if (length != known->length) {
		*ret_outcome = scsi_invalid_parameter_field((uint16_t)(offset + (subpage_format ? 2 : 1)),
							    7);
		return false;
	}
	if (length > available) {
		*ret_outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST,
					  SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
		return false;
	}
	known->build(settings, current, PAGE_CURRENT);
	known->build(settings, changeable, PAGE_CHANGEABLE);
	/*
	 * Byte 0 (PS, reserved in MODE SELECT, SPF and the page code) was
	 * matched above; every other bit must keep its current value unless
	 * the changeable mask allows it.
	 */
	for (size_t i = 1; i < length; i++) {
		uint8_t bad = (page[i] ^ current[i]) & (uint8_t)~changeable[i];

		if (bad) {
			*ret_outcome = scsi_invalid_parameter_field((uint16_t)(offset + i),
								    31 - __builtin_clz(bad));
			return false;
		}
	}
	if (code == 0x08)
		settings->write_cache = page[2] & 0x04;
	else if (code == 0x0a && subpage == 0)
		settings->descriptor_sense = page[2] & 0x04;
	return true;
}

void scsi_mode_select(struct tcmu_request *req)
{
	const uint8_t *cdb = req->cdb;
	struct tcmu_device *dev = req->dev;
	const bool ten = cdb[0] == SCSI_OP_MODE_SELECT_10;
	const size_t header_length = ten ? 8 : 4;
	const size_t list_length = ten ? scsi_get_be16(cdb + 7) : cdb[4];
	const struct mode_settings before = current_settings(dev);
	struct mode_settings settings = before;
	uint8_t list[512] = { 0 };
	struct scsi_outcome outcome;
	size_t descriptor_length;
	size_t offset;
	int result;

	/* Only the page format is defined; nothing can be saved. */
	if (!(cdb[1] & 0x10) && list_length) {
		outcome = scsi_invalid_cdb_field(1, 4);
		goto fail;
	}
	if (cdb[1] & 0x01) {
		outcome = scsi_invalid_cdb_field(1, 0);
		goto fail;
	}
	if (list_length == 0) {
		scsi_finish_good(req);
		return;
	}
	if (list_length > sizeof(list)) {
		outcome = scsi_invalid_cdb_field(ten ? 7 : 4, 7);
		goto fail;
	}
	if (list_length < header_length || req->data_length < list_length) {
		outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST,
				     SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
		goto fail;
	}
	scsi_data_copy_out(req, 0, list, list_length);

	if (list[ten ? 2 : 1] != 0) {	/* medium type */
		outcome = scsi_invalid_parameter_field(ten ? 2 : 1, 7);
		goto fail;
	}
	descriptor_length = ten ? scsi_get_be16(list + 6) : list[3];
	if (descriptor_length) {
		const bool long_lba = ten && (list[4] & 0x01);
		uint8_t expected[16] = { 0 };
		size_t expected_length = put_block_descriptor(dev, expected, long_lba,
							      PAGE_CURRENT);
		const uint8_t *descriptor = list + header_length;

		if (descriptor_length != expected_length) {
			outcome = scsi_invalid_parameter_field(ten ? 6 : 3, 7);
			goto fail;
		}
		if (header_length + descriptor_length > list_length) {
			outcome = scsi_check(SCSI_SENSE_ILLEGAL_REQUEST,
					     SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
			goto fail;
		}
		/*
		 * Neither the capacity nor the block size changes; a zero
		 * block count means "leave it" (SBC-3 6.4.2).
		 */
		for (size_t i = 0; i < expected_length; i++) {
			bool count_byte = long_lba ? i < 8 : i < 4;

			if (descriptor[i] == expected[i])
				continue;
			if (count_byte) {
				bool count_zero = long_lba ? scsi_get_be64(descriptor) == 0
							   : scsi_get_be32(descriptor) == 0;
				if (count_zero)
					continue;
			}
			outcome = scsi_invalid_parameter_field((uint16_t)(header_length + i), 7);
			goto fail;
		}
	}
	for (offset = header_length + descriptor_length; offset < list_length;) {
		const uint8_t *page = list + offset;
		size_t page_length;

		if (!select_page(page, list_length - offset, offset, &settings, &outcome))
			goto fail;
		page_length = (page[0] & PAGE_SPF) ? 4u + scsi_get_be16(page + 2) : 2u + page[1];
		offset += page_length;
	}

	__atomic_store_n(&dev->scsi.descriptor_sense, settings.descriptor_sense,
			 __ATOMIC_RELAXED);
	/*
	 * The write cache changes as RECONFIG changes it (write_cache.c); the
	 * flush is a request, which an asynchronous handler completes later.
	 */
	if (before.write_cache && !settings.write_cache) {
		write_cache_begin(dev, false);
		req->io_done = select_flushed;
		result = dev->handler->flush(dev, req);
		if (result < 0)
			select_flushed(req, result);
		return;
	}
	if (!before.write_cache && settings.write_cache) {
		result = write_cache_tell_handler(dev, true);
		if (result < 0) {
			outcome = scsi_outcome_from_errno(result, true);
			goto fail;
		}
		write_cache_commit(dev, true);
	}
	scsi_finish_good(req);
	return;

fail:
	scsi_finish(req, &outcome, 0);
}
