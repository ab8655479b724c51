"""Pull secrets as live registry credentials: TTL re-reads, order, clear errors, nothing secret logged."""

from __future__ import annotations

import base64
import json
import logging
import sys
from typing import Any

import pytest

from gate.config import RegistrySettings, load_config
from gate.errors import ConfigError
from gate.oci import Credentials, RegistryAuth
from gate.oci._pull_secrets import (
    FAILURE_TTL,
    PullSecretError,
    PullSecrets,
    SecretRef,
    pull_secret_credentials,
    pull_secret_refs,
)

REGCRED = SecretRef("gate-system", "regcred")
TEAM = SecretRef("team-a", "team-a-registry-creds")


def _secret(
    auths: dict[str, dict[str, str]], *, kind: str = "kubernetes.io/dockerconfigjson"
) -> dict[str, Any]:
    encoded = base64.b64encode(json.dumps({"auths": auths}).encode()).decode()
    return {"apiVersion": "v1", "kind": "Secret", "type": kind, "data": {".dockerconfigjson": encoded}}


class MemorySecrets:
    """The SecretReader port over a dict; counts reads."""

    def __init__(self, secrets: dict[SecretRef, dict[str, Any]]) -> None:
        self.secrets = secrets
        self.reads = 0

    def read(self, ref: SecretRef) -> dict[str, Any] | None:
        self.reads += 1
        return self.secrets.get(ref)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _live(reader: MemorySecrets, *refs: SecretRef, ttl: float = 60.0) -> tuple[Credentials, Clock]:
    clock = Clock()
    return Credentials.live(PullSecrets(refs or (REGCRED,), lambda: reader, ttl=ttl, clock=clock)), clock


def test_a_rotated_secret_is_used_once_the_ttl_has_passed() -> None:
    reader = MemorySecrets({REGCRED: _secret({"r.io": {"username": "ci", "password": "old"}})})
    creds, clock = _live(reader, ttl=30)
    assert creds.lookup("r.io") == RegistryAuth("ci", "old")
    reader.secrets[REGCRED] = _secret({"r.io": {"username": "ci", "password": "new"}})
    clock.now += 29
    assert creds.lookup("r.io") == RegistryAuth("ci", "old")
    assert reader.reads == 1
    clock.now += 2
    assert creds.lookup("r.io") == RegistryAuth("ci", "new")
    assert reader.reads == 2


def test_earlier_secrets_win_and_pull_secrets_come_before_the_docker_config() -> None:
    reader = MemorySecrets(
        {
            REGCRED: _secret({"r.io": {"username": "first", "password": "1"}}),
            TEAM: _secret({"r.io": {"username": "second", "password": "2"}, "s.io": {"auth": "czpz"}}),
        }
    )
    live, _ = _live(reader, REGCRED, TEAM)
    files = Credentials(
        {"s.io": RegistryAuth("file", "f"), "t.io": RegistryAuth("file", "t")}, source="config.json"
    )
    creds = live.merged(files)
    assert creds.lookup("r.io") == RegistryAuth("first", "1")
    assert creds.lookup("s.io") == RegistryAuth("s", "s")
    assert creds.lookup("t.io") == RegistryAuth("file", "t")
    assert creds.lookup("u.io") is None
    assert creds.source == "pull secrets gate-system/regcred, team-a/team-a-registry-creds, config.json"


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        (None, "registry pull secret gate-system/regcred: not found"),
        (
            {"type": "Opaque", "data": {}},
            "registry pull secret gate-system/regcred.type: expected kubernetes.io/dockerconfigjson",
        ),
        (
            {"type": "kubernetes.io/dockerconfigjson", "data": {}},
            "registry pull secret gate-system/regcred.data..dockerconfigjson: missing",
        ),
        (
            {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "%%%"}},
            "registry pull secret gate-system/regcred.data..dockerconfigjson: not base64",
        ),
        (
            {
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": base64.b64encode(b"{hunter2").decode()},
            },
            "registry pull secret gate-system/regcred.data..dockerconfigjson: not a JSON document",
        ),
    ],
)
def test_a_missing_or_malformed_secret_fails_the_lookup_naming_it(
    stored: dict[str, Any] | None, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    reader = MemorySecrets({REGCRED: stored} if stored is not None else {})
    creds, _ = _live(reader)
    with caplog.at_level(logging.DEBUG, logger="gate"), pytest.raises(PullSecretError) as caught:
        creds.lookup("r.io")
    assert caught.value.message.startswith(message)
    assert "hunter2" not in caught.value.message
    assert "hunter2" not in caplog.text


def test_a_failure_is_remembered_briefly_then_read_again() -> None:
    reader = MemorySecrets({})
    creds, clock = _live(reader)
    for _ in range(3):
        with pytest.raises(PullSecretError, match="not found"):
            creds.lookup("r.io")
    assert reader.reads == 1
    reader.secrets[REGCRED] = _secret({"r.io": {"username": "ci", "password": "pw"}})
    clock.now += FAILURE_TTL
    assert creds.lookup("r.io") == RegistryAuth("ci", "pw")


def test_a_reader_that_cannot_connect_is_reported_as_a_pull_secret_error() -> None:
    from gate.errors import Unsupported

    def connect() -> MemorySecrets:
        raise Unsupported("Kubernetes access", "install gate's 'kubernetes' extra")

    creds = Credentials.live(PullSecrets((REGCRED,), connect))
    with pytest.raises(PullSecretError, match=r"registry pull secrets: .*'kubernetes' extra"):
        creds.lookup("r.io")


def test_no_password_reaches_the_log_or_a_repr(caplog: pytest.LogCaptureFixture) -> None:
    reader = MemorySecrets({REGCRED: _secret({"r.io": {"username": "ci", "password": "hunter2"}})})
    creds, _ = _live(reader)
    with caplog.at_level(logging.DEBUG, logger="gate"):
        auth = creds.lookup("r.io")
    assert auth is not None
    shown = repr(creds) + repr(auth) + caplog.text
    assert "hunter2" not in shown
    assert base64.b64encode(b"ci:hunter2").decode() not in shown


def test_settings_name_secrets_and_project_secrets_in_order() -> None:
    settings = RegistrySettings(
        pull_secrets=("gate-system/regcred",), project_pull_secrets=("payments", "team-a/web")
    )
    assert pull_secret_refs(settings) == (
        REGCRED,
        SecretRef("payments", "payments-registry-creds"),
        SecretRef("team-a", "web-registry-creds"),
    )
    assert pull_secret_credentials(RegistrySettings()) is None
    live = pull_secret_credentials(settings)
    assert live is not None
    assert live.source.startswith("pull secrets gate-system/regcred, payments/payments-registry-creds")


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("registry: {pull_secrets: [regcred]}", "expected NAMESPACE/NAME of a Secret, got 'regcred'"),
        ("registry: {pull_secrets: [Gate/regcred]}", "expected NAMESPACE/NAME of a Secret"),
        ("registry: {project_pull_secrets: [a/b/c]}", "expected PROJECT or NAMESPACE/PROJECT"),
        ("registry: {project_pull_secrets: [" + "p" * 49 + "]}", "at most 48 characters"),
        ("registry: {pull_secrets_ttl: 0}", "greater than 0"),
    ],
)
def test_malformed_pull_secret_settings_stop_the_configuration(
    tmp_path: Any, yaml_text: str, message: str
) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(yaml_text + "\n")
    with pytest.raises(ConfigError, match=r"registry\.") as caught:
        load_config(path, environ={})
    assert message in caught.value.message


def test_without_the_kubernetes_extra_serve_stops_and_lookups_name_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from gate.config import Config
    from gate.server import GateServer

    # None in sys.modules makes the package unimportable, as in an install without the extra.
    monkeypatch.setitem(sys.modules, "kubernetes", None)
    settings = RegistrySettings(pull_secrets=("gate-system/regcred",))
    with pytest.raises(ConfigError) as caught:
        GateServer(Config(data_dir=tmp_path, registry=settings))
    assert caught.value.message == (
        "configuration: registry.pull_secrets: "
        "install gate's 'kubernetes' extra: pip install 'gate[kubernetes]'"
    )
    live = pull_secret_credentials(settings)
    assert live is not None
    with pytest.raises(PullSecretError, match=r"registry pull secrets: .*pip install 'gate\[kubernetes\]'"):
        live.lookup("r.io")
