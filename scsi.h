/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi.h: the SCSI layer (api.c and scsi_*.c). It turns one request's CDB
 * into either an emulated answer or handler I/O, and always ends in exactly
 * one ring_complete_request().
 */
#ifndef TCMU_SCSI_H
#define TCMU_SCSI_H

#include <stdbool.h>
#include <stdint.h>

struct tcmu_device;
struct tcmu_request;

/* Per-device SCSI state, embedded in struct tcmu_device. */
struct scsi_device_state {
	bool capacity_changed;		/* report CAPACITY DATA HAS CHANGED once */
};

/* Executes one command taken from the ring. */
void scsi_execute(struct tcmu_request *req);

#endif
