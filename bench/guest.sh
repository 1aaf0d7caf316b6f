#!/bin/bash
# Guest side of the benchmark, run by bench/run.sh through vm-run as root in
# a kernel with target_core_user and tcm_loop. Measures the kernel's rd_mcp
# and fileio backstores and our user:alloc and user:file side by side on the
# same tcm_loop setup and leaves fio's JSON and the daemon's figures under OUT
# for bench/report.py.
#
# The machine is shared and its load changes by the minute, so the kinds are
# interleaved: every round runs each job on each kind back to back, in one
# fio process (stonewalled jobs), and the report takes the median over rounds.
#
# usage: guest.sh [--quick] [--runtime S] [--rounds N] [--size MiB]
#                 [--kinds LIST] [--jobs LIST] [--no-four] [--many N]
#                 [--many-kinds LIST] [--out DIR]
#        --jobs picks single-device jobs by name (randread-qd16,...);
#        --no-four skips the four-device phase, --many 0 the many-device one
# env:   BUILD_DIR (for the user kinds): tcmu-runner and handler_*.so
#        BENCH_CONFIG: extra tcmu.conf lines for the daemon, "key = value"
#          separated by ';' (e.g. "ring_poll_us = 0")
#        BENCH_USER_CONTROL: extra "key=value,..." written to the control file
#          of user backstores (e.g. hw_max_sectors=2048) to try settings
#        BENCH_PROFILE=strace|perf|cpu: after the rounds, profile QD16 random
#          read and write and QD1 random read: strace -c on the daemon (user
#          kinds), perf record -a -g of the guest, or the daemon's CPU time
#          and the guest's context switches per I/O (every kind)
set -euo pipefail

quick=0 runtime=5 rounds=3 size_mib=256 kinds="rd fileio alloc file"
many=64 many_kinds="rd alloc" out=/mnt/out/bench only_jobs="" four=1
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1; runtime=2; rounds=1; size_mib=64; many=8; many_kinds="alloc" ;;
	--runtime) runtime=$2; shift ;;
	--rounds) rounds=$2; shift ;;
	--size) size_mib=$2; shift ;;
	--kinds) kinds=${2//,/ }; shift ;;
	--many) many=$2; shift ;;
	--many-kinds) many_kinds=${2//,/ }; shift ;;
	--jobs) only_jobs=${2//,/ }; shift ;;
	--no-four) four=0 ;;
	--out) out=$2; shift ;;
	*) echo "guest.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

# Only kinds being measured take part in the many-device phase; --many 0 skips it.
filtered=""
[ "$many" -gt 0 ] || many_kinds=""
for kind in $many_kinds; do
	[[ " $kinds " != *" $kind "* ]] || filtered+=" $kind"
done
many_kinds=$filtered

user_control=${BENCH_USER_CONTROL:-}
CFG=/sys/kernel/config/target
small_mib=$(( size_mib >= 256 ? 64 : 16 ))
ramp=$(( quick ? 0 : 1 ))
mkdir -p "$out/raw"
meta=$out/meta.txt
: > "$meta"
log() { echo "bench: $(date +%T) $*" >&2; }
record() { echo "$*" >> "$meta"; }
has_user_kind() { [[ " $1 " == *" alloc "* || " $1 " == *" file "* ]]; }

modprobe target_core_mod
modprobe target_core_file
modprobe tcm_loop
modprobe sd_mod
mkdir -p "$CFG/core"

daemon_pid=""
start_daemon() {
	[ -z "$daemon_pid" ] || return 0
	: "${BUILD_DIR:?BUILD_DIR must name the build directory for the user kinds}"
	modprobe target_core_user
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

# Backstores and LUNs ------------------------------------------------------

# create_backstore KIND NAME BYTES: sets backstore to the object's configfs
# path (a variable, not output: the daemon must be started by this shell).
backstore=""
create_backstore() {
	local kind=$1 name=$2 bytes=$3 dir setting
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
	alloc|file)
		start_daemon
		dir=$CFG/core/user_0/$name
		mkdir -p "$dir"
		echo -n "dev_size=$bytes" > "$dir/control"
		if [ "$kind" = alloc ]; then
			echo -n "dev_config=alloc/" > "$dir/control"
		else
			truncate -s "$bytes" "/tmp/$name.img"
			echo -n "dev_config=file//tmp/$name.img" > "$dir/control"
		fi
		for setting in ${user_control//,/ }; do
			echo -n "$setting" > "$dir/control"
		done
		;;
	*) log "unknown kind $kind"; exit 2 ;;
	esac
	echo 1 > "$dir/enable"
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
	local tpg lun link dir
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
	rm -f /tmp/bench-*.img
}

fill() {
	local list=() d
	for d in "$@"; do list+=(--name="fill$d" --filename="$d"); done
	fio --eta=never --ioengine=libaio --direct=1 --rw=write --bs=1M --iodepth=4 \
		--output-format=terse "${list[@]}" > /dev/null
}

# Jobs ---------------------------------------------------------------------

# name:fio options; the 4-job mix is reported as one group.
jobs=(
	"randread-qd16:rw=randread bs=4k iodepth=16"
	"randwrite-qd16:rw=randwrite bs=4k iodepth=16"
	"randread-qd1:rw=randread bs=4k iodepth=1"
	"seqread-1m-qd4:rw=read bs=1M iodepth=4"
	"seqwrite-1m-qd4:rw=write bs=1M iodepth=4"
	"randrw70-4jobs:rw=randrw rwmixread=70 bs=4k iodepth=4 numjobs=4"
)
[ "$quick" = 0 ] || jobs=("${jobs[@]:0:4}")
if [ -n "$only_jobs" ]; then
	picked=()
	for entry in "${jobs[@]}"; do
		[[ " $only_jobs " != *" ${entry%%:*} "* ]] || picked+=("$entry")
	done
	jobs=("${picked[@]}")
fi

fio_global() {
	printf '[global]\nioengine=libaio\ndirect=1\ntime_based\nruntime=%s\nramp_time=%s\n' \
		"$runtime" "$ramp"
	printf 'percentile_list=50:99:99.9\n'
}

# Phases -------------------------------------------------------------------

record "runtime $runtime"
record "rounds $rounds"
record "size_mib $size_mib"
record "quick $quick"
record "cpus $(nproc)"
record "mem_kib $(awk '/MemTotal/ {print $2}' /proc/meminfo)"
record "kernel $(uname -r)"
record "fio $(fio --version)"
record "user_control $user_control"
record "daemon_config ${BENCH_CONFIG:-}"
record "kinds $kinds"
has_user_kind "$kinds $many_kinds" && start_daemon

# 1. One device of each kind, every job, kinds interleaved.
declare -A dev_of
for kind in $kinds; do
	log "creating $kind ($size_mib MiB)"
	create_backstore "$kind" "bench-${kind}0" $((size_mib * 1024 * 1024))
	export_lun "$backstore"
	dev_of[$kind]=$device
	record "device-$kind $device max_sectors_kb $(cat /sys/block/${device#/dev/}/queue/max_sectors_kb)"
done
daemon_figures "single"
log "filling ${dev_of[*]}"
fill "${dev_of[@]}"
for round in $(seq "$rounds"); do
	{
		fio_global
		printf 'group_reporting\n'
		for entry in "${jobs[@]}"; do
			for kind in $kinds; do
				printf '\n[%s.%s]\nstonewall\nfilename=%s\n' "${entry%%:*}" "$kind" "${dev_of[$kind]}"
				printf '%s\n' ${entry#*:}
			done
		done
	} > /tmp/bench-round.fio
	log "round $round of $rounds: ${#jobs[@]} jobs x $(echo $kinds | wc -w) kinds, $runtime s each"
	fio --eta=never --output-format=json --output="$out/raw/single.round$round.json" /tmp/bench-round.fio
done

# Profiles: strace counts the daemon's syscalls (user kinds only); perf
# samples the whole guest (every kind) while fio runs under it. Data go to
# tmpfs first: writing them to /mnt/out (9p) while sampling costs CPU.
# wait_for_io DEVICE: returns once the disk has completed I/O since the call.
wait_for_io() {
	local stat=/sys/block/${1#/dev/}/stat before now tries
	before=$(awk '{print $1 + $5}' "$stat")
	for ((tries = 600; tries > 0; tries--)); do
		now=$(awk '{print $1 + $5}' "$stat")
		[ "$now" = "$before" ] || return 0
		sleep 0.1
	done
}

# cpu_snapshot DEVICE: "name value" lines. The daemon's CPU time comes from
# its threads' scheduler runtime (schedstat, ns): tick-based accounting loses
# ticks when QEMU's vCPU thread is descheduled on the host. System-wide sums
# are not taken: they lose the runtime of tasks that exit in between, and
# short-lived processes cost milliseconds under TCG.
cpu_snapshot() {
	local device=${1#/dev/}
	echo "wall $(date +%s%N)"
	if [ -n "$daemon_pid" ]; then
		cat /proc/"$daemon_pid"/task/*/schedstat | awk '{ t += $1 } END { printf "daemon %.0f\n", t }'
		# utime and stime (ticks), fields 14 and 15; comm has no spaces here.
		cat /proc/"$daemon_pid"/task/*/stat | awk '{ u += $14; s += $15 } END { print "daemon_user", u; print "daemon_sys", s }'
	else
		printf 'daemon 0\ndaemon_user 0\ndaemon_sys 0\n'
	fi
	awk '/^ctxt/ { print "ctxt", $2 }' /proc/stat
	awk '{ print "ios", $1 + $5 }' "/sys/block/$device/stat"
}

profile_jobs=("randread-qd16:randread:16" "randwrite-qd16:randwrite:16" "randread-qd1:randread:1")
if [ -n "${BENCH_PROFILE:-}" ]; then
	# The first start of perf or strace reads it over 9p, which takes seconds.
	perf record -o /tmp/perf.warm -- true > /dev/null 2>&1 || true
	strace -o /dev/null true || true
	for kind in $kinds; do
		[ "$BENCH_PROFILE" != strace ] || [ "$kind" = alloc ] || [ "$kind" = file ] || continue
		for entry in "${profile_jobs[@]}"; do
			IFS=: read -r name rw depth <<< "$entry"
			[ -z "$only_jobs" ] || [[ " $only_jobs " == *" $name "* ]] || continue
			log "profiling ($BENCH_PROFILE) $kind $name"
			job=(fio --eta=never --thread --name="$name" --filename="${dev_of[$kind]}" --ioengine=libaio
				--direct=1 --rw="$rw" --bs=4k --iodepth="$depth" --time_based
				--runtime="$((runtime + 10))" --output-format=json
				--output="$out/raw/profile.$kind.$name.json")
			case $BENCH_PROFILE in
			strace)
				strace -c -f -p "$daemon_pid" -o "$out/strace.$kind.$name.txt" &
				profiler=$!
				sleep 1
				"${job[@]}"
				kill -INT $profiler
				wait $profiler || true
				;;
			perf)
				# fio's start-up (its libraries' initialisers) takes seconds under
				# TCG: sample once I/O flows, for $runtime s of its longer run.
				"${job[@]}" &
				fio_pid=$!
				wait_for_io "${dev_of[$kind]}"
				perf record -a -g -o /tmp/perf.data -- sleep "$runtime" \
					> "$out/perf.$kind.$name.log" 2>&1 || true
				wait $fio_pid
				perf report -i /tmp/perf.data --no-children --stdio -g none --percent-limit 0.5 \
					--sort comm,dso,sym > "$out/perf.$kind.$name.flat.txt" 2>&1 || true
				perf report -i /tmp/perf.data --no-children --stdio -g caller,0.5,callee \
					--percent-limit 2 --sort comm,sym > "$out/perf.$kind.$name.graph.txt" 2>&1 || true
				perf report -i /tmp/perf.data --children --stdio -g none --percent-limit 1 \
					--comms tcmu-runner,fio --sort comm,sym \
					> "$out/perf.$kind.$name.children.txt" 2>&1 || true
				rm -f /tmp/perf.data
				;;
			cpu)
				"${job[@]}" &
				fio_pid=$!
				wait_for_io "${dev_of[$kind]}"
				sleep 1
				cpu_snapshot "${dev_of[$kind]}" > /tmp/cpu.before
				sleep "$runtime"
				cpu_snapshot "${dev_of[$kind]}" > /tmp/cpu.after
				wait $fio_pid
				paste /tmp/cpu.before /tmp/cpu.after |
					awk -v kind="$kind" -v job="$name" '
					{ delta[$1] = $4 - $2 }
					END {
						ios = delta["ios"] > 0 ? delta["ios"] : 1
						us = 1e-3 / ios
						ticks = delta["daemon_user"] + delta["daemon_sys"]
						user_share = ticks > 0 ? delta["daemon_user"] / ticks : 0
						printf "cpu %s %s ios %d iops %.0f", kind, job, ios, ios * 1e9 / delta["wall"]
						printf " daemon %.1f daemon_user_share %.2f", delta["daemon"] * us, user_share
						printf " ctxt_per_io %.2f\n", delta["ctxt"] / ios
					}' >> "$meta"
				;;
			*) log "BENCH_PROFILE=$BENCH_PROFILE: strace, perf or cpu"; exit 2 ;;
			esac
		done
	done
fi
log "removing the single devices"
remove_all

# 2. Four devices of each kind; each kind's four driven at once, in turn.
declare -A four_of
four_kinds=$kinds
[ "$four" = 1 ] || four_kinds=""
for kind in $four_kinds; do
	log "creating four $kind devices ($small_mib MiB)"
	four_of[$kind]=""
	for i in 0 1 2 3; do
		create_backstore "$kind" "bench-${kind}q$i" $((small_mib * 1024 * 1024))
		export_lun "$backstore"
		four_of[$kind]+=" $device"
	done
	case $kind in alloc|file) sleep 1; daemon_figures "after-four-$kind" ;; esac
done
if [ "$four" = 1 ]; then
	log "filling"
	fill ${four_of[*]}
fi
for round in $(seq "$(( four ? rounds : 0 ))"); do
	{
		fio_global
		printf 'rw=randread\nbs=4k\niodepth=16\n'
		for kind in $four_kinds; do
			first=1
			for d in ${four_of[$kind]}; do
				printf '\n[four.%s.%s]\nfilename=%s\n' "$kind" "${d#/dev/}" "$d"
				[ $first = 0 ] || printf 'stonewall\n'
				first=0
			done
		done
	} > /tmp/bench-four.fio
	log "four devices, round $round of $rounds"
	fio --eta=never --output-format=json --output="$out/raw/four.round$round.json" /tmp/bench-four.fio
done
remove_all

# 3. Many devices of a kind (LUNs of one target), created, used at once, removed.
for kind in $many_kinds; do
	log "creating $many $kind devices"
	start_ns=$(date +%s%N)
	devices=()
	for i in $(seq 0 $((many - 1))); do
		create_backstore "$kind" "bench-${kind}m$i" $((4 * 1024 * 1024))
		export_lun "$backstore" 1000 "$i"
		devices+=("$device")
	done
	record "$kind many_count $many"
	record "$kind many_create_ms $(( ($(date +%s%N) - start_ns) / 1000000 ))"
	case $kind in alloc|file) daemon_figures "many-$kind-idle" ;; esac
	{
		fio_global
		printf 'rw=randread\nbs=4k\niodepth=4\n'
		for d in "${devices[@]}"; do printf '\n[many.%s.%s]\nfilename=%s\n' "$kind" "${d#/dev/}" "$d"; done
	} > /tmp/bench-many.fio
	log "$many $kind devices at once"
	sed -i "s/^runtime=.*/runtime=$(( quick ? 2 : 5 ))/" /tmp/bench-many.fio
	fio --eta=never --output-format=json --output="$out/raw/many.$kind.json" /tmp/bench-many.fio &
	fio_pid=$!
	sleep $(( quick ? 2 : 4 ))
	case $kind in alloc|file) daemon_figures "many-$kind-busy" ;; esac
	wait $fio_pid
	log "removing $many $kind devices"
	start_ns=$(date +%s%N)
	remove_all
	record "$kind many_remove_ms $(( ($(date +%s%N) - start_ns) / 1000000 ))"
done
stop_daemon
log "done"
