"""Simple-signing signatures: every corrupted field is a failure with a precise reason."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from gate.errors import InvalidArgument
from gate.signatures import (
    Identity,
    SignatureLayer,
    SignaturePolicy,
    TrustRoot,
    verify_simple_signing,
)
from gate.signatures._trust import Validity
from tests.unit.signatures.support import (
    DIGEST,
    NOW,
    OTHER_DIGEST,
    SIMPLE_SIGNING,
    Rekor,
    authority,
    cert_pem,
    make_ca,
    make_leaf,
    signed_layer,
    signing_key,
)

SIG = "dev.cosignproject.cosign/signature"
CERT = "dev.sigstore.cosign/certificate"
CHAIN = "dev.sigstore.cosign/chain"
BUNDLE = "dev.sigstore.cosign/bundle"


def _with(layer: SignatureLayer, **changes: object) -> SignatureLayer:
    return dataclasses.replace(layer, **changes)  # type: ignore[arg-type]


def _annotate(layer: SignatureLayer, **values: str | None) -> SignatureLayer:
    annotations = dict(layer.annotations)
    for name, value in values.items():
        real = {"sig": SIG, "cert": CERT, "chain": CHAIN, "bundle": BUNDLE}[name]
        if value is None:
            annotations.pop(real, None)
        else:
            annotations[real] = value
    return _with(layer, annotations=annotations)


def test_gate_signed_payload_verifies_with_its_key() -> None:
    key = signing_key()
    result = verify_simple_signing(
        signed_layer(key), image_digest=DIGEST, policy=SignaturePolicy(keys=(key.public,)), trust=TrustRoot()
    )
    assert result.verified, result.reason
    assert result.signer == key.public.fingerprint
    assert result.claims is not None
    assert result.claims["critical"]["image"]["docker-manifest-digest"] == DIGEST


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (None, "signature: missing or empty"),
        ("", "signature: missing or empty"),
        ("%%%not base64", "not valid base64"),
        ("A" * 20000, "too long"),
    ],
)
def test_missing_or_undecodable_signatures_fail(signature: str | None, reason: str) -> None:
    key = signing_key()
    layer = _annotate(signed_layer(key), sig=signature)
    result = verify_simple_signing(
        layer, image_digest=DIGEST, policy=SignaturePolicy(keys=(key.public,)), trust=TrustRoot()
    )
    assert not result.verified
    assert reason in result.reason


@pytest.mark.parametrize("cut", [1, 8, 40])
def test_truncated_signatures_fail(cut: int) -> None:
    key = signing_key()
    layer = signed_layer(key)
    raw = base64.b64decode(layer.annotations[SIG])
    truncated = _annotate(layer, sig=base64.b64encode(raw[:-cut]).decode())
    result = verify_simple_signing(
        truncated, image_digest=DIGEST, policy=SignaturePolicy(keys=(key.public,)), trust=TrustRoot()
    )
    assert not result.verified
    assert result.reason.startswith("signature: no trusted key verifies the signature")


def test_bit_flipped_signature_fails() -> None:
    key = signing_key()
    layer = signed_layer(key)
    raw = bytearray(base64.b64decode(layer.annotations[SIG]))
    raw[10] ^= 0x01
    result = verify_simple_signing(
        _annotate(layer, sig=base64.b64encode(bytes(raw)).decode()),
        image_digest=DIGEST,
        policy=SignaturePolicy(keys=(key.public,)),
        trust=TrustRoot(),
    )
    assert not result.verified


def test_wrong_key_fails_and_any_listed_key_may_sign() -> None:
    key, other = signing_key(), signing_key()
    layer = signed_layer(key)
    wrong = verify_simple_signing(
        layer, image_digest=DIGEST, policy=SignaturePolicy(keys=(other.public,)), trust=TrustRoot()
    )
    assert not wrong.verified
    assert "no trusted key verifies" in wrong.reason
    either = verify_simple_signing(
        layer, image_digest=DIGEST, policy=SignaturePolicy(keys=(other.public, key.public)), trust=TrustRoot()
    )
    assert either.verified
    assert either.signer == key.public.fingerprint


def test_signature_over_another_image_digest_fails() -> None:
    key = signing_key()
    result = verify_simple_signing(
        signed_layer(key, digest=OTHER_DIGEST),
        image_digest=DIGEST,
        policy=SignaturePolicy(keys=(key.public,)),
        trust=TrustRoot(),
    )
    assert not result.verified
    assert result.reason.startswith("payload.critical.image.docker-manifest-digest: got")


def test_modified_payload_no_longer_verifies() -> None:
    key = signing_key()
    layer = signed_layer(key)
    tampered = layer.payload.replace(b"registry.example", b"registry.evil00")
    result = verify_simple_signing(
        _with(layer, payload=tampered),
        image_digest=DIGEST,
        policy=SignaturePolicy(keys=(key.public,)),
        trust=TrustRoot(),
    )
    assert not result.verified
    assert "no trusted key verifies" in result.reason


def test_wrong_media_type_and_wrong_claim_type_fail() -> None:
    key = signing_key()
    layer = signed_layer(key)
    policy = SignaturePolicy(keys=(key.public,))
    media = verify_simple_signing(
        _with(layer, media_type="text/plain"), image_digest=DIGEST, policy=policy, trust=TrustRoot()
    )
    assert media.reason.startswith("layer.mediaType: got 'text/plain'")
    private = key.private
    payload = layer.payload.replace(b"cosign container image signature", b"atomic container signature")
    signature = base64.b64encode(private.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    typed = verify_simple_signing(
        _annotate(_with(layer, payload=payload), sig=signature),
        image_digest=DIGEST,
        policy=policy,
        trust=TrustRoot(),
    )
    assert typed.reason.startswith("payload.critical.type: got 'atomic container signature'")


def test_docker_reference_and_annotations_are_checked_only_when_asked() -> None:
    key = signing_key()
    layer = signed_layer(key, ref="registry.example/team/app:1.0")
    assert verify_simple_signing(
        layer, image_digest=DIGEST, policy=SignaturePolicy(keys=(key.public,)), trust=TrustRoot()
    ).verified
    exact = SignaturePolicy(keys=(key.public,), reference="registry.example/team/app")
    assert verify_simple_signing(layer, image_digest=DIGEST, policy=exact, trust=TrustRoot()).verified
    other = SignaturePolicy(keys=(key.public,), reference="registry.example/team/other")
    mismatch = verify_simple_signing(layer, image_digest=DIGEST, policy=other, trust=TrustRoot())
    assert mismatch.reason.startswith("payload.critical.identity.docker-reference")
    annotated = SignaturePolicy(keys=(key.public,), annotations={"env": "prod"})
    missing = verify_simple_signing(layer, image_digest=DIGEST, policy=annotated, trust=TrustRoot())
    assert missing.reason == "payload.optional.env: got None, expected 'prod'"


def test_go_style_case_insensitive_claim_names_are_read() -> None:
    key = signing_key()
    payload = json.dumps(
        {
            "Critical": {
                "Image": {"Docker-manifest-digest": DIGEST},
                "Type": "cosign container image signature",
            }
        }
    ).encode()
    signature = base64.b64encode(key.sign(payload)).decode()
    layer = SignatureLayer(SIMPLE_SIGNING, payload, {SIG: signature})
    assert verify_simple_signing(
        layer, image_digest=DIGEST, policy=SignaturePolicy(keys=(key.public,)), trust=TrustRoot()
    ).verified


@pytest.mark.parametrize("payload", [b"", b"{", b"[]", b'{"critical": null}', b'{"critical": {"type": 1}}'])
def test_malformed_payloads_fail(payload: bytes) -> None:
    key = signing_key()
    layer = SignatureLayer(SIMPLE_SIGNING, payload, {SIG: base64.b64encode(key.sign(payload)).decode()})
    result = verify_simple_signing(
        layer, image_digest=DIGEST, policy=SignaturePolicy(keys=(key.public,)), trust=TrustRoot()
    )
    assert not result.verified
    assert result.reason.startswith("payload")


def test_policy_without_signers_is_a_usage_error() -> None:
    with pytest.raises(InvalidArgument, match="at least one trusted key"):
        SignaturePolicy()


# --- Rekor SET (key mode) -------------------------------------------------------------


def _set_layer(rekor: Rekor, **tamper: object) -> tuple[SignatureLayer, SignaturePolicy]:
    key = signing_key()
    layer = signed_layer(key)
    bundle = rekor.bundle(
        payload=layer.payload,
        signature=base64.b64decode(layer.annotations[SIG]),
        signer_pem=key.public.pem(),
        tamper=tamper or None,
    )
    return _annotate(layer, bundle=bundle), SignaturePolicy(keys=(key.public,), require_tlog=True)


def test_valid_set_verifies_and_reports_the_entry() -> None:
    rekor = Rekor.create()
    layer, policy = _set_layer(rekor)
    result = verify_simple_signing(layer, image_digest=DIGEST, policy=policy, trust=rekor.trust())
    assert result.verified, result.reason
    assert result.tlog_index == 42
    assert result.integrated_time == NOW


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"integratedTime": int(NOW.timestamp()) + 1}, "signed entry timestamp does not verify"),
        ({"logIndex": 43}, "signed entry timestamp does not verify"),
        ({"logID": "00" * 32}, "is not a trusted Rekor log"),
        ({"logIndex": "42"}, "Payload.logIndex: expected int"),
        ({"integratedTime": True}, "Payload.integratedTime: expected int"),
    ],
)
def test_tampered_set_payload_fails(tamper: dict[str, object], reason: str) -> None:
    rekor = Rekor.create()
    layer, policy = _set_layer(rekor, **tamper)
    result = verify_simple_signing(layer, image_digest=DIGEST, policy=policy, trust=rekor.trust())
    assert not result.verified
    assert reason in result.reason


def test_set_from_an_untrusted_log_or_outside_the_key_window_fails() -> None:
    rekor = Rekor.create()
    layer, policy = _set_layer(rekor)
    other = verify_simple_signing(layer, image_digest=DIGEST, policy=policy, trust=Rekor.create().trust())
    assert "is not a trusted Rekor log" in other.reason
    retired = TrustRoot(rekor=(rekor.log_key(Validity(end=NOW - timedelta(days=1))),))
    expired = verify_simple_signing(layer, image_digest=DIGEST, policy=policy, trust=retired)
    assert "was not valid at" in expired.reason


def test_missing_or_garbage_set_fails_when_required() -> None:
    rekor = Rekor.create()
    layer, policy = _set_layer(rekor)
    missing = verify_simple_signing(
        _annotate(layer, bundle=None), image_digest=DIGEST, policy=policy, trust=rekor.trust()
    )
    assert "missing: the policy requires a transparency-log entry" in missing.reason
    garbage = verify_simple_signing(
        _annotate(layer, bundle="not json"), image_digest=DIGEST, policy=policy, trust=rekor.trust()
    )
    assert garbage.reason == "rekor bundle: not JSON"
    bad_sig = json.loads(layer.annotations[BUNDLE])
    bad_sig["SignedEntryTimestamp"] = base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode()
    corrupt = verify_simple_signing(
        _annotate(layer, bundle=json.dumps(bad_sig)), image_digest=DIGEST, policy=policy, trust=rekor.trust()
    )
    assert "signed entry timestamp does not verify" in corrupt.reason


def test_set_of_another_signature_is_rejected_by_the_body_check() -> None:
    rekor = Rekor.create()
    key = signing_key()
    first, second = signed_layer(key), signed_layer(key, digest=OTHER_DIGEST)
    bundle = rekor.bundle(
        payload=second.payload,
        signature=base64.b64decode(second.annotations[SIG]),
        signer_pem=key.public.pem(),
    )
    result = verify_simple_signing(
        _annotate(first, bundle=bundle),
        image_digest=DIGEST,
        policy=SignaturePolicy(keys=(key.public,), require_tlog=True),
        trust=rekor.trust(),
    )
    assert result.reason == "rekor entry: recorded payload hash does not match sha256 of the payload"


def test_body_recording_another_signature_or_key_fails() -> None:
    rekor = Rekor.create()
    key, other = signing_key(), signing_key()
    layer = signed_layer(key)
    signature = base64.b64decode(layer.annotations[SIG])
    policy = SignaturePolicy(keys=(key.public,), require_tlog=True)
    wrong_sig = rekor.bundle(
        payload=layer.payload, signature=key.sign(layer.payload), signer_pem=key.public.pem()
    )
    result = verify_simple_signing(
        _annotate(layer, bundle=wrong_sig), image_digest=DIGEST, policy=policy, trust=rekor.trust()
    )
    assert result.reason == "rekor entry: recorded signature differs from the signature"
    wrong_key = rekor.bundle(payload=layer.payload, signature=signature, signer_pem=other.public.pem())
    result = verify_simple_signing(
        _annotate(layer, bundle=wrong_key), image_digest=DIGEST, policy=policy, trust=rekor.trust()
    )
    assert result.reason == "rekor entry: recorded public key or certificate differs from the signer"


# --- certificates ---------------------------------------------------------------------


def _cert_layer(
    leaf_key: ec.EllipticCurvePrivateKey, leaf_pem: str, chain: str = "", digest: str = DIGEST
) -> SignatureLayer:
    from gate.signatures import sign_simple_signing
    from gate.signatures._keys import public_key_from_crypto
    from gate.signatures._sign import SigningKey

    signer = SigningKey(private=leaf_key, public=public_key_from_crypto(leaf_key.public_key()))
    payload, signature = sign_simple_signing("registry.example/team/app", digest, signer)
    annotations = {SIG: signature, CERT: leaf_pem}
    if chain:
        annotations[CHAIN] = chain
    return SignatureLayer(SIMPLE_SIGNING, payload, annotations)


def test_private_pki_chain_and_identity() -> None:
    root = make_ca(key_usage=False)
    intermediate = make_ca("Test Intermediate", issuer=root)
    leaf_key, leaf = make_leaf(intermediate)
    trust = TrustRoot(private_cas=(authority(root),))
    layer = _cert_layer(leaf_key, cert_pem(leaf), chain=cert_pem(intermediate.cert))
    good = SignaturePolicy(identities=(Identity(subject="dev@example.com", issuer="https://issuer.example"),))
    result = verify_simple_signing(layer, image_digest=DIGEST, policy=good, trust=trust, now=NOW)
    assert result.verified, result.reason
    assert (result.signer, result.issuer) == ("dev@example.com", "https://issuer.example")
    wrong = SignaturePolicy(identities=(Identity(subject="someone@example.com"),))
    assert (
        "does not match expected 'someone@example.com'"
        in verify_simple_signing(layer, image_digest=DIGEST, policy=wrong, trust=trust, now=NOW).reason
    )
    no_chain = verify_simple_signing(
        _cert_layer(leaf_key, cert_pem(leaf)), image_digest=DIGEST, policy=good, trust=trust, now=NOW
    )
    assert no_chain.reason.startswith("certificate: private CA: certificate does not chain")


def test_identity_regexps_are_anchored() -> None:
    root = make_ca()
    leaf_key, leaf = make_leaf(root, email="dev@example.com.evil.net")
    trust = TrustRoot(private_cas=(authority(root),))
    layer = _cert_layer(leaf_key, cert_pem(leaf))
    partial = SignaturePolicy(identities=(Identity(subject_regexp=r".*@example\.com"),))
    assert not verify_simple_signing(
        layer, image_digest=DIGEST, policy=partial, trust=trust, now=NOW
    ).verified
    whole = SignaturePolicy(
        identities=(Identity(subject_regexp=r".*@example\.com\..*", issuer_regexp="https://.*"),)
    )
    assert verify_simple_signing(layer, image_digest=DIGEST, policy=whole, trust=trust, now=NOW).verified


def test_issuer_is_read_from_der_extension_else_legacy_raw_extension() -> None:
    root = make_ca()
    trust = TrustRoot(private_cas=(authority(root),))
    policy = SignaturePolicy(
        identities=(Identity(subject="dev@example.com", issuer="https://legacy.example"),)
    )
    legacy_key, legacy = make_leaf(root, oidc_issuer=None, legacy_issuer="https://legacy.example")
    assert verify_simple_signing(
        _cert_layer(legacy_key, cert_pem(legacy)), image_digest=DIGEST, policy=policy, trust=trust, now=NOW
    ).verified
    both_key, both = make_leaf(
        root, oidc_issuer="https://new.example", legacy_issuer="https://legacy.example"
    )
    result = verify_simple_signing(
        _cert_layer(both_key, cert_pem(both)), image_digest=DIGEST, policy=policy, trust=trust, now=NOW
    )
    assert result.reason == (
        "certificate: certificate OIDC issuer 'https://new.example' does not match expected 'https://legacy.example'"
    )


def test_short_lived_certificate_needs_a_set_inside_its_validity() -> None:
    fulcio = make_ca("Fake Fulcio")
    rekor = Rekor.create()
    leaf_key, leaf = make_leaf(fulcio, not_before=NOW - timedelta(minutes=5), lifetime=timedelta(minutes=10))
    layer = _cert_layer(leaf_key, cert_pem(leaf))
    policy = SignaturePolicy(identities=(Identity(subject="dev@example.com"),), require_sct=False)
    trust = TrustRoot(fulcio=(authority(fulcio),), rekor=(rekor.log_key(),))
    signature = base64.b64decode(layer.annotations[SIG])

    def with_set(at: object) -> SignatureLayer:
        pem = cert_pem(leaf).encode()
        return _annotate(
            layer,
            bundle=rekor.bundle(payload=layer.payload, signature=signature, signer_pem=pem, integrated=at),
        )  # type: ignore[arg-type]

    assert verify_simple_signing(with_set(NOW), image_digest=DIGEST, policy=policy, trust=trust).verified
    late = verify_simple_signing(
        with_set(NOW + timedelta(hours=1)), image_digest=DIGEST, policy=policy, trust=trust
    )
    assert late.reason.startswith("certificate: Fulcio: certificate does not chain to a trusted CA at")
    unanchored = verify_simple_signing(layer, image_digest=DIGEST, policy=policy, trust=trust)
    assert (
        unanchored.reason
        == "certificate: Fulcio: no verified signing time (Rekor SET) for a short-lived certificate"
    )


def test_fulcio_chain_requires_an_embedded_sct_by_default() -> None:
    fulcio = make_ca("Fake Fulcio")
    rekor = Rekor.create()
    leaf_key, leaf = make_leaf(fulcio)
    layer = _cert_layer(leaf_key, cert_pem(leaf))
    bundle = rekor.bundle(
        payload=layer.payload,
        signature=base64.b64decode(layer.annotations[SIG]),
        signer_pem=cert_pem(leaf).encode(),
    )
    trust = TrustRoot(fulcio=(authority(fulcio),), rekor=(rekor.log_key(),))
    result = verify_simple_signing(
        _annotate(layer, bundle=bundle),
        image_digest=DIGEST,
        policy=SignaturePolicy(identities=(Identity(subject="dev@example.com"),)),
        trust=trust,
    )
    assert result.reason == "certificate: certificate has no embedded SCT"


def test_swapped_certificate_annotation_fails() -> None:
    root = make_ca()
    key_a, _ = make_leaf(root)
    _, cert_b = make_leaf(root)
    layer = _cert_layer(key_a, cert_pem(cert_b))
    result = verify_simple_signing(
        layer,
        image_digest=DIGEST,
        policy=SignaturePolicy(identities=(Identity(subject="dev@example.com"),)),
        trust=TrustRoot(private_cas=(authority(root),)),
        now=NOW,
    )
    assert result.reason == "signature: signature does not verify under the certificate's key"
    garbage = verify_simple_signing(
        _annotate(layer, cert="this is not a valid certificate"),
        image_digest=DIGEST,
        policy=SignaturePolicy(identities=(Identity(subject="dev@example.com"),)),
        trust=TrustRoot(private_cas=(authority(root),)),
        now=NOW,
    )
    assert garbage.reason == "certificate: not a PEM or DER certificate"


def test_key_signed_verification_is_well_under_a_millisecond_of_cpu() -> None:
    key = signing_key()
    layer, policy = signed_layer(key), SignaturePolicy(keys=(key.public,))
    trust = TrustRoot()
    samples = []
    for _ in range(200):
        start = time.process_time_ns()
        verify_simple_signing(layer, image_digest=DIGEST, policy=policy, trust=trust)
        samples.append(time.process_time_ns() - start)
    samples.sort()
    assert samples[len(samples) // 2] < 1_000_000, f"median {samples[len(samples) // 2] / 1e6:.3f} ms"
