"""Listeners that count decisions, scan failures and notifications in Prometheus."""

from __future__ import annotations

import threading
from typing import Any

from gate.model import Decision, Scan, ScanState
from gate.server._metrics import DECISION_SECONDS, DECISIONS, NOTIFICATIONS, SCAN_FAILURES

# Stage names come from callers: past this many distinct ones, the rest count as "other"
# (every label value is a time series Prometheus keeps).
MAX_STAGE_LABELS = 32


class DecisionMetrics:
    """Counts recorded decisions by stage and result, and observes their duration."""

    def __init__(self) -> None:
        """Start with no stage seen."""
        # (stage, allowed) -> the labelled children: ``labels()`` costs ~5 us a call, a dict hit ~50 ns.
        self._children: dict[tuple[str, bool], tuple[Any, Any]] = {}
        self._stages: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, decision: Decision) -> None:
        """Count one recorded decision (a :attr:`gate.core.Gate.decision_listeners` entry)."""
        key = (decision.stage, decision.allowed)
        children = self._children.get(key)
        if children is None:
            children = self._labelled(key)
        counter, histogram = children
        counter.inc()
        histogram.observe(decision.timings.total)

    def _labelled(self, key: tuple[str, bool]) -> tuple[Any, Any]:
        stage, allowed = key
        with self._lock:
            if stage not in self._stages and len(self._stages) < MAX_STAGE_LABELS:
                self._stages.add(stage)
            label = stage if stage in self._stages else "other"
            children = (
                DECISIONS.labels(label, "allowed" if allowed else "denied"),
                DECISION_SECONDS.labels(label),
            )
            # Stages counted as "other" are not remembered past a bound: callers name them.
            if label == stage or len(self._children) < 4 * MAX_STAGE_LABELS:
                self._children[key] = children
            return children


def count_scan_failure(scan: Scan, previous_scan_id: str) -> None:
    """Count a failed scan by its scanner (a :attr:`gate.scan_jobs.ScanJobs.finish_listeners` entry)."""
    if scan.state is ScanState.FAILED:
        SCAN_FAILURES.labels(scan.scanner).inc()


class NotificationMetrics:
    """Counts notification deliveries (the notifier's observer)."""

    def counted(self, event: str, result: str) -> None:
        """Count one delivery's fate."""
        NOTIFICATIONS.labels(event, result).inc()
