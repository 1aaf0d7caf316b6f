#!/bin/bash
# Benchmark: the kernel's rd_mcp and fileio backstores against our user:alloc,
# user:file, user:nbd and user:rbd, in one VM run on the same tcm_loop setup,
# phase by phase (tmpfs, dm-delay media, nbd, rbd on Ceph; see BENCHMARKS.md).
#
# usage: bench/run.sh [--quick | --long] [--record] [--kernel-only]
#                     [--phases LIST] [-m MiB] [-c CPUS] [--build-dir DIR]
#                     [--out DIR] [-- GUEST_OPTIONS...]
#   -h, --help     this text
#   --quick        2 s per job, one round, fewer jobs and devices (keeps the
#                  script from rotting; not a measurement)
#   --long         20 s per job, 3 rounds
#   --record       put the report into BENCHMARKS.md (newest first)
#   --kernel-only  measure rd_mcp and fileio on tmpfs only (no build needed)
#   --phases LIST  tmpfs,dm,nbd,rbd (all by default), or ab with --build-b,
#                  or poll (QD1 with ring polling at its default, 1000, off)
#   --build-b DIR  a second daemon build for the ab phase (--phases ab), e.g.
#                  one with a change undone, measured round by round against
#                  --build-dir's (default: build-bench/)
#   guest options (bench/guest.sh): --runtime S --rounds N --size MiB
#                  --kinds LIST --jobs LIST --many N --many-kinds LIST
# env: BENCH_USER_CONTROL, BENCH_CONFIG, BENCH_PROFILE, BENCH_WRITE_CACHE (see
#      bench/guest.sh), VM_ACCEL
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(dirname "$here")
command_line="bench/run.sh $*"
mem=4096 cpus=2 record=0 build_dir="" out="" guest_options=() kernel_only=0
while [ $# -gt 0 ]; do
	case $1 in
	--quick) guest_options+=(--quick) ;;
	--long) guest_options+=(--runtime 20 --rounds 3) ;;
	--record) record=1 ;;
	--kernel-only) kernel_only=1 ;;
	--phases) guest_options+=(--phases "$2"); shift ;;
	-m) mem=$2; shift ;;
	-c) cpus=$2; shift ;;
	--build-dir) build_dir=$2; shift ;;
	--build-b) BENCH_BUILD_B=$(realpath "$2"); export BENCH_BUILD_B; shift ;;
	--out) out=$2; shift ;;
	--) shift; guest_options+=("$@"); break ;;
	-h|--help) sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
	*) echo "bench/run.sh: unknown option $1 (bench/run.sh --help)" >&2; exit 2 ;;
	esac
	shift
done

if [ "$kernel_only" = 1 ]; then
	guest_options=(--phases tmpfs --kinds rd,fileio "${guest_options[@]}")
else
	if [ -z "$build_dir" ]; then
		build_dir=$source_dir/build-bench
		cmake -S "$source_dir" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
			-DTCMU_TESTS=OFF > /dev/null
		cmake --build "$build_dir" -j "$(nproc)" > /dev/null
	fi
	build_dir=$(realpath "$build_dir")
	[ -x "$build_dir/tcmu-runner" ] || { echo "bench/run.sh: no tcmu-runner in $build_dir" >&2; exit 1; }
fi

vm_run=$source_dir/tests/vm/vm-run
[ -x "$vm_run" ] || vm_run=/work/shared/vm/vm-run
[ -x "$vm_run" ] || { echo "bench/run.sh: no vm-run harness found" >&2; exit 1; }

out=${out:-$(mktemp -d /tmp/bench.XXXXXX)}
mkdir -p "$out"
out=$(realpath "$out")
rm -rf "$out/bench"
{
	echo "date $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "command $command_line"
	echo "commit $(git -C "$source_dir" describe --always --dirty 2>/dev/null || echo unknown)"
	echo "build ${build_dir:-none (kernel kinds only)}"
	echo "vm vm-run -m $mem -c $cpus, accel ${VM_ACCEL:-tcg}"
	echo "host $(nproc) cores, $(awk '/MemTotal/ {printf "%d GiB", $2 / 1048576}' /proc/meminfo), $(uname -r)"
	echo "load_before $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$out/host.txt"

export BUILD_DIR=$build_dir
export VM_ENV="BUILD_DIR BENCH_BUILD_B BENCH_USER_CONTROL BENCH_CONFIG BENCH_PROFILE BENCH_WRITE_CACHE"
export VM_OUT=$out
timeout_s=7200
# Copies: bash reads a script as it runs, and bench/ may be edited meanwhile.
cp "$here"/guest*.sh "$source_dir/tests/vm/ceph.sh" "$source_dir/tcmu-runner.conf" "$out/"
status=0
"$vm_run" -m "$mem" -c "$cpus" -t "$timeout_s" "$out/guest.sh" --out /mnt/out/bench \
	"${guest_options[@]}" || status=$?

echo "load_after $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/host.txt"
cp "$out/host.txt" "$out/bench/host.txt"
python3 "$here/report.py" "$out/bench" > "$out/report.md"
cat "$out/report.md"
echo "bench/run.sh: raw results in $out/bench, report in $out/report.md" >&2
if [ "$status" != 0 ]; then
	echo "bench/run.sh: the guest failed (status $status); the report covers what it finished" >&2
	exit "$status"
fi

if [ "$record" = 1 ]; then
	python3 - "$source_dir/BENCHMARKS.md" "$out/report.md" <<'EOF'
import sys
path, report = sys.argv[1], open(sys.argv[2]).read()
marker = "<!-- runs: newest first; bench/run.sh --record inserts below -->\n"
text = open(path).read()
if marker not in text:
    sys.exit(f"{path}: marker line not found")
open(path, "w").write(text.replace(marker, marker + "\n" + report + "\n", 1))
EOF
	echo "bench/run.sh: recorded in BENCHMARKS.md" >&2
fi
