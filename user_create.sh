#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# user_create.sh: creates a user:<subtype> backstore served by the running
# tcmu-runner, under the next free user_N HBA in configfs.
set -euo pipefail

CORE=/sys/kernel/config/target/core
ENABLE_TIMEOUT=60
# Commands of up to 1 MiB: the kernel gives user backstores 128 blocks
# (64 KiB) otherwise. The data area (the kernel's default cap is 1024 MiB
# per device, against 2048 MiB for all of them) holds 64 such commands:
# twice open-iscsi's default queue depth of 32, so a device never waits for
# data space, and 32 busy devices fit under the global cap.
MAX_SECTORS=2048
DATA_AREA_MB=64

usage() {
	cat <<'EOF'
Usage: ./user_create.sh SUBTYPE NAME SIZE [CFGSTRING]
Creates the backstore NAME of handler SUBTYPE (alloc, file, ...) with SIZE
bytes under the next free user_N HBA in configfs, has the running
tcmu-runner open it, and prints its directory:
  [INFO] Your backstore directory: user_N/NAME
SIZE takes the suffixes K, M and G (times 1024, 1024^2, 1024^3) and must be a
multiple of 512. The backstore takes commands of up to 1 MiB
(hw_max_sectors=2048 blocks of 512 bytes) and has a data area of 64 MiB
(max_data_area_mb=64), room for 64 such commands in flight.
CFGSTRING is the handler's configuration string. Without one, alloc keeps
the disk in the memory named NAME (/run/tcmu/alloc/NAME), and file in a
file named NAME in tcmu-runner's working folder (the project folder with
./run.sh); targetcli ls shows the string beside the backstore.
Run as root, with tcmu-runner running. When tcmu-runner refuses the
device, nothing is left behind.
Examples:
  ./user_create.sh alloc test_0 1048576
  ./user_create.sh file test_1 4096
  ./user_create.sh file disk1 1G /var/tmp/disk1.img
  ./user_create.sh nbd vm0 10G "exec:qemu-nbd -f qcow2 /var/lib/images/vm0.qcow2"
  ./user_create.sh nbd mem0 1G "exec:nbdkit memory 1G"
For nbd, CFGSTRING is written percent-encoded ('%', ':', ',' and spaces as
%25, %3A, %2C and %20), the form targetcli keeps intact; the handler
decodes it.
EOF
}

die() {
	echo "[ERROR] $*" >&2
	exit 1
}

# The pid of the running tcmu-runner, or nothing.
daemon_pid() {
	local comm name
	for comm in /proc/[0-9]*/comm; do
		# read, not cat: no process per entry of /proc.
		read -r name < "$comm" 2>/dev/null || continue
		if [ "$name" = tcmu-runner ]; then
			comm=${comm#/proc/}
			echo "${comm%/comm}"
			return 0
		fi
	done
}

# Bytes from "<digits>[KMG]"; fails on anything else or past 2^62.
parse_size() {
	local number unit multiplier=1
	[[ $1 =~ ^([0-9]{1,19})([KkMmGg]?)$ ]] || return 1
	number=${BASH_REMATCH[1]}
	unit=${BASH_REMATCH[2]}
	number=${number#"${number%%[!0]*}"}
	number=${number:-0}
	[ ${#number} -le 18 ] || return 1
	case $unit in
	K | k) multiplier=1024 ;;
	M | m) multiplier=$((1024 * 1024)) ;;
	G | g) multiplier=$((1024 * 1024 * 1024)) ;;
	esac
	[ "$number" -le $(((1 << 62) / multiplier)) ] || return 1
	echo $((number * multiplier))
}

case ${1:-} in
-h | --help) usage; exit 0 ;;
esac
if [ $# -lt 3 ] || [ $# -gt 4 ]; then
	usage >&2
	exit 2
fi
subtype=$1 name=$2 size_text=$3
config=${4-}
have_config=false
[ $# -eq 4 ] && have_config=true

[[ $subtype =~ ^[A-Za-z0-9_-]+$ ]] || die "bad SUBTYPE '$subtype': letters, digits, '_' and '-' only"
[[ $name =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] && [ ${#name} -le 64 ] ||
	die "bad NAME '$name': up to 64 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
size=$(parse_size "$size_text") || die "bad SIZE '$size_text': a number of bytes, optionally followed by K, M or G"
[ "$size" -gt 0 ] || die "bad SIZE '$size_text': must be more than 0"
[ $((size % 512)) -eq 0 ] || die "bad SIZE '$size_text' ($size bytes): must be a multiple of 512"
[[ $config != *$'\n'* ]] || die "CFGSTRING must be one line"

[ "$(id -u)" -eq 0 ] || die "must run as root: sudo $0 $*"
[ -d /sys/kernel/config ] && mountpoint -q /sys/kernel/config ||
	die "configfs is not mounted: mount -t configfs none /sys/kernel/config"
pid=$(daemon_pid)
[ -n "$pid" ] || die "tcmu-runner is not running: start it with ./run.sh (in another terminal)"
[ -d "$CORE" ] || die "$CORE is missing: the kernel module target_core_user is not loaded"

# The daemon maps every handler file it offers (loaded, or only its description).
handlers=$(grep -o 'handler_[A-Za-z0-9_-]*\.so' /proc/"$pid"/maps 2>/dev/null |
	sed 's/^handler_//; s/\.so$//' | sort -u | paste -sd ' ' || true)
[[ " $handlers " == *" $subtype "* ]] ||
	die "tcmu-runner (pid $pid) has no handler for '$subtype' (it has: ${handlers:-none})"

for existing in "$CORE"/user_*/"$name"; do
	[ -e "$existing" ] || continue
	die "the name '$name' is taken: ${existing#"$CORE"/} exists"
done

if [ "$subtype" = file ] && ! $have_config; then
	# The daemon resolves relative paths from its working folder; an
	# absolute path says where the data is whatever the daemon's folder.
	daemon_cwd=$(readlink /proc/"$pid"/cwd) || die "cannot read tcmu-runner's working folder"
	config=${daemon_cwd%/}/$name
elif [ "$subtype" = alloc ] && ! $have_config; then
	# alloc's string names the memory of the disk: NAME, as targetcli lists it.
	config=$name
fi
stored_config=$config
if [ "$subtype" = nbd ]; then
	# The nbd handler percent-decodes its config string; encoded, a URI's ':'
	# and a command's spaces survive targetcli, which cuts a config there.
	stored_config=${stored_config//'%'/%25}
	stored_config=${stored_config//:/%3A}
	stored_config=${stored_config//,/%2C}
	stored_config=${stored_config// /%20}
fi
dev_config=$subtype/$stored_config

# When the daemon offers its D-Bus service, its handler says what is wrong
# with the config string before anything is created; without the bus the
# enable below still refuses, with less detail.
if command -v gdbus >/dev/null && [ -S /run/dbus/system_bus_socket ]; then
	answer=$(timeout 10 gdbus call --system --dest org.kernel.TCMUService1 \
		--object-path "/org/kernel/TCMUService1/$subtype" \
		--method org.kernel.TCMUService1.CheckConfig "$dev_config" 2>/dev/null || true)
	if [[ $answer == "(false, "* ]]; then
		reason=${answer#"(false, "}
		reason=${reason%)}
		reason=${reason:1:${#reason}-2}
		die "tcmu-runner's $subtype handler refuses config '$config': $reason"
	fi
fi

# Claim the next free user_N: mkdir fails if another script took it meanwhile.
hba=0
while ! mkdir "$CORE/user_$hba" 2>/dev/null; do
	hba=$((hba + 1))
	[ "$hba" -lt 100000 ] || die "no free user_N HBA in $CORE"
done
hba_dir=$CORE/user_$hba
dir=$hba_dir/$name
created=false
remove_on_failure() {
	if ! $created; then
		rmdir "$dir" 2>/dev/null || true
		rmdir "$hba_dir" 2>/dev/null || true
	fi
}
trap remove_on_failure EXIT

mkdir "$dir" || die "cannot create $dir"
echo -n "dev_size=$size" > "$dir/control" 2>/dev/null ||
	die "the kernel refused dev_size=$size"
echo -n "dev_config=$dev_config" > "$dir/control" 2>/dev/null ||
	die "the kernel refused dev_config=$dev_config (too long?)"
for control in "hw_max_sectors=$MAX_SECTORS" "max_data_area_mb=$DATA_AREA_MB"; do
	echo -n "$control" > "$dir/control" 2>/dev/null || die "the kernel refused $control"
done

# enable sends the device to tcmu-runner and waits for its answer; the
# answer is an error when the handler refuses the config string.
if ! error=$(timeout "$ENABLE_TIMEOUT" bash -c 'echo 1 > "$1"' enable "$dir/enable" 2>&1); then
	error=${error##*: }
	die "tcmu-runner refused $subtype backstore '$name' with config '${config}' (${error:-no answer within ${ENABLE_TIMEOUT}s}); its log says why"
fi
created=true
echo "[INFO] Your backstore directory: user_$hba/$name"
