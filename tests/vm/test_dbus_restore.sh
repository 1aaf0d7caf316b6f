#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# targetcli saveconfig and clearconfig, a daemon restart and targetcli
# restoreconfig bring user: backstores back: enabled, with their size and
# config, the file one with its data and its LUN (a tcm_loop target,
# saved with the rest). The backstores are made through configfs, which
# is what targetcli's create does after CheckConfig
# (test_dbus_targetcli.sh); each targetcli start costs much time under TCG.
# First, without a bus: the daemon warns once and still serves.
source "${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
source "$SOURCE_DIR/tests/vm/dbus_common.sh"

# ---- no system bus: one warning, devices still served
start_daemon
wait_for 20 "the missing bus warning" grep -q "no system bus" "$DAEMON_LOG"
backstore_create next nobus $((8 * MIB)) alloc/ || fail "without a bus the daemon refused a device"
[ "$(cat "$BACKSTORE/enable")" = 1 ] || fail "without a bus the device is not enabled"
[ "$(grep -c 'no system bus' "$DAEMON_LOG")" -eq 1 ] ||
	fail "the missing bus was warned about more than once"
backstore_remove "$BACKSTORE"
stop_daemon

# ---- the system bus with the project's policy
system_bus_start
start_daemon_on_bus

backstore_create next f1 $((16 * MIB)) file//var/tmp/f1.img || fail "f1 refused"
backstore_create next a1 $((8 * MIB)) alloc/ || fail "a1 refused"
loop_expose "$(backstore_dir f1)"
random_file /tmp/pattern 8M
write_and_verify "$DISK" /tmp/pattern

output=$(tcli <<'EOF'
saveconfig
clearconfig confirm=True
EOF
)
saved=$(sed -n 's/.*Configuration saved to //p' <<<"$output")
[ -f "$saved" ] || fail "saveconfig saved nothing: $output"
grep -q '"config": "file//var/tmp/f1.img"' "$saved" || fail "saveconfig did not store f1's config"
grep -q "\"size\": $((16 * MIB))" "$saved" || fail "saveconfig did not store f1's size"
grep -q '"config": "alloc/"' "$saved" || fail "saveconfig did not store a1"
backstore_dir f1 && fail "clearconfig left f1"
backstore_dir a1 && fail "clearconfig left a1"

stop_daemon
start_daemon_on_bus
output=$(tcli <<<"restoreconfig $saved")
grep -q "Configuration restored from" <<<"$output" || fail "restoreconfig: $output"
f1_dir=$(backstore_dir f1) || fail "restoreconfig did not bring f1 back"
cleanup_fn backstore_remove "$f1_dir"
[ "$(cat "$f1_dir/enable")" = 1 ] || fail "restored f1 is not enabled"
[ "$(cat "$f1_dir/attrib/dev_size")" -eq $((16 * MIB)) ] || fail "restored f1 is not 16 MiB"
[ "$(cat "$f1_dir/attrib/dev_config")" = "file//var/tmp/f1.img" ] || fail "restored f1 has another config"
a1_dir=$(backstore_dir a1) || fail "restoreconfig did not bring a1 back"
cleanup_fn backstore_remove "$a1_dir"
[ "$(cat "$a1_dir/enable")" = 1 ] || fail "restored a1 is not enabled"
wait_for 20 "the restored LUN's disk" disk_of_lun f1
disk=$(disk_of_lun f1)
wait_for 10 "$disk" test -b "$disk"
cmp <(dd if="$disk" bs=1M count=8 iflag=direct status=none) /tmp/pattern ||
	fail "the restored f1 does not read back its data"

loop_unexpose "$disk"
backstore_remove "$f1_dir"
backstore_remove "$a1_dir"
stop_daemon
