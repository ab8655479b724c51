"""Decision metrics: counted by stage and result, with a bounded number of stage labels."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import REGISTRY

from gate.model import Decision, DecisionTimings
from gate.server._observe import MAX_STAGE_LABELS, DecisionMetrics


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
