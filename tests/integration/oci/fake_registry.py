"""A scriptable HTTP server that plays a registry, honest or hostile, for client tests."""

from __future__ import annotations

import http.server
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

Handler = Callable[["Exchange"], None]


@dataclass
class Exchange:
    """One request as the fake sees it, and the ways to answer it."""

    handler: http.server.BaseHTTPRequestHandler
    method: str
    path: str
    query: dict[str, list[str]]
    release: threading.Event

    @property
    def headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.handler.headers.items()}

    def answer(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        content_length: int | None = None,
        send_length: bool = True,
        close: bool = False,
    ) -> None:
        """Answer with ``body`` (``content_length`` may lie); hang up after if asked or without a length."""
        self.handler.send_response(status)
        for name, value in (headers or {}).items():
            self.handler.send_header(name, value)
        if send_length:
            self.handler.send_header(
                "Content-Length", str(len(body) if content_length is None else content_length)
            )
        if close or not send_length:
            self.handler.send_header("Connection", "close")
            self.handler.close_connection = True
        self.handler.end_headers()
        if self.method != "HEAD" and body:
            self.handler.wfile.write(body)

    def stream(self, status: int, chunks: Iterator[bytes], headers: dict[str, str] | None = None) -> None:
        """Answer without a length, writing ``chunks`` until the client goes away or the test ends."""
        self.handler.send_response(status)
        for name, value in (headers or {}).items():
            self.handler.send_header(name, value)
        self.handler.send_header("Connection", "close")
        self.handler.close_connection = True
        self.handler.end_headers()
        try:
            for chunk in chunks:
                if self.release.is_set():
                    return
                self.handler.wfile.write(chunk)
                self.handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return

    def hang(self) -> None:
        """Never answer (until the test ends)."""
        self.release.wait(30)
        self.handler.close_connection = True


@dataclass
class FakeRegistry:
    """Routes ``(method, path)`` to handlers; unrouted requests get 404 with a registry error body."""

    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    _server: http.server.ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def static(
        self, method: str, path: str, status: int, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        self.route(method, path, lambda ex: ex.answer(status, body, headers))

    def start(self) -> None:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _dispatch(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                owner.requests.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                exchange = Exchange(
                    self, self.command, parts.path, urllib.parse.parse_qs(parts.query), owner.release
                )
                handler = owner.routes.get((self.command, parts.path))
                if handler is None:
                    exchange.answer(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"not here"}]}')
                    return
                handler(exchange)

            do_GET = do_HEAD = do_PUT = do_POST = _dispatch  # noqa: N815

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@contextmanager
def fake_registry() -> Iterator[FakeRegistry]:
    """A started :class:`FakeRegistry`, stopped (and any hanging handler released) afterwards."""
    fake = FakeRegistry()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def drip(byte: bytes = b"x", interval: float = 0.05) -> Iterator[bytes]:
    """One byte every ``interval`` seconds, forever."""
    while True:
        yield byte
        time.sleep(interval)


def flood(chunk: int = 64 * 1024) -> Iterator[bytes]:
    """As many bytes as the client will take."""
    block = b"\0" * chunk
    while True:
        yield block
