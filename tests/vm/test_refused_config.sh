#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A config string the daemon refuses makes `echo 1 > enable` fail, leaves no
# uio device open and the backstore removable; the daemon keeps serving.
source "$(dirname "$0")/../lib.sh"

start_daemon

# file handler, path in a directory that does not exist
if backstore_create next bad_path 4194304 file/nonexistent-dir/x.img; then
	fail "enable succeeded for a file in a nonexistent directory"
fi
bad_path=$BACKSTORE
[ -z "$(daemon_uio_fds)" ] || fail "daemon holds a uio open after refusing a device"
[ ! -e /nonexistent-dir ] || fail "the handler created the missing directory"

# A symbolic link to a missing file: refused at once with the reason, not
# created through, and the daemon does not spin on it (the enable would
# hang, and with it netlink and D-Bus).
ln -s /var/tmp/no-such-target.img /var/tmp/dangling.img
cleanup_fn rm -f /var/tmp/dangling.img
dangling=$CORE/user_$(next_free_hba)/dangling
mkdir -p "$dangling"
cleanup_fn backstore_remove "$dangling"
echo -n dev_size=4194304 > "$dangling/control"
echo -n dev_config=file//var/tmp/dangling.img > "$dangling/control"
# The kernel waits for the daemon's answer uninterruptibly: no timeout(1) here.
(echo 1 > "$dangling/enable") 2>/dev/null &
enable_pid=$!
wait_for 30 "an answer to the enable of a dangling symlink" \
	sh -c "! kill -0 $enable_pid 2>/dev/null"
status=0
wait "$enable_pid" || status=$?
[ "$status" -ne 0 ] || fail "enable succeeded for a dangling symlink"
assert_log_has "'/var/tmp/dangling.img' is a symbolic link to a file that does not exist"
[ ! -e /var/tmp/no-such-target.img ] || fail "the handler created a file through the link"
[ -z "$(daemon_uio_fds)" ] || fail "daemon holds a uio open after refusing a device"

# a subtype no handler serves
if backstore_create next bad_subtype 4194304 nosuchhandler/whatever; then
	fail "enable succeeded for a subtype with no handler"
fi
bad_subtype=$BACKSTORE
[ -z "$(daemon_uio_fds)" ] || fail "daemon holds a uio open after refusing a device"
assert_log_has 'nosuchhandler'

backstore_remove "$bad_path"
backstore_remove "$bad_subtype"
backstore_remove "$dangling"
[ ! -e "$bad_path" ] && [ ! -e "$bad_subtype" ] && [ ! -e "$dangling" ] ||
	fail "refused backstores could not be removed"

# The daemon still serves a good device.
backstore_create next good 16777216 alloc/
loop_expose "$BACKSTORE"
random_file /tmp/pattern 8M
write_and_verify "$DISK" /tmp/pattern

stop_daemon TERM
