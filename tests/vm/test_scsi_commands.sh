#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The SCSI command set on a real kernel, asked with sg3_utils through tcm_loop:
# INQUIRY and its VPD pages, READ CAPACITY(16), the caching mode page, REPORT
# SUPPORTED OPERATION CODES, REQUEST SENSE, SYNCHRONIZE CACHE; COMPARE AND
# WRITE (match and MISCOMPARE), VERIFY, WRITE SAME with UNMAP, UNMAP and GET
# LBA STATUS on an alloc device, whose shared-memory file shrinks on discard;
# discard punching holes in a file device's tmpfs file, ext4 and XFS mounted
# with -o discard staying consistent; unknown opcodes and out-of-range LBAs
# answered with the right sense while the daemon stays up.
source "$(dirname "$0")/../lib.sh"

requires sg_inq sg3-utils
requires blkdiscard util-linux
requires mkfs.ext4 e2fsprogs
requires mkfs.xfs xfsprogs
requires_module sg

start_daemon

# ------------------------------------------------------------ alloc device
alloc_size=$((64 * 1048576))
backstore_create 0 scsi_alloc "$alloc_size" alloc/
alloc=$BACKSTORE
alloc_shm=$ALLOC_MEMORY/user_0-scsi_alloc
[ -f "$alloc_shm" ] || fail "alloc device has no $alloc_shm"
loop_expose "$alloc"
disk=$DISK
sg=$(scsi_generic_node "$disk")

out=$(sg_inq "$disk" 2>&1)
grep -q 'Vendor identification: LIO-ORG' <<<"$out" || fail "INQUIRY vendor: $out"
grep -q 'Product identification: TCMU device' <<<"$out" || fail "INQUIRY product: $out"
grep -q 'Peripheral device type: disk' <<<"$out" || fail "INQUIRY device type: $out"

# Supported VPD pages, from the raw page: byte 3 is the list's length.
pages=$(sg_vpd --page=0x00 --raw "$disk" | od -An -v -tx1 | tr -s ' \n' ' ')
read -r -a page_bytes <<<"$pages"
list=" ${page_bytes[*]:4:$((16#${page_bytes[3]}))} "
for page in 00 80 83 b0 b1 b2; do
	[[ $list == *" $page "* ]] || fail "VPD page 0x$page missing from the supported list:$list"
done

out=$(sg_vpd --page=bl "$disk" 2>&1)
grep -Eq 'Maximum unmap LBA count: [1-9]' <<<"$out" || fail "block limits: $out"
grep -Eq 'Maximum unmap block descriptor count: [1-9]' <<<"$out" || fail "block limits: $out"
grep -Eq 'Maximum compare and write length: [1-9][0-9]* blocks' <<<"$out" || fail "block limits: $out"
grep -Eq 'Maximum write same length: 0x[1-9a-f]' <<<"$out" || fail "block limits: $out"
grep -q 'Maximum transfer length:' <<<"$out" || fail "block limits: $out"

out=$(sg_vpd --page=lbpv "$disk" 2>&1)
grep -q 'Unmap command supported (LBPU): 1' <<<"$out" || fail "provisioning: $out"
grep -q 'Write same (16) with unmap bit supported (LBPWS): 1' <<<"$out" || fail "provisioning: $out"
grep -q 'Logical block provisioning read zeros (LBPRZ): 1' <<<"$out" || fail "provisioning: $out"

out=$(sg_readcap --long "$disk" 2>&1)
grep -q 'lbpme=1' <<<"$out" || fail "READ CAPACITY(16) without LBPME: $out"
grep -q "Number of logical blocks=$((alloc_size / 512))\$" <<<"$out" || fail "READ CAPACITY(16) size: $out"
grep -q 'Logical block length=512 bytes' <<<"$out" || fail "READ CAPACITY(16) block length: $out"

# Caching mode page: byte 2 bit 2 is WCE, which follows the backstore's
# emulate_write_cache attribute, also when it changes while exposed.
assert_wce_matches_attribute() {
	local byte expected
	byte=$(sg_modes --page=8 "$disk" | awk '/>> Caching/ { getline; print $4; exit }')
	[ -n "$byte" ] || fail "no caching mode page"
	expected=$(cat "$alloc/attrib/emulate_write_cache")
	[ $(((16#$byte >> 2) & 1)) -eq "$expected" ] ||
		fail "caching page byte 2 is 0x$byte, emulate_write_cache is $expected"
}
assert_wce_matches_attribute
echo 1 > "$alloc/attrib/emulate_write_cache"
assert_wce_matches_attribute
echo 0 > "$alloc/attrib/emulate_write_cache"
assert_wce_matches_attribute
# The initiator's MODE SELECT (sd writes the caching page for cache_type)
# goes the way of RECONFIG: the handler is asked, the daemon logs it.
wce_on_logged() { [ "$(grep -c '\] write cache on$' "$DAEMON_LOG")" -gt "$1" ]; }
logged_before=$(grep -c '\] write cache on$' "$DAEMON_LOG" || true)
echo "write back" > "$(echo /sys/block/"${disk#/dev/}"/device/scsi_disk/*/cache_type)" ||
	fail "MODE SELECT of the caching page refused"
wait_for 10 "the MODE SELECT's write cache change in the log" wce_on_logged "$logged_before"
byte=$(sg_modes --page=8 "$disk" | awk '/>> Caching/ { getline; print $4; exit }')
[ $(((16#$byte >> 2) & 1)) -eq 1 ] || fail "WCE is not set after MODE SELECT: 0x$byte"

out=$(sg_opcodes --no-inquiry "$disk" 2>&1)
for opcode in '28 .*Read\(10\)' '2a .*Write\(10\)' '42 .*Unmap' '93 .*Write same\(16\)' \
	'89 .*Compare and write' '9e +12 .*Get LBA status'; do
	grep -Eq "^ $opcode" <<<"$out" || fail "REPORT SUPPORTED OPERATION CODES lacks '$opcode': $out"
done

out=$(sg_requests "$disk" 2>&1)
grep -q 'Sense key: No Sense' <<<"$out" || fail "REQUEST SENSE: $out"
sg_sync "$disk" || fail "SYNCHRONIZE CACHE failed"

# ------------------------------------------------------------------ data
random_file /tmp/pattern 4M
dd if=/tmp/pattern of="$disk" bs=1M oflag=direct status=none

check_compare_and_write "$disk" /tmp/pattern
check_unmap_reads_zeros "$disk" /tmp/pattern
out=$(sg_get_lba_status --lba=0 "$disk" 2>&1)
grep -Eq 'LBA: 0x0000000000000000 +blocks: +2048 +deallocated' <<<"$out" ||
	fail "GET LBA STATUS at 0 after UNMAP: $out"
out=$(sg_get_lba_status --lba=2048 "$disk" 2>&1)
grep -Eq 'LBA: 0x0000000000000800 +blocks: +[1-9][0-9]* +mapped' <<<"$out" ||
	fail "GET LBA STATUS at 2048 (written): $out"

# Discard frees the shared memory behind the device.
check_blkdiscard_frees "$disk" "$alloc_shm" 4096
out=$(sg_get_lba_status --lba=0 "$disk" 2>&1)
grep -Eq "LBA: 0x0000000000000000 +blocks: +$((alloc_size / 512)) +deallocated" <<<"$out" ||
	fail "GET LBA STATUS after blkdiscard: $out"

# --------------------------------------------------- errors on the alloc disk
# A vendor-specific and an obsolete opcode the daemon does not implement.
for cdb in 'c0 00 00 00 00 00 00 00 00 00' '02 00 00 00 00 00'; do
	status=0
	out=$(sg_raw "$sg" $cdb 2>&1) || status=$?
	[ "$status" -ne 0 ] || fail "opcode ${cdb%% *} succeeded: $out"
	grep -q 'SCSI Status: Check Condition' <<<"$out" || fail "opcode ${cdb%% *}: $out"
	grep -q 'Sense key: Illegal Request' <<<"$out" || fail "opcode ${cdb%% *}: $out"
	grep -q 'Additional sense: Invalid command operation code' <<<"$out" || fail "opcode ${cdb%% *}: $out"
done
# READ(16) of the block just past the end.
last=$((alloc_size / 512))
lba=$(printf '%016x' "$last" | sed 's/../& /g')
status=0
out=$(sg_raw -r 512 "$sg" 88 00 $lba 00 00 00 01 00 00 2>&1) || status=$?
[ "$status" -ne 0 ] || fail "READ(16) past the end succeeded: $out"
grep -q 'Sense key: Illegal Request' <<<"$out" || fail "READ(16) past the end: $out"
grep -q 'Additional sense: Logical block address out of range' <<<"$out" ||
	fail "READ(16) past the end: $out"
# READ(16) of the last block works.
lba=$(printf '%016x' "$((last - 1))" | sed 's/../& /g')
sg_raw -r 512 "$sg" 88 00 $lba 00 00 00 01 00 00 || fail "READ(16) of the last block failed"
kill -0 "$DAEMON_PID" || fail "daemon died"
sg_turs "$disk" || fail "TEST UNIT READY failed after the errors"

# ------------------------------------------------------------- file device
tmpfs_dir=/tmp/scsi-commands-tmpfs
mkdir -p "$tmpfs_dir"
mount -t tmpfs -o size=512m tmpfs "$tmpfs_dir"
cleanup_fn umount "$tmpfs_dir"
image=$tmpfs_dir/disk.img
# mkfs.xfs refuses file systems under 300 MB.
backstore_create next scsi_file $((320 * 1048576)) "file/$image"
file_backstore=$BACKSTORE
loop_expose "$file_backstore"
file_disk=$DISK

random_file /tmp/pattern8 8M
write_and_verify "$file_disk" /tmp/pattern8
check_blkdiscard_frees "$file_disk" "$image" 16384

filesystem_discard_cycle "$file_disk" "$image" 'mkfs.ext4 -q -F' fsck.ext4 -fn
filesystem_discard_cycle "$file_disk" "$image" 'mkfs.xfs -q -f' xfs_repair -n

# ------------------------------------------------------------------- end
# Unexpose while the daemon runs: a LUN unlinked with no daemon waits for
# the kernel's command timeout.
loop_unexpose "$file_disk"
loop_unexpose "$disk"
backstore_remove "$file_backstore"
backstore_remove "$alloc"
wait_for 10 "the daemon to close every uio" test -z "$(daemon_uio_fds)"
[ ! -e "$alloc_shm" ] || fail "$alloc_shm left after the device was removed"
kill -0 "$DAEMON_PID" || fail "daemon died"
assert_log_lacks ' CRIT '
stop_daemon TERM
