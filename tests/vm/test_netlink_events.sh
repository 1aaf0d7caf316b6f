#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The TCM-USER netlink conversation with the real kernel: every configfs
# write that sends an event gets its answer (ADDED, RECONFIG of size, write
# cache and config, REMOVED), refusals reach the writer as errors, bursts of
# concurrent events are all answered, and no configfs write is left waiting
# for a daemon that stopped (cleanly or killed).
source "$(dirname "$0")/../lib.sh"

# enable_in_background DIR: writes 1 to DIR/enable in a child whose exit
# status is the write's; sets WRITER to its pid.
WRITER=
enable_in_background() {
	(echo 1 > "$1/enable") >/dev/null 2>&1 &
	WRITER=$!
}

prepare_backstore() {
	mkdir -p "$1"
	cleanup_fn backstore_remove "$1"
	echo -n "dev_size=1048576" > "$1/control"
	echo -n "dev_config=alloc/" > "$1/control"
}

start_daemon
# SET_FEATURES reached the kernel: new devices expect replies.
backstore_create next nl_main 1048576 alloc/ || fail "enable of an alloc backstore failed"
main=$BACKSTORE
[ "$(cat "$main/attrib/nl_reply_supported")" = 1 ] ||
	fail "the kernel does not expect netlink replies (SET_FEATURES not applied)"
[ "$(daemon_uio_fds | wc -l)" -eq 1 ] || fail "the daemon does not serve the new device"

# RECONFIG_DEVICE, one attribute each.
echo 2097152 > "$main/attrib/dev_size" || fail "dev_size change refused"
assert_log_has 'size is now 2097152 bytes'
echo 1 > "$main/attrib/emulate_write_cache" || fail "write cache change refused"
assert_log_has 'write cache on'
# restoreconfig writes unchanged values: accepted. echo adds the newline configfs keeps.
echo "alloc/" > "$main/attrib/dev_config" || fail "unchanged dev_config refused"
if echo -n "file//var/tmp/nl.img" > "$main/attrib/dev_config"; then
	fail "a dev_config naming another handler was accepted"
fi
assert_log_has 'subtype must stay'

# A refused ADDED fails the enable write and leaves nothing open.
if backstore_create next nl_refused 1048576 nohandler/; then
	fail "enable of a backstore without a handler succeeded"
fi
assert_log_has 'not added'
[ "$(daemon_uio_fds | wc -l)" -eq 1 ] || fail "a refused device was left open"
backstore_remove "$BACKSTORE"

# A burst of concurrent events: every one answered.
hba=$(next_free_hba)
writers=()
for i in $(seq 1 16); do
	prepare_backstore "$CORE/user_$hba/nl_burst$i"
	enable_in_background "$CORE/user_$hba/nl_burst$i"
	writers+=("$WRITER")
done
for writer in "${writers[@]}"; do
	wait "$writer" || fail "an enable in the burst failed"
done
[ "$(daemon_uio_fds | wc -l)" -eq 17 ] || fail "the daemon does not serve all 17 devices"
removers=()
for i in $(seq 1 16); do
	rmdir "$CORE/user_$hba/nl_burst$i" & removers+=($!)
done
for remover in "${removers[@]}"; do
	wait "$remover" || fail "an rmdir in the burst failed"
done
wait_for 10 "the daemon to close the removed devices" \
	test "$(daemon_uio_fds | wc -l)" -eq 1

# REMOVED_DEVICE
backstore_remove "$main"
wait_for 10 "the daemon to close the removed device" test -z "$(daemon_uio_fds)"
assert_log_has 'removed by the kernel'

# Stopped cleanly: the kernel no longer waits for replies, so an enable
# while no daemon runs returns, and the next daemon serves the device.
stop_daemon TERM
prepare_backstore "$CORE/user_$hba/nl_down"
enable_in_background "$CORE/user_$hba/nl_down"
writer=$WRITER
wait_for 10 "an enable with no daemon running to return" \
	bash -c "! kill -0 $writer 2>/dev/null"
wait "$writer" || fail "enable with no daemon running failed"
start_daemon
[ "$(daemon_uio_fds | wc -l)" -eq 1 ] || fail "the new daemon does not serve the device"
backstore_remove "$CORE/user_$hba/nl_down"

# Killed while the kernel waits for its reply: the next daemon releases
# that configfs write (it fails) instead of leaving it blocked for good.
kill -STOP "$DAEMON_PID"
prepare_backstore "$CORE/user_$hba/nl_orphan"
enable_in_background "$CORE/user_$hba/nl_orphan"
writer=$WRITER
sleep 2
kill -0 "$writer" 2>/dev/null || fail "enable did not wait for the stopped daemon's reply"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=
start_daemon
wait_for 10 "the orphaned enable to be released" bash -c "! kill -0 $writer 2>/dev/null"
if wait "$writer"; then
	fail "the orphaned enable reported success, yet nobody answered it"
fi
# Netlink is not left blocked: the next device works.
backstore_create next nl_after 1048576 alloc/ || fail "enable after the reset failed"
[ "$(cat /sys/module/target_core_user/parameters/block_netlink)" = unblocked ] ||
	fail "netlink left blocked"
backstore_remove "$BACKSTORE"
backstore_remove "$CORE/user_$hba/nl_orphan"

assert_log_lacks ' CRIT '
stop_daemon TERM
