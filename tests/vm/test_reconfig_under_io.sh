#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# RECONFIG while fio verifies on a file backstore: configfs writes to
# attrib/emulate_write_cache, attrib/dev_size and attrib/dev_config reach
# the daemon as RECONFIG events. Each is applied (the attribute, the
# backing file and the initiator's view change together) or refused (the
# write fails and nothing changes); fio sees no error either way.
source "$(dirname "$0")/../lib.sh"
requires fio

start_daemon
image=/var/tmp/reconfig.img
backstore_create next reconfig 16777216 "file/$image"
backstore=$BACKSTORE
loop_expose "$backstore"
disk=$DISK
sysfs_disk=/sys/block/${disk#/dev/}
sectors_are() { [ "$(cat "$sysfs_disk/size")" -eq "$1" ]; }

fio --name=reconfig --filename="$disk" --ioengine=libaio --direct=1 --rw=randrw --bs=4k \
	--iodepth=8 --size=8M --rate=512k,512k --verify=crc32c --verify_fatal=1 --do_verify=1 \
	--output="$OUT_DIR/fio-reconfig.txt" & fio_pid=$!
cleanup_fn kill "$fio_pid"
sleep 2

for write_cache in 1 0 1 0 1; do
	echo "$write_cache" > "$backstore/attrib/emulate_write_cache" ||
		fail "write cache $write_cache refused"
	[ "$(cat "$backstore/attrib/emulate_write_cache")" = "$write_cache" ] ||
		fail "emulate_write_cache does not read back $write_cache"
done
assert_log_has 'write cache on'
assert_log_has 'write cache off'

# Growing: the file grows and the initiator sees the new capacity.
echo 33554432 > "$backstore/attrib/dev_size" || fail "growing to 32 MiB refused"
[ "$(cat "$backstore/attrib/dev_size")" -eq 33554432 ] || fail "dev_size does not read back 32 MiB"
[ "$(stat -c %s "$image")" -ge 33554432 ] || fail "$image did not grow"
echo 1 > "$sysfs_disk/device/rescan"
wait_for 10 "$disk to show 32 MiB" sectors_are 65536

# Shrinking under fio's feet (it uses the first 8 MiB): applied or refused, never half.
if echo 25165824 > "$backstore/attrib/dev_size"; then
	[ "$(cat "$backstore/attrib/dev_size")" -eq 25165824 ] ||
		fail "shrink accepted but dev_size reads $(cat "$backstore/attrib/dev_size")"
	echo 1 > "$sysfs_disk/device/rescan"
	wait_for 10 "$disk to show 24 MiB" sectors_are 49152
else
	[ "$(cat "$backstore/attrib/dev_size")" -eq 33554432 ] || fail "shrink refused but dev_size changed"
fi

# Config strings the handler cannot use are refused and change nothing.
for bad in "file//nonexistent-directory/disk.img" "file/" "file//var/tmp/"; do
	if echo -n "$bad" > "$backstore/attrib/dev_config"; then
		fail "config '$bad' was accepted"
	fi
	[ "$(cat "$backstore/attrib/dev_config")" = "file/$image" ] ||
		fail "refused config '$bad' left dev_config at '$(cat "$backstore/attrib/dev_config")'"
done
kill -0 "$DAEMON_PID" || fail "daemon died"

status=0
wait "$fio_pid" || status=$?
[ "$status" -eq 0 ] || { cat "$OUT_DIR/fio-reconfig.txt"; fail "fio failed ($status) across RECONFIG"; }
grep -q 'err= 0' "$OUT_DIR/fio-reconfig.txt" || fail "fio reported errors across RECONFIG"

# Switching to another file: the initiator then reads that file's data.
other=/var/tmp/other.img
random_file "$other" 32M
if echo -n "file/$other" > "$backstore/attrib/dev_config"; then
	[ "$(cat "$backstore/attrib/dev_config")" = "file/$other" ] || fail "dev_config not updated"
	cmp <(dd if="$disk" bs=1M count=4 iflag=direct status=none) <(head -c 4M "$other") ||
		fail "after switching to $other the disk does not read its data"
else
	[ "$(cat "$backstore/attrib/dev_config")" = "file/$image" ] || fail "refused switch changed dev_config"
	cmp <(dd if="$disk" bs=1M count=4 iflag=direct status=none) <(head -c 4M "$image") ||
		fail "after a refused switch the disk no longer reads $image"
fi

assert_log_lacks ' CRIT '
stop_daemon TERM
