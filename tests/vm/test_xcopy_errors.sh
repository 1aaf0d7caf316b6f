#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# EXTENDED COPY errors through tcm_loop, with parameter lists built here and
# sent with sg_raw, each answer compared byte for byte with the fixed-format
# sense SPC-4 5.17.7 asks for. The list's form (a segment descriptor type the
# copy manager lacks, a CSCD index past the list) is ILLEGAL REQUEST before
# anything moves. A segment that cannot be processed (a CSCD with the NUL bit,
# of another device type, naming no device; blocks past a device's end; a
# stopped unit) is COPY ABORTED after the segments before it were copied, with
# its number in the COMMAND-SPECIFIC INFORMATION and a segment pointer to the
# byte at fault. A unit stopped or shrunk mid-copy, and a daemon that stops
# mid-copy, stop a copy between two other devices at its next chunk, with the
# residual.
source "$(dirname "$0")/../lib.sh"

requires sg_raw sg3-utils
requires sg_vpd sg3-utils
requires sg_start sg3-utils
requires dmsetup
requires losetup
requires_module sg
requires_module dm_delay
requires_module loop

config_dir=/tmp/xcopy-errors-conf
config=$config_dir/tcmu.conf
mkdir -p "$config_dir"
printf 'log_level = 4\nxcopy_group = xa xb xc\n' > "$config"
start_daemon --config "$config"

# xa receives the copies; xb, a file on a device that reads slowly (a second
# per request), and xc are the copy targets. 8 MiB from xb take 32 chunks.
size=$((16 * 1048576))
head -c "$size" /dev/urandom > /var/tmp/xcopy-errors-slow
slow_loop=$(losetup --find --show /var/tmp/xcopy-errors-slow)
cleanup_fn losetup -d "$slow_loop"
dmsetup create xcopy_errors_slow --table "0 32768 delay $slow_loop 0 1000"
cleanup_fn dmsetup remove xcopy_errors_slow
# Without udev, dmsetup may leave the /dev/mapper node to us.
dmsetup mknodes xcopy_errors_slow

backstore_create next xa "$size" alloc/
a_backstore=$BACKSTORE
loop_expose "$a_backstore"
a_disk=$DISK
a_sg=$(scsi_generic_node "$a_disk")
backstore_create next xb "$size" file//dev/mapper/xcopy_errors_slow
b_backstore=$BACKSTORE
loop_expose "$b_backstore"
b_disk=$DISK
b_sg=$(scsi_generic_node "$b_disk")
backstore_create next xc "$size" alloc/
c_backstore=$BACKSTORE
loop_expose "$c_backstore"
c_disk=$DISK
c_sg=$(scsi_generic_node "$c_disk")
wait_for 10 "the daemon to apply the xcopy_group" \
	grep -q 'EXTENDED COPY allowed between the devices of xcopy_group 1: xa xb xc' "$DAEMON_LOG"

# designator SG: the device's 16-byte NAA designator (VPD page 83h), in hex.
designator() {
	local page offset=8 type length
	page=$(sg_vpd --page=di --raw "$1" | od -An -v -tx1 | tr -d ' \n')
	while [ "$offset" -lt "${#page}" ]; do
		type=${page:offset:4}
		length=$((16#${page:offset+6:2}))
		if [ "$type" = 0103 ] && [ "$length" -eq 16 ]; then
			echo "${page:offset+8:32}"
			return
		fi
		offset=$((offset + 8 + 2 * length))
	done
	fail "no NAA designator in VPD page 83h of $1"
}
a_id=$(designator "$a_sg")
b_id=$(designator "$b_sg")
c_id=$(designator "$c_sg")

# The parameter list, in hex. cscd DESIGNATOR [BYTE1]: an identification
# CSCD descriptor (E4h) of a block device with 512-byte blocks; BYTE1 holds
# NUL, LU ID TYPE and the peripheral device type. segment SOURCE DESTINATION
# BLOCKS SOURCE_LBA DESTINATION_LBA: a block-to-block segment descriptor.
# header CSCD_BYTES SEGMENT_BYTES: no list identifier, no inline data.
cscd() {
	printf 'e4%s0000010300%s%s0000000000000200' "${2:-00}" 10 "$1"
}
segment() {
	printf '02000018%04x%04x0000%04x%016x%016x' "$@"
}
header() {
	printf '0018%04x00000000%08x00000000' "$1" "$2"
}

# xcopy SG HEX: sends EXTENDED COPY with that parameter list to SG; sets
# SENSE to the fixed-format sense data it ended with, 18 bytes in hex
# separated by spaces, or to "good".
SENSE=
xcopy() {
	local sg=$1 list=$2 length out
	length=$((${#list} / 2))
	printf "$(sed 's/../\\x&/g' <<<"$list")" > /tmp/xcopy-list
	[ "$(stat -c %s /tmp/xcopy-list)" -eq "$length" ] || fail "the list is not $length bytes"
	if out=$(sg_raw -v -s "$length" -i /tmp/xcopy-list "$sg" 83 00 00 00 00 00 00 00 00 00 \
		$(printf '%02x %02x %02x %02x' $((length >> 24)) $((length >> 16 & 255)) \
			$((length >> 8 & 255)) $((length & 255))) 00 00 2>&1); then
		SENSE=good
		return
	fi
	SENSE=$(awk '/Raw sense data/ { raw = 1; next }
		raw && /^ +[0-9a-f][0-9a-f]( +[0-9a-f][0-9a-f])*$/ { printf "%s ", $0; next }
		raw { exit }' <<<"$out" | tr -s ' ' '\n' | grep . | head -n 18 | paste -sd ' ')
	[ -n "$SENSE" ] || fail "EXTENDED COPY failed without sense data: $out"
}

# expect_sense WHAT SENSE: the last copy ended with these sense bytes.
expect_sense() {
	[ "$SENSE" = "$2" ] || fail "$1: sense '$SENSE', expected '$2'"
}

read_disk() {
	dd if="$1" bs=512 skip="$2" count="$3" iflag=direct status=none
}

random_file /tmp/pattern 64K
dd if=/tmp/pattern of="$a_disk" bs=64K count=1 oflag=direct status=none

# A good copy between the devices first: the lists say what the daemon expects.
xcopy "$a_sg" "$(header 64 28)$(cscd "$a_id")$(cscd "$c_id")$(segment 0 1 128 0 0)"
expect_sense "a copy from xa to xc" good
cmp <(read_disk "$c_disk" 0 128) /tmp/pattern || fail "the copy to xc differs"

# ---- the list's form: ILLEGAL REQUEST, and segment 0 is not copied either.
# Segment 1 of type 0Ah: UNSUPPORTED SEGMENT DESCRIPTOR TYPE CODE.
xcopy "$a_sg" "$(header 64 56)$(cscd "$a_id")$(cscd "$c_id")$(segment 0 1 128 0 1000)$(
	segment 0 1 1 0 0 | sed 's/^02/0a/')"
expect_sense "an unsupported segment type" "70 00 05 00 00 00 00 0a 00 00 00 00 26 09 00 00 00 00"
# Segment 1 names CSCD 2 of two: INVALID FIELD IN PARAMETER LIST at its byte 6
# (16 + 64 + 28 + 6 = 114 = 72h), bit 7.
xcopy "$a_sg" "$(header 64 56)$(cscd "$a_id")$(cscd "$c_id")$(segment 0 1 128 0 1000)$(
	segment 0 2 1 0 0)"
expect_sense "a CSCD index past the list" "70 00 05 00 00 00 00 0a 00 00 00 00 26 00 00 8f 00 72"
cmp <(read_disk "$c_disk" 1000 128) <(head -c 64K /dev/zero) ||
	fail "a list refused for its form copied a segment"

# ---- copy errors: COPY ABORTED in segment 1, after segment 0 was copied.
# Segment 1 uses CSCD 2, with the NUL bit: COPY TARGET DEVICE NOT REACHABLE,
# the pointer at CSCD 2's NUL bit (16 + 64 + 1 = 81 = 51h, bit 5), SD 0.
xcopy "$a_sg" "$(header 96 56)$(cscd "$a_id")$(cscd "$c_id")$(cscd "$c_id" 20)$(
	segment 0 1 128 0 1000)$(segment 0 2 1 0 0)"
expect_sense "a CSCD with the NUL bit" "70 00 0a 00 00 00 00 0a 00 00 00 01 0d 02 00 8d 00 51"
cmp <(read_disk "$c_disk" 1000 128) /tmp/pattern || fail "segment 0 before a NUL CSCD not copied"
# A NUL CSCD no segment uses is no error.
xcopy "$a_sg" "$(header 96 28)$(cscd "$a_id")$(cscd "$c_id")$(cscd "$c_id" 20)$(
	segment 0 1 128 0 2000)"
expect_sense "an unused NUL CSCD" good
# Peripheral device type 01h: INCORRECT COPY TARGET DEVICE TYPE, at byte 81 bit 4.
xcopy "$a_sg" "$(header 96 56)$(cscd "$a_id")$(cscd "$c_id")$(cscd "$c_id" 01)$(
	segment 0 1 128 0 3000)$(segment 0 2 1 0 0)"
expect_sense "a CSCD of a tape" "70 00 0a 00 00 00 00 0a 00 00 00 01 0d 03 00 8c 00 51"
# A designator no device has: UNREACHABLE COPY TARGET, at CSCD 2's designation
# descriptor (byte 84 = 54h).
xcopy "$a_sg" "$(header 96 56)$(cscd "$a_id")$(cscd "$c_id")$(cscd 600140500000000000000000000000ff)$(
	segment 0 1 128 0 4000)$(segment 0 2 1 0 0)"
expect_sense "a CSCD naming no device" "70 00 0a 00 00 00 00 0a 00 00 00 01 08 04 00 80 00 54"
# Segment 1 reaches past xc's end (32768 blocks): no additional sense, the
# pointer at the segment's DESTINATION LBA (byte 20 = 14h, bit 7), SD 1.
xcopy "$a_sg" "$(header 64 56)$(cscd "$a_id")$(cscd "$c_id")$(segment 0 1 128 0 5000)$(
	segment 0 1 8 0 32764)"
expect_sense "a segment past the end" "70 00 0a 00 00 00 00 0a 00 00 00 01 00 00 00 af 00 14"
cmp <(read_disk "$c_disk" 5000 128) /tmp/pattern || fail "segment 0 before one past the end not copied"
cmp <(read_disk "$c_disk" 32764 4) <(head -c 2K /dev/zero) || fail "a segment past the end wrote"

# A stopped unit is no copy target: COPY TARGET DEVICE NOT REACHABLE, the
# pointer at the DESTINATION CSCD DESCRIPTOR ID (byte 6, bit 7), SD 1.
sg_start --stop "$c_sg" || fail "START STOP UNIT (stop) on $c_sg failed"
xcopy "$a_sg" "$(header 64 28)$(cscd "$a_id")$(cscd "$c_id")$(segment 0 1 128 0 6000)"
expect_sense "a copy to a stopped unit" "70 00 0a 00 00 00 00 0a 00 00 00 00 0d 02 00 af 00 06"
sg_start --start "$c_sg" || fail "START STOP UNIT (start) on $c_sg failed"
cmp <(read_disk "$c_disk" 6000 128) <(head -c 64K /dev/zero) || fail "a copy to a stopped unit wrote"

# expect_stopped WHAT ASC ASCQ SKS: the copy in the background, from xb to
# xc, ended in segment 0 with COPY ABORTED, that additional sense and
# sense-key specific bytes, and a residual: part of the segment, not all.
expect_stopped() {
	local sense
	read -ra sense < /tmp/xcopy-mid.sense
	[ "${#sense[@]}" -eq 18 ] || fail "$1: sense '${sense[*]}'"
	[ "${sense[0]} ${sense[2]} ${sense[*]:7:7}" = "f0 0a 0a 00 00 00 00 $2 $3" ] ||
		fail "$1: sense '${sense[*]}', expected COPY ABORTED $2/$3 in segment 0, VALID"
	[ "${sense[*]:15:3}" = "$4" ] || fail "$1: sense-key specific '${sense[*]:15:3}', not '$4'"
	residual=$((16#${sense[3]}${sense[4]}${sense[5]}${sense[6]}))
	[ "$residual" -gt 0 ] && [ "$residual" -lt 16384 ] ||
		fail "$1: residual $residual of a 16384-block segment"
}

# copy_from_xb: starts the 8 MiB copy from xb to xc, received by xa, in
# the background (COPY_PID), and returns once it has read from xb. The copy
# occupies the ring worker of xa and xc meanwhile, so its progress is seen
# in the slow device's statistics, not by reading xc.
COPY_PID=
slow_stat=/sys/block/dm-$(dmsetup info -c --noheadings -o minor xcopy_errors_slow)/stat
slow_reads() {
	awk '{ print $1 }' "$slow_stat"
}
slow_reads_above() {
	[ "$(slow_reads)" -gt "$1" ]
}
copy_from_xb() {
	local reads
	echo 3 > /proc/sys/vm/drop_caches
	reads=$(slow_reads)
	(
		xcopy "$a_sg" "$(header 96 28)$(cscd "$a_id")$(cscd "$b_id")$(cscd "$c_id")$(
			segment 1 2 16384 0 0)"
		echo "$SENSE" > /tmp/xcopy-mid.sense
	) &
	COPY_PID=$!
	wait_for 60 "the copy to read xb" slow_reads_above "$reads"
	# A chunk takes a second, and all of them half a minute: this is mid-copy.
	sleep 2
	kill -0 "$COPY_PID" 2>/dev/null || fail "the copy from xb ended before it was stopped"
}

# ---- mid-copy: xb stopped. The copy ends at its next chunk, COPY TARGET
# DEVICE NOT REACHABLE, the pointer at the SOURCE CSCD DESCRIPTOR ID (byte 4).
copy_from_xb
sg_start --stop "$b_sg" || fail "START STOP UNIT (stop) on $b_sg failed"
wait "$COPY_PID" || fail "the copy from a unit stopped mid-copy did not report"
expect_stopped "a source stopped mid-copy" 0d 02 "af 00 04"
sg_start --start "$b_sg" || fail "START STOP UNIT (start) on $b_sg failed"

# ---- mid-copy: xc shrinks to 4 MiB. The next chunk finds the segment past
# xc's end: no additional sense, the pointer at the DESTINATION LBA (byte 20).
copy_from_xb
echo 4194304 > "$c_backstore/attrib/dev_size" || fail "shrinking xc refused"
wait "$COPY_PID" || fail "the copy to a device shrunk mid-copy did not report"
expect_stopped "a destination shrunk mid-copy" 00 00 "af 00 14"
echo "$size" > "$c_backstore/attrib/dev_size" || fail "growing xc back refused"

# ---- mid-copy: the daemon stops. Every device leaves, the one that received
# the copy too: the copy ends at its next chunk, UNREACHABLE COPY TARGET,
# with a residual: the daemon did not wait for all of it.
copy_from_xb
stop_daemon TERM
wait "$COPY_PID" || fail "the copy cut by the daemon's stop did not report"
expect_stopped "a copy when the daemon stops" 08 04 "00 00 00"
assert_log_has 'stopped$'
assert_log_lacks ' (ERROR|CRIT) '
