/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api.c: the SCSI command table; the implementations are in scsi/. One
 * entry per command the daemon implements: scsi/scsi_dispatch.c looks a
 * CDB up here and checks its reserved bits with the usage map, and REPORT
 * SUPPORTED OPERATION CODES (scsi/scsi_opcodes.c) reports the same table.
 */

#include "tcmu_internal.h"

/* Usage data helpers: the opcode's own bytes in RSOC form. */
#define CONTROL 0x00
#define LBA32 0xff, 0xff, 0xff, 0xff
#define LBA64 LBA32, LBA32
#define LENGTH16 0xff, 0xff
#define LENGTH32 0xff, 0xff, 0xff, 0xff
#define GROUP 0x1f
/* DPO, FUA, FUA_NV of READ/WRITE (10/12/16); protection fields are not supported. */
#define READ_WRITE_FLAGS 0x1a
/* DPO and the 2-bit BYTCHK of VERIFY and WRITE AND VERIFY. */
#define BYTCHK_FLAGS 0x16

const struct scsi_command scsi_commands[] = {
	{ .opcode = SCSI_OP_TEST_UNIT_READY, .cdb_length = 6, .execute = scsi_test_unit_ready,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_TEST_UNIT_READY, 0, 0, 0, 0, CONTROL } },
	{ .opcode = SCSI_OP_REQUEST_SENSE, .cdb_length = 6, .execute = scsi_request_sense,
	  .usage = { SCSI_OP_REQUEST_SENSE, 0x01, 0, 0, 0xff, CONTROL } },
	{ .opcode = SCSI_OP_FORMAT_UNIT, .cdb_length = 6, .execute = scsi_format_unit,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_CHANGES_MEDIUM,
	  .usage = { SCSI_OP_FORMAT_UNIT, 0x3f, 0, 0, 0, CONTROL } },
	{ .opcode = SCSI_OP_READ_6, .cdb_length = 6, .execute = scsi_read,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_READ_6, 0x1f, 0xff, 0xff, 0xff, CONTROL } },
	{ .opcode = SCSI_OP_WRITE_6, .cdb_length = 6, .execute = scsi_write,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES |
		   SCSI_COMMAND_CHANGES_MEDIUM,
	  .usage = { SCSI_OP_WRITE_6, 0x1f, 0xff, 0xff, 0xff, CONTROL } },
	{ .opcode = SCSI_OP_INQUIRY, .cdb_length = 6, .execute = scsi_inquiry,
	  .usage = { SCSI_OP_INQUIRY, 0x01, 0xff, 0xff, 0xff, CONTROL } },
	{ .opcode = SCSI_OP_MODE_SELECT_6, .cdb_length = 6, .execute = scsi_mode_select,
	  .usage = { SCSI_OP_MODE_SELECT_6, 0x11, 0, 0, 0xff, CONTROL } },
	{ .opcode = SCSI_OP_MODE_SENSE_6, .cdb_length = 6, .execute = scsi_mode_sense,
	  .usage = { SCSI_OP_MODE_SENSE_6, 0x08, 0xff, 0xff, 0xff, CONTROL } },
	{ .opcode = SCSI_OP_START_STOP_UNIT, .cdb_length = 6, .execute = scsi_start_stop_unit,
	  .usage = { SCSI_OP_START_STOP_UNIT, 0x01, 0, 0x0f, 0xf7, CONTROL } },
	{ .opcode = SCSI_OP_SEND_DIAGNOSTIC, .cdb_length = 6, .execute = scsi_send_diagnostic,
	  .usage = { SCSI_OP_SEND_DIAGNOSTIC, 0x17, 0, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_READ_CAPACITY_10, .cdb_length = 10, .execute = scsi_read_capacity_10,
	  .usage = { SCSI_OP_READ_CAPACITY_10, 0, LBA32, 0, 0, 0x01, CONTROL } },
	{ .opcode = SCSI_OP_READ_10, .cdb_length = 10, .execute = scsi_read,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_READ_10, READ_WRITE_FLAGS, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_WRITE_10, .cdb_length = 10, .execute = scsi_write,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES |
		   SCSI_COMMAND_CHANGES_MEDIUM,
	  .usage = { SCSI_OP_WRITE_10, READ_WRITE_FLAGS, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_WRITE_AND_VERIFY_10, .cdb_length = 10, .execute = scsi_write_and_verify,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES |
		   SCSI_COMMAND_CHANGES_MEDIUM,
	  .usage = { SCSI_OP_WRITE_AND_VERIFY_10, BYTCHK_FLAGS, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_VERIFY_10, .cdb_length = 10, .execute = scsi_verify,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_VERIFY_10, BYTCHK_FLAGS, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_PRE_FETCH_10, .cdb_length = 10, .execute = scsi_pre_fetch,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_PRE_FETCH_10, 0x02, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_SYNCHRONIZE_CACHE_10, .cdb_length = 10,
	  .execute = scsi_synchronize_cache,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_SYNCHRONIZE_CACHE_10, 0x02, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_WRITE_SAME_10, .cdb_length = 10, .execute = scsi_write_same,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES |
		   SCSI_COMMAND_CHANGES_MEDIUM,
	  .usage = { SCSI_OP_WRITE_SAME_10, 0x08, LBA32, GROUP, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_UNMAP, .cdb_length = 10, .execute = scsi_unmap,
	  .available = scsi_has_unmap,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES |
		   SCSI_COMMAND_CHANGES_MEDIUM,
	  .usage = { SCSI_OP_UNMAP, 0, 0, 0, 0, 0, GROUP, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_MODE_SELECT_10, .cdb_length = 10, .execute = scsi_mode_select,
	  .usage = { SCSI_OP_MODE_SELECT_10, 0x11, 0, 0, 0, 0, 0, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_MODE_SENSE_10, .cdb_length = 10, .execute = scsi_mode_sense,
	  .usage = { SCSI_OP_MODE_SENSE_10, 0x18, 0xff, 0xff, 0, 0, 0, LENGTH16, CONTROL } },
	{ .opcode = SCSI_OP_EXTENDED_COPY, .has_service_action = true,
	  .service_action = SCSI_SA_EXTENDED_COPY_LID1,
	  .cdb_length = 16, .execute = scsi_extended_copy,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES,
	  .usage = { SCSI_OP_EXTENDED_COPY, SCSI_SA_EXTENDED_COPY_LID1, 0, 0, 0, 0, 0, 0, 0, 0,
		     LENGTH32, 0, CONTROL } },
	{ .opcode = SCSI_OP_RECEIVE_COPY_RESULTS, .has_service_action = true,
	  .service_action = SCSI_SA_COPY_STATUS_LID1,
	  .cdb_length = 16, .execute = scsi_receive_copy_results,
	  .usage = { SCSI_OP_RECEIVE_COPY_RESULTS, SCSI_SA_COPY_STATUS_LID1, 0xff, 0, 0, 0, 0, 0,
		     0, 0, LENGTH32, 0, CONTROL } },
	{ .opcode = SCSI_OP_RECEIVE_COPY_RESULTS, .has_service_action = true,
	  .service_action = SCSI_SA_OPERATING_PARAMETERS,
	  .cdb_length = 16, .execute = scsi_receive_copy_results,
	  .usage = { SCSI_OP_RECEIVE_COPY_RESULTS, SCSI_SA_OPERATING_PARAMETERS, 0, 0, 0, 0, 0, 0,
		     0, 0, LENGTH32, 0, CONTROL } },
	{ .opcode = SCSI_OP_READ_16, .cdb_length = 16, .execute = scsi_read,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_READ_16, READ_WRITE_FLAGS, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_COMPARE_AND_WRITE, .cdb_length = 16, .execute = scsi_compare_and_write,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES |
		   SCSI_COMMAND_CHANGES_MEDIUM | SCSI_COMMAND_EXCLUSIVE,
	  .usage = { SCSI_OP_COMPARE_AND_WRITE, READ_WRITE_FLAGS, LBA64, 0, 0, 0, 0xff, GROUP,
		     CONTROL } },
	{ .opcode = SCSI_OP_WRITE_16, .cdb_length = 16, .execute = scsi_write,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES |
		   SCSI_COMMAND_CHANGES_MEDIUM,
	  .usage = { SCSI_OP_WRITE_16, READ_WRITE_FLAGS, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_WRITE_AND_VERIFY_16, .cdb_length = 16, .execute = scsi_write_and_verify,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES |
		   SCSI_COMMAND_CHANGES_MEDIUM,
	  .usage = { SCSI_OP_WRITE_AND_VERIFY_16, BYTCHK_FLAGS, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_VERIFY_16, .cdb_length = 16, .execute = scsi_verify,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_VERIFY_16, BYTCHK_FLAGS, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_PRE_FETCH_16, .cdb_length = 16, .execute = scsi_pre_fetch,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_PRE_FETCH_16, 0x02, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_SYNCHRONIZE_CACHE_16, .cdb_length = 16,
	  .execute = scsi_synchronize_cache,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_SYNCHRONIZE_CACHE_16, 0x02, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_WRITE_SAME_16, .cdb_length = 16, .execute = scsi_write_same,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES |
		   SCSI_COMMAND_CHANGES_MEDIUM,
	  .usage = { SCSI_OP_WRITE_SAME_16, 0x09, LBA64, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_SERVICE_ACTION_IN_16, .has_service_action = true,
	  .service_action = SCSI_SA_READ_CAPACITY_16,
	  .cdb_length = 16, .execute = scsi_read_capacity_16,
	  .usage = { SCSI_OP_SERVICE_ACTION_IN_16, SCSI_SA_READ_CAPACITY_16, LBA64, LENGTH32, 0x01,
		     CONTROL } },
	{ .opcode = SCSI_OP_SERVICE_ACTION_IN_16, .has_service_action = true,
	  .service_action = SCSI_SA_GET_LBA_STATUS,
	  .cdb_length = 16, .execute = scsi_get_lba_status, .available = scsi_has_unmap,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_SERVICE_ACTION_IN_16, SCSI_SA_GET_LBA_STATUS, LBA64, LENGTH32, 0,
		     CONTROL } },
	{ .opcode = SCSI_OP_REPORT_LUNS, .cdb_length = 12, .flags = SCSI_COMMAND_KERNEL,
	  .usage = { SCSI_OP_REPORT_LUNS, 0, 0xff, 0, 0, 0, LENGTH32, 0, CONTROL } },
	{ .opcode = SCSI_OP_MAINTENANCE_IN, .has_service_action = true,
	  .service_action = SCSI_SA_REPORT_SUPPORTED_OPERATION_CODES,
	  .cdb_length = 12, .execute = scsi_report_supported_operation_codes,
	  .usage = { SCSI_OP_MAINTENANCE_IN, SCSI_SA_REPORT_SUPPORTED_OPERATION_CODES, 0x87, 0xff,
		     0xff, 0xff, LENGTH32, 0, CONTROL } },
	{ .opcode = SCSI_OP_MAINTENANCE_IN, .has_service_action = true,
	  .service_action = SCSI_SA_REPORT_TARGET_PORT_GROUPS,
	  .cdb_length = 12, .execute = scsi_report_target_port_groups,
	  .available = scsi_alua_enabled,
	  .usage = { SCSI_OP_MAINTENANCE_IN, 0xe0 | SCSI_SA_REPORT_TARGET_PORT_GROUPS, 0, 0, 0, 0,
		     LENGTH32, 0, CONTROL } },
	{ .opcode = SCSI_OP_MAINTENANCE_OUT, .has_service_action = true,
	  .service_action = SCSI_SA_SET_TARGET_PORT_GROUPS,
	  .cdb_length = 12, .execute = scsi_set_target_port_groups,
	  .available = scsi_has_explicit_alua,
	  .usage = { SCSI_OP_MAINTENANCE_OUT, SCSI_SA_SET_TARGET_PORT_GROUPS, 0, 0, 0, 0,
		     LENGTH32, 0, CONTROL } },
	{ .opcode = SCSI_OP_READ_12, .cdb_length = 12, .execute = scsi_read,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_READ_12, READ_WRITE_FLAGS, LBA32, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_WRITE_12, .cdb_length = 12, .execute = scsi_write,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES |
		   SCSI_COMMAND_CHANGES_MEDIUM,
	  .usage = { SCSI_OP_WRITE_12, READ_WRITE_FLAGS, LBA32, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_WRITE_AND_VERIFY_12, .cdb_length = 12, .execute = scsi_write_and_verify,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS | SCSI_COMMAND_WRITES |
		   SCSI_COMMAND_CHANGES_MEDIUM,
	  .usage = { SCSI_OP_WRITE_AND_VERIFY_12, BYTCHK_FLAGS, LBA32, LENGTH32, GROUP, CONTROL } },
	{ .opcode = SCSI_OP_VERIFY_12, .cdb_length = 12, .execute = scsi_verify,
	  .flags = SCSI_COMMAND_MEDIUM_ACCESS,
	  .usage = { SCSI_OP_VERIFY_12, BYTCHK_FLAGS, LBA32, LENGTH32, GROUP, CONTROL } },
};

const size_t scsi_command_count = ARRAY_SIZE(scsi_commands);
