"""A sealed batch: every record verifies on its own, and any change to a record or its seal is caught."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gate.audit import verify_decision, verify_statement
from gate.decisions import PAYLOAD_TYPE, canonical_json, seal_all, statement_payload
from gate.model import Decision, EnforcementAction, RuleOutcome, RuleResult
from gate.signatures import SigningKey, load_private_key, sign_dsse
from tests.unit.decisions.test_recorder import decision


def _key() -> tuple[SigningKey, bytes]:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return load_private_key(pem), public


class KeySigner:
    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self.calls = 0

    def sign(self, payload: bytes, payload_type: str) -> bytes:
        self.calls += 1
        return sign_dsse(payload, payload_type, self.key)


KEY, PUBLIC = _key()
DENIAL = RuleResult(
    policy="no-secrets",
    rule="deny-secrets",
    outcome=RuleOutcome.FAIL,
    message="the image contains 1 secret",
    remediation="remove the secret",
    action=EnforcementAction.ENFORCE,
    resource="image registry.example/app",
)


@pytest.fixture(scope="module")
def batch() -> list[Decision]:
    signer = KeySigner(KEY)
    made = [dataclasses.replace(decision(n), allowed=False, results=(DENIAL,)) for n in range(5)]
    sealed = seal_all(made, signer)
    assert signer.calls == 1
    return sealed


def _with_seal(record: Decision, **changes: Any) -> Decision:
    document = json.loads(record.signature)
    document.update(changes)
    return dataclasses.replace(record, signature=json.dumps(document).encode())


def test_each_record_of_a_sealed_batch_verifies_alone_and_shows_its_own_statement(
    batch: list[Decision],
) -> None:
    for record in batch:
        check = verify_decision(record, PUBLIC)
        assert check.verified, check.reason
        assert check.signer == KEY.public.fingerprint
        assert check.statement == statement_payload(record)


@pytest.mark.parametrize(
    "change",
    [
        {"allowed": True},
        {"results": ()},
        {"message": "allowed after all"},
        {"caller": "someone-else"},
        {"evidence_ids": ("9a1f1e0e-5555-4555-8555-555555555555",)},
    ],
    ids=lambda change: next(iter(change)),
)
def test_a_record_changed_after_sealing_does_not_verify(
    batch: list[Decision], change: dict[str, Any]
) -> None:
    check = verify_decision(dataclasses.replace(batch[2], **change), PUBLIC)
    assert not check.verified
    assert check.reason.startswith("the stored record differs from what was signed")


def test_a_seal_taken_from_another_record_of_the_batch_does_not_verify(batch: list[Decision]) -> None:
    check = verify_decision(dataclasses.replace(batch[1], signature=batch[3].signature), PUBLIC)
    assert not check.verified
    assert "differs from what was signed" in check.reason


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"index": 3}, "differs from what was signed"),
        ({"treeSize": 6}, "seal.treeSize: got 6, but the signed batch has 5 leaves"),
        ({"proof": ["00" * 32, "11" * 32, "22" * 32]}, "differs from what was signed"),
        ({"proof": []}, "seal.proof: the proof has 0 hashes, fewer than a tree of 5 leaves needs"),
        ({"index": 9}, "seal.proof: leaf index 9 is outside a tree of 5 leaves"),
    ],
)
def test_a_seal_whose_place_in_the_tree_was_changed_does_not_verify(
    batch: list[Decision], changes: dict[str, Any], reason: str
) -> None:
    check = verify_decision(_with_seal(batch[2], **changes), PUBLIC)
    assert not check.verified
    assert reason in check.reason


def test_another_key_does_not_verify_a_seal(batch: list[Decision]) -> None:
    _, stranger = _key()
    check = verify_decision(batch[0], stranger)
    assert not check.verified
    assert check.reason


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (b"not json", "signature: not JSON"),
        (b"[1, 2]", "signature: got a JSON list, expected an object"),
        (b'{"mediaType": "text/plain"}', "seal.mediaType: got 'text/plain', expected application/vnd.gate"),
        (None, "seal.index: got '0', expected a whole number"),
        (b"{}", "seal.mediaType: got None"),
    ],
)
def test_a_malformed_seal_is_refused_with_what_was_wrong(
    batch: list[Decision], signature: bytes | None, reason: str
) -> None:
    record = (
        _with_seal(batch[0], index="0")
        if signature is None
        else dataclasses.replace(batch[0], signature=signature)
    )
    check = verify_decision(record, PUBLIC)
    assert not check.verified
    assert reason in check.reason


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"index": True}, "seal.index: got True, expected a whole number"),
        ({"proof": ["XYZ"]}, "seal.proof: expected a list of SHA-256 hashes in lowercase hex"),
        ({"envelope": "e30="}, "seal.envelope: got str, expected a DSSE envelope object"),
        ({"envelope": {"payloadType": PAYLOAD_TYPE, "payload": "e30=", "signatures": []}}, "envelope"),
    ],
)
def test_a_seal_with_a_wrong_field_says_which(
    batch: list[Decision], changes: dict[str, Any], reason: str
) -> None:
    check = verify_decision(_with_seal(batch[0], **changes), PUBLIC)
    assert not check.verified
    assert reason in check.reason


def test_a_record_signed_alone_before_seals_existed_still_verifies_and_names_what_changed() -> None:
    record = dataclasses.replace(decision(7), request_digest="sha256:" + "ab" * 32)
    old = dataclasses.replace(record, signature=sign_dsse(statement_payload(record), PAYLOAD_TYPE, KEY))
    check = verify_decision(old, PUBLIC)
    assert check.verified, check.reason
    flipped = verify_decision(dataclasses.replace(old, allowed=False), PUBLIC)
    assert not flipped.verified
    assert "allowed" in flipped.reason


def test_a_statement_and_its_seal_verify_without_the_record(batch: list[Decision]) -> None:
    for record in batch:
        statement = statement_payload(record)
        check = verify_statement(statement, record.signature, PUBLIC)
        assert check.verified, check.reason
        assert check.statement == statement
        assert check.signer == KEY.public.fingerprint


def test_a_statement_changed_in_transit_does_not_verify_with_its_seal(batch: list[Decision]) -> None:
    signed = json.loads(statement_payload(batch[1]))
    signed["predicate"]["allowed"] = True
    check = verify_statement(canonical_json(signed), batch[1].signature, PUBLIC)
    assert not check.verified
    assert "differs from what was signed" in check.reason
    other = verify_statement(statement_payload(batch[2]), batch[1].signature, PUBLIC)
    assert not other.verified


def test_an_envelope_from_before_seals_verifies_and_gives_its_own_payload_as_the_statement() -> None:
    record = dataclasses.replace(decision(8), request_digest="sha256:" + "cd" * 32)
    signed = statement_payload(record)
    envelope = sign_dsse(signed, PAYLOAD_TYPE, KEY)
    check = verify_statement(b"whatever the server sent beside it", envelope, PUBLIC)
    assert check.verified, check.reason
    assert check.statement == signed
    _, stranger = _key()
    assert not verify_statement(signed, envelope, stranger).verified


def test_a_bad_key_or_signature_is_a_reason_not_an_exception(batch: list[Decision]) -> None:
    assert verify_statement(b"{}", batch[0].signature, b"not a key").reason.startswith("public key:")
    assert verify_statement(b"{}", b"\xff\xfe", PUBLIC).reason.startswith("signature: not JSON")
    assert verify_statement(b"{}", b'{"payloadType": 1}', PUBLIC).reason
