#!/bin/bash
# Installation test: builds the Debian package from a /usr build of this
# tree and a third-party handler against a staged libtcmu, then boots the
# VM, where install.guest.sh installs and removes the package, runs
# `cmake --install BUILD_DIR`, checks the man pages, the unit and the
# logrotate file, and starts the daemon by D-Bus activation.
#
# usage: tests/vm/install.sh [BUILD_DIR]   (default: build; configured and built)
# It is the ctest vm_install; its logs land in VM_OUT.
set -euo pipefail

source_dir=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=$(realpath "${1:-$source_dir/build}")
[ -f "$BUILD_DIR/CMakeCache.txt" ] || { echo "install.sh: $BUILD_DIR is not a build directory" >&2; exit 2; }

# The package must be built for /usr, whatever prefix BUILD_DIR has.
deb_build=$BUILD_DIR/deb-build
cmake -S "$source_dir" -B "$deb_build" -DCMAKE_INSTALL_PREFIX=/usr -DTCMU_TESTS=OFF >/dev/null
cmake --build "$deb_build" -j"$(nproc)" >/dev/null
rm -f "$deb_build"/*.deb
(cd "$deb_build" && cpack -G DEB >/dev/null)
DEB=$(ls "$deb_build"/tcmu-runner_*.deb)

# A third-party handler, built as its author would against the installed
# libtcmu.h, libtcmu.so and libtcmu.pc: here those of a staged install of
# BUILD_DIR. -z defs: libtcmu.so provides every tcmu_* function it calls.
stage=$BUILD_DIR/install-stage
rm -rf "$stage"
DESTDIR=$stage cmake --install "$BUILD_DIR" >/dev/null
pc_file=$(find "$stage" -name libtcmu.pc)
THIRDPARTY_HANDLER=$stage/handler_thirdparty.so
PKG_CONFIG_SYSROOT_DIR=$stage PKG_CONFIG_PATH=$(dirname "$pc_file") \
	sh -c 'cc -std=gnu11 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden \
		-Wl,-z,defs -o "$0" "$1" $(pkg-config --cflags --libs libtcmu)' \
	"$THIRDPARTY_HANDLER" "$source_dir/examples/thirdparty_handler.c"

export BUILD_DIR DEB THIRDPARTY_HANDLER
VM_ENV="BUILD_DIR DEB THIRDPARTY_HANDLER" "$source_dir/tests/vm/vm-run" -t "${TCMU_VM_TIMEOUT:-900}" "$source_dir/tests/vm/install.guest.sh"
