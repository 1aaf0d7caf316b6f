#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The tutorial's scripts refuse what they cannot do: a clear [ERROR] line, a
# non-zero exit status and configfs exactly as before.
source "$(dirname "$0")/../lib.sh"
requires setpriv util-linux
requires unshare util-linux
requires_module iscsi_target_mod
cd "$SOURCE_DIR"

# configfs as a list of paths, to compare before and after a refusal.
configfs_state() {
	find "$CONFIGFS" \( -path "$CONFIGFS/core/alua" -o -name statistics \) -prune -o -print | sort
}

# refused PATTERN CMD...: CMD fails with a message matching PATTERN and
# leaves configfs unchanged.
refused() {
	local pattern=$1 status=0
	shift
	{ set +x; } 2>/dev/null
	echo "---- refused? $*"
	configfs_state > /tmp/configfs.before
	"$@" > /tmp/refused.out 2>&1 || status=$?
	cat /tmp/refused.out
	[ "$status" -ne 0 ] || fail "'$*' succeeded"
	grep -Eq -- "$pattern" /tmp/refused.out || fail "'$*' did not say '$pattern'"
	configfs_state | diff /tmp/configfs.before - || fail "'$*' changed configfs"
	set -x
}

# Another user runs copies: the checkout may be in a folder only root reads.
scripts=/tmp/scripts
mkdir -p "$scripts"
cp dependency.sh run.sh user_create.sh user_delete.sh target_create.sh target_setup.sh \
	target_delete.sh "$scripts/"
chmod -R a+rX "$scripts"
as_nobody() {
	local script=$1
	shift
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$scripts/$script" "$@"
}

# --help on each, as anyone.
for script in "$scripts"/*.sh; do
	as_nobody "${script##*/}" --help | grep '^Usage: ' >/dev/null || fail "$script --help prints no usage"
done

# Before the daemon runs.
mkdir -p /tmp/unbuilt && cp run.sh /tmp/unbuilt/
refused 'not built' env -u TCMU_BUILD_DIR /tmp/unbuilt/run.sh
refused 'root' as_nobody run.sh
refused 'not running' ./user_create.sh alloc a0 1M
refused 'configfs is not mounted' unshare -m bash -c 'umount /sys/kernel/config && ./user_create.sh alloc a0 1M'

start_daemon

refused 'root' as_nobody user_create.sh alloc a0 1M
refused 'usage|Usage' ./user_create.sh alloc a0
refused "no handler for 'nosuch'" ./user_create.sh nosuch a0 1M
refused 'bad SIZE' ./user_create.sh alloc a0 0
refused 'bad SIZE' ./user_create.sh alloc a0 12Q
refused 'bad SIZE' ./user_create.sh alloc a0 1000
refused 'bad SIZE' ./user_create.sh alloc a0 -5M
refused 'bad SIZE' ./user_create.sh alloc a0 99999999999999999999G
refused 'bad SIZE' ./user_create.sh alloc a0 99999999999G
refused 'bad NAME' ./user_create.sh alloc ../a0 1M
refused 'bad NAME' ./user_create.sh alloc 'a b' 1M
refused 'refused' ./user_create.sh file f0 1M /nonexistent-dir/f0.img
[ -z "$(daemon_uio_fds)" ] || fail "a refused backstore left a uio device open"

./user_create.sh alloc a0 1M | grep -x '\[INFO\] Your backstore directory: user_0/a0' >/dev/null ||
	fail "user_create.sh alloc a0 did not make user_0/a0"
refused "'a0' is taken" ./user_create.sh alloc a0 1M
refused "'a0' is taken" ./user_create.sh file a0 1M
./user_create.sh file f1 64K /var/tmp/f1.img | grep -x '\[INFO\] Your backstore directory: user_1/f1' >/dev/null ||
	fail "user_create.sh file f1 did not make user_1/f1"
[ "$(stat -c %s /var/tmp/f1.img)" -eq 65536 ] || fail "/var/tmp/f1.img is not 64 KiB"

refused 'root' as_nobody target_create.sh iqn.2017-07.com.test:t1
refused 'bad IQN' ./target_create.sh not-an-iqn
refused 'bad IQN' ./target_create.sh iqn.2017-07.com.test:UPPER
./target_create.sh iqn.2017-07.com.test:t1 | grep -x '\[INFO\] Target iqn.2017-07.com.test:t1 created' >/dev/null ||
	fail "target_create.sh did not create iqn.2017-07.com.test:t1"
refused 'already exists' ./target_create.sh iqn.2017-07.com.test:t1

refused 'no iSCSI target' ./target_setup.sh iqn.2017-07.com.test:none user_0/a0
refused 'no backstore' ./target_setup.sh iqn.2017-07.com.test:t1 user_7/none
refused 'bad backstore' ./target_setup.sh iqn.2017-07.com.test:t1 a0
./target_setup.sh iqn.2017-07.com.test:t1 user_0/a0
refused 'already LUN 0' ./target_setup.sh iqn.2017-07.com.test:t1 user_0/a0
./target_setup.sh iqn.2017-07.com.test:t1 user_1/f1 | grep 'LUN 1 of' >/dev/null ||
	fail "the second backstore is not LUN 1"

refused 'still exported' ./user_delete.sh user_0/a0
refused 'no backstore' ./user_delete.sh user_9/a0
refused 'bad backstore' ./user_delete.sh a0
refused 'no iSCSI target' ./target_delete.sh iqn.2017-07.com.test:none
refused 'root' as_nobody target_delete.sh iqn.2017-07.com.test:t1

./target_delete.sh iqn.2017-07.com.test:t1
./user_delete.sh user_0/a0
./user_delete.sh user_1/f1
leftovers=$(find "$CORE" -maxdepth 1 -name 'user_*'; find "$CONFIGFS/iscsi" -maxdepth 1 -name 'iqn.*')
[ -z "$leftovers" ] || fail "configfs is not clean: $leftovers"
wait_for 10 "the daemon to close every uio" test -z "$(daemon_uio_fds)"
stop_daemon TERM
