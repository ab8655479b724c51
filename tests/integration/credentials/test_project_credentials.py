"""Project credentials on Kubernetes through the real client against a local API server stand-in."""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gate.credentials import CredentialMaterial, KubernetesObjects, ProjectCredentials, ProjectRef
from gate.errors import Conflict, InfrastructureError, InvalidArgument, NotFound
from tests.kube_support import FakeApiServer, api_client, fake_api_server

ASSETS = Path(__file__).parents[2] / "assets" / "credentials"
PROJECT = ProjectRef.of("payments")
PASSWORD = b"registry-password-0001\n"
KEYS = {
    ("secrets", "payments-git-creds"),
    ("secrets", "payments-registry-creds"),
    ("serviceaccounts", "payments-pipeline"),
    ("roles", "payments-pipeline-creds"),
    ("rolebindings", "payments-pipeline-creds"),
}
KNOWN_HOSTS = b"github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp")


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with fake_api_server() as state:
        yield state


def service(api: FakeApiServer) -> ProjectCredentials:
    return ProjectCredentials(lambda: KubernetesObjects(api_client(api)))


def material(key: str = "id_ed25519", password: bytes = PASSWORD) -> CredentialMaterial:
    return CredentialMaterial.check(
        ssh_private_key=(ASSETS / key).read_bytes(),
        known_hosts=KNOWN_HOSTS,
        registry="registry.example.com:5000",
        username="ci-bot",
        password=password,
        git_host="github.com",
    )


def stored(api: FakeApiServer) -> dict[str, Any]:
    """The objects as the API server holds them, without the fields it sets itself."""
    result = {}
    for (plural, _namespace, name), held in sorted(api.objects.items()):
        obj = json.loads(json.dumps(held))
        for key in SERVER_FIELDS:
            obj["metadata"].pop(key, None)
        result[f"{plural}/{name}"] = obj
    return result


def writes(api: FakeApiServer) -> list[str]:
    return [method for method, _ in api.requests if method != "GET"]


def golden(name: str, actual: dict[str, Any]) -> dict[str, Any]:
    path = ASSETS / name
    if os.environ.get("GATE_RECREATE_GOLDEN") == "1":
        path.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
    expected: dict[str, Any] = json.loads(path.read_text())
    return expected


def test_apply_creates_the_five_objects_as_in_the_golden_manifests(api: FakeApiServer) -> None:
    result = service(api).apply(PROJECT, material())
    assert [(c.kind, c.name, c.action) for c in result.changes] == [
        ("Secret", "payments-git-creds", "created"),
        ("Secret", "payments-registry-creds", "created"),
        ("ServiceAccount", "payments-pipeline", "created"),
        ("Role", "payments-pipeline-creds", "created"),
        ("RoleBinding", "payments-pipeline-creds", "created"),
    ]
    assert result.service_account == "payments-pipeline"
    actual = stored(api)
    assert actual == golden("expected-payments.json", actual)
    role = actual["roles/payments-pipeline-creds"]["rules"]
    assert role == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["payments-git-creds", "payments-registry-creds"],
            "verbs": ["get"],
        }
    ]
    docker = json.loads(
        base64.b64decode(actual["secrets/payments-registry-creds"]["data"][".dockerconfigjson"])
    )
    assert docker["auths"]["registry.example.com:5000"]["username"] == "ci-bot"
    assert docker["auths"]["registry.example.com:5000"]["password"] == "registry-password-0001"


def test_applying_again_changes_nothing_and_writes_nothing(api: FakeApiServer) -> None:
    service(api).apply(PROJECT, material())
    before = json.dumps(sorted(api.objects.items()))
    api.requests.clear()
    result = service(api).apply(PROJECT, material())
    assert {c.action for c in result.changes} == {"unchanged"}
    assert writes(api) == []
    assert json.dumps(sorted(api.objects.items())) == before


def test_rotate_replaces_only_the_secrets(api: FakeApiServer) -> None:
    service(api).apply(PROJECT, material())
    result = service(api).rotate(PROJECT, material("id_ed25519_rotated", b"new-password"))
    assert {(c.name, c.action) for c in result.changes} == {
        ("payments-git-creds", "updated"),
        ("payments-registry-creds", "updated"),
        ("payments-pipeline", "unchanged"),
        ("payments-pipeline-creds", "unchanged"),
    }
    git = api.objects["secrets", "payments", "payments-git-creds"]
    rotated = base64.b64encode((ASSETS / "id_ed25519_rotated").read_bytes()).decode()
    assert git["data"]["ssh-privatekey"] == rotated


def test_rotating_a_project_without_credentials_is_not_found(api: FakeApiServer) -> None:
    with pytest.raises(NotFound, match="payments/payments-git-creds"):
        service(api).rotate(PROJECT, material())
    assert writes(api) == []


def test_an_update_that_loses_a_resource_version_race_is_retried(api: FakeApiServer) -> None:
    service(api).apply(PROJECT, material())
    api.stale_puts = 2
    result = service(api).apply(PROJECT, material(password=b"after-race"))
    assert ("payments-registry-creds", "updated") in {(c.name, c.action) for c in result.changes}
    assert writes(api).count("PUT") == 3  # two answered 409 Conflict, then the registry Secret
    assert api.stale_puts == 0


def test_a_create_that_finds_the_object_already_there_compares_with_it(api: FakeApiServer) -> None:
    api.racing_creates = 1
    result = service(api).apply(PROJECT, material())
    # The racing writer created the same Secret: gate reads it back and finds it equal.
    assert result.changes[0].action == "unchanged"
    assert [c.action for c in result.changes[1:]] == ["created"] * 4


def test_a_forbidden_answer_names_what_gate_may_not_do(api: FakeApiServer) -> None:
    api.forbidden.add(("POST", "roles"))
    with pytest.raises(InfrastructureError) as caught:
        service(api).apply(PROJECT, material())
    assert (
        "Role payments/payments-pipeline-creds: the API server answered 403 Forbidden" in caught.value.message
    )
    assert 'cannot create resource "roles"' in caught.value.message


def test_a_secret_of_another_type_is_a_conflict_not_an_overwrite(api: FakeApiServer) -> None:
    api.objects["secrets", "payments", "payments-git-creds"] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "payments-git-creds",
            "namespace": "payments",
            "resourceVersion": "7",
            "uid": "u",
        },
        "type": "Opaque",
        "data": {},
    }
    with pytest.raises(Conflict, match=r"exists with type 'Opaque', expected 'kubernetes\.io/ssh-auth'"):
        service(api).apply(PROJECT, material())


def test_delete_removes_the_objects_and_reports_absent_ones(api: FakeApiServer) -> None:
    service(api).apply(PROJECT, material())
    first = service(api).delete(PROJECT)
    assert {c.action for c in first.changes} == {"deleted"}
    assert api.objects == {}
    second = service(api).delete(PROJECT)
    assert {c.action for c in second.changes} == {"absent"}
    assert {(c.kind, c.name) for c in second.changes} == {
        ("Secret", "payments-git-creds"),
        ("Secret", "payments-registry-creds"),
        ("ServiceAccount", "payments-pipeline"),
        ("Role", "payments-pipeline-creds"),
        ("RoleBinding", "payments-pipeline-creds"),
    }


def test_secrets_never_reach_the_log(api: FakeApiServer, caplog: pytest.LogCaptureFixture) -> None:
    key = (ASSETS / "id_ed25519").read_bytes()
    with caplog.at_level(logging.DEBUG):
        service(api).apply(PROJECT, material())
        service(api).rotate(PROJECT, material("id_ed25519_rotated", b"new-password"))
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "project credentials apply" in text
    for secret in (b"registry-password-0001", b"new-password", key.splitlines()[1]):
        assert secret.decode() not in text
        assert base64.b64encode(secret).decode()[:16] not in text
    assert "<hidden>" in repr(material())


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("id_ed25519_encrypted", "the key is encrypted"),
        ("README.md", "not a valid PEM (PKCS#1, PKCS#8, SEC1) private key"),
    ],
)
def test_keys_that_do_not_load_are_refused_before_anything_is_stored(
    api: FakeApiServer, key: str, expected: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        service(api).apply(PROJECT, material(key))
    assert expected in caught.value.message
    assert api.requests == []


def test_a_pem_rsa_key_is_accepted() -> None:
    assert material("id_rsa.pem").registry == "registry.example.com:5000"


def test_an_openssh_key_with_a_broken_body_is_refused_without_echoing_it() -> None:
    broken = (ASSETS / "id_ed25519").read_bytes().replace(b"AAAA", b"ZZZZ", 1)
    with pytest.raises(InvalidArgument) as caught:
        material_from(broken)
    assert caught.value.message == "ssh_private_key: not a valid OpenSSH private key"


def material_from(key: bytes) -> CredentialMaterial:
    return CredentialMaterial.check(
        ssh_private_key=key, known_hosts=b"", registry="r.example.com", username="u", password=b"p"
    )


@pytest.mark.parametrize(
    ("project", "namespace", "field"),
    [("Payments", "", "project"), ("p" * 49, "", "project"), ("ok", "bad_ns", "namespace")],
)
def test_project_and_namespace_must_be_dns_labels(project: str, namespace: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        ProjectRef.of(project, namespace)
    assert caught.value.field == field
