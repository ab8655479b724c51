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
