"""The gate command: local and remote modes answer alike; errors map to exit codes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import gate
from gate.cli import main
from tests.conftest import RunningGate, loopback_config


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("GATE_CONFIG", "GATE_SERVER", "GATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    monkeypatch.setenv("GATE_DATA_DIR", str(data))
    return data


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "version") == (0, f"gate {gate.__version__}\npolicy engine: interpreted\n", "")


def test_local_mode_answers_from_the_local_store(
    capsys: pytest.CaptureFixture[str], isolated_environment: Path
) -> None:
    scan_id = str(uuid.uuid4())
    code, _, err = run(capsys, "scan", "get", scan_id)
    assert code == 1
    assert err == f"gate: error: scan '{scan_id}' not found\n"
    assert (isolated_environment / "gate.db").exists()
    assert run(capsys, "audit", "decisions") == (0, "no decisions\n", "")


def test_remote_mode_answers_like_local_mode(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    server = serve_gate(loopback_config(tmp_path / "server"))
    scan_id = str(uuid.uuid4())
    code, _, err = run(capsys, "--server", server.addresses.grpc, "scan", "get", scan_id)
    assert code == 1
    assert err.startswith(f"gate: error: scan '{scan_id}' not found (NOT_FOUND from ")
    code, out, _ = run(capsys, "--server", server.addresses.grpc, "sbom", "list", "-o", "table")
    assert (code, out) == (0, "no SBOMs\n")


def test_invalid_arguments_are_reported_with_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "scan", "findings", "--artifact", "sha256:abc")
    assert code == 1
    assert "artifact.digest: expected 'sha256:<64 hex>'" in err


def test_unreachable_server_is_an_infrastructure_failure(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--server", "127.0.0.1:1", "--timeout", "2", "audit", "decisions")
    assert code == 3
    assert err.startswith("gate: unavailable: ")
    assert "Traceback" not in err


def test_bad_configuration_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "gate.yaml"
    config.write_text("grpc:\n  listen: 1.2.3.4:99999\n")
    code, out, err = run(capsys, "--config", str(config), "serve")
    assert code == 2
    assert out == ""
    assert err == f"gate: configuration error: {config}: grpc.listen: port must be 0-65535, got 99999\n"


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "scan", "findings")
    assert code == 2
    assert "give exactly one of --artifact and --scan" in err
    assert run(capsys, "audit", "decisions", "--since", "yesterday")[0] == 2


def test_json_output_is_the_canonical_proto_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    from tests.integration.test_grpc_server import seed

    config = loopback_config(tmp_path / "server")
    scan, findings = seed(config.effective_database_url)
    server = serve_gate(config)
    code, out, _ = run(capsys, "--server", server.addresses.grpc, "scan", "get", scan.id, "-o", "json")
    assert code == 0
    document = json.loads(out)
    assert document["id"] == scan.id
    assert document["state"] == "SCAN_STATE_SUCCEEDED"
    code, out, _ = run(capsys, "--server", server.addresses.grpc, "scan", "findings", "--scan", scan.id)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["SEVERITY", "KIND", "RULE", "WHERE", "TITLE"]
    assert lines[1].split()[0] == "critical"
    assert len(lines) == 1 + len(findings)
