#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Two gateways, one RBD LUN: this guest runs the Ceph cluster, gateway 1 and
# the initiator; the peer guest (tests/vm/vm-pair) runs gateway 2, which
# reaches the cluster over the private link. Both export the same image
# (tests/vm/gateway.sh); open-iscsi logs in to both portals and
# dm-multipath makes one map of the two paths; both paths give the
# handler's identity (VPD 0x80 and 0x83: the image's id). ALUA: the gateway
# that holds the image's lock is active/optimized, the other standby, and
# REPORT TARGET PORT GROUPS says so alike on both paths (gateway 1, up
# first, took the free lock); the map has an active and a standby group;
# data written through the map reads back from the active path, and the
# standby path refuses the medium. Then, on the same cluster and guests:
# - failover under fio with crc32c verify on the map: gateway 1 dies of
#   kill -9, gateway 2 takes over, no verify error, the image (rbd export)
#   holds what fio wrote;
# - gateway 1 restarts as standby; REPORT TARGET PORT GROUPS polled asks the
#   cluster at most once in 5 s; failback by SET TARGET PORT GROUPS, which
#   the kernel's ALUA handler learns from the gateways' unit attention;
# - no ping-pong: writes through both paths at once move no lock;
# - a stale write (gateway 1 stopped with it in its ring) is refused after
#   gateway 2 fenced it, and the image has gateway 2's data;
# - gateway 1, fenced there, rejoins as standby without a restart (a fresh
#   client inside the daemon), alike on both paths;
# - gateway 2's guest powers off under fio: gateway 1, the rejoined client,
#   takes over, no verify error;
# - gateway 1 dies and restarts before anyone took over: it breaks its
#   earlier instance's lock and serves again.
# vm-run: -m 4096 -t 1800
# vm-peer: -m 2048 -c 2
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/ceph.sh"
source "$(dirname "$0")/pair.sh"
source "$(dirname "$0")/gateway.sh"
requires iscsiadm open-iscsi
requires iscsid open-iscsi
requires multipath multipath-tools
requires sg_vpd sg3-utils
requires sg_rtpg sg3-utils
requires sg_turs sg3-utils
requires lsscsi lsscsi
requires dbus-daemon dbus
requires jq jq
requires_module iscsi_target_mod
requires_module sd_mod
requires_module dm_multipath

pair_link_up
CEPH_MON_HOST=$PAIR_ADDRESS CEPH_PUBLIC_NETWORK=10.9.0.0/24 ceph_start
timeout 300 rbd create --size 256M rbd/lun0 || fail "rbd create rbd/lun0"
serial=$(timeout 300 rbd info --format json rbd/lun0 | jq -r .id)
[ -n "$serial" ] || fail "rbd info gave no image id"
# The gateways' view of the cluster: the mon's address on the link.
client_conf=/tmp/gateway-ceph.conf
printf '[global]\nmon host = %s\nauth client required = none\nkeyring = /dev/null\n' \
	"$PAIR_ADDRESS" > "$client_conf"

# ---- gateway 1, here
DAEMON_CWD=$SOURCE_DIR TCMU_BUILD_DIR=$BUILD_DIR start_daemon_command ./run.sh
gw_export 1 268435456 "rbd/lun0;conf=$client_conf;gateway=1/2"
assert_log_has "gateway 1/2 of image 'rbd/lun0' .*: active/optimized"

# ---- gateway 2, in the peer
peer <<PEER
set -eux
source tests/vm/gateway.sh
cat > $client_conf <<'CONF'
$(cat "$client_conf")
CONF
gw_daemon /mnt/out/gateway2.log
gw_export 2 268435456 "rbd/lun0;conf=$client_conf;gateway=2/2"
grep "gateway 2/2 of image 'rbd/lun0' .*: standby, the lock is held by" /mnt/out/gateway2.log
PEER

# ---- the initiator: both portals, one multipath map. multipath takes only
# the devices udev has seen: the guest starts none, so the test starts it.
requires udevadm udev
/lib/systemd/systemd-udevd --daemon
cleanup_fn udevadm control --exit
if [ ! -s /etc/iscsi/initiatorname.iscsi ]; then
	echo "InitiatorName=$(iscsi-iname)" > /etc/iscsi/initiatorname.iscsi
fi
iscsid
cleanup_fn iscsiadm -m session -u
for node in 1 2; do
	iscsiadm -m discovery -t sendtargets -p "10.9.0.$node" --login
done
wait_for 60 "two paths in lsscsi" test "$(lsscsi | grep -c 'LIO-ORG *TCMU device')" -eq 2
udevadm settle -t 60
lsscsi
# paths[0] through gateway 1's portal, paths[1] through gateway 2's.
disk_of_portal() {
	local disk session
	for disk in $(lsscsi | awk '/LIO-ORG *TCMU device/ {print $NF}'); do
		session=$(readlink -f "/sys/block/${disk#/dev/}/device" | grep -o 'session[0-9]*' | head -1)
		if [ "$(cat /sys/class/iscsi_connection/connection"${session#session}":0/persistent_address)" = "$1" ]; then
			echo "$disk"
		fi
	done
}
paths=("$(disk_of_portal 10.9.0.1)" "$(disk_of_portal 10.9.0.2)")
[ -b "${paths[0]}" ] && [ -b "${paths[1]}" ] || fail "no disk for each portal: ${paths[*]}"

# The logical unit's identity (VPD 0x80, and 0x83's designators of the
# logical unit; those of the target port differ by gateway, as they must).
for page in sn di_lu; do
	sg_vpd -p "$page" "${paths[0]}" > /tmp/vpd_0 || fail "sg_vpd -p $page ${paths[0]}"
	sg_vpd -p "$page" "${paths[1]}" > /tmp/vpd_1 || fail "sg_vpd -p $page ${paths[1]}"
	cat /tmp/vpd_0
	grep -F "$serial" /tmp/vpd_0 >/dev/null || fail "VPD $page does not carry the serial $serial"
	cmp /tmp/vpd_0 /tmp/vpd_1 || fail "the two paths answer VPD $page differently"
done
sg_vpd -p di "${paths[1]}"

# ---- ALUA: gateway 1 came up first and took the free lock
for i in 0 1; do
	sg_rtpg -r "${paths[i]}" > /tmp/rtpg_$i || fail "sg_rtpg ${paths[i]}"
	sg_rtpg -d "${paths[i]}"
done
cmp /tmp/rtpg_0 /tmp/rtpg_1 || fail "the two paths report target port groups differently"
sg_rtpg -d "${paths[0]}" > /tmp/rtpg
grep -A1 'target port group id : 0x1' /tmp/rtpg | grep -F '(active/optimized)' >/dev/null ||
	fail "group 1 (the lock's owner) is not active/optimized"
grep -A1 'target port group id : 0x2' /tmp/rtpg | grep -F '(standby)' >/dev/null ||
	fail "group 2 is not standby"
timeout 300 rbd lock ls rbd/lun0 | tee /tmp/locks
[ "$(grep -c 'auto ' /tmp/locks)" -eq 1 ] || fail "the image does not have one lock owner"

# No udev in the guest: multipath reads the WWID from sysfs (VPD 0x83).
cat > /etc/multipath.conf <<'CONF'
defaults {
	user_friendly_names no
	find_multipaths off
}
devices {
	device {
		vendor "LIO-ORG"
		product "TCMU device"
		uid_attribute ""
		path_grouping_policy group_by_prio
		hardware_handler "1 alua"
		prio alua
		path_checker tur
		failback manual
		no_path_retry queue
	}
}
CONF
cleanup_fn multipath -F
multipath -v2 || fail "multipath could not make a map"
udevadm settle -t 60
[ -n "$(dmsetup ls --target multipath | grep -v '^No devices')" ] || {
	multipath -v3 2>&1 | tail -n 60
	fail "multipath made no map"
}
multipath -ll | tee /tmp/multipath_ll
[ "$(dmsetup ls --target multipath | wc -l)" -eq 1 ] || fail "not one multipath map"
map=/dev/mapper/$(dmsetup ls --target multipath | awk '{print $1}')
[ "$(grep -cE '[0-9]+:[0-9]+:[0-9]+:[0-9]+ sd[a-z]+ ' /tmp/multipath_ll)" -eq 2 ] ||
	fail "the map does not have both paths"
grep -E "hwhandler='1 alua'" /tmp/multipath_ll >/dev/null || fail "the map does not use ALUA"
grep -E 'policy=.* prio=50 ' /tmp/multipath_ll >/dev/null || fail "no active/optimized group in the map"
grep -E 'policy=.* prio=1 ' /tmp/multipath_ll >/dev/null || fail "no standby group in the map"
[ "$(blockdev --getsize64 "$map")" -eq $((256 << 20)) ] || fail "$map is not 256 MiB"

# ---- one image: written through the map, read through the active path;
# the standby path keeps off the medium
random_file /tmp/pattern 8M
dd if=/tmp/pattern of="$map" bs=1M oflag=direct status=none || fail "writing through $map"
cmp <(dd if="${paths[0]}" bs=1M count=8 iflag=direct status=none) /tmp/pattern ||
	fail "${paths[0]} reads back other data than was written through $map"
cmp <(dd if="$map" bs=1M count=8 iflag=direct status=none) /tmp/pattern ||
	fail "$map reads back other data than was written"
if sg_dd if="${paths[1]}" of=/dev/null bs=512 count=8 2> /tmp/standby_read; then
	fail "the standby path read the medium"
fi
cat /tmp/standby_read

# path_state DISK STATE: the kernel's ALUA handler finds DISK in STATE
# without a rescan. A gateway whose state changed answers the next command
# with the unit attention ASYMMETRIC ACCESS STATE CHANGED, on which the
# handler reads the groups again (and retries the command). Without it, a
# change that sg_stpg made stays unknown to the handler, which keeps the
# kernel's own I/O off a path it last saw in standby.
path_state() {
	sg_turs "$1" || true	# standby refuses it; the unit attention comes first
	wait_for 30 "$1 in state $2" grep -qx "$2" "/sys/block/${1#/dev/}/device/access_state"
}

# rtpg_agree GROUP: both paths report GROUP active/optimized and the other
# standby, byte for byte alike.
rtpg_agree() {
	local active=$1 other=$((3 - $1)) i
	for i in 0 1; do
		sg_rtpg -r "${paths[i]}" > /tmp/rtpg_$i || fail "sg_rtpg ${paths[i]}"
	done
	cmp /tmp/rtpg_0 /tmp/rtpg_1 || fail "the two paths report target port groups differently"
	sg_rtpg -d "${paths[0]}" | tee /tmp/rtpg
	grep -A1 "target port group id : 0x$active" /tmp/rtpg | grep -F '(active/optimized)' >/dev/null ||
		fail "group $active is not active/optimized"
	grep -A1 "target port group id : 0x$other" /tmp/rtpg | grep -F '(standby)' >/dev/null ||
		fail "group $other is not standby"
}

# kill_gateway: kill -9 of gateway 1, this guest's daemon.
kill_gateway() {
	kill -KILL "$DAEMON_PID"
	wait "$DAEMON_PID" || true
	DAEMON_PID=
}

# start_gateway: starts gateway 1 again, as the tutorial does (run.sh);
# restart_line is the first line of the daemon log that is its own.
start_gateway() {
	restart_line=$(($(wc -l < "$DAEMON_LOG") + 1))
	DAEMON_CWD=$SOURCE_DIR TCMU_BUILD_DIR=$BUILD_DIR start_daemon_command ./run.sh
}

# logged_since_start PATTERN MESSAGE: gateway 1 logged PATTERN since it last started.
logged_since_start() {
	tail -n +"$restart_line" "$DAEMON_LOG" | grep "$1" || fail "$2"
}

# reports_active PATH GROUP MESSAGE: REPORT TARGET PORT GROUPS through PATH
# says GROUP is active/optimized.
reports_active() {
	sg_rtpg -d "$1" | grep -A1 "target port group id : 0x$2" | grep -F '(active/optimized)' >/dev/null ||
		fail "$3"
}

# ---- failover under load: fio writes through the map with crc32c headers
# and reads it all back; gateway 1 (active, here) dies of kill -9 during the
# writes; the map's failed I/O goes to gateway 2's path, whose activation
# (SET TARGET PORT GROUPS from the kernel's ALUA handler) breaks gateway 1's
# lock, blocklisting its client, and takes the image over.
requires fio fio
fio_job=(--name=failover --direct=1 --ioengine=libaio --iodepth=4 --rw=write --bs=64k
	--size=24M --verify=crc32c --verify_fatal=1)
fio "${fio_job[@]}" --filename="$map" --rate=384k --output=/tmp/fio.out & fio_pid=$!
cleanup_fn kill "$fio_pid"
sleep 15
kill -0 "$fio_pid" || fail "fio ended before the gateway was killed: $(cat /tmp/fio.out)"
killed_at=$SECONDS
kill_gateway
status=0
wait "$fio_pid" || status=$?
cat /tmp/fio.out
[ "$status" -eq 0 ] || fail "fio failed across the failover (status $status)"
grep -E 'err= *0' /tmp/fio.out >/dev/null || fail "fio saw errors across the failover"
grep -i 'verify' /tmp/fio.out | grep -iE 'bad|fail' && fail "fio found data that does not verify"
echo "fio ended $((SECONDS - killed_at)) s after kill -9"
# (multipath -ll would wait for the dead path's answers: the map's status does not)
dmsetup status "${map#/dev/mapper/}"
peer <<'PEER'
set -eux
grep "taking image 'rbd/lun0' over from" /mnt/out/gateway2.log
grep "target port group 2: active/optimized" /mnt/out/gateway2.log
PEER
timeout 300 rbd lock ls rbd/lun0 | tee /tmp/locks
[ "$(grep -c 'auto ' /tmp/locks)" -eq 1 ] || fail "the image does not have one lock owner"
# The image holds what fio wrote last: its verify, on a copy read from the cluster.
timeout 300 rbd export rbd/lun0 /tmp/image.raw || fail "rbd export"
fio "${fio_job[@]}" --filename=/tmp/image.raw --direct=0 --verify_only --output=/tmp/fio_export.out ||
	fail "the image does not hold what fio wrote: $(cat /tmp/fio_export.out)"
cmp <(dd if="$map" bs=1M count=24 iflag=direct status=none) <(head -c 24M /tmp/image.raw) ||
	fail "$map reads other data than the image holds"

# ---- gateway 1 restarts: a fresh client, not the blocklisted one, joins as
# standby while gateway 2 holds the lock; both paths agree. (Its debug
# lines, from here on, count the cluster's answers below.)
mkdir -p /etc/tcmu
sed 's/^log_level = .*/log_level = 4/' "$SOURCE_DIR/tcmu.conf" > /etc/tcmu/tcmu.conf
start_gateway
logged_since_start "gateway 1/2 of image 'rbd/lun0' .*: standby, the lock is held by" \
	"the restarted gateway 1 did not join as standby"
rtpg_agree 2

# REPORT TARGET PORT GROUPS polled: the owner comes from the cluster at most
# once in 5 s unless it changed.
polled_line=$(($(wc -l < "$DAEMON_LOG") + 1))
polled_at=$SECONDS
for ((i = 0; i < 20; i++)); do
	sg_rtpg "${paths[0]}" > /dev/null || fail "sg_rtpg ${paths[0]}"
done
asked=$(tail -n +"$polled_line" "$DAEMON_LOG" | grep -c "target port groups of 'rbd/lun0' from the cluster" || true)
echo "20 REPORT TARGET PORT GROUPS in $((SECONDS - polled_at)) s asked the cluster $asked times"
[ "$asked" -le $(((SECONDS - polled_at) / 5 + 1)) ] ||
	fail "REPORT TARGET PORT GROUPS asked the cluster $asked times for 20 commands"
sed -i 's/^log_level = .*/log_level = 3/' /etc/tcmu/tcmu.conf

# ---- failback on request, without fencing anyone: gateway 2 steps back
# (SET TARGET PORT GROUPS: standby, through its path), then gateway 1 takes
# the free lock (active/optimized, through its path); the map has no path
# left that its kernel trusts (no multipathd reinstates them), so the paths
# themselves are used from here on
sg_stpg -v --standby "${paths[1]}" || fail "SET TARGET PORT GROUPS standby through gateway 2 failed"
sg_stpg -v --optimized "${paths[0]}" || fail "SET TARGET PORT GROUPS through gateway 1 failed"
rtpg_agree 1
path_state "${paths[0]}" active/optimized
path_state "${paths[1]}" standby
cmp <(dd if="${paths[0]}" bs=1M count=24 iflag=direct status=none) <(head -c 24M /tmp/image.raw) ||
	fail "${paths[0]} reads other data after the failback"
peer <<'PEER'
set -eux
! grep -i "blocklisted" /mnt/out/gateway2.log
PEER

# ---- no ping-pong: both paths written at once for 20 s (no multipath;
# SCSI pass-through, which the kernel's ALUA handler lets through to the
# standby gateway): the standby gateway refuses every write, the owner
# stays, nobody takes over
takeovers() {
	{ grep -c "taking image 'rbd/lun0' over" "$DAEMON_LOG" || true; }
	peer_try <<'PEER' || true
grep -c "taking image 'rbd/lun0' over" /mnt/out/gateway2.log || true
PEER
}
takeovers_before=$(takeovers | awk '{n += $1} END {print n + 0}')
writer() { # DISK SEEK_MIB: writes 1 MiB at SEEK_MIB until stopped, counts successes
	local ok=0
	while [ ! -e /tmp/stop_writers ]; do
		sg_dd if=/tmp/pattern of="$1" bs=512 count=2048 seek=$(($2 * 2048)) oflag=sgio \
			2>/dev/null && ok=$((ok + 1))
	done
	echo "$ok" > "/tmp/writes_$2"
}
rm -f /tmp/stop_writers
writer "${paths[0]}" 100 & writer_0=$!
writer "${paths[1]}" 101 & writer_1=$!
sleep 20
touch /tmp/stop_writers
wait "$writer_0" "$writer_1"
echo "writes through gateway 1: $(cat /tmp/writes_100), through gateway 2: $(cat /tmp/writes_101)"
[ "$(cat /tmp/writes_100)" -gt 0 ] || fail "no write through the active gateway succeeded"
[ "$(cat /tmp/writes_101)" -eq 0 ] || fail "writes through the standby gateway succeeded"
[ "$(takeovers | awk '{n += $1} END {print n + 0}')" -eq "$takeovers_before" ] ||
	fail "the lock changed hands while both gateways received writes"
rtpg_agree 1
cmp <(dd if="${paths[0]}" bs=1M count=1 skip=100 iflag=direct status=none) <(head -c 1M /tmp/pattern) ||
	fail "the active gateway's write does not read back"

# ---- a stale write is fenced: gateway 1's daemon stops with a write in
# its ring; gateway 2 takes over (SET TARGET PORT GROUPS through its path:
# gateway 1's lock is broken and its client blocklisted) and writes the same
# blocks; gateway 1 resumes: its write is refused, the image has gateway 2's
random_file /tmp/stale 1M
random_file /tmp/fresh 1M
kill -STOP "$DAEMON_PID"
cleanup_fn kill -CONT "$DAEMON_PID"
dd if=/tmp/stale of="${paths[0]}" bs=1M seek=110 oflag=direct status=none 2> /tmp/stale_dd & stale_pid=$!
sleep 2
sg_stpg -v --optimized "${paths[1]}" || fail "SET TARGET PORT GROUPS through gateway 2 failed"
path_state "${paths[1]}" active/optimized
dd if=/tmp/fresh of="${paths[1]}" bs=1M seek=110 oflag=direct status=none ||
	fail "gateway 2 did not take the write after taking over"
kill -CONT "$DAEMON_PID"
stale_status=0
wait "$stale_pid" || stale_status=$?
cat /tmp/stale_dd
[ "$stale_status" -ne 0 ] || fail "the stopped gateway's write succeeded after it was fenced"
timeout 300 rbd export rbd/lun0 /tmp/image_fenced.raw || fail "rbd export"
cmp <(dd if=/tmp/image_fenced.raw bs=1M skip=110 count=1 status=none) /tmp/fresh ||
	fail "the image does not hold the new owner's data"
logged_since_start "state: blocklisted" \
	"gateway 1 did not find itself blocklisted"
reports_active "${paths[1]}" 2 \
	"gateway 2 does not report itself active/optimized after taking over"

# ---- gateway 1 rejoins without a restart: finding itself fenced, it opened
# a fresh client (the blocklist names the old one's address only), which
# replaced the fenced one once none of its requests was in flight; it is
# standby now, alike on both paths, and its daemon is the same
rejoined() {
	tail -n +"$restart_line" "$DAEMON_LOG" |
		grep "gateway 1/2 of image 'rbd/lun0' .*: rejoined as standby" >/dev/null
}
wait_for 60 "gateway 1 rejoined as standby" rejoined
kill -0 "$DAEMON_PID" || fail "gateway 1's daemon is gone"
rtpg_agree 2

# ---- the active gateway's machine powers off under load. The map's path
# through gateway 1 (rejoined) is taken into use again; fio writes through
# the map while gateway 2's guest powers off at once (sysrq, no shutdown):
# its iSCSI session gives up after 10 s, the map goes to gateway 1's path,
# whose activation breaks the dead owner's lock. (The log is read from here.)
restart_line=$(($(wc -l < "$DAEMON_LOG") + 1))
dmsetup message "${map#/dev/mapper/}" 0 "reinstate_path $(cat "/sys/block/${paths[0]#/dev/}/dev")" ||
	fail "the map did not take gateway 1's path back"
dmsetup status "${map#/dev/mapper/}"
session=$(readlink -f "/sys/block/${paths[1]#/dev/}/device" | grep -o 'session[0-9]*' | head -1)
echo 10 > "/sys/class/iscsi_session/$session/recovery_tmo"
fio "${fio_job[@]}" --size=16M --filename="$map" --rate=384k --output=/tmp/fio.out & fio_pid=$!
cleanup_fn kill "$fio_pid"
sleep 10
kill -0 "$fio_pid" || fail "fio ended before the power-off: $(cat /tmp/fio.out)"
killed_at=$SECONDS
peer_power_off
status=0
wait "$fio_pid" || status=$?
cat /tmp/fio.out
[ "$status" -eq 0 ] || fail "fio failed across the power-off (status $status)"
grep -E 'err= *0' /tmp/fio.out >/dev/null || fail "fio saw errors across the power-off"
echo "fio ended $((SECONDS - killed_at)) s after the power-off"
logged_since_start "taking image 'rbd/lun0' over from" \
	"gateway 1 did not take the image over"
reports_active "${paths[0]}" 1 \
	"gateway 1 does not report itself active/optimized after the power-off"
timeout 300 rbd export rbd/lun0 /tmp/image_powered_off.raw || fail "rbd export"
fio "${fio_job[@]}" --size=16M --filename=/tmp/image_powered_off.raw --direct=0 --verify_only --output=/tmp/fio_export.out ||
	fail "the image does not hold what fio wrote: $(cat /tmp/fio_export.out)"

# ---- the owner restarts before anyone took over: gateway 1 (active) dies
# of kill -9 and comes back; its earlier instance's lock is broken (that
# client blocklisted) and it is active again, serving the image
kill_gateway
start_gateway
logged_since_start "held by .*, an earlier instance of gateway 1: breaking it" \
	"the restarted gateway 1 did not break its earlier instance's lock"
logged_since_start "gateway 1/2 of image 'rbd/lun0' .*: active/optimized" \
	"the restarted gateway 1 is not active/optimized"
reports_active "${paths[0]}" 1 \
	"gateway 1 does not report itself active/optimized after its restart"
dd if=/tmp/fresh of="${paths[0]}" bs=1M seek=120 oflag=direct status=none ||
	fail "the restarted gateway 1 refused a write"
cmp <(dd if="${paths[0]}" bs=1M skip=120 count=1 iflag=direct status=none) /tmp/fresh ||
	fail "the restarted gateway 1 reads back other data"
