"""Detached blob signatures: key or certificate, artifact bytes or digest only."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from gate.errors import InvalidArgument
from gate.signatures import Identity, SignaturePolicy, SignerEvidence, TrustRoot, verify_blob
from tests.unit.signatures.support import NOW, Rekor, authority, cert_pem, make_ca, make_leaf, signing_key

ARTIFACT = b"release-1.0.tar.gz contents"
DIGEST = "sha256:" + hashlib.sha256(ARTIFACT).hexdigest()


def test_key_signature_verifies_from_bytes_or_digest() -> None:
    key = signing_key()
    signature = key.sign(ARTIFACT)
    policy = SignaturePolicy(keys=(key.public,))
    assert verify_blob(signature, policy=policy, trust=TrustRoot(), artifact=ARTIFACT).verified
    assert verify_blob(signature, policy=policy, trust=TrustRoot(), digest=DIGEST).verified
    assert not verify_blob(signature, policy=policy, trust=TrustRoot(), artifact=ARTIFACT + b"!").verified
    other = "sha256:" + hashlib.sha256(b"other").hexdigest()
    assert not verify_blob(signature, policy=policy, trust=TrustRoot(), digest=other).verified


def test_keyless_blob_needs_a_set_inside_the_certificate_validity() -> None:
    fulcio, rekor = make_ca("Fake Fulcio"), Rekor.create()
    leaf_key, leaf = make_leaf(fulcio, not_before=NOW - timedelta(minutes=5), lifetime=timedelta(minutes=10))
    signature = leaf_key.sign(ARTIFACT, ec.ECDSA(hashes.SHA256()))
    pem = cert_pem(leaf).encode()
    trust = TrustRoot(fulcio=(authority(fulcio),), rekor=(rekor.log_key(),))
    policy = SignaturePolicy(identities=(Identity(subject="dev@example.com"),), require_sct=False)
    with_set = SignerEvidence(
        certificate=pem,
        rekor_bundle=rekor.bundle(payload=ARTIFACT, signature=signature, signer_pem=pem).encode(),
    )
    result = verify_blob(signature, policy=policy, trust=trust, digest=DIGEST, evidence=with_set)
    assert result.verified, result.reason
    assert result.signer == "dev@example.com"
    bare = verify_blob(
        signature, policy=policy, trust=trust, artifact=ARTIFACT, evidence=SignerEvidence(certificate=pem)
    )
    assert (
        bare.reason
        == "certificate: Fulcio: no verified signing time (Rekor SET) for a short-lived certificate"
    )


def test_usage_errors_raise() -> None:
    policy = SignaturePolicy(keys=(signing_key().public,))
    with pytest.raises(InvalidArgument):
        verify_blob(b"sig", policy=policy, trust=TrustRoot())
    with pytest.raises(InvalidArgument):
        verify_blob(b"sig", policy=policy, trust=TrustRoot(), artifact=ARTIFACT, digest=DIGEST)
    with pytest.raises(InvalidArgument):
        verify_blob(b"sig", policy=policy, trust=TrustRoot(), digest="sha512:" + "00" * 64)
