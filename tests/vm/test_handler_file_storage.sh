#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Where the file handler keeps the data, on a real kernel: in a file relative
# to the daemon's working directory, created at the device size, that holds
# exactly what was written, across kill -9 of the daemon too; RECONFIG of
# the size grows it and of the path switches to a new file (a bad path is
# refused and changes nothing); the file stays after the backstore goes. A
# path in a missing directory is refused: the enable write fails. An
# existing file of another size is refused unless the config says any_size:.
source "$(dirname "$0")/../lib.sh"

workdir=$(mktemp -d /tmp/handler-file.XXXXXX)
DAEMON_CWD=$workdir start_daemon

backstore_create next disk 33554432 file/disk.img
file=$BACKSTORE
[ -f "$workdir/disk.img" ] || fail "disk.img not created in the daemon's working directory"
[ "$(stat -c %s "$workdir/disk.img")" -eq 33554432 ] || fail "disk.img is not 32 MiB long"

if backstore_create next bad 1048576 "file/$workdir/missing/bad.img"; then
	fail "a file in a missing directory was accepted"
fi
assert_log_has "directory '$workdir/missing' does not exist"
backstore_remove "$BACKSTORE"

random_file /tmp/pattern 4M
loop_expose "$file"
file_disk=$DISK
write_and_verify "$file_disk" /tmp/pattern
cmp <(head -c 4M "$workdir/disk.img") /tmp/pattern || fail "disk.img does not hold the data"

kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" || true
DAEMON_PID=
cmp <(head -c 4M "$workdir/disk.img") /tmp/pattern || fail "disk.img lost the data with the daemon"
DAEMON_CWD=$workdir start_daemon
# The log already holds the first daemon's "ready": wait for the device itself.
wait_for 30 "the new daemon to serve every device" _daemon_serves_all
cmp <(dd if="$file_disk" bs=1M count=4 iflag=direct status=none) /tmp/pattern ||
	fail "$file_disk lost its data across a daemon restart"

echo 67108864 > "$file/attrib/dev_size" || fail "dev_size change refused"
[ "$(stat -c %s "$workdir/disk.img")" -eq 67108864 ] || fail "disk.img did not grow to 64 MiB"
if echo -n "file/$workdir/missing/third.img" > "$file/attrib/dev_config"; then
	fail "a dev_config change to a missing directory was accepted"
fi
cmp <(dd if="$file_disk" bs=1M count=4 iflag=direct status=none) /tmp/pattern ||
	fail "$file_disk changed after a refused dev_config change"
echo -n "file/$workdir/second.img" > "$file/attrib/dev_config" || fail "dev_config change refused"
[ "$(stat -c %s "$workdir/second.img")" -eq 67108864 ] || fail "second.img is not 64 MiB long"
cmp <(dd if="$file_disk" bs=1M count=4 iflag=direct status=none) <(head -c 4M /dev/zero) ||
	fail "$file_disk does not read the new, empty second.img"

loop_unexpose "$file_disk"
backstore_remove "$file"

# An existing file of another size may be another disk's: refused, with the
# way to ask, and untouched; used (its head) when the config asks.
if backstore_create next other_size 16777216 "file/$workdir/disk.img"; then
	fail "a 64 MiB file was accepted for a 16 MiB device"
fi
assert_log_has "'$workdir/disk.img' holds 67108864 bytes, not the device size 16777216; configure 'any_size:$workdir/disk.img'"
backstore_remove "$BACKSTORE"
[ "$(stat -c %s "$workdir/disk.img")" -eq 67108864 ] || fail "the refused disk.img changed size"
backstore_create next asked 16777216 "file/any_size:$workdir/disk.img" ||
	fail "any_size: did not allow a larger file"
loop_expose "$BACKSTORE"
cmp <(dd if="$DISK" bs=1M count=4 iflag=direct status=none) /tmp/pattern ||
	fail "the head of disk.img is not the disk with any_size:"
loop_unexpose "$DISK"
backstore_remove "$BACKSTORE"

stop_daemon TERM
cmp <(head -c 4M "$workdir/disk.img") /tmp/pattern || fail "disk.img lost the data"
[ "$(stat -c %s "$workdir/disk.img")" -eq 67108864 ] || fail "any_size: changed the size of disk.img"
