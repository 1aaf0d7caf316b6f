#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# rbd LUNs (tcm_loop) while their Ceph cluster (tests/vm/ceph.sh, started
# once) goes away, under fio with crc32c verify:
# - the OSD stopped and started again within osd_op_timeout (60 s; the
#   disk's SCSI timeout and the backstore's cmd_time_out raised above it as
#   gateways advise): the commands
#   wait and complete, no error at the initiator, zero verify errors, the
#   device never leaves "open", and data written before the restart reads
#   back;
# - mon and OSD stopped for longer than osd_op_timeout (10 s): every command
#   is answered with BUSY by its deadline, well before the disk's SCSI
#   timeout (60 s; the midlayer retries BUSY for six times that, longer
#   than the outage, and no command reaches an abort), and the retries keep
#   being answered (the ring does not hang),
#   tcmu-admin shows the device reconnecting with the reason and counts
#   the BUSY answers, and once the cluster is back I/O resumes by itself:
#   fio ends without an error, the device is open again, and each
#   transition is logged once.
# vm-run: -m 4096 -t 2400
source "$(dirname "$0")/../lib.sh"
source "$SOURCE_DIR/tests/vm/dbus_common.sh"
source "$SOURCE_DIR/tests/vm/ceph.sh"
requires fio fio
requires python3 python3
ADMIN=$BUILD_DIR/tcmu-admin
[ -x "$ADMIN" ] || fail "$ADMIN is not built"

ceph_start
timeout 300 rbd create --size 64M rbd/lun0 || fail "rbd create rbd/lun0"
timeout 300 rbd create --size 64M rbd/lun1 || fail "rbd create rbd/lun1"
system_bus_start
start_daemon_on_bus

# state_of DEVICE: "STATE: REASON" from tcmu-admin --json list.
state_of() {
	"$ADMIN" --json list | python3 -c '
import json, sys
for device in json.load(sys.stdin):
    if device["name"] == sys.argv[1]:
        print(device["state"] + ": " + device["state_reason"])' "$1"
}

# state_is DEVICE PREFIX: the state of DEVICE starts with PREFIX (for
# wait_for: a second between tries, each starts Python).
state_is() {
	[[ "$(state_of "$1")" == "$2"* ]] || { sleep 1; return 1; }
}

# fio_start NAME DISK: random writes over 8 MiB at a rate that lasts about
# a minute, then a verify pass, in the background (FIO_PID).
fio_start() {
	fio --name="$1" --filename="$2" --direct=1 --ioengine=libaio --iodepth=8 \
		--rw=randwrite --bs=4k --size=8M --rate_iops=40 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --output="$OUT_DIR/fio-$1.txt" &
	FIO_PID=$!
}

# fio_finish NAME SECONDS: fio ends within SECONDS, without an I/O or a
# verify error.
fio_finish() {
	local name=$1 status=0
	timeout "$2" tail --pid="$FIO_PID" -f /dev/null || fail "fio $name did not end within $2 s"
	wait "$FIO_PID" || status=$?
	cat "$OUT_DIR/fio-$name.txt"
	[ "$status" -eq 0 ] || fail "fio $name failed (status $status)"
	grep -E 'err= *0' "$OUT_DIR/fio-$name.txt" >/dev/null || fail "fio $name reports errors"
	! grep -Ei 'verify: bad|bad magic|crc32c.*(mismatch|wanted)' "$OUT_DIR/fio-$name.txt" ||
		fail "fio $name reports verify errors"
}

# ---- the OSD restarted within osd_op_timeout
# The kernel fails a command that the daemon holds longer than the
# backstore's cmd_time_out (30 s, settable only before enable): above
# osd_op_timeout here, as the disk's SCSI timeout is.
lun0=$CORE/user_$(next_free_hba)/lun0
mkdir -p "$lun0"
cleanup_fn backstore_remove "$lun0"
echo -n dev_size=67108864 > "$lun0/control"
echo -n "dev_config=rbd/rbd/lun0;osd_op_timeout=60" > "$lun0/control"
echo 120 > "$lun0/attrib/cmd_time_out"
echo 1 > "$lun0/enable" || fail "lun0 refused"
loop_expose "$lun0"
disk0=$DISK
echo 120 > "/sys/block/${disk0#/dev/}/device/timeout"
assert_log_has "\[rbd/lun0\] rbd_open 'rbd/lun0' \(osd_op_timeout 60 s\)"
[ "$(state_of lun0)" = "open: " ] || fail "lun0 is not open: $(state_of lun0)"
random_file /tmp/pattern 4M
dd if=/tmp/pattern of="$disk0" bs=1M seek=32 oflag=direct status=none
fio_start restart "$disk0"
sleep 10
outage_start=$SECONDS
ceph_osd_stop
sleep 3
ceph_osd_start
outage=$((SECONDS - outage_start))
echo "the OSD was away for $outage s"
fio_finish restart 900
[ "$outage" -lt 60 ] ||
	fail "the OSD restart took $outage s, not less than osd_op_timeout: the check is void"
cmp <(dd if="$disk0" bs=1M skip=32 count=4 iflag=direct status=none) /tmp/pattern ||
	fail "data written before the OSD restart is not read back"
assert_log_lacks "\[rbd/lun0\] state: reconnecting"
[ "$(state_of lun0)" = "open: " ] || fail "lun0 is not open after the restart: $(state_of lun0)"

# ---- the whole cluster away for longer than osd_op_timeout
backstore_create next lun1 67108864 "rbd/rbd/lun1;osd_op_timeout=10" || fail "lun1 refused"
lun1=$BACKSTORE
loop_expose "$lun1"
disk1=$DISK
# BUSY is retried for (retries + 1) x this: longer than the outage.
echo 60 > "/sys/block/${disk1#/dev/}/device/timeout"
dmesg -C
fio_start outage "$disk1"
sleep 5
ceph_osd_stop
ceph_mon_stop
outage_start=$SECONDS
# Commands that reached librbd get their BUSY 10 s after they arrived.
wait_for 60 "lun1 to be reconnecting" state_is lun1 reconnecting:
state=$(state_of lun1)
echo "lun1 during the outage: $state"
[[ "$state" == "reconnecting: the Ceph cluster did not answer within 10 s"* ]] ||
	fail "tcmu-admin does not say why lun1 is reconnecting: $state"
# busy_answers: how many commands of lun1 got BUSY so far.
busy_answers() {
	"$ADMIN" --json stats lun1 |
		python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["errors"]["none"])'
}
# The ring is served: the retried commands keep getting their BUSY.
busy=$(busy_answers)
sleep 15
busy_later=$(busy_answers)
echo "BUSY answers: $busy, 15 s later $busy_later"
[ "$busy" -gt 0 ] || fail "no command got BUSY during the outage"
[ "$busy_later" -gt "$busy" ] || fail "no command was answered for 15 s during the outage"
sleep $((40 - (SECONDS - outage_start) > 0 ? 40 - (SECONDS - outage_start) : 0))
ceph_mon_start
ceph_osd_start
echo "the cluster was away for $((SECONDS - outage_start)) s"
fio_finish outage 900
wait_for 60 "lun1 to be open again" state_is lun1 open:
dmesg > "$OUT_DIR/dmesg-outage.txt"
! grep -Ei 'abort|timing out command|I/O error' "$OUT_DIR/dmesg-outage.txt" ||
	fail "a command reached the kernel's timeout during the outage"
[ "$(grep -c '\[rbd/lun1\] state: reconnecting' "$DAEMON_LOG")" -eq 1 ] ||
	fail "the outage is not logged exactly once"
[ "$(grep -c '\[rbd/lun1\] state: open: the Ceph cluster answers again' "$DAEMON_LOG")" -eq 1 ] ||
	fail "the recovery is not logged exactly once"
assert_log_lacks "\[rbd/lun0\] state: reconnecting"

loop_unexpose "$disk0"
loop_unexpose "$disk1"
backstore_remove "$lun0"
backstore_remove "$lun1"
wait_for 60 "the daemon to close every uio" test -z "$(daemon_uio_fds)"
stop_daemon TERM
assert_log_lacks ' CRIT '
