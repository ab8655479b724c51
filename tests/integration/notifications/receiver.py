"""A local HTTP receiver for notification tests: scripted answers, recorded requests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    body: dict[str, Any]
    at: float
    content_type: str


@dataclass
class Receiver:
    """Answers requests with ``script`` (status codes, or "hang"), then 200; records them."""

    url: str
    script: list[int | str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    answered: list[int | str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, seconds: float = 10.0) -> list[Received]:
        """The first ``count`` requests, once they have arrived (fails after ``seconds``)."""
        deadline = time.monotonic() + seconds
        with self.arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.received)} of {count} requests within {seconds} s"
                self.arrived.wait(left)
        return self.received[:count]


@contextmanager
def receiver(script: list[int | str] | None = None) -> Iterator[Receiver]:
    """Serve a receiver on a free loopback port for the duration of the block."""
    state = Receiver(url="", script=list(script or []))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            with state.arrived:
                state.received.append(
                    Received(self.path, body, time.monotonic(), self.headers.get("content-type", ""))
                )
                answer = state.script.pop(0) if state.script else 200
                state.answered.append(answer)
                state.arrived.notify_all()
            if answer == "hang":
                state.release.wait(30)
                return
            assert isinstance(answer, int)
            self.send_response(answer)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="receiver", daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
