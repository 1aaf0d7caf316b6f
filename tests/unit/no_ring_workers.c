/* SPDX-License-Identifier: Apache-2.0 */
/*
 * no_ring_workers.c: for the SCSI tests that replace ring.c's
 * ring_complete_request(): no ring worker serves their devices, so an op on
 * another device runs where it is issued (device_io.c), with no batch.
 */
#include "tcmu_internal.h"

bool worker_post(struct tcmu_device *dev, struct worker_task *task)
{
	(void)dev;
	(void)task;
	return false;
}

void ring_batch_begin(struct tcmu_ring *ring)
{
	(void)ring;
}

void ring_batch_end(struct tcmu_ring *ring)
{
	(void)ring;
}
