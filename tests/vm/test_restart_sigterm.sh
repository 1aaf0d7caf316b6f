#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# SIGTERM during heavy I/O on a file and an alloc backstore (tcm_loop):
# the daemon exits 0, both devices stay in configfs and the kernel, a new
# daemon picks them up and serves I/O again within 5 s, and fio, which
# writes with verification across the restart, sees no I/O error and no
# verify failure.
source "$(dirname "$0")/../lib.sh"
requires fio

start_daemon
backstore_create next restart_file 33554432 file//var/tmp/restart_file.img
file_backstore=$BACKSTORE
loop_expose "$file_backstore"
file_disk=$DISK
backstore_create next restart_alloc 33554432 alloc/
alloc_backstore=$BACKSTORE
loop_expose "$alloc_backstore"
alloc_disk=$DISK

# Rate-limited so that the write phase surely spans the restart; then
# every block is read back and checked.
fio_verify() {
	fio --name="$1" --filename="$2" --ioengine=libaio --direct=1 --rw=randwrite \
		--bs=4k --iodepth=16 --size=16M --rate=1m --verify=crc32c --verify_fatal=1 \
		--do_verify=1 --output="$OUT_DIR/fio-$1.txt"
}
fio_verify file "$file_disk" & file_fio=$!
fio_verify alloc "$alloc_disk" & alloc_fio=$!
cleanup_fn kill "$file_fio" "$alloc_fio"
sleep 4

stop_daemon TERM
assert_log_has 'stopped'
[ -d "$file_backstore" ] && [ -d "$alloc_backstore" ] || fail "a backstore left configfs"
[ "$(kernel_tcmu_uios | wc -l)" -eq 2 ] || fail "the kernel no longer has both TCMU devices"

# A short outage, as an upgrade makes one.
sleep 1
start_daemon
[ "$(daemon_uio_fds | wc -l)" -eq 2 ] || fail "the new daemon does not serve both devices"
for disk in "$file_disk" "$alloc_disk"; do
	timeout 5 dd if="$disk" of=/dev/null bs=4k count=1 skip=100 iflag=direct status=none ||
		fail "no I/O on $disk within 5 s of the new daemon starting"
done

status=0
wait "$file_fio" || status=$?
[ "$status" -eq 0 ] || { cat "$OUT_DIR/fio-file.txt"; fail "fio on the file device failed ($status)"; }
wait "$alloc_fio" || status=$?
[ "$status" -eq 0 ] || { cat "$OUT_DIR/fio-alloc.txt"; fail "fio on the alloc device failed ($status)"; }
grep -q 'err= 0' "$OUT_DIR/fio-file.txt" || fail "fio reported errors on the file device"
grep -q 'err= 0' "$OUT_DIR/fio-alloc.txt" || fail "fio reported errors on the alloc device"
dmesg | grep -E 'I/O error|critical medium error' && fail "the kernel logged I/O errors"

assert_log_lacks ' CRIT '
stop_daemon TERM
