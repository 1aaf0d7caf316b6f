#!/bin/bash
# Runs as a unit of the systemd that test_systemd_unit.sh booted: starts,
# crashes, stops and bus-activates the installed tcmu-runner.service, and
# checks its sandbox and that it serves a device through it all.
source "${SOURCE_DIR:-.}/tests/lib.sh"
unit=tcmu-runner.service

main_pid() { systemctl show -P MainPID "$unit"; }
is_active() { [ "$(systemctl is-active "$unit")" = active ]; }
name_owned() {
	gdbus call --system --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
		--method org.freedesktop.DBus.NameHasOwner org.kernel.TCMUService1 | grep true >/dev/null
}
mount_read_only() { # PID PATH
	awk -v path="$2" '$5 == path {print $6}' "/proc/$1/mountinfo" | grep '^ro' >/dev/null
}
restarted() { is_active && [ "$(main_pid)" != 0 ] && [ "$(main_pid)" != "$1" ]; }

# Type=dbus: start returns once the daemon owns its bus name.
systemctl start "$unit" || fail "systemctl start $unit: $(systemctl status --no-pager "$unit")"
is_active || fail "$unit is $(systemctl is-active "$unit") after start"
name_owned || fail "org.kernel.TCMUService1 has no owner when start returned"
pid=$(main_pid)

# The unit's sandbox is in force on the running daemon.
grep -q '^NoNewPrivs:[[:space:]]*1$' "/proc/$pid/status" || fail "NoNewPrivileges= not applied"
grep -q '^Seccomp:[[:space:]]*2$' "/proc/$pid/status" || fail "SystemCallFilter= not applied"
[ "$(awk '/^CapBnd/ {print $2}' "/proc/$pid/status")" != 000001ffffffffff ] ||
	fail "CapabilityBoundingSet= not applied"
mount_read_only "$pid" /usr || fail "ProtectSystem=full: /usr is writable for the daemon"
mount_read_only "$pid" /etc || fail "ProtectSystem=full: /etc is writable for the daemon"
[ "$(readlink "/proc/$pid/cwd")" = /var/lib/tcmu ] || fail "WorkingDirectory= is not /var/lib/tcmu"

# The alloc handler's memory: a tmpfs of its own that only root enters.
[ "$(findmnt -n -o FSTYPE /run/tcmu/alloc)" = tmpfs ] ||
	fail "run-tcmu-alloc.mount did not mount a tmpfs on /run/tcmu/alloc: $(findmnt /run/tcmu/alloc)"
[ "$(stat -c %a:%U /run/tcmu/alloc)" = 700:root ] ||
	fail "/run/tcmu/alloc is $(stat -c %a:%U /run/tcmu/alloc), not 700:root"

# It serves a device in that sandbox: configfs, netlink, /dev/uio*, its memory.
random_file /var/tmp/pattern 1M
backstore_create next served 16777216 alloc/
memory=/run/tcmu/alloc/$(basename "$(dirname "$BACKSTORE")")-served
loop_expose "$BACKSTORE"
write_and_verify "$DISK" /var/tmp/pattern
[ "$(stat -c %b "$memory")" -ge 2048 ] || fail "$memory does not hold the 1 MiB written"

# Restart=on-failure: systemd starts a new daemon, which takes the device over.
kill -KILL "$pid"
wait_for 60 "systemd to restart $unit after SIGKILL" restarted "$pid"
cmp <(dd if="$DISK" bs=1M count=1 iflag=direct status=none) /var/tmp/pattern ||
	fail "the alloc disk lost its data when systemd restarted $unit"
write_and_verify "$DISK" /var/tmp/pattern
[ "$(systemctl show -P NRestarts "$unit")" = 1 ] || fail "NRestarts is not 1"

loop_unexpose "$DISK"
backstore_remove "$BACKSTORE"

# Each line reaches the journal with its level as priority: a refused device
# is an error; the start-up lines are information.
if backstore_create next refused 4194304 nosuchhandler/whatever; then
	fail "enable succeeded for a subtype with no handler"
fi
backstore_remove "$BACKSTORE"
journal() { journalctl --no-pager -o cat -u "$unit" "$@"; }
wait_for 30 "the refused device at priority err in the journal" \
	sh -c "journalctl --no-pager -o cat -u $unit -p err | grep nosuchhandler >/dev/null"
journal -p err | grep ' ERROR ' >/dev/null || fail "no ERROR line at priority err"
! journal -p err | grep ' INFO ' >/dev/null || fail "INFO lines at priority err: $(journal -p err)"
journal -p info | grep ' INFO ' >/dev/null || fail "no INFO line at priority info"
! journal | grep '^<[0-9]>' >/dev/null || fail "priority prefixes left in the journal's text"

systemctl stop "$unit" || fail "systemctl stop $unit"
is_active && fail "$unit still active after stop"
[ "$(systemctl show -P Result "$unit")" = success ] ||
	fail "the daemon did not stop cleanly: Result=$(systemctl show -P Result "$unit")"
# The memory outlives the daemon: its tmpfs stays mounted.
[ "$(findmnt -n -o FSTYPE /run/tcmu/alloc)" = tmpfs ] ||
	fail "stopping $unit unmounted /run/tcmu/alloc"

# Bus activation: the bus hands the name to systemd (SystemdService=).
gdbus call --system --timeout 120 --dest org.kernel.TCMUService1 \
	--object-path /org/kernel/TCMUService1 \
	--method org.freedesktop.DBus.Introspectable.Introspect > /dev/null ||
	fail "a call to org.kernel.TCMUService1 did not start it"
is_active || fail "the bus did not start $unit through systemd"
systemctl stop "$unit"
echo "systemd_unit: all checks passed"
