"""Images behind basic auth verify with credentials read from a Kubernetes Secret.

The Secret is served by the local API server stand-in (tests.kube_support) and read
through the real ``kubernetes`` client; the registry is the real ``docker-registry``
with htpasswd auth (tests.registry_support).
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gate._api import Api
from gate._signature_service import SignatureService
from gate.config import KubernetesSettings, RegistrySettings, SignatureSettings
from gate.core import Gate
from gate.oci import ImageRef, OciLayout
from gate.oci._pull_secrets import KubernetesSecretReader, PullSecretError, SecretRef
from gate.publish import sign_image
from gate.signatures import load_private_key
from gate.store import open_store
from gate.v1 import signature_pb2
from tests.kube_support import FakeApiServer, api_client, fake_api_server, kubeconfig
from tests.registry_support import PASSWORD, USERNAME, RegistryServer

REGCRED = ("secrets", "gate-system", "regcred")


def _secret(host: str, password: str) -> dict[str, Any]:
    config = {"auths": {host: {"username": USERNAME, "password": password}}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "regcred", "namespace": "gate-system", "resourceVersion": "1"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
    }


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with fake_api_server() as state:
        yield state


@pytest.fixture
def signed_image(basic_registry: RegistryServer, tmp_path: Path) -> tuple[ImageRef, str, str]:
    """A signed image on the basic-auth registry: (reference, digest, PEM public key)."""
    layout = OciLayout.create(tmp_path / "layout")
    manifest = layout.write_image(b'{"os":"linux","architecture":"amd64"}', [b"private layer"], tag="1")
    ref = basic_registry.ref(f"private/app-{uuid.uuid4().hex[:8]}", "1")
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with basic_registry.client() as client:
        client.copy(layout, ImageRef.parse("local/app:1"), ref)
        sign_image(client, ref, manifest.digest, load_private_key(pem))
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return ref, manifest.digest, public.decode()


@contextmanager
def _api(api: FakeApiServer, registry: RegistryServer, tmp_path: Path, *, ttl: float = 60.0) -> Iterator[Api]:
    config = tmp_path / "kubeconfig"
    config.write_text(kubeconfig(api))
    settings = RegistrySettings(
        ca_file=registry.ca_file,
        pull_secrets=("gate-system/regcred",),
        pull_secrets_ttl=ttl,
        # An empty docker config: no credentials from the environment of the test run.
        docker_config=_empty_docker_config(tmp_path),
        timeout=10,
    )
    signatures = SignatureService(
        SignatureSettings(), settings, kubernetes=KubernetesSettings(kubeconfig=config, timeout=5)
    )
    store = open_store(f"sqlite:///{tmp_path / f'gate-{uuid.uuid4().hex[:6]}.db'}")
    try:
        yield Api(Gate(store, signatures=signatures, registry=settings))
    finally:
        store.close()


def _empty_docker_config(directory: Path) -> Path:
    path = directory / "docker-config.json"
    path.write_text('{"auths": {}}')
    return path


def _verify(api: Api, ref: ImageRef, public: str) -> Any:
    request = signature_pb2.VerifyImageRequest(
        image=str(ref), policy=signature_pb2.VerificationPolicy(public_keys=[public])
    )
    return api.invoke("gate.v1.SignatureService/VerifyImage", request)


def test_an_image_behind_basic_auth_verifies_with_credentials_from_a_secret(
    api: FakeApiServer, basic_registry: RegistryServer, signed_image: Any, tmp_path: Path
) -> None:
    ref, digest, public = signed_image
    api.objects[REGCRED] = _secret(basic_registry.host, PASSWORD)
    with _api(api, basic_registry, tmp_path) as gate_api:
        verified = _verify(gate_api, ref, public)
        assert verified.verified is True, verified.message
        assert verified.artifact_digest == digest
    assert ("GET", "/api/v1/namespaces/gate-system/secrets/regcred") in api.requests


def test_without_the_secret_verification_fails_naming_it(
    api: FakeApiServer, basic_registry: RegistryServer, signed_image: Any, tmp_path: Path
) -> None:
    ref, _, public = signed_image
    with (
        _api(api, basic_registry, tmp_path) as gate_api,
        pytest.raises(PullSecretError, match="registry pull secret gate-system/regcred: not found"),
    ):
        _verify(gate_api, ref, public)


def test_a_secret_gate_may_not_read_fails_with_the_rbac_it_needs(
    api: FakeApiServer, basic_registry: RegistryServer, signed_image: Any, tmp_path: Path
) -> None:
    ref, _, public = signed_image
    api.objects[REGCRED] = _secret(basic_registry.host, PASSWORD)
    api.forbidden.add(("GET", "secrets"))
    with (
        _api(api, basic_registry, tmp_path) as gate_api,
        pytest.raises(PullSecretError, match=r"forbids gate to get it; grant .* get on secrets/regcred"),
    ):
        _verify(gate_api, ref, public)


def test_a_rotated_password_is_picked_up_after_the_ttl(
    api: FakeApiServer, basic_registry: RegistryServer, signed_image: Any, tmp_path: Path
) -> None:
    from gate.oci._errors import RegistryAuthError

    ref, _, public = signed_image
    api.objects[REGCRED] = _secret(basic_registry.host, "an-old-password")
    with _api(api, basic_registry, tmp_path, ttl=0.5) as gate_api:
        with pytest.raises(RegistryAuthError, match="HTTP 401"):
            _verify(gate_api, ref, public)
        api.objects[REGCRED] = _secret(basic_registry.host, PASSWORD)
        # Past the TTL of the Secret and the verifier's memory of the registry's failure.
        time.sleep(5.2)
        verified = _verify(gate_api, ref, public)
        assert verified.verified is True, verified.message


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        ({"type": "Opaque", "data": {}}, "regcred.type: expected kubernetes.io/dockerconfigjson"),
        ({"type": "kubernetes.io/dockerconfigjson"}, "regcred.data..dockerconfigjson: missing"),
        (
            {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "bm90IGpzb24="}},
            "regcred.data..dockerconfigjson: not a JSON document",
        ),
    ],
)
def test_a_malformed_secret_fails_verification_naming_the_secret_and_the_problem(
    api: FakeApiServer,
    basic_registry: RegistryServer,
    signed_image: Any,
    tmp_path: Path,
    stored: dict[str, Any],
    problem: str,
) -> None:
    ref, _, public = signed_image
    api.objects[REGCRED] = {"metadata": {"name": "regcred", "namespace": "gate-system"}, **stored}
    with (
        _api(api, basic_registry, tmp_path) as gate_api,
        pytest.raises(PullSecretError, match=re.escape(f"registry pull secret gate-system/{problem}")),
    ):
        _verify(gate_api, ref, public)


def test_the_reader_answers_200_404_and_403_as_the_api_server_does(api: FakeApiServer) -> None:
    api.objects[REGCRED] = _secret("r.io", "pw")
    reader = KubernetesSecretReader(api_client(api), timeout=5)
    found = reader.read(SecretRef("gate-system", "regcred"))
    assert found is not None
    assert found["type"] == "kubernetes.io/dockerconfigjson"
    assert reader.read(SecretRef("gate-system", "absent")) is None
    api.forbidden.add(("GET", "secrets"))
    with pytest.raises(PullSecretError, match="in namespace gate-system"):
        reader.read(SecretRef("gate-system", "regcred"))
