"""Prometheus metrics of the gate server (exported on the metrics listener)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

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
