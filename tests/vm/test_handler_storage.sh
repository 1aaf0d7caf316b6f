#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Where the alloc and file handlers keep the data, on a real kernel: alloc in
# a private /dev/shm file that fills as blocks are written, survives kill -9
# of the daemon and goes with the backstore; file in a file relative to the
# daemon's working directory that holds exactly what was written, follows
# RECONFIG of its size and path, and stays after the backstore goes. Refused
# config strings fail the enable write. The memory of an alloc device removed
# while no daemon ran is freed by the next daemon.
source "$(dirname "$0")/../lib.sh"

workdir=$(mktemp -d /tmp/handler-storage.XXXXXX)
DAEMON_CWD=$workdir start_daemon

backstore_create next mem 33554432 alloc/
mem=$BACKSTORE
shm=/dev/shm/tcmu-alloc-$(basename "$(dirname "$mem")")-mem
[ -f "$shm" ] || fail "no memory file $shm"
[ "$(stat -c %a "$shm")" = 600 ] || fail "$shm has mode $(stat -c %a "$shm"), not 600"
[ "$(stat -c %s "$shm")" -eq 33554432 ] || fail "$shm is not 32 MiB long"
[ "$(stat -c %b "$shm")" -eq 0 ] || fail "$shm uses memory before any write"

backstore_create next disk 33554432 file/disk.img
file=$BACKSTORE
[ -f "$workdir/disk.img" ] || fail "disk.img not created in the daemon's working directory"
[ "$(stat -c %s "$workdir/disk.img")" -eq 33554432 ] || fail "disk.img is not 32 MiB long"

if backstore_create next bad 1048576 "file/$workdir/missing/bad.img"; then
	fail "a file in a missing directory was accepted"
fi
assert_log_has "directory '$workdir/missing' does not exist"
backstore_remove "$BACKSTORE"
if backstore_create next junk 1048576 alloc/junk; then
	fail "alloc accepted a config string"
fi
backstore_remove "$BACKSTORE"

random_file /tmp/pattern 4M
loop_expose "$mem"
mem_disk=$DISK
write_and_verify "$mem_disk" /tmp/pattern
[ "$(stat -c %b "$shm")" -ge $((4 * 2048)) ] || fail "$shm does not hold the 4 MiB written"
loop_expose "$file"
file_disk=$DISK
write_and_verify "$file_disk" /tmp/pattern
cmp <(head -c 4M "$workdir/disk.img") /tmp/pattern || fail "disk.img does not hold the data"

# A daemon killed outright, and meanwhile a device removed: the next daemon
# finds both disks' data again and frees the memory of the removed device,
# and only its, so a new device of that name will not start with its data.
backstore_create next gone 1048576 alloc/
gone=$BACKSTORE
gone_shm=/dev/shm/tcmu-alloc-$(basename "$(dirname "$gone")")-gone
[ -f "$gone_shm" ] || fail "no memory file $gone_shm"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" || true
DAEMON_PID=
backstore_remove "$gone"
[ -f "$gone_shm" ] || fail "$gone_shm vanished without a daemon"
DAEMON_CWD=$workdir start_daemon
# The log already holds the first daemon's "ready": wait for the devices themselves.
wait_for 30 "the new daemon to re-attach $shm" grep -q "memory '$shm' re-attached" "$DAEMON_LOG"
wait_for 30 "the new daemon to serve every device" _daemon_serves_all
[ ! -e "$gone_shm" ] || fail "the memory of the removed device $gone was not freed"
for disk in "$mem_disk" "$file_disk"; do
	cmp <(dd if="$disk" bs=1M count=4 iflag=direct status=none) /tmp/pattern ||
		fail "$disk lost its data across a daemon restart"
done

# RECONFIG: a bigger size grows the file; a new path switches to a new file.
echo 67108864 > "$file/attrib/dev_size" || fail "dev_size change refused"
[ "$(stat -c %s "$workdir/disk.img")" -eq 67108864 ] || fail "disk.img did not grow to 64 MiB"
echo -n "file/$workdir/second.img" > "$file/attrib/dev_config" || fail "dev_config change refused"
[ "$(stat -c %s "$workdir/second.img")" -eq 67108864 ] || fail "second.img is not 64 MiB long"
if echo -n "file/$workdir/missing/third.img" > "$file/attrib/dev_config"; then
	fail "a dev_config change to a missing directory was accepted"
fi
cmp <(dd if="$file_disk" bs=1M count=4 iflag=direct status=none) <(head -c 4M /dev/zero) ||
	fail "$file_disk does not read the new, empty second.img"

loop_unexpose "$mem_disk"
backstore_remove "$mem"
wait_for 10 "the memory of the removed alloc backstore to be freed" test ! -e "$shm"
loop_unexpose "$file_disk"
backstore_remove "$file"
stop_daemon TERM
cmp <(head -c 4M "$workdir/disk.img") /tmp/pattern || fail "disk.img lost the data"
