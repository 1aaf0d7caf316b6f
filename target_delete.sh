#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# target_delete.sh: removes an iSCSI target with its LUNs, ACLs and portals.
set -euo pipefail

ISCSI=/sys/kernel/config/target/iscsi

usage() {
	cat <<'EOF_USAGE'
Usage: ./target_delete.sh IQN
Removes the iSCSI target IQN with its ACLs, LUNs and portals; initiators
still logged in lose their session (log out first: iscsiadm -m session -u).
The backstores stay: remove them with ./user_delete.sh. Run as root.
EOF_USAGE
}

die() {
	echo "[ERROR] $*" >&2
	exit 1
}

case ${1:-} in
-h | --help) usage; exit 0 ;;
esac
if [ $# -ne 1 ]; then
	usage >&2
	exit 2
fi
iqn=$1
[[ -n $iqn && $iqn != */* && $iqn != .* ]] || die "bad IQN '$iqn'"
[ "$(id -u)" -eq 0 ] || die "must run as root: sudo $0 $*"
[ -d "$ISCSI/$iqn" ] || die "no iSCSI target $iqn"

shopt -s nullglob
for tpg in "$ISCSI/$iqn"/tpgt_*; do
	echo 0 > "$tpg/enable" 2>/dev/null || true
	for acl in "$tpg"/acls/*; do
		for mapped in "$acl"/lun_*; do
			for link in "$mapped"/*; do
				[ -L "$link" ] && rm "$link"
			done
			rmdir "$mapped"
		done
		rmdir "$acl"
	done
	for lun in "$tpg"/lun/lun_*; do
		for link in "$lun"/*; do
			[ -L "$link" ] && rm "$link"
		done
		rmdir "$lun"
	done
	for portal in "$tpg"/np/*; do
		rmdir "$portal"
	done
	rmdir "$tpg"
done
rmdir "$ISCSI/$iqn" || die "cannot remove $ISCSI/$iqn"
echo "[INFO] Target $iqn deleted"
