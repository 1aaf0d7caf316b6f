#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Out-of-order completion through the real ring, by an asynchronous handler:
# handler_reverse.so (tests/vm/handler_reverse.c) queues every request, and
# completes each batch newest first from fd_ready when the timerfd it
# watches fires. fio with crc32c verification at queue depth 16 must see
# every block it wrote. Then removals with requests held in the handler: a
# device removed under fio (its LUN first, as configfs demands), and the
# daemon stopped under fio, which must wait for the held requests through
# fd_ready before it closes the device and exits cleanly. No hang, no
# crash, no leaked file descriptor (and, in a sanitizer build, no report).
source "$(dirname "$0")/../lib.sh"
requires fio

handler_dir=$BUILD_DIR/tests/vm
[ -f "$handler_dir/handler_reverse.so" ] || fail "handler_reverse.so is not built in $handler_dir"

daemon_fd_count() { find /proc/"$DAEMON_PID"/fd -mindepth 1 | wc -l; }
fd_count_is() { [ "$(daemon_fd_count)" -eq "$1" ]; }
uio_count_is() { [ "$(daemon_uio_fds | wc -l)" -eq "$1" ]; }
fio_failed() { cat "$1" >&2; fail "$2"; }
# disk_writes_over DISK COUNT: the disk completed more than COUNT writes.
disk_writes_over() { [ "$(awk '{print $5}' /sys/block/"${1#/dev/}"/stat)" -gt "$2" ]; }

start_daemon_command "$BUILD_DIR/tcmu-runner" --handler-path "$handler_dir"
assert_log_has "handler 'reverse' loaded"

# ---- verification at queue depth 16
backstore_create next verified 67108864 reverse/1
loop_expose "$BACKSTORE"
verified_disk=$DISK
baseline_fds=$(daemon_fd_count)
status=0
fio --name=reverse --filename="$verified_disk" --ioengine=libaio --direct=1 \
	--rw=randwrite --bsrange=4k-64k --iodepth=16 --size=48M --serialize_overlap=1 \
	--verify=crc32c --verify_fatal=1 --do_verify=1 \
	--output="$OUT_DIR/fio-verified.txt" || status=$?
[ "$status" -eq 0 ] || fio_failed "$OUT_DIR/fio-verified.txt" "fio with verification failed ($status)"
grep 'err= 0' "$OUT_DIR/fio-verified.txt" >/dev/null ||
	fio_failed "$OUT_DIR/fio-verified.txt" "fio reported errors"
if grep -Ei 'verify.*(fail|bad)|crc32c.*(mismatch|wanted)' "$OUT_DIR/fio-verified.txt"; then
	fail "fio found blocks that differ from what it wrote"
fi
loop_unexpose "$verified_disk"
backstore_remove "$BACKSTORE"
wait_for 20 "the verified device to be closed" \
	grep -E 'reverse/verified\] reverse close: [0-9]+ requests' "$DAEMON_LOG"
line=$(grep -E 'reverse/verified\] reverse close' "$DAEMON_LOG")
overtaking=$(sed -E 's/.*\(([0-9]+) before an older one\).*/\1/' <<<"$line")
[ "$overtaking" -gt 1000 ] || fail "too few requests completed out of order: $line"
grep -E 'reverse/verified\] .*, 0 still queued' <<<"$line" >/dev/null ||
	fail "requests left queued at close: $line"
wait_for 10 "the daemon to close the removed device's uio" uio_count_is 0
wait_for 10 "the daemon's file descriptors to drop below $baseline_fds" \
	test "$(daemon_fd_count)" -lt "$baseline_fds"
idle_fds=$(daemon_fd_count)

# ---- removal under fio, with each request held 200 ms
backstore_create next removed 33554432 reverse/200
loop_expose "$BACKSTORE"
removed=$BACKSTORE
fio --name=removed --filename="$DISK" --ioengine=libaio --direct=1 --rw=randrw \
	--bs=4k --iodepth=16 --time_based --runtime=120 \
	--output=/dev/null >/dev/null 2>&1 & removed_fio=$!
cleanup_fn kill "$removed_fio"
wait_for 60 "fio's writes on $DISK" disk_writes_over "$DISK" 100
# The kernel drains the LUN's commands before the unlink returns: those
# held by the handler complete through fd_ready meanwhile.
loop_unexpose "$DISK"
backstore_remove "$removed"
[ ! -e "$removed" ] || fail "$removed still exists"
kill -0 "$DAEMON_PID" || fail "the daemon died removing a device under I/O"
wait "$removed_fio" || true
wait_for 20 "the removed device to be closed" \
	grep -E 'reverse/removed\] reverse close: [1-9][0-9]* requests .*, 0 still queued' "$DAEMON_LOG"
assert_log_has 'reverse/removed\] removed$'
wait_for 10 "the daemon to close the removed device's uio" uio_count_is 0
wait_for 10 "the daemon's file descriptors to return to $idle_fds" fd_count_is "$idle_fds"

# ---- daemon stop under fio: detach waits for held requests through fd_ready
# The handler answers all it holds at once when its timer fires, and until
# fio's next writes reach the ring nothing is in flight: a stop in that gap
# (a few ms of each hold; seen once in CI with 200 ms holds) has nothing to
# wait for. Holds of 2 s make that gap a fraction of a percent.
backstore_create next stopped 33554432 reverse/2000
stopped=$BACKSTORE
loop_expose "$BACKSTORE"
fio --name=stopped --filename="$DISK" --ioengine=libaio --direct=1 --rw=randwrite \
	--bs=4k --iodepth=16 --time_based --runtime=120 \
	--output=/dev/null >/dev/null 2>&1 & stopped_fio=$!
cleanup_fn kill "$stopped_fio"
# More than one hold's worth of writes (16): held writes completed, and fio goes on.
wait_for 60 "fio's writes on $DISK" disk_writes_over "$DISK" 20
stop_daemon TERM
grep -E 'reverse/stopped\] waiting for [1-9][0-9]* command\(s\) in flight' "$DAEMON_LOG" ||
	fail "the stop found no request in flight to wait for"
grep -E 'reverse/stopped\] reverse close: [1-9][0-9]* requests .*, 0 still queued' \
	"$DAEMON_LOG" || fail "the handler was closed with requests queued"
assert_log_has 'reverse/stopped\] detached$'
# Commands the kernel queued after the stop: a new daemon takes the device
# over (the kernel fails them with BUSY on the ring reset; they are retried).
start_daemon_command "$BUILD_DIR/tcmu-runner" --handler-path "$handler_dir"
kill "$stopped_fio" 2>/dev/null || true
wait "$stopped_fio" || true
loop_unexpose "$DISK"
backstore_remove "$stopped"
wait_for 20 "the taken-over device to be removed" grep -E 'reverse/stopped\] removed$' "$DAEMON_LOG"

assert_log_lacks ' CRIT '
assert_log_lacks 'closing anyway'
stop_daemon TERM
