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

# a subtype no handler serves
if backstore_create next bad_subtype 4194304 nosuchhandler/whatever; then
	fail "enable succeeded for a subtype with no handler"
fi
bad_subtype=$BACKSTORE
[ -z "$(daemon_uio_fds)" ] || fail "daemon holds a uio open after refusing a device"
assert_log_has 'nosuchhandler'

backstore_remove "$bad_path"
backstore_remove "$bad_subtype"
[ ! -e "$bad_path" ] && [ ! -e "$bad_subtype" ] || fail "refused backstores could not be removed"

# The daemon still serves a good device.
backstore_create next good 16777216 alloc/
loop_expose "$BACKSTORE"
random_file /tmp/pattern 8M
write_and_verify "$DISK" /tmp/pattern

stop_daemon TERM
