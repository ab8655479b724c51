"""A recorded verification on the wire: each check's log position and times reach the answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from google.protobuf.json_format import MessageToDict

from gate import _convert as cv
from gate import model as m
from gate.v1 import signature_pb2

INTEGRATED = datetime(2025, 6, 12, 12, 2, 19, tzinfo=UTC)
# An offset other than UTC and microseconds: the wire carries the instant, to the microsecond.
GEN_TIME = datetime(2025, 6, 12, 14, 2, 20, 250000, tzinfo=timezone(timedelta(hours=2)))
TREE = "rekor.sigstore.dev - 1193050959916656506"


def _verification(
    signatures: tuple[m.SignatureResult, ...], attestations: tuple[m.AttestationResult, ...] = ()
) -> m.Verification:
    return m.Verification(
        id="5d7c1f0e-0000-4000-8000-000000000001",
        artifact_digest="sha256:" + "ab" * 32,
        verified=True,
        verified_at=datetime(2026, 1, 1, tzinfo=UTC),
        signatures=signatures,
        attestations=attestations,
    )


def test_a_signature_answer_carries_its_log_position_and_both_times() -> None:
    signature = m.SignatureResult(
        verified=True,
        signer="sha256:key",
        tlog_index=771488337,
        integrated_time=INTEGRATED,
        tlog_tree=TREE,
        tlog_tree_index=649584075,
        timestamp=GEN_TIME,
    )
    [answer] = cv.verification_to_proto(_verification((signature,))).signatures
    assert (answer.tlog_index, answer.tlog_tree, answer.tlog_tree_index) == (771488337, TREE, 649584075)
    assert answer.integrated_time.ToDatetime(UTC) == INTEGRATED
    assert answer.timestamp.ToDatetime(UTC) == GEN_TIME
    assert answer.timestamp.nanos == 250_000_000


def test_an_attestation_answer_carries_its_log_position_and_both_times() -> None:
    attestation = m.AttestationResult(
        predicate_type="https://slsa.dev/provenance/v1",
        verified=True,
        signer="dev@example.com",
        tlog_index=4288993,
        integrated_time=INTEGRATED,
        tlog_tree=TREE,
        tlog_tree_index=0,
        timestamp=GEN_TIME,
    )
    [answer] = cv.verification_to_proto(_verification((), (attestation,))).attestations
    assert (answer.predicate_type, answer.signer) == ("https://slsa.dev/provenance/v1", "dev@example.com")
    assert (answer.tlog_index, answer.tlog_tree, answer.tlog_tree_index) == (4288993, TREE, 0)
    assert answer.integrated_time.ToDatetime(UTC) == INTEGRATED
    assert answer.timestamp.ToDatetime(UTC) == GEN_TIME


def test_unknown_times_are_unset_and_unknown_indexes_minus_one() -> None:
    answer = cv.verification_to_proto(
        _verification(
            (m.SignatureResult(verified=False, signer="", error="no signature"),),
            (m.AttestationResult(predicate_type="https://slsa.dev/provenance/v1", verified=False),),
        )
    )
    for check in (answer.signatures[0], answer.attestations[0]):
        assert not check.HasField("integrated_time")
        assert not check.HasField("timestamp")
        assert (check.tlog_tree, check.tlog_tree_index) == ("", -1)
    assert answer.signatures[0].tlog_index == -1
    # Optional: an answer from a server that predates the field does not read as index 0.
    assert not answer.attestations[0].HasField("tlog_index")
    assert "timestamp" not in MessageToDict(answer)["signatures"][0]


def test_the_new_fields_have_their_own_numbers_after_the_old_ones() -> None:
    signature = signature_pb2.SignatureResult.DESCRIPTOR.fields_by_name
    assert {name: signature[name].number for name in signature} == {
        "verified": 1,
        "signer": 2,
        "tlog_index": 3,
        "error": 4,
        "integrated_time": 5,
        "tlog_tree": 6,
        "tlog_tree_index": 7,
        "timestamp": 8,
    }
    attestation = signature_pb2.AttestationResult.DESCRIPTOR.fields_by_name
    assert {name: attestation[name].number for name in attestation} == {
        "predicate_type": 1,
        "verified": 2,
        "signer": 3,
        "error": 4,
        "predicate": 5,
        "tlog_index": 6,
        "integrated_time": 7,
        "tlog_tree": 8,
        "tlog_tree_index": 9,
        "timestamp": 10,
    }
