"""A burst of new webhook connections, sent from a process of its own.

Used by ``tests/integration/decisions/test_webhook_processes.py``. Opens COUNT connections to
HOST:PORT before sending anything on them, then POSTs the request body read from standard
input on each (TLS, any certificate), eight at a time, and prints each answer's status line.

It runs apart from the test: in the test's own process its threads would compete for the GIL
with the gate serving inside that process, and skew which process accepts the connections.

    python burst_client.py HOST PORT COUNT < body
"""

from __future__ import annotations

import socket
import ssl
import sys
from concurrent.futures import ThreadPoolExecutor


def main() -> int:
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    request = sys.stdin.buffer.read()
    head = f"POST /validate HTTP/1.1\r\nHost: gate\r\nContent-Length: {len(request)}\r\n\r\n".encode()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # Every connection is queued on the listening socket before either process accepts one.
    raw = [socket.create_connection((host, port), timeout=20) for _ in range(count)]

    def post(sock: socket.socket) -> str:
        with context.wrap_socket(sock) as tls:
            tls.sendall(head + request)
            return tls.recv(64).split(b"\r\n", 1)[0].decode("ascii", "replace")

    with ThreadPoolExecutor(8) as pool:
        for status in pool.map(post, raw):
            print(status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
