"""Decision metrics: counted by stage and result, with a bounded number of stage labels."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from gate.model import (
    Decision,
    DecisionTimings,
    RuleOutcome,
    RuleResult,
    Scan,
    ScanState,
    ScanTarget,
    SeverityCounts,
    TargetKind,
)
from gate.server._observe import MAX_STAGE_LABELS, DecisionMetrics, count_scan_failure


def decision(stage: str, allowed: bool, seconds: float = 0.002) -> Decision:
    return Decision(
        id="0f8e0c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6",
        allowed=allowed,
        message="",
        stage=stage,
        decided_at=datetime(2026, 11, 27, tzinfo=UTC),
        timings=DecisionTimings(total=seconds),
    )


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_decisions_are_counted_by_stage_and_result_and_timed() -> None:
    metrics = DecisionMetrics()
    before = sample("gate_decisions_total", stage="metrics-test", result="denied")
    timed = sample("gate_decision_duration_seconds_sum", stage="metrics-test")
    for allowed in (False, False, True):
        metrics(decision("metrics-test", allowed, 0.25))
    assert sample("gate_decisions_total", stage="metrics-test", result="denied") == before + 2
    assert sample("gate_decisions_total", stage="metrics-test", result="allowed") >= 1
    assert sample("gate_decision_duration_seconds_sum", stage="metrics-test") == timed + 0.75


def test_stage_names_past_the_limit_are_counted_as_other() -> None:
    metrics = DecisionMetrics()
    other = sample("gate_decisions_total", stage="other", result="allowed")
    stages = [f"cap-test-{index}" for index in range(MAX_STAGE_LABELS + 5)]
    for stage in stages:
        metrics(decision(stage, True))
        metrics(decision(stage, True))
    assert sample("gate_decisions_total", stage=stages[MAX_STAGE_LABELS - 1], result="allowed") == 2
    assert sample("gate_decisions_total", stage=stages[MAX_STAGE_LABELS], result="allowed") == 0
    assert sample("gate_decisions_total", stage="other", result="allowed") == other + 10


def test_rule_results_other_than_pass_are_counted_by_policy() -> None:
    metrics = DecisionMetrics()
    before = sample("gate_policy_results_total", policy="metrics-policy", result="fail")
    results = (
        RuleResult("metrics-policy", "a", RuleOutcome.FAIL, "no"),
        RuleResult("metrics-policy", "b", RuleOutcome.PASS, "ok"),
        RuleResult("metrics-other", "c", RuleOutcome.ERROR, "broken"),
    )
    metrics(dataclasses.replace(decision("metrics-test", False), results=results))
    assert sample("gate_policy_results_total", policy="metrics-policy", result="fail") == before + 1
    assert sample("gate_policy_results_total", policy="metrics-policy", result="pass") == 0
    assert sample("gate_policy_results_total", policy="metrics-other", result="error") >= 1


def test_a_finished_scan_is_timed_and_its_findings_counted_by_severity() -> None:
    started = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    scan = Scan(
        id="5f8e0c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6",
        artifact_digest="sha256:" + "a" * 64,
        scanner="metrics-tool",
        target=ScanTarget(TargetKind.FILESYSTEM, "/src"),
        state=ScanState.SUCCEEDED,
        created_at=started,
        started_at=started,
        finished_at=started + timedelta(seconds=12),
        counts=SeverityCounts(critical=2, low=5),
    )
    before = sample("gate_findings_total", tool="metrics-tool", severity="critical")
    timed = sample("gate_scan_duration_seconds_sum", tool="metrics-tool", state="succeeded")
    count_scan_failure(scan, "")
    assert sample("gate_findings_total", tool="metrics-tool", severity="critical") == before + 2
    assert sample("gate_findings_total", tool="metrics-tool", severity="low") >= 5
    assert sample("gate_scan_duration_seconds_sum", tool="metrics-tool", state="succeeded") == timed + 12
    failed = dataclasses.replace(scan, state=ScanState.FAILED, counts=SeverityCounts())
    count_scan_failure(failed, "")
    assert sample("gate_scan_failures_total", tool="metrics-tool") >= 1
    assert sample("gate_scan_duration_seconds_count", tool="metrics-tool", state="failed") >= 1
