#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# target_create.sh: creates an iSCSI target with a portal on 127.0.0.1:3260.
set -euo pipefail

ISCSI=/sys/kernel/config/target/iscsi
PORTAL=127.0.0.1:3260

usage() {
	cat <<'EOF_USAGE'
Usage: ./target_create.sh [IQN]
Creates the iSCSI target IQN (default: a new name such as
iqn.2017-07.com.test:target-14-17-18) with one portal on 127.0.0.1:3260,
without authentication, for the initiators that target_setup.sh maps, and
prints:
  [INFO] Target <iqn> created
  [INFO] Portal: 127.0.0.1:3260
Add backstores to it with ./target_setup.sh. Run as root.
EOF_USAGE
}

die() {
	echo "[ERROR] $*" >&2
	exit 1
}

case ${1:-} in
-h | --help) usage; exit 0 ;;
esac
if [ $# -gt 1 ]; then
	usage >&2
	exit 2
fi
iqn=${1:-iqn.2017-07.com.test:target-$(date +%H-%M-%S)}
# RFC 3720 3.2.6.3.1: iqn.YYYY-MM.reversed.domain[:anything], lower case.
[[ $iqn =~ ^iqn\.[0-9]{4}-[0-9]{2}\.[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[a-z0-9.:_-]+)?$ ]] && [ ${#iqn} -le 223 ] ||
	die "bad IQN '$iqn': expected iqn.YYYY-MM.reversed.domain[:name] in lower case, like iqn.2017-07.com.test:target"

[ "$(id -u)" -eq 0 ] || die "must run as root: sudo $0 $*"
[ -d /sys/kernel/config/target ] ||
	die "/sys/kernel/config/target is missing: configfs is not mounted or the LIO target (target_core_mod) is not loaded"
if [ ! -d "$ISCSI" ]; then
	modprobe iscsi_target_mod 2>/dev/null || true
	mkdir "$ISCSI" 2>/dev/null || true
	[ -d "$ISCSI" ] || die "cannot load the iSCSI target (kernel module iscsi_target_mod)"
fi
[ ! -e "$ISCSI/$iqn" ] || die "target $iqn already exists"

tpg=$ISCSI/$iqn/tpgt_1
created=false
remove_on_failure() {
	if ! $created; then
		rmdir "$tpg/np/$PORTAL" 2>/dev/null || true
		rmdir "$tpg" 2>/dev/null || true
		rmdir "$ISCSI/$iqn" 2>/dev/null || true
	fi
}
trap remove_on_failure EXIT

mkdir -p "$tpg" || die "cannot create $tpg"
echo 0 > "$tpg/attrib/authentication"
echo 0 > "$tpg/attrib/generate_node_acls"
echo 0 > "$tpg/attrib/demo_mode_write_protect"
mkdir "$tpg/np/$PORTAL" 2>/dev/null ||
	die "cannot open the portal $PORTAL (is another program using port 3260?)"
echo 1 > "$tpg/enable"
created=true
echo "[INFO] Target $iqn created"
echo "[INFO] Portal: $PORTAL"
