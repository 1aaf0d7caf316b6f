#!/bin/bash
# libtcmu.so.1 exports exactly what libtcmu.h declares under LIBTCMU_1 and the
# nodes that extend it (LIBTCMU_1.1, ...), what
# the daemon (and test_dbus, fuzz_config) call under LIBTCMU_PRIVATE_<release>
# and nothing else; the handlers need libtcmu.so.1 and take only LIBTCMU_1[.x].
#
# usage: tests/libtcmu_exports.sh SOURCE_DIR BUILD_DIR (the ctest libtcmu_exports)
set -euo pipefail

source_dir=$1
build_dir=$2
library=$build_dir/libtcmu.so.1
failures=0
check() { # check DESCRIPTION COMMAND...
	local description=$1
	shift
	if "$@"; then echo "PASS: $description"; else echo "FAIL: $description"; failures=$((failures + 1)); fi
}
same() { # same WANTED GOT: prints what differs
	diff <(echo "$1") <(echo "$2") >&2
}

# Functions and extern variables; macro bodies and struct members are
# indented, so only declarations start a line with a type.
declared=$(grep -oE '^[a-z][a-z0-9_ ]*[ *]tcmu_[a-z0-9_]+\(|^extern [a-z0-9_ ]*[ *]tcmu_[a-z0-9_]+;' \
	"$source_dir/libtcmu.h" | grep -oE 'tcmu_[a-z0-9_]+[(;]$' | tr -d '(;' | sort -u)
check "libtcmu.h declares the handler API ($(wc -w <<<"$declared") names)" test "$(wc -w <<<"$declared")" -ge 10

check "SONAME is libtcmu.so.1" sh -c "readelf -d '$library' | grep -q 'SONAME.*\[libtcmu.so.1\]'"

# name@@NODE of each symbol the library defines and exports.
exported=$(readelf --dyn-syms -W "$library" |
	awk '$7 != "UND" && ($5 == "GLOBAL" || $5 == "WEAK") && $8 ~ /@@/ {print $8}')
unversioned=$(readelf --dyn-syms -W "$library" |
	awk '$7 != "UND" && ($5 == "GLOBAL" || $5 == "WEAK") && $8 !~ /@/ && $7 != "ABS" {print $8}')
check "no export without a version node${unversioned:+ (has: $unversioned)}" test -z "$unversioned"
public=$(sed -nE 's/@@LIBTCMU_1(\.[0-9]+)?$//p' <<<"$exported" | sort)
check "LIBTCMU_1[.x] is exactly what libtcmu.h declares" same "$declared" "$public"
# libtcmu.map matches one file: libtcmu.c defines the public ABI and nothing else.
api_object=$(find "$build_dir/CMakeFiles" -path '*tcmu_core.dir/libtcmu.c.o' | head -n 1)
# (A sanitizer build adds ASan's own __odr_asan.* markers to the object.)
in_libtcmu_c=$(nm --defined-only -g "$api_object" | awk '{print $3}' | grep -v '^__odr_asan\.' | sort)
check "libtcmu.c defines exactly the public ABI" same "$public" "$in_libtcmu_c"
version=$(sed -n 's/^project(tcmu-runner VERSION \([^ )]*\).*/\1/p' "$source_dir/CMakeLists.txt")
other=$(grep -vE "@@LIBTCMU_(1(\.[0-9]+)?|PRIVATE_$version)$" <<<"$exported" || true)
check "every other export is in LIBTCMU_PRIVATE_$version${other:+ (not: $other)}" test -z "$other"
private=$(sed -n "s/@@LIBTCMU_PRIVATE_$version\$//p" <<<"$exported")
# The programs that bind it (linking proves they find all they call there).
unused=$(for name in $private; do
	grep -qw "$name" "$source_dir/main.c" "$source_dir"/tests/unit/test_dbus.c \
		"$source_dir"/tests/unit/dbus_fixture.c "$source_dir/fuzz/fuzz_config.c" || echo "$name"
done)
check "main.c, test_dbus (with dbus_fixture.c) or fuzz_config.c calls each of them${unused:+ (not: $unused)}" \
	test -z "$unused"

for handler in "$build_dir"/handler_*.so; do
	name=$(basename "$handler")
	check "$name needs libtcmu.so.1" sh -c "readelf -d '$handler' | grep -q 'NEEDED.*\[libtcmu.so.1\]'"
	wrong=$(nm -D --undefined-only "$handler" | awk '{print $2}' |
		grep -E '^(tcmu_|[^@]*@LIBTCMU_)' | grep -vE '@LIBTCMU_1(\.[0-9]+)?$' || true)
	check "$name takes only LIBTCMU_1[.x] symbols from it${wrong:+ (not: $wrong)}" test -z "$wrong"
done

[ "$failures" -eq 0 ]
