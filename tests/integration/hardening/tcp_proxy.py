"""A TCP proxy on loopback that a test can cut (every connection reset, new ones refused), stall
(nothing forwarded, nothing closed: a partition) and restore."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``; :meth:`cut` and :meth:`restore` simulate an outage."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._up = True
        self._stalled = threading.Event()
        self._closed = False
        self.refused = 0
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def cut(self) -> None:
        """Reset every forwarded connection and refuse new ones until :meth:`restore`."""
        with self._lock:
            self._up = False
            sockets = list(self._open)
            self._open.clear()
        for sock in sockets:
            _reset(sock)

    def stall(self) -> None:
        """Stop forwarding bytes, on open and new connections alike, without closing anything."""
        self._stalled.set()

    def restore(self) -> None:
        """Forward again (new connections after a cut; everything after a stall)."""
        with self._lock:
            self._up = True
        self._stalled.clear()

    def close(self) -> None:
        """Stop listening and reset everything."""
        self._closed = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                up = self._up
            if not up:
                self.refused += 1
                _reset(client)
                continue
            while self._stalled.is_set() and not self._closed:
                # A partition: the handshake completed (the kernel did it), nothing else arrives.
                time.sleep(0.1)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 0.2)
                with self._lock:
                    if client not in self._open:
                        return
                if self._stalled.is_set():
                    # Bytes wait in the kernel buffers, as they would behind a dead route.
                    time.sleep(0.1)
                    continue
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._open.discard(client)
                self._open.discard(upstream)
            _reset(client)
            _reset(upstream)


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        # Linger 0: close with RST, as a crashed server or a dropped route looks to a client.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.close()
