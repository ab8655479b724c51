"""Hostile signature material: each input is refused with a reason, never a raw exception or a forged field.

Signatures, attestations, certificates, Rekor SETs, Sigstore bundles and stored decision
seals come from registries and stores that gate does not control; what is not signed must
not show up in a verified result.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gate.audit import verify_statement as verify_decision_statement
from gate.errors import InvalidArgument
from gate.oci import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    ImageRef,
    OciLayout,
    Platform,
    VerifiedReader,
    cosign_tag,
    encode_manifest,
)
from gate.oci import media as oci_media
from gate.signatures import (
    AttestationRequirement,
    Identity,
    ImagePolicy,
    SignatureLayer,
    SignaturePolicy,
    TrustRoot,
    key_hint,
    load_public_key,
    make_statement,
    parse_envelope,
    sign_dsse,
    verify_bundle,
    verify_image,
    verify_simple_signing,
    verify_statement,
)
from tests.unit.signatures.support import (
    DIGEST,
    NOW,
    SIMPLE_SIGNING,
    Rekor,
    authority,
    hashedrekord_body,
    key_bundle,
    make_ca,
    make_leaf,
    signed_layer,
    signing_key,
    trusted_root_json,
)

SHARED = Path(__file__).resolve().parents[4] / "shared" / "conformance"
SIGSTORE_CASES = SHARED / "sigstore" / "test" / "assets" / "bundle-verify"
PRODUCTION = SHARED / "sigstore" / "trust" / "production-trusted_root.json"
SIG = "dev.cosignproject.cosign/signature"
CERT = "dev.sigstore.cosign/certificate"
BUNDLE = "dev.sigstore.cosign/bundle"
INTOTO = "application/vnd.in-toto+json"
DEEP = b"[" * 100_000
NESTED = "nested too deeply"


# --- JSON nested beyond the parser's recursion limit -------------------------------------


def test_a_deeply_nested_simple_signing_payload_is_a_failed_verification() -> None:
    key = signing_key()
    layer = dataclasses.replace(signed_layer(key), payload=DEEP)
    result = verify_simple_signing(
        layer, image_digest=DIGEST, policy=SignaturePolicy(keys=(key.public,)), trust=TrustRoot()
    )
    assert not result.verified
    assert result.reason.startswith("payload: got JSON nested too deeply")


def test_a_deeply_nested_dsse_envelope_is_refused_as_invalid() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_envelope(DEEP)
    assert caught.value.field == "envelope"
    assert NESTED in caught.value.problem


def test_a_deeply_nested_statement_fails_before_any_signature_check() -> None:
    result = verify_statement(DEEP, digest=DIGEST, predicate_type=None)
    assert not result.verified
    assert result.reason.startswith("statement: got JSON nested too deeply")


def test_a_deeply_nested_rekor_set_bundle_is_a_failed_verification() -> None:
    key = signing_key()
    layer = signed_layer(key)
    annotated = SignatureLayer(SIMPLE_SIGNING, layer.payload, {**layer.annotations, BUNDLE: DEEP.decode()})
    result = verify_simple_signing(
        annotated, image_digest=DIGEST, policy=SignaturePolicy(keys=(key.public,)), trust=TrustRoot()
    )
    assert not result.verified
    assert result.reason.startswith("rekor bundle: got JSON nested too deeply")


# --- annotations that cannot be UTF-8 ------------------------------------------------------


def test_an_annotation_with_a_lone_surrogate_is_a_failed_signature() -> None:
    key = signing_key()
    layer = signed_layer(key)
    hostile = SignatureLayer(SIMPLE_SIGNING, layer.payload, {**layer.annotations, CERT: "x\ud800"})
    result = verify_simple_signing(
        hostile, image_digest=DIGEST, policy=SignaturePolicy(keys=(key.public,)), trust=TrustRoot()
    )
    assert not result.verified
    assert result.reason == (
        f"annotation {CERT}: got a lone surrogate at character 1, expected text that encodes as UTF-8"
    )


class _SurrogateAnnotations:
    """An image source whose ``.att`` layers carry a lone surrogate in one annotation.

    gate's own sources refuse such manifests; another implementation of the port may not.
    """

    def __init__(self, inner: OciLayout, annotation: str) -> None:
        self.inner, self.annotation = inner, annotation

    def resolve(self, ref: ImageRef) -> Descriptor:
        return self.inner.resolve(ref)

    def manifest(self, ref: ImageRef, *, expected: Descriptor | None = None) -> ImageManifest | ImageIndex:
        found = self.inner.manifest(ref, expected=expected)
        if not isinstance(found, ImageManifest) or not (ref.tag or "").endswith(".att"):
            return found
        first = found.layers[0]
        hostile = dataclasses.replace(first, annotations={**first.annotations, self.annotation: "\ud800"})
        return dataclasses.replace(found, layers=(hostile, *found.layers[1:]))

    def image_manifest(self, ref: ImageRef, platform: str | Platform = "linux/amd64") -> ImageManifest:
        return self.inner.image_manifest(ref, platform)

    def open_blob(self, ref: ImageRef, descriptor: Descriptor, max_bytes: int) -> VerifiedReader:
        return self.inner.open_blob(ref, descriptor, max_bytes)

    def read_blob(self, ref: ImageRef, descriptor: Descriptor, max_bytes: int) -> bytes:
        return self.inner.read_blob(ref, descriptor, max_bytes)


def test_an_attestation_layer_annotation_with_a_lone_surrogate_fails_only_that_layer(tmp_path: Path) -> None:
    key = signing_key()
    layout = OciLayout.create(tmp_path / "layout")
    digest = layout.write_blob(b'{"image": 1}', oci_media.OCI_CONFIG).digest
    predicate = "https://example.com/predicate/v1"
    envelope = sign_dsse(make_statement({"app": digest}, predicate, {"ok": True}), INTOTO, key)
    config = layout.write_blob(b"{}", oci_media.OCI_CONFIG)
    layer = dataclasses.replace(
        layout.write_blob(envelope, oci_media.DSSE_ENVELOPE),
        annotations={"predicateType": predicate, SIG: ""},
    )
    manifest = encode_manifest(config, [layer, layer], media_type=oci_media.OCI_MANIFEST)
    layout.write_manifest(manifest, tag=cosign_tag(digest, "att"))
    source = _SurrogateAnnotations(layout, BUNDLE)
    ref = ImageRef.parse(f"registry.example/app@{digest}")
    policy = ImagePolicy(
        attestations=(AttestationRequirement(predicate, SignaturePolicy(keys=(key.public,))),)
    )
    result = verify_image(source, ref, policy, TrustRoot())
    hostile, intact = result.attestations[predicate]
    assert not hostile.verified
    assert hostile.reason == (
        f"attestation layer {layer.digest}: annotation {BUNDLE}: got a lone surrogate at character 0, "
        "expected text that encodes as UTF-8"
    )
    assert intact.verified, intact.reason
    assert result.verified, result.reason


# --- the Rekor SET's integratedTime ---------------------------------------------------------


def _set_layer(rekor: Rekor, **payload: object) -> tuple[SignatureLayer, SignaturePolicy]:
    """A key-signed layer whose SET ``rekor`` signed over the entry with ``payload`` changes."""
    key = signing_key()
    layer = signed_layer(key)
    document = json.loads(
        rekor.bundle(
            payload=layer.payload,
            signature=base64.b64decode(layer.annotations[SIG]),
            signer_pem=key.public.pem(),
        )
    )
    document["Payload"].update(payload)
    signature = rekor.key.sign(rfc8785.dumps(document["Payload"]), ec.ECDSA(hashes.SHA256()))
    document["SignedEntryTimestamp"] = base64.b64encode(signature).decode()
    annotated = SignatureLayer(
        SIMPLE_SIGNING, layer.payload, {**layer.annotations, BUNDLE: json.dumps(document)}
    )
    return annotated, SignaturePolicy(keys=(key.public,), require_tlog=True)


@pytest.mark.parametrize("integrated", [253_402_300_800, 2**52, -(10**12)])
def test_a_set_signed_over_an_impossible_time_is_refused_with_the_range(integrated: int) -> None:
    rekor = Rekor.create()
    layer, policy = _set_layer(rekor, integratedTime=integrated)
    result = verify_simple_signing(layer, image_digest=DIGEST, policy=policy, trust=rekor.trust())
    assert not result.verified
    assert result.reason == (
        f"rekor bundle Payload.integratedTime: got {integrated}, expected Unix seconds "
        "from 0 to 253402300799 (1970 to 9999)"
    )


@pytest.mark.parametrize("integrated", [253_402_300_800, -(10**12)])
def test_an_unsigned_time_is_never_converted_before_the_set_signature_check(integrated: int) -> None:
    rekor = Rekor.create()
    layer, policy = _set_layer(rekor)
    document = json.loads(layer.annotations[BUNDLE])
    document["Payload"]["integratedTime"] = integrated
    tampered = SignatureLayer(
        SIMPLE_SIGNING, layer.payload, {**layer.annotations, BUNDLE: json.dumps(document)}
    )
    result = verify_simple_signing(tampered, image_digest=DIGEST, policy=policy, trust=rekor.trust())
    assert result.reason == "rekor bundle: signed entry timestamp does not verify under the Rekor key"


@pytest.mark.parametrize("field", ["integratedTime", "logIndex"])
def test_a_set_number_no_log_can_sign_is_refused_with_the_range(field: str) -> None:
    rekor = Rekor.create()
    layer, policy = _set_layer(rekor)
    document = json.loads(layer.annotations[BUNDLE])
    document["Payload"][field] = 10**19
    tampered = SignatureLayer(
        SIMPLE_SIGNING, layer.payload, {**layer.annotations, BUNDLE: json.dumps(document)}
    )
    result = verify_simple_signing(tampered, image_digest=DIGEST, policy=policy, trust=rekor.trust())
    assert result.reason == (
        f"rekor bundle Payload.{field}: got 10000000000000000000, "
        "expected an integer from -(2^53-1) to 2^53-1 (what RFC 8785 can canonicalize)"
    )


# --- certificates with a key gate cannot use --------------------------------------------


def test_a_certificate_with_an_unknown_key_algorithm_is_a_failed_signature() -> None:
    ca = make_ca()
    _, leaf = make_leaf(ca)
    der = leaf.public_bytes(serialization.Encoding.DER)
    ec_public_key_oid = bytes.fromhex("06072a8648ce3d0201")
    assert der.count(ec_public_key_oid) == 1
    unknown = der.replace(ec_public_key_oid, bytes.fromhex("06072a8648ce3d0209"))
    pem = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(unknown) + b"-----END CERTIFICATE-----\n"
    layer = signed_layer(signing_key())
    hostile = SignatureLayer(SIMPLE_SIGNING, layer.payload, {**layer.annotations, CERT: pem.decode()})
    policy = SignaturePolicy(identities=(Identity(subject="dev@example.com"),))
    result = verify_simple_signing(
        hostile, image_digest=DIGEST, policy=policy, trust=TrustRoot(private_cas=(authority(ca),))
    )
    assert not result.verified
    assert result.reason.startswith("certificate: got a public key of algorithm 1.2.840.10045.2.9")


# --- Sigstore bundles: only what the log signed is reported -------------------------------


def _managed_key_case() -> tuple[dict[str, Any], SignaturePolicy, TrustRoot, bytes]:
    case = SIGSTORE_CASES / "managed-key-happy-path"
    bundle = json.loads((case / "bundle.sigstore.json").read_bytes())
    policy = SignaturePolicy(keys=(load_public_key((case / "key.pub").read_bytes()),))
    trust = TrustRoot.from_trusted_root_json(PRODUCTION.read_bytes())
    return bundle, policy, trust, (SIGSTORE_CASES / "a.txt").read_bytes()


def test_the_real_managed_key_bundle_reports_its_signed_time() -> None:
    bundle, policy, trust, artifact = _managed_key_case()
    result = verify_bundle(json.dumps(bundle).encode(), policy=policy, trust=trust, artifact=artifact)
    assert result.verified, result.reason
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    assert result.integrated_time is not None
    assert int(result.integrated_time.timestamp()) == int(entry["integratedTime"])
    assert result.tlog_index == int(entry["logIndex"])


@pytest.mark.parametrize("forged", ["1", "253402300800"])
def test_a_bundle_without_inclusion_promise_does_not_report_its_unsigned_time(forged: str) -> None:
    bundle, policy, trust, artifact = _managed_key_case()
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    del entry["inclusionPromise"]
    entry["integratedTime"] = forged
    result = verify_bundle(json.dumps(bundle).encode(), policy=policy, trust=trust, artifact=artifact)
    # The inclusion proof still proves the entry; only the time is nobody's word.
    assert result.verified, result.reason
    assert result.integrated_time is None


def test_a_bundle_without_inclusion_promise_does_not_report_an_unproven_log_index() -> None:
    bundle, policy, trust, artifact = _managed_key_case()
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    del entry["inclusionPromise"]
    result = verify_bundle(json.dumps(bundle).encode(), policy=policy, trust=trust, artifact=artifact)
    assert result.verified, result.reason
    # This log is sharded: the proof's tree-local index differs from the global one, which nothing signed.
    assert entry["logIndex"] != entry["inclusionProof"]["logIndex"]
    assert result.tlog_index is None


def _message_bundle(rekor: Rekor, *, promise: bool, **entry_changes: str) -> tuple[bytes, SignaturePolicy]:
    key = signing_key()
    artifact = b"the artifact"
    signature = key.sign(artifact)
    body = hashedrekord_body(artifact, signature, key.public.pem())
    content: dict[str, object] = {
        "messageSignature": {
            "messageDigest": {
                "algorithm": "SHA2_256",
                "digest": base64.b64encode(hashlib.sha256(artifact).digest()).decode(),
            },
            "signature": base64.b64encode(signature).decode(),
        }
    }
    document = json.loads(key_bundle(rekor, body, content, key_hint(key.public)))
    entry = document["verificationMaterial"]["tlogEntries"][0]
    if not promise:
        del entry["inclusionPromise"]
    entry.update(entry_changes)
    return json.dumps(document).encode(), SignaturePolicy(keys=(key.public,))


def test_a_key_bundle_reports_time_and_index_only_when_signed_or_proven() -> None:
    rekor = Rekor.create()
    trust = TrustRoot.from_trusted_root_json(trusted_root_json(rekor))
    digest = "sha256:" + hashlib.sha256(b"the artifact").hexdigest()
    signed, policy = _message_bundle(rekor, promise=True)
    result = verify_bundle(signed, policy=policy, trust=trust, digest=digest)
    assert (result.verified, result.integrated_time, result.tlog_index) == (True, NOW, 0), result.reason
    proven, policy = _message_bundle(rekor, promise=False, integratedTime="1")
    result = verify_bundle(proven, policy=policy, trust=trust, digest=digest)
    # Index 0 is what the inclusion proof was checked at, in the tree "rekor.test - 1"; this
    # log's id does not pin that tree (a v1 log's shards share it), so 0 is no global index.
    # The time is unsigned.
    assert (result.verified, result.integrated_time, result.tlog_index) == (True, None, None), result.reason
    assert (result.tlog_tree, result.tlog_tree_index) == ("rekor.test - 1", 0)
    forged, policy = _message_bundle(rekor, promise=False, logIndex="99")
    result = verify_bundle(forged, policy=policy, trust=trust, digest=digest)
    assert (result.verified, result.tlog_index) == (True, None), result.reason


def test_a_keyless_bundle_without_inclusion_promise_reports_no_integrated_time() -> None:
    case = SIGSTORE_CASES / "intoto-with-custom-trust-root"
    bundle = json.loads((case / "bundle.sigstore.json").read_bytes())
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    trust = TrustRoot.from_trusted_root_json((case / "trusted_root.json").read_bytes())
    policy = SignaturePolicy(
        identities=(
            Identity(
                subject="https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
                ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
                issuer="https://token.actions.githubusercontent.com",
            ),
        )
    )
    artifact = (case / "artifact").read_bytes()
    signed = verify_bundle(json.dumps(bundle).encode(), policy=policy, trust=trust, artifact=artifact)
    assert signed.verified, signed.reason
    assert signed.integrated_time is not None
    del entry["inclusionPromise"]
    entry["integratedTime"] = "1"
    unsigned = verify_bundle(json.dumps(bundle).encode(), policy=policy, trust=trust, artifact=artifact)
    # An RFC 3161 timestamp vouches for the signature here, so it verifies, without a log time.
    assert unsigned.verified, unsigned.reason
    assert unsigned.integrated_time is None


# --- stored decision seals ------------------------------------------------------------------


def _decision_key() -> bytes:
    private = ec.generate_private_key(ec.SECP256R1())
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_a_deeply_nested_decision_signature_column_is_refused() -> None:
    check = verify_decision_statement(b"{}", DEEP, _decision_key())
    assert not check.verified
    assert check.reason.startswith("signature: got JSON nested too deeply")


def test_a_seal_whose_envelope_payload_is_deeply_nested_is_refused() -> None:
    seal = {
        "mediaType": "application/vnd.gate.decision-seal.v1+json",
        "index": 0,
        "treeSize": 1,
        "proof": [],
        "envelope": {
            "payloadType": INTOTO,
            "payload": base64.b64encode(DEEP).decode(),
            "signatures": [{"sig": "AAAA"}],
        },
    }
    check = verify_decision_statement(b"{}", json.dumps(seal).encode(), _decision_key())
    assert not check.verified
    assert check.reason.startswith("statement: got JSON nested too deeply")


def test_a_seal_envelope_nested_around_the_parser_limit_is_refused_at_every_depth() -> None:
    key = _decision_key()
    for depth in range(940, 1010):
        envelope = '{"a":' + "[" * depth + "]" * depth + "}"
        seal = (
            '{"mediaType": "application/vnd.gate.decision-seal.v1+json", "index": 0, "treeSize": 1,'
            f' "proof": [], "envelope": {envelope}}}'
        )
        check = verify_decision_statement(b"{}", seal.encode(), key)
        assert not check.verified
        assert check.reason


def _statement_naming(first: str, last: str) -> bytes:
    subject = '[{"name": "app", "digest": {"sha256": "%s"}}]'
    return (
        '{"_type": "https://in-toto.io/Statement/v1", '
        f'"subject": {subject % first}, "subject": {subject % last}, '
        '"predicateType": "https://slsa.dev/provenance/v1", "predicate": {}}'
    ).encode()


def test_a_statement_naming_its_subject_twice_is_refused_not_read_by_its_last_value() -> None:
    # Readers that keep the first value would see another image than Python's json (the last).
    other = "b" * 64
    result = verify_statement(
        _statement_naming(other, DIGEST.partition(":")[2]), digest=DIGEST, predicate_type=None
    )
    assert not result.verified
    assert result.reason == "statement: got duplicate key 'subject' in one object, expected unique keys"


def test_a_simple_signing_payload_with_a_repeated_key_or_nan_is_a_failed_verification() -> None:
    key = signing_key()
    good = signed_layer(key).payload
    document = json.loads(good)
    critical = json.dumps(document["critical"])
    twice = good.decode().replace('"critical":', f'"critical": {critical}, "critical":', 1).encode()
    nan = good.decode().replace("{", '{"n": NaN, ', 1).encode()
    for payload, reason in (
        (twice, "payload: got duplicate key 'critical' in one object, expected unique keys"),
        (nan, "payload: got the constant NaN, expected a JSON number (JSON has no NaN or Infinity)"),
    ):
        # Signed as they are: the signature holds, the document is what is refused.
        signature = base64.b64encode(key.sign(payload)).decode()
        layer = SignatureLayer(SIMPLE_SIGNING, payload, {"dev.cosignproject.cosign/signature": signature})
        result = verify_simple_signing(
            layer, image_digest=DIGEST, policy=SignaturePolicy(keys=(key.public,)), trust=TrustRoot()
        )
        assert not result.verified
        assert result.reason == reason
