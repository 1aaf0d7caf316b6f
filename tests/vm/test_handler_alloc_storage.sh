#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Where the alloc handler keeps the data, on a real kernel: in a private
# file of the private memory directory that fills only as blocks are
# written, survives kill -9 of the daemon and goes with the backstore. The
# memory of a device removed while no daemon ran is freed by the next
# daemon. The config string names the memory; a string that cannot be a
# name is refused (the enable write fails), and so is a name in use.
source "$(dirname "$0")/../lib.sh"

start_daemon

backstore_create next mem 33554432 alloc/
mem=$BACKSTORE
shm=$ALLOC_MEMORY/$(basename "$(dirname "$mem")")-mem
[ -f "$shm" ] || fail "no memory file $shm"
[ "$(stat -c %a:%U "$ALLOC_MEMORY")" = 700:root ] ||
	fail "$ALLOC_MEMORY is $(stat -c %a:%U "$ALLOC_MEMORY"), not 700:root"
[ "$(stat -c %a "$shm")" = 600 ] || fail "$shm has mode $(stat -c %a "$shm"), not 600"
[ "$(stat -c %s "$shm")" -eq 33554432 ] || fail "$shm is not 32 MiB long"
[ "$(stat -c %b "$shm")" -eq 0 ] || fail "$shm uses memory before any write"

if backstore_create next junk 1048576 alloc//var/tmp/junk.img; then
	fail "alloc accepted a path as its config string"
fi
assert_log_has "alloc's config string is the name of the memory that holds the disk, a file in $ALLOC_MEMORY: .*got '/var/tmp/junk.img'"
backstore_remove "$BACKSTORE"

# A named memory: the file has the name; a second device may not share it.
backstore_create next named 1048576 alloc/named_disk
named=$BACKSTORE
[ -f "$ALLOC_MEMORY/named_disk" ] || fail "no memory file $ALLOC_MEMORY/named_disk"
if backstore_create next named_again 1048576 alloc/named_disk; then
	fail "a second device got the memory of $named"
fi
assert_log_has "memory 'named_disk' holds the disk of ${named#"$CORE"/}"
backstore_remove "$BACKSTORE"
backstore_remove "$named"
wait_for 10 "the named memory to be freed" test ! -e "$ALLOC_MEMORY/named_disk"

random_file /tmp/pattern 4M
loop_expose "$mem"
mem_disk=$DISK
write_and_verify "$mem_disk" /tmp/pattern
[ "$(stat -c %b "$shm")" -ge $((4 * 2048)) ] || fail "$shm does not hold the 4 MiB written"

# A daemon killed outright, and meanwhile a device removed: the next daemon
# finds the data again and frees the memory of the removed device, and only
# its, so a new device of that name will not start with its data.
backstore_create next gone 1048576 alloc/
gone=$BACKSTORE
gone_shm=$ALLOC_MEMORY/$(basename "$(dirname "$gone")")-gone
[ -f "$gone_shm" ] || fail "no memory file $gone_shm"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" || true
DAEMON_PID=
backstore_remove "$gone"
[ -f "$gone_shm" ] || fail "$gone_shm vanished without a daemon"
start_daemon
# The log already holds the first daemon's "ready": wait for the device itself.
wait_for 30 "the new daemon to re-attach $shm" grep -q "memory '$shm' re-attached" "$DAEMON_LOG"
wait_for 30 "the new daemon to serve every device" _daemon_serves_all
[ ! -e "$gone_shm" ] || fail "the memory of the removed device $gone was not freed"
cmp <(dd if="$mem_disk" bs=1M count=4 iflag=direct status=none) /tmp/pattern ||
	fail "$mem_disk lost its data across a daemon restart"

loop_unexpose "$mem_disk"
backstore_remove "$mem"
wait_for 10 "the memory of the removed backstore to be freed" test ! -e "$shm"
stop_daemon TERM
