#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# EXTENDED COPY through tcm_loop with sg_xcopy: a copy within one device
# works as it always did; a copy between two devices is refused (COPY
# ABORTED, UNREACHABLE COPY TARGET, the destination untouched) until an
# xcopy_group in the config file puts both in one group; once the daemon
# has reloaded the file the copy moves the bytes, sent to either device;
# groups that keep the two apart refuse it again. A destination removed
# while a copy to it runs stops the copy at its next chunk.
source "$(dirname "$0")/../lib.sh"

requires sg_xcopy sg3-utils
requires dmsetup
requires losetup
requires_module sg
requires_module dm_delay
requires_module loop

config_dir=/tmp/xcopy-conf
config=$config_dir/tcmu.conf
mkdir -p "$config_dir"
# No xcopy_group: copies stay on their device. Debug level: refusals are logged.
echo "log_level = 4" > "$config"
start_daemon --config "$config"

size=$((16 * 1048576))
backstore_create next xsource "$size" alloc/
source_backstore=$BACKSTORE
source_name=$(basename "$(dirname "$source_backstore")")/xsource
loop_expose "$source_backstore"
source_disk=$DISK
backstore_create next xdest "$size" alloc/
dest_backstore=$BACKSTORE
loop_expose "$dest_backstore"
dest_disk=$DISK

# sg_xcopy finds no SCSI generic node from a block device here: name the nodes.
source_sg=$(scsi_generic_node "$source_disk")
dest_sg=$(scsi_generic_node "$dest_disk")

# refusals: how many copies the daemon refused for the groups.
refusals() {
	grep -c 'EXTENDED COPY names user_[0-9]*/x[a-z]*, which no xcopy_group puts' \
		"$DAEMON_LOG" || true
}

# refused_copy ARGS...: sg_xcopy ARGS fails with COPY ABORTED, which the daemon
# logged as refused for the groups.
refused_copy() {
	local before out
	before=$(refusals)
	if out=$(sg_xcopy "$@" 2>&1); then
		fail "sg_xcopy $* worked: $out"
	fi
	grep -q 'Copy aborted' <<<"$out" || fail "sg_xcopy $* failed, but not with COPY ABORTED: $out"
	[ "$(refusals)" -gt "$before" ] || fail "sg_xcopy $* failed, but not for the groups: $out"
}

# log_time PATTERN: when the daemon logged its first line matching PATTERN, in
# milliseconds since the epoch.
log_time() {
	local line
	line=$(grep -E -m1 -- "$1" "$DAEMON_LOG") || fail "daemon log has no line matching '$1'"
	date -d "${line:0:23}" +%s%3N
}

# read_disk DISK SKIP_MIB COUNT_MIB: the bytes, past the page cache.
read_disk() {
	dd if="$1" bs=1M skip="$2" count="$3" iflag=direct status=none
}

random_file /tmp/pattern 4M
random_file /tmp/before 4M
dd if=/tmp/pattern of="$source_disk" bs=1M oflag=direct status=none
dd if=/tmp/before of="$dest_disk" bs=1M oflag=direct status=none

# Within one device: no opt-in needed. 8192 blocks of 512 bytes are 4 MiB.
sg_xcopy if="$source_sg" of="$source_sg" bs=512 count=8192 seek=16384 ||
	fail "a copy within $source_disk failed"
cmp <(read_disk "$source_disk" 8 4) /tmp/pattern || fail "the copy within $source_disk differs"

# Between the two devices without an xcopy_group: refused, nothing written.
refused_copy if="$source_sg" of="$dest_sg" bs=512 count=8192
refused_copy --on_src if="$source_sg" of="$dest_sg" bs=512 count=8192
cmp <(read_disk "$dest_disk" 0 4) /tmp/before || fail "a refused copy changed $dest_disk"

# The opt-in: one group with both, one named as user_N/name and one by name.
# The daemon follows the file; its log says when the group is in force.
printf 'log_level = 4\nxcopy_group = %s xdest\n' "$source_name" > "$config.new"
mv "$config.new" "$config"
wait_for 10 "the daemon to apply the xcopy_group" \
	grep -q "EXTENDED COPY allowed between the devices of xcopy_group 1: $source_name xdest" \
	"$DAEMON_LOG"

sg_xcopy if="$source_sg" of="$dest_sg" bs=512 count=8192 ||
	fail "a copy between two devices of one xcopy_group failed"
cmp <(read_disk "$dest_disk" 0 4) /tmp/pattern || fail "the copy to $dest_disk differs"
# Sent to the source this time, to another place of the destination.
sg_xcopy --on_src if="$source_sg" of="$dest_sg" bs=512 count=8192 seek=8192 ||
	fail "a copy sent to the source device failed"
cmp <(read_disk "$dest_disk" 4 4) /tmp/pattern || fail "the copy sent to the source differs"
# And back, from the destination to the source's end.
sg_xcopy if="$dest_sg" of="$source_sg" bs=512 count=8192 skip=8192 seek=24576 ||
	fail "a copy from the second device to the first failed"
cmp <(read_disk "$source_disk" 12 4) /tmp/pattern || fail "the copy back differs"

# Groups that name both devices, but apart: refused again.
printf 'log_level = 4\nxcopy_group = xsource other1\nxcopy_group = xdest other2\n' > "$config.new"
mv "$config.new" "$config"
wait_for 10 "the daemon to apply the new groups" \
	grep -q 'EXTENDED COPY allowed between the devices of xcopy_group 2: xdest other2' \
	"$DAEMON_LOG"
refused_copy if="$source_sg" of="$dest_sg" bs=512 count=8192 seek=16384
cmp <(read_disk "$dest_disk" 8 4) <(head -c 4M /dev/zero) ||
	fail "a copy between devices of different groups changed $dest_disk"

# The destination removed while a copy to it runs: the copy is sent to the
# source, which reads slowly through a dm-delay device, so the removal comes
# mid-copy. The copy stops at its next chunk with COPY ABORTED, so the removal
# does not wait for all of it; the source is still served.
head -c 16M /dev/urandom > /var/tmp/xcopy-slow
slow_loop=$(losetup --find --show /var/tmp/xcopy-slow)
cleanup_fn losetup -d "$slow_loop"
dmsetup create xcopy_slow --table "0 32768 delay $slow_loop 0 1000"
cleanup_fn dmsetup remove xcopy_slow
# Without udev, dmsetup may leave the /dev/mapper node to us.
dmsetup mknodes xcopy_slow
backstore_create next xfrom 16777216 file//dev/mapper/xcopy_slow
from_backstore=$BACKSTORE
loop_expose "$from_backstore"
from_disk=$DISK
from_sg=$(scsi_generic_node "$from_disk")
backstore_create next xto 16777216 alloc/
to_backstore=$BACKSTORE
to_memory=$ALLOC_MEMORY/$(basename "$(dirname "$to_backstore")")-xto
loop_expose "$to_backstore"
to_disk=$DISK
to_sg=$(scsi_generic_node "$to_disk")
printf 'log_level = 4\nxcopy_group = xfrom xto\n' > "$config.new"
mv "$config.new" "$config"
wait_for 10 "the daemon to apply the xfrom/xto group" \
	grep -q 'EXTENDED COPY allowed between the devices of xcopy_group 1: xfrom xto' "$DAEMON_LOG"
# 16 MiB in chunks of 256 KiB, each read waiting 1 s: a minute at least, more
# than a loaded host needs to remove the destination.
sg_xcopy --on_src if="$from_sg" of="$to_sg" bs=512 count=32768 > /tmp/xcopy-removed.out 2>&1 &
copy_pid=$!
copy_started() {
	kill -0 "$copy_pid" 2>/dev/null ||
		fail "the copy ended before the removal: $(cat /tmp/xcopy-removed.out)"
	[ "$(du -k "$to_memory" | cut -f1)" -gt 0 ]
}
wait_for 30 "the copy to reach $to_memory" copy_started
loop_unexpose "$to_disk"
backstore_remove "$to_backstore"
assert_log_has '\[alloc/xto\] waiting for 1 EXTENDED COPY command\(s\) of other devices'
# Timed by the daemon's clock: on a loaded host the shell's own steps are slow.
removal_ms=$(($(log_time '\[alloc/xto\] removed$') - $(log_time '\[alloc/xto\] removed by the kernel')))
[ "$removal_ms" -lt 5000 ] ||
	fail "the daemon's removal of the destination waited $removal_ms ms for the copy"
if wait "$copy_pid"; then
	fail "a copy to a device removed mid-copy succeeded: $(cat /tmp/xcopy-removed.out)"
fi
grep -q 'Copy aborted' /tmp/xcopy-removed.out ||
	fail "a copy to a removed device failed otherwise than COPY ABORTED: $(cat /tmp/xcopy-removed.out)"
cmp <(read_disk "$from_disk" 0 1) <(head -c 1M /var/tmp/xcopy-slow) ||
	fail "$from_disk unreadable after the copy's destination went away"
loop_unexpose "$from_disk"
backstore_remove "$from_backstore"

kill -0 "$DAEMON_PID" || fail "daemon died"
assert_log_lacks ' (ERROR|CRIT) '
loop_unexpose "$dest_disk"
loop_unexpose "$source_disk"
backstore_remove "$dest_backstore"
backstore_remove "$source_backstore"
stop_daemon TERM
