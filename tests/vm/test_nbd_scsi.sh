#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The SCSI command set on an nbd device whose server is nbdkit's file plugin
# on a tmpfs file: COMPARE AND WRITE (match and MISCOMPARE), VERIFY with
# BYTCHK, FUA writes, WRITE SAME with UNMAP and UNMAP reading back zeros,
# blkdiscard giving the file's blocks back (the handler's write-zeroes let
# the server punch holes), ext4 mounted with -o discard staying consistent,
# an out-of-range LBA answered with ILLEGAL REQUEST; a server that cannot
# zero gets no thin provisioning advertised.
source "$(dirname "$0")/../lib.sh"
requires nbdkit nbdkit
requires sg_inq sg3-utils
requires_module sg
requires blkdiscard util-linux
requires mkfs.ext4 e2fsprogs

start_daemon

size=$((64 * 1048576))
image=/dev/shm/tcmu-nbd-scsi.img
rm -f "$image"
truncate -s "$size" "$image"
cleanup_fn rm -f "$image"
backstore_create next nbd_scsi "$size" "nbd/exec:nbdkit file $image"
backstore=$BACKSTORE
loop_expose "$backstore"
disk=$DISK
sg=/dev/$(ls /sys/block/"${disk#/dev/}"/device/scsi_generic/)
[ -c "$sg" ] || fail "no SCSI generic node for $disk"

out=$(sg_readcap --16 "$disk" 2>&1)
grep -q "Number of logical blocks=$((size / 512))\$" <<<"$out" || fail "READ CAPACITY(16) size: $out"
out=$(sg_vpd --page=lbpv "$disk" 2>&1)
grep -Eq 'Unmap command supported \(LBPU\): 1' <<<"$out" || fail "LBP VPD page: $out"

random_file /tmp/pattern 4M
dd if=/tmp/pattern of="$disk" bs=1M oflag=direct status=none
cmp <(read_blocks "$disk" 0 8192) /tmp/pattern || fail "the data read back differs"
cmp -n 4194304 "$image" /tmp/pattern || fail "nbdkit's file does not hold the data written"

# FUA write (WRITE(16) with FUA) lands in the file.
random_file /tmp/fua_block 512
sg_dd if=/tmp/fua_block of="$sg" bs=512 seek=9000 count=1 oflag=fua cdbsz=16 ||
	fail "WRITE(16) with FUA failed"
cmp <(read_blocks "$disk" 9000 1) /tmp/fua_block || fail "the FUA write did not land"

check_compare_and_write "$disk" /tmp/pattern
check_unmap_reads_zeros "$disk" /tmp/pattern

check_blkdiscard_frees "$disk" "$image" 4096
cmp <(read_blocks "$disk" 0 8192) <(head -c 4M /dev/zero) || fail "discarded blocks do not read as zeros"

out=$(sg_raw -r 512 "$disk" 28 00 $(printf '%02x %02x %02x %02x' $((size / 512 >> 24 & 255)) \
	$((size / 512 >> 16 & 255)) $((size / 512 >> 8 & 255)) $((size / 512 & 255))) 00 00 01 00 2>&1 || true)
grep -i 'Illegal Request' <<<"$out" >/dev/null || fail "READ(10) past the end: $out"

filesystem_discard_cycle "$disk" "$image" 'mkfs.ext4 -q -F' fsck.ext4 -fn

loop_unexpose "$disk"
backstore_remove "$backstore"

# A server that cannot zero: no thin provisioning offered.
backstore_create next nbd_nozero 16777216 "nbd/exec:nbdkit --filter=nozero memory 16M zeromode=none"
loop_expose "$BACKSTORE"
out=$(sg_vpd --page=lbpv "$DISK" 2>&1)
grep -Eq 'Unmap command supported \(LBPU\): 0' <<<"$out" || fail "LBP VPD page of a server without zeroing: $out"
loop_unexpose "$DISK"
backstore_remove "$BACKSTORE"
wait_for 10 "the daemon to close every uio" test -z "$(daemon_uio_fds)"
kill -0 "$DAEMON_PID" || fail "daemon died"
assert_log_lacks ' CRIT '
stop_daemon TERM
