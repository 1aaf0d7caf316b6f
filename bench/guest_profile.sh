# Sourced by bench/guest.sh: BENCH_PROFILE's profiles of QD16 random read and
# write and QD1 random read and write on a phase's devices, after its rounds. strace
# counts the daemon's syscalls (user kinds only); perf samples the whole
# guest (every kind) while fio runs under it; cpu takes the daemon's CPU time
# and the guest's context switches per I/O; trace records the kernel's
# tracepoints around each command (bench/trace_profile.py splits a QD1
# command's time into its steps, and the ring thread's time at any depth).
# Data go to tmpfs first: writing
# them to /mnt/out (9p) while sampling costs CPU.

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
	# The same runtime by thread name (tcmu-ring-N, librados's msgr-worker-N, ...).
	if [ -n "$daemon_pid" ]; then
		for task in /proc/"$daemon_pid"/task/*; do
			printf 'thread:%s %s\n' "$(tr ' ' _ < "$task/comm")" "$(cut -d' ' -f1 "$task/schedstat")"
		done 2> /dev/null | awk '{ t[$1] += $2 } END { for (name in t) print name, t[name] }'
	fi
}

profile_jobs=("randread-qd16:randread:16" "randwrite-qd16:randwrite:16" "randread-qd1:randread:1"
	"randwrite-qd1:randwrite:1")
tracing=/sys/kernel/tracing
# Short, with small buffers: reading the trace of a bigger one back stalled
# a loaded TCG guest for minutes (soft lockups).
trace_seconds=1

# trace_record DEVICE FILE: trace_seconds of the tracepoints that mark a
# command's steps, while fio runs on DEVICE: the disk's requests issued and
# completed, the syscalls of the daemon's threads, the scheduler's switches
# and wake-ups, work items, rescheduling interrupts (IPIs) and io_uring's
# hand-offs to its workers. fio's own syscalls are left out: at QD16 they
# are most of the events, and each costs microseconds under TCG. The clock is
# the monotonic one, alike on every CPU.
trace_record() {
	local disk=${1#/dev/} file=$2 major minor threads="" filter event
	if [ ! -e "$tracing/trace" ]; then
		mount -t tracefs nodev "$tracing"
		echo 0 > "$tracing/tracing_on"
		echo mono > "$tracing/trace_clock"
		echo 4096 > "$tracing/buffer_size_kb"
	fi
	IFS=: read -r major minor < "/sys/block/$disk/dev"
	for event in block_rq_issue block_rq_complete; do
		echo "dev == $(( (major << 20) | minor ))" > "$tracing/events/block/$event/filter"
		echo 1 > "$tracing/events/block/$event/enable"
	done
	[ -z "$daemon_pid" ] || threads=$(ls /proc/"$daemon_pid"/task)
	if [ -n "$threads" ]; then
		filter=$(printf 'common_pid == %s || ' $threads)
		# clock_gettime is a syscall here (the guest's clock source is the HPET,
		# which the vDSO cannot read): the polling loop's would fill the buffer.
		for event in sys_enter sys_exit; do
			echo "(${filter% || }) && id != 228" > "$tracing/events/raw_syscalls/$event/filter"
			echo 1 > "$tracing/events/raw_syscalls/$event/enable"
		done
	fi
	for event in sched/sched_switch sched/sched_wakeup workqueue/workqueue_execute_start \
		irq_vectors/reschedule_entry io_uring/io_uring_queue_async_work; do
		echo 1 > "$tracing/events/$event/enable"
	done
	echo 1 > "$tracing/tracing_on"
	sleep "$trace_seconds"
	echo 0 > "$tracing/tracing_on"
	echo 0 > "$tracing/events/enable"
	# The consuming reader empties the buffers for the next trace; without
	# blocking it stops (EAGAIN) once they are empty.
	dd if="$tracing/trace_pipe" of=/tmp/trace.txt iflag=nonblock bs=64K status=none 2> /dev/null || true
	{
		echo "# daemon threads:" $threads
		cat /tmp/trace.txt
	} > "$file"
	rm -f /tmp/trace.txt
}
profile_warm=0

# run_profiles KINDS: profiles each kind's device (dev_of) under BENCH_PROFILE.
run_profiles() {
	local kinds=$1 kind entry name rw depth job profiler fio_pid
	[ -n "${BENCH_PROFILE:-}" ] || return 0
	if [ "$profile_warm" = 0 ]; then
		# The first start of perf or strace reads it over 9p, which takes seconds.
		perf record -o /tmp/perf.warm -- true > /dev/null 2>&1 || true
		strace -o /dev/null true || true
		profile_warm=1
	fi
	for kind in $kinds; do
		[ "$BENCH_PROFILE" != strace ] || is_user_kind "$kind" || continue
		for entry in "${profile_jobs[@]}"; do
			IFS=: read -r name rw depth <<< "$entry"
			[ -z "$only_jobs" ] || [[ " $only_jobs " == *" $name "* ]] || continue
			# Deeper queues are traced for the daemon's ring thread only.
			[ "$BENCH_PROFILE" != trace ] || [ "$depth" = 1 ] || is_user_kind "$kind" || continue
			log "profiling ($BENCH_PROFILE) $kind $name"
			job=(fio --eta=never --thread --name="$name" --filename="${dev_of[$kind]}" --ioengine=libaio
				--direct=1 --rw="$rw" --bs=4k --iodepth="$depth" --time_based
				--runtime="$((runtime + 10))" --output-format=json
				--output="$out/raw/profile.$kind.$name.json")
			[[ $kind != *-dm* ]] || job+=(--exec_prerun=/tmp/bench-drop-caches.sh)
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
				# By thread name, matched by name (threads may come and go).
				awk -v kind="$kind" -v job="$name" '
					NR == FNR { before[$1] = $2; next }
					{ after[$1] = $2 }
					END {
						ios = after["ios"] - before["ios"]
						if (ios <= 0) ios = 1
						line = "cputhreads " kind " " job
						for (key in after)
							if (key ~ /^thread:/ && after[key] - before[key] > 0)
								line = line sprintf(" %s=%.1f", substr(key, 8),
									(after[key] - before[key]) / 1e3 / ios)
						print line
					}' /tmp/cpu.before /tmp/cpu.after >> "$meta"
				;;
			trace)
				"${job[@]}" &
				fio_pid=$!
				wait_for_io "${dev_of[$kind]}"
				sleep 1
				trace_record "${dev_of[$kind]}" "$out/trace.$kind.$name.txt"
				wait $fio_pid
				;;
			*) log "BENCH_PROFILE=$BENCH_PROFILE: strace, perf, cpu or trace"; exit 2 ;;
			esac
		done
	done
}
