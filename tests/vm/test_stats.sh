#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Statistics on a real kernel, read as an operator reads them: tcmu-admin
# over D-Bus and the Prometheus textfile. Commands sent one by one with
# sg_raw are counted exactly (kind, bytes, sense key of the failures);
# fio's bytes match the daemon's to the byte and its I/O count within the
# block layer's merging; a full file system shows as DATA PROTECT and a
# deleted file as MEDIUM ERROR, with the device's state failed; the
# JSON validates against docs/tcmu-admin.schema.json; top's rates parse
# and see the load; promtool accepts the metrics; log-level is root's;
# and without a daemon every command says so.
source "${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
source "$SOURCE_DIR/tests/vm/dbus_common.sh"

requires sg_raw sg3-utils
requires fio fio
requires promtool prometheus
requires python3 python3
python3 -c 'import jsonschema' || fail "python3-jsonschema is missing; run ./dependency.sh"

ADMIN=$BUILD_DIR/tcmu-admin
SCHEMA=$SOURCE_DIR/docs/tcmu-admin.schema.json
[ -x "$ADMIN" ] || fail "$ADMIN is not built"
PROM=/var/lib/tcmu-test/tcmu.prom
mkdir -p "$(dirname "$PROM")"
cat > /tmp/tcmu.conf <<EOF
metrics_textfile = $PROM
EOF

system_bus_start
start_daemon_on_bus --config /tmp/tcmu.conf

backstore_create next a1 $((64 * MIB)) alloc/ || fail "a1 refused"
a1_dir=$BACKSTORE
a1=${a1_dir#"$CORE"/}
mkdir -p /mnt/small
mount -t tmpfs -o size=2M tmpfs /mnt/small
cleanup_fn umount /mnt/small
backstore_create next f1 $((8 * MIB)) file//mnt/small/f1.img || fail "f1 refused"
f1_dir=$BACKSTORE
f1=${f1_dir#"$CORE"/}
loop_expose "$a1_dir"
a1_disk=$DISK
loop_expose "$f1_dir"
f1_disk=$DISK

# stat_of DEVICE EXPRESSION: one number from `tcmu-admin --json stats DEVICE`.
stat_of() {
	"$ADMIN" --json stats "$1" |
		python3 -c "import json, sys; d = json.load(sys.stdin)[0]; print($2)"
}

# ---- list and status, also for a user who is not root
"$ADMIN" list | tee /tmp/list
grep -E "^$a1 +alloc +64\.0 MiB +open " /tmp/list >/dev/null || fail "list does not show $a1"
grep -E "^$f1 +file +8\.0 MiB +open +/mnt/small/f1.img$" /tmp/list >/dev/null ||
	fail "list does not show $f1 with its file"
setpriv --reuid=65534 --regid=65534 --clear-groups "$ADMIN" --json list > /tmp/list.json ||
	fail "tcmu-admin list failed for an unprivileged user"
"$SOURCE_DIR/tests/vm/check_json.py" "$SCHEMA" list < /tmp/list.json || fail "list --json"
"$ADMIN" --json status > /tmp/status.json
"$SOURCE_DIR/tests/vm/check_json.py" "$SCHEMA" status < /tmp/status.json || fail "status --json"
python3 - /tmp/status.json <<'EOF' || fail "status: wrong devices or handlers"
import json, sys
status = json.load(open(sys.argv[1]))
assert status["devices"] == 2, status
assert "alloc" in status["handlers"] and "file" in status["handlers"], status
EOF

# ---- exact counts: sg_raw sends one command per call
sleep 1	# let the initiator's own scan commands finish before the baseline
reads0=$(stat_of "$a1" 'd["kinds"]["read"]["commands"]')
read_bytes0=$(stat_of "$a1" 'd["kinds"]["read"]["bytes"]')
writes0=$(stat_of "$a1" 'd["kinds"]["write"]["commands"]')
write_bytes0=$(stat_of "$a1" 'd["kinds"]["write"]["bytes"]')
flushes0=$(stat_of "$a1" 'd["kinds"]["flush"]["commands"]')
illegal0=$(stat_of "$a1" 'd["errors"]["illegal_request"]')
random_file /tmp/block 4096
for i in $(seq 10); do
	sg_raw -r 4096 "$a1_disk" 28 00 00 00 00 $((i * 8)) 00 00 08 00 >/dev/null 2>&1 ||
		fail "READ(10) $i failed"
done
for i in $(seq 5); do
	sg_raw -s 4096 -i /tmp/block "$a1_disk" 2a 00 00 00 01 $((i * 8)) 00 00 08 00 >/dev/null 2>&1 ||
		fail "WRITE(10) $i failed"
done
for i in $(seq 3); do
	sg_raw "$a1_disk" 35 00 00 00 00 00 00 00 00 00 >/dev/null 2>&1 || fail "SYNCHRONIZE CACHE failed"
done
# Two reads past the end (64 MiB = 131072 blocks): ILLEGAL REQUEST each.
for i in 1 2; do
	if sg_raw -r 4096 "$a1_disk" 28 00 00 10 00 00 00 00 08 00 >/dev/null 2>&1; then
		fail "a READ past the end succeeded"
	fi
done
[ "$(stat_of "$a1" 'd["kinds"]["read"]["commands"]')" -eq $((reads0 + 12)) ] ||
	fail "reads: expected $((reads0 + 12))"
[ "$(stat_of "$a1" 'd["kinds"]["read"]["bytes"]')" -eq $((read_bytes0 + 12 * 4096)) ] ||
	fail "read bytes: expected $((read_bytes0 + 12 * 4096))"
[ "$(stat_of "$a1" 'd["kinds"]["write"]["commands"]')" -eq $((writes0 + 5)) ] ||
	fail "writes: expected $((writes0 + 5))"
[ "$(stat_of "$a1" 'd["kinds"]["write"]["bytes"]')" -eq $((write_bytes0 + 5 * 4096)) ] ||
	fail "write bytes: expected $((write_bytes0 + 5 * 4096))"
[ "$(stat_of "$a1" 'd["kinds"]["flush"]["commands"]')" -eq $((flushes0 + 3)) ] ||
	fail "flushes: expected $((flushes0 + 3))"
[ "$(stat_of "$a1" 'd["errors"]["illegal_request"]')" -eq $((illegal0 + 2)) ] ||
	fail "ILLEGAL REQUEST errors: expected $((illegal0 + 2))"
[ "$(stat_of "$a1" 'd["last_error_time_us"] > 0')" = True ] || fail "no time of the last error"
[ "$(stat_of "$a1" '0 < d["kinds"]["read"]["latency_p50_seconds"] < 10')" = True ] ||
	fail "read p50 latency is not between 0 and 10 s"

# ---- fio: bytes exact, I/O count within merging, top sees the load
reads0=$(stat_of "$a1" 'd["kinds"]["read"]["commands"]')
read_bytes0=$(stat_of "$a1" 'd["kinds"]["read"]["bytes"]')
writes0=$(stat_of "$a1" 'd["kinds"]["write"]["commands"]')
write_bytes0=$(stat_of "$a1" 'd["kinds"]["write"]["bytes"]')
fio --name=mix --filename="$a1_disk" --direct=1 --ioengine=libaio --iodepth=8 \
	--rw=randrw --rwmixread=70 --bs=4k --size=32M --time_based --runtime=12 \
	--output-format=json --output=/tmp/fio.json &
fio_pid=$!
# fio lays out its job first (seconds under TCG); top samples once I/O flows.
fio_reading() { [ "$(stat_of "$a1" 'd["kinds"]["read"]["commands"]')" -gt "$reads0" ]; }
wait_for 60 "fio's first reads" fio_reading
"$ADMIN" top -i 1.5 -n 2 > /tmp/top.txt || fail "tcmu-admin top failed"
wait "$fio_pid" || fail "fio failed"
cat /tmp/top.txt
python3 - /tmp/top.txt "$a1" <<'EOF' || fail "top's output does not parse or shows no load"
import sys
lines = [line.split() for line in open(sys.argv[1]) if line.strip()]
headers = [line for line in lines if line[0] == "DEVICE"]
assert len(headers) == 2, "expected two samples, got %d" % len(headers)
assert headers[0] == ["DEVICE", "HANDLER", "R/S", "W/S", "RMB/S", "WMB/S", "P99_MS",
                      "INFLIGHT", "STATE"], headers[0]
rows = [line for line in lines if line[0] == sys.argv[2]]
assert len(rows) == 2, rows
for row in rows:
    reads, writes, read_mb, write_mb, p99 = map(float, row[2:7])
    int(row[7])
assert max(float(row[2]) for row in rows) > 0, "no reads per second seen under fio"
EOF
python3 - /tmp/fio.json "$reads0" "$read_bytes0" "$writes0" "$write_bytes0" \
	"$($ADMIN --json stats "$a1")" <<'EOF' || fail "fio's counts and the daemon's disagree"
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
reads0, read_bytes0, writes0, write_bytes0 = map(int, sys.argv[2:6])
kinds = json.loads(sys.argv[6])[0]["kinds"]
reads = kinds["read"]["commands"] - reads0
writes = kinds["write"]["commands"] - writes0
read_bytes = kinds["read"]["bytes"] - read_bytes0
write_bytes = kinds["write"]["bytes"] - write_bytes0
print("fio: %d reads %d bytes, %d writes %d bytes; daemon: %d reads %d bytes, %d writes %d bytes"
      % (job["read"]["total_ios"], job["read"]["io_bytes"], job["write"]["total_ios"],
         job["write"]["io_bytes"], reads, read_bytes, writes, write_bytes))
assert read_bytes == job["read"]["io_bytes"]
assert write_bytes == job["write"]["io_bytes"]
# Merged requests are fewer commands, never more.
assert 0.5 * job["read"]["total_ios"] <= reads <= job["read"]["total_ios"]
assert 0.5 * job["write"]["total_ios"] <= writes <= job["write"]["total_ios"]
EOF

# ---- a full file system: writes fail with DATA PROTECT (SPACE ALLOCATION FAILED)
if dd if=/dev/urandom of="$f1_disk" bs=1M count=4 oflag=direct status=none 2>/dev/null; then
	fail "writing 4 MiB into a 2 MiB file system succeeded"
fi
[ "$(stat_of "$f1" 'd["errors"]["data_protect"]')" -ge 1 ] ||
	fail "the full file system's failed writes are not counted as data_protect"
"$ADMIN" stats "$f1" | tee /tmp/stats.txt
grep -E "errors:.* data_protect=[1-9]" /tmp/stats.txt >/dev/null ||
	fail "stats does not show the data_protect errors"

# ---- a deleted file: the state says so, writes fail as MEDIUM ERROR
backstore_create next f2 $((8 * MIB)) file//var/tmp/stats-deleted.img || fail "f2 refused"
f2=${BACKSTORE#"$CORE"/}
loop_expose "$BACKSTORE"
f2_disk=$DISK
dd if=/dev/urandom of="$f2_disk" bs=4096 count=1 oflag=direct status=none || fail "writing f2 failed"
medium0=$(stat_of "$f2" 'd["errors"]["medium_error"]')
rm /var/tmp/stats-deleted.img
f2_failed() { [ "$(stat_of "$f2" 'd["state"] + "/" + d["state_reason"]')" = "failed/backing file deleted" ]; }
wait_for 10 "f2's state to say its file was deleted" f2_failed
"$ADMIN" list | grep -E "^$f2 +file +8\.0 MiB +failed " >/dev/null || fail "list does not show $f2 failed"
for i in 1 2 3; do
	if sg_raw -s 4096 -i /tmp/block "$f2_disk" 2a 00 00 00 00 $((i * 8)) 00 00 08 00 >/dev/null 2>&1; then
		fail "a WRITE(10) to a deleted file succeeded"
	fi
done
[ "$(stat_of "$f2" 'd["errors"]["medium_error"]')" -eq $((medium0 + 3)) ] ||
	fail "the writes to a deleted file are not counted as 3 medium_error"
[ "$(stat_of "$f2" 'd["errors"]["hardware_error"] + d["errors"]["data_protect"]')" -eq 0 ] ||
	fail "the writes to a deleted file are counted under another sense key"
"$ADMIN" --json stats > /tmp/stats.json
"$SOURCE_DIR/tests/vm/check_json.py" "$SCHEMA" stats_list < /tmp/stats.json || fail "stats --json"
if "$ADMIN" stats no_such_device 2>/tmp/err; then
	fail "stats of an unknown device succeeded"
fi
grep "no device 'no_such_device'" /tmp/err >/dev/null || fail "no clear error for an unknown device"

# ---- Prometheus: the textfile and the D-Bus property both pass promtool
"$ADMIN" metrics > /tmp/metrics.prom
promtool check metrics < /tmp/metrics.prom || fail "promtool rejects tcmu-admin metrics"
grep -E "^tcmu_commands_total\{device=\"$a1\",handler=\"alloc\",kind=\"read\"\} [1-9]" \
	/tmp/metrics.prom >/dev/null || fail "no read count for $a1 in the metrics"
grep -E "^tcmu_errors_total\{device=\"$f1\",handler=\"file\",sense_key=\"data_protect\"\} [1-9]" \
	/tmp/metrics.prom >/dev/null || fail "no data_protect count for $f1 in the metrics"
wait_for 15 "the textfile $PROM" test -s "$PROM"
promtool check metrics < "$PROM" || fail "promtool rejects the textfile"
before=$(grep -E "^tcmu_commands_total\{device=\"$a1\",handler=\"alloc\",kind=\"read\"\}" "$PROM")
sg_raw -r 4096 "$a1_disk" 28 00 00 00 00 00 00 00 08 00 >/dev/null 2>&1 || fail "READ(10) failed"
wait_for 15 "the textfile to count the new read" \
	sh -c "! grep -Fx '$before' '$PROM' >/dev/null"

# ---- log-level: root changes it, anyone else is refused
"$ADMIN" log-level 4 || fail "log-level 4 failed as root"
[ "$("$ADMIN" --json status | python3 -c 'import json, sys; print(json.load(sys.stdin)["log_level"])')" = 4 ] ||
	fail "the log level did not change to 4"
assert_log_has "log level 3 -> 4 \\(D-Bus SetLogLevel\\)"
if setpriv --reuid=65534 --regid=65534 --clear-groups "$ADMIN" log-level 0 2>/tmp/err; then
	fail "log-level succeeded for an unprivileged user"
fi
cat /tmp/err
if "$ADMIN" log-level 9 2>/tmp/err; then fail "log-level 9 accepted"; fi
grep "0 to 5" /tmp/err >/dev/null || fail "log-level 9: no clear error"

# ---- usage errors and a daemon that is gone
set +e
"$ADMIN" frobnicate 2>/dev/null; status=$?
set -e
[ "$status" -eq 2 ] || fail "an unknown command exited with $status, not 2"
"$ADMIN" --help | grep -E "^  top " >/dev/null || fail "--help does not describe top"
stop_daemon
set +e
"$ADMIN" list 2>/tmp/err; status=$?
set -e
[ "$status" -eq 1 ] || fail "list without a daemon exited with $status, not 1"
grep "tcmu-runner is not running" /tmp/err >/dev/null || fail "no clear error without a daemon"
[ ! -e "$PROM" ] || fail "the textfile was left behind by a stopped daemon"
echo "PASS: $TEST_NAME"
