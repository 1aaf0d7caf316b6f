# SPDX-License-Identifier: Apache-2.0
# tests/vm/ceph.sh: a single-node Ceph cluster for the rbd tests, sourced
# after tests/lib.sh:
#
#     source "$(dirname "$0")/../lib.sh"
#     source "$(dirname "$0")/ceph.sh"
#     ceph_start                  # mon + memstore OSD, pool "rbd"
#     rbd create --size 1G rbd/lun0
#
# Everything lives in $CEPH_DIR (/tmp/ceph): configuration, mon store, OSD
# data (memstore: in the OSD's memory; CEPH_OSD_BYTES is the capacity it
# reports, which a restart counts as the objects' full sizes), logs,
# admin sockets and pid files. No cephx, one replica, no mgr (RBD I/O needs
# none). The daemons are stopped by their pids at exit. For outage tests,
# ceph_osd_pause / ceph_osd_resume freeze the OSD (SIGSTOP: it holds every
# request without answering; at most 14 s, see there), and ceph_osd_stop /
# ceph_osd_start and ceph_mon_stop / ceph_mon_start stop and restart the
# daemons (a memstore OSD saves its objects to $CEPH_DIR/osd when it stops
# and loads them when it starts: keep what such a test writes small).
#
# Under TCG the cluster takes about a minute to come up and the OSD a good
# part of a GiB: tests that source this ask vm-run for 4 GiB with a
# "# vm-run: -m 4096" line (tests/vm/CMakeLists.txt reads it).
#
# The mon listens on CEPH_MON_HOST (127.0.0.1); with a link address there
# and its network in CEPH_PUBLIC_NETWORK (10.9.0.0/24) the OSD listens on
# the link too, and another guest reaches the cluster with a copy of
# $CEPH_CONF.
#
# Sets and exports CEPH_CONF, which ceph, rbd and librados read.

CEPH_DIR=${CEPH_DIR:-/tmp/ceph}
CEPH_OSD_BYTES=${CEPH_OSD_BYTES:-4294967296}
CEPH_MON_HOST=${CEPH_MON_HOST:-127.0.0.1}
export CEPH_CONF=$CEPH_DIR/ceph.conf

requires ceph-mon ceph-mon
requires ceph-osd ceph-osd
requires ceph ceph-common
requires rados ceph-common
requires rbd ceph-common

# ceph_pid NAME (mon.a, osd.0): the daemon's pid from its pid file.
ceph_pid() {
	local file=$CEPH_DIR/run/$1.pid
	[ -s "$file" ] || return 1
	cat "$file"
}

# _ceph_wait_exit PID SECONDS
_ceph_wait_exit() {
	local pid=$1 tries
	for ((tries = $2 * 10; tries > 0; tries--)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# _ceph_kill NAME: stops one daemon by pid, SIGKILL if SIGTERM is not enough.
_ceph_kill() {
	local pid
	pid=$(ceph_pid "$1") || return 0
	kill -CONT "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	_ceph_wait_exit "$pid" 20 || kill -KILL "$pid" 2>/dev/null || true
	_ceph_wait_exit "$pid" 5 || true
	rm -f "$CEPH_DIR/run/$1.pid"
}

ceph_stop() {
	_ceph_kill osd.0
	_ceph_kill mon.a
}

# ceph_start: creates and starts the cluster, with pool "rbd" ready for images.
ceph_start() {
	local started=$SECONDS
	rm -rf "$CEPH_DIR"
	mkdir -p "$CEPH_DIR"/{run,log,osd,mon}
	cat > "$CEPH_CONF" <<EOF
[global]
fsid = $(cat /proc/sys/kernel/random/uuid)
mon host = $CEPH_MON_HOST
${CEPH_PUBLIC_NETWORK:+public network = $CEPH_PUBLIC_NETWORK}
run dir = $CEPH_DIR/run
log file = $CEPH_DIR/log/\$name.log
admin socket = $CEPH_DIR/run/\$name.asok
pid file = $CEPH_DIR/run/\$name.pid
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
osd objectstore = memstore
# A stopped OSD saves its objects, so that it can be started again.
osd fast shutdown = false
memstore device bytes = $CEPH_OSD_BYTES
# Pages: a 4 KiB write into a 4 MiB object takes 4 KiB, not 4 MiB.
memstore page set = true
osd class load list = *
osd class default list = *
osd data = $CEPH_DIR/osd
mon data = $CEPH_DIR/mon
keyring = /dev/null
EOF
	cleanup_fn ceph_stop
	ceph-mon --id a --mkfs --keyring /dev/null || fail "ceph-mon --mkfs failed"
	ceph_mon_start
	# One session of the ceph CLI: a Python program that takes half a minute
	# to start under TCG. The pool needs no OSD up to be created.
	printf '%s\n' 'osd create' 'osd crush add osd.0 1 root=default' \
		'osd pool create rbd 8' 'osd pool application enable rbd rbd' |
		timeout 300 ceph --connect-timeout 240 || fail "ceph could not create the OSD and the pool"
	ceph-osd --id 0 --mkfs || fail "ceph-osd --mkfs failed"
	ceph_osd_start
	echo "ceph: cluster up in $((SECONDS - started)) s"
}

# _ceph_wait_pool SECONDS: waits until pool rbd answers (the mon is up, the
# OSD is up and its PGs are active), each try bounded by the time left.
_ceph_wait_pool() {
	local deadline=$((SECONDS + $1))
	while ! timeout $((deadline - SECONDS > 1 ? deadline - SECONDS : 1)) \
		rados -p rbd ls >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || fail "pool rbd did not answer within $1 s"
		sleep 1
	done
}

# ceph_osd_start: starts the OSD (again, after ceph_osd_stop) and waits until
# pool rbd answers.
ceph_osd_start() {
	ceph-osd --id 0 || fail "ceph-osd failed to start"
	wait_for 120 "ceph-osd's pid file" ceph_pid osd.0
	_ceph_wait_pool 300
}

# ceph_osd_stop: stops the OSD cleanly (memstore saves its objects).
ceph_osd_stop() {
	_ceph_kill osd.0
}

# ceph_osd_pause / ceph_osd_resume: the OSD stops answering and answers again.
# A freeze must stay shorter than the OSD's read lease (osd_heartbeat_grace
# 20 s x osd_pool_default_read_lease_ratio 0.8 = 16 s): a sole OSD that
# wakes up after its lease ran out marks its PGs laggy and, with no peer to
# renew the lease, keeps every client request "waiting for readable" until
# it restarts (Ceph 16.2). A longer freeze would test that, not the daemon.
CEPH_OSD_PAUSE_LIMIT=14
ceph_osd_pause() {
	kill -STOP "$(ceph_pid osd.0)" || fail "no OSD to pause"
	_ceph_paused_at=$SECONDS
}

ceph_osd_resume() {
	local paused=$((SECONDS - _ceph_paused_at))
	kill -CONT "$(ceph_pid osd.0)" || fail "no OSD to resume"
	[ "$paused" -le "$CEPH_OSD_PAUSE_LIMIT" ] ||
		fail "the OSD was frozen for $paused s, more than $CEPH_OSD_PAUSE_LIMIT s: its PGs stay laggy after such a freeze (see ceph_osd_pause)"
}

# ceph_mon_stop / ceph_mon_start: the mon's store is on disk, so a real stop.
ceph_mon_stop() {
	_ceph_kill mon.a
}

ceph_mon_start() {
	ceph-mon --id a || fail "ceph-mon failed to start"
	wait_for 120 "ceph-mon's pid file" ceph_pid mon.a
}
