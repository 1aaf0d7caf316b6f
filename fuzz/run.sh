#!/bin/bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each for a
# bounded time over its committed seed corpus. Any crash, sanitizer report,
# leak or broken invariant fails the run; the input that did it is kept in
# the artifacts directory and printed in base64.
#
# usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
# env:   FUZZ_BUILD_DIR (default: build-fuzz in the source tree)
#        FUZZ_SECONDS   (default 60; the first argument wins)
# Reproduce a failure: build-fuzz/fuzz/fuzz_<target> <artifact file>
set -euo pipefail

source_dir=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${FUZZ_BUILD_DIR:-$source_dir/build-fuzz}
seconds=${1:-${FUZZ_SECONDS:-60}}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ring netlink scsi config)

declare -A max_length=([ring]=16384 [netlink]=4096 [scsi]=8192 [config]=4096)

CC=clang cmake -S "$source_dir" -B "$build_dir" -DTCMU_FUZZ=ON -DTCMU_TESTS=OFF \
	-DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS=-O1 >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null

passed=0 failed=0
for target in "${targets[@]}"; do
	work=$build_dir/fuzz-run/$target
	rm -rf "$work/artifacts"
	mkdir -p "$work/corpus" "$work/artifacts"
	echo "fuzz_$target: ${seconds}s"
	# New inputs go to the scratch corpus; the committed seeds are only read.
	if (cd "$work" && "$build_dir/fuzz/fuzz_$target" -max_total_time="$seconds" \
		-timeout=10 -rss_limit_mb=2048 -max_len="${max_length[$target]}" \
		-print_final_stats=1 -artifact_prefix="$work/artifacts/" \
		"$work/corpus" "$source_dir/fuzz/corpus/$target") >"$work/log" 2>&1; then
		grep -E '^stat::(number_of_executed_units|new_units_added)' "$work/log" | sed 's/^/  /'
		passed=$((passed + 1))
	else
		echo "fuzz_$target FAILED; log: $work/log"
		grep -v '^"' "$work/log" | tail -40
		for artifact in "$work"/artifacts/*; do
			[ -f "$artifact" ] || continue
			echo "input $artifact (base64): $(base64 -w0 "$artifact")"
		done
		failed=$((failed + 1))
	fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
