#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Storage failing under a file backstore becomes the right SCSI sense at
# the initiator, logged once with the device's name, and the daemon lives:
# - a full file system (2 MiB tmpfs under a 16 MiB device): DATA PROTECT,
#   SPACE ALLOCATION FAILED WRITE PROTECT;
# - a block device that starts failing (device-mapper error target): MEDIUM ERROR;
# - the backing file deleted underneath: noticed at once (inotify), the
#   device's state says failed; reads go on, writes and flushes (their data
#   would be lost when the device closes) fail with MEDIUM ERROR.
source "$(dirname "$0")/../lib.sh"
requires dmsetup
requires losetup
requires_module dm_mod
requires_module loop

start_daemon

# ---- full file system
mkdir -p /mnt/small
mount -t tmpfs -o size=2M tmpfs /mnt/small
cleanup_fn umount /mnt/small
backstore_create next full 16777216 file//mnt/small/full.img
loop_expose "$BACKSTORE"
full_disk=$DISK
dmesg -C
if dd if=/dev/urandom of="$full_disk" bs=1M count=8 oflag=direct status=none; then
	fail "8 MiB went onto a 2 MiB file system without an error"
fi
dmesg | grep 'Space allocation failed write protect' >/dev/null ||
	{ dmesg | tail -20; fail "no SPACE ALLOCATION FAILED WRITE PROTECT sense at the initiator"; }
kill -0 "$DAEMON_PID" || fail "daemon died on a full file system"
[ "$(grep -c 'ERROR \[file/full\]' "$DAEMON_LOG")" -eq 1 ] ||
	fail "the full file system was not logged exactly once at error level for file/full"
# Overwriting blocks that already have space still works.
head -c 4096 /dev/urandom > /tmp/block
dd if=/tmp/block of="$full_disk" bs=4096 count=1 oflag=direct status=none ||
	fail "a write that fits failed after the full file system"

# ---- a failing block device
truncate -s 16M /var/tmp/eio-backing
loop=$(losetup --find --show /var/tmp/eio-backing)
cleanup_fn losetup -d "$loop"
dmsetup create tcmu_eio --table "0 32768 linear $loop 0"
cleanup_fn dmsetup remove tcmu_eio
# Without udev, dmsetup may leave the /dev/mapper node to us.
dmsetup mknodes tcmu_eio
[ -b /dev/mapper/tcmu_eio ] || fail "no block device /dev/mapper/tcmu_eio"
backstore_create next eio 16777216 file//dev/mapper/tcmu_eio
loop_expose "$BACKSTORE"
eio_disk=$DISK
random_file /tmp/pattern 1M
write_and_verify "$eio_disk" /tmp/pattern
dmsetup suspend tcmu_eio
dmsetup load tcmu_eio --table "0 32768 error"
dmsetup resume tcmu_eio
dmesg -C
if dd if="$eio_disk" of=/dev/null bs=4096 skip=2048 count=16 iflag=direct status=none; then
	fail "reading a failing block device succeeded"
fi
dmesg | grep 'Medium Error' >/dev/null ||
	{ dmesg | tail -20; fail "no MEDIUM ERROR sense at the initiator"; }
kill -0 "$DAEMON_PID" || fail "daemon died on EIO"
[ "$(grep -c 'ERROR \[file/eio\]' "$DAEMON_LOG")" -ge 1 ] || fail "EIO not logged for file/eio"
loop_unexpose "$eio_disk"

# ---- deleted underneath
backstore_create next deleted 8388608 file//var/tmp/deleted.img
loop_expose "$BACKSTORE"
deleted_disk=$DISK
random_file /tmp/pattern 2M
write_and_verify "$deleted_disk" /tmp/pattern
rm /var/tmp/deleted.img
# A write into a file nobody can reach would be lost when the device closes.
# The daemon hears of the deletion at once (inotify), not at the next flush:
# from then on no write is acknowledged, and neither is a flush.
wait_for 10 "the daemon to notice the deletion" \
	grep "ERROR \[file/deleted\] '/var/tmp/deleted.img' was deleted: writes fail" "$DAEMON_LOG"
assert_log_has "WARN \[file/deleted\] state: failed: backing file deleted"
cmp <(dd if="$deleted_disk" bs=1M count=2 iflag=direct status=none) /tmp/pattern ||
	fail "data changed when the backing file was deleted"
dmesg -C
if dd if=/tmp/pattern of="$deleted_disk" bs=4096 count=1 oflag=direct status=none; then
	fail "a write to a deleted backing file was acknowledged"
fi
dmesg | grep 'Medium Error' >/dev/null ||
	{ dmesg | tail -20; fail "no MEDIUM ERROR sense for a write to a deleted backing file"; }
if sg_sync "$deleted_disk"; then
	fail "SYNCHRONIZE CACHE succeeded on a deleted backing file"
fi
[ "$(grep -c 'ERROR \[file/deleted\]' "$DAEMON_LOG")" -eq 1 ] ||
	fail "the deleted backing file was not logged exactly once for file/deleted"

kill -0 "$DAEMON_PID" || fail "daemon died"
assert_log_lacks ' CRIT '
stop_daemon TERM
