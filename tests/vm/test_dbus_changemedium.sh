#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# targetcli's changemedium through the D-Bus service, on a real kernel:
# a new size reaches configfs, the kernel and the initiator (READ
# CAPACITY, the disk after a rescan) and grows the file without touching
# its data; a size that is not whole blocks is refused with a reason; a
# new file becomes the kernel's dev_config and receives the data; alloc
# grows. The backstores are made through configfs (test_dbus_targetcli.sh
# covers targetcli's create) and all changes go through one targetcli,
# whose every start costs much time under TCG.
source "${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
source "$SOURCE_DIR/tests/vm/dbus_common.sh"

requires sg_readcap sg3-utils

system_bus_start
start_daemon_on_bus

backstore_create next f1 $((16 * MIB)) file//var/tmp/f1.img || fail "f1 refused"
f1_dir=$BACKSTORE
backstore_create next a1 $((8 * MIB)) alloc/ || fail "a1 refused"
a1_dir=$BACKSTORE
loop_expose "$f1_dir"
disk=$DISK
random_file /tmp/pattern 8M
write_and_verify "$disk" /tmp/pattern

output=$(tcli <<'EOF'
/backstores/user:file changemedium f1 32M /var/tmp/f1.img
/backstores/user:file changemedium f1 1000 /var/tmp/f1.img
/backstores/user:alloc changemedium name=a1 size=16M cfgstring=
/backstores/user:file changemedium f1 32M /var/tmp/f1b.img
EOF
)
[ "$(grep -c "Medium Changed" <<<"$output")" -eq 3 ] || fail "a changemedium of f1 or a1 failed"
grep -q "ChangeMedium failed: .*block size" <<<"$output" ||
	fail "changemedium accepted 1000 bytes, or gave no reason"

# ---- the new size
[ "$(cat "$f1_dir/attrib/dev_size")" -eq $((32 * MIB)) ] || fail "configfs dev_size is not 32 MiB"
grep -q "Size: $((32 * MIB))" "$f1_dir/info" || fail "the kernel's info does not show the new size"
[ "$(stat -c %s /var/tmp/f1.img)" -eq $((32 * MIB)) ] || fail "/var/tmp/f1.img was not grown"
cmp <(head -c $((8 * MIB)) /var/tmp/f1.img) /tmp/pattern || fail "growing /var/tmp/f1.img changed its data"
[ "$(cat "$a1_dir/attrib/dev_size")" -eq $((16 * MIB)) ] || fail "a1's dev_size is not 16 MiB"
assert_log_has "size is now $((32 * MIB))"
# The first command after the change meets CAPACITY DATA HAS CHANGED.
sg_readcap "$disk" >/dev/null 2>&1 || true
capacity=$(sg_readcap "$disk" | awk '/Device size:/ {print $3}')
[ "$capacity" -eq $((32 * MIB)) ] || fail "READ CAPACITY says $capacity bytes after changemedium"
echo 1 > "/sys/block/${disk#/dev/}/device/rescan"
wait_for 10 "$disk to be 32 MiB" sh -c "[ \$(blockdev --getsize64 $disk) -eq $((32 * MIB)) ]"

# ---- the new file: the kernel's dev_config follows, the new data lands in it
[ "$(cat "$f1_dir/attrib/dev_config")" = "file//var/tmp/f1b.img" ] ||
	fail "configfs dev_config did not follow"
grep -q "f1b.img" /sys/class/uio/uio*/name || fail "the UIO device name does not show the new file"
[ "$(stat -c %s /var/tmp/f1b.img)" -eq $((32 * MIB)) ] || fail "/var/tmp/f1b.img is not 32 MiB"
random_file /tmp/pattern2 4M
write_and_verify "$disk" /tmp/pattern2
cmp <(head -c $((4 * MIB)) /var/tmp/f1b.img) /tmp/pattern2 ||
	fail "/var/tmp/f1b.img does not hold the new data"
cmp <(head -c $((8 * MIB)) /var/tmp/f1.img) /tmp/pattern || fail "the old file changed after the switch"

loop_unexpose "$disk"
backstore_remove "$f1_dir"
backstore_remove "$a1_dir"
stop_daemon
