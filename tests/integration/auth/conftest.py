"""A gate with ``auth.mode: required`` and one token per role (pipeline ones for project payments)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gate.auth import ROLES
from gate.config import AuthSettings, KubernetesSettings
from tests.conftest import RunningGate, loopback_config
from tests.integration.auth.support import TOKENS, write_tokens


@pytest.fixture
def guarded_gate(tmp_path: Path, serve_gate: Callable[..., RunningGate]) -> RunningGate:
    entries = {TOKENS[role]: (f"ci-{role}", [role], ["payments"]) for role in ROLES}
    tokens = write_tokens(tmp_path / "tokens.yaml", entries)
    config = loopback_config(tmp_path / "data")
    # A kubeconfig that does not exist: credential RPCs an allowed role calls fail as UNAVAILABLE
    # without ever reaching a cluster (not even the one a CI runner may be in).
    config = config.model_copy(
        update={
            "auth": AuthSettings(mode="required", tokens_file=tokens),
            "kubernetes": KubernetesSettings(kubeconfig=tmp_path / "no-such-kubeconfig"),
        }
    )
    return serve_gate(config)
