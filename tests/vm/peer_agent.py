#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# peer_agent.py: runs the test's commands in the peer guest of vm-pair.
#
#   peer_agent.py serve ADDRESS PORT   (in the peer: one bash script per
#                                       connection, until one says "exit")
#   peer_agent.py run ADDRESS PORT     (in the test's guest: sends stdin as
#                                       a script, prints its output, exits
#                                       with its status)
#
# The link exists only between the two guests, so the agent needs no
# authentication. A script's stdout and stderr come back interleaved when it
# ends, then a NUL byte and the exit status.
import socket
import subprocess
import sys
import tempfile
import time


def serve(address, port):
    server = socket.create_server((address, port))
    while True:
        connection, _ = server.accept()
        with connection:
            chunks = []
            while True:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
            script = b"".join(chunks).decode()
            if script.strip() == "exit":
                connection.sendall(b"\0" + b"0")
                return
            # Output through a file, not a pipe: a daemon the script starts
            # may keep its copy of the descriptor open long after the script.
            with tempfile.TemporaryFile() as output:
                status = subprocess.call(["/bin/bash", "-c", script], stdin=subprocess.DEVNULL,
                                         stdout=output, stderr=subprocess.STDOUT)
                output.seek(0)
                connection.sendall(output.read().replace(b"\0", b""))
            connection.sendall(b"\0" + str(status).encode())


def run(address, port, wait_seconds=120):
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            connection = socket.create_connection((address, port), timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                print("peer_agent: no agent at %s:%d" % (address, port), file=sys.stderr)
                return 125
            time.sleep(0.5)
    connection.settimeout(None)
    with connection:
        connection.sendall(sys.stdin.buffer.read())
        connection.shutdown(socket.SHUT_WR)
        received = b""
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
    output, separator, status = received.rpartition(b"\0")
    sys.stdout.buffer.write(output)
    sys.stdout.flush()
    if not separator:
        print("peer_agent: the peer went away before the script ended", file=sys.stderr)
        return 125
    return int(status)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("serve", "run"):
        print(__doc__ or "usage: peer_agent.py serve|run ADDRESS PORT", file=sys.stderr)
        sys.exit(2)
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(run(sys.argv[2], int(sys.argv[3])))
