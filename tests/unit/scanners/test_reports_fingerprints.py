"""Fingerprints name the issue: stable across re-scans, version bumps, image tags and commits."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from scanners.reports import parse_report

KEY = b"unit-test-secret-key-0123456789abcdef"
FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "scanners"


def _load(path: str) -> Any:
    return json.loads((FIXTURES / path).read_bytes())


def _prints(tool: str, document: Any) -> list[str]:
    parsed = parse_report(tool, json.dumps(document).encode(), secret_key=KEY)
    return sorted(f.fingerprint for f in parsed.findings)


def test_rescan_with_new_report_id_time_and_image_tag_keeps_fingerprints() -> None:
    report = _load("trivy_golden/alpine-39.json.golden")
    rescan = copy.deepcopy(report)
    rescan["ReportID"] = "0190aaaa-0000-7000-8000-000000000000"
    rescan["CreatedAt"] = "2030-01-01T00:00:00Z"
    rescan["ArtifactName"] = "registry.example/app:v2"
    for result in rescan["Results"]:
        result["Target"] = "registry.example/app:v2 (alpine 3.9.5)"
        for vuln in result.get("Vulnerabilities", []):
            vuln.pop("Fingerprint", None)
            vuln["PkgIdentifier"]["PURL"] = vuln["PkgIdentifier"]["PURL"].replace(
                "distro=3.9.4", "distro=3.9.5"
            )
    assert _prints("trivy", report) == _prints("trivy", rescan)


def test_version_bump_that_does_not_fix_keeps_the_fingerprint() -> None:
    report = _load("trivy_local/pip-vuln.json")
    bumped = copy.deepcopy(report)
    for vuln in bumped["Results"][0]["Vulnerabilities"]:
        vuln["InstalledVersion"] = "0.12"
        vuln["PkgIdentifier"]["PURL"] = vuln["PkgIdentifier"]["PURL"].replace("@0.11", "@0.12")
    assert _prints("trivy", report) == _prints("trivy", bumped)


def test_same_advisory_in_another_lockfile_is_another_finding() -> None:
    report = _load("trivy_local/pip-vuln.json")
    twin = copy.deepcopy(report["Results"][0])
    twin["Target"] = "services/api/requirements.txt"
    report["Results"].append(twin)
    prints = _prints("trivy", report)
    assert len(prints) == len(set(prints)) == 4


def test_trivy_and_snyk_agree_on_a_cve_in_the_same_package_and_manifest() -> None:
    trivy = _load("trivy_local/pip-vuln.json")
    vuln = trivy["Results"][0]["Vulnerabilities"][0]
    snyk = {
        "ok": False,
        "packageManager": "pip",
        "displayTargetFile": trivy["Results"][0]["Target"],
        "projectName": "pip",
        "vulnerabilities": [
            {
                "id": "SNYK-PYTHON-WERKZEUG-0001",
                "title": "Insufficient Randomness",
                "severity": "high",
                "packageName": vuln["PkgName"].lower(),
                "version": "0.11",
                "identifiers": {"CVE": [vuln["VulnerabilityID"]], "CWE": ["CWE-331"]},
                "from": ["pip@0.0.0", "werkzeug@0.11"],
            }
        ],
    }
    trivy_prints = set(_prints("trivy", trivy))
    assert _prints("snyk", snyk)[0] in trivy_prints


def test_misconfiguration_keeps_its_fingerprint_when_lines_move() -> None:
    report = _load("trivy_local/helm-misconfig.json")
    moved = copy.deepcopy(report)
    for result in moved["Results"]:
        for item in result.get("Misconfigurations", []):
            cause = item.get("CauseMetadata", {})
            cause["StartLine"] = cause.get("StartLine", 0) + 10
            cause["EndLine"] = cause.get("EndLine", 0) + 10
    assert _prints("trivy", report) == _prints("trivy", moved)


def test_redacted_gitleaks_report_falls_back_to_the_position() -> None:
    leaks = _load("gitleaks_local/dir-secrets-redacted.json")
    prints = _prints("gitleaks", leaks)
    assert len(prints) == len(set(prints)) == len(leaks)


def test_snyk_dependency_paths_of_one_issue_merge_into_one_finding() -> None:
    report = _load("snyk/single_project_upgrade_libs.json")
    parsed = parse_report("snyk", json.dumps(report).encode(), secret_key=KEY)
    distinct = {(v["id"], v["packageName"]) for v in report["vulnerabilities"]}
    assert len(parsed.findings) == len(distinct) < len(report["vulnerabilities"])
    assert sum(parsed.occurrences.values()) == len(report["vulnerabilities"])


def test_sonarqube_issue_keeps_its_fingerprint_across_analyses_when_its_line_hash_does() -> None:
    page = _load("sonarqube/findings_over_api.json")
    later = copy.deepcopy(page)
    for issue in later["issues"]:
        issue["line"] = issue.get("line", 0) + 5
        issue["updateDate"] = "2030-01-01T00:00:00+0000"
        issue.pop("textRange", None)
    assert _prints("sonarqube", page) == _prints("sonarqube", later)
