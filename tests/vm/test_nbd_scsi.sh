#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The SCSI command set on an nbd device whose server is nbdkit's file plugin
# on a tmpfs file: COMPARE AND WRITE (match and MISCOMPARE), VERIFY with
# BYTCHK, FUA writes, WRITE SAME with UNMAP and UNMAP reading back zeros,
# blkdiscard giving the file's blocks back (the handler's write-zeroes let
# the server punch holes), ext4 mounted with -o discard staying consistent,
# an out-of-range LBA answered with ILLEGAL REQUEST; a server that cannot
# zero gets no thin provisioning advertised. GET LBA STATUS reports the holes
# of a sparse qcow2 image that qemu-nbd serves; a new size within the export
# is taken (CAPACITY DATA HAS CHANGED), a larger one refused with both sizes;
# an nbds:// (TLS, pre-shared key) export works.
source "$(dirname "$0")/../lib.sh"
requires nbdkit nbdkit
requires sg_inq sg3-utils
requires_module sg
requires blkdiscard util-linux
requires mkfs.ext4 e2fsprogs
requires sg_get_lba_status sg3-utils
requires qemu-nbd qemu-utils
requires qemu-io qemu-utils

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
check_thin_lun "$disk" "$size"
cmp -n 4194304 "$image" /tmp/pattern || fail "nbdkit's file does not hold the data written"

check_fua_write "$disk" 9000

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
# A sparse qcow2 image with one 64 KiB cluster written at 1 MiB: GET LBA STATUS
# from qemu-nbd's allocation map (base:allocation) shows it between two holes.
qcow2=/var/tmp/tcmu-nbd-sparse.qcow2
rm -f "$qcow2"
qemu-img create -q -f qcow2 "$qcow2" 16M
qemu-io -f qcow2 -c "write -P 0xab 1M 64k" "$qcow2" >/dev/null
cleanup_fn rm -f "$qcow2"
backstore_create next nbd_sparse 16777216 "nbd/exec:qemu-nbd -f qcow2 $qcow2"
sparse=$BACKSTORE
loop_expose "$sparse"
assert_log_has "allocation map yes"
# One descriptor a line: LBA, blocks (hex), status (0 mapped, 1 deallocated).
sg_get_lba_status --brief --maxlen=1024 "$DISK" > /tmp/lba_status || fail "GET LBA STATUS failed"
cat /tmp/lba_status
extents=$(grep '^0x' /tmp/lba_status |
	while read -r lba blocks status _; do echo "$((lba)) $((blocks)) $status"; done)
[ "$extents" = "$(printf '0 2048 1\n2048 128 0\n2176 30592 1')" ] ||
	fail "GET LBA STATUS of the sparse image: $extents"
out=$(sg_get_lba_status --brief --lba=2100 "$DISK" | grep '^0x')
[ "$(awk '{print $1, $2, $3}' <<<"$out")" = "0x0000000000000834 0x4c 0" ] ||
	fail "GET LBA STATUS at LBA 2100: $out"

# A new size: within the export it is taken and the initiator is told; beyond it, refused.
echo $((8 * 1048576)) > "$sparse/attrib/dev_size" || fail "a size within the export was refused"
assert_log_has "size is now 8388608 bytes"
out=$(sg_raw -v "$DISK" 00 00 00 00 00 00 2>&1 || true)
echo "$out"
grep -qi "capacity data has changed" <<<"$out" || dmesg | grep -qi "capacity data has changed" ||
	fail "the initiator was not told CAPACITY DATA HAS CHANGED"
capacity=$(sg_readcap "$DISK" | awk '/Device size:/ {print $3}')
[ "$capacity" -eq $((8 * 1048576)) ] || fail "READ CAPACITY says $capacity bytes after the resize"
if echo $((32 * 1048576)) > "$sparse/attrib/dev_size"; then
	fail "a size beyond the export was accepted"
fi
assert_log_has "new size 33554432 bytes refused: the export of 'exec:qemu-nbd -f qcow2 $qcow2' holds only 16777216 bytes"
[ "$(cat "$sparse/attrib/dev_size")" -eq $((8 * 1048576)) ] || fail "the refused size reached configfs"
loop_unexpose "$DISK"
backstore_remove "$sparse"

# nbds://: TLS with a pre-shared key (nbdkit's PSK file, libnbd's tls-psk-file).
printf 'tcmu:%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" > /tmp/tls.psk
chmod 600 /tmp/tls.psk
nbdkit -p 10812 -P /tmp/nbdkit-tls.pid --tls=require --tls-psk=/tmp/tls.psk memory 16M
wait_for 10 "the TLS server" test -s /tmp/nbdkit-tls.pid
cleanup_fn bash -c 'kill "$(cat /tmp/nbdkit-tls.pid)"'
backstore_create next nbd_tls 16777216 "nbd/nbds://tcmu@127.0.0.1:10812/?tls-psk-file=/tmp/tls.psk" ||
	fail "the TLS export was refused"
loop_expose "$BACKSTORE"
random_file /tmp/tls_pattern 4M
write_and_verify "$DISK" /tmp/tls_pattern
loop_unexpose "$DISK"
backstore_remove "$BACKSTORE"

wait_for 10 "the daemon to close every uio" test -z "$(daemon_uio_fds)"
kill -0 "$DAEMON_PID" || fail "daemon died"
assert_log_lacks ' CRIT '
stop_daemon TERM
