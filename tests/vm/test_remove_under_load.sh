#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Removing backstores while fio runs: a file device keeps running fio
# with verification, unaffected, while alloc and file backstores beside
# it are created and removed, three times, the first time while exposed
# and under I/O themselves. The daemon survives, closes each removed
# device's uio, and ends with the file descriptors it had before the churn.
source "$(dirname "$0")/../lib.sh"
requires fio

daemon_fd_count() { find /proc/"$DAEMON_PID"/fd -mindepth 1 | wc -l; }
fd_count_is() { [ "$(daemon_fd_count)" -eq "$1" ]; }
uio_count_is() { [ "$(daemon_uio_fds | wc -l)" -eq "$1" ]; }

start_daemon
backstore_create next steady 33554432 file//var/tmp/steady.img
loop_expose "$BACKSTORE"
steady_disk=$DISK
baseline_fds=$(daemon_fd_count)

fio --name=steady --filename="$steady_disk" --ioengine=libaio --direct=1 --rw=randrw \
	--bs=4k --iodepth=8 --size=16M --rate=512k,512k --verify=crc32c --verify_fatal=1 \
	--do_verify=1 --output="$OUT_DIR/fio-steady.txt" & steady_fio=$!
cleanup_fn kill "$steady_fio"

# Two devices exposed and under I/O at once, so that no SCSI disk name is
# reused within the test: without udev, a reused name can lose its /dev node.
churn_backstores=() churn_fios=()
for config in alloc/ file//var/tmp/churn.img; do
	backstore_create next "churn_${config%%/*}" 16777216 "$config"
	churn_backstores+=("$BACKSTORE")
	loop_expose "$BACKSTORE"
	fio --name=churn --filename="$DISK" --ioengine=libaio --direct=1 --rw=randwrite \
		--bs=4k --iodepth=16 --size=16M --time_based --runtime=60 \
		--output=/dev/null >/dev/null 2>&1 & churn_fios+=($!)
done
sleep 2
for churn in "${churn_backstores[@]}"; do
	# Unlinking the LUN ends the I/O on it; its errors are expected.
	for lun in "$LOOPBACK"/naa.*/tpgt_*/lun/lun_*; do
		[ "$(readlink -f "$lun/${churn##*/}" 2>/dev/null)" != "$(readlink -f "$churn")" ] ||
			loop_remove "$lun"
	done
	backstore_remove "$churn"
	[ ! -e "$churn" ] || fail "$churn still exists"
	kill -0 "$DAEMON_PID" || fail "daemon died removing $churn"
done
for pid in "${churn_fios[@]}"; do
	wait "$pid" || true
done
wait_for 10 "the daemon to close the removed devices' uio" uio_count_is 1

# Then devices that are only opened and closed, twice over.
for round in 2 3; do
	for config in alloc/ "file//var/tmp/churn$round.img"; do
		backstore_create next "churn_${config%%/*}_$round" 16777216 "$config"
		backstore_remove "$BACKSTORE"
		kill -0 "$DAEMON_PID" || fail "daemon died"
		wait_for 10 "the daemon to close the removed device's uio" uio_count_is 1
	done
done
wait_for 10 "the daemon's file descriptors to return to $baseline_fds" \
	fd_count_is "$baseline_fds"
[ -z "$(ls "$ALLOC_MEMORY")" ] || fail "removed alloc devices left memory files: $(ls "$ALLOC_MEMORY")"

status=0
wait "$steady_fio" || status=$?
[ "$status" -eq 0 ] || { cat "$OUT_DIR/fio-steady.txt"; fail "fio on the steady device failed ($status)"; }
grep -q 'err= 0' "$OUT_DIR/fio-steady.txt" || fail "fio reported errors on the steady device"

assert_log_lacks ' CRIT '
stop_daemon TERM
