#!/bin/bash
# Guest side of the benchmark, run by bench/run.sh through vm-run as root in
# a kernel with target_core_user and tcm_loop. Measures our backstores next
# to the kernel's on the same tcm_loop setup, phase by phase, and leaves
# fio's JSON and the daemon's figures under OUT for bench/report.py:
#   tmpfs  rd_mcp, fileio, user:alloc, user:file on the guest's tmpfs; then
#          four devices of a kind at once and many devices
#   dm     fileio and user:file on block devices taking 2 ms and 10 ms per
#          I/O (dm-delay), write cache off on both, page cache dropped
#          before each job
#   nbd    user:nbd (nbdkit memory) next to rd_mcp, user:alloc, user:file
#   rbd    user:rbd on the single-node Ceph of tests/vm/ceph.sh (memstore)
#          next to user:file and fileio, then `rbd bench` on the same image
#   ab     (not by default) user:alloc and user:file from two daemon builds,
#          BUILD_DIR (a) and BENCH_BUILD_B (b), alternating round by round
#   poll   (not by default) QD1 on user:alloc and user:file with ring
#          polling at its default (tuned), at ring_poll_us = 1000 and off,
#          next to rd_mcp and fileio, the settings interleaved
#
# The machine is shared and its load changes by the minute, so the kinds of
# a phase are interleaved: every round runs each job on each kind back to
# back, in one fio process (stonewalled jobs), and the report takes the
# median over rounds.
#
# usage: guest.sh [--quick] [--runtime S] [--rounds N] [--size MiB]
#                 [--phases LIST] [--kinds LIST] [--jobs LIST] [--no-four]
#                 [--many N] [--many-kinds LIST] [--out DIR]
#        --phases picks phases (tmpfs,dm,nbd,rbd: all by default);
#        --kinds the tmpfs phase's kinds (rd,fileio,alloc,file);
#        --jobs picks jobs by name in every phase (randread-qd16,...);
#        --no-four skips the four-device phase, --many 0 the many-device one
# env:   BUILD_DIR (for the user kinds): tcmu-runner and handler_*.so
#        BENCH_BUILD_B: the second build of the ab phase
#        BENCH_CEPH_HELPER: tests/vm/ceph.sh (default: next to this script)
#        BENCH_CONFIG: extra tcmu.conf lines for the daemon, "key = value"
#          separated by ';' (e.g. "ring_poll_us = 0")
#        BENCH_USER_CONTROL: extra "key=value,..." written to the control file
#          of user backstores (e.g. hw_max_sectors=2048) to try settings
#        BENCH_WRITE_CACHE=1: user backstores with the write cache on
#        BENCH_PROFILE=strace|perf|cpu|trace: after each phase's rounds, profile
#          QD16 random read and write and QD1 random read
#          (bench/guest_profile.sh)
set -euo pipefail

quick=0 runtime=5 rounds=3 size_mib=256 kinds="rd fileio alloc file"
many=64 many_kinds="rd alloc" out=/mnt/out/bench only_jobs="" four=1
phases="tmpfs dm nbd rbd"
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1; runtime=2; rounds=1; size_mib=64; many=8; many_kinds="alloc" ;;
	--runtime) runtime=$2; shift ;;
	--rounds) rounds=$2; shift ;;
	--size) size_mib=$2; shift ;;
	--phases) phases=${2//,/ }; shift ;;
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

CFG=/sys/kernel/config/target
small_mib=$(( size_mib >= 256 ? 64 : 16 ))
ramp=$(( quick ? 0 : 1 ))
mkdir -p "$out/raw"
meta=$out/meta.txt
: > "$meta"
log() { echo "bench: $(date +%T) $*" >&2; }
record() { echo "$*" >> "$meta"; }

here=$(dirname "$0")
# shellcheck source=bench/guest_devices.sh
source "$here/guest_devices.sh"
# shellcheck source=bench/guest_profile.sh
source "$here/guest_profile.sh"

modprobe target_core_mod
modprobe target_core_file
modprobe tcm_loop
modprobe sd_mod
mkdir -p "$CFG/core"

# Jobs ---------------------------------------------------------------------

# name:fio options; the 4-job mix is reported as one group.
all_jobs=(
	"randread-qd16:rw=randread bs=4k iodepth=16"
	"randwrite-qd16:rw=randwrite bs=4k iodepth=16"
	"randread-qd1:rw=randread bs=4k iodepth=1"
	"randwrite-qd1:rw=randwrite bs=4k iodepth=1"
	"seqread-1m-qd4:rw=read bs=1M iodepth=4"
	"seqwrite-1m-qd4:rw=write bs=1M iodepth=4"
	"randrw70-4jobs:rw=randrw rwmixread=70 bs=4k iodepth=4 numjobs=4"
)
declare -A phase_kinds=(
	[tmpfs]=$kinds
	[dm]="fileio-dm2 file-dm2 fileio-dm10 file-dm10"
	[nbd]="rd alloc file nbd"
	[rbd]="fileio file rbd"
	[ab]="alloc-a file-a alloc-b file-b"
	[poll]="rd fileio alloc-default alloc-1000 alloc-off file-default file-1000 file-off"
)
declare -A phase_jobs=(
	[tmpfs]="randread-qd16 randwrite-qd16 randread-qd1 seqread-1m-qd4 seqwrite-1m-qd4 randrw70-4jobs"
	[dm]="randread-qd16 randwrite-qd16 randread-qd1 randwrite-qd1"
	[nbd]="randread-qd16 randwrite-qd16 randread-qd1 seqread-1m-qd4 seqwrite-1m-qd4"
	[rbd]="randread-qd16 randwrite-qd16 randread-qd1 randwrite-qd1 seqread-1m-qd4 seqwrite-1m-qd4"
	[ab]="randread-qd16 randwrite-qd16 randread-qd1 randwrite-qd1"
	[poll]="randread-qd1 randwrite-qd1 randread-qd16"
)
if [ "$quick" = 1 ]; then
	phase_jobs[tmpfs]="randread-qd16 randwrite-qd16 randread-qd1 seqread-1m-qd4"
	phase_kinds[dm]="fileio-dm2 file-dm2"
fi

# jobs_of PHASE: sets jobs to the phase's entries of all_jobs, --jobs applied.
jobs=()
jobs_of() {
	local entry name
	jobs=()
	for entry in "${all_jobs[@]}"; do
		name=${entry%%:*}
		[[ " ${phase_jobs[$1]} " == *" $name "* ]] || continue
		[ -z "$only_jobs" ] || [[ " $only_jobs " == *" $name "* ]] || continue
		jobs+=("$entry")
	done
}

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
record "clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
record "fio $(fio --version)"
record "user_control $user_control"
record "daemon_config ${BENCH_CONFIG:-}"
record "kinds $kinds"
record "phases $phases"
has_user_kind "$kinds $many_kinds" && start_daemon

# single_devices PHASE: one device of each of the phase's kinds, every job of
# the phase, kinds interleaved; raw results in raw/FILE.roundN.json (FILE is
# "single" for the tmpfs phase, as before phases existed).
declare -A dev_of
single_devices() {
	local phase=$1 file=$1 kind round entry to_fill=() path stats
	[ "$phase" != tmpfs ] || file=single
	record "phase $phase ${phase_kinds[$phase]}"
	jobs_of "$phase"
	for kind in ${phase_kinds[$phase]}; do
		log "$phase: creating $kind ($size_mib MiB)"
		create_backstore "$kind" "bench-${kind}0" $((size_mib * 1024 * 1024))
		export_lun "$backstore"
		dev_of[$kind]=$device
		record "device-$kind $device max_sectors_kb $(cat /sys/block/${device#/dev/}/queue/max_sectors_kb) write_cache $(cat "$backstore/attrib/emulate_write_cache")"
		# The slow media read zeros and drop what is written: nothing to fill.
		[[ $kind == *-dm* ]] || to_fill+=("$device")
	done
	daemon_figures "$phase"
	log "filling ${to_fill[*]}"
	fill "${to_fill[@]}"
	for round in $(seq "$rounds"); do
		{
			fio_global
			printf 'group_reporting\n'
			for entry in "${jobs[@]}"; do
				for kind in ${phase_kinds[$phase]}; do
					printf '\n[%s.%s]\nstonewall\nfilename=%s\n' "${entry%%:*}" "$kind" "${dev_of[$kind]}"
					[[ $kind != *-dm* ]] || printf 'exec_prerun=/tmp/bench-drop-caches.sh\n'
					if is_user_kind "$kind" && [[ $kind != *-dm* ]]; then
						stats=$out/raw/stats.$phase.round$round.${entry%%:*}.$kind
						printf 'exec_prerun=%s\nexec_postrun=%s\n' \
							"$(daemon_stats_hook before "$stats" "bench-${kind}0")" \
							"$(daemon_stats_hook after "$stats" "bench-${kind}0")"
					fi
					printf '%s\n' ${entry#*:}
				done
			done
		} > /tmp/bench-round.fio
		log "$phase: round $round of $rounds: ${#jobs[@]} jobs x $(echo ${phase_kinds[$phase]} | wc -w) kinds, $runtime s each"
		path=$out/raw/$file.round$round.json
		fio --eta=never --output-format=json --output="$path" /tmp/bench-round.fio
	done
	run_profiles "${phase_kinds[$phase]}"
}

# rbd_cpu_ns PID: the CPU time of every thread of a process so far (ns).
rbd_cpu_ns() {
	cat /proc/"$1"/task/*/schedstat 2> /dev/null | awk '{ t += $1 } END { printf "%.0f\n", t }'
}

# rbd_ops FILE: the operations `rbd bench` counted so far (its last
# per-second line: SEC OPS OPS/SEC BYTES/SEC).
rbd_ops() {
	awk '$1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ { ops = $2 } END { print ops + 0 }' "$1"
}

# rbd_bench IMAGE: `rbd bench` with each of the rbd phase's jobs, for about
# the jobs' runtime each (stopped by SIGINT once it has run that long: its
# per-second lines carry the cumulative count); raw/rbdbench.JOB.txt. Its
# CPU per operation from its first per-second line on (connecting and
# opening the image left out) goes into the file's last line, "cpu_us_per_op N",
# for the daemon's (BENCH_PROFILE=cpu) to be read against.
rbd_bench() {
	local image=$1 entry name rw bs depth type pattern file pid cpu_start ops_start
	for entry in "${jobs[@]}"; do
		name=${entry%%:*}
		[[ $name != randrw* ]] || continue
		for option in ${entry#*:}; do
			case $option in rw=*) rw=${option#rw=} ;; bs=*) bs=${option#bs=} ;;
				iodepth=*) depth=${option#iodepth=} ;; esac
		done
		type=read pattern=seq
		[[ $rw != *write ]] || type=write
		[[ $rw != rand* ]] || pattern=rand
		file=$out/raw/rbdbench.$name.txt
		log "rbd bench $name on $image"
		# With the daemon's client settings: rbd_cache off, so that a write is
		# acknowledged once the OSD has it (librbd's default write-around cache
		# acknowledges it before).
		echo "rbd bench --rbd_cache=false --io-type $type --io-size ${bs^^} --io-threads $depth --io-pattern $pattern --io-total 100G $image" > "$file"
		rbd bench --rbd_cache=false --io-type "$type" --io-size "${bs^^}" --io-threads "$depth" \
			--io-pattern "$pattern" --io-total 100G "$image" >> "$file" 2>&1 &
		pid=$! cpu_start="" ops_start=0
		for _ in $(seq $(( (runtime + ramp + 120) * 10 ))); do
			kill -0 "$pid" 2>/dev/null || break
			if [ -z "$cpu_start" ] && [ "$(rbd_ops "$file")" -gt 0 ]; then
				cpu_start=$(rbd_cpu_ns "$pid") ops_start=$(rbd_ops "$file")
			fi
			if awk -v end=$((runtime + ramp)) '$1 ~ /^[0-9]+$/ && $1 >= end { found = 1 } END { exit !found }' "$file"; then
				break
			fi
			sleep 0.1
		done
		local cpu_end ops_end
		cpu_end=$(rbd_cpu_ns "$pid") ops_end=$(rbd_ops "$file")
		kill -INT "$pid" 2>/dev/null || true
		wait "$pid" || true
		if [ -n "$cpu_start" ] && [ "$ops_end" -gt "$ops_start" ]; then
			echo "cpu_us_per_op $(( (cpu_end - cpu_start) / (ops_end - ops_start) / 1000 ))" >> "$file"
		fi
	done
}

# tmpfs_extras: four devices of each kind driven at once, in turn; then many
# devices of a kind.
tmpfs_extras() {
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

	# Many devices of a kind (LUNs of one target), created, used at once, removed.
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
}

# ab_rounds: the ab phase. Each round runs the jobs on alloc and file from
# build a, then from build b, each with its own daemon and fresh devices, so
# that the host's load changes hit both builds alike.
ab_rounds() {
	local round side build_a=$BUILD_DIR kind entry
	: "${BENCH_BUILD_B:?the ab phase needs BENCH_BUILD_B, the second build}"
	record "phase ab ${phase_kinds[ab]}"
	record "build_a $build_a"
	record "build_b $BENCH_BUILD_B"
	jobs_of ab
	for round in $(seq "$rounds"); do
		for side in a b; do
			stop_daemon
			BUILD_DIR=$build_a
			[ "$side" = a ] || BUILD_DIR=$BENCH_BUILD_B
			for kind in alloc file; do
				create_backstore "$kind" "bench-$kind-${side}0" $((size_mib * 1024 * 1024))
				export_lun "$backstore"
				dev_of[$kind-$side]=$device
			done
			fill "${dev_of[alloc-$side]}" "${dev_of[file-$side]}"
			{
				fio_global
				printf 'group_reporting\n'
				for entry in "${jobs[@]}"; do
					for kind in alloc file; do
						printf '\n[%s.%s-%s]\nstonewall\nfilename=%s\n' "${entry%%:*}" \
							"$kind" "$side" "${dev_of[$kind-$side]}"
						printf '%s\n' ${entry#*:}
					done
				done
			} > /tmp/bench-round.fio
			log "ab: round $round of $rounds, build $side ($BUILD_DIR)"
			fio --eta=never --output-format=json --output="$out/raw/ab.round$round$side.json" \
				/tmp/bench-round.fio
			remove_all
		done
	done
	stop_daemon
	BUILD_DIR=$build_a
}

# poll_set SETTING: the daemon's ring_poll_us for the jobs that follow
# (default: no line, the tuned window up to its default cap; a number: that
# cap), through its tcmu.conf, which it applies at once. Run by fio's
# exec_prerun before each job of the poll phase.
cat > /tmp/bench-poll-set.sh <<'EOF'
#!/bin/bash
{
	echo "log_level = 3"
	[ "$1" = default ] || echo "ring_poll_us = $1"
} > /tmp/bench-tcmu.conf.new
mv /tmp/bench-tcmu.conf.new /tmp/bench-tcmu.conf
sleep 0.5
EOF
chmod +x /tmp/bench-poll-set.sh

# poll_rounds: the poll phase. QD1 on user:alloc and user:file with the
# daemon's polling at its default, at ring_poll_us = 1000 and off, next to
# rd_mcp and fileio: the same four devices, the setting changed before each
# job, so that every round measures the three settings back to back.
poll_rounds() {
	local round entry kind setting path
	record "phase poll ${phase_kinds[poll]}"
	jobs_of poll
	for kind in rd fileio alloc file; do
		create_backstore "$kind" "bench-${kind}0" $((size_mib * 1024 * 1024))
		export_lun "$backstore"
		dev_of[$kind]=$device
	done
	fill "${dev_of[rd]}" "${dev_of[fileio]}" "${dev_of[alloc]}" "${dev_of[file]}"
	for round in $(seq "$rounds"); do
		{
			fio_global
			printf 'group_reporting\n'
			for entry in "${jobs[@]}"; do
				for kind in ${phase_kinds[poll]}; do
					setting=default
					[[ $kind != *-* ]] || setting=${kind#*-}
					[ "$setting" != off ] || setting=0
					printf '\n[%s.%s]\nstonewall\nfilename=%s\n' "${entry%%:*}" "$kind" \
						"${dev_of[${kind%%-*}]}"
					printf 'exec_prerun=/tmp/bench-poll-set.sh %s\n' "$setting"
					printf '%s\n' ${entry#*:}
				done
			done
		} > /tmp/bench-round.fio
		log "poll: round $round of $rounds"
		path=$out/raw/poll.round$round.json
		fio --eta=never --output-format=json --output="$path" /tmp/bench-round.fio
	done
	/tmp/bench-poll-set.sh default
	remove_all
}

for phase in $phases; do
	[ -n "${phase_kinds[$phase]:-}" ] || { log "unknown phase $phase (tmpfs, dm, nbd, rbd, ab, poll)"; exit 2; }
	if [ "$phase" = ab ]; then
		ab_rounds
		continue
	fi
	if [ "$phase" = poll ]; then
		poll_rounds
		continue
	fi
	single_devices "$phase"
	log "$phase: removing the devices"
	remove_all
	case $phase in
	tmpfs) tmpfs_extras ;;
	rbd)
		rbd_bench rbd/bench-rbd0
		run_cleanup
		ceph_up=0
		;;
	esac
done
stop_daemon
log "done"
