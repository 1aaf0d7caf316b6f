#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Two rbd LUNs on one RBD image (two librbd clients, as two gateways are),
# on a Ceph cluster started once (tests/vm/ceph.sh), through tcm_loop:
# - both show the same identity, from the image's id: VPD 0x80's serial is
#   the id `rbd info` prints (not configfs's) and VPD 0x83's logical unit
#   designators are equal;
# - COMPARE AND WRITE of one and of two blocks through one is seen through
#   the other; a miscompare reports the offset of the first differing byte
#   and writes nothing; so do two blocks across the image's first object
#   boundary (the locked path: librbd compares within one object only);
# - no lost update: two loops, one per LUN, increment a counter block with
#   COMPARE AND WRITE (read, compare-and-write, retry on MISCOMPARE) at the
#   same time; each success read a value nobody else read, and the counter
#   ends at the number of successes. With COMPARE AND WRITE atomic only per
#   daemon device, two successes of one value show a lost update;
# - the same through a third LUN with 4096-byte blocks (more than librbd
#   compares in one operation: the handler holds the image's exclusive lock
#   while it reads, compares and writes) against the second LUN's one-block
#   increments of the same counter sector; a miscompare there reports an
#   offset beyond the first sector;
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
backstore_create next quad 67108864 "rbd/rbd/shared" hw_block_size=4096 || fail "quad refused"
quad=$BACKSTORE
loop_expose "$quad"
disk_q=$DISK

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

# ---- two blocks across the image's first object boundary (4 MiB, LBA 8192):
# one sector in each object, which librbd's own compare and write refuses;
# the locked one compares and writes both, and a miscompare in the second
# object reports its offset from the first byte and writes neither object
BOUNDARY_LBA=8191
read_blocks "$disk_a" $BOUNDARY_LBA 2 > /tmp/across
random_file /tmp/across_new 1024
cat /tmp/across /tmp/across_new > /tmp/caw_across
sg_compare_and_write --lba=$BOUNDARY_LBA --num=2 --in=/tmp/caw_across "$disk_a" ||
	fail "COMPARE AND WRITE across an object boundary failed"
cmp <(read_blocks "$disk_b" $BOUNDARY_LBA 2) /tmp/across_new ||
	fail "COMPARE AND WRITE across an object boundary did not write both objects"
# byte 600 (the second object's 88th) made to differ for sure: its bits flipped
flipped=$(( $(od -An -tu1 -j600 -N1 /tmp/across_new) ^ 255 ))
{ head -c 600 /tmp/across_new; printf "\\$(printf '%03o' $flipped)"; tail -c +602 /tmp/across_new
  head -c 1024 /dev/urandom; } > /tmp/caw_across_wrong
status=0
out=$(sg_compare_and_write --lba=$BOUNDARY_LBA --num=2 --in=/tmp/caw_across_wrong "$disk_a" 2>&1) ||
	status=$?
echo "$out"
[ "$status" -eq 14 ] || fail "COMPARE AND WRITE across objects on other data: status $status, expected 14"
grep -F "Miscompare at byte offset: 600" <<<"$out" >/dev/null ||
	fail "MISCOMPARE across an object boundary does not report offset 600"
cmp <(read_blocks "$disk_b" $BOUNDARY_LBA 2) /tmp/across_new ||
	fail "a miscompared COMPARE AND WRITE across an object boundary wrote"

# ---- no lost update: two initiators' increments by COMPARE AND WRITE
# caw_increments DISK BLOCK_SIZE LBA COUNT LOG: COUNT increments of the
# counter in the first 512 bytes of block LBA, each logging the value it
# replaced; a MISCOMPARE (another came first) retries.
caw_increments() {
	local disk=$1 size=$2 lba=$3 count=$4 log=$5 value status
	local current=$log.current request=$log.request
	while [ "$(wc -l < "$log")" -lt "$count" ]; do
		dd if="$disk" bs="$size" skip="$lba" count=1 iflag=direct status=none > "$current"
		value=$(sed -n '1s/^counter \([0-9][0-9]*\) *$/\1/p' "$current")
		[ -n "$value" ] || { echo "unreadable counter block" >> "$log.error"; return 1; }
		{ cat "$current"; block $((value + 1)); tail -c +513 "$current"; } > "$request"
		status=0
		sg_compare_and_write --lba="$lba" --num=1 --xferlen=$((2 * size)) \
			--in="$request" "$disk" >/dev/null 2>&1 || status=$?
		case $status in
		0) echo "$value" >> "$log" ;;
		14) ;;
		*) echo "COMPARE AND WRITE status $status" >> "$log.error"; return 1 ;;
		esac
	done
}
# count_concurrently NAME DISK_1 BLOCK_SIZE_1 DISK_2 BLOCK_SIZE_2 INCREMENTS:
# both disks' loops at once on the counter at byte COUNTER_LBA * 512.
count_concurrently() {
	local name=$1 disk_1=$2 size_1=$3 disk_2=$4 size_2=$5 increments=$6
	local log_1=$OUT_DIR/increments-$name-1.txt log_2=$OUT_DIR/increments-$name-2.txt
	local loop_1 loop_2 final replaced
	block 0 > /tmp/block0
	dd if=/tmp/block0 of="$disk_a" bs=512 seek=$COUNTER_LBA oflag=direct conv=notrunc status=none
	: > "$log_1"
	: > "$log_2"
	caw_increments "$disk_1" "$size_1" $((COUNTER_LBA * 512 / size_1)) "$increments" "$log_1" &
	loop_1=$!
	caw_increments "$disk_2" "$size_2" $((COUNTER_LBA * 512 / size_2)) "$increments" "$log_2" &
	loop_2=$!
	wait $loop_1 || fail "$name: increments through $disk_1: $(cat "$log_1.error")"
	wait $loop_2 || fail "$name: increments through $disk_2: $(cat "$log_2.error")"
	final=$(read_blocks "$disk_a" $COUNTER_LBA 1 | sed -n '1s/^counter \([0-9][0-9]*\) *$/\1/p')
	replaced=$(sort -n "$log_1" "$log_2" | uniq -d | tr '\n' ' ')
	echo "$name: counter $final after $((2 * increments)) successful increments;" \
		"values replaced twice: ${replaced:-none}"
	[ -z "$replaced" ] ||
		fail "$name: lost updates: two COMPARE AND WRITEs both replaced value(s) $replaced"
	[ "$final" = $((2 * increments)) ] ||
		fail "$name: counter is $final after $((2 * increments)) successful COMPARE AND WRITEs"
}
count_concurrently sectors "$disk_a" 512 "$disk_b" 512 30

# ---- the locked COMPARE AND WRITE: 4096-byte blocks against one-sector ones
# (COUNTER_LBA is a multiple of 8: the counter opens a 4096-byte block)
count_concurrently locked "$disk_q" 4096 "$disk_b" 512 20
dd if="$disk_q" bs=4096 skip=$((COUNTER_LBA / 8)) count=1 iflag=direct status=none > /tmp/current
{ head -c 1000 /tmp/current; printf 'X'; tail -c +1002 /tmp/current; head -c 4096 /dev/urandom; } \
	> /tmp/caw_wrong
status=0
out=$(sg_compare_and_write --lba=$((COUNTER_LBA / 8)) --num=1 --xferlen=8192 --in=/tmp/caw_wrong \
	"$disk_q" 2>&1) || status=$?
echo "$out"
[ "$status" -eq 14 ] || fail "locked COMPARE AND WRITE on other data: status $status, expected 14"
grep -F "Miscompare at byte offset: 1000" <<<"$out" >/dev/null ||
	fail "locked MISCOMPARE does not report offset 1000"
cmp <(read_blocks "$disk_b" $COUNTER_LBA 8) /tmp/current ||
	fail "a miscompared locked COMPARE AND WRITE wrote"
loop_unexpose "$disk_q"
backstore_remove "$quad"

# ---- a blocklisted client: no write, and a sense that fails the path
read_blocks "$disk_a" 500 1 > /tmp/before
rbd status rbd/shared | tee "$OUT_DIR/watchers.txt"
# One client per LUN; the first shows two watches since its two-block
# COMPARE AND WRITE opened the image's second handle (rbd_locked.c).
clients=$(sed -n 's/^[[:space:]]*watcher=\([^ ]*\) .*/\1/p' "$OUT_DIR/watchers.txt" | sort -u)
[ "$(wc -w <<<"$clients")" -eq 2 ] || fail "rbd status shows $(wc -w <<<"$clients") clients, expected 2"
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
