"""Model <-> protobuf mapping: enums cover the contract both ways, values survive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from gate import _convert as cv
from gate import model as m
from gate.errors import InvalidArgument
from gate.v1 import common_pb2, decision_pb2, sbom_pb2, scan_pb2

NOW = datetime(2026, 11, 27, 9, 30, 15, 123456, tzinfo=UTC)

TABLES = [
    (cv.SEVERITY, common_pb2.Severity),
    (cv.ARTIFACT_KIND, common_pb2.ArtifactKind),
    (cv.TARGET_KIND, scan_pb2.TargetKind),
    (cv.SCAN_STATE, scan_pb2.ScanState),
    (cv.FINDING_KIND, scan_pb2.FindingKind),
    (cv.FINDING_STATUS, scan_pb2.FindingStatus),
    (cv.SBOM_FORMAT, sbom_pb2.SbomFormat),
    (cv.RULE_OUTCOME, decision_pb2.RuleOutcome),
    (cv.ENFORCEMENT, decision_pb2.EnforcementAction),
]


@pytest.mark.parametrize(
    ("table", "wrapper"), TABLES, ids=lambda t: getattr(t, "DESCRIPTOR", None) and t.DESCRIPTOR.name
)
def test_every_proto_enum_value_but_unspecified_has_a_model_member(table: dict, wrapper: object) -> None:
    proto_values = {v for v in wrapper.values() if v != 0}  # type: ignore[attr-defined]
    assert set(table.values()) == proto_values


def test_unknown_enum_values_are_rejected_with_the_field_path() -> None:
    with pytest.raises(InvalidArgument) as caught:
        cv.enum_from_proto(cv.SEVERITY, 42, "min_severity")
    assert caught.value.message == "min_severity: unknown enum value 42; expected one of 0, 1, 2, 3, 4, 5, 6"
    assert cv.enum_from_proto(cv.SEVERITY, 0, "min_severity") is None
    assert cv.enum_from_proto(cv.SEVERITY, common_pb2.SEVERITY_HIGH, "x") is m.Severity.HIGH


def test_scan_fields_reach_the_wire() -> None:
    scan = m.Scan(
        id="0f8e2b9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
        artifact_digest="sha256:" + "a" * 64,
        scanner="trivy",
        target=m.ScanTarget(m.TargetKind.IMAGE, "registry.example/app:1"),
        state=m.ScanState.SUCCEEDED,
        created_at=NOW,
        finished_at=NOW,
        counts=m.SeverityCounts(critical=1, high=2),
        finding_count=3,
        scanner_version="0.76.0",
    )
    message = cv.scan_to_proto(scan)
    assert message.state == scan_pb2.SCAN_STATE_SUCCEEDED
    assert message.target.kind == scan_pb2.TARGET_KIND_IMAGE
    assert message.created_at.ToDatetime(tzinfo=UTC) == NOW
    assert not message.HasField("started_at")
    assert (message.counts.critical, message.counts.high, message.finding_count) == (1, 2, 3)


def test_finding_package_and_location_are_optional() -> None:
    finding = m.Finding(
        fingerprint="sha256:" + "b" * 64,
        scan_id="0f8e2b9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
        scanner="gitleaks",
        kind=m.FindingKind.SECRET,
        rule_id="aws-access-key-id",
        title="AWS key",
        severity=m.Severity.HIGH,
        location=m.Location("app/config.py", 3, 3),
        redacted_match="AKIA************MPLE",
    )
    message = cv.finding_to_proto(finding)
    assert not message.HasField("package")
    assert message.location.path == "app/config.py"
    assert message.redacted_match == "AKIA************MPLE"


def test_decision_timings_and_results_reach_the_wire() -> None:
    decision = m.Decision(
        id="0f8e2b9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
        allowed=False,
        message="denied by require-signature",
        stage="deploy",
        decided_at=NOW,
        results=(m.RuleResult("require-signature", "check", m.RuleOutcome.FAIL, "unsigned"),),
        timings=m.DecisionTimings(total=0.0125, policy=0.002, evidence=0.0005),
    )
    message = cv.decision_to_proto(decision)
    assert message.results[0].outcome == decision_pb2.RULE_OUTCOME_FAIL
    assert message.results[0].action == decision_pb2.ENFORCEMENT_ACTION_ENFORCE
    assert message.timings.total.ToNanoseconds() == 12_500_000


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 11, 29, 19, 59, 58, 123456, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # before the epoch: negative seconds
        datetime(2026, 3, 29, 2, 30, 0, 7, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2026, 3, 29, 2, 30, 0, 7, tzinfo=timezone(-timedelta(hours=8))),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(2026, 11, 29, 12, 0, 0, 500000),  # naive: local time
    ],
)
def test_timestamps_are_the_instant_protobufs_own_conversion_gives(when: datetime) -> None:
    expected = Timestamp()
    expected.FromDatetime(when.astimezone(UTC))
    assert cv.timestamp(when) == expected
    assert cv.from_timestamp(expected) == when.astimezone(UTC)
