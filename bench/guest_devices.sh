# Sourced by bench/guest.sh: the daemon, the backstores of every kind and
# their tcm_loop LUNs, the slow block devices (dm-delay) and the Ceph cluster
# the kinds need. Expects CFG, out, meta, log and record from guest.sh.
#
# Kinds: rd (rd_mcp), fileio, alloc and file on the guest's tmpfs;
# fileio-dmN and file-dmN on a block device that takes N ms per I/O (dm-delay
# over dm-zero: no memory, reads return zeros); rbd on the single-node Ceph
# of tests/vm/ceph.sh (memstore); nbd on `nbdkit memory` started by the
# handler.

user_control=${BENCH_USER_CONTROL:-}

is_user_kind() {
	case $1 in alloc|alloc-*|file|file-*|rbd|nbd) return 0 ;; *) return 1 ;; esac
}

has_user_kind() {
	local kind
	for kind in $1; do
		! is_user_kind "$kind" || return 0
	done
	return 1
}

# A system bus for the daemon, so that tcmu-admin can read each device's
# statistics before and after every job: the daemon's own mean latency per
# command (from the ring's sight of it to its completion) next to fio's,
# which tells the daemon's share of a command's time from the kernel's.
start_stats_bus() {
	command -v dbus-daemon > /dev/null && [ -x "$BUILD_DIR/tcmu-admin" ] || return 0
	mkdir -p /run/dbus /etc/dbus-1/system.d
	install -m 0644 "$here/tcmu-runner.conf" /etc/dbus-1/system.d/tcmu-runner.conf
	[ -S /run/dbus/system_bus_socket ] || dbus-daemon --system --fork
}

# daemon_stats_hook WHEN FILE DEVICE: fio's exec_prerun/exec_postrun command
# that saves tcmu-admin's statistics of DEVICE into FILE.WHEN.json.
daemon_stats_hook() {
	echo "/tmp/bench-stats.sh $1 $2 $3"
}
printf '#!/bin/sh
"%s/tcmu-admin" --json stats "$3" > "$2.$1.json" 2> /dev/null || rm -f "$2.$1.json"
' \
	"${BUILD_DIR:-/nonexistent}" > /tmp/bench-stats.sh
chmod +x /tmp/bench-stats.sh

daemon_pid=""
start_daemon() {
	[ -z "$daemon_pid" ] || return 0
	: "${BUILD_DIR:?BUILD_DIR must name the build directory for the user kinds}"
	modprobe target_core_user
	start_stats_bus
	local extra_config=${BENCH_CONFIG:-}
	printf 'log_level = 3\n%s\n' "${extra_config//;/$'\n'}" > /tmp/bench-tcmu.conf
	"$BUILD_DIR/tcmu-runner" --handler-path "$BUILD_DIR" --config /tmp/bench-tcmu.conf \
		> "$out/daemon.log" 2>&1 &
	daemon_pid=$!
	local tries
	for ((tries = 600; tries > 0; tries--)); do
		kill -0 "$daemon_pid" 2>/dev/null || { cat "$out/daemon.log" >&2; log "daemon died"; exit 1; }
		if grep -q ' ready$' "$out/daemon.log"; then break; fi
		sleep 0.1
	done
	[ "$tries" -gt 0 ] || { log "daemon not ready after 60 s"; exit 1; }
	record "daemon_pid $daemon_pid"
}

stop_daemon() {
	[ -n "$daemon_pid" ] || return 0
	kill -TERM "$daemon_pid" 2>/dev/null || true
	wait "$daemon_pid" 2>/dev/null || true
	daemon_pid=""
}

daemon_figures() {
	local label=$1
	[ -n "$daemon_pid" ] || return 0
	record "daemon $label threads $(ls /proc/$daemon_pid/task | wc -l)"
	record "daemon $label $(grep -E '^(VmRSS|RssAnon|RssFile|RssShmem)' /proc/$daemon_pid/status | tr -s ' \t' ' ' | tr '\n' ' ')"
}

# Slow media ---------------------------------------------------------------

# slow_medium NAME BYTES MS: /dev/mapper/NAME, a block device of BYTES on
# which every I/O takes MS milliseconds. No readahead: each read reaches
# the medium, as for the fio reads (fio reads each block once per job).
dm_devices=()
slow_medium() {
	local name=$1 sectors=$(($2 / 512)) delay_ms=$3 zero
	modprobe dm_zero 2>/dev/null || true
	modprobe dm_delay
	dmsetup create "$name-zero" --table "0 $sectors zero"
	dm_devices+=("$name-zero")
	# major:minor: without udev, /dev/mapper has no node for the zero device.
	zero=$(dmsetup info -c --noheadings -o major,minor "$name-zero" | tr -d ' ')
	dmsetup create "$name" --table "0 $sectors delay $zero 0 $delay_ms"
	dm_devices=("$name" "${dm_devices[@]}")
	dmsetup mknodes "$name"
	for _ in $(seq 100); do [ -b "/dev/mapper/$name" ] && break; sleep 0.1; done
	blockdev --setra 0 "/dev/mapper/$name"
}

# Page caches of the slow media are dropped before each of their jobs (fio's
# exec_prerun), so that fileio and user:file both read from the medium.
printf '#!/bin/sh\nsync\necho 3 > /proc/sys/vm/drop_caches\n' > /tmp/bench-drop-caches.sh
chmod +x /tmp/bench-drop-caches.sh

# Ceph ---------------------------------------------------------------------

# tests/vm/ceph.sh expects tests/lib.sh's helpers; these are enough for it.
cleanup_steps=()
cleanup_fn() { cleanup_steps+=("$*"); }
run_cleanup() {
	local i
	for ((i = ${#cleanup_steps[@]} - 1; i >= 0; i--)); do ${cleanup_steps[i]} || true; done
	cleanup_steps=()
}
fail() { log "$*"; exit 1; }
requires() { command -v "$1" > /dev/null || fail "needs $1 (Debian package $2)"; }
wait_for() {
	local seconds=$1 description=$2 deadline
	shift 2
	deadline=$((SECONDS + seconds))
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${seconds}s waiting for $description"
		sleep 0.1
	done
}
trap run_cleanup EXIT

ceph_up=0
start_ceph() {
	[ "$ceph_up" = 0 ] || return 0
	local helper=${BENCH_CEPH_HELPER:-$(dirname "$0")/ceph.sh}
	# shellcheck source=/dev/null
	source "$helper"
	log "starting the single-node Ceph cluster"
	ceph_start > "$out/ceph-start.log" 2>&1 || { cat "$out/ceph-start.log" >&2; exit 1; }
	record "ceph $(tail -n 1 "$out/ceph-start.log")"
	ceph_up=1
}

# Backstores and LUNs ------------------------------------------------------

# create_backstore KIND NAME BYTES: sets backstore to the object's configfs
# path (a variable, not output: the daemon must be started by this shell).
backstore=""
create_backstore() {
	local kind=$1 name=$2 bytes=$3 dir setting config=""
	case $kind in
	rd)
		dir=$CFG/core/rd_mcp_0/$name
		mkdir -p "$dir"
		echo -n "rd_pages=$((bytes / 4096))" > "$dir/control"
		;;
	fileio)
		dir=$CFG/core/fileio_0/$name
		truncate -s "$bytes" "/tmp/$name.img"
		mkdir -p "$dir"
		echo -n "fd_dev_name=/tmp/$name.img,fd_dev_size=$bytes" > "$dir/control"
		;;
	fileio-dm*)
		slow_medium "$name" "$bytes" "${kind#fileio-dm}"
		dir=$CFG/core/fileio_0/$name
		mkdir -p "$dir"
		echo -n "fd_dev_name=/dev/mapper/$name,fd_dev_size=$bytes" > "$dir/control"
		;;
	alloc) config=alloc/ ;;
	file)
		truncate -s "$bytes" "/tmp/$name.img"
		config=file//tmp/$name.img
		;;
	file-dm*)
		slow_medium "$name" "$bytes" "${kind#file-dm}"
		config=file//dev/mapper/$name
		;;
	rbd)
		start_ceph
		timeout 300 rbd create --size "$((bytes / 1048576))M" "rbd/$name"
		config="rbd/rbd/$name;conf=$CEPH_CONF"
		;;
	nbd) config="nbd/exec:nbdkit memory $bytes" ;;
	*) log "unknown kind $kind"; exit 2 ;;
	esac
	if [ -n "$config" ]; then
		start_daemon
		dir=$CFG/core/user_0/$name
		mkdir -p "$dir"
		echo -n "dev_size=$bytes" > "$dir/control"
		echo -n "dev_config=$config" > "$dir/control"
		for setting in ${user_control//,/ }; do
			echo -n "$setting" > "$dir/control"
		done
	fi
	echo 1 > "$dir/enable"
	# BENCH_WRITE_CACHE=1: user backstores with the write cache on (writes
	# without FUA), to see what write-through costs a handler.
	if [ -n "$config" ] && [ -n "${BENCH_WRITE_CACHE:-}" ]; then
		echo "$BENCH_WRITE_CACHE" > "$dir/attrib/emulate_write_cache"
	fi
	backstore=$dir
}

# export_lun BACKSTORE [TARGET_NUMBER LUN]: links the backstore as a LUN of a
# tcm_loop target (one SCSI host per target) and sets device to its /dev/sdX.
target_counter=0
device=""
export_lun() {
	local path=$1 number=${2:-} lun=${3:-0} tpg address host target block i
	if [ -z "$number" ]; then
		target_counter=$((target_counter + 1))
		number=$target_counter
	fi
	tpg=$CFG/loopback/$(printf 'naa.50014050000%05x' "$number")/tpgt_1
	if [ ! -d "$tpg" ]; then
		mkdir -p "$tpg"
		echo -n "$(printf 'naa.50014051111%05x' "$number")" > "$tpg/nexus"
	fi
	mkdir "$tpg/lun/lun_$lun"
	ln -s "$path" "$tpg/lun/lun_$lun/$(basename "$path")"
	address=$(cat "$tpg/address")
	host=${address%%:*}
	target=${address##*:}
	for i in $(seq 600); do
		block=$(ls "/sys/class/scsi_device/$host:0:$target:$lun/device/block" 2>/dev/null || true)
		if [ -n "$block" ] && [ -b "/dev/$block" ]; then
			echo none > "/sys/block/$block/queue/scheduler" 2>/dev/null || true
			device=/dev/$block
			return 0
		fi
		sleep 0.05
	done
	log "no disk appeared for $path ($address:$lun)"
	exit 1
}

remove_all() {
	local tpg lun link dir name
	for tpg in "$CFG"/loopback/naa.*/tpgt_1; do
		[ -d "$tpg" ] || continue
		for lun in "$tpg"/lun/lun_*; do
			for link in "$lun"/*; do
				if [ -L "$link" ]; then rm "$link"; fi
			done
			rmdir "$lun"
		done
		rmdir "$tpg"
		rmdir "$(dirname "$tpg")"
	done
	for dir in "$CFG"/core/rd_mcp_*/* "$CFG"/core/fileio_*/* "$CFG"/core/user_*/*; do
		if [ -e "$dir/enable" ]; then rmdir "$dir"; fi
	done
	for name in "${dm_devices[@]}"; do
		dmsetup remove "$name" || log "dmsetup remove $name failed"
	done
	dm_devices=()
	rm -f /tmp/bench-*.img
}

fill() {
	local list=() d
	for d in "$@"; do list+=(--name="fill$d" --filename="$d"); done
	[ ${#list[@]} -gt 0 ] || return 0
	fio --eta=never --ioengine=libaio --direct=1 --rw=write --bs=1M --iodepth=4 \
		--output-format=terse "${list[@]}" > /dev/null
}
