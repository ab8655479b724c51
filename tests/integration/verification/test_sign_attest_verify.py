"""gate sign/attest push what cosign stores; the verifier service and verifyImages rules read it back.

Runs against the real docker-registry: an image is pushed, signed and attested by gate with an
ECDSA P-256 key, then verified by digest and by tag, through the shared cache and through a
Kyverno verifyImages policy evaluated by the policy engine.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import threading
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gate.model import RuleOutcome
from gate.oci import ImageRef, OciLayout, RegistryClient, cosign_tag
from gate.publish import attest_image, predicate_type, sign_image
from gate.signatures import (
    SignatureLayer,
    SignaturePolicy,
    TrustRoot,
    load_private_key,
    load_public_key,
    verify_simple_signing,
)
from gate.signatures._image import AttestationRequirement, ImagePolicy
from gate.verification import ImageVerifierService, KyvernoImageVerifier, policy_key
from policies import ContextValues, parse_policies
from tests.registry_support import RegistryServer

CYCLONEDX = "https://cyclonedx.org/bom"


def _layer() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        data = b"hello from gate\n"
        info = tarfile.TarInfo("app/hello.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)


def _keypair() -> tuple[bytes, bytes]:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, public


class _CountingClient:
    """The real client, counting manifest reads (the start of each registry fetch sequence)."""

    def __init__(self, client: RegistryClient) -> None:
        self._client = client
        self.manifest_reads = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def manifest(self, ref: ImageRef, **kwargs: Any) -> Any:
        with self._lock:
            self.manifest_reads += 1
        return self._client.manifest(ref, **kwargs)


@pytest.fixture
def pushed(plain_registry: RegistryServer, tmp_path: Any) -> tuple[RegistryClient, ImageRef, str]:
    layout = OciLayout.create(tmp_path / "layout")
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
    manifest = layout.write_image(config, [_layer()], tag="1.0")
    client = plain_registry.client()
    ref = plain_registry.ref(f"team/app-{uuid.uuid4().hex[:8]}", "1.0")
    client.copy(layout, ImageRef.parse("local/app:1.0"), ref)
    return client, ref, manifest.digest


def _policy_yaml(public_pem: bytes, pattern: str) -> str:
    key = "\n".join("              " + line for line in public_pem.decode().strip().splitlines())
    return f"""
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: signed-images
spec:
  validationFailureAction: Enforce
  webhookTimeoutSeconds: 10
  rules:
  - name: signed-by-project-key
    match:
      any:
      - resources:
          kinds: [Pod]
    verifyImages:
    - imageReferences: ["{pattern}"]
      mutateDigest: true
      attestors:
      - entries:
        - keys:
            publicKeys: |-
{key}
            rekor:
              ignoreTlog: true
            ctlog:
              ignoreSCT: true
      attestations:
      - type: {CYCLONEDX}
        conditions:
        - all:
          - key: "{{{{ length(components) }}}}"
            operator: GreaterThan
            value: 0
            message: the SBOM lists no components
"""


def _pod(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def test_gate_signed_images_verify_by_tag_and_digest_and_the_payload_is_cosigns(pushed: Any) -> None:
    client, ref, digest = pushed
    private_pem, public_pem = _keypair()
    attached = sign_image(client, ref, digest, load_private_key(private_pem))
    assert attached.reference.endswith(cosign_tag(digest, "sig"))
    # The pushed layer verifies through the same code path as the cosign conformance corpus.
    blob = client.read_blob(ref, attached.layer, 1 << 20)
    layer = SignatureLayer(attached.layer.media_type, blob, dict(attached.layer.annotations))
    policy = SignaturePolicy(keys=(load_public_key(public_pem),))
    assert verify_simple_signing(layer, image_digest=digest, policy=policy, trust=TrustRoot()).verified

    service = ImageVerifierService(client, TrustRoot())
    image_policy = ImagePolicy(signers=policy)
    by_tag = service.verify(ref, image_policy, "k")
    assert by_tag.verified, by_tag.reason
    assert by_tag.digest == digest
    by_digest = service.verify(ref.with_digest(digest), image_policy, "k")
    assert by_digest is by_tag  # served from the cache


def test_a_wrong_key_or_a_missing_signature_never_verifies(pushed: Any) -> None:
    client, ref, digest = pushed
    service = ImageVerifierService(client, TrustRoot())
    _, stranger = _keypair()
    unsigned = service.verify(
        ref, ImagePolicy(signers=SignaturePolicy(keys=(load_public_key(stranger),))), "a"
    )
    assert not unsigned.verified
    private_pem, _ = _keypair()
    sign_image(client, ref, digest, load_private_key(private_pem))
    wrong = service.verify(ref, ImagePolicy(signers=SignaturePolicy(keys=(load_public_key(stranger),))), "b")
    assert not wrong.verified
    assert wrong.reason


def test_replacing_attestations_keeps_other_predicate_types_and_returns_the_predicate(pushed: Any) -> None:
    client, ref, digest = pushed
    private_pem, public_pem = _keypair()
    key = load_private_key(private_pem)
    attest_image(client, ref, digest, CYCLONEDX, {"bomFormat": "CycloneDX", "components": []}, key)
    attest_image(client, ref, digest, "https://example.com/other", {"x": 1}, key)
    newer = {"bomFormat": "CycloneDX", "components": [{"name": "x"}]}
    attest_image(client, ref, digest, CYCLONEDX, newer, key, replace=True)
    manifest = client.manifest(ref.with_tag(cosign_tag(digest, "att")))
    kinds = [layer.annotations["predicateType"] for layer in manifest.layers]
    assert kinds == ["https://example.com/other", CYCLONEDX]
    signers = SignaturePolicy(keys=(load_public_key(public_pem),))
    policy = ImagePolicy(attestations=(AttestationRequirement(CYCLONEDX, signers),))
    result = ImageVerifierService(client, TrustRoot()).verify(ref, policy, "att")
    assert result.verified, result.reason
    assert result.predicates(CYCLONEDX) == [{"bomFormat": "CycloneDX", "components": [{"name": "x"}]}]
    assert predicate_type("cyclonedx") == CYCLONEDX


def test_verify_images_rules_decide_from_the_registry(pushed: Any, plain_registry: RegistryServer) -> None:
    client, ref, digest = pushed
    private_pem, public_pem = _keypair()
    bundle = parse_policies(_policy_yaml(public_pem, f"{plain_registry.host}/team/*"))
    values = ContextValues(image_verifier=KyvernoImageVerifier(ImageVerifierService(client, TrustRoot())))

    [unsigned] = bundle.evaluate_resource(_pod(str(ref)), values=values)
    assert unsigned.outcome is RuleOutcome.FAIL
    assert "failed to verify image" in unsigned.message

    key = load_private_key(private_pem)
    sign_image(client, ref, digest, key)
    attest_image(client, ref, digest, CYCLONEDX, {"components": [{"name": "openssl"}]}, key)
    [signed] = bundle.evaluate_resource(_pod(str(ref)), values=values)
    assert signed.outcome is RuleOutcome.PASS, signed.message
    assert f"@{digest}" in signed.message  # mutateDigest reports the pin it would apply

    attest_image(client, ref, digest, CYCLONEDX, {"components": []}, key, replace=True)
    # A new verifier: the previous one keeps its successful verdict for its TTL.
    values = ContextValues(image_verifier=KyvernoImageVerifier(ImageVerifierService(client, TrustRoot())))
    [empty] = bundle.evaluate_resource(_pod(str(ref)), values=values)
    assert empty.outcome is RuleOutcome.FAIL
    assert "the SBOM lists no components" in empty.message


def test_concurrent_verifications_of_one_image_share_one_fetch_sequence(pushed: Any) -> None:
    client, ref, digest = pushed
    private_pem, public_pem = _keypair()
    sign_image(client, ref, digest, load_private_key(private_pem))
    counting = _CountingClient(client)
    service = ImageVerifierService(counting, TrustRoot())  # type: ignore[arg-type]
    policy = ImagePolicy(signers=SignaturePolicy(keys=(load_public_key(public_pem),)))
    key = policy_key("project-key")
    pinned = ref.with_digest(digest)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def ask() -> None:
        barrier.wait()
        results.append(service.verify(pinned, policy, key).verified)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [True] * 8
    single = counting.manifest_reads
    assert service.stats().results.misses == 1
    # One more verification of another policy costs one sequence of the same length.
    service.verify(pinned, ImagePolicy(signers=policy.signers), policy_key("other"))
    assert counting.manifest_reads == 2 * single
