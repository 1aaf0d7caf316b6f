#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tcmu.conf with unknown keys and bad values: the daemon starts, warns
# about each bad line naming the file and line, and keeps the defaults
# (info level: info lines appear, debug lines do not); good lines apply.
# ring_poll_us: bad values are refused, a good one applies at start and
# when the file changes, and I/O is served with polling off and with a
# long window (a worker that polls must still take control requests).
source "$(dirname "$0")/../lib.sh"

config=/tmp/tcmu.conf
log_dir=/tmp/tcmu-log
mkdir -p "$log_dir"
cat > "$config" <<'CONF'
# comment
frobnicate = 1
log_level = 9
log_level = loud
log_dir = relative/dir
this line has no equals sign
log_dir = /tmp/tcmu-log
ring_poll_us = -5
ring_poll_us = 100001
ring_poll_us = 50000
CONF

start_daemon --config "$config"
assert_log_has "$config:2: .*frobnicate"
assert_log_has "$config:3: .*log_level.*'9'"
assert_log_has "$config:4: .*log_level.*'loud'"
assert_log_has "$config:5: .*log_dir.*'relative/dir'"
assert_log_has "$config:6: "
assert_log_lacks "$config:7: "
assert_log_has ' INFO '
assert_log_lacks ' DEBUG '
assert_log_has "$config:8: .*ring_poll_us.*'-5'"
assert_log_has "$config:9: .*ring_poll_us.*'100001'"
assert_log_lacks "$config:10: "
[ -s "$log_dir/tcmu-runner.log" ] || fail "the good log_dir line was not applied"

backstore_create next conf 8388608 alloc/
assert_log_has 'alloc_open'
loop_expose "$BACKSTORE"
poll_io_round() {
	head -c 4194304 /dev/urandom > /tmp/pattern.$1
	dd if=/tmp/pattern.$1 of="$DISK" bs=4096 oflag=direct status=none ||
		fail "write with ring_poll_us=$1"
	cmp -n 4194304 /tmp/pattern.$1 "$DISK" || fail "read back with ring_poll_us=$1"
}
poll_io_round 50000
sed -i 's/^ring_poll_us = 50000$/ring_poll_us = 0/' "$config"
wait_for 20 "polling window 50000 -> 0" grep -q 'ring polling window 50000 -> 0 us' "$DAEMON_LOG" ||
	fail "a changed ring_poll_us was not applied"
poll_io_round 0
kill -0 "$DAEMON_PID" || fail "daemon died"
stop_daemon TERM
