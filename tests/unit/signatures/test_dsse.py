"""DSSE envelopes and in-toto statements: exact PAE, subjects, predicate types, thresholds."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from gate.errors import InvalidArgument
from gate.signatures import (
    SignaturePolicy,
    TrustRoot,
    make_statement,
    pae,
    parse_envelope,
    parse_statement,
    sign_dsse,
    verify_attestation,
    verify_statement,
)
from gate.signatures._sign import SigningKey
from tests.unit.signatures.support import DIGEST, OTHER_DIGEST, signing_key

INTOTO = "application/vnd.in-toto+json"
SLSA = "https://slsa.dev/provenance/v1"
COSIGN = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "cosign" / "cases"


def _statement(
    digest: str = DIGEST, predicate_type: str = SLSA, statement_type: str = "v1", **extra: object
) -> bytes:
    document: dict[str, object] = {
        "_type": f"https://in-toto.io/Statement/{statement_type}",
        "subject": [{"name": "app", "digest": {"sha256": digest.partition(":")[2]}}],
        "predicateType": predicate_type,
        "predicate": {"builder": {"id": "ci"}},
    }
    document.update(extra)
    return json.dumps(document).encode()


def _envelope(payload: bytes, *keys: SigningKey, payload_type: str = INTOTO) -> bytes:
    signatures = [
        {"keyid": "", "sig": base64.b64encode(k.sign(pae(payload_type, payload))).decode()} for k in keys
    ]
    return json.dumps(
        {"payloadType": payload_type, "payload": base64.b64encode(payload).decode(), "signatures": signatures}
    ).encode()


def test_pae_uses_byte_lengths_and_single_spaces() -> None:
    assert pae("a", b"xyz") == b"DSSEv1 1 a 3 xyz"
    assert pae("t\u00e9", "\u00e9".encode()) == b"DSSEv1 3 t\xc3\xa9 2 \xc3\xa9"
    assert pae("", b"") == b"DSSEv1 0  0 "


def test_pae_of_a_real_cosign_attestation_starts_as_cosign_signed_it() -> None:
    envelope = parse_envelope((COSIGN / "cosign-attest-blob-slsa02-valid" / "envelope.json").read_bytes())
    assert envelope.pae().startswith(
        b'DSSEv1 28 application/vnd.in-toto+json 295 {"_type":"https://in-toto.io/Statement/v0.1"'
    )


def test_gate_signed_attestation_verifies_and_returns_the_predicate() -> None:
    key = signing_key()
    statement = make_statement({"app": DIGEST}, SLSA, {"builder": {"id": "ci"}})
    envelope = sign_dsse(statement, INTOTO, key)
    result = verify_attestation(
        envelope,
        digest=DIGEST,
        predicate_type=SLSA,
        policy=SignaturePolicy(keys=(key.public,)),
        trust=TrustRoot(),
    )
    assert result.verified, result.reason
    assert (result.predicate_type, result.predicate) == (SLSA, {"builder": {"id": "ci"}})
    assert result.signer == key.public.fingerprint


@pytest.mark.parametrize("statement_type", ["v0.1", "v1"])
def test_both_statement_versions_are_accepted(statement_type: str) -> None:
    key = signing_key()
    envelope = _envelope(_statement(statement_type=statement_type), key)
    result = verify_attestation(
        envelope,
        digest=DIGEST,
        predicate_type=SLSA,
        policy=SignaturePolicy(keys=(key.public,)),
        trust=TrustRoot(),
    )
    assert result.verified, result.reason


def test_wrong_predicate_type_is_an_exact_string_mismatch() -> None:
    key = signing_key()
    envelope = _envelope(_statement(predicate_type="slsa.dev/provenance/v1"), key)
    result = verify_attestation(
        envelope,
        digest=DIGEST,
        predicate_type=SLSA,
        policy=SignaturePolicy(keys=(key.public,)),
        trust=TrustRoot(),
    )
    assert (
        result.reason
        == "statement.predicateType: got 'slsa.dev/provenance/v1', expected 'https://slsa.dev/provenance/v1'"
    )


def test_subject_must_name_the_digest() -> None:
    key = signing_key()
    envelope = _envelope(_statement(digest=OTHER_DIGEST), key)
    result = verify_attestation(
        envelope,
        digest=DIGEST,
        predicate_type=None,
        policy=SignaturePolicy(keys=(key.public,)),
        trust=TrustRoot(),
    )
    assert result.reason.startswith(f"statement.subject: no subject has sha256 digest {DIGEST[7:]}")


def test_uppercase_or_other_algorithm_subject_digests_do_not_match() -> None:
    upper = _statement(subject=[{"digest": {"sha256": DIGEST[7:].upper()}}])
    other = _statement(subject=[{"digest": {"sha512": DIGEST[7:]}}])
    assert not verify_statement(upper, digest=DIGEST, predicate_type=None).verified
    assert not verify_statement(other, digest=DIGEST, predicate_type=None).verified


def test_null_subjects_and_string_predicates() -> None:
    null_subject = verify_statement(_statement(subject=[None]), digest=DIGEST, predicate_type=None)
    assert null_subject.reason == "statement.subject[0]: expected an object, got None"
    string_predicate = verify_statement(
        _statement(predicate="SPDXVersion: SPDX-2.2"), digest=DIGEST, predicate_type=SLSA
    )
    assert string_predicate.verified
    assert string_predicate.predicate == "SPDXVersion: SPDX-2.2"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "statement: payload is not JSON"),
        (b"[]", "statement: not a JSON object"),
        (b'{"_type": "https://in-toto.io/Statement/v2"}', "statement._type: expected one of"),
        (b'{"_type": "https://in-toto.io/Statement/v1", "subject": []}', "statement.predicateType: missing"),
        (
            b'{"_type": "https://in-toto.io/Statement/v1", "predicateType": "x", "subject": {}}',
            "statement.subject: missing",
        ),
    ],
)
def test_malformed_statements_fail(payload: bytes, reason: str) -> None:
    assert verify_statement(payload, digest=DIGEST, predicate_type=None).reason.startswith(reason)


@pytest.mark.parametrize(
    ("envelope", "reason"),
    [
        (b"", "envelope: not JSON"),
        (
            b'{"payloadType": "x", "payload": "e30=", "signatures": []}',
            "envelope.signatures: missing or empty",
        ),
        (
            b'{"payloadType": "x", "payload": "!!", "signatures": [{"sig": "AA=="}]}',
            "envelope.payload: not valid base64",
        ),
        (b'{"payload": "e30=", "signatures": [{"sig": "AA=="}]}', "envelope.payloadType: missing"),
        (
            b'{"payloadType": "x", "payload": "e30=", "signatures": [null]}',
            "envelope.signatures[0]: not an object",
        ),
    ],
)
def test_malformed_envelopes_fail(envelope: bytes, reason: str) -> None:
    key = signing_key()
    result = verify_attestation(
        envelope,
        digest=DIGEST,
        predicate_type=None,
        policy=SignaturePolicy(keys=(key.public,)),
        trust=TrustRoot(),
    )
    assert result.reason.startswith(reason)


def test_truncated_envelope_and_bad_signatures_fail() -> None:
    key = signing_key()
    envelope = _envelope(_statement(), key)
    policy = SignaturePolicy(keys=(key.public,))
    assert (
        verify_attestation(
            envelope[:-10], digest=DIGEST, predicate_type=None, policy=policy, trust=TrustRoot()
        ).reason
        == "envelope: not JSON"
    )
    document = json.loads(envelope)
    document["signatures"][0]["sig"] = base64.b64encode(b"something\n").decode()
    result = verify_attestation(
        json.dumps(document).encode(), digest=DIGEST, predicate_type=None, policy=policy, trust=TrustRoot()
    )
    assert result.reason.startswith("signature: no trusted key verifies the signature")


def test_signature_over_a_different_pae_fails() -> None:
    key = signing_key()
    payload = _statement()
    # Signed over the raw payload instead of the PAE: a common re-implementation mistake.
    raw = {
        "payloadType": INTOTO,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"sig": base64.b64encode(key.sign(payload)).decode()}],
    }
    result = verify_attestation(
        json.dumps(raw).encode(),
        digest=DIGEST,
        predicate_type=None,
        policy=SignaturePolicy(keys=(key.public,)),
        trust=TrustRoot(),
    )
    assert not result.verified
    other_type = _envelope(payload, key, payload_type="application/json")
    result = verify_attestation(
        other_type,
        digest=DIGEST,
        predicate_type=None,
        policy=SignaturePolicy(keys=(key.public,)),
        trust=TrustRoot(),
    )
    assert (
        result.reason == "envelope.payloadType: got 'application/json', expected application/vnd.in-toto+json"
    )


def test_threshold_counts_distinct_trusted_signers() -> None:
    first, second, outsider = signing_key(), signing_key(), signing_key()
    payload = _statement()
    policy = SignaturePolicy(keys=(first.public, second.public), threshold=2)
    both = verify_attestation(
        _envelope(payload, first, second),
        digest=DIGEST,
        predicate_type=None,
        policy=policy,
        trust=TrustRoot(),
    )
    assert both.verified, both.reason
    one = verify_attestation(
        _envelope(payload, first, outsider),
        digest=DIGEST,
        predicate_type=None,
        policy=policy,
        trust=TrustRoot(),
    )
    assert one.reason == "envelope.signatures: 1 trusted signer(s), the policy requires 2"
    twice = verify_attestation(
        _envelope(payload, first, first), digest=DIGEST, predicate_type=None, policy=policy, trust=TrustRoot()
    )
    assert not twice.verified
    any_one = SignaturePolicy(keys=(first.public, second.public))
    assert verify_attestation(
        _envelope(payload, outsider, second),
        digest=DIGEST,
        predicate_type=None,
        policy=any_one,
        trust=TrustRoot(),
    ).verified


def test_make_statement_needs_subjects_and_digests() -> None:
    with pytest.raises(InvalidArgument, match="at least one subject"):
        make_statement([], SLSA, {})
    with pytest.raises(InvalidArgument, match="digest"):
        make_statement([("app", "sha256:abc")], SLSA, {})
    statement = parse_statement(make_statement([("a", DIGEST), ("b", OTHER_DIGEST)], SLSA, {"x": 1}))
    assert statement.type == "https://in-toto.io/Statement/v1"
    assert statement.subject_digests() == [DIGEST[7:], OTHER_DIGEST[7:]]
