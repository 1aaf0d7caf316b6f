# SPDX-License-Identifier: Apache-2.0
# tests/lib.sh: helpers for the real-kernel tests (tests/vm/test_*.sh).
#
# A test script runs as root inside the VM that tests/vm/vm-run boots, and
# starts with
#
#     source "${SOURCE_DIR:-.}/tests/lib.sh"
#
# It then has: strict mode, tracing, a cleanup stack run at exit
# (cleanup_fn), requires (a missing tool fails the test with a message: CI
# installs everything, so a missing tool is a broken machine, not a skip),
# start_daemon / stop_daemon, and helpers that create TCMU backstores through
# configfs and expose them as SCSI disks with tcm_loop.
#
# Variables the test may read:
#   BUILD_DIR    where tcmu-runner and handler_*.so were built
#   SOURCE_DIR   the project's source tree
#   TEST_NAME    the script's name without .sh
#   OUT_DIR      /mnt/out in the VM: survives the VM, holds logs
#   DAEMON_PID   the running daemon, set by start_daemon
#   DAEMON_LOG   its log file

set -euo pipefail
# With pipefail, "producer | grep -q" fails at random: grep exits at the first
# match and a producer still writing dies of SIGPIPE. Tests let grep read it
# all instead: "producer | grep PATTERN >/dev/null".
# Seconds since the script started on every traced line: where the time goes.
PS4='+ [${SECONDS}s] '
set -x

# Tools speak English: the tests grep their messages.
export LC_ALL=C

TEST_NAME=$(basename "$0" .sh)
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BUILD_DIR=${BUILD_DIR:-$SOURCE_DIR}
if [ -d /mnt/out ]; then
	OUT_DIR=/mnt/out
else
	OUT_DIR=$(mktemp -d "/tmp/$TEST_NAME.XXXXXX")
fi
CONFIGFS=/sys/kernel/config/target
CORE=$CONFIGFS/core
# The alloc handler's memory directory; a device's file is "user_N-NAME"
# there unless its config string names it.
ALLOC_MEMORY=/run/tcmu/alloc
LOOPBACK=$CONFIGFS/loopback
DAEMON_PID=
DAEMON_LOG=$OUT_DIR/$TEST_NAME.log
SANITIZER_LOG_DIR=$OUT_DIR/sanitizer
rm -rf "$SANITIZER_LOG_DIR"
: > "$DAEMON_LOG"

# ------------------------------------------------------------------ basics

fail() {
	set +x
	_failure=$*
	echo "FAIL: $TEST_NAME: $*" >&2
	if [ -n "$DAEMON_PID" ] && [ -f "$DAEMON_LOG" ]; then
		echo "---- last lines of $DAEMON_LOG" >&2
		tail -n 40 "$DAEMON_LOG" >&2
	fi
	exit 1
}

# requires CMD [PACKAGE]: the test cannot run without CMD.
requires() {
	command -v "$1" >/dev/null 2>&1 ||
		fail "this test needs '$1'${2:+ (Debian package $2)}; run ./dependency.sh"
}

# requires_module MODULE: the kernel must be able to load MODULE.
requires_module() {
	modprobe "$1" 2>/dev/null || fail "cannot load kernel module $1 (not the VM's kernel?)"
}

# Cleanup stack, run in reverse order at exit whatever the exit status; a
# failing cleanup step neither stops the others nor changes the status.
_cleanup_steps=()
_failure=
cleanup_fn() {
	local step
	step=$(printf '%q ' "$@")
	_cleanup_steps+=("$step")
}
_run_cleanup() {
	local status=$? i report
	set +e
	trap - EXIT
	for ((i = ${#_cleanup_steps[@]} - 1; i >= 0; i--)); do
		eval "${_cleanup_steps[i]}"
	done
	# AddressSanitizer, LeakSanitizer or UBSan spoke in a daemon of a sanitizer build.
	for report in "$SANITIZER_LOG_DIR"/*; do
		[ -s "$report" ] || continue
		echo "FAIL: $TEST_NAME: sanitizer report $report:" >&2
		cat "$report" >&2
		status=1
	done
	# The reason again at the end: CI keeps the head and the tail of a long
	# output, and the cleanup's trace pushes the first FAIL line into the middle.
	if [ "$status" -eq 0 ]; then
		echo "PASS: $TEST_NAME"
	else
		echo "FAIL: $TEST_NAME (exit status $status)${_failure:+: $_failure}" >&2
	fi
	exit "$status"
}
trap _run_cleanup EXIT
# A command of the test itself that stops it under set -e names its line.
trap '_failure=${_failure:-"line $LINENO: $BASH_COMMAND"}' ERR

# wait_for SECONDS DESCRIPTION CMD...: polls CMD every 0.1 s until it
# succeeds, for SECONDS of wall time however long CMD takes, without
# tracing each poll.
wait_for() {
	local seconds=$1 description=$2 deadline traced=false
	shift 2
	if [[ $- == *x* ]]; then
		traced=true
		set +x
	fi
	deadline=$((${EPOCHREALTIME/./} + seconds * 1000000))
	while true; do
		if "$@"; then
			! $traced || set -x
			return 0
		fi
		((${EPOCHREALTIME/./} < deadline)) || break
		sleep 0.1
	done
	fail "timed out after ${seconds}s waiting for $description"
}

# random_file PATH SIZE: SIZE as for head -c (8M...).
random_file() {
	head -c "$2" /dev/urandom > "$1"
}

# assert_log_has PATTERN: the daemon's log has a line matching PATTERN (grep -E).
assert_log_has() {
	grep -Eq -- "$1" "$DAEMON_LOG" || fail "daemon log has no line matching '$1'"
}

# assert_log_lacks PATTERN
assert_log_lacks() {
	if grep -E -- "$1" "$DAEMON_LOG"; then
		fail "daemon log has a line matching '$1'"
	fi
}

# ------------------------------------------------------------------ daemon

# Inode numbers of the daemon's sockets.
_daemon_socket_inodes() {
	local fd target
	for fd in /proc/"$DAEMON_PID"/fd/*; do
		target=$(readlink "$fd" 2>/dev/null) || continue
		case $target in
		socket:*) target=${target#socket:[}; echo "${target%]}" ;;
		esac
	done
}

# True when the daemon holds a generic netlink socket with a multicast
# subscription (the TCM-USER "config" group).
daemon_subscribed() {
	local inodes
	inodes=$(_daemon_socket_inodes | tr '\n' ' ')
	[ -n "$inodes" ] || return 1
	# /proc/net/netlink: sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
	awk -v inodes=" $inodes" \
		'$2 == 16 && $4 != "00000000" && index(inodes, " " $10 " ") { found = 1 }
		 END { exit !found }' /proc/net/netlink
}

# The /dev/uio* files the daemon holds open, one a line.
daemon_uio_fds() {
	local pid=${1:-$DAEMON_PID} fd target
	for fd in /proc/"$pid"/fd/*; do
		target=$(readlink "$fd" 2>/dev/null) || continue
		case $target in
		/dev/uio*) echo "$target" ;;
		esac
	done
}

# The /dev/uioN of every TCMU device the kernel has now.
kernel_tcmu_uios() {
	local dir
	for dir in /sys/class/uio/uio*; do
		[ -e "$dir/name" ] || continue
		case $(cat "$dir/name") in
		tcm-user/*) echo "/dev/${dir##*/}" ;;
		esac
	done
}

# True when the daemon has every existing TCMU device open.
_daemon_serves_all() {
	local uio open
	open=$(daemon_uio_fds)
	for uio in $(kernel_tcmu_uios); do
		grep -qx "$uio" <<<"$open" || return 1
	done
}

# First line of the running daemon's part of $DAEMON_LOG: a restarted
# daemon must not be taken as ready on its predecessor's "ready".
_daemon_log_start=1
_daemon_ready() {
	kill -0 "$DAEMON_PID" 2>/dev/null ||
		fail "tcmu-runner exited during start-up"
	if tail -n +"$_daemon_log_start" "$DAEMON_LOG" | grep ' ready$' >/dev/null; then
		return 0
	fi
	daemon_subscribed && _daemon_serves_all
}

# start_daemon [OPTION...]: starts $BUILD_DIR/tcmu-runner in the background
# with its log in $DAEMON_LOG and waits until it serves netlink events and
# every TCMU device that exists. Set DAEMON_CWD to run it elsewhere than /.
start_daemon() {
	local binary=$BUILD_DIR/tcmu-runner
	[ -x "$binary" ] || fail "$binary is not built (BUILD_DIR=$BUILD_DIR)"
	start_daemon_command "$binary" --handler-path "$BUILD_DIR" "$@"
}

# start_daemon_command CMD...: as start_daemon, with a command that ends up
# exec'ing tcmu-runner (run.sh does).
start_daemon_command() {
	[ -z "$DAEMON_PID" ] || fail "a daemon is already running ($DAEMON_PID)"
	requires_module target_core_user
	_daemon_log_start=$(($(wc -l < "$DAEMON_LOG") + 1))
	echo "==== $*" >> "$DAEMON_LOG"
	mkdir -p "$SANITIZER_LOG_DIR"
	(
		set +x
		cd "${DAEMON_CWD:-/}"
		# A sanitizer build reports into files that _run_cleanup turns into a failure.
		export ASAN_OPTIONS="log_path=$SANITIZER_LOG_DIR/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
		export UBSAN_OPTIONS="log_path=$SANITIZER_LOG_DIR/ubsan:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
		exec "$@"
	) >> "$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	cleanup_fn _kill_daemon "$DAEMON_PID"
	# Generous: at start the daemon loads every handler, and under TCG on a
	# busy host librbd's libraries alone took 22 s to load.
	wait_for 90 "tcmu-runner to be ready" _daemon_ready
}

_kill_daemon() {
	if kill -0 "$1" 2>/dev/null; then
		kill -KILL "$1"
		wait "$1" 2>/dev/null
	fi
}

# stop_daemon [SIGNAL]: stops the daemon (SIGTERM by default), waits up to
# 30 s and fails unless it exited with status 0.
stop_daemon() {
	local signal=${1:-TERM} pid=$DAEMON_PID status=0 tries
	[ -n "$pid" ] || fail "stop_daemon: no daemon running"
	kill -"$signal" "$pid"
	for ((tries = 300; tries > 0; tries--)); do
		kill -0 "$pid" 2>/dev/null || break
		# A zombie has exited; wait reaps it below.
		[ "$(awk '{print $3}' /proc/"$pid"/stat 2>/dev/null)" != Z ] || break
		sleep 0.1
	done
	[ "$tries" -gt 0 ] || fail "tcmu-runner did not exit within 30 s of SIG$signal"
	wait "$pid" || status=$?
	DAEMON_PID=
	[ "$status" -eq 0 ] || fail "tcmu-runner exited with status $status after SIG$signal"
}

# --------------------------------------------------------------- backstores

# next_free_hba: prints the smallest N such that user_N does not exist.
next_free_hba() {
	local n=0
	while [ -e "$CORE/user_$n" ]; do
		n=$((n + 1))
	done
	echo "$n"
}

# backstore_create HBA NAME SIZE DEV_CONFIG [CONTROL...]: creates
# core/user_HBA/NAME (HBA "next" takes a free one), sets BACKSTORE to its
# configfs directory and enables it. Returns enable's status: the daemon
# refusing the device makes that write fail. The backstore is removed at
# exit if the test did not remove it.
BACKSTORE=
backstore_create() {
	local hba=$1 name=$2 size=$3 dev_config=$4 control
	shift 4
	[ "$hba" != next ] || hba=$(next_free_hba)
	BACKSTORE=$CORE/user_$hba/$name
	mkdir -p "$BACKSTORE" || fail "mkdir $BACKSTORE"
	cleanup_fn backstore_remove "$BACKSTORE"
	for control in "dev_size=$size" "dev_config=$dev_config" "$@"; do
		echo -n "$control" > "$BACKSTORE/control" ||
			fail "writing '$control' to $BACKSTORE/control"
	done
	echo 1 > "$BACKSTORE/enable"
}

# backstore_remove DIR: removes what points at the backstore, then the
# backstore and its HBA when empty. Quiet when DIR is already gone.
backstore_remove() {
	local dir=$1 link
	[ -d "$dir" ] || return 0
	for link in $(find "$CONFIGFS" -mindepth 5 -type l 2>/dev/null); do
		if [ "$(readlink -f "$link")" = "$(readlink -f "$dir")" ]; then
			rm "$link"
		fi
	done
	rmdir "$dir"
	rmdir "$(dirname "$dir")" 2>/dev/null || true
}

# ---------------------------------------------------------------- tcm_loop

_random_naa() {
	printf 'naa.50014%011x' "$(( ((RANDOM << 30) | (RANDOM << 15) | RANDOM) & 0xfffffffffff ))"
}

# loop_expose BACKSTORE_DIR: exposes the backstore through a new tcm_loop
# target as LUN 0 and sets DISK to the SCSI disk's /dev node. The target is
# removed at exit if the test did not remove it.
DISK=
loop_expose() {
	local backstore=$1 wwn tpg address
	requires_module tcm_loop
	requires_module sd_mod
	wwn=$(_random_naa)
	tpg=$LOOPBACK/$wwn/tpgt_1
	mkdir -p "$tpg/lun/lun_0"
	cleanup_fn loop_remove "$tpg/lun/lun_0"
	echo -n "$(_random_naa)" > "$tpg/nexus"
	# Linking the LUN makes the kernel scan it: INQUIRY, READ CAPACITY...
	# reach the daemon before ln returns.
	ln -s "$backstore" "$tpg/lun/lun_0/${backstore##*/}"
	address=$(cat "$tpg/address")
	wait_for 20 "the SCSI disk at $address:0" _loop_disk "$address:0" >/dev/null
	DISK=$(_loop_disk "$address:0")
	wait_for 10 "$DISK" test -b "$DISK"
}

# _loop_disk H:C:T:L: prints /dev/sdX of that SCSI address.
_loop_disk() {
	local blocks=(/sys/class/scsi_device/"$1"/device/block/*)
	[ -e "${blocks[0]}" ] || return 1
	echo "/dev/${blocks[0]##*/}"
}

# loop_remove LUN_DIR: unlinks the LUN, removes the LUN, the TPG (which
# drops the nexus) and the WWN. Quiet when already gone.
loop_remove() {
	local lun=$1 tpg wwn link
	tpg=$(dirname "$(dirname "$lun")")
	wwn=$(dirname "$tpg")
	[ -d "$wwn" ] || return 0
	if [ -d "$lun" ]; then
		for link in "$lun"/*; do
			[ -L "$link" ] && rm "$link"
		done
		rmdir "$lun"
	fi
	rmdir "$tpg"
	rmdir "$wwn"
}

# loop_unexpose DISK: removes the tcm_loop target behind /dev/sdX.
loop_unexpose() {
	local disk=${1#/dev/} address lun
	address=$(basename "$(readlink -f /sys/block/"$disk"/device)")
	for lun in "$LOOPBACK"/naa.*/tpgt_*/lun/lun_*; do
		[ -d "$lun" ] || continue
		if [ "$(cat "$(dirname "$(dirname "$lun")")/address"):0" = "$address" ]; then
			loop_remove "$lun"
			return 0
		fi
	done
	fail "no tcm_loop target behind $1 ($address)"
}

# ---------------------------------------------------------------------- I/O

# write_and_verify DISK PATTERN_FILE: writes the pattern at offset 0 with
# O_DIRECT and reads it back with O_DIRECT; fails unless identical.
write_and_verify() {
	local disk=$1 pattern=$2 size
	size=$(stat -c %s "$pattern")
	dd if="$pattern" of="$disk" bs=1M oflag=direct status=none
	cmp <(dd if="$disk" bs=1M count=$((size / 1048576)) iflag=direct status=none) "$pattern" ||
		fail "data read back from $disk differs from what was written"
}

# read_blocks DISK LBA COUNT: COUNT 512-byte blocks from LBA, read with O_DIRECT.
read_blocks() {
	dd if="$1" bs=512 skip="$2" count="$3" iflag=direct status=none
}

# scsi_generic_node DISK: prints the /dev/sgN node of the SCSI disk DISK.
scsi_generic_node() {
	local node
	node=/dev/$(ls /sys/block/"${1#/dev/}"/device/scsi_generic/)
	[ -c "$node" ] || fail "no SCSI generic node for $1"
	echo "$node"
}

# check_thin_lun DISK SIZE: READ CAPACITY(16) gives SIZE bytes in 512-byte
# blocks, the thin provisioning VPD page offers UNMAP, and a 4 MiB pattern
# (left in /tmp/pattern for the checks that follow) written at LBA 0 reads back.
check_thin_lun() {
	local disk=$1 size=$2 out
	out=$(sg_readcap --16 "$disk" 2>&1)
	grep -q "Number of logical blocks=$((size / 512))\$" <<<"$out" || fail "READ CAPACITY(16) size: $out"
	out=$(sg_vpd --page=lbpv "$disk" 2>&1)
	grep -Eq 'Unmap command supported \(LBPU\): 1' <<<"$out" || fail "LBP VPD page: $out"
	random_file /tmp/pattern 4M
	dd if=/tmp/pattern of="$disk" bs=1M oflag=direct status=none
	cmp <(read_blocks "$disk" 0 8192) /tmp/pattern || fail "the data read back differs"
}

# check_fua_write DISK LBA: one block written with WRITE(16) and FUA through
# DISK's SCSI generic node reads back; the block is left in /tmp/fua_block.
check_fua_write() {
	local disk=$1 lba=$2 sg
	sg=$(scsi_generic_node "$disk")
	random_file /tmp/fua_block 512
	sg_dd if=/tmp/fua_block of="$sg" bs=512 seek="$lba" count=1 oflag=fua cdbsz=16 ||
		fail "WRITE(16) with FUA failed"
	cmp <(read_blocks "$disk" "$lba" 1) /tmp/fua_block || fail "the FUA write did not land"
}

# check_compare_and_write DISK PATTERN: DISK starts with PATTERN. COMPARE AND
# WRITE at LBA 100 whose compare half is what is there writes its block; one
# whose compare half differs ends in MISCOMPARE (status 14) and writes
# nothing; VERIFY with BYTCHK agrees with both.
check_compare_and_write() {
	local disk=$1 pattern=$2 out status
	random_file /tmp/new_block 512
	cat <(head -c $((101 * 512)) "$pattern" | tail -c 512) /tmp/new_block > /tmp/caw_match
	sg_compare_and_write --lba=100 --num=1 --in=/tmp/caw_match "$disk" ||
		fail "COMPARE AND WRITE with matching data failed"
	cmp <(read_blocks "$disk" 100 1) /tmp/new_block || fail "COMPARE AND WRITE did not write"
	random_file /tmp/caw_wrong 1024
	status=0
	out=$(sg_compare_and_write --lba=100 --num=1 --in=/tmp/caw_wrong "$disk" 2>&1) || status=$?
	[ "$status" -eq 14 ] || fail "COMPARE AND WRITE on wrong data: status $status, expected 14 (miscompare): $out"
	grep -q 'Miscompare' <<<"$out" || fail "COMPARE AND WRITE on wrong data: $out"
	cmp <(read_blocks "$disk" 100 1) /tmp/new_block || fail "a miscompared COMPARE AND WRITE wrote"

	sg_verify --lba=0 --count=100 "$disk" || fail "VERIFY(10) failed"
	sg_verify --lba=100 --count=1 --ebytchk=1 --ndo=512 --in=/tmp/new_block "$disk" ||
		fail "VERIFY(10) with BYTCHK on the data there failed"
	status=0
	out=$(sg_verify --lba=100 --count=1 --ebytchk=1 --ndo=512 --in=/tmp/caw_wrong "$disk" 2>&1) || status=$?
	[ "$status" -eq 14 ] || fail "VERIFY with BYTCHK on other data: status $status, expected 14 (miscompare): $out"
}

# check_unmap_reads_zeros DISK PATTERN: DISK starts with PATTERN (at least
# 2.2 MiB). WRITE SAME(16) with UNMAP at LBA 4096 and UNMAP of the first
# MiB leave zeros there and the block after the range untouched.
check_unmap_reads_zeros() {
	local disk=$1 pattern=$2
	sg_write_same --16 --unmap --lba=4096 --num=100 "$disk" || fail "WRITE SAME(16) UNMAP failed"
	cmp <(read_blocks "$disk" 4096 100) <(head -c $((100 * 512)) /dev/zero) ||
		fail "blocks after WRITE SAME(16) UNMAP do not read as zeros"
	cmp <(read_blocks "$disk" 4196 1) <(head -c $((4197 * 512)) "$pattern" | tail -c 512) ||
		fail "WRITE SAME(16) UNMAP changed the block after its range"
	sg_unmap --force --lba=0 --num=2048 "$disk" || fail "UNMAP failed"
	cmp <(read_blocks "$disk" 0 2048) <(head -c 1M /dev/zero) || fail "unmapped blocks do not read as zeros"
}

# filesystem_discard_cycle DISK BACKING MKFS CHECK...: makes a file system on
# DISK, mounts it with -o discard, writes and deletes files; the file BACKING
# that holds DISK's data must shrink, and CHECK must find the file system clean.
filesystem_discard_cycle() {
	local disk=$1 backing=$2 mkfs=$3 mountpoint=/tmp/discard-cycle-mnt full i
	shift 3
	[ -s /tmp/pattern8 ] || random_file /tmp/pattern8 8M
	$mkfs "$disk" || fail "$mkfs failed"
	mkdir -p "$mountpoint"
	mount -o discard "$disk" "$mountpoint" || fail "mounting after $mkfs failed"
	for i in 1 2 3 4; do
		cp /tmp/pattern8 "$mountpoint/file$i"
	done
	sync
	cmp "$mountpoint/file3" /tmp/pattern8 || fail "file on the $mkfs file system differs"
	full=$(stat -c %b "$backing")
	rm "$mountpoint"/file*
	sync
	umount "$mountpoint"
	[ "$(stat -c %b "$backing")" -lt "$full" ] ||
		fail "deleting files on a -o discard mount did not free blocks of $backing ($full)"
	"$@" "$disk" || fail "$* finds the $mkfs file system damaged"
}

# check_blkdiscard_frees DISK BACKING MIN_BLOCKS: BACKING, the file that holds
# DISK's data, has at least MIN_BLOCKS 512-byte blocks allocated; after
# blkdiscard of DISK it has almost none.
check_blkdiscard_frees() {
	local disk=$1 backing=$2 before after
	before=$(stat -c %b "$backing")
	[ "$before" -ge "$3" ] || fail "$backing holds only $before blocks, expected at least $3"
	blkdiscard "$disk"
	after=$(stat -c %b "$backing")
	[ "$after" -lt 64 ] || fail "$backing still holds $after blocks after blkdiscard (was $before)"
}

# tutorial_system_setup: what the tutorial installs before the daemon starts
# (the D-Bus policy, tcmu.conf, a system bus) and an initiator name for iscsid.
# Run from the source directory.
tutorial_system_setup() {
	mkdir -p /etc/dbus-1/system.d /etc/tcmu /run/dbus /etc/target
	cp tcmu-runner.conf /etc/dbus-1/system.d/
	cp tcmu.conf /etc/tcmu/tcmu.conf
	dbus-daemon --system --fork
	if [ ! -s /etc/iscsi/initiatorname.iscsi ]; then
		echo "InitiatorName=$(iscsi-iname)" > /etc/iscsi/initiatorname.iscsi
	fi
}

# tutorial_target_create: runs ./target_create.sh and sets TARGET_IQN to the
# target it says it created.
TARGET_IQN=
tutorial_target_create() {
	./target_create.sh | tee /tmp/out_target
	TARGET_IQN=$(sed -n 's/^\[INFO\] Target \(iqn\.[^ ]*\) created$/\1/p' /tmp/out_target)
	[ -n "$TARGET_IQN" ] || fail "target_create.sh printed no target IQN"
}

# iscsi_login COUNT: starts iscsid, logs in to the targets on 127.0.0.1
# (logged out at exit), waits for COUNT "LIO-ORG TCMU device" disks and sets
# ISCSI_DISKS to their /dev nodes, indexed by LUN.
ISCSI_DISKS=()
iscsi_login() {
	local count=$1 lun
	iscsid
	cleanup_fn iscsiadm -m session -u
	iscsiadm -m discovery -t sendtargets -p 127.0.0.1 --login
	wait_for 30 "$count TCMU disks in lsscsi" test "$(lsscsi | grep -c 'LIO-ORG *TCMU device')" -eq "$count"
	lsscsi
	ISCSI_DISKS=()
	for ((lun = 0; lun < count; lun++)); do
		ISCSI_DISKS[lun]=$(lsscsi | awk -v lun="$lun" '/LIO-ORG *TCMU device/ && $1 ~ ":" lun "]$" {print $NF}')
		[ -b "${ISCSI_DISKS[lun]}" ] || fail "cannot find the disk of LUN $lun"
	done
}
