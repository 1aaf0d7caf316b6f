#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# run.sh: runs the tcmu-runner built in this folder, in the foreground, with
# its log on the console, from this folder (where a file backstore without
# a path keeps its data) and with the handlers built beside it.
set -euo pipefail

project_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
	cat <<EOF
Usage: ./run.sh [TCMU-RUNNER-OPTION...]
Runs the tcmu-runner built in $project_dir (by 'cmake . && make', or in
build/ by 'cmake -S . -B build && cmake --build build') in the foreground,
as root, with its log on the console. Ctrl-C stops it.
Without /etc/tcmu/tcmu.conf it reads this folder's tcmu.conf. The variable
TCMU_BUILD_DIR names another build folder.
Options are passed to tcmu-runner; see './run.sh --help-daemon'.
EOF
}

die() {
	echo "[ERROR] $*" >&2
	exit 1
}

# TCMU_BUILD_DIR names another build folder.
binary=
for candidate in ${TCMU_BUILD_DIR:+"$TCMU_BUILD_DIR/tcmu-runner"} \
	"$project_dir/tcmu-runner" "$project_dir/build/tcmu-runner"; do
	if [ -x "$candidate" ]; then
		binary=$candidate
		break
	fi
done

case ${1:-} in
-h | --help) usage; exit 0 ;;
--help-daemon)
	[ -n "$binary" ] || die "tcmu-runner is not built: run 'cmake . && make' in $project_dir"
	exec "$binary" --help
	;;
esac

[ "$(id -u)" -eq 0 ] || die "run.sh must run as root (netlink, configfs and /dev/uio* need it): sudo ./run.sh"
[ -n "$binary" ] || die "tcmu-runner is not built: run 'cmake . && make' in $project_dir first"
handler_dir=$(dirname "$binary")
compgen -G "$handler_dir/handler_*.so" >/dev/null ||
	die "no handler_*.so next to $binary: the build is incomplete, run 'make' again"

options=(--handler-path "$handler_dir")
if [ ! -f /etc/tcmu/tcmu.conf ] && [ -f "$project_dir/tcmu.conf" ]; then
	options+=(--config "$project_dir/tcmu.conf")
fi

cd "$project_dir"
echo "[INFO] Running $binary (Ctrl-C stops it)"
exec "$binary" "${options[@]}" "$@"
