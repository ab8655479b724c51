"""Registry credentials come from docker config.json and Kubernetes pull secrets; secrets never leak."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from gate.errors import InvalidArgument, Unsupported
from gate.oci import Credentials, RegistryAuth


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _config(auths: dict[str, Any], **extra: Any) -> bytes:
    return json.dumps({"auths": auths, **extra}).encode()


def test_auth_field_username_password_and_tokens_are_read() -> None:
    creds = Credentials.from_docker_config(
        _config(
            {
                "https://index.docker.io/v1/": {"auth": _b64("hub-user:hub:pass")},
                "registry.local:5000": {"username": "u", "password": "p"},
                "http://ghcr.io/v2/": {"auth": _b64("<token>:"), "identitytoken": "refresh"},
                "quay.io": {"registrytoken": "bearer-xyz"},
                "empty.io": {},
            }
        )
    )
    assert creds.lookup("docker.io") == RegistryAuth("hub-user", "hub:pass")
    assert creds.lookup("registry-1.docker.io") == RegistryAuth("hub-user", "hub:pass")
    assert creds.lookup("registry.local:5000") == RegistryAuth("u", "p")
    assert creds.lookup("registry.local") is None
    ghcr = creds.lookup("ghcr.io")
    assert ghcr is not None
    assert ghcr.identity_token == "refresh"
    quay = creds.lookup("QUAY.io")
    assert quay is not None
    assert quay.registry_token == "bearer-xyz"
    assert creds.lookup("empty.io") is None
    assert Credentials.anonymous().lookup("docker.io") is None


def test_config_file_is_read_from_its_path(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(_config({"r.io": {"auth": _b64("a:b")}}))
    assert Credentials.from_docker_config(path).lookup("r.io") == RegistryAuth("a", "b")
    with pytest.raises(InvalidArgument, match="cannot read docker config"):
        Credentials.from_docker_config(tmp_path / "absent.json")


def test_environment_config_is_used_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert Credentials.from_environment().lookup("r.io") is None
    (tmp_path / "config.json").write_bytes(_config({"r.io": {"auth": _b64("a:b")}}))
    assert Credentials.from_environment().lookup("r.io") == RegistryAuth("a", "b")


def test_dockerconfigjson_secret_bytes_and_objects() -> None:
    raw = _config({"r.io": {"username": "u", "password": "p"}})
    assert Credentials.from_dockerconfigjson(raw).lookup("r.io") == RegistryAuth("u", "p")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "pull"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(raw).decode()},
    }
    assert Credentials.from_secret(secret).lookup("r.io") == RegistryAuth("u", "p")
    legacy = {
        "metadata": {"name": "old"},
        "type": "kubernetes.io/dockercfg",
        "data": {".dockercfg": _b64(json.dumps({"r.io": {"auth": _b64("x:y")}}))},
    }
    assert Credentials.from_secret(legacy).lookup("r.io") == RegistryAuth("x", "y")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"not json", "not a JSON document"),
        (b"[]", "expected a JSON object, got list"),
        (_config({"r.io": {"auth": "%%%"}}), "auths['r.io'].auth: not base64 of username:password"),
        (_config({"r.io": {"auth": _b64("no-colon")}}), "decodes to no username:password pair"),
        (_config({"r.io": {"auth": _b64(":pw")}}), "decodes to no username:password pair"),
        (_config({"r.io": {"username": "u"}}), "username and password must be given together"),
        (_config({"r.io": {"password": 5}}), "auths['r.io'].password: expected a string, got int"),
        (_config({"r.io": "text"}), "auths['r.io']: expected an object, got str"),
        (json.dumps({"auths": []}).encode(), "auths: expected an object, got list"),
        (json.dumps({"auths": {}, "credHelpers": []}).encode(), "credHelpers: expected an object"),
        (b"{" + b" " * (1024 * 1024 + 1) + b"}", "larger than 1048576 bytes"),
        (b"[" * 100_000, "not a JSON document: nested too deeply"),
        (
            _config({"r.io": {"registrytoken": "s\u00e9cret-pw"}}),
            "auths['r.io'].registrytoken: expected an RFC 6750 bearer token",
        ),
    ],
)
def test_malformed_config_is_refused_without_quoting_secrets(raw: bytes, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        Credentials.from_docker_config(raw)
    assert fragment in caught.value.message
    assert "pw" not in caught.value.message.replace("password", "")


def test_dockerconfigjson_requires_auths() -> None:
    with pytest.raises(InvalidArgument, match=r"\.dockerconfigjson\.auths: missing"):
        Credentials.from_dockerconfigjson(b"{}")


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        ({"type": "Opaque", "data": {}}, "secret ?.type: expected kubernetes.io/dockerconfigjson"),
        ({"type": "kubernetes.io/dockerconfigjson", "data": {}}, "data..dockerconfigjson: missing"),
        ({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "!!"}}, "not base64"),
    ],
)
def test_malformed_secrets_are_refused(secret: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        Credentials.from_secret(secret)
    assert fragment in caught.value.message


def test_credential_helpers_are_reported_not_ignored() -> None:
    creds = Credentials.from_docker_config(
        _config(
            {"store.io": {}, "inline.io": {"auth": _b64("a:b")}},
            credsStore="desktop",
            credHelpers={"gcr.io": "gcloud"},
        )
    )
    with pytest.raises(Unsupported, match="credential helper"):
        creds.lookup("gcr.io")
    with pytest.raises(Unsupported, match=r"store\.io"):
        creds.lookup("store.io")
    assert creds.lookup("inline.io") == RegistryAuth("a", "b")
    assert creds.lookup("other.io") is None


def test_merged_credentials_prefer_the_first() -> None:
    first = Credentials({"r.io": RegistryAuth("first", "1")}, source="a")
    second = Credentials({"r.io": RegistryAuth("second", "2"), "s.io": RegistryAuth("s", "3")}, source="b")
    merged = first.merged(second)
    assert merged.lookup("r.io") == RegistryAuth("first", "1")
    assert merged.lookup("s.io") == RegistryAuth("s", "3")
    assert merged.source == "a, b"


def test_repr_never_shows_secrets() -> None:
    auth = RegistryAuth("user", "hunter2", identity_token="tok-123", registry_token="reg-456")
    text = repr(auth) + repr(Credentials({"r.io": auth}))
    for secret in ("hunter2", "tok-123", "reg-456"):
        assert secret not in text
    assert "user" in text
