#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tcmu.conf with unknown keys and bad values: the daemon starts, warns
# about each bad line naming the file and line, and keeps the defaults
# (info level: info lines appear, debug lines do not); good lines apply.
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
[ -s "$log_dir/tcmu-runner.log" ] || fail "the good log_dir line was not applied"

backstore_create next conf 1048576 alloc/
assert_log_has 'alloc_open'
kill -0 "$DAEMON_PID" || fail "daemon died"
stop_daemon TERM
