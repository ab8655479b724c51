"""Listeners that count decisions, scan failures and notifications in Prometheus."""

from __future__ import annotations

import threading
from typing import Any

from gate.model import Decision, RuleOutcome, Scan, ScanState
from gate.server._metrics import (
    DECISION_SECONDS,
    DECISIONS,
    FINDINGS,
    NOTIFICATIONS,
    POLICY_RESULTS,
    SCAN_FAILURES,
    SCAN_SECONDS,
    STORE_SECONDS,
)

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
        self._results: dict[tuple[str, RuleOutcome], Any] = {}

    def __call__(self, decision: Decision) -> None:
        """Count one recorded decision (a :attr:`gate.core.Gate.decision_listeners` entry)."""
        key = (decision.stage, decision.allowed)
        children = self._children.get(key)
        if children is None:
            children = self._labelled(key)
        counter, histogram = children
        counter.inc()
        histogram.observe(decision.timings.total)
        results = self._results
        for result in decision.results:
            # Most results pass: those are not counted per policy (the decision counter has them).
            if result.outcome is _PASS:
                continue
            key2 = (result.policy, result.outcome)
            child = results.get(key2)
            if child is None:
                child = self._result_child(key2)
            child.inc()

    def _result_child(self, key: tuple[str, RuleOutcome]) -> Any:
        with self._lock:
            child = POLICY_RESULTS.labels(key[0], key[1].value)
            # Policy names come from the loaded bundles; the bound only guards against churn.
            if len(self._results) < 4096:
                self._results[key] = child
            return child

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
    """Count a finished scan (a :attr:`gate.scan_jobs.ScanJobs.finish_listeners` entry).

    Failures by scanner, the run's duration by scanner and final state, and the findings
    of a completed scan by scanner and severity.
    """
    if scan.state is ScanState.FAILED:
        SCAN_FAILURES.labels(scan.scanner).inc()
    if scan.started_at is not None and scan.finished_at is not None:
        seconds = (scan.finished_at - scan.started_at).total_seconds()
        SCAN_SECONDS.labels(scan.scanner, scan.state.value).observe(max(0.0, seconds))
    if scan.state is ScanState.SUCCEEDED:
        counts = scan.counts
        for severity in ("critical", "high", "medium", "low", "info", "unknown"):
            found = getattr(counts, severity)
            if found:
                FINDINGS.labels(scan.scanner, severity).inc(found)


_PASS = RuleOutcome.PASS


class NotificationMetrics:
    """Counts notification deliveries (the notifier's observer)."""

    def counted(self, event: str, result: str) -> None:
        """Count one delivery's fate."""
        NOTIFICATIONS.labels(event, result).inc()


class StatementMetrics:
    """Observes the evidence store's statement times (:meth:`gate.store.SqlStore.observe_statements`)."""

    def __init__(self) -> None:
        self._children = {kind: STORE_SECONDS.labels(kind) for kind in _STATEMENTS}

    def __call__(self, kind: str, seconds: float) -> None:
        self._children[kind].observe(seconds)


_STATEMENTS = ("select", "insert", "update", "delete", "other")
