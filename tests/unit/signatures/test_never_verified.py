"""Property: any change to a signed layer, envelope or SET yields a failure, never an exception."""

from __future__ import annotations

import base64
import dataclasses
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from gate.signatures import (
    Identity,
    SignaturePolicy,
    TrustRoot,
    make_statement,
    sign_dsse,
    verify_attestation,
    verify_simple_signing,
)
from tests.unit.signatures.support import DIGEST, NOW, Rekor, authority, make_ca, signed_layer, signing_key

KEY = signing_key()
REKOR = Rekor.create()
LAYER = signed_layer(KEY)
SIGNATURE = base64.b64decode(LAYER.annotations["dev.cosignproject.cosign/signature"])
BUNDLE = REKOR.bundle(payload=LAYER.payload, signature=SIGNATURE, signer_pem=KEY.public.pem())
SIGNED = dataclasses.replace(LAYER, annotations={**LAYER.annotations, "dev.sigstore.cosign/bundle": BUNDLE})
POLICY = SignaturePolicy(keys=(KEY.public,), require_tlog=True)
TRUST = REKOR.trust()
CA_TRUST = TrustRoot(private_cas=(authority(make_ca()),))
ENVELOPE = sign_dsse(
    make_statement({"app": DIGEST}, "https://example.com/p", {}), "application/vnd.in-toto+json", KEY
)


def _flip(data: bytes, index: int, bit: int) -> bytes:
    changed = bytearray(data)
    changed[index % len(changed)] ^= 1 << bit
    return bytes(changed)


def test_the_unmodified_material_verifies() -> None:
    assert verify_simple_signing(SIGNED, image_digest=DIGEST, policy=POLICY, trust=TRUST).verified
    assert verify_attestation(
        ENVELOPE,
        digest=DIGEST,
        predicate_type=None,
        policy=SignaturePolicy(keys=(KEY.public,)),
        trust=TrustRoot(),
    ).verified


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=7))
def test_any_bit_flip_in_the_payload_fails(index: int, bit: int) -> None:
    layer = dataclasses.replace(SIGNED, payload=_flip(SIGNED.payload, index, bit))
    assert not verify_simple_signing(layer, image_digest=DIGEST, policy=POLICY, trust=TRUST).verified


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=7))
def test_any_bit_flip_in_the_signature_fails(index: int, bit: int) -> None:
    signature = base64.b64encode(_flip(SIGNATURE, index, bit)).decode()
    layer = dataclasses.replace(
        SIGNED, annotations={**SIGNED.annotations, "dev.cosignproject.cosign/signature": signature}
    )
    assert not verify_simple_signing(layer, image_digest=DIGEST, policy=POLICY, trust=TRUST).verified


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=7))
def test_any_bit_flip_in_the_set_bundle_fails(index: int, bit: int) -> None:
    bundle = _flip(BUNDLE.encode(), index, bit).decode("latin-1")
    if _is_json(bundle) and _same_values(json.loads(bundle), json.loads(BUNDLE)):
        # A flip inside insignificant whitespace, or in the unused low bits of a base64 value's
        # last character ("Q==" and "S==" both decode to the same byte), changes no signed byte.
        return
    layer = dataclasses.replace(
        SIGNED, annotations={**SIGNED.annotations, "dev.sigstore.cosign/bundle": bundle}
    )
    assert not verify_simple_signing(layer, image_digest=DIGEST, policy=POLICY, trust=TRUST).verified


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=7))
def test_any_bit_flip_in_the_envelope_fails_or_leaves_it_equivalent(index: int, bit: int) -> None:
    envelope = _flip(ENVELOPE, index, bit)
    result = verify_attestation(
        envelope,
        digest=DIGEST,
        predicate_type=None,
        policy=SignaturePolicy(keys=(KEY.public,)),
        trust=TrustRoot(),
    )
    if result.verified:
        # Only a flip that keeps the decoded envelope identical may still verify: whitespace, an
        # unused "keyid", or the unused low bits of base64's last character before padding
        # (decoders accept them, as Go's standard encoding does; the bytes decoded are the same).
        original, changed = json.loads(ENVELOPE), json.loads(envelope)
        assert base64.b64decode(changed["payload"]) == base64.b64decode(original["payload"])
        assert base64.b64decode(changed["signatures"][0]["sig"]) == base64.b64decode(
            original["signatures"][0]["sig"]
        )


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_as_any_input_never_verify_or_raise(data: bytes) -> None:
    text = data.decode("latin-1")
    for name in ("dev.cosignproject.cosign/signature", "dev.sigstore.cosign/bundle"):
        layer = dataclasses.replace(SIGNED, annotations={**SIGNED.annotations, name: text})
        assert not verify_simple_signing(layer, image_digest=DIGEST, policy=POLICY, trust=TRUST).verified
    keyless = SignaturePolicy(identities=(Identity(subject="dev@example.com"),))
    with_cert = dataclasses.replace(
        SIGNED, annotations={**SIGNED.annotations, "dev.sigstore.cosign/certificate": text}
    )
    assert not verify_simple_signing(
        with_cert, image_digest=DIGEST, policy=keyless, trust=CA_TRUST, now=NOW
    ).verified
    assert not verify_attestation(
        data,
        digest=DIGEST,
        predicate_type=None,
        policy=SignaturePolicy(keys=(KEY.public,)),
        trust=TrustRoot(),
    ).verified


def _same_values(got: object, want: object) -> bool:
    """Equal JSON, base64 strings compared by the bytes they decode to."""
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(_same_values(got[k], want[k]) for k in got)
    if isinstance(got, str) and isinstance(want, str) and got != want:
        try:
            return base64.b64decode(got, validate=True) == base64.b64decode(want, validate=True)
        except ValueError:
            return False
    return got == want


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
