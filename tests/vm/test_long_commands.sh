#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A long command does not hold its ring worker. Three devices on one
# worker: an 8 GiB sparse file LUN, a small probe LUN and one created
# during the test. The Block Limits page bounds VERIFY, and a VERIFY(16)
# of the whole 8 GiB is refused at once; VERIFY(16) commands of the
# largest allowed length then run back to back on the large LUN while fio
# reads the probe at queue depth 1, and a device is created just after one
# of them started. The old code served a VERIFY in one go: the probe's
# slowest read and the attach took as long as a whole VERIFY (seconds).
# Here both must take less than a quarter of the slowest VERIFY (the
# attach as the daemon logs it, from the netlink event to "attached"), and
# enabling the device (shell and kernel included) less than 30 s.
source "$(dirname "$0")/../lib.sh"
requires sg_raw sg3-utils
requires sg_vpd sg3-utils
requires fio
requires jq

BIG_SIZE=$((8 << 30))
BLOCKS=$((BIG_SIZE / 512))
MAX_ENABLE_MS=30000

# Milliseconds of the day of the daemon's first log line matching PATTERN.
log_ms() {
	grep -E -- "$1" "$DAEMON_LOG" | head -1 |
		awk '{ split($2, t, /[:.]/); print ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000 + t[4] }'
}

# The ring worker that serves backstore NAME (the daemon logs its thread's
# name, tcmu-ring-N, at debug level).
worker_of() {
	sed -n "s|.*/$1\] served by ring worker \(tcmu-ring-[0-9]*\)$|\1|p" "$DAEMON_LOG" | tail -1
}

start_daemon --debug
# Workers take devices in turn (the least loaded, the first on a tie):
# with two workers, big, probe and late share one, the fillers the other.
backstore_create next big "$BIG_SIZE" file//var/tmp/big.img
big_backstore=$BACKSTORE
backstore_create next filler1 1048576 alloc/
backstore_create next probe 67108864 file//var/tmp/probe.img
probe_backstore=$BACKSTORE
backstore_create next filler2 1048576 alloc/
[ -n "$(worker_of big)" ] || fail "the daemon did not log the worker of big"
[ "$(worker_of big)" = "$(worker_of probe)" ] ||
	fail "big (worker $(worker_of big)) and probe (worker $(worker_of probe)) do not share a worker"

loop_expose "$big_backstore"
big_disk=$DISK
loop_expose "$probe_backstore"
probe_disk=$DISK

# Block Limits: the largest VERIFY is MAXIMUM TRANSFER LENGTH.
sg_vpd -p bl "$big_disk" > "$OUT_DIR/block-limits.txt"
max_transfer=$(sed -n 's/.*Maximum transfer length: \([0-9]*\) blocks.*/\1/p' "$OUT_DIR/block-limits.txt")
[ -n "$max_transfer" ] && [ "$max_transfer" -gt 0 ] ||
	fail "no MAXIMUM TRANSFER LENGTH in Block Limits: $(cat "$OUT_DIR/block-limits.txt")"
[ "$max_transfer" -lt "$BLOCKS" ] || fail "MAXIMUM TRANSFER LENGTH $max_transfer covers the whole LUN"
grep -E 'Maximum write same length: (0x)?[0-9a-f]+ blocks' "$OUT_DIR/block-limits.txt" >/dev/null ||
	fail "no MAXIMUM WRITE SAME LENGTH in Block Limits"

# verify16 LBA BLOCKS: one VERIFY(16) with BYTCHK 00b.
verify16() {
	sg_raw -t 300 "$big_disk" 8f 00 $(printf '%02x ' $(for shift in 56 48 40 32 24 16 8 0; do
		echo $((($1 >> shift) & 0xff)); done)) $(printf '%02x ' $((($2 >> 24) & 0xff)) \
		$((($2 >> 16) & 0xff)) $((($2 >> 8) & 0xff)) $(($2 & 0xff))) 00 00
}

# The whole LUN in one VERIFY(16) is beyond the limit: INVALID FIELD IN CDB, at once.
start=$SECONDS
status=0
out=$(set +x; verify16 0 "$BLOCKS" 2>&1) || status=$?
[ "$status" -ne 0 ] || fail "a VERIFY(16) of the whole 8 GiB was accepted ($((SECONDS - start)) s)"
grep -i 'invalid field in cdb' <<<"$out" >/dev/null || fail "whole-LUN VERIFY(16): $out"
[ $((SECONDS - start)) -lt 5 ] || fail "the refusal took $((SECONDS - start)) s"
# One block more than the limit, too; the limit itself is fine.
out=$(set +x; verify16 0 $((max_transfer + 1)) 2>&1) && fail "VERIFY(16) of $((max_transfer + 1)) blocks accepted"
grep -i 'invalid field in cdb' <<<"$out" >/dev/null || fail "VERIFY(16) past the limit: $out"

# Back-to-back VERIFY(16) commands of the largest length over the LUN.
verify_loop() {
	local lba=0 started
	while :; do
		[ $((lba + max_transfer)) -le "$BLOCKS" ] || lba=0
		started=$(date +%s%N)
		verify16 "$lba" "$max_transfer" >/dev/null 2>&1 || { echo "failed at $lba" >> "$OUT_DIR/verify-errors.txt"; }
		echo $((($(date +%s%N) - started) / 1000000)) >> "$OUT_DIR/verify-ms.txt"
		lba=$((lba + max_transfer))
	done
}
: > "$OUT_DIR/verify-ms.txt"
(set +x; verify_loop) &
verify_pid=$!
cleanup_fn kill "$verify_pid"

fio --name=probe --filename="$probe_disk" --ioengine=psync --direct=1 --rw=randread --bs=4k \
	--iodepth=1 --time_based --runtime=20 --output-format=json \
	--output="$OUT_DIR/fio-probe.json" & fio_pid=$!
cleanup_fn kill "$fio_pid"

# A device added meanwhile lands on the busy worker: created half a second
# after a VERIFY started (the loop starts the next as one ends).
verify_count() { [ "$(wc -l < "$OUT_DIR/verify-ms.txt")" -ge "$1" ]; }
wait_for 120 "a VERIFY to end" verify_count $(($(wc -l < "$OUT_DIR/verify-ms.txt") + 1))
sleep 0.5
start=$(date +%s%N)
backstore_create next late 1048576 alloc/ || fail "enabling the late device failed"
enable_ms=$((($(date +%s%N) - start) / 1000000))
attach_ms=$(($(log_ms '\[alloc/late\] attached: ') - $(log_ms 'ADDED_DEVICE tcm-user/[0-9]+/late/')))
[ "$(worker_of late)" = "$(worker_of big)" ] ||
	fail "late landed on worker $(worker_of late), not on big's ($(worker_of big))"

wait "$fio_pid" || fail "fio on the probe failed"
kill "$verify_pid"
wait "$verify_pid" 2>/dev/null || true

[ ! -s "$OUT_DIR/verify-errors.txt" ] || fail "VERIFY commands failed: $(cat "$OUT_DIR/verify-errors.txt")"
verifies=$(wc -l < "$OUT_DIR/verify-ms.txt")
[ "$verifies" -ge 2 ] || fail "only $verifies VERIFY commands ran beside fio: no load"
slowest_verify=$(sort -n "$OUT_DIR/verify-ms.txt" | tail -1)
probe_max_ms=$(jq '.jobs[0].read.clat_ns.max / 1000000 | floor' "$OUT_DIR/fio-probe.json")
probe_ios=$(jq '.jobs[0].read.total_ios' "$OUT_DIR/fio-probe.json")
echo "VERIFY of $max_transfer blocks: $verifies runs, slowest ${slowest_verify} ms;" \
	"probe: $probe_ios reads, slowest ${probe_max_ms} ms; late attach ${attach_ms} ms" \
	"(enable ${enable_ms} ms)"
[ "$probe_ios" -gt 0 ] || fail "fio read nothing from the probe"
[ "$probe_max_ms" -lt $((slowest_verify / 4)) ] ||
	fail "a probe read took ${probe_max_ms} ms beside VERIFY commands of up to ${slowest_verify} ms"
[ "$attach_ms" -ge 0 ] && [ "$attach_ms" -lt $((slowest_verify / 4)) ] ||
	fail "the late device took ${attach_ms} ms to attach beside VERIFY commands of up to ${slowest_verify} ms"
[ "$enable_ms" -lt "$MAX_ENABLE_MS" ] || fail "enabling the late device took ${enable_ms} ms"

assert_log_lacks ' CRIT '
stop_daemon TERM
