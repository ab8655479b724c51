"""Key-based ("managed key") Sigstore bundles with DSSE content, proven by a fake one-entry log."""

from __future__ import annotations

from gate.signatures import SignaturePolicy, TrustRoot, key_hint, make_statement, pae, verify_bundle
from gate.signatures._sign import SigningKey
from tests.unit.signatures.support import (
    DIGEST,
    OTHER_DIGEST,
    Rekor,
    dsse_body_and_envelope,
    key_bundle,
    signing_key,
    trusted_root_json,
)

INTOTO = "application/vnd.in-toto+json"
PREDICATE = "https://example.com/predicate/v1"


def _dsse_bundle(
    rekor: Rekor, key: SigningKey, *, recorded_signer: SigningKey | None = None, digest: str = DIGEST
) -> bytes:
    payload = make_statement({"app": digest}, PREDICATE, {"ok": True})
    signature = key.sign(pae(INTOTO, payload))
    recorded = (recorded_signer or key).public.pem()
    body, content = dsse_body_and_envelope(payload, INTOTO, signature, recorded)
    return key_bundle(rekor, body, content, key_hint(key.public))


def test_key_signed_dsse_bundle_verifies_and_returns_the_predicate() -> None:
    rekor, key = Rekor.create(), signing_key()
    trust = TrustRoot.from_trusted_root_json(trusted_root_json(rekor))
    result = verify_bundle(
        _dsse_bundle(rekor, key),
        policy=SignaturePolicy(keys=(key.public,)),
        trust=trust,
        digest=DIGEST,
        predicate_type=PREDICATE,
    )
    assert result.verified, result.reason
    assert (result.signer, result.predicate, result.tlog_index) == (key.public.fingerprint, {"ok": True}, 0)


def test_log_entry_recording_another_signer_fails() -> None:
    rekor, key = Rekor.create(), signing_key()
    trust = TrustRoot.from_trusted_root_json(trusted_root_json(rekor))
    bundle = _dsse_bundle(rekor, key, recorded_signer=signing_key())
    result = verify_bundle(bundle, policy=SignaturePolicy(keys=(key.public,)), trust=trust, digest=DIGEST)
    assert result.reason == "rekor entry: recorded signatures or verifier differ from the envelope"


def test_untrusted_log_wrong_key_and_wrong_subject_fail() -> None:
    rekor, key = Rekor.create(), signing_key()
    bundle = _dsse_bundle(rekor, key)
    other_log = TrustRoot.from_trusted_root_json(trusted_root_json(Rekor.create()))
    assert not verify_bundle(
        bundle, policy=SignaturePolicy(keys=(key.public,)), trust=other_log, digest=DIGEST
    ).verified
    trust = TrustRoot.from_trusted_root_json(trusted_root_json(rekor))
    stranger = verify_bundle(
        bundle, policy=SignaturePolicy(keys=(signing_key().public,)), trust=trust, digest=DIGEST
    )
    assert stranger.reason == "bundle: 0 trusted key(s) signed the envelope, need 1"
    elsewhere = verify_bundle(
        bundle, policy=SignaturePolicy(keys=(key.public,)), trust=trust, digest=OTHER_DIGEST
    )
    assert elsewhere.reason.startswith("statement.subject: no subject has sha256 digest")


def test_a_tampered_checkpoint_fails() -> None:
    rekor, key = Rekor.create(), signing_key()
    trust = TrustRoot.from_trusted_root_json(trusted_root_json(rekor))
    bundle = _dsse_bundle(rekor, key).replace(b"rekor.test - 1", b"rekor.test - 2")
    result = verify_bundle(bundle, policy=SignaturePolicy(keys=(key.public,)), trust=trust, digest=DIGEST)
    assert not result.verified
    assert "checkpoint" in result.reason
