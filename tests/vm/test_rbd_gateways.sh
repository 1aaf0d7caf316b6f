#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Two gateways, one RBD LUN: this guest runs the Ceph cluster, gateway 1 and
# the initiator; the peer guest (tests/vm/vm-pair) runs gateway 2, which
# reaches the cluster over the private link. Both export the same image
# (tests/vm/gateway.sh); open-iscsi logs in to both portals and
# dm-multipath makes one map of the two paths; both paths give the same
# identity (VPD 0x80 and 0x83). ALUA: the gateway that holds the image's
# lock is active/optimized, the other standby, and REPORT TARGET PORT GROUPS
# says so alike on both paths (gateway 1, up first, took the free lock);
# the map has an active and a standby group; data written through the map reads back from the active
# path, and the standby path refuses the medium.
# vm-run: -m 4096 -t 1200
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
gw_export 1 268435456 "rbd/lun0;conf=$client_conf;gateway=1/2" "$serial"
assert_log_has "gateway 1/2 of image 'rbd/lun0' .*: active/optimized"

# ---- gateway 2, in the peer
peer <<PEER
set -eux
source tests/vm/gateway.sh
cat > $client_conf <<'CONF'
$(cat "$client_conf")
CONF
gw_daemon /mnt/out/gateway2.log
gw_export 2 268435456 "rbd/lun0;conf=$client_conf;gateway=2/2" "$serial"
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
