#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kill -9 must lose nothing that was acknowledged:
# - a file backstore with its write cache on takes O_DIRECT|O_SYNC writes
#   (FUA or SYNCHRONIZE CACHE) one 4 KiB block at a time; after kill -9 every
#   acknowledged block is in the backing file, read directly; a new daemon
#   serves the stuck write and the next ones within 5 s;
# - an alloc backstore keeps its data across kill -9 and restart, and its
#   memory file goes away with the backstore;
# - a second daemon refuses to start while one runs, saying why.
source "$(dirname "$0")/../lib.sh"

start_daemon

second_status=0
second_output=$("$BUILD_DIR/tcmu-runner" --handler-path "$BUILD_DIR" 2>&1) || second_status=$?
[ "$second_status" -ne 0 ] || fail "a second daemon started while one runs"
grep -q 'another tcmu-runner' <<<"$second_output" ||
	fail "the second daemon did not say why it refused: $second_output"
kill -0 "$DAEMON_PID" || fail "the first daemon died when a second one was tried"

image=/var/tmp/kill9.img
backstore_create next kill9_file 16777216 "file/$image"
file_backstore=$BACKSTORE
echo 1 > "$file_backstore/attrib/emulate_write_cache"
loop_expose "$file_backstore"
file_disk=$DISK
grep -q 'write back' /sys/block/"${file_disk#/dev/}"/device/scsi_disk/*/cache_type ||
	fail "$file_disk does not show its write cache on"

backstore_create next kill9_alloc 16777216 alloc/
alloc_backstore=$BACKSTORE
loop_expose "$alloc_backstore"
alloc_disk=$DISK
hba=$(basename "$(dirname "$alloc_backstore")")
shm_file=$ALLOC_MEMORY/$hba-kill9_alloc
[ -f "$shm_file" ] || fail "no alloc memory file $shm_file"
random_file /tmp/alloc_pattern 4M
write_and_verify "$alloc_disk" /tmp/alloc_pattern

block() { printf "%-4095s\n" "block $1"; }
# expected_blocks LAST: blocks 0..LAST as the writer writes them.
expected_blocks() {
	local i
	for ((i = 0; i <= $1; i++)); do block "$i"; done
}
# The writer records each acknowledged block with a rename, so that a reader
# never sees the file empty, and stops between two writes when asked, so
# that no write is cut off with its record.
writer() {
	local i=0
	while [ ! -e /tmp/stop_writer ]; do
		block "$i" | dd of="$file_disk" bs=4096 seek="$i" oflag=direct,sync \
			conv=notrunc status=none || exit 1
		echo "$i" > /tmp/acknowledged.new
		mv /tmp/acknowledged.new /tmp/acknowledged
		i=$((i + 1))
	done
}
acknowledged_beyond() { [ "$(cat /tmp/acknowledged)" -gt "$1" ]; }
echo -1 > /tmp/acknowledged
rm -f /tmp/stop_writer
writer & writer_pid=$!
cleanup_fn kill "$writer_pid"
wait_for 60 "the first acknowledged writes" acknowledged_beyond 2

kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" || true
DAEMON_PID=
sleep 1
acknowledged=$(cat /tmp/acknowledged)
cmp <(head -c $(((acknowledged + 1) * 4096)) "$image") <(expected_blocks "$acknowledged") ||
	fail "$image lacks writes acknowledged before kill -9 (blocks 0..$acknowledged)"
[ -f "$shm_file" ] || fail "kill -9 took the alloc memory file with it"

start_daemon
wait_for 5 "writes to go on after the restart" acknowledged_beyond "$acknowledged"
touch /tmp/stop_writer
wait "$writer_pid" || fail "the writer failed after the restart"
acknowledged=$(cat /tmp/acknowledged)
cmp <(dd if="$file_disk" bs=4096 count=$((acknowledged + 1)) iflag=direct status=none) \
	<(expected_blocks "$acknowledged") ||
	fail "$file_disk does not read back blocks 0..$acknowledged after the restart"

cmp <(dd if="$alloc_disk" bs=1M count=4 iflag=direct status=none) /tmp/alloc_pattern ||
	fail "alloc data did not survive kill -9 and restart"

loop_unexpose "$alloc_disk"
backstore_remove "$alloc_backstore"
wait_for 10 "the alloc memory file to go with its backstore" test ! -e "$shm_file"
# While the daemon still serves it: sd sends SYNCHRONIZE CACHE when a disk
# with its write cache on goes away, which would otherwise wait in the ring
# for the kernel's command timeout and the SCSI layer's retries.
loop_unexpose "$file_disk"

kill -0 "$DAEMON_PID" || fail "daemon died"
assert_log_lacks ' CRIT '
stop_daemon TERM
