#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A file LUN has many commands in flight at once: its storage is a block
# device that takes 20 ms per I/O (dm-delay over a loop device on a sparse
# 1 GiB file), fio reads it at random at queue depth 16, and the daemon
# sustains more than twice what one I/O at a time allows (2 x 1/20 ms =
# 100 IOPS) while tcmu-admin shows 8 or more commands in flight. The log
# says the device uses io_uring.
source "${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
source "$SOURCE_DIR/tests/vm/dbus_common.sh"

requires fio fio
requires dmsetup dmsetup
requires losetup mount
requires python3 python3
requires_module loop
requires_module dm_delay
ADMIN=$BUILD_DIR/tcmu-admin
[ -x "$ADMIN" ] || fail "$ADMIN is not built"

size=$((1024 * MIB))
backing=/var/tmp/tcmu-in-flight.img
truncate -s "$size" "$backing"
cleanup_fn rm -f "$backing"
loop=$(losetup --find --show "$backing") || fail "losetup $backing"
cleanup_fn losetup -d "$loop"
dmsetup create tcmu_delay --table "0 $((size / 512)) delay $loop 0 20" || fail "dmsetup create"
cleanup_fn dmsetup remove tcmu_delay
# Every read of the daemon reaches the slow medium: no readahead fills the
# page cache for later reads (fio reads each block once, too).
dmsetup mknodes tcmu_delay
wait_for 10 "/dev/mapper/tcmu_delay" test -b /dev/mapper/tcmu_delay
blockdev --setra 0 /dev/mapper/tcmu_delay || fail "blockdev --setra 0"

system_bus_start
start_daemon_on_bus
backstore_create next slow $((size)) file//dev/mapper/tcmu_delay || fail "slow refused"
slow_dir=$BACKSTORE
slow=${slow_dir#"$CORE"/}
assert_log_has "asynchronous I/O on io_uring"
loop_expose "$slow_dir"

fio --name=in_flight --filename="$DISK" --ioengine=libaio --direct=1 --rw=randread \
	--bs=4k --iodepth=16 --runtime=15 --time_based --randrepeat=0 \
	--output-format=json --output=/tmp/fio.json || fail "fio failed"
cp /tmp/fio.json "$OUT_DIR/fio.json" 2>/dev/null || true
iops=$(python3 -c 'import json, sys; print(int(json.load(open(sys.argv[1]))["jobs"][0]["read"]["iops"]))' \
	/tmp/fio.json)
in_flight_max=$("$ADMIN" --json stats "$slow" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["in_flight_max"])')
echo "random 4 KiB reads at QD16 on a 20 ms medium: $iops IOPS, in_flight_max $in_flight_max"
[ "$in_flight_max" -ge 8 ] ||
	fail "at most $in_flight_max commands were in flight at once, expected 8 or more"
[ "$iops" -gt 100 ] || fail "$iops IOPS: not more than twice what one I/O at a time allows (100)"

loop_unexpose "$DISK"
backstore_remove "$slow_dir"
assert_log_lacks ' CRIT '
