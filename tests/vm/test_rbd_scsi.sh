#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The SCSI command set on an rbd device (tcm_loop; Ceph from
# tests/vm/ceph.sh), as test_scsi_commands.sh asks it of alloc and file and
# test_nbd_scsi.sh of nbd: READ CAPACITY(16) and the thin provisioning VPD
# page, data read back and held by the cluster (rbd export), a FUA write,
# COMPARE AND WRITE (match and MISCOMPARE), VERIFY with BYTCHK, WRITE SAME
# with UNMAP and UNMAP reading back zeros, GET LBA STATUS as `rbd diff`
# sees the objects, blkdiscard freeing every object (rbd du), EXTENDED COPY
# within the LUN, an out-of-range LBA answered with ILLEGAL REQUEST, and
# ext4 made and checked clean.
# vm-run: -m 4096 -t 1800
source "$(dirname "$0")/../lib.sh"
source "$SOURCE_DIR/tests/vm/ceph.sh"
requires sg_inq sg3-utils
requires sg_xcopy sg3-utils
requires_module sg
requires blkdiscard util-linux
requires mkfs.ext4 e2fsprogs

size=$((64 * 1048576))
ceph_start
timeout 300 rbd create --size 64M rbd/scsi || fail "rbd create rbd/scsi"
start_daemon
backstore_create next rbd_scsi "$size" "rbd/rbd/scsi" || fail "rbd_scsi refused"
backstore=$BACKSTORE
loop_expose "$backstore"
disk=$DISK
check_thin_lun "$disk" "$size"
timeout 300 rbd export rbd/scsi /tmp/scsi.img || fail "rbd export rbd/scsi"
cmp -n 4194304 /tmp/scsi.img /tmp/pattern || fail "the image does not hold the data written"
rm -f /tmp/scsi.img

check_fua_write "$disk" 9000

check_compare_and_write "$disk" /tmp/pattern
check_unmap_reads_zeros "$disk" /tmp/pattern

# EXTENDED COPY within the LUN: the first 2 MiB to 16 MiB.
sg=$(scsi_generic_node "$disk")
sg_xcopy if="$sg" of="$sg" bs=512 count=4096 seek=32768 || fail "a copy within the LUN failed"
cmp <(read_blocks "$disk" 32768 4096) <(read_blocks "$disk" 0 4096) ||
	fail "the copy within the LUN differs"

# GET LBA STATUS: objects are 4 MiB; the copy's object holds data, object 2
# (LBA 16384..24575) was never written.
out=$(sg_get_lba_status --lba=32768 "$disk" 2>&1)
grep -Eq 'LBA: 0x0000000000008000 +blocks: +[1-9][0-9]* +mapped' <<<"$out" ||
	fail "GET LBA STATUS at 32768 (written): $out"
out=$(sg_get_lba_status --lba=16384 "$disk" 2>&1)
grep -Eq 'LBA: 0x0000000000004000 +blocks: +[1-9][0-9]* +deallocated' <<<"$out" ||
	fail "GET LBA STATUS at 16384 (never written): $out"

used_bytes() {
	timeout 300 rbd du --format json rbd/scsi | sed -n 's/.*"used_size":\([0-9]*\).*/\1/p'
}
used=$(used_bytes)
[ "$used" -gt 0 ] || fail "rbd du shows nothing used after writes"
blkdiscard "$disk" || fail "blkdiscard failed"
used=$(used_bytes)
[ "$used" -eq 0 ] || fail "rbd du shows $used bytes used after blkdiscard"
cmp <(read_blocks "$disk" 0 8192) <(head -c 4M /dev/zero) || fail "discarded blocks do not read as zeros"
out=$(sg_get_lba_status --lba=0 "$disk" 2>&1)
grep -Eq 'LBA: 0x0000000000000000 +blocks: +[1-9][0-9]* +deallocated' <<<"$out" ||
	fail "GET LBA STATUS after blkdiscard: $out"

out=$(sg_raw -r 512 "$disk" 28 00 $(printf '%02x %02x %02x %02x' $((size / 512 >> 24 & 255)) \
	$((size / 512 >> 16 & 255)) $((size / 512 >> 8 & 255)) $((size / 512 & 255))) 00 00 01 00 2>&1 || true)
grep -i 'Illegal Request' <<<"$out" >/dev/null || fail "READ(10) past the end: $out"

mkfs.ext4 -q -F "$disk" || fail "mkfs.ext4 failed"
fsck.ext4 -fn "$disk" || fail "fsck.ext4 finds the new file system damaged"

loop_unexpose "$disk"
backstore_remove "$backstore"
wait_for 60 "the daemon to close every uio" test -z "$(daemon_uio_fds)"
kill -0 "$DAEMON_PID" || fail "daemon died"
assert_log_lacks ' CRIT '
stop_daemon TERM
