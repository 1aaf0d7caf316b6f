#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The D-Bus service as targetcli uses it, on a real kernel and a real
# system bus with the project's policy (tcmu-runner.conf):
# - without a bus the daemon warns once and still serves;
# - targetcli lists user:alloc and user:file, prints ConfigDesc in
#   "help create", creates a working file backstore, refuses a bad
#   cfgstring with the handler's reason, and changes the medium (size,
#   then file) so that the kernel and the initiator see the new one;
# - other users may introspect and read properties, not call methods;
# - saveconfig, clearconfig, daemon restart, restoreconfig bring the
#   backstores back with their data and their LUN.
source "${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

SERVICE=org.kernel.TCMUService1
POLICY=$SOURCE_DIR/tcmu-runner.conf
MIB=1048576

requires targetcli targetcli-fb
requires dbus-daemon dbus-daemon
requires gdbus libglib2.0-bin
requires useradd passwd
requires runuser util-linux
requires sg_readcap sg3-utils
[ -f "$POLICY" ] || fail "$POLICY is missing (the D-Bus policy the tutorial installs)"

bus_name_owned() {
	gdbus call --system --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
		--method org.freedesktop.DBus.NameHasOwner "$SERVICE" | grep -q true
}

# tcli: runs the targetcli commands given on stdin in one targetcli (each
# start costs seconds under TCG) and prints what it said. targetcli
# reports errors on its output, with an exit status that says little, so
# the tests read the output.
tcli() {
	local output
	output=$({
		echo "set global color_mode=false"
		echo "set global auto_save_on_exit=false"
		cat
		echo "exit"
	} | targetcli 2>&1) || true
	printf '%s\n' "$output" >> "$OUT_DIR/$TEST_NAME.targetcli"
	printf '%s\n' "$output"
}

backstore_dir() {
	local dir
	for dir in "$CORE"/user_*/"$1"; do
		[ -d "$dir" ] && echo "$dir" && return 0
	done
	return 1
}

# disk_of_lun NAME: the /dev/sdX of the tcm_loop LUN 0 that exports backstore NAME.
disk_of_lun() {
	local tpg
	for tpg in "$LOOPBACK"/naa.*/tpgt_1; do
		[ -L "$tpg/lun/lun_0/$1" ] || continue
		_loop_disk "$(cat "$tpg/address"):0"
		return
	done
	return 1
}

dump_kernel_log() { dmesg > "$OUT_DIR/$TEST_NAME.dmesg"; }
cleanup_fn dump_kernel_log
modprobe target_core_user
modprobe tcm_loop
modprobe sd_mod
mkdir -p /var/lib/tcmu-test
export DAEMON_CWD=/var/lib/tcmu-test

# ---- 1. no system bus: one warning, devices still served
start_daemon
wait_for 20 "the missing bus warning" grep -q "no system bus" "$DAEMON_LOG"
backstore_create next nobus $((8 * MIB)) alloc/ || fail "without a bus the daemon refused a device"
[ "$(cat "$BACKSTORE/enable")" = 1 ] || fail "without a bus the device is not enabled"
[ "$(grep -c 'no system bus' "$DAEMON_LOG")" -eq 1 ] || fail "the missing bus was warned about more than once"
backstore_remove "$BACKSTORE"
stop_daemon

# ---- 2. the system bus with the project's policy
mkdir -p /run/dbus /etc/dbus-1/system.d
install -m 0644 "$POLICY" /etc/dbus-1/system.d/tcmu-runner.conf
dbus-daemon --system --fork
cleanup_fn sh -c 'kill "$(cat /run/dbus/pid)"'

start_daemon
wait_for 10 "the daemon to own $SERVICE" bus_name_owned
assert_log_has "D-Bus service $SERVICE ready"

output=$(tcli <<'EOF'
ls /backstores
/backstores/user:file help create
/backstores/user:file create name=f1 size=16M cfgstring=/var/tmp/f1.img
/backstores/user:file create name=bad size=16M cfgstring=/nonexistent/dir/x.img
/backstores/user:alloc create name=badalloc size=16M cfgstring=size=1G
/backstores/user:alloc create name=a1 size=8M cfgstring=
EOF
)
grep -q "o- user:alloc" <<<"$output" || fail "targetcli ls does not show user:alloc"
grep -q "o- user:file" <<<"$output" || fail "targetcli ls does not show user:file"

# help create prints the handler's ConfigDesc
grep -q "CFGSTRING FORMAT" <<<"$output" || fail "help create has no CFGSTRING FORMAT section"
grep -q "The path of the file that holds the disk" <<<"$output" ||
	fail "help create does not print the file handler's ConfigDesc"

# create: CheckConfig, then configfs, then the daemon
grep -q "Created user-backed storage object f1" <<<"$output" || fail "create f1 failed"
f1_dir=$(backstore_dir f1) || fail "f1 is not in configfs"
cleanup_fn backstore_remove "$f1_dir"
[ "$(cat "$f1_dir/enable")" = 1 ] || fail "f1 is not enabled"
[ "$(stat -c %s /var/tmp/f1.img)" -eq $((16 * MIB)) ] || fail "/var/tmp/f1.img is not 16 MiB"
grep -q "Created user-backed storage object a1" <<<"$output" || fail "create a1 (empty cfgstring) failed"
a1_dir=$(backstore_dir a1) || fail "a1 is not in configfs"
cleanup_fn backstore_remove "$a1_dir"

# a bad cfgstring is refused with the handler's reason; nothing is created
grep -q "cfgstring invalid: .*/nonexistent/dir" <<<"$output" ||
	fail "the bad cfgstring was not refused with the handler's reason"
backstore_dir bad && fail "the refused backstore exists in configfs"
grep -q "cfgstring invalid: alloc" <<<"$output" || fail "alloc accepted a config string"
backstore_dir badalloc && fail "the refused alloc backstore exists in configfs"

loop_expose "$f1_dir"
disk=$DISK
random_file /tmp/pattern 8M
write_and_verify "$disk" /tmp/pattern
cmp <(head -c $((8 * MIB)) /var/tmp/f1.img) /tmp/pattern || fail "/var/tmp/f1.img does not hold the data"

# ---- 3. changemedium: a new size, seen by the kernel and the initiator, data kept
output=$(tcli <<'EOF'
ls /backstores/user:file
/backstores/user:file changemedium f1 32M /var/tmp/f1.img
/backstores/user:file changemedium f1 1000 /var/tmp/f1.img
/backstores/user:alloc changemedium name=a1 size=16M cfgstring=
EOF
)
grep -q "o- f1 .* activated\]" <<<"$output" || fail "targetcli ls does not show f1 activated"
[ "$(grep -c "Medium Changed" <<<"$output")" -eq 2 ] || fail "changemedium of f1 or a1 failed"
grep -q "ChangeMedium failed: .*block size" <<<"$output" ||
	fail "changemedium accepted 1000 bytes, or gave no reason"
[ "$(cat "$f1_dir/attrib/dev_size")" -eq $((32 * MIB)) ] || fail "configfs dev_size is not 32 MiB"
grep -q "Size: $((32 * MIB))" "$f1_dir/info" || fail "the kernel's info does not show the new size"
[ "$(stat -c %s /var/tmp/f1.img)" -eq $((32 * MIB)) ] || fail "/var/tmp/f1.img was not grown"
[ "$(cat "$a1_dir/attrib/dev_size")" -eq $((16 * MIB)) ] || fail "a1's dev_size is not 16 MiB"
assert_log_has "size is now $((32 * MIB))"
# The first command after the change meets CAPACITY DATA HAS CHANGED.
sg_readcap "$disk" >/dev/null 2>&1 || true
capacity=$(sg_readcap "$disk" | awk '/Device size:/ {print $3}')
[ "$capacity" -eq $((32 * MIB)) ] || fail "READ CAPACITY says $capacity bytes after changemedium"
echo 1 > "/sys/block/${disk#/dev/}/device/rescan"
wait_for 10 "$disk to be 32 MiB" sh -c "[ \$(blockdev --getsize64 $disk) -eq $((32 * MIB)) ]"
cmp <(dd if="$disk" bs=1M count=8 iflag=direct status=none) /tmp/pattern ||
	fail "data inside the old size changed with the size"

# a new file: the kernel's dev_config follows, the new data lands in it
output=$(tcli <<<"/backstores/user:file changemedium f1 32M /var/tmp/f1b.img")
grep -q "Medium Changed" <<<"$output" || fail "changemedium (new file) failed"
[ "$(cat "$f1_dir/attrib/dev_config")" = "file//var/tmp/f1b.img" ] ||
	fail "configfs dev_config did not follow"
grep -q "f1b.img" /sys/class/uio/uio*/name || fail "the UIO device name does not show the new file"
random_file /tmp/pattern2 4M
write_and_verify "$disk" /tmp/pattern2
cmp <(head -c $((4 * MIB)) /var/tmp/f1b.img) /tmp/pattern2 ||
	fail "/var/tmp/f1b.img does not hold the new data"
cmp <(head -c $((8 * MIB)) /var/tmp/f1.img) /tmp/pattern || fail "the old file changed after the switch"

# ---- 4. other users: may look, may not call
id tcmutester >/dev/null 2>&1 || useradd -M tcmutester
as_user() { runuser -u tcmutester -- "$@"; }
as_user gdbus introspect --system --dest "$SERVICE" --object-path /org/kernel/TCMUService1/file \
	> /tmp/introspect.txt 2>&1 || fail "introspection as a user failed: $(cat /tmp/introspect.txt)"
grep -q "ConfigDesc" /tmp/introspect.txt || fail "introspection as a user shows no ConfigDesc"
as_user gdbus call --system --dest "$SERVICE" --object-path /org/kernel/TCMUService1/file \
	--method org.freedesktop.DBus.Properties.Get "$SERVICE" ConfigDesc > /tmp/property.txt 2>&1 ||
	fail "reading ConfigDesc as a user failed: $(cat /tmp/property.txt)"
if as_user gdbus call --system --dest "$SERVICE" --object-path /org/kernel/TCMUService1/file \
	--method "$SERVICE.CheckConfig" "file//var/tmp/x.img" > /tmp/check.txt 2>&1; then
	fail "CheckConfig as a user was answered: $(cat /tmp/check.txt)"
fi
grep -q "AccessDenied" /tmp/check.txt || fail "CheckConfig as a user: not AccessDenied: $(cat /tmp/check.txt)"
if as_user gdbus call --system --dest "$SERVICE" --object-path /org/kernel/TCMUService1/file \
	--method "$SERVICE.ChangeMedium" f1 67108864 "file//var/tmp/f1.img" > /tmp/change.txt 2>&1; then
	fail "ChangeMedium as a user was answered: $(cat /tmp/change.txt)"
fi
grep -q "AccessDenied" /tmp/change.txt || fail "ChangeMedium as a user: not AccessDenied"
[ "$(cat "$f1_dir/attrib/dev_size")" -eq $((32 * MIB)) ] || fail "a user's ChangeMedium changed dev_size"
# root calls directly
gdbus call --system --dest "$SERVICE" --object-path /org/kernel/TCMUService1/file \
	--method "$SERVICE.CheckConfig" "file//var/tmp/x.img" | grep -qF "(true, '')" ||
	fail "CheckConfig as root did not accept file//var/tmp/x.img"

# ---- 5. saveconfig, clearconfig, restart, restoreconfig
output=$(tcli <<<"saveconfig")
saved=$(sed -n 's/.*Configuration saved to //p' <<<"$output")
[ -f "$saved" ] || fail "saveconfig saved nothing: $output"
grep -q '"config": "file//var/tmp/f1b.img"' "$saved" || fail "saveconfig did not store f1's config"
grep -q "\"size\": $((32 * MIB))" "$saved" || fail "saveconfig did not store f1's size"
tcli <<<"clearconfig confirm=True" >/dev/null
backstore_dir f1 && fail "clearconfig left f1"
stop_daemon
start_daemon
wait_for 10 "the daemon to own $SERVICE again" bus_name_owned
output=$(tcli <<<"restoreconfig $saved")
grep -q "Configuration restored from" <<<"$output" || fail "restoreconfig: $output"
f1_dir=$(backstore_dir f1) || fail "restoreconfig did not bring f1 back"
[ "$(cat "$f1_dir/enable")" = 1 ] || fail "restored f1 is not enabled"
[ "$(cat "$f1_dir/attrib/dev_size")" -eq $((32 * MIB)) ] || fail "restored f1 is not 32 MiB"
[ "$(cat "$f1_dir/attrib/dev_config")" = "file//var/tmp/f1b.img" ] || fail "restored f1 has another config"
a1_dir=$(backstore_dir a1) || fail "restoreconfig did not bring a1 back"
[ "$(cat "$a1_dir/enable")" = 1 ] || fail "restored a1 is not enabled"
wait_for 20 "the restored LUN's disk" disk_of_lun f1
disk=$(disk_of_lun f1)
wait_for 10 "$disk" test -b "$disk"
cmp <(dd if="$disk" bs=1M count=4 iflag=direct status=none) /tmp/pattern2 ||
	fail "the restored f1 does not read back its data"

# leave configfs empty for the next test
output=$(tcli <<'EOF'
ls /backstores/user:file
clearconfig confirm=True
EOF
)
grep -q "o- f1 .* activated\]" <<<"$output" || fail "restored f1 is not shown activated"
stop_daemon
