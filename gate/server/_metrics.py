"""Prometheus metrics of the gate server (exported on the metrics listener)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from gate._cache import CacheStats

import gate

BUILD_INFO = Info("gate_build", "Version of the running gate.")
BUILD_INFO.info({"version": gate.__version__})

GRPC_REQUESTS = Counter(
    "gate_grpc_requests_total", "gRPC requests handled, by method and status code.", ["method", "code"]
)
GRPC_LATENCY = Histogram(
    "gate_grpc_request_duration_seconds",
    "Time to answer a gRPC request, by method.",
    ["method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
HTTP_REQUESTS = Counter(
    "gate_webhook_requests_total", "Webhook HTTP requests, by path and status.", ["path", "status"]
)
STORE_UP = Gauge("gate_store_up", "1 when the evidence store answered the last readiness check.")
ADMISSION_SECONDS = Histogram(
    "gate_admission_review_duration_seconds",
    "Time to decide an admission review, by part: total, policy evaluation, evidence look-up.",
    ["part"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
ADMISSION_DECISIONS = Counter(
    "gate_admission_decisions_total",
    "Admission reviews answered, by answer (allowed, denied) and whether the failure mode gave it.",
    ["answer", "failure_mode"],
)
ADMISSION_EVALUATIONS = Counter(
    "gate_admission_evaluations_total",
    "Admission reviews evaluated, by where: on the event loop (everything needed was in memory)"
    " or on a review thread (a large body, or a store, registry or queue had to be waited for).",
    ["where"],
)
GRPC_EVALUATIONS = Counter(
    "gate_grpc_evaluations_total",
    "Decide and Review calls answered, by method and where: on the event loop (everything needed"
    " was in memory) or on a worker thread (a store, registry or queue had to be waited for).",
    ["method", "where"],
)
DECISIONS = Counter(
    "gate_decisions_total",
    "Decisions recorded (admission reviews and pipeline Decide), by stage and result (allowed, denied).",
    ["stage", "result"],
)
DECISION_SECONDS = Histogram(
    "gate_decision_duration_seconds",
    "Time to reach a recorded decision, by stage.",
    ["stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
# The name predates grpc.processes; kept so that dashboards and alerts keep working.
WORKER_RESTARTS = Counter(
    "gate_webhook_worker_restarts_total",
    "Worker processes (webhook.processes, grpc.processes) started again after they exited unexpectedly.",
)
DECISION_BATCHES = Histogram(
    "gate_decision_batch_size",
    "Decisions stored per transaction, by writer: the event loop (decisions.writer loop), the"
    " writer thread (also the loop's batches it took over) or the writer process (with"
    " decisions.writer auto, also what its parent stores before the child starts).",
    ["writer"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
DECISION_WRITER_RESTARTS = Counter(
    "gate_decision_writer_restarts_total",
    "Decision writer processes (decisions.writer) started again after one exited or stopped answering.",
)
SCAN_FAILURES = Counter("gate_scan_failures_total", "Scans this gate ran that failed, by scanner.", ["tool"])
POLICY_RELOADS = Counter(
    "gate_policy_reloads_total", "Policy bundles loaded after a change of the policy sources."
)
POLICY_RELOAD_ERRORS = Counter(
    "gate_policy_reload_errors_total",
    "Policy reloads refused because a file did not load (the previous bundle stayed in force).",
)
NOTIFICATIONS = Counter(
    "gate_notifications_total",
    "Notification deliveries, by event and result (sent, failed after every attempt, dropped).",
    ["event", "result"],
)
POLICY_RESULTS = Counter(
    "gate_policy_results_total",
    "Rule results of recorded decisions that were not a pass (fail, warn, error, skip), "
    "by policy and result.",
    ["policy", "result"],
)
SCAN_SECONDS = Histogram(
    "gate_scan_duration_seconds",
    "Time from start to end of the scans this gate ran, by scanner and final state.",
    ["tool", "state"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
FINDINGS = Counter(
    "gate_findings_total",
    "Findings of the scans that completed, by scanner and severity.",
    ["tool", "severity"],
)
STORE_SECONDS = Histogram(
    "gate_store_statement_duration_seconds",
    "Time of the evidence store's database statements, by kind (select, insert, update, delete, other).",
    ["statement"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)


@cache
def labelled(metric: Counter | Histogram, *values: str) -> Any:
    """The child of ``metric`` for these label values, looked up once per process.

    For the request path: ``labels()`` takes a lock and builds its key on every call.
    """
    return metric.labels(*values)


class CacheCollector(Collector):
    """``gate_cache_requests_total`` and ``gate_cache_entries`` read from the caches at scrape time.

    The caches keep their own counters (:class:`gate._cache.CacheStats`); reading them when
    Prometheus scrapes costs the request path nothing. Sources are added by each server
    of the process and removed when it stops; counters of one cache name are summed.
    """

    def __init__(self) -> None:
        self._sources: list[Callable[[], Mapping[str, CacheStats]]] = []
        self._lock = threading.Lock()

    def add(self, source: Callable[[], Mapping[str, CacheStats]]) -> Callable[[], None]:
        """Read ``source`` at every scrape; returns the function that stops reading it."""
        with self._lock:
            self._sources.append(source)

        def remove() -> None:
            with self._lock:
                if source in self._sources:
                    self._sources.remove(source)

        return remove

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        totals: dict[str, list[int]] = {}
        with self._lock:
            sources = list(self._sources)
        for source in sources:
            for name, stats in source().items():
                total = totals.setdefault(name, [0, 0, 0, 0])
                for index, value in enumerate((stats.hits, stats.misses, stats.shared, stats.size)):
                    total[index] += value
        requests = CounterMetricFamily(
            "gate_cache_requests",
            "Look-ups of gate's per-replica caches, by cache and result (hit, miss, or shared: "
            "waited for a computation another request had started).",
            labels=["cache", "result"],
        )
        entries = GaugeMetricFamily("gate_cache_entries", "Entries held, by cache.", labels=["cache"])
        for name, (hits, misses, shared, size) in sorted(totals.items()):
            requests.add_metric([name, "hit"], hits)
            requests.add_metric([name, "miss"], misses)
            requests.add_metric([name, "shared"], shared)
            entries.add_metric([name], size)
        yield requests
        yield entries


CACHES = CacheCollector()
REGISTRY.register(CACHES)
