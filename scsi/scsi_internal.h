/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_internal.h: what the SCSI layer's files (scsi_*.c) share and the
 * rest of the daemon does not see: typed outcomes and their sense data,
 * completion, data copies, device limits, the write gate and commands of
 * several handler ops. scsi.h has the part the core and api.c use.
 */
#ifndef TCMU_SCSI_INTERNAL_H
#define TCMU_SCSI_INTERNAL_H

#include "tcmu_internal.h"
#include "worker_task.h"

/* SPC-4 sense keys. */
enum scsi_sense_key {
	SCSI_SENSE_NO_SENSE = 0x0,
	SCSI_SENSE_RECOVERED_ERROR = 0x1,
	SCSI_SENSE_NOT_READY = 0x2,
	SCSI_SENSE_MEDIUM_ERROR = 0x3,
	SCSI_SENSE_HARDWARE_ERROR = 0x4,
	SCSI_SENSE_ILLEGAL_REQUEST = 0x5,
	SCSI_SENSE_UNIT_ATTENTION = 0x6,
	SCSI_SENSE_DATA_PROTECT = 0x7,
	SCSI_SENSE_COPY_ABORTED = 0xa,
	SCSI_SENSE_ABORTED_COMMAND = 0xb,
	SCSI_SENSE_MISCOMPARE = 0xe,
};

/* Additional sense code and qualifier, as (ASC << 8) | ASCQ. */
#define SCSI_ASC_NONE					0x0000
#define SCSI_ASC_NOT_READY_INITIALIZING_REQUIRED	0x0402
#define SCSI_ASC_ALUA_TRANSITION			0x040a
#define SCSI_ASC_ALUA_STANDBY				0x040b
#define SCSI_ASC_ALUA_UNAVAILABLE			0x040c
#define SCSI_ASC_SET_TARGET_PORT_GROUPS_FAILED		0x670a
#define SCSI_ASC_UNREACHABLE_COPY_TARGET		0x0804
#define SCSI_ASC_COPY_TARGET_DEVICE_NOT_REACHABLE	0x0d02
#define SCSI_ASC_INCORRECT_COPY_TARGET_DEVICE_TYPE	0x0d03
#define SCSI_ASC_WRITE_ERROR				0x0c00
#define SCSI_ASC_INVALID_FIELD_IN_COMMAND_IU		0x0e03
#define SCSI_ASC_UNRECOVERED_READ_ERROR			0x1100
#define SCSI_ASC_MISCOMPARE_DURING_VERIFY		0x1d00
#define SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR		0x1a00
#define SCSI_ASC_INVALID_COMMAND_OPERATION_CODE		0x2000
#define SCSI_ASC_LBA_OUT_OF_RANGE			0x2100
#define SCSI_ASC_INVALID_FIELD_IN_CDB			0x2400
#define SCSI_ASC_INVALID_FIELD_IN_PARAMETER_LIST	0x2600
#define SCSI_ASC_TOO_MANY_TARGET_DESCRIPTORS		0x2606
#define SCSI_ASC_UNSUPPORTED_TARGET_DESCRIPTOR_TYPE	0x2607
#define SCSI_ASC_TOO_MANY_SEGMENT_DESCRIPTORS		0x2608
#define SCSI_ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE	0x2609
#define SCSI_ASC_UNEXPECTED_INEXACT_SEGMENT		0x260a
#define SCSI_ASC_INLINE_DATA_LENGTH_EXCEEDED		0x260b
#define SCSI_ASC_WRITE_PROTECTED			0x2700
#define SCSI_ASC_SPACE_ALLOCATION_FAILED_WRITE_PROTECT	0x2707
#define SCSI_ASC_ASYMMETRIC_ACCESS_STATE_CHANGED	0x2a06
#define SCSI_ASC_CAPACITY_DATA_HAS_CHANGED		0x2a09
#define SCSI_ASC_SAVING_PARAMETERS_NOT_SUPPORTED	0x3900
#define SCSI_ASC_INTERNAL_TARGET_FAILURE		0x4400

/*
 * The typed result of a command: a status and, for CHECK CONDITION, what
 * the sense data says. It is turned into sense bytes in one place
 * (scsi_sense_format), fixed or descriptor format as the device asks.
 */
struct scsi_outcome {
	uint8_t status;
	uint8_t sense_key;
	uint16_t asc_ascq;
	bool information_valid;
	uint64_t information;
	bool command_specific_valid;
	uint32_t command_specific;	/* COMMAND-SPECIFIC INFORMATION */
	/*
	 * Sense-key specific field pointer: ILLEGAL REQUEST's, or COPY
	 * ABORTED's segment pointer (SPC-4 4.5.2.4.5).
	 */
	bool field_pointer_valid;
	bool field_in_cdb;		/* C/D: CDB, or else parameter data */
	bool field_in_segment;		/* SD: from the segment descriptor, or the list */
	bool bit_pointer_valid;
	uint8_t bit_pointer;
	uint16_t field_pointer;
};

struct scsi_outcome scsi_good(void);
struct scsi_outcome scsi_check(uint8_t sense_key, uint16_t asc_ascq);
/* ILLEGAL REQUEST, INVALID FIELD IN CDB at byte (and bit, or -1). */
struct scsi_outcome scsi_invalid_cdb_field(uint16_t byte, int bit);
/* ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST at byte (and bit, or -1). */
struct scsi_outcome scsi_invalid_parameter_field(uint16_t byte, int bit);
/*
 * SPC-4 5.17.7.3: COPY ABORTED for an error found while processing
 * segment descriptor segment: its number in bytes 2-3 of the
 * COMMAND-SPECIFIC INFORMATION, and a segment pointer (4.5.2.4.5) to the
 * byte at fault (and bit, or -1) from the start of the segment descriptor
 * (in_segment) or of the parameter list; byte -1: no pointer.
 */
struct scsi_outcome scsi_copy_aborted(uint16_t asc_ascq, uint16_t segment, bool in_segment,
				      int byte, int bit);
/* ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE, the LBA in INFORMATION. */
struct scsi_outcome scsi_lba_out_of_range(uint64_t lba);
/*
 * ILLEGAL REQUEST, INVALID FIELD IN COMMAND INFORMATION UNIT: the data
 * buffer the transport brought is smaller than the CDB's transfer.
 */
struct scsi_outcome scsi_data_length_mismatch(void);
/* The outcome of a handler's -errno; is_write picks WRITE ERROR over READ ERROR. */
struct scsi_outcome scsi_outcome_from_errno(int error, bool is_write);
/* Writes the sense bytes of a CHECK CONDITION outcome; returns their length. */
size_t scsi_sense_format(const struct scsi_outcome *outcome, bool descriptor_format,
			 uint8_t sense[SCSI_SENSE_BUFFER_SIZE]);

/* Completes req with outcome; read_length is the data-in filled. */
void scsi_finish(struct tcmu_request *req, const struct scsi_outcome *outcome,
		 uint32_t read_length);
void scsi_finish_good(struct tcmu_request *req);
/*
 * Completes req with GOOD and data-in: the first min(length,
 * allocation_length, data_length) bytes of data; the rest of the data-in
 * buffer is zeroed so that nothing stale reaches the initiator.
 */
void scsi_finish_data_in(struct tcmu_request *req, const void *data, size_t length,
			 size_t allocation_length);

/* Copies between the request's data buffer and memory; return the bytes copied. */
size_t scsi_data_copy_in(struct tcmu_request *req, size_t offset, const void *source,
			 size_t length);
size_t scsi_data_copy_out(struct tcmu_request *req, size_t offset, void *destination,
			  size_t length);
void scsi_data_zero(struct tcmu_request *req, size_t offset);
/*
 * A malloc'd iovec array covering length bytes of the data buffer from
 * offset, for a handler op on part of it. NULL when out of memory or
 * when the buffer is shorter.
 */
struct iovec *scsi_data_slice(const struct tcmu_request *req, uint64_t offset, uint64_t length,
			      size_t *ret_count);
/* Leaves the write gate as the request's command entered it, then completes. */
void scsi_finish_writer(struct tcmu_request *req, const struct scsi_outcome *outcome);


bool scsi_command_available(const struct scsi_command *command, const struct tcmu_device *dev);

/* Device facts the pages and checks share. */
uint64_t scsi_block_count(const struct tcmu_device *dev);
uint32_t scsi_max_transfer_blocks(const struct tcmu_device *dev);
bool scsi_write_protected(const struct tcmu_device *dev);
/* Most blocks one COMPARE AND WRITE compares and writes. */
uint32_t scsi_max_compare_and_write_blocks(const struct tcmu_device *dev);
/* Most blocks one WRITE SAME writes (without UNMAP it writes them all). */
uint64_t scsi_max_write_same_blocks(const struct tcmu_device *dev);
/* Most blocks and descriptors one UNMAP takes. */
uint32_t scsi_max_unmap_blocks(const struct tcmu_device *dev);
#define SCSI_MAX_UNMAP_DESCRIPTORS 256

/* Where the LBA and the block count of a READ/WRITE-like CDB are. */
struct scsi_block_range {
	uint64_t lba;
	uint32_t blocks;
	uint8_t length_byte;	/* for field pointers */
};

struct scsi_block_range scsi_decode_range(const uint8_t *cdb);
/* LBA + blocks inside the medium, overflow-safe. */
bool scsi_range_inside(const struct tcmu_device *dev, uint64_t lba, uint64_t blocks);
/* Writes to dev must be durable at GOOD: FUA asked for, or its write cache is off. */
uint32_t scsi_write_flags(const struct tcmu_device *dev, bool fua);

/*
 * The write gate (scsi_gate.c): writes run together, a COMPARE AND WRITE
 * runs alone, so that its read, compare and write are atomic against
 * every other write. The dispatcher enters the device's gate for commands
 * flagged SCSI_COMMAND_WRITES; EXTENDED COPY enters the gate of each
 * device it writes. true means go now; false means the request waits in
 * its gate_waiter, and proceed(req) runs later, from the completion that
 * opened the gate.
 */
bool scsi_gate_enter(struct tcmu_device *dev, struct tcmu_request *req, bool exclusive,
		     void (*proceed)(struct tcmu_request *req));
/* Before completing the request; may start waiting requests. */
void scsi_gate_leave(struct tcmu_device *dev, bool exclusive);

/*
 * A command made of several handler ops in a row (scsi_steps.c). issue
 * submits the next op and returns 0, returns 1 when there is nothing left
 * to do, or -errno when the op was not taken; completed sees each op's
 * result and returns false to stop, with outcome set. A handler may
 * complete an op before its call returns: the loop then goes on in the
 * submitting call, so the stack does not grow with the number of ops.
 * At the end, done runs (to free what the command holds; it must not
 * touch steps after scsi_finish) and the request is completed with
 * outcome and read_length.
 */
struct scsi_steps {
	struct tcmu_request *req;
	/* The next op, queued on the ring worker between ops. */
	struct worker_task resume;
	int (*issue)(struct scsi_steps *steps);
	bool (*completed)(struct scsi_steps *steps, int result);
	void (*done)(struct scsi_steps *steps);
	struct scsi_outcome outcome;
	uint32_t read_length;
	bool is_write;		/* for the errno to sense mapping */
	bool gated;		/* leave the write gate at the end */
	bool exclusive;
	int result;
	int handoff;
};

/* Starts the loop; req->io_done and req->scsi_private are the loop's. */
void scsi_steps_run(struct scsi_steps *steps);
/* io_done for the ops issue() submits. */
void scsi_steps_io_done(struct tcmu_request *req, int result);

/* scsi_copy.c's limits, which VPD page 8Fh also reports. */
#define SCSI_COPY_MAX_CSCD_DESCRIPTORS		8
#define SCSI_COPY_MAX_SEGMENT_DESCRIPTORS	64
#define SCSI_COPY_MAX_LIST_LENGTH \
	(16 + 32 * SCSI_COPY_MAX_CSCD_DESCRIPTORS + 28 * SCSI_COPY_MAX_SEGMENT_DESCRIPTORS)
#define SCSI_COPY_SEGMENT_BLOCK_TO_BLOCK	0x02
#define SCSI_COPY_CSCD_IDENTIFICATION		0xe4
/*
 * Bytes one segment may copy: 8 MiB, or fewer when the 16-bit block count
 * cannot say that many. With 64 segments one command moves at most 512
 * MiB, as much as the largest READ does over the default ring.
 */
#define SCSI_COPY_MAX_SEGMENT_BYTES(block_size) \
	((block_size) * 0xffffu < (8u << 20) ? (block_size) * 0xffffu : (8u << 20))

/* Big-endian fields of CDBs and parameter data. */
static inline uint16_t scsi_get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t scsi_get_be24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static inline uint32_t scsi_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t scsi_get_be64(const uint8_t *p)
{
	return (uint64_t)scsi_get_be32(p) << 32 | scsi_get_be32(p + 4);
}

static inline void scsi_put_be16(uint8_t *p, uint16_t value)
{
	p[0] = (uint8_t)(value >> 8);
	p[1] = (uint8_t)value;
}

static inline void scsi_put_be32(uint8_t *p, uint32_t value)
{
	p[0] = (uint8_t)(value >> 24);
	p[1] = (uint8_t)(value >> 16);
	p[2] = (uint8_t)(value >> 8);
	p[3] = (uint8_t)value;
}

static inline void scsi_put_be64(uint8_t *p, uint64_t value)
{
	scsi_put_be32(p, (uint32_t)(value >> 32));
	scsi_put_be32(p + 4, (uint32_t)value);
}

/* scsi_alua.c: INQUIRY's TPGS field (byte 5), VPD 83h's target port designators. */
uint8_t scsi_alua_tpgs(const struct tcmu_device *dev);
size_t scsi_alua_designators(const struct tcmu_device *dev, uint8_t *descriptor);
/* A command that needs the medium while this group is not active: its NOT READY. */
bool scsi_alua_blocks(const struct tcmu_request *req, struct scsi_outcome *ret_outcome);
/* scsi_unit.c: the unit attention pending for the device, reported (cleared) once. */
bool scsi_unit_attention(struct tcmu_device *dev, struct scsi_outcome *ret_outcome);

#endif
