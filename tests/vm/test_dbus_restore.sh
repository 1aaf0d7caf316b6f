#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# targetcli saveconfig, clearconfig, a daemon restart and targetcli
# restoreconfig bring user: backstores created through the D-Bus service
# back: enabled, with their size and config, the file one with its data
# and its LUN (a tcm_loop target, saved with the rest).
source "${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
source "$SOURCE_DIR/tests/vm/dbus_common.sh"

system_bus_start
start_daemon_on_bus

output=$(tcli <<'EOF'
/backstores/user:file create name=f1 size=16M cfgstring=/var/tmp/f1.img
/backstores/user:alloc create name=a1 size=8M cfgstring=
EOF
)
grep -q "Created user-backed storage object f1" <<<"$output" || fail "create f1 failed"
grep -q "Created user-backed storage object a1" <<<"$output" || fail "create a1 failed"
f1_dir=$(backstore_dir f1) || fail "f1 is not in configfs"
cleanup_fn backstore_remove "$f1_dir"
a1_dir=$(backstore_dir a1) || fail "a1 is not in configfs"
cleanup_fn backstore_remove "$a1_dir"
loop_expose "$f1_dir"
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
[ "$(cat "$f1_dir/enable")" = 1 ] || fail "restored f1 is not enabled"
[ "$(cat "$f1_dir/attrib/dev_size")" -eq $((16 * MIB)) ] || fail "restored f1 is not 16 MiB"
[ "$(cat "$f1_dir/attrib/dev_config")" = "file//var/tmp/f1.img" ] || fail "restored f1 has another config"
a1_dir=$(backstore_dir a1) || fail "restoreconfig did not bring a1 back"
[ "$(cat "$a1_dir/enable")" = 1 ] || fail "restored a1 is not enabled"
wait_for 20 "the restored LUN's disk" disk_of_lun f1
disk=$(disk_of_lun f1)
wait_for 10 "$disk" test -b "$disk"
cmp <(dd if="$disk" bs=1M count=8 iflag=direct status=none) /tmp/pattern ||
	fail "the restored f1 does not read back its data"

# leave configfs empty for the next test
output=$(tcli <<'EOF'
ls /backstores/user:file
clearconfig confirm=True
EOF
)
grep -q "o- f1 .* activated\]" <<<"$output" || fail "restored f1 is not shown activated"
backstore_dir f1 && fail "clearconfig left f1"
stop_daemon
