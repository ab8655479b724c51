"""Trivy reports map onto gate's findings: severity, CVSS, status, purl, kinds, artifact hints."""

from __future__ import annotations

import json
from pathlib import Path

from gate.model import FindingKind, FindingStatus, Severity
from scanners.reports import parse_report

KEY = b"unit-test-secret-key-0123456789abcdef"
FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "scanners"


def _parse(path: str, **kwargs: str):  # type: ignore[no-untyped-def]
    return parse_report("trivy", (FIXTURES / path).read_bytes(), secret_key=KEY, source=path, **kwargs)


def test_vulnerability_keeps_trivy_severity_and_takes_the_highest_cvss() -> None:
    parsed = _parse("trivy_local/pip-vuln.json")
    assert parsed.tool == "trivy"
    assert parsed.format == "trivy-json"
    assert parsed.tool_version == "0.76.0"
    werkzeug = next(f for f in parsed.findings if f.rule_id == "CVE-2019-14806")
    assert werkzeug.kind is FindingKind.VULNERABILITY
    # ghsa rates it HIGH while redhat says MEDIUM: Trivy's chosen severity is kept.
    assert werkzeug.severity is Severity.HIGH
    assert werkzeug.tool_severity == "HIGH"
    assert werkzeug.cvss_score == 7.5
    assert werkzeug.package is not None
    assert werkzeug.package.purl == "pkg:pypi/werkzeug@0.11"
    assert werkzeug.package.version == "0.11"
    assert werkzeug.package.fixed_versions == ("0.15.3",)
    assert werkzeug.fix_available
    assert werkzeug.location is not None
    assert werkzeug.location.path == "requirements.txt"
    assert werkzeug.references[0] == "https://avd.aquasec.com/nvd/cve-2019-14806"
    assert werkzeug.scan_id == ""


def test_every_trivy_status_maps_to_a_gate_status() -> None:
    parsed = _parse("trivy/all_statuses.json")
    statuses = sorted(f.status.value for f in parsed.findings)
    assert statuses == sorted(
        [
            FindingStatus.AFFECTED,  # unknown
            FindingStatus.NOT_AFFECTED,
            FindingStatus.AFFECTED,
            FindingStatus.AFFECTED,  # fixed: a fix exists
            FindingStatus.UNDER_INVESTIGATION,
            FindingStatus.WILL_NOT_FIX,
            FindingStatus.FIX_DEFERRED,
            FindingStatus.END_OF_LIFE,
        ]
    )


def test_image_report_gives_repo_digests_and_image_id() -> None:
    parsed = _parse("trivy_golden/alpine-39.json.golden")
    report = json.loads((FIXTURES / "trivy_golden/alpine-39.json.golden").read_bytes())
    assert parsed.artifact.name == report["ArtifactName"]
    assert parsed.artifact.type == "container_image"
    assert parsed.artifact.image_id == report["Metadata"]["ImageID"]
    assert parsed.artifact.repo_digests == tuple(report["Metadata"].get("RepoDigests", []))
    os_findings = [f for f in parsed.findings if f.package and f.package.purl.startswith("pkg:apk/")]
    assert os_findings
    # OS packages: the target names the image and tag, so it is no location.
    assert all(f.location is None or f.location.path == "" for f in os_findings)


def test_misconfiguration_secret_and_license_kinds() -> None:
    mixed = _parse("trivy/misconfigurations_and_secrets.json")
    kinds = sorted(f.kind.value for f in mixed.findings)
    assert kinds == ["misconfiguration", "secret", "secret", "vulnerability", "vulnerability"]
    licenses = _parse("trivy/license_scheme.json")
    assert {f.kind for f in licenses.findings} == {FindingKind.LICENSE}
    helm = _parse("trivy_local/helm-misconfig.json")
    misconfig = helm.findings[0]
    assert misconfig.location is not None
    assert misconfig.location.start_line > 0
    assert misconfig.rule_id.startswith("KSV")


def test_k8s_reports_scope_findings_by_workload() -> None:
    parsed = _parse("trivy/kubernetes.json")
    assert parsed.format == "trivy-k8s"
    assert parsed.artifact.type == "kubernetes"
    assert {f.kind for f in parsed.findings} == {FindingKind.VULNERABILITY, FindingKind.MISCONFIGURATION}


def test_operator_crds_read_vulnerabilities_checks_and_secrets() -> None:
    parsed = _parse("trivy_operator/all_reports_in_dict.json")
    assert parsed.format == "trivy-operator"
    kinds = {f.kind for f in parsed.findings}
    assert kinds == {FindingKind.VULNERABILITY, FindingKind.MISCONFIGURATION, FindingKind.SECRET}
    missing = _parse("trivy_operator/configauditreport_missing_checkid.json")
    assert missing.warnings
    assert "checkID: missing" in missing.warnings[0]


def test_paths_under_the_scan_root_become_relative() -> None:
    report = json.loads((FIXTURES / "trivy_local/pip-vuln.json").read_bytes())
    report["Results"][0]["Target"] = "/builds/ci/1234/requirements.txt"
    relative = parse_report("trivy", (FIXTURES / "trivy_local/pip-vuln.json").read_bytes(), secret_key=KEY)
    rooted = parse_report("trivy", json.dumps(report).encode(), secret_key=KEY, root="/builds/ci/1234")
    assert [f.fingerprint for f in rooted.findings] == [f.fingerprint for f in relative.findings]


def test_report_without_secrets_is_stored_byte_for_byte() -> None:
    data = (FIXTURES / "trivy_local/pip-vuln.json").read_bytes()
    assert parse_report("trivy", data, secret_key=KEY).redacted_report == data
