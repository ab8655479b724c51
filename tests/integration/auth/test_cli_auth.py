"""The CLI's credentials for a remote gate: --token-file, --project, --client-cert/--client-key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gate.cli import main
from tests.conftest import RunningGate
from tests.integration.auth.support import TOKENS

MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: payments}\n"


def decide(gate: RunningGate, tmp_path: Path, *options: str) -> int:
    token = tmp_path / "token"
    token.write_text(TOKENS["pipeline"] + "\n")
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(MANIFEST)
    args = ["--server", gate.addresses.grpc, "--token-file", str(token), *options]
    return main([*args, "decide", "--stage", "deploy", "--manifest", str(manifest)])


def test_a_pipeline_token_with_its_project_is_allowed_and_without_refused(
    guarded_gate: RunningGate,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert decide(guarded_gate, tmp_path, "--project", "payments") == 0
    capsys.readouterr()
    assert decide(guarded_gate, tmp_path) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err
    assert decide(guarded_gate, tmp_path, "--project", "billing") == 1
    assert "does not act for project 'billing'" in capsys.readouterr().err
    monkeypatch.setenv("GATE_PROJECT", "payments")
    assert decide(guarded_gate, tmp_path) == 0


def test_a_token_file_is_never_echoed_when_malformed(
    guarded_gate: RunningGate,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = tmp_path / "token"
    token.write_text("two words-secret-value\n")
    assert (
        main(["--server", guarded_gate.addresses.grpc, "--token-file", str(token), "audit", "public-key"])
        == 1
    )
    err = capsys.readouterr().err
    assert "--token-file" in err
    assert "secret-value" not in err


def test_a_client_certificate_needs_its_key(
    guarded_gate: RunningGate,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    assert (
        main(["--server", guarded_gate.addresses.grpc, "--client-cert", str(cert), "audit", "public-key"])
        == 1
    )
    assert "give --client-cert and --client-key together" in capsys.readouterr().err
