"""Webhook delivery to receivers that misbehave: slow drips, compression bombs, odd Retry-After
values, URLs httpx cannot use. Each attempt stays bounded in time and memory, the delivery thread
survives, and no log line shows a webhook's path, query or credentials."""

from __future__ import annotations

import gzip
import logging
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from gate.errors import ConfigError
from gate.notifications import Notifier, RetryPolicy, Webhook, _notifier
from tests.integration.notifications.test_notifier import notification, wait_until

Answer = Callable[[socket.socket, threading.Event], None]


@contextmanager
def raw_receiver(answer: Answer) -> Iterator[tuple[int, list[float]]]:
    """A loopback port whose every connection gets ``answer`` once its request head arrived.

    Yields the port and the monotonic times at which requests arrived.
    """
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    arrivals: list[float] = []

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            arrivals.append(time.monotonic())
            with suppress(OSError):
                answer(conn, stop)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1], arrivals
    finally:
        stop.set()
        server.close()


def status(code: int, *headers: str, content: bytes = b"ok") -> Answer:
    def answer(conn: socket.socket, stop: threading.Event) -> None:
        head = "".join(f"{header}\r\n" for header in headers)
        conn.sendall(f"HTTP/1.1 {code} X\r\ncontent-length: {len(content)}\r\n{head}\r\n".encode() + content)

    return answer


def drip(start: bytes) -> Answer:
    """Sends ``start`` then a byte every 0.1 s, for as long as the receiver runs."""

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(start)
        while not stop.wait(0.1):
            conn.sendall(b"a")

    return answer


@pytest.mark.parametrize(
    "start",
    [
        b"HTTP/1.1 200 OK\r\nx-slow: ",  # headers that never end
        b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n",  # a body that never ends
    ],
)
def test_an_attempt_ends_at_the_webhook_timeout_however_slowly_the_receiver_sends(start: bytes) -> None:
    # httpx's timeout bounds each read: a byte every 0.1 s held the delivery thread for as
    # long as the receiver liked (hours), and every other notification waited behind it.
    with raw_receiver(drip(start)) as (port, arrivals):
        notifier = Notifier(
            [Webhook(f"http://127.0.0.1:{port}/hook", timeout=0.5)],
            retry=RetryPolicy(max_attempts=2, backoff=0.05, max_backoff=0.05),
        )
        notifier.start()
        started = time.monotonic()
        notifier.submit(notification())
        wait_until(lambda: notifier.totals["failed"] == 1, seconds=8)
        took = time.monotonic() - started
        notifier.close(timeout=1)
    assert len(arrivals) == 2
    assert took < 2.5, f"two attempts of 0.5 s took {took:.1f} s"


def test_a_compressed_answer_is_never_inflated() -> None:
    # Only the status matters: the answer was decoded all the same, gzip within gzip growing
    # a few KB on the wire into 64 MB here (and into gigabytes for a slightly larger bomb).
    inner = gzip.compress(b"\0" * (64 << 20), 9)
    bomb = gzip.compress(inner, 9)
    with raw_receiver(status(200, "content-encoding: gzip, gzip", content=bomb)) as (port, _):
        notifier = Notifier([Webhook(f"http://127.0.0.1:{port}/hook", timeout=5)])
        tracemalloc.start()
        try:
            notifier.start()
            notifier.submit(notification())
            wait_until(lambda: notifier.totals["sent"] == 1)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            notifier.close()
    assert peak < 16 << 20, f"{peak >> 20} MB allocated to read the answer"


def test_log_lines_never_show_a_webhooks_path_query_or_credentials(caplog: pytest.LogCaptureFixture) -> None:
    with raw_receiver(status(503)) as (port, arrivals), caplog.at_level(logging.INFO, "gate.notifications"):
        url = f"http://bot:pa55word@127.0.0.1:{port}/services/T0001/B0002/XOXBSECRET?token=QUERYSECRET"
        notifier = Notifier([Webhook(url, timeout=1)], retry=RetryPolicy(2, 0.05, 0.05))
        notifier.start()
        notifier.submit(notification())
        wait_until(lambda: notifier.totals["failed"] == 1)
        notifier.close()
    assert len(arrivals) == 2
    for secret in ("pa55word", "XOXBSECRET", "QUERYSECRET", "/services", "bot:"):
        assert secret not in caplog.text
    shown = f"notifications.webhooks[0] (http://127.0.0.1:{port}/…)"
    assert f"deny notification to {shown} failed (attempt 1 of 2): HTTP 503; retrying in" in caplog.text
    assert f"deny notification to {shown} not delivered after 2 attempt(s): HTTP 503" in caplog.text


def test_a_transport_error_quoting_the_url_is_logged_without_it(caplog: pytest.LogCaptureFixture) -> None:
    url = "http://127.0.0.1:9/hooks/T0001/SECRETPATH?sig=SECRETSIG"
    assert _notifier._scrub(f"error POSTing to {url}: refused", url) == "error POSTing to …: refused"
    assert _notifier._scrub("GET /hooks/T0001/SECRETPATH failed", url) == "GET … failed"


@pytest.mark.parametrize(
    "url",
    [
        "http://[zz]/hook",
        "http://host/ho\x00ok",
        "http://host/x\r\nX-Injected: 1",
        "http://host/" + "a" * 70_000,
    ],
)
def test_a_url_httpx_cannot_use_is_a_configuration_error_not_a_dead_delivery_thread(url: str) -> None:
    # Before: accepted, then the first notification raised httpx.InvalidURL on the delivery
    # thread, which ended it: nothing was delivered to any webhook after.
    with pytest.raises(ConfigError, match=r"notifications\.webhooks\[1\]\.url: not a usable URL"):
        Notifier([Webhook("http://127.0.0.1:9/fine"), Webhook(url)])


def test_an_unexpected_error_in_one_attempt_does_not_end_the_delivery_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = _notifier._post
    calls = []

    def flaky(*args: object) -> object:
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("a bug in the client")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_notifier, "_post", flaky)
    with raw_receiver(status(200)) as (port, arrivals):
        notifier = Notifier([Webhook(f"http://127.0.0.1:{port}/hook", timeout=1)])
        notifier.start()
        notifier.submit(notification(title="first"))
        wait_until(lambda: notifier.totals["failed"] == 1)
        notifier.submit(notification(title="second"))
        wait_until(lambda: notifier.totals["sent"] == 1)
        notifier.close()
    assert len(arrivals) == 1


def in_a_few_seconds() -> str:
    # Whole seconds on the wire: 1.5 to 2.5 s ahead when read, then cut to max_backoff (2 s).
    return format_datetime(datetime.now(UTC) + timedelta(seconds=2.5), usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "least", "most"),
    [
        ("1", 0.9, 1.6),  # delta-seconds, longer than the backoff: waited for
        ("99999999999999999999999", 1.9, 2.6),  # huge: cut to max_backoff (2 s)
        (None, 1.4, 2.6),  # an HTTP date 2.5 s ahead (filled in below)
        ("-5", 0.0, 0.5),  # unreadable: the policy's own backoff
        ("soon", 0.0, 0.5),
        ("1.5", 0.0, 0.5),
    ],
)
def test_retry_after_is_honoured_up_to_the_longest_backoff(
    retry_after: str | None, least: float, most: float
) -> None:
    # Ignored before: a receiver limiting its rate (Slack answers 429 with a Retry-After) was
    # asked again at once, and every attempt of a default policy went in its window.
    value = retry_after if retry_after is not None else in_a_few_seconds()
    answers = [status(429, f"retry-after: {value}"), status(200)]

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        answers.pop(0)(conn, stop)

    with raw_receiver(answer) as (port, arrivals):
        notifier = Notifier(
            [Webhook(f"http://127.0.0.1:{port}/hook", timeout=2)],
            retry=RetryPolicy(max_attempts=3, backoff=0.05, max_backoff=2.0),
        )
        notifier.start()
        notifier.submit(notification())
        wait_until(lambda: notifier.totals["sent"] == 1, seconds=8)
        notifier.close()
    first, second = arrivals
    assert least <= second - first <= most


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("9" * 5000, float("inf")),
        ("-1", None),
        ("", None),
        ("١٢", None),  # Arabic-Indic digits: str.isdigit() says yes, RFC 9110 says no
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
        ("Wed, 99 Foo 2015 07:28:00 GMT", None),
    ],
)
def test_retry_after_values_are_read_as_rfc_9110_spells_them(value: str, seconds: float | None) -> None:
    assert _notifier._retry_after(value) == seconds
