#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# user_delete.sh: removes a user:<subtype> backstore that user_create.sh made.
set -euo pipefail

TARGET=/sys/kernel/config/target
CORE=$TARGET/core

usage() {
	cat <<'EOF_USAGE'
Usage: ./user_delete.sh user_N/NAME
Removes the backstore user_N/NAME (as printed by user_create.sh) and its
user_N HBA when that becomes empty. tcmu-runner closes the device. The
backstore must not be a LUN of a target any more (./target_delete.sh).
The data of an alloc backstore is gone; the file of a file backstore stays.
Run as root.
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
backstore=${1%/}
[[ $backstore =~ ^user_[0-9]+/[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] ||
	die "bad backstore '$1': expected user_N/NAME, as user_create.sh printed it"

[ "$(id -u)" -eq 0 ] || die "must run as root: sudo $0 $*"
[ -d "$CORE" ] || die "$CORE is missing: configfs is not mounted or target_core_user not loaded"
dir=$CORE/$backstore
[ -d "$dir" ] || die "no backstore $backstore (no $dir)"

# LUNs that still point at it: removing it under an initiator is refused.
users=()
while IFS= read -r link; do
	if [ "$(readlink -f "$link")" = "$(readlink -f "$dir")" ]; then
		users+=("${link#"$TARGET"/}")
	fi
done < <(find "$TARGET" -mindepth 6 -maxdepth 6 -type l -path '*/lun/lun_*/*' 2>/dev/null)
if [ ${#users[@]} -gt 0 ]; then
	die "$backstore is still exported as ${users[*]}; remove the target first (./target_delete.sh IQN)"
fi

rmdir "$dir" || die "cannot remove $dir"
# The HBA goes too unless it holds other backstores.
rmdir "$(dirname "$dir")" 2>/dev/null || true
echo "[INFO] Backstore $backstore deleted"
