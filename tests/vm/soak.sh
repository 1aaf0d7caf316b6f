#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Soak test, not part of ctest (it takes SOAK_SECONDS, 600 by default):
# fio random writes with interleaved verifying reads run in a loop on an
# alloc and a file backstore while other alloc and file backstores are
# created, written, unexposed and removed around them. It passes with zero
# fio errors, zero verify failures, a live daemon that holds exactly the
# file descriptors it held before the churn, no alloc memory left behind,
# and a clean SIGTERM exit (which in a -DTCMU_SANITIZE=ON build also runs
# LeakSanitizer).
#
# Run from the source tree, with the daemon built in BUILD_DIR:
#   BUILD_DIR=$PWD/build VM_ENV="BUILD_DIR SOAK_SECONDS" SOAK_SECONDS=600 \
#       VM_OUT=/tmp/soak tests/vm/vm-run -t 1500 tests/vm/soak.sh
# The daemon log and fio reports land in VM_OUT.
source "$(dirname "$0")/../lib.sh"
requires fio

seconds=${SOAK_SECONDS:-600}
daemon_fd_count() { find /proc/"$DAEMON_PID"/fd -mindepth 1 | wc -l; }
fd_count_is() { [ "$(daemon_fd_count)" -eq "$1" ]; }

start_daemon
backstore_create next soak_alloc 67108864 alloc/
loop_expose "$BACKSTORE"
alloc_disk=$DISK
backstore_create next soak_file 67108864 file//var/tmp/soak_file.img
loop_expose "$BACKSTORE"
file_disk=$DISK
baseline_fds=$(daemon_fd_count)
deadline=$(($(date +%s) + seconds))

# verify_loop NAME DISK: fio passes until the deadline; each pass writes
# 32 MiB at random, reading back and checking every block as it goes.
verify_loop() {
	local pass=0
	while [ "$(date +%s)" -lt "$deadline" ]; do
		pass=$((pass + 1))
		fio --name="$1" --filename="$2" --ioengine=libaio --direct=1 --rw=randwrite \
			--bs=4k --iodepth=16 --size=32M --verify=crc32c --verify_fatal=1 \
			--verify_backlog=256 --do_verify=1 --randseed="$pass" \
			--output="$OUT_DIR/soak-fio-$1.txt" || {
			cat "$OUT_DIR/soak-fio-$1.txt"
			echo "fio pass $pass on $2 failed"
			return 1
		}
		grep -q 'err= 0' "$OUT_DIR/soak-fio-$1.txt" || return 1
		echo "$pass" > "$OUT_DIR/soak-passes-$1"
	done
}
verify_loop alloc "$alloc_disk" & alloc_loop=$!
verify_loop file "$file_disk" & file_loop=$!
cleanup_fn kill "$alloc_loop" "$file_loop"

churn=0
while [ "$(date +%s)" -lt "$deadline" ]; do
	churn=$((churn + 1))
	for config in alloc/ "file//var/tmp/churn.img"; do
		backstore_create next "churn_$churn" 16777216 "$config"
		churned=$BACKSTORE
		loop_expose "$churned"
		head -c 1M /dev/urandom > /tmp/churn_pattern
		write_and_verify "$DISK" /tmp/churn_pattern
		loop_unexpose "$DISK"
		backstore_remove "$churned"
		rm -f /var/tmp/churn.img
	done
	kill -0 "$DAEMON_PID" || fail "daemon died in churn round $churn"
done

status=0
wait "$alloc_loop" || status=$?
[ "$status" -eq 0 ] || fail "fio on the alloc device failed"
wait "$file_loop" || status=$?
[ "$status" -eq 0 ] || fail "fio on the file device failed"
wait_for 10 "the daemon's file descriptors to return to $baseline_fds" fd_count_is "$baseline_fds"
[ "$(ls "$ALLOC_MEMORY" | wc -l)" -eq 1 ] ||
	fail "alloc memory files left behind: $(ls "$ALLOC_MEMORY")"
echo "soak: $seconds s, $churn churn rounds, fio passes: alloc $(cat "$OUT_DIR/soak-passes-alloc")," \
	"file $(cat "$OUT_DIR/soak-passes-file")"
assert_log_lacks ' CRIT '
stop_daemon TERM
