#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The nbd handler through the tutorial's flow: run.sh, user_create.sh nbd with
# "exec:nbdkit memory 64M" and with a qcow2 image served by
# "exec:qemu-nbd -f qcow2 IMAGE", refusals with their reasons (bad URIs,
# shell metacharacters taken literally, an unreachable server, a too small
# export, a TLS key the server does not know), targetcli listing the percent-encoded config, an iSCSI login, fio
# crc32c verification on the nbdkit disk, mkfs.ext4 + fsck on the qcow2 disk;
# after the teardown qemu-img compare finds in the image exactly what the
# initiator read back, and qemu-img check finds it clean.
source "$(dirname "$0")/../lib.sh"
requires targetcli targetcli-fb
requires iscsiadm open-iscsi
requires iscsid open-iscsi
requires lsscsi lsscsi
requires dbus-daemon dbus
requires fio fio
requires nbdkit nbdkit
requires qemu-nbd qemu-utils
requires qemu-img qemu-utils
requires mkfs.ext4 e2fsprogs
requires_module iscsi_target_mod
requires_module sd_mod

cd "$SOURCE_DIR"
tutorial_system_setup

image=/var/tmp/tcmu-nbd-vm0.qcow2
rm -f "$image"
qemu-img create -q -f qcow2 "$image" 64M
cleanup_fn rm -f "$image"

DAEMON_CWD=$SOURCE_DIR TCMU_BUILD_DIR=$BUILD_DIR start_daemon_command ./run.sh

# expect_refused NAME SIZE CONFIG REASON: user_create.sh fails with REASON and leaves nothing.
expect_refused() {
	if ./user_create.sh nbd "$1" "$2" "$3" 2> /tmp/refused; then
		fail "user_create.sh accepted nbd config '$3'"
	fi
	cat /tmp/refused
	grep -F -- "$4" /tmp/refused >/dev/null ||
		fail "user_create.sh nbd '$3' did not say '$4'"
	[ -z "$(find "$CORE" -maxdepth 1 -name 'user_*')" ] || fail "a refused backstore was left behind"
}
expect_refused bad0 16M "http://127.0.0.1/x" "is neither an NBD URI"
expect_refused bad1 16M "exec:" "needs a server command"
expect_refused bad2 16M "nbd://127.0.0.1:1/" "Connection refused"
expect_refused bad3 16M "nbd+unix:///?socket=/nonexistent.sock" "cannot connect to the NBD server at"
# A shell would run the touch; the handler hands ';', '$(' and '|' to nbdkit as words.
expect_refused bad4 16M 'exec:nbdkit memory 16M;touch /tmp/pwned' "cannot connect to the server started by"
expect_refused bad5 16M 'exec:nbdkit memory 16M $(touch /tmp/pwned)' "cannot connect"
expect_refused bad6 16M 'exec:nbdkit memory 16M | touch /tmp/pwned' "cannot connect"
[ ! -e /tmp/pwned ] || fail "a shell ran the touch of an exec: config"
# nbds:// with a key the server does not know: CheckConfig names the TLS handshake.
printf 'tcmu:%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" > /tmp/server.psk
printf 'tcmu:%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" > /tmp/wrong.psk
nbdkit -p 10812 -P /tmp/nbdkit-tls.pid --tls=require --tls-psk=/tmp/server.psk memory 16M
wait_for 10 "the TLS server" test -s /tmp/nbdkit-tls.pid
expect_refused bad8 16M "nbds://tcmu@127.0.0.1:10812/?tls-psk-file=/tmp/wrong.psk" \
	"the TLS handshake failed: check the key or certificates"
kill "$(cat /tmp/nbdkit-tls.pid)"
# The size is known only to open: the enable fails and the log names both sizes.
if ./user_create.sh nbd bad7 32M "exec:nbdkit memory 16M" 2> /tmp/refused; then
	fail "user_create.sh accepted an export smaller than the device"
fi
cat /tmp/refused
assert_log_has "holds 16777216 bytes, less than the device's 33554432 bytes"

./user_create.sh nbd mem0 64M "exec:nbdkit memory 64M" | tee /tmp/out_0
grep -qx '\[INFO\] Your backstore directory: user_0/mem0' /tmp/out_0 ||
	fail "user_create.sh nbd did not print user_0/mem0"
./user_create.sh nbd vm0 64M "exec:qemu-nbd -f qcow2 $image" | tee /tmp/out_1
grep -qx '\[INFO\] Your backstore directory: user_1/vm0' /tmp/out_1 ||
	fail "user_create.sh nbd did not print user_1/vm0"
assert_log_has "connected to the server started by 'exec:nbdkit memory 64M'"
assert_log_has "connected to the server started by 'exec:qemu-nbd -f qcow2 $image'"

tutorial_target_create
iqn=$TARGET_IQN
./target_setup.sh "$iqn" user_0/mem0
./target_setup.sh "$iqn" user_1/vm0
targetcli ls > /tmp/targetcli_ls
cat /tmp/targetcli_ls
grep -F 'o- mem0 ' /tmp/targetcli_ls | grep -F '[exec%3Anbdkit%20memory%2064M (64.0MiB) activated]' >/dev/null ||
	fail "targetcli ls does not show mem0's config intact"

iscsi_login 2
disk_0=${ISCSI_DISKS[0]}
disk_1=${ISCSI_DISKS[1]}
[ "$(blockdev --getsize64 "$disk_0")" -eq 67108864 ] || fail "$disk_0 is not 64 MiB"

fio --name=verify --filename="$disk_0" --ioengine=libaio --direct=1 --rw=randwrite \
	--bs=4k --bsrange=4k-64k --iodepth=16 --size=8M --verify=crc32c --verify_fatal=1 \
	--do_verify=1 --output="$OUT_DIR/fio-nbdkit.txt" || { cat "$OUT_DIR/fio-nbdkit.txt"; fail "fio on $disk_0"; }
cat "$OUT_DIR/fio-nbdkit.txt"
grep 'err= 0' "$OUT_DIR/fio-nbdkit.txt" >/dev/null || fail "fio reported errors on $disk_0"

mkfs.ext4 -q -F "$disk_1"
mkdir -p /mnt/vm0
mount "$disk_1" /mnt/vm0
cleanup_fn umount /mnt/vm0
random_file /mnt/vm0/data 4M
sha=$(sha256sum < /mnt/vm0/data)
umount /mnt/vm0
mount "$disk_1" /mnt/vm0
echo 3 > /proc/sys/vm/drop_caches
[ "$(sha256sum < /mnt/vm0/data)" = "$sha" ] || fail "the file on the qcow2 disk changed"
umount /mnt/vm0
fsck.ext4 -f -n "$disk_1" || fail "fsck finds the file system on the qcow2 disk damaged"
# What the initiator sees, to compare with the image once qemu-nbd is gone.
dd if="$disk_1" of=/var/tmp/vm0.raw bs=1M iflag=direct status=none
cleanup_fn rm -f /var/tmp/vm0.raw

iscsiadm -m session -u
wait_for 20 "the disks to go" test "$(lsscsi | grep -c 'LIO-ORG *TCMU device')" -eq 0
./target_delete.sh "$iqn"
./user_delete.sh user_0/mem0
./user_delete.sh user_1/vm0
wait_for 10 "the daemon to close every uio" test -z "$(daemon_uio_fds)"
wait_for 10 "the servers to exit" bash -c '! pgrep -x "nbdkit|qemu-nbd" >/dev/null'
stop_daemon INT

qemu-img check "$image" || fail "qemu-img check finds $image damaged"
qemu-img compare -f raw -F qcow2 /var/tmp/vm0.raw "$image" ||
	fail "$image does not hold what the initiator wrote"
