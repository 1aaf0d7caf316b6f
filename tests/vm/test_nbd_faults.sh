#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The nbd handler when the server misbehaves, on tcm_loop disks: nbdkit's
# error filter injects EIO, ENOSPC and EPERM (only while a trigger file
# exists) and the initiator gets MEDIUM ERROR, SPACE ALLOCATION FAILED WRITE
# PROTECT and WRITE PROTECTED, then success again; a read-only export
# refuses writes with DATA PROTECT; the delay filter shows many commands in
# flight at once; an exec: server killed under fio is restarted and fio
# verifies without an error; a TCP server killed and started again later is
# reconnected to and a read that waited meanwhile completes with the data; a
# server stopped (SIGSTOP) past the ;timeout= option has its connection reset
# and the read completes once it runs again. The read-only export is a
# write-protected disk: WP in MODE SENSE, read-only for the kernel.
# Under a loaded CI machine the fio runs alone take minutes in TCG.
# vm-run: -t 900
source "$(dirname "$0")/../lib.sh"
requires nbdkit nbdkit
requires sg_raw sg3-utils
requires fio fio
requires sg_modes sg3-utils
requires blockdev util-linux
requires_module sg

start_daemon

# sense_of DISK CDB...: the sense sg_raw reports for a one-block command.
sense_of() {
	local disk=$1
	shift
	sg_raw -s 512 -i /tmp/block "$disk" "$@" 2>&1 || true
}
head -c 512 /dev/urandom > /tmp/block
write_10=(2a 00 00 00 00 08 00 00 01 00)
read_10=(28 00 00 00 00 08 00 00 01 00)

# expect_write_sense DISK KEY ASC: WRITE(10) fails with that sense.
expect_write_sense() {
	local out
	out=$(sense_of "$1" "${write_10[@]}")
	echo "$out"
	grep -i "Sense key: $2" <<<"$out" >/dev/null && grep -i "$3" <<<"$out" >/dev/null ||
		fail "WRITE(10) on $1 did not fail with $2 / $3"
}

# Server errors, each only while its trigger file exists.
for case in "EIO:Medium Error:Write error" \
	"ENOSPC:Data Protect:Space allocation failed write protect" \
	"EPERM:Data Protect:Write protected"; do
	IFS=: read -r error key asc <<<"$case"
	trigger=/tmp/inject-$error
	rm -f "$trigger"
	# '%' is written %25: the handler percent-decodes its config string.
	backstore_create next "err_$error" 16777216 \
		"nbd/exec:nbdkit --filter=error memory 16M error=$error error-rate=100%25 error-file=$trigger"
	loop_expose "$BACKSTORE"
	sg_raw -s 512 -i /tmp/block "$DISK" "${write_10[@]}" || fail "WRITE(10) without injected errors failed"
	touch "$trigger"
	expect_write_sense "$DISK" "$key" "$asc"
	if [ "$error" = EIO ]; then
		out=$(sg_raw -r 512 "$DISK" "${read_10[@]}" 2>&1 || true)
		echo "$out"
		grep -i "Sense key: Medium Error" <<<"$out" >/dev/null &&
			grep -i "Unrecovered read error" <<<"$out" >/dev/null ||
			fail "READ(10) with EIO injected did not fail with MEDIUM ERROR, UNRECOVERED READ ERROR"
	fi
	rm -f "$trigger"
	sg_raw -s 512 -i /tmp/block "$DISK" "${write_10[@]}" || fail "WRITE(10) after the errors stopped failed"
	loop_unexpose "$DISK"
	backstore_remove "$BACKSTORE"
done

backstore_create next ro 16777216 "nbd/exec:nbdkit -r memory 16M"
loop_expose "$BACKSTORE"
# The kernel opens a write-protected disk read-only: the write goes through its sg node.
[ "$(blockdev --getro "$DISK")" = 1 ] || fail "the kernel does not see the disk as read-only"
sg=$(scsi_generic_node "$DISK")
expect_write_sense "$sg" "Data Protect" "Write protected"
sg_raw -R -r 512 "$DISK" "${read_10[@]}" >/dev/null || fail "READ(10) of the read-only export failed"
out=$(sg_modes "$DISK" 2>&1)
grep -q "WP=1" <<<"$out" || fail "MODE SENSE of the read-only export has no WP bit: $out"
assert_log_has "read-only: writes fail with DATA PROTECT"
loop_unexpose "$DISK"
backstore_remove "$BACKSTORE"

# 64 writes that the server holds 200 ms each: one at a time they take 12.8 s.
backstore_create next slow 67108864 "nbd/exec:nbdkit --filter=delay memory 64M wdelay=200ms"
loop_expose "$BACKSTORE"
fio --name=inflight --filename="$DISK" --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
	--iodepth=16 --number_ios=64 --size=64M --output="$OUT_DIR/fio-delay.txt" ||
	fail "fio on the delayed server failed"
cat "$OUT_DIR/fio-delay.txt"
# fio's own run time, without its start-up under emulation.
elapsed_ms=$(sed -n 's/.*io=.*, run=\([0-9]*\)-.*/\1/p' "$OUT_DIR/fio-delay.txt")
[ -n "$elapsed_ms" ] || fail "no run time in fio's output"
[ "$elapsed_ms" -lt 6400 ] ||
	fail "64 writes of 200 ms took ${elapsed_ms} ms: commands are not in flight together"
loop_unexpose "$DISK"
backstore_remove "$BACKSTORE"

# An exec: server killed while fio writes and verifies.
image=/var/tmp/tcmu-nbd-kill.img
pid_file=/tmp/nbdkit-kill.pid
rm -f "$image" "$pid_file"
truncate -s 64M "$image"
cleanup_fn rm -f "$image"
backstore_create next killed 67108864 "nbd/exec:nbdkit -P $pid_file file $image"
loop_expose "$BACKSTORE"
wait_for 10 "nbdkit's pid file" test -s "$pid_file"
fio --name=kill --filename="$DISK" --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
	--iodepth=8 --size=16M --verify=crc32c --do_verify=1 --verify_fatal=1 \
	--output="$OUT_DIR/fio-kill.txt" &
fio_pid=$!
sleep 5
old_pid=$(cat "$pid_file")
rm -f "$pid_file"
kill -KILL "$old_pid"
timeout 300 tail --pid="$fio_pid" -f /dev/null || fail "fio hung after the server was killed"
wait "$fio_pid" || { cat "$OUT_DIR/fio-kill.txt"; fail "fio failed after the server was killed"; }
cat "$OUT_DIR/fio-kill.txt"
grep 'err= 0' "$OUT_DIR/fio-kill.txt" >/dev/null || fail "fio reported errors after the server was killed"
wait_for 10 "a new nbdkit" test -s "$pid_file"
[ "$(cat "$pid_file")" != "$old_pid" ] || fail "nbdkit was not restarted"
[ "$(grep -c "state: reconnecting" "$DAEMON_LOG")" -eq 1 ] || fail "the loss was not logged exactly once"
[ "$(grep -c "reconnected to the server started by" "$DAEMON_LOG")" -eq 1 ] ||
	fail "the recovery was not logged exactly once"
loop_unexpose "$DISK"
backstore_remove "$BACKSTORE"

# A TCP server away for a few seconds: a read waits (BUSY, retried) and then gets its data.
tcp_image=/var/tmp/tcmu-nbd-tcp.img
tcp_pid=/tmp/nbdkit-tcp.pid
head -c 16M /dev/urandom > "$tcp_image"
cleanup_fn rm -f "$tcp_image"
nbdkit -p 10810 -P "$tcp_pid" file "$tcp_image"
wait_for 10 "the TCP server" test -s "$tcp_pid"
backstore_create next tcp 16777216 "nbd/nbd://127.0.0.1:10810/"
loop_expose "$BACKSTORE"
cmp <(dd if="$DISK" bs=1M iflag=direct status=none) "$tcp_image" || fail "the TCP export reads back wrong"
kill -KILL "$(cat "$tcp_pid")"
rm -f "$tcp_pid"
( sleep 4; nbdkit -p 10810 -P "$tcp_pid" file "$tcp_image" ) &
restart_pid=$!
timeout 120 dd if="$DISK" of=/tmp/tcp_read bs=1M iflag=direct status=none ||
	fail "the read while the TCP server was away failed or hung"
wait "$restart_pid"
cleanup_fn bash -c 'kill "$(cat '"$tcp_pid"')"'
cmp /tmp/tcp_read "$tcp_image" || fail "the read after reconnection got wrong data"
assert_log_has "reconnected to the NBD server at 'nbd://127.0.0.1:10810/'"
loop_unexpose "$DISK"
backstore_remove "$BACKSTORE"

# A server that stops answering: after ;timeout=3 its commands get BUSY (the
# initiator retries) and the connection is reset; once it runs again the read completes.
stop_image=/var/tmp/tcmu-nbd-stop.img
stop_pid=/tmp/nbdkit-stop.pid
head -c 16M /dev/urandom > "$stop_image"
cleanup_fn rm -f "$stop_image"
nbdkit -p 10811 -P "$stop_pid" file "$stop_image"
wait_for 10 "the TCP server" test -s "$stop_pid"
cleanup_fn bash -c 'kill -CONT "$(cat '"$stop_pid"')"; kill "$(cat '"$stop_pid"')"'
backstore_create next stopped 16777216 "nbd/nbd://127.0.0.1:10811/;timeout=3"
loop_expose "$BACKSTORE"
kill -STOP "$(cat "$stop_pid")"
( sleep 8; kill -CONT "$(cat "$stop_pid")" ) &
cont_pid=$!
timeout 120 dd if="$DISK" of=/tmp/stop_read bs=1M iflag=direct status=none ||
	fail "the read while the server was stopped failed or hung"
wait "$cont_pid"
cmp /tmp/stop_read "$stop_image" || fail "the read after the server ran again got wrong data"
assert_log_has "no answer to a command for 3 s"
assert_log_has "reconnected to the NBD server at 'nbd://127.0.0.1:10811/'"
loop_unexpose "$DISK"
backstore_remove "$BACKSTORE"

wait_for 10 "the daemon to close every uio" test -z "$(daemon_uio_fds)"
stop_daemon TERM
