#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Devices that exist before the daemon starts are served by it, and a
# restarted daemon takes over devices (and their data) from the one before.
source "$(dirname "$0")/../lib.sh"
requires_module target_core_user

# No daemon has run in this VM, so enable does not wait for a reply.
backstore_create next early_alloc 16777216 alloc/
early_alloc=$BACKSTORE
image=/var/tmp/tcmu-early.img
backstore_create next early_file 16777216 "file/$image"
early_file=$BACKSTORE
[ -z "$(pgrep -x tcmu-runner || true)" ] || fail "a daemon is already running"

start_daemon
[ "$(daemon_uio_fds | wc -l)" -eq 2 ] || fail "daemon does not serve the two existing devices"
assert_log_has 'serving 2 device'

loop_expose "$early_alloc"
alloc_disk=$DISK
loop_expose "$early_file"
file_disk=$DISK
random_file /tmp/pattern_a 8M
random_file /tmp/pattern_f 8M
write_and_verify "$alloc_disk" /tmp/pattern_a
write_and_verify "$file_disk" /tmp/pattern_f

# Restart: the devices stay in the kernel, exposed; the next daemon resets
# their rings and serves them, with the data kept.
stop_daemon TERM
start_daemon
[ "$(daemon_uio_fds | wc -l)" -eq 2 ] || fail "restarted daemon does not serve both devices"
cmp <(dd if="$alloc_disk" bs=1M count=8 iflag=direct status=none) /tmp/pattern_a ||
	fail "alloc data changed across a daemon restart"
cmp <(dd if="$file_disk" bs=1M count=8 iflag=direct status=none) /tmp/pattern_f ||
	fail "file data changed across a daemon restart"
random_file /tmp/pattern_b 8M
write_and_verify "$alloc_disk" /tmp/pattern_b

# A new device after the restart is served through netlink as usual.
backstore_create next late 4194304 alloc/
[ "$(daemon_uio_fds | wc -l)" -eq 3 ] || fail "new device after restart is not served"

stop_daemon INT
cmp -n 8388608 "$image" /tmp/pattern_f || fail "$image does not hold the data written"
assert_log_lacks ' (ERROR|CRIT) '
