#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# peer_guest.sh: the peer guest of vm-pair. Brings the link up as 10.9.0.2
# and runs the test's commands (tests/vm/peer_agent.py) until the test sends
# it away; then vm-run powers the guest off.
set -eu
modprobe virtio_net
for ((tries = 50; tries > 0; tries--)); do
	[ -e /sys/class/net/eth0 ] && break
	sleep 0.1
done
ip addr add 10.9.0.2/24 dev eth0
ip link set eth0 up
echo "peer_guest: serving on 10.9.0.2:7001"
exec /usr/bin/python3 "$(dirname "$0")/peer_agent.py" serve 10.9.0.2 7001
