#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The tutorial's flow with LUNs on a Ceph cluster (tests/vm/ceph.sh): bad
# config strings, a missing pool or image, an unreachable cluster and a
# size that is not the image's are refused with their reasons by
# user_create.sh and targetcli and leave nothing behind; then
# user_create.sh rbd and targetcli create two rbd LUNs, exported over iSCSI
# on 127.0.0.1: dd and fio with crc32c verify through the initiator, the
# data read back with `rbd export` identical, UNMAP frees objects (rbd du)
# and reads back zeros, mkfs.ext4 + fsck, a larger size grows the image and
# a smaller one is refused.
# vm-run: -m 4096 -t 1500
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/ceph.sh"
requires targetcli targetcli-fb
requires iscsiadm open-iscsi
requires iscsid open-iscsi
requires lsscsi lsscsi
requires dbus-daemon dbus
requires fio fio
requires mkfs.ext4 e2fsprogs
requires blkdiscard util-linux
requires_module iscsi_target_mod
requires_module sd_mod

cd "$SOURCE_DIR"
tutorial_system_setup

ceph_start
timeout 300 rbd create --size 1G rbd/lun0 || fail "rbd create rbd/lun0"
timeout 300 rbd create --size 64M rbd/lun1 || fail "rbd create rbd/lun1"

# The daemon finds the cluster through $CEPH_CONF, as librados does.
DAEMON_CWD=$SOURCE_DIR TCMU_BUILD_DIR=$BUILD_DIR start_daemon_command ./run.sh

# ---- refusals: the handler's reason, and nothing created
cat > /tmp/unreachable.conf <<EOF
[global]
mon host = 127.0.0.1:1
auth client required = none
keyring = /dev/null
EOF
refused() {	# CFGSTRING SIZE REASON
	local started=$SECONDS
	if ./user_create.sh rbd bad "$2" "$1" 2> /tmp/refused; then
		fail "user_create.sh accepted '$1'"
	fi
	cat /tmp/refused
	grep -F -- "$3" /tmp/refused >/dev/null || fail "user_create.sh '$1' did not say '$3'"
	[ $((SECONDS - started)) -lt 90 ] || fail "refusing '$1' took $((SECONDS - started)) s"
	[ -z "$(find "$CORE" -maxdepth 1 -name 'user_*')" ] ||
		fail "refusing '$1' left $(find "$CORE" -maxdepth 1 -name 'user_*') behind"
}
refused rbd/nosuch 1G "refuses config 'rbd/nosuch': no image 'rbd/nosuch' in the Ceph cluster"
refused nopool/lun0 1G "the Ceph cluster has no pool 'nopool'"
refused 'rbd/lun0;cache=on' 1G "unknown option 'cache' (known: osd_op_timeout, conf, id, gateway)"
refused 'rbd/lun0;osd_op_timeout=soon' 1G "osd_op_timeout=soon is not a number of seconds"
refused lun0 1G "'lun0' is not pool/image or pool/namespace/image"
refused 'rbd/lun0;conf=/tmp/unreachable.conf' 1G \
	"the Ceph cluster did not answer within 5 s (monitors: 127.0.0.1:1)"
# CheckConfig cannot know the size; open refuses it, and the log says why.
refused rbd/lun0 512M "tcmu-runner refused rbd backstore 'bad'"
assert_log_has "image 'rbd/lun0' holds 1073741824 bytes but the device's size is 536870912"

if targetcli /backstores/user:rbd create name=bad size=1G cfgstring=rbd/nosuch > /tmp/refused 2>&1; then
	fail "targetcli accepted rbd/nosuch"
fi
cat /tmp/refused
grep -F "no image 'rbd/nosuch' in the Ceph cluster" /tmp/refused >/dev/null ||
	fail "targetcli did not give the handler's reason"
[ -z "$(find "$CORE" -maxdepth 1 -name 'user_*')" ] || fail "targetcli left a backstore behind"

# ---- two LUNs, as the tutorial makes them
./user_create.sh rbd lun0 1G rbd/lun0 | tee /tmp/out_0
grep -qx '\[INFO\] Your backstore directory: user_0/lun0' /tmp/out_0 ||
	fail "user_create.sh rbd did not print user_0/lun0"
assert_log_has "rbd_open 'rbd/lun0' \(osd_op_timeout 20 s\)"
# The form other gateways save: rbd/pool/image;osd_op_timeout=N.
targetcli /backstores/user:rbd create name=lun1 size=64M \
	"cfgstring=rbd/lun1;osd_op_timeout=30;conf=$CEPH_CONF" ||
	fail "targetcli create of an rbd backstore failed"
assert_log_has "rbd_open 'rbd/lun1' \(osd_op_timeout 30 s\)"
lun1=$(find "$CORE" -mindepth 2 -maxdepth 2 -name lun1)
[ -n "$lun1" ] || fail "targetcli's lun1 is not in configfs"

tutorial_target_create
iqn=$TARGET_IQN
./target_setup.sh "$iqn" user_0/lun0
./target_setup.sh "$iqn" "${lun1#"$CORE"/}"
targetcli ls | tee /tmp/targetcli_ls
grep -E 'o- lun0 \.+ \[rbd/lun0 \(1\.0GiB\) activated\]' /tmp/targetcli_ls >/dev/null ||
	fail "targetcli ls does not show lun0 (1.0GiB) activated"

iscsid
cleanup_fn iscsiadm -m session -u
iscsiadm -m discovery -t sendtargets -p 127.0.0.1 --login
wait_for 60 "two TCMU disks in lsscsi" test "$(lsscsi | grep -c 'LIO-ORG *TCMU device')" -eq 2
disk_0=$(lsscsi | awk '/LIO-ORG *TCMU device/ && $1 ~ /:0]$/ {print $NF}')
disk_1=$(lsscsi | awk '/LIO-ORG *TCMU device/ && $1 ~ /:1]$/ {print $NF}')
[ "$(blockdev --getsize64 "$disk_0")" -eq 1073741824 ] || fail "$disk_0 is not 1 GiB"
[ "$(blockdev --getsize64 "$disk_1")" -eq 67108864 ] || fail "$disk_1 is not 64 MiB"

# ---- data: dd, fio verify, and the cluster holds exactly that
random_file /tmp/pattern 16M
started=$SECONDS
dd if=/tmp/pattern of="$disk_0" bs=1M oflag=direct status=none
cmp <(dd if="$disk_0" bs=1M count=16 iflag=direct status=none) /tmp/pattern ||
	fail "$disk_0 read back differs"
echo "dd: 16 MiB written and read in $((SECONDS - started)) s"
started=$SECONDS
fio --name=verify --filename="$disk_0" --direct=1 --ioengine=libaio --iodepth=16 \
	--rw=randwrite --bsrange=4k-64k --offset=64M --size=32M --verify=crc32c \
	--verify_fatal=1 --do_verify=1 --output=/tmp/fio.out || { cat /tmp/fio.out; fail "fio verify failed"; }
grep -E 'err= *0' /tmp/fio.out >/dev/null || { cat /tmp/fio.out; fail "fio reports errors"; }
echo "fio: 32 MiB written at QD16 and verified in $((SECONDS - started)) s"
timeout 300 rbd export rbd/lun0 /tmp/lun0.img || fail "rbd export rbd/lun0"
cmp -n 16777216 /tmp/lun0.img /tmp/pattern || fail "rbd export differs from what dd wrote"
cmp <(dd if=/tmp/lun0.img bs=1M skip=64 count=32 status=none) \
	<(dd if="$disk_0" bs=1M skip=64 count=32 iflag=direct status=none) ||
	fail "rbd export differs from what fio wrote"
rm -f /tmp/lun0.img

# ---- UNMAP frees objects and reads back zeros
used_bytes() { timeout 300 rbd du --format json rbd/lun0 | sed -n 's/.*"used_size":\([0-9]*\).*/\1/p'; }
used_before=$(used_bytes)
[ "$used_before" -ge $((48 << 20)) ] || fail "rbd du shows $used_before bytes used after 48 MiB of writes"
[ "$(cat /sys/block/"${disk_0#/dev/}"/queue/discard_max_bytes)" -gt 0 ] ||
	fail "$disk_0 does not support discard"
blkdiscard -o 0 -l 128M "$disk_0"
used_after=$(used_bytes)
echo "rbd du: $used_before bytes used before UNMAP, $used_after after"
[ "$used_after" -eq 0 ] || fail "rbd du shows $used_after bytes used after unmapping everything written"
cmp <(dd if="$disk_0" bs=1M count=128 iflag=direct status=none) <(head -c 128M /dev/zero) ||
	fail "unmapped blocks do not read back as zeros"

# ---- a file system on the second LUN
mkfs.ext4 -q -F "$disk_1" || fail "mkfs.ext4 $disk_1"
fsck.ext4 -fn "$disk_1" || fail "fsck.ext4 finds errors on $disk_1"

# ---- size: larger grows the image, smaller is refused
echo -n 134217728 > "$lun1/attrib/dev_size" || fail "growing lun1 to 128 MiB was refused"
timeout 300 rbd info rbd/lun1 | grep -F 'size 128 MiB' >/dev/null || fail "the image did not grow to 128 MiB"
iscsiadm -m session -R
wait_for 30 "$disk_1 to show 128 MiB" test "$(blockdev --getsize64 "$disk_1")" -eq 134217728
if echo -n 33554432 > "$lun1/attrib/dev_size"; then
	fail "shrinking lun1 to 32 MiB was accepted"
fi
assert_log_has "new size 33554432 refused: the image holds 134217728 bytes"
fsck.ext4 -fn "$disk_1" || fail "fsck.ext4 finds errors on $disk_1 after the resize"

# ---- teardown
iscsiadm -m session -u
wait_for 30 "the disks to go" test "$(lsscsi | grep -c 'LIO-ORG *TCMU device')" -eq 0
./target_delete.sh "$iqn"
./user_delete.sh user_0/lun0
./user_delete.sh "${lun1#"$CORE"/}"
wait_for 30 "the daemon to close every uio" test -z "$(daemon_uio_fds)"
stop_daemon INT
assert_log_lacks ' CRIT '
