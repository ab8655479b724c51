"""Image verification over OCI layouts holding real cosign signature layers and attestations."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gate.oci import (
    Descriptor,
    ImageRef,
    OciLayout,
    RegistryTimeout,
    cosign_tag,
    encode_manifest,
    referrers_tag,
)
from gate.oci import media as oci_media
from gate.signatures import (
    AttestationRequirement,
    Identity,
    ImagePolicy,
    SignaturePolicy,
    TrustRoot,
    load_private_key,
    load_public_key,
    make_statement,
    sign_dsse,
    sign_simple_signing,
    verify_image,
)

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "conformance"
COSIGN = SHARED / "cosign" / "cases"
MARKER = b"\x00sigstore-json\n"
VULN = "https://cosign.sigstore.dev/attestation/vuln/v1"


def _layer(case: str) -> dict[str, Any]:
    return json.loads((COSIGN / case / "signature-1").read_bytes()[len(MARKER) :])


def _artifact_manifest(
    layout: OciLayout, layers: list[tuple[bytes, str, dict[str, str]]], **extra: Any
) -> bytes:
    config = layout.write_blob(b"{}", oci_media.OCI_CONFIG)
    descriptors = [
        dataclasses.replace(layout.write_blob(blob, media_type), annotations=annotations)
        for blob, media_type, annotations in layers
    ]
    return encode_manifest(config, descriptors, media_type=oci_media.OCI_MANIFEST, **extra)


def _image_with_signatures(tmp_path: Path, case: str, *layer_cases: str) -> tuple[OciLayout, ImageRef, str]:
    layout = OciLayout.create(tmp_path / "layout")
    manifest = (COSIGN / case / "manifest.json").read_bytes()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    layout.write_manifest(manifest, tag="1.0")
    layers = []
    for name in layer_cases or (case,):
        stored = _layer(name)
        layers.append((base64.b64decode(stored["payload"]), stored["mimeType"], stored["annotations"]))
    layout.write_manifest(_artifact_manifest(layout, layers), tag=cosign_tag(digest, "sig"))
    return layout, ImageRef.parse("registry.example/app:1.0"), digest


def _keys(case: str, *names: str) -> SignaturePolicy:
    return SignaturePolicy(keys=tuple(load_public_key((COSIGN / case / n).read_bytes()) for n in names))


def test_key_signed_image_verifies_from_its_sig_tag(tmp_path: Path) -> None:
    layout, ref, digest = _image_with_signatures(tmp_path, "ci-key-simplesigning-valid")
    result = verify_image(
        layout, ref, ImagePolicy(signers=_keys("ci-key-simplesigning-valid", "cosign.pub")), TrustRoot()
    )
    assert result.verified, result.reason
    assert result.digest == digest
    assert len(result.signatures) == 1


def test_wrong_key_and_missing_signatures_fail_with_reasons(tmp_path: Path) -> None:
    layout, ref, _ = _image_with_signatures(tmp_path, "ci-key-simplesigning-valid")
    wrong = verify_image(
        layout, ref, ImagePolicy(signers=_keys("ci-key-rekor-set-valid", "cosign2.pub")), TrustRoot()
    )
    assert not wrong.verified
    assert wrong.reason.startswith(
        "0 distinct verified signer(s), need 1: signature: no trusted key verifies"
    )
    unsigned = OciLayout.create(tmp_path / "unsigned")
    unsigned.write_manifest((COSIGN / "ci-key-simplesigning-valid" / "manifest.json").read_bytes(), tag="1.0")
    none = verify_image(
        unsigned, ref, ImagePolicy(signers=_keys("ci-key-simplesigning-valid", "cosign.pub")), TrustRoot()
    )
    assert none.reason == "0 distinct verified signer(s), need 1: no signatures found"


def test_keyless_signature_with_set_verifies_against_the_production_root(tmp_path: Path) -> None:
    layout, ref, _ = _image_with_signatures(tmp_path, "ci-fulcio-rekor-valid")
    trust = TrustRoot.from_trusted_root_json(
        (SHARED / "cosign" / "trust" / "production-trusted_root.json").read_bytes()
    )
    policy = SignaturePolicy(
        identities=(Identity(subject="mitr@redhat.com", issuer="https://github.com/login/oauth"),),
        require_tlog=True,
    )
    result = verify_image(layout, ref, ImagePolicy(signers=policy), trust)
    assert result.verified, result.reason
    assert result.signatures[0].signer == "mitr@redhat.com"
    assert result.signatures[0].tlog_index is not None


def test_signature_layer_of_another_image_does_not_count(tmp_path: Path) -> None:
    # The valid layer of image A copied under image B's .sig tag: its payload names A's digest.
    layout = OciLayout.create(tmp_path / "layout")
    manifest = (COSIGN / "ci-pki-valid" / "manifest.json").read_bytes()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    layout.write_manifest(manifest, tag="1.0")
    stored = _layer("ci-key-simplesigning-valid")
    layers = [(base64.b64decode(stored["payload"]), stored["mimeType"], stored["annotations"])]
    layout.write_manifest(_artifact_manifest(layout, layers), tag=cosign_tag(digest, "sig"))
    result = verify_image(
        layout,
        ImageRef.parse("registry.example/app:1.0"),
        ImagePolicy(signers=_keys("ci-key-simplesigning-valid", "cosign.pub")),
        TrustRoot(),
    )
    assert "docker-manifest-digest" in result.reason


def _signing() -> tuple[Any, SignaturePolicy]:
    private = ec.generate_private_key(ec.SECP256R1())
    key = load_private_key(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return key, SignaturePolicy(keys=(key.public,))


def test_count_needs_that_many_distinct_signers(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path / "layout")
    manifest = (COSIGN / "ci-key-simplesigning-valid" / "manifest.json").read_bytes()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    layout.write_manifest(manifest, tag="1.0")
    (first, _), (second, _) = _signing(), _signing()
    layers = []
    for key in (first, first, second):
        payload, signature = sign_simple_signing("registry.example/app", digest, key)
        layers.append(
            (payload, oci_media.COSIGN_SIMPLESIGNING, {"dev.cosignproject.cosign/signature": signature})
        )
    layout.write_manifest(_artifact_manifest(layout, layers[:2]), tag=cosign_tag(digest, "sig"))
    ref = ImageRef.parse("registry.example/app:1.0")
    both = SignaturePolicy(keys=(first.public, second.public))
    once = verify_image(layout, ref, ImagePolicy(signers=both, count=2), TrustRoot())
    assert once.reason.startswith("1 distinct verified signer(s), need 2")
    layout.write_manifest(_artifact_manifest(layout, layers), tag=cosign_tag(digest, "sig"))
    assert verify_image(layout, ref, ImagePolicy(signers=both, count=2), TrustRoot()).verified


def test_gate_attestation_in_the_att_tag_returns_its_predicate(tmp_path: Path) -> None:
    layout, ref, digest = _image_with_signatures(tmp_path, "ci-key-simplesigning-valid")
    key, signers = _signing()
    predicate = {"scanner": {"uri": "pkg:github/aquasecurity/trivy", "result": {"Results": []}}}
    envelope = sign_dsse(
        make_statement({"registry.example/app": digest}, VULN, predicate), "application/vnd.in-toto+json", key
    )
    layers = [
        (envelope, oci_media.DSSE_ENVELOPE, {"predicateType": VULN, "dev.cosignproject.cosign/signature": ""})
    ]
    layout.write_manifest(_artifact_manifest(layout, layers), tag=cosign_tag(digest, "att"))
    policy = ImagePolicy(attestations=(AttestationRequirement(VULN, signers),))
    result = verify_image(layout, ref, policy, TrustRoot())
    assert result.verified, result.reason
    assert result.predicates(VULN) == [predicate]
    other = ImagePolicy(attestations=(AttestationRequirement("https://cyclonedx.org/bom", signers),))
    missing = verify_image(layout, ref, other, TrustRoot())
    assert missing.reason == "no verified https://cyclonedx.org/bom attestation: none found"
    _, stranger = _signing()
    untrusted = verify_image(
        layout, ref, ImagePolicy(attestations=(AttestationRequirement(VULN, stranger),)), TrustRoot()
    )
    assert "no trusted key verifies" in untrusted.reason


def test_sigstore_bundle_found_through_the_referrers_fallback_tag(tmp_path: Path) -> None:
    case = COSIGN / "cosign-oci-attestation-bundle"
    digest = json.loads((case / "case.json").read_text())["artifact_digest"]
    layout = OciLayout.create(tmp_path / "layout")
    # The attested image itself is not in the corpus; a manifest stands in for it under its digest.
    subject = Descriptor(oci_media.OCI_MANIFEST, digest, 1234)
    bundle = (case / "bundle.sigstore.json").read_bytes()
    member = _artifact_manifest(
        layout,
        [(bundle, oci_media.SIGSTORE_BUNDLE_V03, {})],
        subject=subject,
        artifact_type=oci_media.SIGSTORE_BUNDLE_V03,
    )
    member_descriptor = layout.write_manifest(member)
    # cosign 3 may type the index entry as the empty media type; the member manifest decides.
    entry = dataclasses.replace(member_descriptor, artifact_type=oci_media.OCI_EMPTY)
    layout.write_index([entry], tag=referrers_tag(digest))
    trust = TrustRoot.from_trusted_root_json((case / "trusted_root.json").read_bytes())
    signers = SignaturePolicy(
        identities=(Identity(subject="cody@soyland.com", issuer="https://github.com/login/oauth"),)
    )
    ref = ImageRef.parse(f"registry.example/app@{digest}")
    requirement = AttestationRequirement("https://cosign.sigstore.dev/attestation/v1", signers)
    result = verify_image(layout, ref, ImagePolicy(attestations=(requirement,)), trust)
    assert result.verified, result.reason
    assert result.predicates(requirement.predicate_type)


@pytest.mark.parametrize("payload", [b"", b"garbage"])
def test_corrupt_signature_blob_is_a_failed_signature(tmp_path: Path, payload: bytes) -> None:
    layout, ref, digest = _image_with_signatures(tmp_path, "ci-key-simplesigning-valid")
    stored = _layer("ci-key-simplesigning-valid")
    layers = [(payload, stored["mimeType"], stored["annotations"])]
    layout.write_manifest(_artifact_manifest(layout, layers), tag=cosign_tag(digest, "sig"))
    result = verify_image(
        layout, ref, ImagePolicy(signers=_keys("ci-key-simplesigning-valid", "cosign.pub")), TrustRoot()
    )
    assert not result.verified
    assert len(result.signatures) == 1


class _ReferrersLayout:
    """A layout that also answers the referrers API, as a registry client does."""

    def __init__(self, layout: OciLayout, referrers: list[Descriptor]) -> None:
        self._layout = layout
        self._referrers = referrers
        self.asked: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._layout, name)

    def referrers(self, ref: ImageRef, artifact_type: str | None = None) -> list[Descriptor]:
        self.asked.append(str(ref))
        return self._referrers


class _FailingSource:
    """An image source whose registry is down."""

    def resolve(self, ref: ImageRef) -> Descriptor:
        raise RegistryTimeout("registry.example: no answer within 5 s")

    def __getattr__(self, name: str) -> Any:
        raise RegistryTimeout("registry.example: no answer within 5 s")


def test_referrers_api_is_used_when_the_source_offers_it(tmp_path: Path) -> None:
    case = COSIGN / "cosign-oci-attestation-bundle"
    digest = json.loads((case / "case.json").read_text())["artifact_digest"]
    layout = OciLayout.create(tmp_path / "layout")
    member = _artifact_manifest(
        layout,
        [((case / "bundle.sigstore.json").read_bytes(), oci_media.SIGSTORE_BUNDLE_V03, {})],
        subject=Descriptor(oci_media.OCI_MANIFEST, digest, 1234),
        artifact_type=oci_media.SIGSTORE_BUNDLE_V03,
    )
    source = _ReferrersLayout(layout, [layout.write_manifest(member)])
    trust = TrustRoot.from_trusted_root_json((case / "trusted_root.json").read_bytes())
    signers = SignaturePolicy(
        identities=(Identity(subject="cody@soyland.com", issuer="https://github.com/login/oauth"),)
    )
    requirement = AttestationRequirement("https://cosign.sigstore.dev/attestation/v1", signers)
    ref = ImageRef.parse(f"registry.example/app@{digest}")
    result = verify_image(source, ref, ImagePolicy(attestations=(requirement,)), trust)  # type: ignore[arg-type]
    assert result.verified, result.reason
    assert source.asked == [str(ref)]


def test_an_unreachable_registry_raises_instead_of_deciding() -> None:
    policy = ImagePolicy(signers=_keys("ci-key-simplesigning-valid", "cosign.pub"))
    with pytest.raises(RegistryTimeout):
        verify_image(_FailingSource(), ImageRef.parse("registry.example/app:1.0"), policy, TrustRoot())  # type: ignore[arg-type]
