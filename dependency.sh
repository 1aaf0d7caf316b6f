#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# dependency.sh: installs the Debian packages needed to build tcmu-runner,
# run its tests and follow the tutorial. Installs only what is missing, so
# running it again changes nothing.
set -euo pipefail

# Build: compiler, CMake and the libraries' development files.
build_packages=(
	gcc make cmake pkg-config
	libnl-3-dev libnl-genl-3-dev libglib2.0-dev libkmod-dev
	libcmocka-dev liburing-dev libaio-dev libjson-glib-dev libnbd-dev
	librbd-dev librados-dev
)
# The tutorial: targetcli needs the system bus; open-iscsi is the initiator;
# gdbus asks the daemon's D-Bus service.
tutorial_packages=(
	targetcli-fb open-iscsi lsscsi dbus libglib2.0-bin sg3-utils fio kmod
)
# The real-kernel tests boot a VM (tests/vm/vm-run); the installation test
# (tests/vm/install.sh) builds a .deb and checks the unit, man pages,
# logrotate file and the daemon's system calls.
test_packages=(
	qemu-system-x86 busybox-static cpio
	dpkg-dev systemd man-db groff-base logrotate strace
	dmsetup xfsprogs dosfstools jq
	clang libclang-rt-14-dev
	prometheus python3-jsonschema
	nbdkit qemu-utils
	multipath-tools
)
# The rbd handler's tests run a single-node Ceph cluster in the VM
# (tests/vm/ceph.sh). Without recommends: no mgr, no dashboard, ~200 MB.
ceph_packages=(
	ceph-mon ceph-osd ceph-common
)

usage() {
	cat <<EOF
Usage: ./dependency.sh [--help] [--list]
Installs, with apt-get, the Debian packages that tcmu-runner needs:
  to build:        ${build_packages[*]}
  the tutorial:    ${tutorial_packages[*]}
  the VM tests:    ${test_packages[*]}
                   ${ceph_packages[*]} (without recommends)
Only missing packages are installed; run it as root.
  --list   print the packages that are missing and exit
EOF
}

list_only=false
case ${1:-} in
-h | --help) usage; exit 0 ;;
--list) list_only=true ;;
"") ;;
*) echo "dependency.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
esac

installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}
missing=() missing_ceph=()
for package in "${build_packages[@]}" "${tutorial_packages[@]}" "${test_packages[@]}"; do
	installed "$package" || missing+=("$package")
done
for package in "${ceph_packages[@]}"; do
	installed "$package" || missing_ceph+=("$package")
done

if $list_only; then
	[ ${#missing[@]} -eq 0 ] || printf '%s\n' "${missing[@]}"
	[ ${#missing_ceph[@]} -eq 0 ] || printf '%s\n' "${missing_ceph[@]}"
	exit 0
fi
if [ ${#missing[@]} -eq 0 ] && [ ${#missing_ceph[@]} -eq 0 ]; then
	echo "[INFO] All needed packages are installed"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "[ERROR] Missing packages: ${missing[*]} ${missing_ceph[*]}; run as root: sudo ./dependency.sh" >&2
	exit 1
fi

echo "[INFO] Installing: ${missing[*]} ${missing_ceph[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
[ ${#missing[@]} -eq 0 ] || apt-get install -y -q "${missing[@]}"
[ ${#missing_ceph[@]} -eq 0 ] || apt-get install -y -q --no-install-recommends "${missing_ceph[@]}"
echo "[INFO] All needed packages are installed"
