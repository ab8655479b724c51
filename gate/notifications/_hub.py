"""What a serving gate announces: its decisions, its scans and the waivers about to end."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from gate.model import Decision, Finding, Scan, ScanState, Severity
from gate.notifications._events import (
    CRITICAL_FINDING,
    DENY,
    WAIVER_EXPIRING,
    ExpiringWaiver,
    Notification,
    denied,
    new_criticals,
    waiver_expiring,
)
from gate.notifications._notifier import Notifier, NotifierObserver, RetryPolicy, Webhook
from gate.store import EvidenceStore, FindingQuery

if TYPE_CHECKING:
    from gate.config import NotificationSettings

log = logging.getLogger("gate.notifications")

# Critical findings compared per scan at most (pages of the store's largest page size).
MAX_COMPARED_FINDINGS = 10_000


class WaiverSource(Protocol):
    """Where the waiver check reads waivers (the store's waiver records)."""

    def expiring(self, now: datetime, until: datetime) -> Sequence[ExpiringWaiver]:
        """Waivers in force at ``now`` that end before ``until``."""


class StoreWaivers:
    """The store's waiver records as a :class:`WaiverSource`."""

    def __init__(self, store: EvidenceStore) -> None:
        """Read waivers from ``store``."""
        self._store = store

    def expiring(self, now: datetime, until: datetime) -> Sequence[ExpiringWaiver]:
        """Waivers in force at ``now`` (not revoked) that end before ``until``."""
        return [
            ExpiringWaiver(w.id, w.owner, w.policy, w.rule, w.expires_at, w.reason)
            for w in self._store.list_waivers(active_at=now)
            if w.expires_at < until
        ]


class NotificationHub:
    """Turns recorded decisions and finished scans into notifications, and checks waivers periodically.

    Listens through :attr:`Gate.decision_listeners <gate.core.Gate.decision_listeners>` and
    :attr:`ScanJobs.finish_listeners <gate.scan_jobs.ScanJobs.finish_listeners>`; both
    listeners only queue work. Every check of the waivers announces the waivers
    ending within ``waiver_window`` that this process has not announced yet.
    """

    def __init__(
        self,
        notifier: Notifier,
        store: EvidenceStore,
        *,
        clock: Callable[[], datetime],
        waivers: WaiverSource | None = None,
        waiver_window: timedelta = timedelta(days=7),
        waiver_interval: float = 3600.0,
    ) -> None:
        """Connect ``notifier`` to ``store``'s records; ``waivers`` None: no waiver check."""
        self.notifier = notifier
        self._store = store
        self._clock = clock
        self._waivers = waivers
        self._window = waiver_window
        self._interval = waiver_interval
        self._announced: set[str] = set()
        self._stop = threading.Event()
        self._checker: threading.Thread | None = None

    @classmethod
    def from_settings(
        cls,
        settings: NotificationSettings,
        store: EvidenceStore,
        *,
        clock: Callable[[], datetime],
        observer: NotifierObserver | None = None,
        waivers: WaiverSource | None = None,
        check_waivers: bool = True,
    ) -> NotificationHub | None:
        """The hub for ``notifications`` settings; None when no webhook is configured.

        ``waivers`` defaults to the store's waiver records. ``check_waivers`` False: no waiver
        check (a worker process: its main process announces the waivers ending).

        Raises:
            ConfigError: a webhook's CA file cannot be loaded.
        """
        if not settings.webhooks:
            return None
        webhooks = [
            Webhook(w.url, w.format, frozenset(w.events), w.timeout, w.ca_file) for w in settings.webhooks
        ]
        notifier = Notifier(
            webhooks,
            queue_size=settings.queue_size,
            retry=RetryPolicy(settings.max_attempts, settings.backoff, settings.max_backoff),
            observer=observer,
        )
        return cls(
            notifier,
            store,
            clock=clock,
            waivers=(waivers if waivers is not None else StoreWaivers(store)) if check_waivers else None,
            waiver_window=timedelta(seconds=settings.waiver_window),
            waiver_interval=settings.waiver_check_interval,
        )

    def start(self) -> None:
        """Start delivering, and checking waivers when there is a waiver source."""
        self.notifier.start()
        if self._waivers is not None and self.notifier.wants(WAIVER_EXPIRING):
            self._checker = threading.Thread(target=self._check_waivers, name="gate-waivers", daemon=True)
            self._checker.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the waiver check and the notifier (queued notifications get ``timeout`` seconds)."""
        self._stop.set()
        if self._checker is not None:
            self._checker.join(timeout)
        self.notifier.close(timeout)

    def on_decision(self, decision: Decision) -> None:
        """A decision was recorded: announce it if it denied."""
        if not decision.allowed and self.notifier.wants(DENY):
            notification = denied(decision)
            if notification is not None:
                self.notifier.submit(notification)

    def on_scan(self, scan: Scan, previous_scan_id: str) -> None:
        """A scan ended: compare its critical findings with the previous scan's, on the delivery thread."""
        if scan.state is not ScanState.SUCCEEDED or not scan.counts.critical:
            return
        self.notifier.submit_later(CRITICAL_FINDING, lambda: self._new_criticals(scan, previous_scan_id))

    def check_waivers(self) -> int:
        """Queue a notification per waiver ending within the window not announced yet; return the count."""
        if self._waivers is None:
            return 0
        now = self._clock()
        queued = 0
        expiring = self._waivers.expiring(now, now + self._window)
        # Forget waivers that ended or were revoked: the set stays as small as the window.
        self._announced &= {waiver.id for waiver in expiring}
        for waiver in expiring:
            if waiver.id in self._announced:
                continue
            self._announced.add(waiver.id)
            self.notifier.submit(waiver_expiring(waiver, now))
            queued += 1
        return queued

    def _check_waivers(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_waivers()
            except Exception:
                log.exception("the waiver check failed; trying again in %g s", self._interval)
            self._stop.wait(self._interval)

    def _new_criticals(self, scan: Scan, previous_scan_id: str) -> list[Notification]:
        current = self._criticals(scan.id)
        previous = self._criticals(previous_scan_id) if previous_scan_id else []
        found = new_criticals(scan, current, previous)
        return [found] if found is not None else []

    def _criticals(self, scan_id: str) -> list[Finding]:
        findings: list[Finding] = []
        token = ""
        while len(findings) < MAX_COMPARED_FINDINGS:
            query = FindingQuery(
                scan_id=scan_id, min_severity=Severity.CRITICAL, page_size=1000, page_token=token
            )
            page = self._store.list_findings(query)
            findings.extend(page.findings)
            token = page.next_token
            if not token:
                break
        return findings
