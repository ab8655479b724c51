"""Trust roots: trusted_root.json parsing, closed validity windows, PEM material."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gate.errors import InvalidArgument
from gate.signatures import TrustRoot, Validity

SIGSTORE = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "sigstore"
PRODUCTION = SIGSTORE / "trust" / "production-trusted_root.json"


def test_production_root_has_fulcio_rekor_ct_and_tsa_material() -> None:
    trust = TrustRoot.from_trusted_root_json(PRODUCTION.read_bytes())
    assert len(trust.fulcio) == 2
    assert trust.rekor_key(bytes.fromhex("c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"))
    assert trust.ct_logs
    assert trust.tsas
    assert trust.fulcio[0].validity.end == datetime(2022, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


def test_a_log_key_without_validity_start_makes_the_root_invalid() -> None:
    document = json.loads(PRODUCTION.read_bytes())
    del document["tlogs"][0]["publicKey"]["validFor"]["start"]
    with pytest.raises(InvalidArgument, match=r"^trusted_root: "):
        TrustRoot.from_trusted_root_json(json.dumps(document).encode())


@pytest.mark.parametrize("data", [b"", b"{}", b"[]", b'{"mediaType": "x"}'])
def test_malformed_roots_are_invalid(data: bytes) -> None:
    with pytest.raises(InvalidArgument, match=r"^trusted_root: "):
        TrustRoot.from_trusted_root_json(data)


def test_validity_is_a_closed_interval() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    window = Validity(start, start + timedelta(days=1))
    assert window.contains(start)
    assert window.contains(start + timedelta(days=1))
    assert not window.contains(start - timedelta(microseconds=1))
    assert not window.contains(start + timedelta(days=1, microseconds=1))
    assert Validity(start).contains(start + timedelta(days=10000))


def test_library_root_keeps_tsa_validity_end_inclusive() -> None:
    document = json.loads(PRODUCTION.read_bytes())
    document["timestampAuthorities"][0]["validFor"]["end"] = "2025-06-12T12:02:20Z"
    trust = TrustRoot.from_trusted_root_json(json.dumps(document).encode())
    library = trust.sigstore_trusted_root
    assert library is not None
    end = library.get_timestamp_authorities()[0].validity_period_end
    assert end is not None
    moment = datetime(2025, 6, 12, 12, 2, 20, tzinfo=UTC)
    assert moment < end
    assert not moment + timedelta(microseconds=1) < end
    assert trust.sigstore_trusted_root is library


def test_pem_trust_rejects_garbage_with_the_option_name() -> None:
    with pytest.raises(InvalidArgument, match=r"^ca_roots: not a PEM certificate bundle"):
        TrustRoot.from_pem(ca_roots=b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(InvalidArgument, match=r"^key: "):
        TrustRoot.from_pem(rekor_keys=(b"nope",))


def test_merged_trust_keeps_both_sides() -> None:
    production = TrustRoot.from_trusted_root_json(PRODUCTION.read_bytes())
    rekor_pem = (
        Path(__file__).resolve().parents[4]
        / "shared"
        / "conformance"
        / "cosign"
        / "cases"
        / "ci-key-rekor-set-valid"
        / "rekor.pub"
    ).read_bytes()
    merged = TrustRoot.from_pem(rekor_keys=(rekor_pem,)).merged(production)
    assert len(merged.rekor) == len(production.rekor) + 1
    assert merged.trusted_root_json == production.trusted_root_json


def test_a_changed_trust_root_does_not_share_cached_verifiers() -> None:
    import dataclasses

    trust = TrustRoot.from_trusted_root_json(PRODUCTION.read_bytes())
    assert trust.cached("probe", lambda: "original") == "original"
    changed = dataclasses.replace(trust, ct_logs=())
    assert changed.cached("probe", lambda: "changed") == "changed"
    assert changed.sigstore_trusted_root is not trust.sigstore_trusted_root
