/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_limits.c: what one command may ask of a device (blocks per
 * transfer, per COMPARE AND WRITE, WRITE SAME and UNMAP), which the Block
 * Limits VPD page reports and the commands enforce.
 */
#include "scsi_internal.h"

uint64_t scsi_block_count(const struct tcmu_device *dev)
{
	return dev->block_size ? dev->size / dev->block_size : 0;
}

/*
 * What bounds one command is the ring's data area, which must hold all of
 * its data: the kernel does not enforce hw_max_sectors for TCMU, and its
 * default (128) is far below what the ring carries. Half the data area
 * leaves room for a second command while one of the largest is in flight.
 */
uint32_t scsi_max_transfer_blocks(const struct tcmu_device *dev)
{
	uint64_t data_area = ring_data_area_size(&dev->ring), blocks;

	if (!data_area || !dev->block_size)
		return dev->max_sectors;
	blocks = data_area / 2 / dev->block_size;
	if (blocks < dev->max_sectors)
		blocks = dev->max_sectors;
	return blocks > UINT32_MAX ? UINT32_MAX : (uint32_t)blocks;
}

bool scsi_has_unmap(const struct tcmu_device *dev)
{
	return dev->handler && dev->handler->unmap &&
	       !__atomic_load_n(&dev->unmap_unsupported, __ATOMIC_RELAXED);
}

/*
 * What one command may ask of the handler, in bytes. Unmap stays at 1M
 * blocks of 512 bytes: hosts take larger explicit limits for garbage.
 * WRITE SAME writes all of it when it cannot deallocate: 128 MiB keeps
 * that within seconds even on a slow medium, far from the initiator's
 * command timeout (Linux sd splits write-zeroes at this length).
 */
#define MAX_UNMAP_BYTES		(1ull << 29)
#define MAX_WRITE_SAME_BYTES	(1ull << 27)

uint32_t scsi_max_compare_and_write_blocks(const struct tcmu_device *dev)
{
	/* The data-out holds twice the blocks; the CDB field is one byte. */
	uint32_t max_transfer = scsi_max_transfer_blocks(dev);
	uint32_t blocks = max_transfer ? max_transfer / 2 : 255;

	if (blocks > 255)
		blocks = 255;
	return blocks ? blocks : 1;
}

uint64_t scsi_max_write_same_blocks(const struct tcmu_device *dev)
{
	return dev->block_size ? MAX_WRITE_SAME_BYTES / dev->block_size : 0;
}

uint32_t scsi_max_unmap_blocks(const struct tcmu_device *dev)
{
	return dev->block_size ? (uint32_t)(MAX_UNMAP_BYTES / dev->block_size) : 0;
}
