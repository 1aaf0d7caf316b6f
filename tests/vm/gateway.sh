# SPDX-License-Identifier: Apache-2.0
# tests/vm/gateway.sh: one iSCSI gateway of an RBD LUN, for the two-gateway
# tests; sourced in both guests of vm-pair (in the peer without tests/lib.sh,
# so it uses nothing of it). Gateway N (1 or 2) serves the image as
# user_1/$GW_NAME, LUN 0 of target $GW_IQN, portal group tpgt_N on
# 10.9.0.N:3260, without authentication for any initiator.

GW_IQN=iqn.2003-01.org.linux-iscsi.tcmu:gateways
GW_NAME=lun0
GW_CONFIGFS=/sys/kernel/config/target

gw_die() {
	echo "gateway: $*" >&2
	exit 1
}

# gw_daemon LOG: starts the daemon of this build in the background (D-Bus
# first, as the tutorial does) and waits until it has subscribed to the
# kernel's events.
gw_daemon() {
	local log=$1 tries
	: > "$log"
	mkdir -p /etc/dbus-1/system.d /etc/tcmu /run/dbus
	cp "$SOURCE_DIR/tcmu-runner.conf" /etc/dbus-1/system.d/
	cp "$SOURCE_DIR/tcmu.conf" /etc/tcmu/tcmu.conf
	[ -e /run/dbus/system_bus_socket ] || dbus-daemon --system --fork </dev/null >/dev/null 2>&1
	modprobe target_core_user || gw_die "no target_core_user"
	(cd "$SOURCE_DIR" && TCMU_BUILD_DIR=$BUILD_DIR setsid ./run.sh </dev/null >>"$log" 2>&1 &)
	for ((tries = 600; tries > 0; tries--)); do
		grep ' ready$' "$log" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	gw_die "the daemon did not say ready within 60 s: $(tail -n 20 "$log")"
}

# gw_export N BYTES CONFIG: the backstore (rbd config string CONFIG, e.g.
# rbd/lun0;conf=/etc/ceph/ceph.conf;gateway=N/2), its unit serial left to the
# handler (the image's id, alike on every gateway), ALUA left to the daemon
# (alua_support 0: the lock's owner is active), and the gateway's iSCSI
# portal group.
gw_export() {
	local node=$1 size=$2 config=$3 backstore tpg tries
	backstore=$GW_CONFIGFS/core/user_1/$GW_NAME
	mkdir -p "$backstore" || gw_die "mkdir $backstore"
	echo -n "dev_size=$size" > "$backstore/control"
	echo -n "dev_config=rbd/$config" > "$backstore/control"
	echo 0 > "$backstore/attrib/alua_support" || gw_die "the kernel keeps alua_support"
	# The daemon checks the cluster within 5 s before it opens the image, which
	# a loaded TCG guest can miss: a refusal is retried, twice.
	for ((tries = 3; tries > 0; tries--)); do
		echo 1 > "$backstore/enable" && break
		[ "$tries" -gt 1 ] || gw_die "the daemon refused rbd/$config"
		sleep 2
	done
	modprobe iscsi_target_mod || gw_die "no iscsi_target_mod"
	tpg=$GW_CONFIGFS/iscsi/$GW_IQN/tpgt_$node
	mkdir -p "$tpg/lun/lun_0" "$tpg/np/10.9.0.$node:3260" || gw_die "mkdir $tpg"
	ln -s "$backstore" "$tpg/lun/lun_0/$GW_NAME"
	echo 0 > "$tpg/attrib/authentication"
	echo 1 > "$tpg/attrib/generate_node_acls"
	echo 1 > "$tpg/attrib/cache_dynamic_acls"
	echo 0 > "$tpg/attrib/demo_mode_write_protect"
	echo 1 > "$tpg/enable"
}
