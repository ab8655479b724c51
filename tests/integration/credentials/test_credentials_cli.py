"""``gate credentials`` against a served gate: admin only, through the RPC, onto the cluster."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import kubernetes_validate
import pytest

from gate.cli import main
from gate.config import AuthSettings, KubernetesSettings
from tests.conftest import RunningGate, loopback_config
from tests.integration.auth.support import write_tokens
from tests.kube_support import FakeApiServer, fake_api_server, kubeconfig

ASSETS = Path(__file__).parents[2] / "assets" / "credentials"


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with fake_api_server() as state:
        yield state


@pytest.fixture
def gate(api: FakeApiServer, tmp_path: Path, serve_gate: Callable[..., RunningGate]) -> RunningGate:
    tokens = write_tokens(
        tmp_path / "tokens.yaml",
        {"admin-token-1": ("ops", ["admin"], []), "pipeline-token-1": ("ci", ["pipeline"], ["payments"])},
    )
    config_file = tmp_path / "kubeconfig"
    config_file.write_text(kubeconfig(api))
    config = loopback_config(tmp_path / "data").model_copy(
        update={
            "auth": AuthSettings(mode="required", tokens_file=tokens),
            "kubernetes": KubernetesSettings(kubeconfig=config_file),
        }
    )
    return serve_gate(config)


def run(gate: RunningGate, tmp_path: Path, token: str, *args: str) -> int:
    token_file = tmp_path / f"{token}.txt"
    token_file.write_text(token + "\n")
    return main(["--server", gate.addresses.grpc, "--token-file", str(token_file), "credentials", *args])


def apply_args(tmp_path: Path) -> list[str]:
    password = tmp_path / "password"
    password.write_text("s3cret-registry-password\n")
    return [
        "--project",
        "payments",
        "--ssh-key",
        str(ASSETS / "id_ed25519"),
        "--registry",
        "registry.example.com:5000",
        "--username",
        "ci-bot",
        "--password-file",
        str(password),
    ]


def test_an_admin_applies_and_deletes_credentials_from_the_cli(
    gate: RunningGate, api: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(gate, tmp_path, "admin-token-1", "apply", *apply_args(tmp_path), "-o", "json") == 0
    answer = json.loads(capsys.readouterr().out)
    assert [o["action"] for o in answer["objects"]] == ["created"] * 5
    assert answer["service_account"] == "payments-pipeline"
    # What landed on the cluster is valid for Kubernetes' own schemas.
    for obj in api.objects.values():
        kubernetes_validate.validate(obj, "1.33", strict=True)
    assert run(gate, tmp_path, "admin-token-1", "rotate", *apply_args(tmp_path)) == 0
    assert "unchanged" in capsys.readouterr().out
    assert run(gate, tmp_path, "admin-token-1", "delete", "--project", "payments") == 0
    assert api.objects == {}


def test_a_pipeline_identity_may_not_manage_credentials(
    gate: RunningGate, api: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(gate, tmp_path, "pipeline-token-1", "apply", *apply_args(tmp_path)) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err
    assert api.requests == []
