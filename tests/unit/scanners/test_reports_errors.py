"""Malformed, truncated, oversized and wrongly shaped reports fail with the source and JSON path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gate.errors import InvalidArgument
from scanners.reports import ReportError, UnsupportedReport, detect_tool, parse_report

KEY = b"unit-test-secret-key-0123456789abcdef"
FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "scanners"


def _trivy_with_results(n: int) -> dict[str, object]:
    results = [
        {"Target": f"t{i}", "Class": "lang-pkgs", "Type": "pip", "Vulnerabilities": []} for i in range(n)
    ]
    return {"SchemaVersion": 2, "ArtifactName": "x", "Results": results}


def _message(tool: str, data: bytes, source: str = "report.json") -> str:
    with pytest.raises(InvalidArgument) as raised:
        parse_report(tool, data, secret_key=KEY, source=source)
    return raised.value.message


def test_unknown_severity_names_the_source_and_json_path() -> None:
    report = _trivy_with_results(4)
    vuln = {"VulnerabilityID": "CVE-1", "PkgName": "a", "InstalledVersion": "1", "Severity": "SUPER"}
    report["Results"][3]["Vulnerabilities"] = [vuln]  # type: ignore[index]
    message = _message("trivy", json.dumps(report).encode())
    assert message == (
        "report.json: Results[3].Vulnerabilities[0].Severity: expected one of 'CRITICAL', 'HIGH', "
        "'MEDIUM', 'LOW', 'UNKNOWN', got 'SUPER'"
    )


def test_truncated_report_says_where_it_ends() -> None:
    data = (FIXTURES / "trivy_local" / "pip-vuln.json").read_bytes()
    message = _message("trivy", data[: len(data) // 2])
    assert message.startswith("report.json: line ")
    assert "invalid JSON" in message
    assert "truncated" in message


def test_malformed_json_reports_line_and_column() -> None:
    message = _message("gitleaks", b'[\n  {"RuleID": "x",,}\n]')
    assert message.startswith("report.json: line 2 column ")
    assert "invalid JSON" in message


@pytest.mark.parametrize(
    ("tool", "document", "path", "problem"),
    [
        ("trivy", {"SchemaVersion": 3, "Results": []}, "SchemaVersion", "expected 2, got 3"),
        ("trivy", {"SchemaVersion": 2, "Results": {"a": 1}}, "Results", "expected an array, got an object"),
        ("trivy", {"SchemaVersion": 2, "Results": [7]}, "Results[0]", "expected an object, got a number"),
        (
            "trivy",
            {"SchemaVersion": 2, "Results": [{"Target": "x", "Vulnerabilities": [{"PkgName": "a"}]}]},
            "Results[0].Vulnerabilities[0].VulnerabilityID",
            "required, missing",
        ),
        (
            "trivy",
            {"SchemaVersion": 2, "Results": [{"Target": 5}]},
            "Results[0].Target",
            "expected a string, got a number",
        ),
        ("gitleaks", {"findings": []}, "", "expected a JSON array of leaks"),
        ("gitleaks", [{"RuleID": "r", "StartLine": "three"}], "[0].StartLine", "expected a whole number"),
        ("snyk", {"ok": False, "error": "Could not detect supported target files"}, "error", "Snyk error"),
        (
            "snyk",
            {"vulnerabilities": [{"id": "SNYK-1", "severity": "severe"}]},
            "vulnerabilities[0].severity",
            "'low'",
        ),
        ("sonarqube", {"errors": [{"msg": "Insufficient privileges"}]}, "errors", "Insufficient privileges"),
        (
            "sonarqube",
            {"tool": "sonarqube", "task": {"status": "FAILED", "errorMessage": "boom"}, "issues": []},
            "task.status",
            "expected 'SUCCESS', got 'FAILED' (boom)",
        ),
        (
            "sonarqube",
            {"issues": [{"key": "k", "rule": "r", "severity": "HUGE"}]},
            "issues[0].severity",
            "got 'HUGE'",
        ),
        ("sarif", {"version": "2.0.0", "runs": []}, "version", "expected '2.1.0', got '2.0.0'"),
        (
            "sarif",
            {
                "version": "2.1.0",
                "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"level": "loud", "ruleId": "a"}]}],
            },
            "runs[0].results[0].level",
            "got 'loud'",
        ),
    ],
)
def test_wrong_shapes_name_the_json_path(tool: str, document: object, path: str, problem: str) -> None:
    message = _message(tool, json.dumps(document).encode())
    where = f"report.json: {path}: " if path else "report.json: "
    assert message.startswith(where), message
    assert problem in message


def test_report_over_the_size_limit_is_refused_before_parsing() -> None:
    data = json.dumps(_trivy_with_results(50)).encode()
    with pytest.raises(ReportError) as raised:
        parse_report("trivy", data, secret_key=KEY, source="big.json", max_bytes=1000)
    assert (
        raised.value.message
        == f"big.json: the report is {len(data)} bytes, over the limit of 1000 bytes (max_bytes)"
    )


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "the report is empty"),
        (b"   \n", "the report is empty"),
        (b"\xff\xfe[\x00]\x00", "byte 0: not UTF-8"),
        (b'["caf\xc3\x28"]', "byte 5: not UTF-8"),
        (b'{"SchemaVersion": NaN}', "NaN is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_undecodable_reports_are_refused_clearly(data: bytes, problem: str) -> None:
    assert problem in _message("trivy", data)


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"RuleID,Commit,File\nx,y,z\n", "not JSON"),
        (b"<?xml version='1.0'?><testsuites/>", "XML"),
        (b"PK\x03\x04rest-of-zip", "ZIP"),
    ],
)
def test_non_json_formats_are_unsupported(data: bytes, what: str) -> None:
    with pytest.raises(UnsupportedReport) as raised:
        parse_report("gitleaks", data, secret_key=KEY, source="r")
    assert "unsupported format" in raised.value.message
    assert what in raised.value.message


def test_sarif_from_another_tool_is_refused_for_a_named_tool() -> None:
    data = (FIXTURES / "gitleaks_local" / "git-history-redacted.sarif").read_bytes()
    message = _message("trivy", data)
    assert message == (
        "report.json: runs[0].tool.driver.name: expected a SARIF log written by trivy, got one by 'gitleaks'"
    )


def test_unknown_tool_and_short_key_are_invalid_arguments() -> None:
    with pytest.raises(
        InvalidArgument, match=r"^tool: expected one of trivy, gitleaks, snyk, sonarqube, sarif"
    ):
        parse_report("grype", b"[]", secret_key=KEY)
    with pytest.raises(InvalidArgument, match=r"^secret_key: expected at least 16 bytes, got 3"):
        parse_report("gitleaks", b"[]", secret_key=b"abc")


def test_empty_reports_parse_once_the_tool_is_named_but_cannot_be_detected() -> None:
    assert parse_report("gitleaks", b"[]", secret_key=KEY).findings == ()
    assert parse_report("trivy", b"null", secret_key=KEY).findings == ()
    with pytest.raises(ReportError, match="name the tool"):
        detect_tool(b"[]", source="empty.json")


def test_detect_tool_refuses_json_of_no_known_tool() -> None:
    with pytest.raises(UnsupportedReport, match=r"^x\.json: unsupported format"):
        detect_tool(b'{"hello": "world"}', source="x.json")
