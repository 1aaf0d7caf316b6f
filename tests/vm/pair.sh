# SPDX-License-Identifier: Apache-2.0
# tests/vm/pair.sh: the test's side of a two-guest test (tests/vm/vm-pair),
# sourced after tests/lib.sh. A test asks for the peer with a line
#
#     # vm-peer: -m 1536 -c 1
#
# (the peer's memory and CPUs; tests/vm/CMakeLists.txt then runs it with
# vm-pair), and has:
#
#     pair_link_up        eth0 up as 10.9.0.1; waits for the peer's agent
#     peer <<'EOF'        runs the script on stdin in the peer (bash, as
#     ...                 root, from $SOURCE_DIR, with BUILD_DIR and
#     EOF                 SOURCE_DIR set); fails the test if it fails
#     peer_try            the same, returning the script's status
#     peer_power_off      the peer powers off at once (a power cut: no
#                         shutdown, its daemons' clients just vanish)
#
# The peer's files under /mnt/out come back in the test's out directory,
# under peer/. At exit the peer is sent away (it powers off).

PAIR_ADDRESS=10.9.0.1
PEER_ADDRESS=10.9.0.2
PEER_PORT=7001

_peer_send() {
	python3 "$SOURCE_DIR/tests/vm/peer_agent.py" run "$PEER_ADDRESS" "$PEER_PORT"
}

peer_try() {
	{ echo "cd \"\$SOURCE_DIR\""; cat; } | _peer_send
}

peer() {
	peer_try || fail "a script on the peer failed (status $?)"
}

_peer_gone=

_peer_away() {
	[ -z "$_peer_gone" ] || return 0
	echo exit | _peer_send >/dev/null 2>&1 || true
}

peer_power_off() {
	# The agent never answers: the machine is gone before the script ends.
	echo 'echo o > /proc/sysrq-trigger' | timeout 30 python3 \
		"$SOURCE_DIR/tests/vm/peer_agent.py" run "$PEER_ADDRESS" "$PEER_PORT" || true
	_peer_gone=1
}

pair_link_up() {
	modprobe virtio_net || fail "cannot load virtio_net"
	wait_for 10 "eth0" test -e /sys/class/net/eth0
	ip addr add "$PAIR_ADDRESS/24" dev eth0
	ip link set eth0 up
	cleanup_fn _peer_away
	echo true | _peer_send || fail "the peer's agent did not answer on $PEER_ADDRESS:$PEER_PORT"
}
