"""``gate policy test`` and ``gate policy apply`` run in process through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gate.cli import main

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "policies"
SUITE = ASSETS / "suite"
POLICY = SUITE / "require-team" / "require-team.yaml"
RESOURCES = SUITE / "require-team" / ".kyverno-test" / "resources.yaml"
ROOT_SHARED = Path(__file__).resolve().parents[3] / ".." / "shared"


def test_policy_test_prints_the_table_and_summary_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "test", str(SUITE)]) == 0
    output = capsys.readouterr().out
    assert "Deployment/unlabelled-deploy" in output
    assert output.rstrip().endswith("5 passed, 0 failed")
    assert "(strict: 4 passed, 1 failed)" in output


def test_strict_mode_fails_rows_without_a_rule_response(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "test", str(SUITE), "--strict"]) == 1
    captured = capsys.readouterr()
    assert captured.out.rstrip().endswith("4 passed, 1 failed")
    assert "no rule response (strict)" in captured.out


def test_mismatches_and_missing_resources_exit_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "test", str(ASSETS / "mismatch")]) == 1
    captured = capsys.readouterr()
    assert "Want pass, Got fail" in captured.out
    assert "Not found" in captured.out
    assert captured.out.rstrip().endswith("0 passed, 2 failed")
    assert "2 test result(s) disagree" in captured.err


def test_legacy_test_format_is_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "test", str(ASSETS / "legacy")]) == 0
    assert capsys.readouterr().out.rstrip().endswith("1 passed, 0 failed")


def test_apply_prints_results_and_exits_one_when_an_enforced_rule_fails(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["policy", "apply", str(POLICY), "--resource", str(RESOURCES)]) == 1
    captured = capsys.readouterr()
    assert "Pod/default/unlabelled" in captured.out
    assert "fail" in captured.out
    assert "enforced rule(s) deny" in captured.err


def test_apply_json_output_is_a_policy_report(capsys: pytest.CaptureFixture[str]) -> None:
    main(["policy", "apply", str(POLICY), "-r", str(RESOURCES), "-o", "json"])
    document = json.loads(capsys.readouterr().out)
    reports = document["items"] if document["kind"] == "List" else [document]
    default = next(r for r in reports if r["metadata"].get("namespace") == "default")
    assert default["apiVersion"] == "wgpolicyk8s.io/v1alpha2"
    assert default["kind"] == "PolicyReport"
    assert default["summary"]["fail"] == 2
    assert default["summary"]["pass"] == 1
    assert {r["resources"][0]["name"] for r in default["results"]} == {
        "labelled",
        "unlabelled",
        "unlabelled-deploy",
    }


def test_apply_reports_a_malformed_policy_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY.read_text().replace("kinds: [Pod]", "kinds: Pod", 1))
    assert main(["policy", "apply", str(bad), "-r", str(RESOURCES)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:12: spec.rules[0].match.any[0].resources.kinds: expected a list, got string" in err


def test_a_malformed_test_file_is_reported_and_fails_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = tmp_path / "case"
    case.mkdir()
    (case / "kyverno-test.yaml").write_text("apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nresults: [\n")
    assert main(["policy", "test", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "kyverno-test.yaml:" in captured.err
    assert "malformed YAML" in captured.err
    assert captured.out.rstrip().endswith("0 passed, 1 failed")


def test_apply_evaluates_a_recorded_admission_review(capsys: pytest.CaptureFixture[str]) -> None:
    review = ROOT_SHARED / "notes" / "admission_review.json"
    assert main(["policy", "apply", str(POLICY), "-r", str(review)]) == 0
    output = capsys.readouterr().out
    assert "Pod/payments/payments-api-" in output
    assert output.rstrip().endswith("1 pass, 0 fail, 0 warn, 0 error, 0 skip")


@pytest.mark.parametrize("name", ["/dev/zero", "sub/kyverno-test.yaml", "*.yaml", "..", ""])
def test_a_test_file_name_with_a_directory_or_wildcard_is_a_usage_error(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["policy", "test", str(SUITE), "--file-name", name]) == 2
    err = capsys.readouterr().err
    assert f"got {name!r}, expected a file name without directory or wildcard" in err
    assert "Traceback" not in err


def test_another_test_file_name_is_found_in_every_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    copy = tmp_path / "suite"
    shutil.copytree(SUITE, copy)
    for found in copy.rglob("kyverno-test.yaml"):
        found.rename(found.with_name("checks.yaml"))
    assert main(["policy", "test", str(copy), "-f", "checks.yaml"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("5 passed, 0 failed")
