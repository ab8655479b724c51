"""The webhook listener against hostile HTTP and TLS clients, over raw sockets to a served gate.

Every refusal is an HTTP status with the JSON error body the API server shows, every
connection ends within a deadline, and the reviews answered around them are recorded.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gate.config import load_config
from gate.server import _run, _tls_accept
from gate.store import DecisionQuery, open_store
from tests.conftest import RunningGate, unverified_tls
from tests.unit.decisions.support import POLICIES, body, review

Answer = tuple[int, dict[str, str], bytes]


def served(tmp_path: Path, serve_gate: Callable[..., RunningGate], settings: str = "") -> RunningGate:
    config_file = tmp_path / "gate.yaml"
    config_file.write_text(settings or "webhook:\n  header_timeout: 2\n  body_timeout: 2\n")
    config = load_config(
        config_file,
        {
            "GATE_DATA_DIR": str(tmp_path / "data"),
            "GATE_GRPC_LISTEN": "127.0.0.1:0",
            "GATE_WEBHOOK_LISTEN": "127.0.0.1:0",
            "GATE_METRICS_LISTEN": "127.0.0.1:0",
            "GATE_POLICY_SOURCES": str(POLICIES),
        },
    )
    return serve_gate(config)


def connect(address: str, timeout: float = 10) -> ssl.SSLSocket:
    host, port = address.rsplit(":", 1)
    raw = socket.create_connection((host, int(port)), timeout=timeout)
    return unverified_tls().wrap_socket(raw)


def until_closed(sock: ssl.SSLSocket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            return received
        if not chunk:
            return received
        received += chunk


def exchange(address: str, data: bytes) -> bytes:
    with connect(address) as sock:
        sock.sendall(data)
        return until_closed(sock)


def answers(raw: bytes) -> list[Answer]:
    """The HTTP responses in ``raw``, each (status, headers, body)."""
    found = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        length = int(headers.get("content-length", "0"))
        found.append((int(status_line.split()[1]), headers, rest[:length]))
        raw = rest[length:]
    return found


def request(
    method: str = "POST", path: str = "/validate", content: bytes = b"", *extra: str, close: bool = True
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: gate", f"Content-Length: {len(content)}", *extra]
    if close:
        lines.append("Connection: close")
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + content


def good_review_is_answered(gate: RunningGate, uid: str) -> None:
    ((status, _, payload),) = answers(
        exchange(gate.addresses.webhook, request(content=body(review(uid=uid))))
    )
    assert status == 200
    assert json.loads(payload)["response"]["uid"] == uid


def recorded_uids(gate: RunningGate) -> set[str]:
    gate.stop()
    store = open_store(gate.config.effective_database_url)
    try:
        return {d.request["uid"] for d in store.list_decisions(DecisionQuery(page_size=1000)).items}
    finally:
        store.close()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            b"POST /validate HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"zz\r\nhello\r\n0\r\n\r\n",
            "malformed HTTP request: invalid character in chunk size",
        ),
        (
            b"POST /validate HTTP/1.1\r\nHost: g\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
            "malformed HTTP request: duplicate Content-Length",
        ),
        (
            b"POST /validate HTTP/1.1\r\nHost: g\r\nContent-Length: -1\r\n\r\n",
            "malformed HTTP request: invalid character in Content-Length",
        ),
        (b"POST /validate HTTP/1.1\r\nX Bad: v\r\n\r\n", "malformed HTTP request: invalid header token"),
        (b"FOO /validate HTTP/1.1\r\n\r\n", "malformed HTTP request: invalid method encountered"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/2 is not supported: the webhook speaks HTTP/1.1 only"),
    ],
)
def test_malformed_requests_are_answered_with_a_json_error_the_api_server_can_show(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], data: bytes, reason: str
) -> None:
    gate = served(tmp_path, serve_gate)
    ((status, headers, payload),) = answers(exchange(gate.addresses.webhook, data))
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert json.loads(payload) == {"error": {"code": 400, "message": reason}}
    good_review_is_answered(gate, "after-malformed")


def test_an_oversized_request_head_is_refused_with_431_instead_of_being_buffered(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    gate = served(tmp_path, serve_gate)
    with connect(gate.addresses.webhook) as sock:
        sock.sendall(b"POST /validate HTTP/1.1\r\nHost: g\r\nX-Big: ")
        # Unbounded, uvicorn kept every byte until the header deadline (60 MB per connection in
        # 10 s here). Four times the bound: sent well within the second the refusal lingers.
        try:
            for _ in range(4):
                sock.sendall(b"a" * 65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            pass
        ((status, _, payload),) = answers(until_closed(sock))
    assert status == 431
    assert json.loads(payload)["error"]["message"] == "the request line and headers exceed 65536 bytes"
    many = [f"X-H{i}: v" for i in range(20_000)]
    ((status, _, _),) = answers(exchange(gate.addresses.webhook, request("GET", "/healthz", b"", *many)))
    assert status == 431
    good_review_is_answered(gate, "after-431")


def test_a_url_longer_than_the_parser_takes_is_refused_with_414(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    gate = served(tmp_path, serve_gate)
    ((status, _, payload),) = answers(exchange(gate.addresses.webhook, request(path="/" + "a" * 70_000)))
    assert status == 414
    assert "url is too long" in json.loads(payload)["error"]["message"]


@pytest.mark.parametrize(
    ("upgrade", "message"),
    [
        (
            ("Connection: Upgrade", "Upgrade: websocket"),
            "upgrading to 'websocket' is not supported: the webhook speaks HTTP/1.1 only",
        ),
        (("Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c"), "upgrading to 'h2c' is not supported: "),
    ],
)
def test_a_protocol_upgrade_is_refused_instead_of_reviewing_an_empty_body(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], upgrade: tuple[str, str], message: str
) -> None:
    # Before, the parser dropped the body of an upgrade request: the review was answered as an
    # empty document, and the connection then swallowed whatever came next with no deadline.
    gate = served(tmp_path, serve_gate)
    data = request("POST", "/validate", body(review(uid="upgrade")), *upgrade, close=False)
    ((status, headers, payload),) = answers(exchange(gate.addresses.webhook, data))
    assert status == 400
    assert headers["connection"] == "close"
    assert json.loads(payload)["error"]["message"].startswith(message)


def test_pipelined_reviews_are_answered_in_order_and_recorded(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    gate = served(tmp_path, serve_gate)
    uids = [f"pipelined-{index}" for index in range(5)]
    data = b"".join(request(content=body(review(uid=uid)), close=uid == uids[-1]) for uid in uids)
    found = answers(exchange(gate.addresses.webhook, data))
    assert [(status, json.loads(payload)["response"]["uid"]) for status, _, payload in found] == [
        (200, uid) for uid in uids
    ]
    assert set(uids) <= recorded_uids(gate)


def test_pipelining_beyond_the_bound_closes_the_connection_after_the_answers_owed(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    # Unbounded, every answer let the server read 256 KB more of tiny requests (~7,500 queued,
    # ~18 MB) while it answered one at a time: memory grew for as long as the client sent.
    gate = served(tmp_path, serve_gate)
    data = request("GET", "/healthz", b"", close=False) * 200
    found = answers(exchange(gate.addresses.webhook, data))
    assert len(found) == 1 + _run.MAX_PIPELINED
    assert {status for status, _, _ in found} == {200}
    assert found[-1][1]["connection"] == "close"
    good_review_is_answered(gate, "after-pipelining")


def closed_within(sock: ssl.SSLSocket, seconds: float, step: Callable[[], None]) -> float | None:
    """Seconds until the server closed ``sock`` while ``step`` ran every 0.2 s; None if it did not."""
    started = time.monotonic()
    sock.setblocking(False)
    while time.monotonic() - started < seconds:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except (ssl.SSLWantReadError, BlockingIOError):
            pass
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            return time.monotonic() - started
        try:
            step()
        except (ssl.SSLWantWriteError, BlockingIOError):
            pass
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            return time.monotonic() - started
        time.sleep(0.2)
    return None


@pytest.mark.parametrize(
    ("first", "trickle"),
    [
        # A body the answer did not wait for (413, 408, a path that reads none), sent on slowly.
        (b"GET /healthz HTTP/1.1\r\nHost: g\r\nContent-Length: 1000000\r\n\r\n", b"x"),
        (b"POST /validate HTTP/1.1\r\nHost: g\r\nContent-Length: 100000000\r\n\r\n", b"x"),
        # Blank lines between requests begin none.
        (b"GET /healthz HTTP/1.1\r\nHost: g\r\n\r\n", b"\r\n"),
    ],
)
def test_bytes_that_begin_no_request_do_not_hold_a_connection_past_the_keep_alive_timeout(
    tmp_path: Path,
    serve_gate: Callable[..., RunningGate],
    monkeypatch: pytest.MonkeyPatch,
    first: bytes,
    trickle: bytes,
) -> None:
    monkeypatch.setattr(_run, "WEBHOOK_KEEP_ALIVE", 1)
    gate = served(tmp_path, serve_gate)
    with connect(gate.addresses.webhook) as sock:
        sock.sendall(first)
        time.sleep(0.3)
        (status, _, _), *_ = answers(sock.recv(65536))
        assert status in (200, 413)
        # Before, each byte stopped the keep-alive timer and nothing started another: open forever.
        seconds = closed_within(sock, 8, lambda: sock.send(trickle))
    assert seconds is not None, "the connection was still open after 8 s of a 1 s keep-alive timeout"
    assert seconds < 4


def test_the_metrics_listener_closes_a_connection_that_sends_no_request(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_run, "METRICS_HEADER_TIMEOUT", 0.5, raising=False)
    gate = served(tmp_path, serve_gate)
    assert gate.addresses.metrics is not None
    host, port = gate.addresses.metrics.rsplit(":", 1)
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=8) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\n")  # and never the rest: before, open forever
        try:
            assert sock.recv(1024) == b""
        except TimeoutError:
            pytest.fail("the metrics listener kept a silent connection open for 8 s")
    assert time.monotonic() - started < 4


def test_a_stalled_tls_client_loses_its_socket_soon_after_the_header_deadline(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Closing a TLS connection waits for the client's close_notify: asyncio's default of 30 s
    # kept every stalled client's socket 30 s past its deadline.
    monkeypatch.setattr(_tls_accept, "SHUTDOWN_TIMEOUT", 1.0, raising=False)
    gate = served(tmp_path, serve_gate, "webhook:\n  header_timeout: 0.5\n")
    host, port = gate.addresses.webhook.rsplit(":", 1)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = unverified_tls().wrap_bio(incoming, outgoing)
    with socket.create_connection((host, int(port)), timeout=20) as raw:
        started = time.monotonic()
        while True:  # the handshake, by hand: the TCP stream stays ours to watch
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(outgoing.read())
                incoming.write(raw.recv(65536))
        raw.sendall(outgoing.read())
        tls.write(b"P")  # a request begun, never finished; and the server's close_notify unanswered
        raw.sendall(outgoing.read())
        while raw.recv(65536):
            pass
        seconds = time.monotonic() - started
    assert seconds < 5, f"the server kept the socket {seconds:.1f} s"


def test_garbage_instead_of_a_client_hello_and_silent_clients_do_not_stop_good_reviews(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    gate = served(tmp_path, serve_gate)
    host, port = gate.addresses.webhook.rsplit(":", 1)
    stalled = []
    for index in range(200):
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall([b"\x16", b"GET / HTTP/1.1\r\n\r\n", b"\x16\x03\x01\xff\xff", b""][index % 4])
        stalled.append(sock)
    try:
        for index in range(3):
            good_review_is_answered(gate, f"beside-stalled-{index}")
    finally:
        for sock in stalled:
            sock.close()
    assert {f"beside-stalled-{index}" for index in range(3)} <= recorded_uids(gate)


def read_answer(sock: ssl.SSLSocket, received: bytes = b"") -> Answer:
    """The next whole answer from ``sock``, a 100 Continue before it skipped."""
    while True:
        head, separator, rest = received.partition(b"\r\n\r\n")
        if separator and head.startswith(b"HTTP/1.1 100"):
            received = rest
            continue
        if separator:
            ((status, headers, _),) = answers(head + separator)
            length = int(headers["content-length"])
            if len(rest) >= length:
                return status, headers, rest[:length]
        chunk = sock.recv(65536)
        assert chunk, "closed before a whole answer"
        received += chunk


def test_an_answer_before_the_body_was_asked_for_closes_the_connection(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    # The client holds its body back until 100 Continue: answered 413 from the Content-Length
    # alone, the connection stayed open, and the client's next request was read as that body.
    gate = served(tmp_path, serve_gate)
    with connect(gate.addresses.webhook) as sock:
        sock.sendall(
            b"POST /validate HTTP/1.1\r\nHost: g\r\nContent-Length: 99999999\r\nExpect: 100-continue\r\n\r\n"
        )
        status, headers, _ = read_answer(sock)
        assert status == 413
        assert headers["connection"] == "close"
        assert until_closed(sock) == b""
    # Asked for, the body comes and the connection stays open for the next review.
    with connect(gate.addresses.webhook) as sock:
        for uid in ("expect-1", "expect-2"):
            content = body(review(uid=uid))
            head = f"POST /validate HTTP/1.1\r\nHost: g\r\nContent-Length: {len(content)}\r\n"
            sock.sendall(head.encode() + b"Expect: 100-continue\r\n\r\n")
            assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(content)
            status, headers, payload = read_answer(sock)
            assert status == 200
            assert "connection" not in headers
            assert json.loads(payload)["response"]["uid"] == uid
