#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# target_setup.sh: adds a backstore to an iSCSI target as its next LUN and
# maps it for this machine's initiator.
set -euo pipefail

TARGET=/sys/kernel/config/target
ISCSI=$TARGET/iscsi
INITIATOR_FILE=/etc/iscsi/initiatorname.iscsi

usage() {
	cat <<'EOF_USAGE'
Usage: ./target_setup.sh IQN user_N/NAME
Adds the backstore user_N/NAME (from user_create.sh) to the iSCSI target IQN
(from target_create.sh) as its next LUN, and maps that LUN, read-write, in
the target's ACL for this machine's initiator (InitiatorName in
/etc/iscsi/initiatorname.iscsi). Run as root.
EOF_USAGE
}

die() {
	echo "[ERROR] $*" >&2
	exit 1
}

# next_free DIR: smallest K such that DIR/lun_K does not exist.
next_free() {
	local k=0
	while [ -e "$1/lun_$k" ]; do
		k=$((k + 1))
	done
	echo "$k"
}

case ${1:-} in
-h | --help) usage; exit 0 ;;
esac
if [ $# -ne 2 ]; then
	usage >&2
	exit 2
fi
iqn=$1 backstore=${2%/}
[[ $backstore =~ ^user_[0-9]+/[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] ||
	die "bad backstore '$2': expected user_N/NAME, as user_create.sh printed it"
[[ $iqn != */* && $iqn != .* ]] || die "bad IQN '$iqn'"

[ "$(id -u)" -eq 0 ] || die "must run as root: sudo $0 $*"
[ -d "$TARGET/core" ] || die "$TARGET/core is missing: configfs is not mounted or LIO is not loaded"
tpg=$ISCSI/$iqn/tpgt_1
[ -d "$tpg" ] || die "no iSCSI target $iqn: create it with ./target_create.sh $iqn"
dir=$TARGET/core/$backstore
[ -d "$dir" ] || die "no backstore $backstore: create it with ./user_create.sh"
[ "$(cat "$dir/enable" 2>/dev/null)" = 1 ] || die "backstore $backstore is not enabled (is tcmu-runner serving it?)"

[ -r "$INITIATOR_FILE" ] || die "$INITIATOR_FILE is missing: install open-iscsi (./dependency.sh)"
initiator=$(sed -n 's/^[[:space:]]*InitiatorName[[:space:]]*=[[:space:]]*//p' "$INITIATOR_FILE" | tail -n 1)
[[ $initiator =~ ^(iqn|eui|naa)\. ]] ||
	die "no usable InitiatorName in $INITIATOR_FILE (found '${initiator}')"

for link in "$tpg"/lun/lun_*/*; do
	[ -L "$link" ] || continue
	if [ "$(readlink -f "$link")" = "$(readlink -f "$dir")" ]; then
		lun=$(basename "$(dirname "$link")")
		die "$backstore is already LUN ${lun#lun_} of $iqn"
	fi
done

lun_number=$(next_free "$tpg/lun")
lun=$tpg/lun/lun_$lun_number
acl=$tpg/acls/$initiator
acl_created=false
[ -d "$acl" ] || acl_created=true
mapped_number=$lun_number
[ ! -e "$acl/lun_$mapped_number" ] || mapped_number=$(next_free "$acl")
mapped=$acl/lun_$mapped_number

done_ok=false
remove_on_failure() {
	if ! $done_ok; then
		rm -f "$mapped"/* 2>/dev/null || true
		rmdir "$mapped" 2>/dev/null || true
		if $acl_created; then rmdir "$acl" 2>/dev/null || true; fi
		rm -f "$lun"/* 2>/dev/null || true
		rmdir "$lun" 2>/dev/null || true
	fi
}
trap remove_on_failure EXIT

mkdir "$lun" || die "cannot create $lun"
ln -s "$dir" "$lun/${backstore#*/}" || die "cannot link $backstore into $lun"
mkdir -p "$mapped" || die "cannot create the ACL entry $mapped"
ln -s "$lun" "$mapped/lun" || die "cannot map LUN $lun_number for $initiator"
done_ok=true
echo "[INFO] $backstore is LUN $lun_number of $iqn, mapped as LUN $mapped_number for $initiator"
