#!/bin/bash
# The installed systemd unit under a real systemd: the guest's init is a
# plain shell, so systemd boots as PID 1 of a PID namespace (as in a
# container, but sharing the guest's devices, configfs and netlink), runs
# systemd_unit.inner.sh as a unit, and exits. The checks are in that script.
source "${SOURCE_DIR:-.}/tests/lib.sh"
requires unshare util-linux
requires /lib/systemd/systemd systemd

cmake --install "$BUILD_DIR" > "$OUT_DIR/install.log"
# Debian's tmpfiles.d/tmp.conf ("D /tmp") empties /tmp when systemd boots:
# in this guest that would take a checkout or build under /tmp (CI clones
# there) away from the checks. /etc/tmpfiles.d overrides the file by name.
mkdir -p /etc/tmpfiles.d
echo 'd /tmp 1777 root root -' > /etc/tmpfiles.d/tmp.conf
result=/var/tmp/systemd_unit.status
rm -f "$result"
cat > /etc/systemd/system/tcmu-vm-checks.service <<UNIT
[Unit]
Description=checks of tcmu-runner.service (tests/vm/systemd_unit.inner.sh)
Wants=dbus.socket
After=dbus.socket basic.target
SuccessAction=exit-force
FailureAction=exit-force

[Service]
Type=oneshot
Environment=SOURCE_DIR=$SOURCE_DIR BUILD_DIR=$BUILD_DIR
ExecStart=/bin/bash $SOURCE_DIR/tests/vm/systemd_unit.inner.sh
ExecStopPost=/bin/sh -c 'echo \$\$EXIT_STATUS > $result'
StandardOutput=file:$OUT_DIR/systemd_unit.inner.log
StandardError=inherit
UNIT

# --kill-child: a timeout takes systemd down with unshare.
status=0
timeout 400 unshare --pid --fork --kill-child --mount-proc \
	env container=vm-run /lib/systemd/systemd --unit=tcmu-vm-checks.service \
	--log-target=console --log-level=notice > "$OUT_DIR/systemd.console" 2>&1 || status=$?
set +x
echo "---- systemd exited with $status; the checks said:"
cat "$OUT_DIR/systemd_unit.inner.log" 2>/dev/null || true
set -x
[ -f "$result" ] || fail "systemd never ran the checks (see $OUT_DIR/systemd.console)"
[ "$(cat "$result")" = 0 ] || fail "the checks under systemd failed (exit status $(cat "$result"))"
