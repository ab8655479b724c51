"""Secret values never leave the parser: not in findings, not in the redacted report.

Each test plants freshly generated secrets in a report of one tool, parses it and searches
every output for them, also base64- and hex-encoded.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import secrets
import string
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.model import FindingKind
from scanners.reports import ParsedReport, parse_report
from scanners.reports._context import preview
from scanners.reports._parse import _Scrubber

KEY = b"unit-test-secret-key-0123456789abcdef"


def _token(prefix: str, length: int = 36) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def _encodings(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [
        raw,
        base64.b64encode(raw),
        base64.urlsafe_b64encode(raw),
        raw.hex().encode(),
        raw.hex().upper().encode(),
    ]


def _everything(parsed: ParsedReport) -> bytes:
    findings = repr([dataclasses.asdict(f) for f in parsed.findings])
    return b"\n".join(
        [
            findings.encode(),
            parsed.redacted_report,
            repr(parsed.warnings).encode(),
            repr(parsed.artifact).encode(),
        ]
    )


def _assert_absent(parsed: ParsedReport, planted: list[str]) -> None:
    haystack = _everything(parsed)
    for secret in planted:
        for encoded in _encodings(secret):
            assert encoded not in haystack, f"{secret[:4]}... leaked ({encoded[:12]!r})"
        # Nor a telling part of it: the preview shows at most 4 characters.
        assert secret[4:16].encode() not in haystack


def _gitleaks_v8(github: str, aws: str) -> list[dict[str, object]]:
    common = {"EndLine": 3, "StartColumn": 9, "EndColumn": 50, "SymlinkFile": "", "Entropy": 4.2, "Tags": []}
    return [
        {
            **common,
            "RuleID": "github-pat",
            "Description": "GitHub Personal Access Token",
            "StartLine": 3,
            "Match": f'token = "{github}"',
            "Secret": github,
            "Line": f'    token = "{github}"  # deploy',
            "File": "deploy.sh",
            "Commit": "a" * 40,
            "Author": "Dev",
            "Email": "dev@example.com",
            "Date": "2024-01-03T03:04:05Z",
            "Message": f"oops, pushed {github}",
            "Fingerprint": f"{'a' * 40}:deploy.sh:github-pat:3",
        },
        {
            **common,
            "RuleID": "aws-access-token",
            "Description": "AWS",
            "StartLine": 7,
            "Match": f"AWS_KEY={aws}",
            "Secret": aws,
            "File": "config/settings.py",
            "Commit": "b" * 40,
            "Author": "Dev",
            "Email": "dev@example.com",
            "Date": "2024-01-04T03:04:05Z",
            "Message": "settings",
            "Fingerprint": f"{'b' * 40}:config/settings.py:aws-access-token:7",
        },
    ]


def test_planted_gitleaks_secrets_appear_nowhere_in_findings_or_the_redacted_report() -> None:
    github, aws = _token("ghp_"), _token("AKIA", 16)
    data = json.dumps(_gitleaks_v8(github, aws)).encode()
    parsed = parse_report("gitleaks", data, secret_key=KEY, source="leaks.json")
    assert len(parsed.findings) == 2
    _assert_absent(parsed, [github, aws])
    assert {f.redacted_match for f in parsed.findings} == {"ghp_********", "AKIA********"}
    report = json.loads(parsed.redacted_report)
    assert report[0]["Secret"] == "ghp_********"
    assert report[0]["Commit"] == "a" * 40


def test_planted_legacy_gitleaks_offender_is_redacted() -> None:
    offender = _token("xoxb-", 40)
    data = json.dumps(
        [
            {
                "line": f"SLACK={offender}",
                "lineNumber": 2,
                "offender": offender,
                "commit": "c" * 40,
                "repo": ".",
                "rule": "Slack token",
                "commitMessage": f"add {offender}",
                "author": "Dev",
                "email": "dev@example.com",
                "file": ".env",
                "date": "2020-01-01T00:00:00Z",
                "tags": "key, Slack",
            }
        ]
    ).encode()
    parsed = parse_report("gitleaks", data, secret_key=KEY)
    _assert_absent(parsed, [offender])


def test_planted_trivy_secret_in_match_and_code_lines_is_redacted() -> None:
    stripe = _token("sk_live_", 30)
    # Trivy masks only the secret group: the planted tail stays readable in its output.
    tail = _token("", 24)
    masked = "*" * 17 + "-" + tail
    report = {
        "SchemaVersion": 2,
        "Trivy": {"Version": "0.76.0"},
        "ArtifactName": "app",
        "ArtifactType": "filesystem",
        "Results": [
            {
                "Target": ".env",
                "Class": "secret",
                "Secrets": [
                    {
                        "RuleID": "stripe-secret-token",
                        "Category": "Stripe",
                        "Severity": "CRITICAL",
                        "Title": "Stripe Secret Key",
                        "StartLine": 1,
                        "EndLine": 1,
                        "Code": {
                            "Lines": [
                                {
                                    "Number": 1,
                                    "Content": f"STRIPE={stripe}",
                                    "IsCause": True,
                                    "Highlighted": stripe,
                                },
                                {"Number": 2, "Content": f"SLACK={masked}", "IsCause": False},
                            ]
                        },
                        "Match": f"STRIPE={stripe}",
                    },
                    {
                        "RuleID": "slack-access-token",
                        "Category": "Slack",
                        "Severity": "HIGH",
                        "Title": "Slack token",
                        "StartLine": 2,
                        "EndLine": 2,
                        "Match": f"SLACK={masked}",
                    },
                ],
            }
        ],
    }
    parsed = parse_report("trivy", json.dumps(report).encode(), secret_key=KEY)
    assert [f.kind for f in parsed.findings] == [FindingKind.SECRET, FindingKind.SECRET]
    _assert_absent(parsed, [stripe, tail])


def test_planted_secrets_in_sarif_snippets_and_trivy_match_lines_are_redacted() -> None:
    snippet_secret = _token("glpat-", 20)
    tail = _token("", 24)
    match = f"TOKEN=********************-{tail}"
    log = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "gitleaks", "rules": [{"id": "gitlab-pat"}]}},
                "results": [
                    {
                        "ruleId": "gitlab-pat",
                        "message": {"text": "gitlab-pat has detected secret for file a.py."},
                        "locations": [
                            {
                                "physicalLocation": {
                                    "artifactLocation": {"uri": "a.py"},
                                    "region": {"startLine": 1, "snippet": {"text": snippet_secret}},
                                }
                            }
                        ],
                    }
                ],
            },
            {
                "tool": {
                    "driver": {
                        "name": "Trivy",
                        "rules": [
                            {
                                "id": "generic-token",
                                "name": "Secret",
                                "fullDescription": {"text": match},
                                "help": {"text": f"Secret\nSeverity: HIGH\nMatch: {match}"},
                                "properties": {"tags": ["secret", "security", "HIGH"]},
                            }
                        ],
                    }
                },
                "results": [
                    {
                        "ruleId": "generic-token",
                        "ruleIndex": 0,
                        "level": "error",
                        "message": {"text": f"Artifact: .env\nSecret\nSeverity: HIGH\nMatch: {match}"},
                        "locations": [{"physicalLocation": {"artifactLocation": {"uri": ".env"}}}],
                    }
                ],
            },
        ],
    }
    parsed = parse_report("sarif", json.dumps(log).encode(), secret_key=KEY)
    assert {f.kind for f in parsed.findings} == {FindingKind.SECRET}
    assert len(parsed.findings) == 2
    _assert_absent(parsed, [snippet_secret, tail])


@pytest.mark.parametrize("length", [1, 4, 7, 8, 12, 15, 16, 40, 200])
def test_redacted_preview_shows_at_most_four_characters_and_a_quarter(length: int) -> None:
    secret = _token("", length)
    shown = preview(secret)
    visible = shown.rstrip("*")
    assert len(visible) <= 4
    assert len(visible) <= length // 4
    assert secret.startswith(visible)
    assert shown == visible + "********"


def test_secret_fingerprint_is_keyed_and_ignores_commit_and_line() -> None:
    github, aws = _token("ghp_"), _token("AKIA", 16)
    leaks = _gitleaks_v8(github, aws)
    moved = json.loads(json.dumps(leaks))
    moved[0].update(StartLine=30, EndLine=30, Commit="d" * 40, Fingerprint="elsewhere")
    first = parse_report("gitleaks", json.dumps(leaks).encode(), secret_key=KEY)
    again = parse_report("gitleaks", json.dumps(moved).encode(), secret_key=KEY)
    other_key = parse_report("gitleaks", json.dumps(leaks).encode(), secret_key=KEY[::-1])
    assert [f.fingerprint for f in first.findings] == [f.fingerprint for f in again.findings]
    assert {f.fingerprint for f in first.findings}.isdisjoint(f.fingerprint for f in other_key.findings)


def test_the_same_secret_in_two_commits_is_one_finding_seen_twice() -> None:
    github, aws = _token("ghp_"), _token("AKIA", 16)
    leaks = _gitleaks_v8(github, aws)
    copy = dict(leaks[0], Commit="e" * 40, StartLine=9, EndLine=9)
    parsed = parse_report("gitleaks", json.dumps([*leaks, copy]).encode(), secret_key=KEY)
    assert len(parsed.findings) == 2
    assert sorted(parsed.occurrences.values()) == [1, 2]
    assert parsed.entry_counts.total == 3


def _alternation_scrub(values: set[str], text: str) -> str:
    # What the scrubber did before it used an automaton: one alternation, longest value first.
    ordered = sorted((v for v in values if v), key=len, reverse=True)
    if not ordered:
        return text
    return re.sub("|".join(re.escape(v) for v in ordered), "<redacted by gate>", text)


@settings(max_examples=300, deadline=None)
@given(
    values=st.sets(st.text(alphabet="abc*", min_size=1, max_size=6), max_size=8),
    text=st.text(alphabet="abc*xyz", max_size=60),
)
def test_the_scrubber_replaces_leftmost_longest_values_as_an_alternation_would(
    values: set[str], text: str
) -> None:
    assert _Scrubber(values)(text) == _alternation_scrub(values, text)


def test_a_report_of_ten_thousand_secrets_is_redacted_in_one_pass() -> None:
    # An alternation of the values took 98 s here; one automaton takes well under a second.
    planted = [_token("tok_", 20) for _ in range(10_000)]
    report = [
        {"RuleID": "r", "File": f"dir/file{i}.py", "StartLine": i + 1, "Secret": value, "Match": f"k={value}"}
        for i, value in enumerate(planted)
    ]
    started = time.perf_counter()
    parsed = parse_report("gitleaks", json.dumps(report).encode(), secret_key=KEY)
    assert time.perf_counter() - started < 20
    assert all(value.encode() not in parsed.redacted_report for value in planted[::97])


def test_a_text_made_of_nested_secret_values_is_redacted_whole_and_quickly() -> None:
    values = {"a" * length for length in range(1, 1025)}
    text = "a" * 200_000
    started = time.perf_counter()
    assert _Scrubber(values)(text) == "<redacted by gate>"
    assert time.perf_counter() - started < 20
    assert _Scrubber(values)("b" + "a" * 3 + "b") == "b<redacted by gate>b"
