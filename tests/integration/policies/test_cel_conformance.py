"""The Kyverno CEL policy library corpus (validate.cel ClusterPolicies and ValidatingPolicies) through
the ``kyverno test`` runner behind ``gate policy test``, strict and lenient."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gate.cli import main
from policies._kyverno_test import SuiteReport, run_tests

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / ".." / "shared" / "conformance" / "kyverno-cel"
KNOWN = ROOT / "tests" / "assets" / "policies" / "known_differences_cel.yaml"
COMPARISONS = 2419  # 667 result rows naming 2,419 resources (SOURCES.md)
EXPECTED_ROWS = 667


def _listed() -> dict[tuple[str, str, str, str], dict[str, str]]:
    entries = yaml.safe_load(KNOWN.read_text())
    for entry in entries:
        assert entry.get("reason", "").strip(), f"known difference without a reason: {entry}"
    return {(e["test"], e["policy"], e["rule"], e["resource"]): e for e in entries}


@pytest.fixture(scope="module")
def corpus_run() -> SuiteReport:
    assert CORPUS.is_dir(), f"CEL conformance corpus missing at {CORPUS}"
    return run_tests(CORPUS)


def test_every_cel_corpus_row_agrees_in_strict_mode_except_the_listed_known_differences(
    corpus_run: SuiteReport,
) -> None:
    assert corpus_run.errors == []
    assert len(corpus_run.rows) == COMPARISONS
    listed = _listed()
    disagreeing = {
        (r.test_file, r.policy, r.rule, r.resource) for r in corpus_run.rows if not r.agrees(strict=True)
    }
    for row in corpus_run.rows:
        entry = listed.get((row.test_file, row.policy, row.rule, row.resource))
        if entry is not None:
            assert (entry["expected"], entry["actual"]) == (row.expected, row.actual), entry
    assert disagreeing - set(listed) == set(), "new disagreements (fix them; do not list them)"
    assert set(listed) - disagreeing == set(), "rows agree now: remove them from known_differences_cel.yaml"


def test_every_cel_corpus_row_agrees_in_lenient_mode(corpus_run: SuiteReport) -> None:
    assert corpus_run.passed(strict=False) == COMPARISONS
    assert corpus_run.expected_rows(strict=False) == (EXPECTED_ROWS, 0)


def test_the_corpus_exercises_both_cel_engines_and_every_result_kind_it_expects(
    corpus_run: SuiteReport,
) -> None:
    vpol_rows = [r for r in corpus_run.rows if not r.rule]
    rule_rows = [r for r in corpus_run.rows if r.rule]
    assert vpol_rows
    assert rule_rows
    assert {r.actual for r in corpus_run.rows} >= {"pass", "fail", "skip"}


def test_gate_policy_test_strict_reports_the_cel_corpus_counts(capsys: pytest.CaptureFixture[str]) -> None:
    known = len(_listed())
    code = main(["policy", "test", str(CORPUS), "--strict", "--fail-only"])
    lines = capsys.readouterr().out.rstrip().splitlines()
    assert lines[-1] == f"{COMPARISONS - known} passed, {known} failed"
    assert lines[-3] == f"(non-strict: {COMPARISONS} passed, 0 failed)"
    assert code == (1 if known else 0)


def test_gate_policy_apply_reports_a_validating_policy_with_its_actions(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = CORPUS / "pod-security-vpol" / "baseline" / "disallow-privileged-containers"
    policy = folder / "disallow-privileged-containers.yaml"
    resources = folder / ".kyverno-test" / "resource.yaml"
    assert main(["policy", "apply", str(policy), "-r", str(resources)]) == 0  # Audit: reports, never denies
    lines = capsys.readouterr().out.rstrip().splitlines()
    assert lines[-1] == "18 pass, 15 fail, 0 warn, 0 error, 0 skip"
    denying = tmp_path / "deny.yaml"
    text = policy.read_text()
    assert "     - Audit\n" in text
    denying.write_text(text.replace("     - Audit\n", "     - Deny\n"))
    assert main(["policy", "apply", str(denying), "-r", str(resources)]) == 1
    assert "enforced rule(s) deny" in capsys.readouterr().err


def test_a_validating_admission_policy_with_binding_and_param_resources_runs_through_gate_policy_test(
    capsys: pytest.CaptureFixture[str],
) -> None:
    suite = ROOT / "tests" / "assets" / "policies" / "cel-vap"
    assert main(["policy", "test", str(suite), "--strict"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("2 passed, 0 failed")
    report = run_tests(suite)
    assert [(r.resource, r.actual) for r in report.rows] == [("small", "pass"), ("large", "fail")]
