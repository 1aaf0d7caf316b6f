#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The README's tutorial as a newcomer types it: the daemon from run.sh, two
# backstores from user_create.sh, an iSCSI target on 127.0.0.1 from
# target_create.sh and target_setup.sh, open-iscsi login, two "LIO-ORG TCMU
# device" disks that keep what dd writes and take a 1 MiB read as one
# command, targetcli listing both as the
# README's tutorial prints them (before and after target_setup.sh), logout
# and a teardown that leaves configfs empty.
source "$(dirname "$0")/../lib.sh"
requires targetcli targetcli-fb
requires iscsiadm open-iscsi
requires iscsid open-iscsi
requires lsscsi lsscsi
requires dbus-daemon dbus
requires_module iscsi_target_mod
requires_module sd_mod

cd "$SOURCE_DIR"
missing=$(./dependency.sh --list)
[ -z "$missing" ] || fail "dependency.sh finds packages missing: $missing"

# What the tutorial installs: the D-Bus policy, tcmu.conf, an initiator name.
tutorial_system_setup
initiator=$(sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi)

# The backstores part of the README's listing that follows the line
# matching $1, as targetcli prints it here: without the alua groups the
# README leaves out, the file in the project folder, and the run of dots
# between name and value (it depends on the width) as "...".
normalized_backstores() {
	sed -E 's/^\t\t//; s/ \.+ \[/ ... [/' |
		sed -n '/^  o- backstores /,/^  o- iscsi /p' | sed '$d' |
		grep -Ev ' o- (alua|default_tg_pt_gp) ' |
		sed "s|/root/tcmu-runner/|$SOURCE_DIR/|"
}
readme_backstores() {
	sed -n "/$1/,/^###/p" README.md | grep $'^\t\t.*o- ' | normalized_backstores
}
# compare_listing README_MARKER: targetcli ls against the README's listing.
compare_listing() {
	targetcli ls > /tmp/targetcli_ls
	cat /tmp/targetcli_ls
	normalized_backstores < /tmp/targetcli_ls > /tmp/listing.printed
	readme_backstores "$1" > /tmp/listing.readme
	[ -s /tmp/listing.readme ] || fail "no listing after '$1' in README.md"
	diff -u /tmp/listing.readme /tmp/listing.printed ||
		fail "targetcli ls differs from README's listing after '$1'"
}

# run.sh: foreground daemon, from the project folder.
DAEMON_CWD=$SOURCE_DIR TCMU_BUILD_DIR=$BUILD_DIR start_daemon_command ./run.sh
assert_log_has 'handler_init'

./user_create.sh alloc test_0 1048576 | tee /tmp/out_0
grep -qx '\[INFO\] Your backstore directory: user_0/test_0' /tmp/out_0 ||
	fail "user_create.sh alloc did not print user_0/test_0"
assert_log_has 'alloc_open'
assert_log_has 'dev size: 1048576'
./user_create.sh file test_1 4096 | tee /tmp/out_1
grep -qx '\[INFO\] Your backstore directory: user_1/test_1' /tmp/out_1 ||
	fail "user_create.sh file did not print user_1/test_1"
[ -f "$SOURCE_DIR/test_1" ] || fail "file backstore's file is not $SOURCE_DIR/test_1"
cleanup_fn rm -f "$SOURCE_DIR/test_1"

# With the D-Bus service up, a refused config string comes with the reason.
if ./user_create.sh file bad 1M /nonexistent-dir/bad.img 2> /tmp/out_bad; then
	fail "user_create.sh accepted a file in a nonexistent directory"
fi
cat /tmp/out_bad
grep -q "refuses config '/nonexistent-dir/bad.img': directory '/nonexistent-dir' does not exist" /tmp/out_bad ||
	fail "user_create.sh did not give the handler's reason"
[ ! -e "$CORE/user_2" ] || fail "the refused backstore left user_2 behind"

# The alloc disk lives in the memory its config string names.
[ "$(cat "$CORE/user_0/test_0/attrib/dev_config")" = alloc/test_0 ] ||
	fail "user_create.sh gave test_0 the config '$(cat "$CORE/user_0/test_0/attrib/dev_config")'"
[ -f /run/tcmu/alloc/test_0 ] || fail "the memory of test_0 is not /run/tcmu/alloc/test_0"
compare_listing 'All created config can be seen'
# The seed tutorial's own line, whatever the width.
grep -Eq 'o- test_0 \.+ \[test_0 \(1\.0MiB\) deactivated\]$' /tmp/targetcli_ls ||
	fail "targetcli ls does not show [test_0 (1.0MiB) deactivated]"

./target_create.sh | tee /tmp/out_target
iqn=$(sed -n 's/^\[INFO\] Target \(iqn\.2017-07\.com\.test:target-[0-9][0-9]-[0-9][0-9]-[0-9][0-9]\) created$/\1/p' /tmp/out_target)
[ -n "$iqn" ] || fail "target_create.sh did not print '[INFO] Target iqn.2017-07.com.test:target-HH-MM-SS created'"
grep -qx '\[INFO\] Portal: 127.0.0.1:3260' /tmp/out_target || fail "target_create.sh did not print the portal"
./target_setup.sh "$iqn" user_0/test_0
./target_setup.sh "$iqn" user_1/test_1

# rtslib shows "[<cfgstring> (<size>) activated]": alloc's names the memory, file's the path.
compare_listing 'The result can be seen with'
grep -Eq 'o- test_0 \.+ \[test_0 \(1\.0MiB\) activated\]$' /tmp/targetcli_ls ||
	fail "targetcli ls does not show [test_0 (1.0MiB) activated]"
grep -Eq "o- test_1 \.+ \[$SOURCE_DIR/test_1 \(4\.0KiB\) activated\]" /tmp/targetcli_ls ||
	fail "targetcli ls does not show test_1 (4.0KiB) activated"
grep -Eq "$initiator .*\[Mapped LUNs: 2\]" /tmp/targetcli_ls || fail "targetcli ls does not show the ACL with 2 LUNs"

iscsi_login 2
disk_0=${ISCSI_DISKS[0]}
disk_1=${ISCSI_DISKS[1]}
[ "$(blockdev --getsize64 "$disk_0")" -eq 1048576 ] || fail "$disk_0 is not 1 MiB"
[ "$(blockdev --getsize64 "$disk_1")" -eq 4096 ] || fail "$disk_1 is not 4 KiB"

random_file /tmp/pattern_0 1M
random_file /tmp/pattern_1 4K
dd if=/tmp/pattern_0 of="$disk_0" bs=1M oflag=direct status=none
dd if=/tmp/pattern_1 of="$disk_1" bs=4K oflag=direct status=none
cmp <(dd if="$disk_0" bs=1M count=1 iflag=direct status=none) /tmp/pattern_0 || fail "$disk_0 read back differs"
cmp <(dd if="$disk_1" bs=4K count=1 iflag=direct status=none) /tmp/pattern_1 || fail "$disk_1 read back differs"
cmp "$SOURCE_DIR/test_1" /tmp/pattern_1 || fail "the file of test_1 does not hold the data"

# user_create.sh's backstores take 1 MiB commands, with room for 64 of them:
# one direct read of 1 MiB reaches the daemon as one command of 1 MiB.
for backstore in user_0/test_0 user_1/test_1; do
	[ "$(cat "$CORE/$backstore/attrib/hw_max_sectors")" -eq 2048 ] ||
		fail "$backstore has hw_max_sectors $(cat "$CORE/$backstore/attrib/hw_max_sectors"), not 2048"
	[ "$(cat "$CORE/$backstore/attrib/max_data_area_mb")" -eq 64 ] ||
		fail "$backstore has max_data_area_mb $(cat "$CORE/$backstore/attrib/max_data_area_mb"), not 64"
done
read_stats() {
	"$BUILD_DIR/tcmu-admin" --json stats user_0/test_0 |
		python3 -c 'import json, sys; r = json.load(sys.stdin)[0]["kinds"]["read"]; print(r["commands"], r["bytes"])'
}
before=$(read_stats)
dd if="$disk_0" of=/dev/null bs=1M count=1 iflag=direct status=none
after=$(read_stats)
[ "$(( ${after% *} - ${before% *} ))" -eq 1 ] && [ "$(( ${after#* } - ${before#* } ))" -eq 1048576 ] ||
	fail "a 1 MiB read did not reach the daemon as one command of 1 MiB (reads, bytes: $before -> $after)"

iscsiadm -m session -u
wait_for 20 "the disks to go" test "$(lsscsi | grep -c 'LIO-ORG *TCMU device')" -eq 0
./target_delete.sh "$iqn"
./user_delete.sh user_0/test_0
./user_delete.sh user_1/test_1
leftovers=$(find "$CORE" -maxdepth 1 -name 'user_*'; find "$CONFIGFS/iscsi" -maxdepth 1 -name 'iqn.*')
[ -z "$leftovers" ] || fail "configfs is not clean after the teardown: $leftovers"
wait_for 10 "the daemon to close every uio" test -z "$(daemon_uio_fds)"

stop_daemon INT
