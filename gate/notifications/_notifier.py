"""Delivery of notifications to webhooks from one background thread.

Producers (decisions, scans, the waiver check) only put work on a bounded
queue and return; when it is full the notification is dropped, counted and
logged, so that a slow or dead receiver never holds up a decision or a scan.
The worker POSTs each notification to every webhook that wants its event,
retrying failures (transport errors, 408, 429, 5xx) with exponential backoff
and jitter. Retries wait in a heap, not in a sleep, so one failing receiver
does not delay the others' deliveries.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

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
        for client in self._clients:
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
                    body = FORMATS[webhook.format](notification)
                    deliveries.append(_Delivery(0.0, next(self._order), notification, index, body))
        return deliveries

    def _attempt(self, delivery: _Delivery, *, final: bool) -> None:
        webhook = self.webhooks[delivery.webhook]
        client = self._clients[delivery.webhook]
        problem, retry = _post(client, webhook, delivery.body)
        event = delivery.notification.event
        if problem is None:
            self._count(event, "sent")
            return
        if retry and not final and delivery.attempt < self.retry.max_attempts:
            if len(self._retries) >= self._queue_size:
                self._count(event, "dropped")
                log.warning("notification retries full: dropped a %s notification to %s", event, webhook.url)
                return
            delivery.due = time.monotonic() + self.retry.delay(delivery.attempt, self._rng)
            delivery.order = next(self._order)
            delivery.attempt += 1
            heapq.heappush(self._retries, delivery)
            log.info(
                "%s notification to %s failed (attempt %d of %d): %s; retrying",
                event,
                webhook.url,
                delivery.attempt - 1,
                self.retry.max_attempts,
                problem,
            )
            return
        self._count(event, "failed")
        log.warning(
            "%s notification to %s not delivered after %d attempt(s): %s",
            event,
            webhook.url,
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


def _client(webhook: Webhook, index: int) -> httpx.Client:
    verify: ssl.SSLContext | bool = True
    if webhook.ca_file is not None:
        try:
            verify = ssl.create_default_context(cafile=str(webhook.ca_file))
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(
                "configuration", f"notifications.webhooks[{index}].ca_file", f"cannot load: {error}"
            ) from None
    # No redirects: a receiver that moved is a configuration error, not a reason to post elsewhere.
    return httpx.Client(timeout=webhook.timeout, verify=verify, follow_redirects=False, trust_env=False)


def _post(client: httpx.Client, webhook: Webhook, body: bytes) -> tuple[str | None, bool]:
    """POST ``body``; return (what went wrong or None, whether trying again may help)."""
    try:
        with client.stream(
            "POST", webhook.url, content=body, headers={"content-type": "application/json"}
        ) as response:
            read = 0
            for chunk in response.iter_bytes():
                read += len(chunk)
                if read > _MAX_RESPONSE_BYTES:
                    break
    except httpx.TimeoutException:
        return f"no answer within {webhook.timeout:g} s", True
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {error}", True
    status = response.status_code
    if 200 <= status < 300:
        return None, False
    return f"HTTP {status}", status >= 500 or status in _RETRYABLE
