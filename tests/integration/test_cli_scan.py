"""`gate scan TARGET` and `gate scan import`, in process and against a running gate."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from gate.cli import main
from tests.conftest import RunningGate
from tests.integration.scanners.runner_support import FIXTURES, INPUTS, gitleaks_binary
from tests.integration.test_scan_jobs import config_with

COMMIT = "git:" + "c" * 40


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("GATE_CONFIG", "GATE_SERVER", "GATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATE_DATA_DIR", str(tmp_path / "data"))
    config = tmp_path / "gate.yaml"
    config.write_text(f"scanners:\n  gitleaks:\n    binary: {gitleaks_binary()}\n")
    return config


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_scan_of_a_directory_prints_findings_and_fails_on_the_threshold(
    capsys: pytest.CaptureFixture[str], configured: Path, tmp_path: Path
) -> None:
    target = tmp_path / "src"
    shutil.copytree(INPUTS / "secrets2", target)
    code, out, err = run(capsys, "--config", str(configured), "scan", str(target), "--artifact", COMMIT)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["SEVERITY", "SCANNER", "KIND", "RULE"]
    assert len(lines) == 1 + 7
    assert "gitleaks: finished" in err
    code, _, err = run(
        capsys, "--config", str(configured), "scan", str(target), "--artifact", COMMIT, "--fail-on", "HIGH"
    )
    assert code == 1
    assert "findings at or above HIGH" in err


def test_sarif_output_is_sarif_2_1_0(
    capsys: pytest.CaptureFixture[str], configured: Path, tmp_path: Path
) -> None:
    target = tmp_path / "src"
    shutil.copytree(INPUTS / "secrets2", target)
    code, out, _ = run(
        capsys, "--config", str(configured), "scan", str(target), "--artifact", COMMIT, "-o", "sarif"
    )
    assert code == 0
    document = json.loads(out)
    assert document["version"] == "2.1.0"
    assert sum(len(run["results"]) for run in document["runs"]) == 7


def test_a_missing_target_is_a_clear_failure(
    capsys: pytest.CaptureFixture[str], configured: Path, tmp_path: Path
) -> None:
    code, _, err = run(
        capsys, "--config", str(configured), "scan", str(tmp_path / "nope"), "--artifact", COMMIT
    )
    assert code == 3
    assert "gitleaks failed:" in err
    assert "target.location" in err
    assert "Traceback" not in err


def test_import_against_a_running_gate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    server = serve_gate(config_with(tmp_path, "{}\n"))
    report = FIXTURES / "trivy_local" / "secrets2.json"
    code, out, err = run(
        capsys,
        "--server",
        server.addresses.grpc,
        "scan",
        "import",
        str(report),
        "--tool",
        "trivy",
        "--artifact",
        "sha256:" + "f" * 64,
    )
    assert code == 0, err
    assert "6 findings (critical 4, high 2" in out
    code, out, _ = run(
        capsys, "--server", server.addresses.grpc, "scan", "findings", "--artifact", "sha256:" + "f" * 64
    )
    assert code == 0
    assert len(out.splitlines()) == 1 + 6
