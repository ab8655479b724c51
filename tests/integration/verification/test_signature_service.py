"""VerifyImage and Attest through gate's API: evidence recorded, predicates returned, attestations pushed."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gate._api import Api
from gate._signature_service import SignatureService
from gate.config import RegistrySettings, SignatureSettings
from gate.core import Gate
from gate.errors import InvalidArgument, Unsupported
from gate.oci import ImageRef, OciLayout
from gate.publish import sign_image
from gate.signatures import load_private_key
from gate.store import open_store
from gate.v1 import signature_pb2
from tests.registry_support import RegistryServer

CYCLONEDX = "https://cyclonedx.org/bom"


def _pem_pair(directory: Path) -> tuple[Path, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    key_file = directory / "gate-signing.key"
    key_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key_file, public.decode()


@pytest.fixture
def world(plain_registry: RegistryServer, tmp_path: Path) -> Any:
    layout = OciLayout.create(tmp_path / "layout")
    manifest = layout.write_image(b'{"os":"linux","architecture":"amd64"}', [b"layer"], tag="1")
    ref = plain_registry.ref(f"svc/app-{uuid.uuid4().hex[:8]}", "1")
    plain_registry.client().copy(layout, ImageRef.parse("local/app:1"), ref)
    key_file, public = _pem_pair(tmp_path)
    settings = SignatureSettings(signing_key_file=key_file)
    registry = RegistrySettings(insecure=(plain_registry.host,))
    store = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    api = Api(Gate(store, signatures=SignatureService(settings, registry), registry=registry))
    yield api, store, ref, manifest.digest, key_file, public
    store.close()


def test_verify_image_records_the_verification_as_evidence(world: Any) -> None:
    api, store, ref, digest, key_file, public = world
    request = signature_pb2.VerifyImageRequest(
        image=str(ref), policy=signature_pb2.VerificationPolicy(public_keys=[public])
    )
    unsigned: Any = api.invoke("gate.v1.SignatureService/VerifyImage", request)
    assert unsigned.verified is False
    assert unsigned.message
    sign_image(_client(ref), ref, digest, load_private_key(key_file.read_bytes()))
    # Failures are not cached: the signature pushed just now counts at once.
    signed: Any = api.invoke("gate.v1.SignatureService/VerifyImage", request)
    assert signed.verified is True, signed.message
    assert signed.artifact_digest == digest
    stored = store.latest_verification(digest)
    assert stored is not None
    assert stored.id == signed.id
    assert store.get_artifact(digest) is not None


def _client(ref: ImageRef) -> Any:
    from gate.oci import RegistryClient

    return RegistryClient(plain_http_hosts=[ref.registry], timeout=10.0)


def test_attest_pushes_an_attestation_that_verify_image_accepts_and_returns(world: Any) -> None:
    api, _, ref, _, _, public = world
    predicate = json.dumps({"bomFormat": "CycloneDX", "components": [{"name": "zlib"}]}).encode()
    attest = signature_pb2.AttestRequest(
        image=str(ref), predicate_type=CYCLONEDX, predicate=predicate, push=True
    )
    answer: Any = api.invoke("gate.v1.SignatureService/Attest", attest)
    assert answer.pushed_reference.endswith(".att")
    assert json.loads(answer.envelope)["payloadType"] == "application/vnd.in-toto+json"
    verify = signature_pb2.VerifyImageRequest(
        image=str(ref),
        policy=signature_pb2.VerificationPolicy(
            public_keys=[public], required_predicate_types=[CYCLONEDX], attestations_only=True
        ),
    )
    result: Any = api.invoke("gate.v1.SignatureService/VerifyImage", verify)
    assert result.verified is True, result.message
    [attestation] = result.attestations
    assert json.loads(attestation.predicate)["components"] == [{"name": "zlib"}]


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        (signature_pb2.VerificationPolicy(), "policy"),
        (signature_pb2.VerificationPolicy(public_keys=["not a key"]), "policy.public_keys[0]"),
        (
            signature_pb2.VerificationPolicy(
                identities=[signature_pb2.KeylessIdentity(subject="me@example.com")]
            ),
            "policy.identities[0].issuer",
        ),
        (
            signature_pb2.VerificationPolicy(public_keys=["x"], attestations_only=True),
            "policy.required_predicate_types",
        ),
    ],
)
def test_bad_verification_policies_name_the_field(world: Any, policy: Any, field: str) -> None:
    api, _, ref, *_ = world
    with pytest.raises(InvalidArgument) as caught:
        api.invoke(
            "gate.v1.SignatureService/VerifyImage",
            signature_pb2.VerifyImageRequest(image=str(ref), policy=policy),
        )
    assert caught.value.field == field


def test_attest_without_a_signing_key_is_unsupported(plain_registry: RegistryServer, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    try:
        api = Api(Gate(store))
        request = signature_pb2.AttestRequest(
            image=f"{plain_registry.host}/a/b:1", predicate_type=CYCLONEDX, predicate=b"{}"
        )
        with pytest.raises(Unsupported, match="signing_key_file"):
            api.invoke("gate.v1.SignatureService/Attest", request)
    finally:
        store.close()
