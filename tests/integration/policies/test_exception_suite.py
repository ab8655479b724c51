"""``gate policy test`` honours the ``exceptions:`` key of kyverno-test.yaml."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gate.cli import main
from policies._kyverno_test import run_tests

SUITE = Path(__file__).resolve().parents[2] / "assets" / "policies" / "exceptions"


def test_rows_that_rely_on_exceptions_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "test", str(SUITE), "--strict"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("6 passed, 0 failed")


def test_without_the_exceptions_key_the_skipped_rows_fail(tmp_path: Path) -> None:
    copy = tmp_path / "suite"
    shutil.copytree(SUITE, copy)
    test_file = copy / "host-namespaces" / ".kyverno-test" / "kyverno-test.yaml"
    text = test_file.read_text()
    test_file.write_text(text.replace("exceptions:\n- exceptions.yaml\n", ""))
    report = run_tests(copy)
    failing = sorted((row.rule, row.resource) for row in report.rows if not row.passed)
    assert failing == [
        ("baseline", "important-tool-1"),
        ("baseline", "ordinary"),
        ("host-namespaces", "important-tool-1"),
    ]


def test_an_exceptions_file_holding_another_kind_is_reported(tmp_path: Path) -> None:
    copy = tmp_path / "suite"
    shutil.copytree(SUITE, copy)
    (copy / "host-namespaces" / ".kyverno-test" / "exceptions.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
    )
    report = run_tests(copy)
    assert any("expected a kyverno.io PolicyException" in error for error in report.errors)
