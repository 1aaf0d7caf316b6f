#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# alloc backstore on a real kernel: the tutorial's 1 MiB device logs what the
# tutorial shows; a 16 MiB device exposed with tcm_loop keeps 8 MiB of random
# data written with O_DIRECT; removing it closes its uio device; SIGTERM
# stops the daemon with status 0.
source "$(dirname "$0")/../lib.sh"

start_daemon
assert_log_has 'handler_init'

backstore_create 0 test_0 1048576 alloc/
assert_log_has 'alloc_open'
assert_log_has 'dev size: 1048576'
small=$BACKSTORE

backstore_create next big 16777216 alloc/
big=$BACKSTORE
[ "$(daemon_uio_fds | wc -l)" -eq 2 ] || fail "daemon does not hold two uio devices open"

loop_expose "$big"
[ "$(cat /sys/block/${DISK#/dev/}/size)" -eq $((16777216 / 512)) ] ||
	fail "$DISK has $(cat /sys/block/${DISK#/dev/}/size) sectors, expected 32768"
grep -q 'LIO-ORG' /sys/block/${DISK#/dev/}/device/vendor || fail "vendor is not LIO-ORG"
grep -q 'TCMU device' /sys/block/${DISK#/dev/}/device/model || fail "model is not 'TCMU device'"

random_file /tmp/pattern 8M
write_and_verify "$DISK" /tmp/pattern
# Unwritten blocks of an alloc device read as zeros.
cmp <(dd if="$DISK" bs=1M skip=8 count=8 iflag=direct status=none) <(head -c 8M /dev/zero) ||
	fail "unwritten part of $DISK does not read as zeros"

# Removing the exposed device: unlink the LUN, rmdir; no error, uio closed.
loop_unexpose "$DISK"
backstore_remove "$big"
[ ! -e "$big" ] || fail "$big still exists"
wait_for 10 "the daemon to close the removed device's uio" \
	test "$(daemon_uio_fds | wc -l)" -eq 1
backstore_remove "$small"
wait_for 10 "the daemon to close every uio" test -z "$(daemon_uio_fds)"
kill -0 "$DAEMON_PID" || fail "daemon died"
assert_log_lacks ' (ERROR|CRIT) '

stop_daemon TERM
