"""Reports holding a NUL, or a control character in an identifier, are refused naming the JSON path.

PostgreSQL's text columns refuse NUL where SQLite's keep it: such a report used to be stored
on one backend and to fail inside the store of the other as "evidence store unavailable",
which clients retry for ever. Identifiers (rule ids, packages, paths, commits) are
single-line tokens gate indexes and shows, so every C0 control character is refused in
them; free text (titles, descriptions, messages) may hold any but NUL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gate.model import Finding
from scanners.reports import ParsedReport, ReportError, parse_report

KEY = b"unit-test-secret-key-0123456789abcdef"
FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "scanners"
SAMPLES = [
    ("trivy", "trivy/misconfigurations_and_secrets.json"),
    ("trivy", "trivy_local/pip-vuln.json"),
    ("trivy", "trivy/kubernetes.json"),
    ("gitleaks", "gitleaks/gitleaks8_many.json"),
    ("snyk", "snyk/single_project_one_vuln.json"),
    ("sonarqube", "sonarqube/findings_over_api.json"),
    ("sarif", "trivy_local/secrets2.sarif"),
]
NUL = "got a NUL character (\\u0000), expected text without NUL"
SECRET = "AKIAZ7QW3RT5YU8IO2PL"


def _parse(tool: str, document: Any, source: str = "report.json") -> ParsedReport:
    return parse_report(tool, json.dumps(document).encode(), secret_key=KEY, source=source)


def _refusal(tool: str, document: Any) -> str:
    with pytest.raises(ReportError) as caught:
        _parse(tool, document)
    return str(caught.value)


def _trivy(**vulnerability: str) -> dict[str, Any]:
    entry = {
        "VulnerabilityID": "CVE-2024-0001",
        "PkgName": "openssl",
        "InstalledVersion": "3.0.11-1",
        "Severity": "HIGH",
        "Title": "openssl: a flaw",
        **vulnerability,
    }
    return {
        "SchemaVersion": 2,
        "ArtifactName": "registry.example/app:1",
        "Results": [
            {"Target": "app (debian 12)", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": [entry]}
        ],
    }


def _gitleaks(**leak: str) -> list[dict[str, Any]]:
    return [{"RuleID": "aws-access-token", "File": "app/config.py", "StartLine": 3, "Secret": SECRET, **leak}]


def _sarif(uri: str = "src/app.py", driver: str = "semgrep") -> dict[str, Any]:
    return {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": driver, "rules": [{"id": "py.eval"}]}},
                "results": [
                    {
                        "ruleId": "py.eval",
                        "message": {"text": "eval of user input"},
                        "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri}}}],
                    }
                ],
            }
        ],
    }


def test_a_nul_in_a_trivy_title_is_refused_naming_the_json_path() -> None:
    message = _refusal("trivy", _trivy(Title="openssl:\0 a flaw"))
    assert message == f"report.json: Results[0].Vulnerabilities[0].Title: {NUL}"


@pytest.mark.parametrize(
    ("tool", "document", "message"),
    [
        (
            "trivy",
            _trivy(PkgName="open\x01ssl"),
            "report.json: Results[0].Vulnerabilities[0]: package name: got a control character (\\u0001), "
            "expected an identifier without control characters",
        ),
        (
            "trivy",
            _trivy(InstalledVersion="3.0.11\n-1"),
            "report.json: Results[0].Vulnerabilities[0]: package version: got a control character (\\u000a), "
            "expected an identifier without control characters",
        ),
        (
            "trivy",
            _trivy(VulnerabilityID="CVE-2024-0001\x1b[2J"),
            "report.json: Results[0].Vulnerabilities[0]: rule id: got a control character (\\u001b), "
            "expected an identifier without control characters",
        ),
        ("sarif", _sarif(uri="src/app%00.py"), f"report.json: runs[0].results[0]: file path: {NUL}"),
        (
            "trivy",
            _trivy(PkgIdentifier={"PURL": "pkg:deb/debian/open%01ssl@3.0.11-1"}),  # type: ignore[arg-type]
            "report.json: Results[0].Vulnerabilities[0]: package URL: got a percent-encoded control "
            "character (%01), expected a package URL without control characters",
        ),
    ],
)
def test_a_control_character_in_an_identifier_is_refused_naming_the_entry(
    tool: str, document: Any, message: str
) -> None:
    assert _refusal(tool, document) == message


def test_a_control_character_in_what_the_report_says_of_its_artifact_or_tool_is_refused() -> None:
    document = _trivy()
    document["ArtifactName"] = "registry.example/app:1\n"
    assert _refusal("trivy", document) == (
        "report.json: artifact name: got a control character (\\u000a), "
        "expected an identifier without control characters"
    )
    # Without results, the tool's name still names the stored scan's scanner.
    empty = _sarif(driver="semgrep\x07")
    empty["runs"][0]["results"] = []
    assert _refusal("sarif", empty) == (
        "report.json: scanner: got a control character (\\u0007), "
        "expected an identifier without control characters"
    )


def test_free_text_keeps_control_characters_other_than_nul() -> None:
    title = "openssl:\ta flaw\x1b[1m in\r\nTLS"
    (finding,) = _parse("trivy", _trivy(Title=title, Description="line\x0bbreak")).findings
    assert finding.title == title
    assert finding.description == "line\x0bbreak"
    assert _refusal("trivy", _trivy(Description="line\0break")) == (
        f"report.json: Results[0].Vulnerabilities[0].Description: {NUL}"
    )


def test_a_file_name_with_a_control_character_is_kept_and_only_nul_refused() -> None:
    # Linux file names may hold any byte but NUL and "/": a tree with such a file still scans.
    (finding,) = _parse("gitleaks", _gitleaks(File="app/\rconfig\n.py")).findings
    assert finding.location is not None
    assert finding.location.path == "app/\rconfig\n.py"
    (finding,) = _parse("sarif", _sarif(uri="src/app%01.py")).findings
    assert finding.location is not None
    assert finding.location.path == "src/app\x01.py"
    refused = _refusal("sarif", _sarif(uri="src/app%00.py"))
    assert refused == f"report.json: runs[0].results[0]: file path: {NUL}"


@pytest.mark.parametrize(
    ("tool", "document"),
    [
        ("gitleaks", _gitleaks(Secret=SECRET[:10] + "\0" + SECRET[10:])),
        ("gitleaks", _gitleaks(Secret="", Match=f"aws_key = '{SECRET}\0'")),
        ("gitleaks", _gitleaks(File=f"keys/{SECRET}\0.txt")),
        (
            "trivy",
            {
                "SchemaVersion": 2,
                "Results": [
                    {
                        "Target": "app/config.py",
                        "Class": "secret",
                        "Secrets": [
                            {
                                "RuleID": "aws-access-key-id",
                                "Severity": "CRITICAL",
                                "Match": f"key = {SECRET}\0",
                                "Code": {"Lines": [{"Content": f"key = {SECRET}"}]},
                            }
                        ],
                    }
                ],
            },
        ),
    ],
)
def test_a_refused_report_never_quotes_a_secret(tool: str, document: Any) -> None:
    message = _refusal(tool, document)
    # Not even the redacted preview's four leading characters.
    assert SECRET[:4] not in message
    assert "\0" not in message


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, str):
        return [path]
    children = (
        node.items() if isinstance(node, dict) else enumerate(node[:3]) if isinstance(node, list) else ()
    )
    return [leaf for key, value in children for leaf in _leaves(value, (*path, key))]


def _with(document: Any, path: tuple[Any, ...], character: str) -> Any:
    copy = json.loads(json.dumps(document))
    node = copy
    for step in path[:-1]:
        node = node[step]
    value = node[path[-1]]
    node[path[-1]] = value[:1] + character + value[1:]
    return copy


def _stored_texts(parsed: ParsedReport) -> list[str]:
    hints = parsed.artifact
    texts = [parsed.tool, parsed.tool_version, hints.name, hints.type, hints.image_id, hints.repo_url]
    texts += [hints.commit, hints.branch, *hints.repo_digests]
    for finding in parsed.findings:
        texts += _finding_texts(finding)
    return texts


def _finding_texts(finding: Finding) -> list[str]:
    texts = [finding.scanner, finding.rule_id, finding.title, finding.description, finding.redacted_match]
    texts += [finding.tool_severity, *finding.references]
    if finding.package is not None:
        texts += [finding.package.name, finding.package.version, finding.package.purl]
        texts += finding.package.fixed_versions
    if finding.location is not None:
        texts += [finding.location.path, finding.location.commit, finding.location.layer_digest]
    return texts


def _outcome(tool: str, document: Any, source: str) -> ParsedReport | ReportError:
    try:
        return _parse(tool, document, source=source)
    except ReportError as error:
        return error


@pytest.mark.parametrize(("tool", "sample"), SAMPLES, ids=[sample for _, sample in SAMPLES])
def test_a_nul_in_any_string_of_a_real_report_is_refused_or_stored_nowhere(tool: str, sample: str) -> None:
    document = json.loads((FIXTURES / sample).read_bytes())
    refused = 0
    for path in _leaves(document):
        outcome = _outcome(tool, _with(document, path, "\0"), sample)
        if isinstance(outcome, ReportError):
            # Some fields are refused for their own reason (a severity, a version).
            assert outcome.field.startswith(sample)
            refused += outcome.problem.endswith(NUL)
        else:
            assert not any("\0" in text for text in _stored_texts(outcome)), path
    assert refused > 0


@pytest.mark.parametrize(("tool", "sample"), SAMPLES, ids=[sample for _, sample in SAMPLES])
def test_no_control_character_of_a_real_report_reaches_a_stored_identifier(tool: str, sample: str) -> None:
    document = json.loads((FIXTURES / sample).read_bytes())
    refused = 0
    for path in _leaves(document):
        outcome = _outcome(tool, _with(document, path, "\x01"), sample)
        if isinstance(outcome, ReportError):
            assert outcome.field.startswith(sample)
            refused += "control character (\\u0001)" in outcome.problem
            continue
        for finding in outcome.findings:
            identifiers = set(_finding_texts(finding)) - {finding.title, finding.description}
            identifiers -= {finding.redacted_match, *finding.references}
            if finding.location is not None:
                identifiers.discard(finding.location.path)  # a file name may hold them
            assert not any("\x01" in text for text in identifiers), path
    assert refused > 0
