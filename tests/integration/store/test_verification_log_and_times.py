"""Stored verifications keep each check's log position and times, on SQLite and PostgreSQL.

The checks' JSON objects gained keys (``integrated_time``, ``tlog_tree``,
``tlog_tree_index``, ``timestamp`` and, for attestations, ``tlog_index``); records written
before have none of them and still read back, with those values unknown.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from gate.errors import InvalidArgument
from gate.model import AttestationResult, SignatureResult, Verification
from gate.store import EvidenceStore
from gate.store._engine import create_store_engine, parse_store_url
from gate.store._schema import verifications

UTC_PLUS_2 = timezone(timedelta(hours=2))
VERIFIED_AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
INTEGRATED = datetime(2025, 12, 18, 17, 4, 38, tzinfo=UTC)
GEN_TIME = datetime(2025, 12, 18, 19, 4, 39, 123456, tzinfo=UTC_PLUS_2)
TREE = "rekor.sigstore.dev - 1193050959916656506"
SLSA = "https://slsa.dev/provenance/v1"
_ids = itertools.count()


def _digest() -> str:
    return f"sha256:{next(_ids):064x}"


def _verification(**changes: object) -> Verification:
    values: dict[str, object] = {
        "id": f"verification-{next(_ids)}",
        "artifact_digest": _digest(),
        "verified": True,
        "verified_at": VERIFIED_AT,
        "signatures": (
            SignatureResult(
                verified=True,
                signer="sha256:key",
                tlog_index=771488337,
                integrated_time=INTEGRATED,
                tlog_tree=TREE,
                tlog_tree_index=649584075,
                timestamp=GEN_TIME,
            ),
            SignatureResult(verified=True, signer="dev@example.com", tlog_tree=TREE, tlog_tree_index=12),
            SignatureResult(verified=False, signer="", error="no trusted key verifies the signature"),
        ),
        "attestations": (
            AttestationResult(
                predicate_type=SLSA,
                verified=True,
                signer="dev@example.com",
                tlog_index=4288993,
                integrated_time=INTEGRATED,
                tlog_tree="localhost:8000 - 124190645164477",
                tlog_tree_index=0,
                timestamp=GEN_TIME,
            ),
            AttestationResult(predicate_type=SLSA, verified=False, error="subject mismatch"),
        ),
    }
    values.update(changes)
    return Verification(**values)  # type: ignore[arg-type]


def test_each_checks_log_position_and_times_read_back_as_written(store: EvidenceStore) -> None:
    verification = _verification()
    store.add_verification(verification)
    for got in (
        store.get_verification(verification.id),
        store.latest_verification(verification.artifact_digest),
    ):
        assert got == verification
        assert got is not None
        assert got.signatures[0].timestamp == GEN_TIME
        assert got.signatures[0].timestamp.utcoffset() == timedelta(0)  # type: ignore[union-attr]
        assert got.signatures[0].timestamp.microsecond == 123456  # type: ignore[union-attr]
        assert got.signatures[0].integrated_time == INTEGRATED
        assert (got.signatures[0].tlog_tree, got.signatures[0].tlog_tree_index) == (TREE, 649584075)
        assert got.attestations[0] == verification.attestations[0]
        assert got.attestations[1].tlog_index == -1


def test_the_row_keeps_times_as_utc_iso_8601_text(store: EvidenceStore, store_url: str) -> None:
    verification = _verification()
    store.add_verification(verification)
    engine = create_store_engine(parse_store_url(store_url))
    try:
        with engine.begin() as conn:
            row = conn.execute(
                sa.select(verifications.c.signatures, verifications.c.attestations).where(
                    verifications.c.id == verification.id
                )
            ).one()
    finally:
        engine.dispose()
    assert row.signatures[0] == {
        "verified": True,
        "signer": "sha256:key",
        "tlog_index": 771488337,
        "error": "",
        "integrated_time": "2025-12-18T17:04:38+00:00",
        "tlog_tree": TREE,
        "tlog_tree_index": 649584075,
        "timestamp": "2025-12-18T17:04:39.123456+00:00",
    }
    assert row.signatures[2]["integrated_time"] is None
    assert row.signatures[2]["timestamp"] is None
    assert row.attestations[1]["tlog_index"] == -1


def test_a_verification_stored_before_these_fields_reads_back_with_them_unknown(
    store: EvidenceStore, store_url: str
) -> None:
    record_id, digest = f"verification-{next(_ids)}", _digest()
    engine = create_store_engine(parse_store_url(store_url))
    try:
        with engine.begin() as conn:
            # Exactly what add_verification wrote before: no log tree, no times, no attestation index.
            conn.execute(
                sa.insert(verifications).values(
                    id=record_id,
                    artifact_digest=digest,
                    verified=True,
                    verified_at=VERIFIED_AT,
                    signatures=[
                        {"verified": True, "signer": "sha256:key", "tlog_index": 42, "error": ""},
                        {"verified": False, "signer": "", "tlog_index": -1, "error": "bad"},
                    ],
                    attestations=[
                        {"predicate_type": SLSA, "verified": True, "signer": "sha256:key", "error": ""}
                    ],
                    message="",
                )
            )
    finally:
        engine.dispose()
    expected = Verification(
        id=record_id,
        artifact_digest=digest,
        verified=True,
        verified_at=VERIFIED_AT,
        signatures=(
            SignatureResult(verified=True, signer="sha256:key", tlog_index=42),
            SignatureResult(verified=False, signer="", error="bad"),
        ),
        attestations=(AttestationResult(predicate_type=SLSA, verified=True, signer="sha256:key"),),
    )
    got = store.get_verification(record_id)
    assert got == expected
    assert store.latest_verification(digest) == expected
    assert got is not None
    old = got.signatures[0]
    assert (old.integrated_time, old.tlog_tree, old.tlog_tree_index, old.timestamp) == (None, "", -1, None)
    assert (got.attestations[0].tlog_index, got.attestations[0].timestamp) == (-1, None)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {
                "signatures": (
                    SignatureResult(True, "k"),
                    SignatureResult(True, "k", timestamp=datetime(2025, 1, 1)),
                ),
            },
            "signatures[1].timestamp",
        ),
        (
            {"attestations": (AttestationResult(SLSA, True, integrated_time=datetime(2025, 1, 1)),)},
            "attestations[0].integrated_time",
        ),
    ],
    ids=["signature-timestamp", "attestation-integrated-time"],
)
def test_a_naive_time_is_refused_with_its_field_and_nothing_is_written(
    store: EvidenceStore, changes: dict[str, object], field: str
) -> None:
    verification = _verification(**changes)
    with pytest.raises(InvalidArgument) as caught:
        store.add_verification(verification)
    assert caught.value.field == field
    assert store.get_verification(verification.id) is None
