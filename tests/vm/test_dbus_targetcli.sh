#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The D-Bus service as targetcli finds it, on a real kernel and a real
# system bus with the project's policy (tcmu-runner.conf):
# - targetcli lists user:alloc and user:file, prints ConfigDesc in
#   "help create", creates a working file backstore and refuses a bad
#   cfgstring with the handler's reason;
# - user:rbd and user:nbd are listed and described without their libraries
#   in the daemon: librbd and libnbd are mapped only once a CheckConfig
#   needs the handler, which then answers with its own reason;
# - other users may introspect and read properties, not call methods.
# changemedium: test_dbus_changemedium.sh; saveconfig/restoreconfig and
# the daemon without a bus: test_dbus_restore.sh.
source "${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
source "$SOURCE_DIR/tests/vm/dbus_common.sh"

requires useradd passwd
requires runuser util-linux

# ---- the system bus with the project's policy
system_bus_start
start_daemon_on_bus
assert_log_has "D-Bus service $SERVICE ready"
daemon_maps() { grep -c "$1" /proc/"$DAEMON_PID"/maps || true; }
[ "$(daemon_maps librbd)" = 0 ] || fail "librbd is mapped before any rbd device or CheckConfig"
[ "$(daemon_maps libnbd)" = 0 ] || fail "libnbd is mapped before any nbd device or CheckConfig"

output=$(tcli <<'EOF'
ls /backstores
/backstores/user:rbd help create
/backstores/user:file help create
/backstores/user:file create name=f1 size=16M cfgstring=/var/tmp/f1.img
/backstores/user:file create name=bad size=16M cfgstring=/nonexistent/dir/x.img
/backstores/user:alloc create name=badalloc size=16M cfgstring=size=1G
EOF
)
grep -q "o- user:alloc" <<<"$output" || fail "targetcli ls does not show user:alloc"
grep -q "o- user:file" <<<"$output" || fail "targetcli ls does not show user:file"
grep -q "o- user:rbd" <<<"$output" || fail "targetcli ls does not show user:rbd"
grep -q "o- user:nbd" <<<"$output" || fail "targetcli ls does not show user:nbd"
grep -q "pool/image\[;osd_op_timeout=N\]" <<<"$output" ||
	fail "help create does not print the rbd handler's ConfigDesc"
[ "$(daemon_maps librbd)" = 0 ] || fail "listing and describing user:rbd mapped librbd"

# The first CheckConfig loads the handler, which answers it (librbd's
# libraries can take longer to load under TCG than targetcli waits).
rbd_answer=$(gdbus call --system --timeout 120 --dest "$SERVICE" \
	--object-path /org/kernel/TCMUService1/rbd --method "$SERVICE.CheckConfig" rbd/noslash 2>&1) ||
	fail "CheckConfig of user:rbd failed: $rbd_answer"
grep -q "^(false, .*'noslash' is not pool/image" <<<"$rbd_answer" ||
	fail "user:rbd CheckConfig: not the handler's reason: $rbd_answer"
[ "$(daemon_maps librbd)" != 0 ] || fail "librbd is not mapped after the rbd handler's CheckConfig"
[ "$(daemon_maps libnbd)" = 0 ] || fail "the rbd handler's CheckConfig mapped libnbd"
assert_log_has "handler 'rbd' loaded from"

# help create prints the handler's ConfigDesc
grep -q "CFGSTRING FORMAT" <<<"$output" || fail "help create has no CFGSTRING FORMAT section"
grep -q "The path of the file that holds the disk" <<<"$output" ||
	fail "help create does not print the file handler's ConfigDesc"

# create: CheckConfig, then configfs, then the daemon; the disk works
grep -q "Created user-backed storage object f1" <<<"$output" || fail "create f1 failed"
f1_dir=$(backstore_dir f1) || fail "f1 is not in configfs"
cleanup_fn backstore_remove "$f1_dir"
[ "$(cat "$f1_dir/enable")" = 1 ] || fail "f1 is not enabled"
[ "$(stat -c %s /var/tmp/f1.img)" -eq $((16 * MIB)) ] || fail "/var/tmp/f1.img is not 16 MiB"
loop_expose "$f1_dir"
random_file /tmp/pattern 8M
write_and_verify "$DISK" /tmp/pattern
cmp <(head -c $((8 * MIB)) /var/tmp/f1.img) /tmp/pattern || fail "/var/tmp/f1.img does not hold the data"

# a bad cfgstring is refused with the handler's reason; nothing is created
grep -q "cfgstring invalid: .*/nonexistent/dir" <<<"$output" ||
	fail "the bad cfgstring was not refused with the handler's reason"
backstore_dir bad && fail "the refused backstore exists in configfs"
grep -q "cfgstring invalid: alloc" <<<"$output" || fail "alloc accepted a config string"
backstore_dir badalloc && fail "the refused alloc backstore exists in configfs"

# ---- other users: may look, may not call
id tcmutester >/dev/null 2>&1 || useradd -M tcmutester
as_user() { runuser -u tcmutester -- "$@"; }
object=/org/kernel/TCMUService1/file
as_user gdbus introspect --system --dest "$SERVICE" --object-path "$object" \
	> /tmp/introspect.txt 2>&1 || fail "introspection as a user failed: $(cat /tmp/introspect.txt)"
grep -q "ConfigDesc" /tmp/introspect.txt || fail "introspection as a user shows no ConfigDesc"
as_user gdbus call --system --dest "$SERVICE" --object-path "$object" \
	--method org.freedesktop.DBus.Properties.Get "$SERVICE" ConfigDesc > /tmp/property.txt 2>&1 ||
	fail "reading ConfigDesc as a user failed: $(cat /tmp/property.txt)"
grep -q "The path of the file" /tmp/property.txt || fail "ConfigDesc as a user: $(cat /tmp/property.txt)"
if as_user gdbus call --system --dest "$SERVICE" --object-path "$object" \
	--method "$SERVICE.CheckConfig" "file//var/tmp/x.img" > /tmp/check.txt 2>&1; then
	fail "CheckConfig as a user was answered: $(cat /tmp/check.txt)"
fi
grep -q "AccessDenied" /tmp/check.txt || fail "CheckConfig as a user: not AccessDenied: $(cat /tmp/check.txt)"
if as_user gdbus call --system --dest "$SERVICE" --object-path "$object" \
	--method "$SERVICE.ChangeMedium" f1 67108864 "file//var/tmp/f1.img" > /tmp/change.txt 2>&1; then
	fail "ChangeMedium as a user was answered: $(cat /tmp/change.txt)"
fi
grep -q "AccessDenied" /tmp/change.txt || fail "ChangeMedium as a user: not AccessDenied"
[ "$(cat "$f1_dir/attrib/dev_size")" -eq $((16 * MIB)) ] || fail "a user's ChangeMedium changed dev_size"

# root may call
gdbus call --system --dest "$SERVICE" --object-path "$object" \
	--method "$SERVICE.CheckConfig" "file//var/tmp/x.img" | grep -F "(true, '')" >/dev/null ||
	fail "CheckConfig as root did not accept file//var/tmp/x.img"
gdbus call --system --dest "$SERVICE" --object-path "$object" \
	--method "$SERVICE.CheckConfig" "file//nonexistent/dir/x.img" | grep "(false, .*/nonexistent/dir" >/dev/null ||
	fail "CheckConfig as root did not refuse file//nonexistent/dir/x.img with a reason"

loop_unexpose "$DISK"
backstore_remove "$f1_dir"
stop_daemon
