#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# file backstore on a real kernel: the file is created and sized to the
# device, 8 MiB of random data written through a tcm_loop disk with O_DIRECT
# read back identical, and after the daemon stops the file holds exactly
# those bytes. A relative path is relative to the daemon's working folder.
source "$(dirname "$0")/../lib.sh"

workdir=/tmp/daemon-cwd
mkdir -p "$workdir"
DAEMON_CWD=$workdir start_daemon

image=/var/tmp/tcmu-file-io.img
rm -f "$image"
backstore_create next f_abs 16777216 "file/$image"
absolute=$BACKSTORE
[ -f "$image" ] || fail "file handler did not create $image"
[ "$(stat -c %s "$image")" -eq 16777216 ] ||
	fail "$image is $(stat -c %s "$image") bytes, expected the device size 16777216"

backstore_create next f_rel 4194304 file/relative.img
relative=$BACKSTORE
[ -f "$workdir/relative.img" ] ||
	fail "relative config string did not create $workdir/relative.img"

loop_expose "$absolute"
random_file /tmp/pattern 8M
write_and_verify "$DISK" /tmp/pattern
sync

loop_unexpose "$DISK"
backstore_remove "$absolute"
backstore_remove "$relative"
wait_for 10 "the daemon to close every uio" test -z "$(daemon_uio_fds)"
stop_daemon TERM

[ "$(stat -c %s "$image")" -eq 16777216 ] || fail "$image changed size"
cmp -n 8388608 "$image" /tmp/pattern || fail "$image does not hold the data written"
cmp <(tail -c 8388608 "$image") <(head -c 8M /dev/zero) ||
	fail "the unwritten half of $image is not zeros"
assert_log_lacks ' (ERROR|CRIT) '
