"""gitleaks reports: v8 and legacy shapes, locations, commits, no severity of its own."""

from __future__ import annotations

from pathlib import Path

from gate.model import FindingKind, Severity
from scanners.reports import parse_report

KEY = b"unit-test-secret-key-0123456789abcdef"
FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "scanners"


def test_history_scan_keeps_commit_and_lines_in_the_location() -> None:
    data = (FIXTURES / "gitleaks_local/git-history-redacted.json").read_bytes()
    parsed = parse_report("gitleaks", data, secret_key=KEY)
    assert parsed.format == "gitleaks-json"
    assert all(f.kind is FindingKind.SECRET for f in parsed.findings)
    assert all(f.severity is Severity.HIGH and f.tool_severity == "" for f in parsed.findings)
    assert all(f.location is not None and len(f.location.commit) == 40 for f in parsed.findings)
    paths = {f.location.path for f in parsed.findings if f.location}
    assert "deploy.sh" in paths


def test_private_key_spans_its_lines() -> None:
    data = (FIXTURES / "gitleaks_local/dir-secrets-redact50.json").read_bytes()
    parsed = parse_report("gitleaks", data, secret_key=KEY)
    key = next(f for f in parsed.findings if f.rule_id == "private-key")
    assert key.location is not None
    assert (key.location.start_line, key.location.end_line) == (1, 14)
    # --redact=50 leaves half the value: it is hashed and previewed like a full one.
    assert key.redacted_match.endswith("********")


def test_legacy_reports_use_rule_names_as_rule_ids() -> None:
    data = (FIXTURES / "gitleaks/version_7.5.0.json").read_bytes()
    parsed = parse_report("gitleaks", data, secret_key=KEY)
    assert parsed.format == "gitleaks-legacy"
    assert parsed.entry_counts.total == 8
    assert {f.rule_id for f in parsed.findings} >= {"AWS Access Key"}
