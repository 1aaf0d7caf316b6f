#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# GET LBA STATUS of an rbd LUN while its OSD holds every request (frozen,
# tests/vm/ceph.sh) does not stall the other devices of the daemon: the
# image's allocation map (rbd_diff_iterate2, which then waits up to
# osd_op_timeout) is asked on the rbd handler's own thread, not on the ring
# worker that the LUN shares with an alloc LUN. The image has no object map
# (layering only, as images made for the kernel's rbd client often are):
# librbd then asks the OSD object by object, where with fast-diff it
# answers from the object map it keeps while it holds the image's lock. While the query waits, reads
# of the alloc LUN each complete within 2 s; the query gets BUSY at the
# LUN's deadline (the device says reconnecting), and once the OSD answers
# again the command completes with the image's extents.
# vm-run: -m 4096 -t 1200
source "$(dirname "$0")/../lib.sh"
source "$SOURCE_DIR/tests/vm/ceph.sh"
requires sg_get_lba_status sg3-utils

ceph_start
timeout 300 rbd create --size 64M --image-feature layering rbd/lunq ||
	fail "rbd create rbd/lunq"
start_daemon

# A device goes to the least loaded ring worker, the first of equals, and
# there is one worker per CPU: after the rbd LUN (worker 0), one filler for
# each other worker, so that the alloc LUN read below shares worker 0.
backstore_create next lunq 67108864 "rbd/rbd/lunq;osd_op_timeout=5" || fail "lunq refused"
rbd_backstore=$BACKSTORE
backstores=("$rbd_backstore")
cpus=$(getconf _NPROCESSORS_ONLN)
for ((filler = 1; filler < cpus; filler++)); do
	backstore_create next "filler$filler" 1048576 alloc/ || fail "filler$filler refused"
	backstores+=("$BACKSTORE")
done
backstore_create next neighbour 16777216 alloc/ || fail "neighbour refused"
alloc_backstore=$BACKSTORE
backstores+=("$alloc_backstore")
loop_expose "$rbd_backstore"
rbd_disk=$DISK
loop_expose "$alloc_backstore"
alloc_disk=$DISK
dd if=/dev/urandom of="$rbd_disk" bs=1M count=4 oflag=direct status=none ||
	fail "writing the rbd LUN"

out=$(sg_get_lba_status --lba=0 "$rbd_disk" 2>&1) || fail "GET LBA STATUS, OSD up: $out"
grep -Eq 'LBA: 0x0000000000000000 +blocks: +[1-9][0-9]* +mapped' <<<"$out" ||
	fail "GET LBA STATUS at 0 (written), OSD up: $out"

ceph_osd_pause
# Without an object map nothing is cached: the query waits for the frozen OSD.
query_start=$SECONDS
sg_get_lba_status --lba=0 "$rbd_disk" > /tmp/lba_status 2>&1 &
query_pid=$!
sleep 2
kill -0 "$query_pid" 2>/dev/null || fail "GET LBA STATUS ended while the OSD was frozen: $(cat /tmp/lba_status)"
# Across the query's wait and the deadline's BUSY (5 s after it arrived),
# within the longest freeze the OSD recovers from (ceph_osd_pause).
for ((round = 0; round < 4; round++)); do
	read_start=$(date +%s%N)
	timeout 20 dd if="$alloc_disk" of=/dev/null bs=1M count=4 iflag=direct status=none ||
		fail "reading the alloc LUN while the rbd query waits"
	read_ms=$((($(date +%s%N) - read_start) / 1000000))
	echo "alloc LUN read $round: $read_ms ms"
	[ "$read_ms" -lt 2000 ] ||
		fail "an alloc LUN read took $read_ms ms while GET LBA STATUS of the rbd LUN waited: the query holds the ring worker"
	sleep 1
done
wait_for 30 "lunq's deadline to answer the query" \
	grep -q '\[rbd/lunq\] state: reconnecting' "$DAEMON_LOG"
ceph_osd_resume
timeout 120 tail --pid="$query_pid" -f /dev/null ||
	fail "GET LBA STATUS did not end within 120 s of the OSD's return"
status=0
wait "$query_pid" || status=$?
echo "GET LBA STATUS after $((SECONDS - query_start)) s, status $status:"
cat /tmp/lba_status
# The kernel retries BUSY within the command's timeout (60 s): an answer
# after the OSD's return, or BUSY passed up once the retries ran out.
if [ "$status" -eq 0 ]; then
	grep -Eq 'LBA: 0x0000000000000000 +blocks: +[1-9][0-9]* +mapped' /tmp/lba_status ||
		fail "GET LBA STATUS after the OSD's return: $(cat /tmp/lba_status)"
else
	grep -qi 'busy' /tmp/lba_status || fail "GET LBA STATUS failed, not with BUSY: $(cat /tmp/lba_status)"
fi
out=$(sg_get_lba_status --lba=0 "$rbd_disk" 2>&1) || fail "GET LBA STATUS, OSD back: $out"
grep -Eq 'LBA: 0x0000000000000000 +blocks: +[1-9][0-9]* +mapped' <<<"$out" ||
	fail "GET LBA STATUS at 0, OSD back: $out"
wait_for 60 "lunq to be open again" \
	grep -q '\[rbd/lunq\] state: open: the Ceph cluster answers again' "$DAEMON_LOG"

loop_unexpose "$rbd_disk"
loop_unexpose "$alloc_disk"
for backstore in "${backstores[@]}"; do
	backstore_remove "$backstore"
done
wait_for 60 "the daemon to close every uio" test -z "$(daemon_uio_fds)"
kill -0 "$DAEMON_PID" || fail "daemon died"
assert_log_lacks ' CRIT '
stop_daemon TERM
