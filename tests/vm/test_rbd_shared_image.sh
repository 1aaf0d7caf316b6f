#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Two rbd LUNs on one RBD image (two librbd clients, as two gateways are),
# on a Ceph cluster started once (tests/vm/ceph.sh), through tcm_loop:
# - both show the same identity, from the image's id: VPD 0x80's serial is
#   the id `rbd info` prints (not configfs's) and VPD 0x83's logical unit
#   designators are equal;
# - COMPARE AND WRITE of one and of two blocks through one is seen through
#   the other; a miscompare reports the offset of the first differing byte
#   and writes nothing;
# - no lost update: two loops, one per LUN, increment a counter block with
#   COMPARE AND WRITE (read, compare-and-write, retry on MISCOMPARE) at the
#   same time; each success read a value nobody else read, and the counter
#   ends at the number of successes. With COMPARE AND WRITE atomic only per
#   daemon device, two successes of one value show a lost update;
# - a client the cluster blocklisted (`ceph osd blocklist add`) writes
#   nothing and answers NOT READY, TARGET PORT IN UNAVAILABLE STATE, so that
#   an initiator fails the path.
# vm-run: -m 4096 -t 2400
source "$(dirname "$0")/../lib.sh"
source "$SOURCE_DIR/tests/vm/ceph.sh"
requires sg_inq sg3-utils
requires sg_vpd sg3-utils
requires sg_compare_and_write sg3-utils
requires sg_raw sg3-utils

ceph_start
timeout 300 rbd create --size 64M rbd/shared || fail "rbd create rbd/shared"
image_id=$(timeout 300 rbd info rbd/shared | sed -n 's/^[[:space:]]*id: //p')
[ -n "$image_id" ] || fail "rbd info shows no id for rbd/shared"
echo "image id: $image_id"
start_daemon

backstore_create next first 67108864 "rbd/rbd/shared" || fail "first refused"
first=$BACKSTORE
loop_expose "$first"
disk_a=$DISK
backstore_create next second 67108864 "rbd/rbd/shared" || fail "second refused"
second=$BACKSTORE
loop_expose "$second"
disk_b=$DISK

# ---- one identity
assert_log_has "\[rbd/first\] unit serial $image_id: the id of image 'rbd/shared'"
for disk in "$disk_a" "$disk_b"; do
	sg_inq -p 0x80 "$disk" | tee "$OUT_DIR/vpd80-${disk#/dev/}.txt"
	grep -F "Unit serial number: $image_id" "$OUT_DIR/vpd80-${disk#/dev/}.txt" >/dev/null ||
		fail "VPD 0x80 of $disk is not the image id $image_id"
	sg_vpd -p di_lu "$disk" | tee "$OUT_DIR/vpd83-${disk#/dev/}.txt"
	grep -Ei 'NAA' "$OUT_DIR/vpd83-${disk#/dev/}.txt" >/dev/null ||
		fail "VPD 0x83 of $disk has no NAA designator"
done
cmp "$OUT_DIR/vpd83-${disk_a#/dev/}.txt" "$OUT_DIR/vpd83-${disk_b#/dev/}.txt" ||
	fail "VPD 0x83 logical unit designators differ between two LUNs of one image"

# ---- COMPARE AND WRITE (one block: librbd's)
# block N: a 512-byte block that holds the counter value N.
block() {
	printf '%-511s\n' "counter $1"
}
COUNTER_LBA=200
block 0 > /tmp/block0
dd if=/tmp/block0 of="$disk_a" bs=512 seek=$COUNTER_LBA oflag=direct conv=notrunc status=none
{ cat /tmp/block0; block 1; } > /tmp/caw_right
sg_compare_and_write --lba=$COUNTER_LBA --num=1 --in=/tmp/caw_right "$disk_a" ||
	fail "COMPARE AND WRITE with matching data failed"
cmp <(read_blocks "$disk_b" $COUNTER_LBA 1) <(block 1) ||
	fail "COMPARE AND WRITE through the first LUN is not seen through the second"

# ---- MISCOMPARE's offset, and nothing written
read_blocks "$disk_a" $COUNTER_LBA 1 > /tmp/current
{ head -c 100 /tmp/current; printf 'X'; tail -c +102 /tmp/current; block 999; } > /tmp/caw_wrong
status=0
out=$(sg_compare_and_write --lba=$COUNTER_LBA --num=1 --in=/tmp/caw_wrong "$disk_a" 2>&1) ||
	status=$?
echo "$out"
[ "$status" -eq 14 ] || fail "COMPARE AND WRITE on other data: status $status, expected 14"
grep -F "Miscompare at byte offset: 100" <<<"$out" >/dev/null ||
	fail "MISCOMPARE does not report offset 100"
cmp <(read_blocks "$disk_b" $COUNTER_LBA 1) /tmp/current || fail "a miscompared COMPARE AND WRITE wrote"

# ---- two blocks
read_blocks "$disk_a" 300 2 > /tmp/two
random_file /tmp/two_new 1024
cat /tmp/two /tmp/two_new > /tmp/caw_two
sg_compare_and_write --lba=300 --num=2 --in=/tmp/caw_two "$disk_a" ||
	fail "COMPARE AND WRITE of two blocks failed"
cmp <(read_blocks "$disk_b" 300 2) /tmp/two_new || fail "COMPARE AND WRITE of two blocks did not write"

# ---- no lost update: two initiators' increments by COMPARE AND WRITE
# caw_increments DISK COUNT LOG: COUNT increments of the counter block, each
# logging the value it replaced; a MISCOMPARE (another came first) retries.
caw_increments() {
	local disk=$1 count=$2 log=$3 value status
	local current=$log.current request=$log.request
	while [ "$(wc -l < "$log")" -lt "$count" ]; do
		read_blocks "$disk" $COUNTER_LBA 1 > "$current"
		value=$(sed -n '1s/^counter \([0-9][0-9]*\) *$/\1/p' "$current")
		[ -n "$value" ] || { echo "unreadable counter block" >> "$log.error"; return 1; }
		{ cat "$current"; block $((value + 1)); } > "$request"
		status=0
		sg_compare_and_write --lba=$COUNTER_LBA --num=1 --in="$request" "$disk" \
			>/dev/null 2>&1 || status=$?
		case $status in
		0) echo "$value" >> "$log" ;;
		14) ;;
		*) echo "COMPARE AND WRITE status $status" >> "$log.error"; return 1 ;;
		esac
	done
}
INCREMENTS=30
block 0 > /tmp/block0
dd if=/tmp/block0 of="$disk_a" bs=512 seek=$COUNTER_LBA oflag=direct conv=notrunc status=none
: > "$OUT_DIR/increments-a.txt"
: > "$OUT_DIR/increments-b.txt"
caw_increments "$disk_a" $INCREMENTS "$OUT_DIR/increments-a.txt" &
loop_a=$!
caw_increments "$disk_b" $INCREMENTS "$OUT_DIR/increments-b.txt" &
loop_b=$!
wait $loop_a || fail "increments through the first LUN: $(cat "$OUT_DIR/increments-a.txt.error")"
wait $loop_b || fail "increments through the second LUN: $(cat "$OUT_DIR/increments-b.txt.error")"
final=$(read_blocks "$disk_a" $COUNTER_LBA 1 | sed -n '1s/^counter \([0-9][0-9]*\) *$/\1/p')
replaced=$(sort -n "$OUT_DIR/increments-a.txt" "$OUT_DIR/increments-b.txt" | uniq -d | tr '\n' ' ')
echo "counter $final after $((2 * INCREMENTS)) successful increments; values replaced twice: ${replaced:-none}"
[ -z "$replaced" ] || fail "lost updates: two COMPARE AND WRITEs both replaced value(s) $replaced"
[ "$final" = $((2 * INCREMENTS)) ] ||
	fail "counter is $final after $((2 * INCREMENTS)) successful COMPARE AND WRITEs"

# ---- a blocklisted client: no write, and a sense that fails the path
read_blocks "$disk_a" 500 1 > /tmp/before
rbd status rbd/shared | tee "$OUT_DIR/watchers.txt"
clients=$(sed -n 's/^[[:space:]]*watcher=\([^ ]*\) .*/\1/p' "$OUT_DIR/watchers.txt")
[ "$(wc -w <<<"$clients")" -eq 2 ] || fail "rbd status shows $(wc -w <<<"$clients") watchers, expected 2"
for client in $clients; do
	timeout 120 ceph osd blocklist add "$client" || fail "ceph osd blocklist add $client"
done
random_file /tmp/refused 512
status=0
out=$(sg_raw -s 512 -i /tmp/refused "$disk_a" 2a 00 00 00 01 f4 00 00 01 00 2>&1) ||
	status=$?
echo "$out"
grep -Ei "not ready" <<<"$out" >/dev/null && grep -Ei "unavailable" <<<"$out" >/dev/null ||
	fail "a write from a blocklisted client: no NOT READY / TARGET PORT IN UNAVAILABLE STATE"
assert_log_has "\[rbd/first\].*blocklisted this client"
for client in $clients; do
	timeout 120 ceph osd blocklist rm "$client" || fail "ceph osd blocklist rm $client"
done
timeout 300 rbd export --no-progress rbd/shared /tmp/shared.img || fail "rbd export rbd/shared"
cmp <(dd if=/tmp/shared.img bs=512 skip=500 count=1 status=none) /tmp/before ||
	fail "a blocklisted client's write reached the image"

loop_unexpose "$disk_a"
loop_unexpose "$disk_b"
backstore_remove "$first"
backstore_remove "$second"
wait_for 60 "the daemon to close every uio" test -z "$(daemon_uio_fds)"
stop_daemon TERM
assert_log_lacks ' CRIT '
