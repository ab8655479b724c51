"""SonarQube bundles and search responses: both severity axes, kinds, statuses, quality gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gate.model import FindingKind, FindingStatus, Severity
from scanners.reports import ReportError, parse_report

KEY = b"unit-test-secret-key-0123456789abcdef"
ASSETS = Path(__file__).resolve().parents[2] / "assets" / "scanners" / "reports"
FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "scanners"


@pytest.fixture(scope="module")
def bundle() -> dict[str, object]:
    return json.loads((ASSETS / "sonarqube-bundle-10x.json").read_bytes())


def _parse(document: object):  # type: ignore[no-untyped-def]
    return parse_report("sonarqube", json.dumps(document).encode(), secret_key=KEY, source="bundle.json")


def test_bundle_gives_quality_gate_version_and_artifact(bundle: dict[str, object]) -> None:
    parsed = _parse(bundle)
    assert parsed.format == "sonarqube-bundle"
    assert parsed.tool_version == "10.6.0.92116"
    assert parsed.quality_gate is not None
    assert parsed.quality_gate.status == "ERROR"
    assert [c.metric for c in parsed.quality_gate.conditions] == ["new_coverage", "new_security_rating"]
    assert parsed.quality_gate.conditions[0].actual == "82.5"
    assert parsed.artifact.name == "shop-api"
    assert parsed.artifact.branch == "main"
    assert parsed.artifact.commit == "3cf91cc097c1689a8d9dd7e968012d87cc1d3a36"


def test_impacts_win_over_legacy_severity_and_both_are_kept_apart(bundle: dict[str, object]) -> None:
    by_rule = {f.rule_id: f for f in _parse(bundle).findings}
    injection = by_rule["java:S3649"]
    # Legacy CRITICAL would be HIGH; the 10.x impact says BLOCKER.
    assert injection.severity is Severity.CRITICAL
    assert injection.tool_severity == "SECURITY:BLOCKER"
    assert injection.kind is FindingKind.CODE
    assert injection.location is not None
    assert injection.location.path == "src/main/java/shop/OrderRepository.java"
    assert (injection.location.start_line, injection.location.end_line) == (42, 43)
    assert "Database queries" in injection.description
    unused = by_rule["java:S1144"]
    # No type in MQR-only output: the highest impact's quality decides the kind.
    assert unused.kind is FindingKind.CODE_SMELL
    assert unused.severity is Severity.MEDIUM
    assert unused.status is FindingStatus.WILL_NOT_FIX
    legacy = by_rule["java:S2259"]
    assert (legacy.kind, legacy.severity, legacy.tool_severity) == (FindingKind.BUG, Severity.MEDIUM, "MAJOR")
    assert legacy.status is FindingStatus.NOT_AFFECTED
    # No component entry: the path comes from the component key.
    assert legacy.location is not None
    assert legacy.location.path == "src/main/java/shop/Cart.java"


def test_hotspots_take_severity_from_probability_and_status_from_review(bundle: dict[str, object]) -> None:
    hotspots = {f.rule_id: f for f in _parse(bundle).findings if f.kind is FindingKind.HOTSPOT}
    assert hotspots["java:S4790"].severity is Severity.MEDIUM
    assert hotspots["java:S4790"].status is FindingStatus.AFFECTED
    assert hotspots["java:S2068"].severity is Severity.HIGH
    assert hotspots["java:S2068"].status is FindingStatus.NOT_AFFECTED


@pytest.mark.parametrize("status", ["FAILED", "CANCELED", "PENDING"])
def test_an_analysis_that_did_not_succeed_fails_the_import(bundle: dict[str, object], status: str) -> None:
    failed = dict(bundle, task={"id": "t", "status": status})
    with pytest.raises(ReportError, match=rf"^bundle\.json: task\.status: .*got '{status}'"):
        _parse(failed)


def test_single_search_responses_and_bare_arrays_are_read() -> None:
    page = json.loads((FIXTURES / "sonarqube/findings_over_api.json").read_bytes())
    parsed = parse_report("sonarqube", json.dumps(page).encode(), secret_key=KEY)
    assert parsed.format == "sonarqube-issues"
    located = [f for f in parsed.findings if f.location is not None]
    assert all(not f.location.path.startswith("testapplication:") for f in located if f.location)
    bare = parse_report("sonarqube", json.dumps(page["issues"]).encode(), secret_key=KEY)
    assert bare.entry_counts == parsed.entry_counts
