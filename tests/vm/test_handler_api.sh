#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# libtcmu 1.2 through the real kernel, with handler_reverse.so
# (tests/vm/handler_reverse.c), which uses each call: a unit serial number
# from the handler ("reverse-<name>") in VPD pages 80h and 83h in place of
# configfs's; a write-protected device ("reverse/1:ro") that the kernel
# sees read-only (MODE SENSE WP), whose writes end in DATA PROTECT, WRITE
# PROTECTED while reads work; and COMPARE AND WRITE done by the handler's
# compare_and_write, its miscompare reaching the initiator.
source "$(dirname "$0")/../lib.sh"
requires sg_raw sg3-utils
requires sg_vpd sg3-utils
requires sg_modes sg3-utils
requires sg_compare_and_write sg3-utils
requires_module sg

handler_dir=$BUILD_DIR/tests/vm
[ -f "$handler_dir/handler_reverse.so" ] || fail "handler_reverse.so is not built in $handler_dir"
start_daemon_command "$BUILD_DIR/tcmu-runner" --handler-path "$handler_dir"

# ---- identity and COMPARE AND WRITE on a writable device
backstore_create next serial 8388608 reverse/1
configfs_serial=$(sed -n 's/^T10 VPD Unit Serial Number: //p' "$BACKSTORE/wwn/vpd_unit_serial")
loop_expose "$BACKSTORE"
writable=$DISK
sg_vpd --page=0x80 "$writable" > "$OUT_DIR/vpd80.txt" || fail "VPD page 80h failed"
grep -q 'reverse-serial' "$OUT_DIR/vpd80.txt" ||
	fail "VPD 80h lacks the handler's serial: $(cat "$OUT_DIR/vpd80.txt")"
sg_vpd --page=0x83 "$writable" > "$OUT_DIR/vpd83.txt" || fail "VPD page 83h failed"
grep -q 'reverse-serial' "$OUT_DIR/vpd83.txt" ||
	fail "VPD 83h's vendor designator lacks the handler's serial: $(cat "$OUT_DIR/vpd83.txt")"
if [ -n "$configfs_serial" ] && grep -qF "$configfs_serial" "$OUT_DIR/vpd80.txt" "$OUT_DIR/vpd83.txt"; then
	fail "configfs's serial $configfs_serial is still reported"
fi
random_file /tmp/api_pattern 1048576
write_and_verify "$writable" /tmp/api_pattern
check_compare_and_write "$writable" /tmp/api_pattern
sg_modes "$writable" > "$OUT_DIR/modes-writable.txt" 2>&1 || fail "MODE SENSE failed"
grep -q 'WP=0' "$OUT_DIR/modes-writable.txt" || fail "writable device: $(head -3 "$OUT_DIR/modes-writable.txt")"

# ---- a write-protected device
backstore_create next readonly 8388608 reverse/1:ro
loop_expose "$BACKSTORE"
protected=$DISK
sg_modes "$protected" > "$OUT_DIR/modes-protected.txt" 2>&1 || fail "MODE SENSE failed"
grep -q 'WP=1' "$OUT_DIR/modes-protected.txt" ||
	fail "MODE SENSE does not show WP: $(head -3 "$OUT_DIR/modes-protected.txt")"
# The kernel's sd reads WP at the scan and makes the disk read-only.
[ "$(blockdev --getro "$protected")" = 1 ] || fail "$protected is not read-only for the kernel"
read_blocks "$protected" 0 8 > /dev/null || fail "reads of the write-protected device failed"
# Through the SCSI generic node: the block node of a read-only disk refuses writers.
sg=$(scsi_generic_node "$protected")
status=0
out=$(sg_raw -s 512 -i /tmp/api_pattern "$sg" 2a 00 00 00 00 10 00 00 01 00 2>&1) || status=$?
[ "$status" -ne 0 ] || fail "WRITE(10) to the write-protected device succeeded"
grep -qi 'data protect' <<<"$out" || fail "WRITE(10): not DATA PROTECT: $out"
grep -qi 'write protected' <<<"$out" || fail "WRITE(10): not WRITE PROTECTED: $out"
status=0
out=$(sg_compare_and_write --lba=0 --num=1 --in=/tmp/api_pattern "$sg" 2>&1) || status=$?
[ "$status" -ne 0 ] || fail "COMPARE AND WRITE on the write-protected device succeeded"
grep -qi 'data protect' <<<"$out" || fail "COMPARE AND WRITE: not DATA PROTECT: $out"
cmp <(read_blocks "$protected" 0 16) <(head -c 8192 /dev/zero) ||
	fail "the write-protected device was written"
assert_log_has 'reverse/readonly\] write-protected$'

loop_unexpose "$protected"
loop_unexpose "$writable"
assert_log_lacks ' CRIT '
stop_daemon TERM
