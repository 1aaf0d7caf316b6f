#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Other local users and the alloc handler's memory. While the daemon runs,
# user nobody plants a file under the old /dev/shm name of a device about
# to be created and fills /dev/shm: the device is still created and
# takes writes, and the planted file is neither read nor touched. nobody
# cannot list, read or add to the memory directory. The memory of an
# earlier version, in /dev/shm, moves into the directory with its data at
# the daemon's first open, once.
source "$(dirname "$0")/../lib.sh"
requires setpriv util-linux

as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }

start_daemon
mount -o remount,size=16M /dev/shm
hba=$(next_free_hba)
planted=/dev/shm/tcmu-alloc-user_$hba-victim
as_nobody sh -c "umask 077; echo planted > $planted"
as_nobody dd if=/dev/zero of=/dev/shm/fill bs=1M status=none 2>/dev/null || true
[ "$(df --output=avail -B1 /dev/shm | tail -n 1)" -lt 1048576 ] ||
	fail "nobody did not fill /dev/shm: $(df -h /dev/shm)"

backstore_create "$hba" victim 33554432 alloc/ ||
	fail "a file another user planted in /dev/shm kept the device from being enabled"
victim=$BACKSTORE
assert_log_has "alloc: memory directory '$ALLOC_MEMORY'"
assert_log_has "'$planted' is not a private file of user 0; left alone, not read"
[ "$(cat "$planted")" = planted ] || fail "the planted file was changed"
memory=$ALLOC_MEMORY/user_$hba-victim
[ -f "$memory" ] || fail "no memory file $memory"
loop_expose "$victim"
random_file /tmp/pattern 24M
write_and_verify "$DISK" /tmp/pattern
loop_unexpose "$DISK"

# The directory is root's alone.
[ "$(stat -c %a:%U "$ALLOC_MEMORY")" = 700:root ] ||
	fail "$ALLOC_MEMORY is $(stat -c %a:%U "$ALLOC_MEMORY"), not 700:root"
if as_nobody ls "$ALLOC_MEMORY"; then
	fail "nobody lists $ALLOC_MEMORY"
fi
if as_nobody cat "$memory" > /dev/null; then
	fail "nobody reads $memory"
fi
if as_nobody sh -c "echo x > $ALLOC_MEMORY/user_99-planted"; then
	fail "nobody creates files in $ALLOC_MEMORY"
fi

# What an earlier version left: a disk in /dev/shm, which the daemon (here
# killed outright) kept there. The next daemon moves it, data and holes.
rm /dev/shm/fill
backstore_create next old_disk 16777216 alloc/
old=$BACKSTORE
old_name=$(basename "$(dirname "$old")")-old_disk
loop_expose "$old"
old_disk=$DISK
random_file /tmp/old_pattern 4M
write_and_verify "$old_disk" /tmp/old_pattern
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" || true
DAEMON_PID=
cp --sparse=always "$ALLOC_MEMORY/$old_name" "/dev/shm/tcmu-alloc-$old_name"
rm "$ALLOC_MEMORY/$old_name"
start_daemon
wait_for 30 "the memory to move from /dev/shm" grep -q \
	"memory '/dev/shm/tcmu-alloc-$old_name' moved to '$ALLOC_MEMORY/$old_name'" "$DAEMON_LOG"
wait_for 30 "the new daemon to serve every device" _daemon_serves_all
[ ! -e "/dev/shm/tcmu-alloc-$old_name" ] || fail "the old memory file is still in /dev/shm"
[ "$(stat -c %a:%U:%s "$ALLOC_MEMORY/$old_name")" = 600:root:16777216 ] ||
	fail "$ALLOC_MEMORY/$old_name is $(stat -c %a:%U:%s "$ALLOC_MEMORY/$old_name")"
[ "$(stat -c %b "$ALLOC_MEMORY/$old_name")" -lt $((6 * 2048)) ] ||
	fail "moving the memory filled its holes"
cmp <(dd if="$old_disk" bs=1M count=4 iflag=direct status=none) /tmp/old_pattern ||
	fail "$old_disk lost its data moving out of /dev/shm"
[ "$(cat "$planted")" = planted ] || fail "the planted file was changed"

loop_unexpose "$old_disk"
backstore_remove "$old"
backstore_remove "$victim"
wait_for 10 "the memory of the removed backstores to be freed" \
	test ! -e "$memory" -a ! -e "$ALLOC_MEMORY/$old_name"
stop_daemon TERM
