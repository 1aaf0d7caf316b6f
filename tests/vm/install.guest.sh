#!/bin/bash
# Runs inside the VM (see install.sh): the installed system as an
# administrator meets it. The guest root is a throw-away overlay, so the
# test installs into the real /usr, /etc and /lib.
#
#   BUILD_DIR  a configured and built tree (cmake --install source)
#   DEB        the .deb that `cpack -G DEB` made from a /usr build
#   THIRDPARTY_HANDLER  thirdparty_handler.c built against BUILD_DIR's
#              installed header, library and pkg-config file
set -euo pipefail

: "${BUILD_DIR:?}" "${DEB:?}" "${THIRDPARTY_HANDLER:?}"
LOG=/var/log/tcmu-runner.log
CONFIGFS=/sys/kernel/config/target/core
failures=0

step() { printf '\n=== [%ds] %s\n' "$SECONDS" "$*"; }
pass() { printf 'PASS: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; failures=$((failures + 1)); }
check() { # check DESCRIPTION COMMAND...
	local description=$1
	shift
	if "$@"; then pass "$description"; else fail "$description"; fi
}
# Polls COMMAND every 0.1 s for up to SECONDS of wall time.
wait_for() {
	local deadline=$((${EPOCHREALTIME/./} + $1 * 1000000))
	shift
	while true; do
		"$@" && return 0
		((${EPOCHREALTIME/./} < deadline)) || return 1
		sleep 0.1
	done
}
# Log lines written since the byte offset in $mark.
log_since() { tail -c +$((mark + 1)) "$LOG" 2>/dev/null; }
log_mark() { mark=$(stat -c %s "$LOG" 2>/dev/null || echo 0); }
log_has() { log_since | grep -- "$1" >/dev/null; }
log_lacks() { ! log_since | grep -- "$1" >/dev/null; }
contains_line() { grep -qx -- "$1" <<<"$2"; }
package_unknown() { ! dpkg -s tcmu-runner >/dev/null 2>&1; }
daemon_pid() {
	local pid
	pid=$(cat /run/tcmu-runner.lock 2>/dev/null) || return 1
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = tcmu-runner ] && echo "$pid"
}

# Creates an enabled user backstore; enable blocks until the daemon answered.
backstore_create() { # HBA NAME CONFIG
	local dir=$CONFIGFS/user_$1/$2
	mkdir -p "$dir"
	echo -n "dev_size=1048576" > "$dir/control"
	echo -n "dev_config=$3" > "$dir/control"
	echo -n 1 > "$dir/enable"
}
backstore_remove() { rmdir "$CONFIGFS/user_$1/$2" && rmdir "$CONFIGFS/user_$1"; }

# Exposes user_HBA/NAME as a SCSI disk through tcm_loop: sets TPG and DISK.
loop_expose() { # HBA NAME
	local address
	DISK=""
	modprobe tcm_loop && modprobe sd_mod
	TPG=/sys/kernel/config/target/loopback/naa.5001405000000001/tpgt_1
	mkdir -p "$TPG/lun/lun_0"
	echo -n naa.5001405000000002 > "$TPG/nexus"
	ln -s "$CONFIGFS/user_$1/$2" "$TPG/lun/lun_0/$2"
	address=$(cat "$TPG/address"):0
	wait_for 20 sh -c "ls /sys/class/scsi_device/$address/device/block/ >/dev/null 2>&1"
	DISK=/dev/$(ls "/sys/class/scsi_device/$address/device/block/" 2>/dev/null)
	wait_for 10 test -b "$DISK"
}
loop_unexpose() { # NAME
	rm "$TPG/lun/lun_0/$1" && rmdir "$TPG/lun/lun_0" "$TPG" "$(dirname "$TPG")"
}

# Whether the dynamic linker resolves libtcmu.so.1 for FILE to LIBRARY.
resolves_libtcmu_to() { # FILE LIBRARY
	local found
	found=$(ldd "$1" | awk '$1 == "libtcmu.so.1" {print $3}')
	[ -n "$found" ] && [ "$(realpath "$found")" = "$(realpath "$2")" ]
}

set_log_level() {
	sed -i "s/^log_level.*/log_level = $1/" /etc/tcmu/tcmu.conf
}

# dpkg reads its whole database (every installed package's file list) on
# each run, which takes minutes over the VM's 9p root. It gets a database of
# its own that holds just the packages the .deb depends on, so that the
# dependency check is still dpkg's, against the versions installed here.
admin=/tmp/dpkg-admin
mkdir -p "$admin/info" "$admin/updates" "$admin/triggers"
: > "$admin/available"
depends=$(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | awk '{print $1}' | sed 's/:any$//')
dpkg-query --status $depends > "$admin/status"
dpkg() { command dpkg --admindir="$admin" "$@"; }
dpkg-query() { command dpkg-query --admindir="$admin" "$@"; }

step "Debian package: install"
packaged_files=$(dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ {sub(/^\./, "", $6); print $6}')
for library in libc6 libglib2.0-0 libkmod2 libnl-3-200 libnl-genl-3-200; do
	check "the package depends on $library" contains_line "$library" "$depends"
done
check "dpkg -i $(basename "$DEB")" dpkg -i "$DEB"
check "package is installed" dpkg -s tcmu-runner
check "postinst enabled the unit for boot" \
	test -L /etc/systemd/system/multi-user.target.wants/tcmu-runner.service
missing=$(for file in $packaged_files; do [ -e "$file" ] || echo "$file"; done; true)
check "every packaged file is on disk" test -z "$missing"
check "packaged daemon runs: $(/usr/bin/tcmu-runner --version 2>&1)" /usr/bin/tcmu-runner --version
check "packaged daemon looks for handlers where the package put them" \
	sh -c '/usr/bin/tcmu-runner --help | grep -q "default: /usr/lib/[^ ]*/tcmu-runner)" &&
		ls /usr/lib/*/tcmu-runner/handler_alloc.so /usr/lib/*/tcmu-runner/handler_file.so'
library=$(ls /usr/lib/*/libtcmu.so.1 2>/dev/null || true)
check "the package puts libtcmu.so.1 in the system library directory" test -f "$library"
check "ldd: the packaged daemon finds it" resolves_libtcmu_to /usr/bin/tcmu-runner "$library"
check "ldd: so does a packaged handler" \
	resolves_libtcmu_to "$(ls /usr/lib/*/tcmu-runner/handler_alloc.so)" "$library"
check "the package triggers ldconfig" \
	grep -qx "activate-noawait ldconfig" <(dpkg-deb -I "$DEB" triggers)
conffiles=$(dpkg-query --showformat='${Conffiles}\n' --show tcmu-runner | awk 'NF {print $1}')
check "configuration files are dpkg conffiles" test -n "$conffiles"

step "Debian package: remove and purge"
check "dpkg -r tcmu-runner" dpkg -r tcmu-runner
left=$(for file in $packaged_files; do
	if [ -e "$file" ] && ! grep -qx -- "$file" <<<"$conffiles"; then echo "$file"; fi
done)
check "dpkg -r removed every file but the conffiles${left:+ (left: $left)}" test -z "$left"
check "dpkg -P tcmu-runner" dpkg -P tcmu-runner
left=$(for file in $packaged_files; do if [ -e "$file" ]; then echo "$file"; fi; done)
check "dpkg -P removed the conffiles too${left:+ (left: $left)}" test -z "$left"
check "no unit symlink is left" \
	sh -c '! find /etc/systemd/system -name tcmu-runner.service | grep -q .'
check "dpkg no longer knows the package" package_unknown

step "cmake --install"
cmake --install "$BUILD_DIR" > /tmp/install.log
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD_DIR/CMakeCache.txt")
daemon=$prefix/bin/tcmu-runner
check "daemon in $prefix/bin" test -x "$daemon"
export PKG_CONFIG_PATH=$(dirname "$(grep -o '/[^ ]*/pkgconfig/libtcmu.pc' /tmp/install.log)")
handler_dir=$(pkg-config --variable=handlerdir libtcmu)
check "pkg-config libtcmu names the handler directory ($handler_dir)" test -n "$handler_dir"
check "the handler directory is the daemon's default" \
	sh -c "'$daemon' --help | grep -q 'default: $handler_dir)'"
check "handlers installed in it" test -f "$handler_dir/handler_alloc.so" -a -f "$handler_dir/handler_file.so"
check "libtcmu.h installed where pkg-config says" \
	test -f "$(pkg-config --variable=includedir libtcmu)/libtcmu.h"
libdir=$(pkg-config --variable=libdir libtcmu)
check "libtcmu.so.1 and libtcmu.so installed where pkg-config says ($libdir)" \
	test -f "$libdir/libtcmu.so.1" -a -L "$libdir/libtcmu.so"
libs=$(pkg-config --libs libtcmu | xargs)
check "pkg-config --libs libtcmu links it ($libs)" test "$libs" = "-L$libdir -ltcmu"
# Before any ldconfig run: the installed files carry the path to it.
check "ldd: the installed daemon finds it" resolves_libtcmu_to "$daemon" "$libdir/libtcmu.so.1"
check "ldd: so does an installed handler" \
	resolves_libtcmu_to "$handler_dir/handler_alloc.so" "$libdir/libtcmu.so.1"
for file in /etc/tcmu/tcmu.conf /usr/share/dbus-1/system.d/tcmu-runner.conf \
	/usr/share/dbus-1/system-services/org.kernel.TCMUService1.service \
	/lib/systemd/system/tcmu-runner.service /lib/systemd/system/run-tcmu-alloc.mount \
	/etc/logrotate.d/tcmu-runner; do
	check "installed $file" test -f "$file"
done
check "activation file starts the installed daemon" \
	grep -qx "Exec=$daemon" /usr/share/dbus-1/system-services/org.kernel.TCMUService1.service

step "man pages"
for page in tcmu-runner tcmu-scripts; do
	file=$(man -w "$page" 2>/dev/null) || file=""
	check "man -w $page finds the installed page ($file)" test -n "$file"
	[ -n "$file" ] || continue
	# col -b: off a terminal, man leaves bold as overstrikes.
	MANWIDTH=80 man -l -Tutf8 "$file" 2> /tmp/page.warnings | col -b > /tmp/page
	warnings=$(cat /tmp/page.warnings)
	check "man -l $page renders without warnings${warnings:+: $warnings}" test -z "$warnings"
	warnings=$(groff -man -ww -z "$file" 2>&1)
	check "groff -ww $page has no warnings${warnings:+: $warnings}" test -z "$warnings"
	check "$page has the usual sections" \
		sh -c "grep -q '^SYNOPSIS' /tmp/page && grep -q '^SEE ALSO' /tmp/page"
done

step "systemd unit and logrotate file"
for file in tcmu-runner.service run-tcmu-alloc.mount; do
	output=$(systemd-analyze verify "/lib/systemd/system/$file" 2>&1) && status=0 || status=$?
	check "systemd-analyze verify $file${output:+: $output}" test "$status" = 0 -a -z "$output"
done
check "unit: Type=dbus, BusName, Before=target.service, Restart=on-failure" sh -c '
	unit=/lib/systemd/system/tcmu-runner.service
	grep -qx Type=dbus $unit && grep -qx BusName=org.kernel.TCMUService1 $unit &&
	grep -q "^Before=.*target.service" $unit && grep -qx Restart=on-failure $unit &&
	grep -qx "ExecStart='"$daemon"'" $unit'
output=$(logrotate -d /etc/logrotate.d/tcmu-runner 2>&1) && status=0 || status=$?
errors=$(grep -i error <<<"$output" || true)
check "logrotate -d accepts the file${errors:+: $errors}" test "$status" = 0 -a -z "$errors"

step "a third-party handler built against the installed libtcmu"
# install.sh built it on the host, where a compiler is many times faster.
check "installed into \$(pkg-config --variable=handlerdir libtcmu)" \
	install -m 644 "$THIRDPARTY_HANDLER" "$handler_dir/handler_thirdparty.so"
# It carries no path to libtcmu: the administrator runs ldconfig after
# installing into a prefix of the dynamic linker's configuration.
ldconfig
check "ldd: after ldconfig it finds libtcmu.so.1 in $libdir" \
	resolves_libtcmu_to "$handler_dir/handler_thirdparty.so" "$libdir/libtcmu.so.1"

step "D-Bus activation"
mkdir -p /etc/tcmu
cat > /etc/tcmu/tcmu.conf <<'EOF'
# written by the install test
log_level = 3
log_dir = /var/log
EOF
rm -f "$LOG"
modprobe target_core_user
mkdir -p /run/dbus
dbus-daemon --system --fork
check "no daemon runs before the first call" sh -c '! pgrep -x tcmu-runner >/dev/null'
# The first call starts the daemon; gdbus introspect would give up after
# its fixed 25 s, which a loaded TCG guest can need for the start alone.
answer=$(gdbus call --system --timeout 120 --dest org.kernel.TCMUService1 \
	--object-path /org/kernel/TCMUService1 \
	--method org.freedesktop.DBus.Introspectable.Introspect 2>&1) && status=0 || status=$?
check "a call to org.kernel.TCMUService1 activates it${answer:+ ($(head -c 200 <<<"$answer"))}" test "$status" = 0
check "the bus started the installed daemon" wait_for 10 daemon_pid
introspection=$(timeout 60 gdbus introspect --system --recurse --dest org.kernel.TCMUService1 \
	--object-path /org/kernel/TCMUService1 2>&1) || true
introspection_has() { grep -q -- "$1" <<<"$introspection"; }
check "gdbus introspect shows the object manager" introspection_has "org.freedesktop.DBus.ObjectManager"
check "and an object for the third-party handler" introspection_has "node .*thirdparty"
pid=$(daemon_pid || true)
check "the daemon runs with the installed libtcmu.so.1" \
	grep -q " $libdir/libtcmu.so.1\$" "/proc/${pid:-0}/maps"
check "the daemon logs to $LOG (log_dir in tcmu.conf)" wait_for 10 grep -q "ready" "$LOG"
mark=0
check "the third-party handler was loaded" log_has "handler 'thirdparty' loaded"

step "log_level follows tcmu.conf at runtime"
log_mark
set_log_level 2
check "log_level 2 announced" wait_for 10 log_has "log level 3 -> 2"
log_mark
backstore_create 1 quiet alloc/ && pass "alloc backstore created" || fail "alloc backstore not created"
check "at level 2 the info line of a new device is not logged" log_lacks "alloc/quiet.*attached"
log_mark
set_log_level 4
check "log_level 4 announced" wait_for 10 log_has "log level 2 -> 4"
backstore_create 2 loud thirdparty/ && pass "thirdparty backstore created" || fail "thirdparty backstore not created"
check "at level 4 the new device's info line is logged" log_has "thirdparty/loud.*attached"
check "at level 4 debug lines are logged" log_has " DEBUG "
check "the third-party handler's own log line is there" log_has "thirdparty/loud\] thirdparty open, 1048576 bytes"
log_mark
set_log_level 3
check "log_level 3 announced" wait_for 10 log_has "log level 4 -> 3"
log_mark
backstore_remove 2 loud
check "back at level 3 no debug line" log_lacks " DEBUG "
check "back at level 3 info lines" wait_for 5 log_has "thirdparty/loud.*removed"

step "the third-party handler serves I/O"
head -c 1M /dev/urandom > /tmp/pattern
backstore_create 5 served thirdparty/
loop_expose 5 served || true
check "a SCSI disk through tcm_loop ($DISK)" test -b "$DISK"
check "1 MiB written to it" dd if=/tmp/pattern of="$DISK" bs=64k oflag=direct status=none
check "it reads back as zeros: the handler read it and discarded the write" \
	cmp <(dd if="$DISK" bs=64k count=16 iflag=direct status=none) <(head -c 1M /dev/zero)
loop_unexpose served || fail "tcm_loop target of served removed"
backstore_remove 5 served

step "logrotate and SIGHUP"
logrotate -f -s /tmp/logrotate.state /etc/logrotate.d/tcmu-runner &&
	pass "logrotate -f" || fail "logrotate -f failed"
check "the old log was moved to $LOG.1" grep -q "ready" "$LOG.1"
backstore_create 3 afterrotate alloc/
check "the daemon writes the new $LOG after rotation" wait_for 5 grep -q "alloc/afterrotate.*attached" "$LOG"
check "and not the rotated one" sh -c "! grep -q afterrotate '$LOG.1'"
check "same daemon still running" test "$(daemon_pid || true)" = "$pid"

step "stop"
backstore_remove 3 afterrotate
backstore_remove 1 quiet
[ -n "$pid" ] && kill -TERM "$pid"
check "the daemon stops on SIGTERM" wait_for 30 sh -c "! kill -0 $pid 2>/dev/null"
check "its last line says so" wait_for 5 grep -q "stopped" "$LOG"

step "targetcli starts the daemon through the bus"
mkdir -p /etc/target
listing=$(timeout 120 targetcli ls /backstores 2>&1) && status=0 || status=$?
check "targetcli ls works${listing:+ ($(tr '\n' ' ' <<<"$listing" | head -c 400))}" test "$status" = 0
listing_has() { grep -q -- "$1" <<<"$listing"; }
check "targetcli sees user:alloc from the daemon it started" listing_has "user:alloc"
check "and user:thirdparty" listing_has "user:thirdparty"
check "a daemon runs again" wait_for 10 daemon_pid
pid=$(daemon_pid || true)
[ -n "$pid" ] && kill -TERM "$pid"
check "and stops" wait_for 30 sh -c "! kill -0 ${pid:-0} 2>/dev/null"

step "the unit's sandbox allows what the daemon does"
# The daemon runs with the unit's capability bounding set and no_new_privs
# (setpriv), through start, a device's life and I/O, and what strace saw it
# do is checked against the unit's SystemCallFilter=,
# RestrictAddressFamilies=, MemoryDenyWriteExecute=, RestrictRealtime= and
# RestrictNamespaces=: every call it made, not only those of one run under
# systemd (vm_systemd_unit runs the unit itself under a real systemd).
unit=/lib/systemd/system/tcmu-runner.service
capabilities=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit" | tr 'A-Z ' 'a-z\n' |
	sed -n 's/^cap_/+/p' | paste -sd, -)
expand_filter() {
	local name
	for name in "$@"; do
		systemd-analyze syscall-filter "$name" | awk 'NR > 1 && $1 !~ /^#/ {print $1}' |
			while read -r entry; do
				case $entry in @*) expand_filter "$entry" ;; *) echo "$entry" ;; esac
			done
	done
}
allowed=$(expand_filter $(sed -n 's/^SystemCallFilter=//p' "$unit") | sort -u)
families=$(sed -n 's/^RestrictAddressFamilies=//p' "$unit")
rmmod target_core_user 2>/dev/null || true	# so that the daemon loads it
strace -f -qq -o /tmp/daemon.trace \
	setpriv --no-new-privs --bounding-set "-all,$capabilities" -- "$daemon" 2>/dev/null &
wait_for 30 daemon_pid && pid=$(daemon_pid) || pid=""
check "the daemon runs under strace with only $capabilities" test -n "$pid"
check "its bounding set is the unit's, not all" \
	test "$(awk '/^CapBnd/ {print $2}' /proc/${pid:-0}/status 2>/dev/null)" != 000001ffffffffff
log_mark
wait_for 30 log_has " ready" || true
backstore_create 4 traced alloc/
loop_expose 4 traced || true
if test -b "$DISK" && dd if=/tmp/pattern of="$DISK" bs=64k oflag=direct status=none &&
	cmp <(dd if="$DISK" bs=64k count=16 iflag=direct status=none) /tmp/pattern; then
	pass "1 MiB written and read back through tcm_loop under strace"
else
	fail "I/O through tcm_loop ($DISK) under strace"
fi
loop_unexpose traced || fail "tcm_loop target of traced removed"
backstore_remove 4 traced
[ -n "$pid" ] && kill -TERM "$pid"
wait_for 30 sh -c "! pgrep -x strace >/dev/null" || fail "the traced daemon did not stop"
used=$(grep -oE '^[0-9]+ +([a-z0-9_]+)\(' /tmp/daemon.trace | sed -E 's/^[0-9]+ +//; s/\($//' | sort -u)
check "strace saw init_module or finit_module" grep -qE '^(f?init_module)$' <<<"$used"
outside=$(comm -23 <(echo "$used") <(echo "$allowed") | tr '\n' ' ')
check "every system call is in SystemCallFilter=${outside:+ (not: $outside)}" test -z "$outside"
used_families=$(grep -oE 'socket\((AF_[A-Z0-9]+)' /tmp/daemon.trace | sed 's/socket(//' | sort -u)
check "the daemon opened netlink and bus sockets ($(echo $used_families))" \
	contains_line AF_NETLINK "$used_families"
outside=$(for family in $used_families; do
	grep -qw "$family" <<<"$families" || echo "$family"
done)
check "every socket family is in RestrictAddressFamilies=${outside:+ (not: $outside)}" test -z "$outside"
found=$(grep -E '(mmap|mprotect|pkey_mprotect)\(' /tmp/daemon.trace | grep 'PROT_WRITE' | grep 'PROT_EXEC' || true)
check "no memory both writable and executable (MemoryDenyWriteExecute=)${found:+: $found}" test -z "$found"
found=$(grep -E 'SCHED_(FIFO|RR|DEADLINE)' /tmp/daemon.trace || true)
check "no realtime scheduling (RestrictRealtime=)${found:+: $found}" test -z "$found"
found=$(grep -E '^[0-9]+ +(unshare|setns)\(|CLONE_NEW' /tmp/daemon.trace || true)
check "no namespaces (RestrictNamespaces=)${found:+: $found}" test -z "$found"

echo
if [ "$failures" -gt 0 ]; then
	echo "install test: $failures check(s) failed"
	cp "$LOG"* /mnt/out/ 2>/dev/null || true
	exit 1
fi
echo "install test: all checks passed"
