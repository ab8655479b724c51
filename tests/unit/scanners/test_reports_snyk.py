"""Snyk JSON: severity as Snyk gives it, paths merged, containers, IaC, REST issues."""

from __future__ import annotations

import json
from pathlib import Path

from gate.model import FindingKind, FindingStatus, Severity
from scanners.reports import parse_report

KEY = b"unit-test-secret-key-0123456789abcdef"
ASSETS = Path(__file__).resolve().parents[2] / "assets" / "scanners" / "reports"
FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "scanners"


def _parse(path: Path):  # type: ignore[no-untyped-def]
    return parse_report("snyk", path.read_bytes(), secret_key=KEY, source=path.name)


def test_snyk_severity_is_kept_not_recomputed_from_cvss() -> None:
    report = json.loads((FIXTURES / "snyk/single_project_many_vulns.json").read_bytes())
    parsed = _parse(FIXTURES / "snyk/single_project_many_vulns.json")
    by_id = {f.rule_id: f for f in parsed.findings}
    for vuln in report["vulnerabilities"]:
        finding = by_id[vuln["id"]]
        assert finding.tool_severity == vuln["severity"]
        assert finding.severity is Severity[vuln["severity"].upper()]
    assert any(f.cvss_score >= 9.0 and f.severity is not Severity.CRITICAL for f in parsed.findings)


def test_null_cvss_falls_back_to_zero_and_keeps_severity() -> None:
    parsed = _parse(FIXTURES / "snyk/single_project_None_cvss.json")
    (finding,) = parsed.findings
    assert finding.severity is Severity.LOW
    assert finding.package is not None
    assert finding.package.purl.startswith("pkg:")


def test_maven_packages_get_group_and_artifact_in_the_purl() -> None:
    parsed = _parse(FIXTURES / "snyk/single_project_many_vulns.json")
    purls = {f.package.purl for f in parsed.findings if f.package}
    assert any(p.startswith("pkg:maven/commons-fileupload/commons-fileupload@") for p in purls)
    assert all(f.location is not None and f.location.path == "pom.xml" for f in parsed.findings)


def test_container_report_reads_os_and_application_vulnerabilities() -> None:
    parsed = _parse(FIXTURES / "snyk/snykcontainer_issue_9270.json")
    assert parsed.artifact.type == "container_image"
    assert parsed.artifact.name == "sarim04/juiceshop"
    manifests = {f.location.path if f.location else "" for f in parsed.findings}
    assert "" in manifests
    assert "/juice-shop/package.json" in manifests


def test_iac_issues_are_misconfigurations_with_ignores_kept() -> None:
    # A hand-written `snyk iac test --json` result following the documented fields.
    parsed = _parse(ASSETS / "snyk-iac.json")
    assert parsed.format == "snyk-iac"
    by_rule = {f.rule_id: f for f in parsed.findings}
    assert set(by_rule) == {"SNYK-CC-K8S-10", "SNYK-CC-K8S-8"}
    root = by_rule["SNYK-CC-K8S-10"]
    assert root.kind is FindingKind.MISCONFIGURATION
    assert root.severity is Severity.MEDIUM
    assert root.location is not None
    assert (root.location.path, root.location.start_line) == ("deploy/k8s/deployment.yaml", 21)
    assert by_rule["SNYK-CC-K8S-8"].status is FindingStatus.WILL_NOT_FIX


def test_rest_issues_map_type_ignore_and_resolution() -> None:
    sca = _parse(FIXTURES / "snyk_issue_api/snyk_sca_scan_api_many_vuln.json")
    assert sca.format == "snyk-rest"
    statuses = sorted(f.status.value for f in sca.findings)
    assert statuses.count(FindingStatus.WILL_NOT_FIX.value) == 3
    assert statuses.count(FindingStatus.RESOLVED.value) == 1
    code = _parse(FIXTURES / "snyk_issue_api/snyk_code_scan_api_many_vuln.json")
    assert {f.kind for f in code.findings} == {FindingKind.CODE}
    assert all(f.location is not None and f.location.commit for f in code.findings)
