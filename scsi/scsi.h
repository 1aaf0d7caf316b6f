/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi.h: the SCSI layer (api.c and scsi_*.c). It turns one request's CDB
 * into either an emulated answer or handler I/O, and always ends in exactly
 * one ring_complete_request().
 *
 * This is what the rest of the daemon uses: the per-device state that
 * struct tcmu_device embeds, the entry points, and the command table with
 * its implementations for api.c. What only scsi_*.c share (outcomes and
 * sense, data copies, the write gate, multi-step commands) is in
 * scsi_internal.h.
 */
#ifndef TCMU_SCSI_H
#define TCMU_SCSI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct tcmu_device;
struct tcmu_request;

/* A request queued at a device's write gate (scsi_gate.c). */
struct scsi_gate_waiter {
	struct scsi_gate_waiter *next;
	struct tcmu_request *req;
	bool exclusive;
	/* Runs once the request holds the gate. */
	void (*proceed)(struct tcmu_request *req);
};

/* Per-device SCSI state, embedded in struct tcmu_device. */
struct scsi_device_state {
	bool capacity_changed;		/* report CAPACITY DATA HAS CHANGED once */
	bool stopped;			/* START STOP UNIT with START=0 */
	bool descriptor_sense;		/* control mode page D_SENSE */
	bool write_protected;		/* tcmu_device_set_write_protected() */

	/*
	 * COMPARE AND WRITE must be atomic against every other write: the
	 * gate lets writes run together, and a compare-and-write alone.
	 * Requests that must wait are queued through their gate_waiter.
	 */
	pthread_mutex_t gate_lock;
	uint32_t writes_in_flight;
	bool exclusive_in_flight;
	struct scsi_gate_waiter *gate_waiting_head;
	struct scsi_gate_waiter *gate_waiting_tail;

	/*
	 * How the last EXTENDED COPY commands with a list identifier ended,
	 * for RECEIVE COPY RESULTS (COPY STATUS); under gate_lock. The ring
	 * does not tell initiators apart, so identifiers are per device.
	 */
	struct scsi_copy_status {
		bool valid;
		uint8_t list_identifier;
		uint8_t status;		/* COPY MANAGER STATUS */
		uint16_t segments;
		uint64_t bytes;
	} copy_statuses[4];
	unsigned int copy_status_next;

	/* Asymmetric access (scsi_alua.c): this daemon's group, 0 without. */
	uint16_t port_group;
	uint8_t port_state;		/* enum tcmu_port_state, atomic */
	bool port_state_changed;	/* report ASYMMETRIC ACCESS STATE CHANGED once */
};

/*
 * Sets up and tears down dev->scsi. A zero-filled state is also valid,
 * so calling scsi_device_init on a calloc'd device is optional on glibc;
 * call both anyway.
 */
void scsi_device_init(struct tcmu_device *dev);
void scsi_device_destroy(struct tcmu_device *dev);

/* Executes one command taken from the ring. */
void scsi_execute(struct tcmu_request *req);
/*
 * A CDB's length from its opcode's group code (SAM-5 5.2), or from byte 7
 * of a variable-length CDB when the available bytes hold it: may exceed
 * available, which the caller checks.
 */
uint32_t scsi_cdb_length(const uint8_t *cdb, size_t available);
/*
 * Completes a command the ring could not take apart with HARDWARE ERROR,
 * INTERNAL TARGET FAILURE, in the device's sense format.
 */
void scsi_finish_internal_failure(struct tcmu_request *req);

/* tcmu_device_set_write_protected() of libtcmu.c. */
void scsi_set_write_protected(struct tcmu_device *dev, bool write_protected);
/* tcmu_device_set_unit_serial() of libtcmu.c: 0, -EINVAL or -ENOMEM. */
int scsi_set_unit_serial(struct tcmu_device *dev, const char *serial);

/* SPC-4 and SBC-3 operation codes (CDB byte 0). */
enum scsi_opcode {
	SCSI_OP_TEST_UNIT_READY = 0x00,
	SCSI_OP_REQUEST_SENSE = 0x03,
	SCSI_OP_FORMAT_UNIT = 0x04,
	SCSI_OP_READ_6 = 0x08,
	SCSI_OP_WRITE_6 = 0x0a,
	SCSI_OP_INQUIRY = 0x12,
	SCSI_OP_MODE_SELECT_6 = 0x15,
	SCSI_OP_MODE_SENSE_6 = 0x1a,
	SCSI_OP_START_STOP_UNIT = 0x1b,
	SCSI_OP_SEND_DIAGNOSTIC = 0x1d,
	SCSI_OP_READ_CAPACITY_10 = 0x25,
	SCSI_OP_READ_10 = 0x28,
	SCSI_OP_WRITE_10 = 0x2a,
	SCSI_OP_WRITE_AND_VERIFY_10 = 0x2e,
	SCSI_OP_VERIFY_10 = 0x2f,
	SCSI_OP_PRE_FETCH_10 = 0x34,
	SCSI_OP_SYNCHRONIZE_CACHE_10 = 0x35,
	SCSI_OP_WRITE_SAME_10 = 0x41,
	SCSI_OP_UNMAP = 0x42,
	SCSI_OP_MODE_SELECT_10 = 0x55,
	SCSI_OP_MODE_SENSE_10 = 0x5a,
	SCSI_OP_VARIABLE_LENGTH = 0x7f,
	SCSI_OP_EXTENDED_COPY = 0x83,
	SCSI_OP_RECEIVE_COPY_RESULTS = 0x84,
	SCSI_OP_READ_16 = 0x88,
	SCSI_OP_COMPARE_AND_WRITE = 0x89,
	SCSI_OP_WRITE_16 = 0x8a,
	SCSI_OP_WRITE_AND_VERIFY_16 = 0x8e,
	SCSI_OP_VERIFY_16 = 0x8f,
	SCSI_OP_PRE_FETCH_16 = 0x90,
	SCSI_OP_SYNCHRONIZE_CACHE_16 = 0x91,
	SCSI_OP_WRITE_SAME_16 = 0x93,
	SCSI_OP_SERVICE_ACTION_IN_16 = 0x9e,
	SCSI_OP_REPORT_LUNS = 0xa0,
	SCSI_OP_MAINTENANCE_IN = 0xa3,
	SCSI_OP_MAINTENANCE_OUT = 0xa4,
	SCSI_OP_READ_12 = 0xa8,
	SCSI_OP_WRITE_12 = 0xaa,
	SCSI_OP_WRITE_AND_VERIFY_12 = 0xae,
	SCSI_OP_VERIFY_12 = 0xaf,
};

/* Service actions (CDB byte 1, bits 4-0), by the opcode they go with. */
enum scsi_service_action {
	SCSI_SA_EXTENDED_COPY_LID1 = 0x00,	/* SCSI_OP_EXTENDED_COPY */
	SCSI_SA_COPY_STATUS_LID1 = 0x00,	/* SCSI_OP_RECEIVE_COPY_RESULTS */
	SCSI_SA_OPERATING_PARAMETERS = 0x03,	/* SCSI_OP_RECEIVE_COPY_RESULTS */
	SCSI_SA_READ_CAPACITY_16 = 0x10,	/* SCSI_OP_SERVICE_ACTION_IN_16 */
	SCSI_SA_GET_LBA_STATUS = 0x12,	/* SCSI_OP_SERVICE_ACTION_IN_16 */
	SCSI_SA_REPORT_SUPPORTED_OPERATION_CODES = 0x0c,	/* SCSI_OP_MAINTENANCE_IN */
	SCSI_SA_REPORT_TARGET_PORT_GROUPS = 0x0a,	/* SCSI_OP_MAINTENANCE_IN */
	SCSI_SA_SET_TARGET_PORT_GROUPS = 0x0a,	/* SCSI_OP_MAINTENANCE_OUT */
};

#define SCSI_SENSE_BUFFER_SIZE 96	/* TCMU_SENSE_BUFFERSIZE */

/* SAM-5 status codes. */
enum scsi_status {
	SCSI_STATUS_GOOD = 0x00,
	SCSI_STATUS_CHECK_CONDITION = 0x02,
	SCSI_STATUS_CONDITION_MET = 0x04,
	SCSI_STATUS_BUSY = 0x08,
	SCSI_STATUS_RESERVATION_CONFLICT = 0x18,
	SCSI_STATUS_TASK_SET_FULL = 0x28,
};

/* One command the device server implements: drives dispatch and RSOC. */
struct scsi_command {
	uint8_t opcode;
	bool has_service_action;	/* in CDB byte 1, bits 4-0 */
	uint8_t service_action;
	uint8_t cdb_length;
	/*
	 * The CDB usage data of REPORT SUPPORTED OPERATION CODES: byte 0 the
	 * opcode, the service action in its field, and every other bit set
	 * when the device server looks at it. Bits outside it are rejected
	 * with INVALID FIELD IN CDB before execute runs.
	 */
	uint8_t usage[16];
	uint32_t flags;
	void (*execute)(struct tcmu_request *req);
	/* NULL when always there; false hides the command (e.g. no unmap). */
	bool (*available)(const struct tcmu_device *dev);
	uint32_t nominal_timeout_seconds;	/* 0: not reported */
};

/* Needs the medium: NOT READY while the unit is stopped. */
#define SCSI_COMMAND_MEDIUM_ACCESS		(1u << 0)
/* Changes the medium: passes the write gate; scsi_gate_leave() before completing. */
#define SCSI_COMMAND_WRITES			(1u << 1)
/* Holds the write gate alone (COMPARE AND WRITE). */
#define SCSI_COMMAND_EXCLUSIVE			(1u << 2)
/* Answered by the kernel (REPORT LUNS): listed by RSOC, never executed here. */
#define SCSI_COMMAND_KERNEL			(1u << 3)
/*
 * Changes this device's medium: DATA PROTECT while it is write-protected.
 * (EXTENDED COPY writes whichever device its segments name: scsi_copy.c
 * checks each destination.)
 */
#define SCSI_COMMAND_CHANGES_MEDIUM		(1u << 4)

extern const struct scsi_command scsi_commands[];
extern const size_t scsi_command_count;

/* Whether the device has UNMAP and thin provisioning: a command's availability. */
bool scsi_has_unmap(const struct tcmu_device *dev);

/* Command implementations, by file. */
/* scsi_unit.c */
void scsi_test_unit_ready(struct tcmu_request *req);
void scsi_start_stop_unit(struct tcmu_request *req);
void scsi_read_capacity_10(struct tcmu_request *req);
void scsi_read_capacity_16(struct tcmu_request *req);
void scsi_request_sense(struct tcmu_request *req);
void scsi_format_unit(struct tcmu_request *req);
void scsi_send_diagnostic(struct tcmu_request *req);
/* scsi_alua.c */
bool scsi_alua_enabled(const struct tcmu_device *dev);
bool scsi_has_explicit_alua(const struct tcmu_device *dev);
int scsi_alua_set_port_group(struct tcmu_device *dev, uint16_t group);
void scsi_alua_set_port_state(struct tcmu_device *dev, uint8_t state);
void scsi_report_target_port_groups(struct tcmu_request *req);
void scsi_set_target_port_groups(struct tcmu_request *req);
/* scsi_inquiry.c */
void scsi_inquiry(struct tcmu_request *req);
/* The logical unit's NAA designator (VPD page 83h), which names it in EXTENDED COPY. */
void scsi_naa_designator(const struct tcmu_device *dev, uint8_t designator[16]);
/* scsi_copy.c */
void scsi_extended_copy(struct tcmu_request *req);
void scsi_receive_copy_results(struct tcmu_request *req);
/* scsi_mode.c */
void scsi_mode_sense(struct tcmu_request *req);
void scsi_mode_select(struct tcmu_request *req);
/* scsi_rw.c */
void scsi_read(struct tcmu_request *req);
void scsi_write(struct tcmu_request *req);
void scsi_synchronize_cache(struct tcmu_request *req);
void scsi_pre_fetch(struct tcmu_request *req);
/* scsi_verify.c */
void scsi_verify(struct tcmu_request *req);
void scsi_write_and_verify(struct tcmu_request *req);
void scsi_compare_and_write(struct tcmu_request *req);
/* scsi_provisioning.c */
void scsi_write_same(struct tcmu_request *req);
void scsi_unmap(struct tcmu_request *req);
void scsi_get_lba_status(struct tcmu_request *req);
/* scsi_opcodes.c */
void scsi_report_supported_operation_codes(struct tcmu_request *req);

#endif
