# SPDX-License-Identifier: Apache-2.0
# tests/vm/dbus_common.sh: what the test_dbus_*.sh scripts share. Sourced
# after tests/lib.sh; loads the kernel modules and defines:
#   system_bus_start   a system bus with the project's tcmu-runner.conf
#   start_daemon_on_bus  start_daemon, then wait until it owns the name
#   tcli               targetcli commands from stdin, in one targetcli
#   backstore_dir NAME, disk_of_lun NAME

SERVICE=org.kernel.TCMUService1
POLICY=$SOURCE_DIR/tcmu-runner.conf
MIB=1048576

requires targetcli targetcli-fb
requires dbus-daemon dbus-daemon
requires gdbus libglib2.0-bin
[ -f "$POLICY" ] || fail "$POLICY is missing (the D-Bus policy the tutorial installs)"

bus_name_owned() {
	gdbus call --system --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
		--method org.freedesktop.DBus.NameHasOwner "$SERVICE" | grep true >/dev/null
}

system_bus_start() {
	mkdir -p /run/dbus /etc/dbus-1/system.d
	install -m 0644 "$POLICY" /etc/dbus-1/system.d/tcmu-runner.conf
	dbus-daemon --system --fork
	cleanup_fn sh -c 'kill "$(cat /run/dbus/pid)"'
}

start_daemon_on_bus() {
	start_daemon "$@"
	wait_for 20 "the daemon to own $SERVICE" bus_name_owned
}

# tcli: runs the targetcli commands given on stdin in one targetcli (each
# start costs seconds under TCG) and prints what it said. targetcli
# reports errors on its output, with an exit status that says little, so
# the tests read the output. Everything is also kept in OUT_DIR.
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

_dump_kernel_log() { dmesg > "$OUT_DIR/$TEST_NAME.dmesg"; }
cleanup_fn _dump_kernel_log
requires_module target_core_user
requires_module tcm_loop
requires_module sd_mod
mkdir -p /var/lib/tcmu-test
export DAEMON_CWD=/var/lib/tcmu-test
