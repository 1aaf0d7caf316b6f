#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# File backstores on storage that cannot do everything:
# - a file on vfat (no hole punching): thin provisioning is not advertised
#   (the kernel sees no discard, the LBP VPD page no UNMAP), and WRITE SAME
#   with UNMAP writes its zeros instead of failing;
# - a block device without write-zeroes support (a loop device over ramfs):
#   the same;
# - a mounted block device: refused (claimed exclusively, as the kernel's
#   block backstore does), usable once unmounted.
source "$(dirname "$0")/../lib.sh"
requires losetup
requires mkfs.vfat dosfstools
requires sg_write_same sg3-utils
requires_module loop
requires_module vfat

start_daemon

# no_thin_provisioning DISK: neither the kernel nor the LBP VPD page sees UNMAP.
no_thin_provisioning() {
	local disk=$1
	[ "$(cat "/sys/block/${disk#/dev/}/queue/discard_max_bytes")" -eq 0 ] ||
		fail "$disk advertises discard"
	sg_vpd --page=lbpv "$disk" > /tmp/lbpv.txt
	grep -E 'Unmap command supported \(LBPU\): 0' /tmp/lbpv.txt >/dev/null ||
		{ cat /tmp/lbpv.txt; fail "$disk's LBP VPD page says UNMAP is supported"; }
}

# write_same_unmap_zeroes DISK: WRITE SAME (16) with UNMAP of zeros over
# written blocks succeeds and they read back as zeros.
write_same_unmap_zeroes() {
	local disk=$1
	random_file /tmp/pattern 1M
	write_and_verify "$disk" /tmp/pattern
	sg_write_same --16 --unmap --lba=0 --num=64 --xferlen=512 "$disk" ||
		fail "WRITE SAME with UNMAP failed on $disk"
	cmp <(dd if="$disk" bs=512 count=64 iflag=direct status=none) <(head -c 32768 /dev/zero) ||
		fail "WRITE SAME with UNMAP did not zero $disk"
	cmp <(dd if="$disk" bs=512 skip=64 count=1984 iflag=direct status=none) \
		<(tail -c +32769 /tmp/pattern) || fail "WRITE SAME with UNMAP changed more of $disk"
}

# ---- a file on vfat, which is also a mounted block device
truncate -s 64M /var/tmp/vfat.img
vfat_loop=$(losetup --find --show /var/tmp/vfat.img)
cleanup_fn losetup -d "$vfat_loop"
mkfs.vfat "$vfat_loop" >/dev/null
mkdir -p /mnt/vfat
mount -t vfat "$vfat_loop" /mnt/vfat
cleanup_fn umount /mnt/vfat

backstore_create next on_vfat 16777216 file//mnt/vfat/disk.img || fail "a file on vfat refused"
on_vfat=$BACKSTORE
loop_expose "$on_vfat"
vfat_disk=$DISK
no_thin_provisioning "$vfat_disk"
write_same_unmap_zeroes "$vfat_disk"
assert_log_has "'/mnt/vfat/disk.img' cannot punch holes"

if backstore_create next mounted 16777216 "file/$vfat_loop"; then
	fail "a mounted block device was accepted"
fi
mounted=$BACKSTORE
assert_log_has "open '$vfat_loop': Device or resource busy \(mounted, or in use"

# ---- a block device that cannot zero without writing
mkdir -p /mnt/ramfs
mount -t ramfs ramfs /mnt/ramfs
cleanup_fn umount /mnt/ramfs
truncate -s 16M /mnt/ramfs/backing.img
ramfs_loop=$(losetup --find --show /mnt/ramfs/backing.img)
cleanup_fn losetup -d "$ramfs_loop"
[ "$(cat "/sys/block/${ramfs_loop#/dev/}/queue/write_zeroes_max_bytes")" -eq 0 ] ||
	fail "a loop device over ramfs claims write zeroes: this test needs another device"
backstore_create next no_zeroes 16777216 "file/$ramfs_loop" ||
	fail "a block device without write zeroes refused"
loop_expose "$BACKSTORE"
no_thin_provisioning "$DISK"
write_same_unmap_zeroes "$DISK"

# ---- the mounted device, once unmounted, is usable
loop_unexpose "$vfat_disk"
backstore_remove "$on_vfat"
backstore_remove "$mounted"
umount /mnt/vfat
backstore_create next unmounted 16777216 "file/$vfat_loop" ||
	fail "an unmounted block device was refused"
if mount -t vfat "$vfat_loop" /mnt/vfat 2>/dev/null; then
	umount /mnt/vfat
	fail "a block device in use by the daemon could be mounted"
fi

kill -0 "$DAEMON_PID" || fail "daemon died"
assert_log_lacks ' CRIT '
stop_daemon TERM
