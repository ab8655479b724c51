"""Hostile input: any JSON at all, and real reports with fields swapped for junk, either parse
or fail with InvalidArgument naming the source; nothing else escapes, nothing hangs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gate.errors import InvalidArgument
from gate.model import Severity
from scanners.reports import TOOLS, parse_report

KEY = b"unit-test-secret-key-0123456789abcdef"
FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "scanners"
SAMPLES = {
    "trivy": "trivy/misconfigurations_and_secrets.json",
    "gitleaks": "gitleaks/gitleaks8_many.json",
    "snyk": "snyk/snykcontainer_issue_9270.json",
    "sonarqube": "sonarqube/findings_over_api.json",
    "sarif": "trivy_local/secrets2.sarif",
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)


def _parse_or_invalid(tool: str, document: Any) -> None:
    problem = ""
    try:
        parsed = parse_report(tool, json.dumps(document).encode(), secret_key=KEY, source="fuzz.json")
    except InvalidArgument as exc:
        problem = exc.message
    if problem:
        assert problem.startswith("fuzz.json")
    else:
        assert all(f.fingerprint.startswith("sha256:") for f in parsed.findings)
        json.loads(parsed.redacted_report)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tool=st.sampled_from(TOOLS), document=json_values)
def test_arbitrary_json_parses_or_is_invalid(tool: str, document: Any) -> None:
    _parse_or_invalid(tool, document)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            found.extend(_paths(value, (*prefix, index)))
    return found


def _replace(node: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


@pytest.mark.parametrize("tool", TOOLS)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_real_report_with_one_field_replaced_by_junk_parses_or_is_invalid(
    tool: str, data: st.DataObject
) -> None:
    document = json.loads((FIXTURES / SAMPLES[tool]).read_bytes())
    path = data.draw(st.sampled_from(_paths(document)))
    _replace(document, path, data.draw(json_values))
    _parse_or_invalid(tool, document)


def test_a_huge_match_line_of_stars_is_handled_in_linear_time() -> None:
    match = "k=" + "a**a***" * 200_000
    report = {
        "SchemaVersion": 2,
        "Results": [{"Target": "x", "Secrets": [{"RuleID": "r", "Severity": "HIGH", "Match": match}]}],
    }
    started = time.perf_counter()
    parsed = parse_report("trivy", json.dumps(report).encode(), secret_key=KEY)
    assert time.perf_counter() - started < 5
    assert match.encode() not in parsed.redacted_report


# Each is refused when the report is read, before anything is normalised or stored.
_UNREADABLE = {
    "a key written twice (the secret in the first)": (
        "gitleaks",
        b'[{"RuleID":"aws","File":"f","Secret":"AKIAREALSECRET12345","Secret":"REDACTED"}]',
        "the key 'Secret' appears twice in one object",
    ),
    "a float beyond a double's range": (
        "gitleaks",
        b'[{"RuleID":"r","File":"f","StartLine":1e400}]',
        "the number 1e400 is beyond a double's range",
    ),
    "an integer of 401 digits": (
        "snyk",
        b'{"vulnerabilities":[{"id":"x","cvssScore":1' + b"0" * 400 + b"}]}",
        "an integer of 401 digits; expected at most 20",
    ),
    "a lone surrogate in a secret's report": (
        "gitleaks",
        b'[{"RuleID":"r","File":"\\ud800","Secret":"s3cr3tvalue"}]',
        "a string holds a lone UTF-16 surrogate (\\ud800)",
    ),
    "a lone surrogate in a SARIF snippet": (
        "sarif",
        b'{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x"}},"results":[{"ruleId":"R",'
        b'"message":{"text":"m"},"locations":[{"physicalLocation":{"region":{"snippet":'
        b'{"text":"\\udfff"}}}}]}]}]}',
        "lone UTF-16 surrogate (\\udfff)",
    ),
}


@pytest.mark.parametrize("case", list(_UNREADABLE))
def test_a_report_json_could_be_read_two_ways_is_refused_when_read(case: str) -> None:
    tool, data, expected = _UNREADABLE[case]
    with pytest.raises(InvalidArgument) as caught:
        parse_report(tool, data, secret_key=KEY, source="bad.json")
    assert caught.value.message.startswith("bad.json")
    assert expected in caught.value.message


def test_a_surrogate_pair_and_an_escaped_backslash_u_are_ordinary_text() -> None:
    data = b'[{"RuleID":"r","File":"\\ud83d\\ude00/\\\\ud800","Secret":"s3cr3tvalue"}]'
    parsed = parse_report("gitleaks", data, secret_key=KEY)
    assert parsed.findings[0].location is not None
    assert parsed.findings[0].location.path == "\N{GRINNING FACE}/\\ud800"
    assert b"s3cr3tvalue" not in parsed.redacted_report


def _sarif_with_score(score: Any) -> bytes:
    result = {
        "ruleId": "R",
        "level": "note",
        "message": {"text": "m"},
        "properties": {"security-severity": score},
    }
    return json.dumps(
        {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [result]}]}
    ).encode()


@pytest.mark.parametrize(
    "score", ["inf", "NaN", "1e400", "1_0", "\N{ARABIC-INDIC DIGIT NINE}", "11", -1, 10.5]
)
def test_a_security_severity_that_is_no_score_leaves_the_level_to_speak(score: Any) -> None:
    parsed = parse_report("sarif", _sarif_with_score(score), secret_key=KEY)
    assert [f.severity for f in parsed.findings] == [Severity.LOW]  # the result's level, note
    assert any("security-severity" in w and "expected a score from 0 to 10" in w for w in parsed.warnings)


@pytest.mark.parametrize(
    ("score", "severity"), [("9.8", Severity.CRITICAL), (" 7.5 ", Severity.HIGH), (4, Severity.MEDIUM)]
)
def test_a_security_severity_score_sets_the_severity(score: Any, severity: Severity) -> None:
    parsed = parse_report("sarif", _sarif_with_score(score), secret_key=KEY)
    assert [f.severity for f in parsed.findings] == [severity]
