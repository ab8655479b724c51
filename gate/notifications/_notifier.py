"""Delivery of notifications to webhooks from one background thread.

Producers (decisions, scans, the waiver check) only put work on a bounded
queue and return; when it is full the notification is dropped, counted and
logged, so that a slow or dead receiver never holds up a decision or a scan.
The worker POSTs each notification to every webhook that wants its event,
retrying failures (transport errors, 408, 429, 5xx) with exponential backoff
and jitter, or later when the receiver's Retry-After asks (up to the longest
backoff). Retries wait in a heap, not in a sleep, so one failing receiver
does not delay the others' deliveries.

Receivers are not trusted: an attempt ends at its webhook's ``timeout`` however
slowly the receiver sends, its answer is read undecoded and only up to
:data:`_MAX_RESPONSE_BYTES`, and log lines name a webhook by its index and
origin, never by its path or query (a Slack webhook's path is its secret).
"""

from __future__ import annotations

import email.utils
import heapq
import itertools
import logging
import math
import queue
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpcore
import httpx

from gate.errors import ConfigError
from gate.notifications._events import EVENTS, Notification
from gate.notifications._formats import FORMATS

log = logging.getLogger("gate.notifications")

# Longest response body read from a receiver (only its status matters).
_MAX_RESPONSE_BYTES = 64 * 1024
# How often an idle worker looks at its stop flag (seconds).
_TICK = 0.25
_RETRYABLE = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class Webhook:
    """One receiver: where, in which format, for which events."""

    url: str
    format: str = "json"
    events: frozenset[str] = frozenset(EVENTS)
    timeout: float = 5.0
    ca_file: Path | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts per delivery and the backoff between them (seconds)."""

    max_attempts: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait after failed attempt ``attempt`` (1-based): doubling, capped, half of it random."""
        ceiling = min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class NotifierObserver(Protocol):
    """Told the fate of every delivery (the server counts them in Prometheus)."""

    def counted(self, event: str, result: str) -> None:
        """``result``: ``sent``, ``failed`` (every attempt failed, or the receiver refused) or ``dropped``."""


@dataclass(order=True)
class _Delivery:
    due: float
    order: int
    notification: Notification = field(compare=False)
    webhook: int = field(compare=False)
    body: bytes = field(compare=False)
    attempt: int = field(compare=False, default=1)


# A queued item: a notification, or work that yields notifications (done on the worker).
_Item = Notification | tuple[str, Callable[[], Iterable[Notification]]]


class Notifier:
    """Sends notifications to webhooks in the background; :meth:`submit` never blocks."""

    def __init__(
        self,
        webhooks: Sequence[Webhook],
        *,
        queue_size: int = 1000,
        retry: RetryPolicy | None = None,
        observer: NotifierObserver | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Build the notifier; call :meth:`start` to begin delivering.

        Raises:
            ConfigError: a webhook's format is unknown or its CA file cannot be read.
        """
        for index, webhook in enumerate(webhooks):
            if webhook.format not in FORMATS:
                raise ConfigError(
                    "configuration", f"notifications.webhooks[{index}].format", f"unknown: {webhook.format!r}"
                )
            try:
                httpx.URL(webhook.url)
            except httpx.InvalidURL as error:
                # Found here, not by the first delivery: httpx raised it there, past the delivery
                # thread's handlers, and the thread ended (nothing was delivered to any webhook after).
                raise ConfigError(
                    "configuration", f"notifications.webhooks[{index}].url", f"not a usable URL: {error}"
                ) from None
        self.webhooks = tuple(webhooks)
        self.retry = retry or RetryPolicy()
        self._observer = observer
        self._rng = rng or random.Random()  # noqa: S311  # jitter, not secrecy
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=queue_size)
        self._queue_size = queue_size
        self._retries: list[_Delivery] = []
        self._order = itertools.count()
        self._stopping = threading.Event()
        self._deadline = float("inf")
        self._clients = [_client(webhook, index) for index, webhook in enumerate(self.webhooks)]
        # How log lines name each webhook: its index and origin (the rest may hold a token).
        self._names = [_shown(webhook.url, index) for index, webhook in enumerate(self.webhooks)]
        self._thread = threading.Thread(target=self._work, name="gate-notify", daemon=True)
        # Totals by result, for logs and tests (the observer gets each one as it happens).
        self.totals: dict[str, int] = {"sent": 0, "failed": 0, "dropped": 0}
        self._totals_lock = threading.Lock()

    def wants(self, event: str) -> bool:
        """Whether any webhook takes ``event`` (producers skip the work otherwise)."""
        return any(event in webhook.events for webhook in self.webhooks)

    def start(self) -> None:
        """Start the delivery thread."""
        self._thread.start()

    def submit(self, notification: Notification) -> None:
        """Queue a notification; drop it (counted, logged) when the queue is full. Never blocks."""
        if self.wants(notification.event):
            self._put(notification, notification.event)

    def submit_later(self, event: str, make: Callable[[], Iterable[Notification]]) -> None:
        """Queue work that finds the notifications (store look-ups run on the delivery thread)."""
        if self.wants(event):
            self._put((event, make), event)

    def close(self, timeout: float = 5.0) -> None:
        """Stop: what is queued gets one more attempt within ``timeout`` seconds; the rest is dropped."""
        self._deadline = time.monotonic() + timeout
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout + max((w.timeout for w in self.webhooks), default=0) + 1)
        for client, _ in self._clients:
            client.close()

    # --- the delivery thread -------------------------------------------------------------

    def _put(self, item: _Item, event: str) -> None:
        if self._stopping.is_set():
            self._count(event, "dropped")
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._count(event, "dropped")
            log.warning(
                "notification queue full (%d waiting): dropped a %s notification", self._queue_size, event
            )

    def _work(self) -> None:
        while not self._stopping.is_set():
            wait = _TICK
            if self._retries:
                wait = min(wait, max(0.0, self._retries[0].due - time.monotonic()))
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = None
            if item is not None:
                for delivery in self._deliveries(item):
                    self._attempt(delivery, final=False)
            while self._retries and self._retries[0].due <= time.monotonic() and not self._stopping.is_set():
                self._attempt(heapq.heappop(self._retries), final=False)
        self._drain()

    def _drain(self) -> None:
        """On close: one last attempt for what waits, while the deadline allows."""
        pending: list[_Delivery] = list(self._retries)
        self._retries.clear()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            pending.extend(self._deliveries(item))
        for delivery in pending:
            if time.monotonic() >= self._deadline:
                self._count(delivery.notification.event, "dropped")
                continue
            self._attempt(delivery, final=True)

    def _deliveries(self, item: _Item) -> list[_Delivery]:
        if isinstance(item, Notification):
            notifications: Iterable[Notification] = (item,)
        else:
            event, make = item
            try:
                notifications = list(make())
            except Exception:
                log.exception("finding %s notifications failed; none sent", event)
                self._count(event, "failed")
                return []
        deliveries = []
        for notification in notifications:
            for index, webhook in enumerate(self.webhooks):
                if notification.event in webhook.events:
                    try:
                        body = FORMATS[webhook.format](notification)
                    except Exception:
                        log.exception("formatting a %s notification failed; not sent", notification.event)
                        self._count(notification.event, "failed")
                        continue
                    deliveries.append(_Delivery(0.0, next(self._order), notification, index, body))
        return deliveries

    def _attempt(self, delivery: _Delivery, *, final: bool) -> None:
        webhook = self.webhooks[delivery.webhook]
        client, deadline = self._clients[delivery.webhook]
        name = self._names[delivery.webhook]
        try:
            problem, retry, asked = _post(client, deadline, webhook, delivery.body)
        except Exception as error:
            # Whatever the client raises ends this attempt, never the delivery thread.
            log.error(
                "%s notification to %s: the attempt failed unexpectedly", delivery.notification.event, name
            )
            problem, retry, asked = f"{type(error).__name__}: {error}", False, None
        problem = problem if problem is None else _scrub(problem, webhook.url)
        event = delivery.notification.event
        if problem is None:
            self._count(event, "sent")
            return
        if retry and not final and delivery.attempt < self.retry.max_attempts:
            if len(self._retries) >= self._queue_size:
                self._count(event, "dropped")
                log.warning("notification retries full: dropped a %s notification to %s", event, name)
                return
            wait = self.retry.delay(delivery.attempt, self._rng)
            if asked is not None:
                # The receiver's Retry-After, within the policy's longest wait: retried sooner, a
                # rate-limited receiver (Slack answers 429 with one) refuses every attempt.
                wait = max(wait, min(asked, self.retry.max_backoff))
            delivery.due = time.monotonic() + wait
            delivery.order = next(self._order)
            delivery.attempt += 1
            heapq.heappush(self._retries, delivery)
            log.info(
                "%s notification to %s failed (attempt %d of %d): %s; retrying in %.1f s",
                event,
                name,
                delivery.attempt - 1,
                self.retry.max_attempts,
                problem,
                wait,
            )
            return
        self._count(event, "failed")
        log.warning(
            "%s notification to %s not delivered after %d attempt(s): %s",
            event,
            name,
            delivery.attempt,
            problem,
        )

    def _count(self, event: str, result: str) -> None:
        with self._totals_lock:
            self.totals[result] += 1
        if self._observer is not None:
            try:
                self._observer.counted(event, result)
            except Exception:
                log.exception("the notification observer failed")


def _client(webhook: Webhook, index: int) -> tuple[httpx.Client, _Deadline]:
    verify: ssl.SSLContext | bool = True
    if webhook.ca_file is not None:
        try:
            verify = ssl.create_default_context(cafile=str(webhook.ca_file))
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(
                "configuration", f"notifications.webhooks[{index}].ca_file", f"cannot load: {error}"
            ) from None
    context = httpx.create_ssl_context(verify=verify, trust_env=False)
    deadline = _Deadline()
    transport = httpx.HTTPTransport(verify=context, trust_env=False)
    # httpx's timeout bounds each read and write, not the attempt: a receiver sending a byte now
    # and then held the delivery thread for hours. Every wait of this pool ends at the deadline.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=context, keepalive_expiry=5.0, network_backend=_DeadlineBackend(deadline)
    )
    # No redirects: a receiver that moved is a configuration error, not a reason to post elsewhere.
    client = httpx.Client(
        transport=transport, timeout=webhook.timeout, follow_redirects=False, trust_env=False
    )
    return client, deadline


# Sent with every notification: its answer is only counted, never decoded (a compressed answer
# was inflated in memory, gzip within gzip by a factor of a million).
_HEADERS = {"content-type": "application/json", "accept-encoding": "identity"}


def _post(
    client: httpx.Client, deadline: _Deadline, webhook: Webhook, body: bytes
) -> tuple[str | None, bool, float | None]:
    """POST ``body`` within ``webhook.timeout`` seconds.

    Returns what went wrong (None: delivered), whether trying again may help, and the seconds
    the receiver's Retry-After asks to wait (None: it asks nothing readable).
    """
    deadline.at = time.monotonic() + webhook.timeout
    try:
        with client.stream("POST", webhook.url, content=body, headers=_HEADERS) as response:
            read = 0
            for chunk in response.iter_raw():
                read += len(chunk)
                if read > _MAX_RESPONSE_BYTES:
                    break
    except httpx.TimeoutException:
        return f"no answer within {webhook.timeout:g} s", True, None
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {error}", True, None
    finally:
        deadline.at = math.inf
    status = response.status_code
    if 200 <= status < 300:
        return None, False, None
    if 300 <= status < 400:
        return f"HTTP {status} (redirects are not followed)", False, None
    retry = status >= 500 or status in _RETRYABLE
    return f"HTTP {status}", retry, _retry_after(response.headers.get("retry-after")) if retry else None


def _retry_after(value: str | None) -> float | None:
    """The seconds a Retry-After value asks to wait (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        # Past 12 digits it is longer than any wait the policy allows (and int() of thousands
        # of digits is refused, or slow).
        return float(value) if len(value) <= 12 else math.inf
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None  # negative, fractional or unreadable: the policy's own backoff applies
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _shown(url: str, index: int) -> str:
    """How log lines name a webhook: ``notifications.webhooks[i] (scheme://host:port/…)``.

    The path, the query and any user and password are left out: Slack's webhook paths,
    and many receivers' query strings, are the credential.
    """
    try:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        rest = "/…" if parts.path not in ("", "/") or parts.query else ""
    except ValueError:
        origin, rest = "an unreadable URL", ""
    return f"notifications.webhooks[{index}] ({origin}{rest})"


def _scrub(text: str, url: str) -> str:
    """``text`` (an error's message) without the webhook's URL, path, query or credentials."""
    try:
        parts = urlsplit(url)
        secrets = [url, parts.path, parts.query, parts.netloc.rpartition("@")[0]]
    except ValueError:
        secrets = [url]
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) > 1:
            text = text.replace(secret, "…")
    return text


class _Deadline:
    """When the delivery attempt under way must end (``time.monotonic()``; inf between attempts)."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = math.inf

    def left(self, timeout: float | None, late: type[Exception]) -> float:
        """``timeout`` cut to what is left of the attempt; raises ``late`` when nothing is."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise late("the delivery attempt ran out of time")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write waits at most until the attempt's deadline."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        wait = self._deadline.left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, wait), self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's blocking sockets, every wait cut to the attempt's deadline (:class:`_Deadline`)."""

    def __init__(self, deadline: _Deadline) -> None:
        self._backend = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        wait = self._deadline.left(timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, wait, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        wait = self._deadline.left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, wait, socket_options), self._deadline)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)
