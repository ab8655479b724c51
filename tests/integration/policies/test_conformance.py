"""The Kyverno policy library corpus through ``gate policy test``, strict and lenient."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from gate.cli import main
from policies._kyverno_test import SuiteReport, run_tests

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / ".." / "shared" / "conformance" / "kyverno"
KNOWN = ROOT / "tests" / "assets" / "policies" / "known_differences.yaml"
COMPARISONS = 1473  # 462 result rows naming 1,473 resources (SOURCES.md)


def _known() -> set[tuple[str, str, str, str]]:
    entries = yaml.safe_load(KNOWN.read_text())
    return {(e["test"], e["policy"], e["rule"], e["resource"]) for e in entries}


@pytest.fixture(scope="module")
def corpus_run() -> tuple[SuiteReport, float]:
    assert CORPUS.is_dir(), f"conformance corpus missing at {CORPUS}"
    started = time.process_time()
    report = run_tests(CORPUS)
    return report, time.process_time() - started


def test_every_corpus_row_agrees_except_the_listed_known_differences(
    corpus_run: tuple[SuiteReport, float],
) -> None:
    report, _ = corpus_run
    assert report.errors == []
    assert len(report.rows) == COMPARISONS
    disagreeing = {
        (r.test_file, r.policy, r.rule, r.resource) for r in report.rows if not r.passed or r.no_response
    }
    known = _known()
    listed = {
        (e["test"], e["policy"], e["rule"], e["resource"]): e for e in yaml.safe_load(KNOWN.read_text())
    }
    for row in report.rows:
        entry = listed.get((row.test_file, row.policy, row.rule, row.resource))
        if entry is not None:
            assert (entry["expected"], entry["actual"]) == (row.expected, row.actual), entry
    assert disagreeing - known == set(), "new disagreements (fix them; do not list them)"
    assert known - disagreeing == set(), "rows agree now: remove them from known_differences.yaml"


def test_the_corpus_runs_in_under_ten_seconds_of_cpu(corpus_run: tuple[SuiteReport, float]) -> None:
    _, cpu_seconds = corpus_run
    assert cpu_seconds < 10.0, f"corpus took {cpu_seconds:.1f} s of CPU"


def test_lenient_mode_counts_missing_responses_as_passed(corpus_run: tuple[SuiteReport, float]) -> None:
    report, _ = corpus_run
    missing = sum(1 for r in report.rows if r.no_response)
    assert missing > 0
    assert report.passed(strict=False) - report.passed(strict=True) == missing


def test_gate_policy_test_strict_reports_both_counts(capsys: pytest.CaptureFixture[str]) -> None:
    known = len(_known())
    code = main(["policy", "test", str(CORPUS), "--strict", "--fail-only"])
    lines = capsys.readouterr().out.rstrip().splitlines()
    assert lines[-1] == f"{COMPARISONS - known} passed, {known} failed"
    assert lines[-2].startswith("(expected rows: ")
    assert lines[-3] == f"(non-strict: {COMPARISONS} passed, 0 failed)"
    assert code == (1 if known else 0)


def test_gate_policy_test_counts_the_462_expected_rows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "test", str(CORPUS)]) == 0
    lines = capsys.readouterr().out.rstrip().splitlines()
    assert lines[-2] == "(expected rows: 462 passed, 0 failed; below, each resource counts)"
    assert lines[-1] == f"{COMPARISONS} passed, 0 failed"
