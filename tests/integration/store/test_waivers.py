"""Waiver records on SQLite and PostgreSQL: round trip, listings in force, revocation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gate.errors import Conflict, NotFound
from gate.store import EvidenceStore
from gate.waivers import Waiver, new_waiver

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def make(
    store: EvidenceStore, *, days: int = 14, policy: str = "disallow-host-namespaces", **fields: str
) -> Waiver:
    waiver = new_waiver(
        waiver_id=str(uuid.uuid4()),
        policy=policy,
        rule=fields.get("rule", ""),
        namespace=fields.get("namespace", "delta"),
        image=fields.get("image", ""),
        digest=fields.get("digest", ""),
        owner="alice@example.com",
        reason="migrating the tool\nticket SEC-1",
        expires_at=NOW + timedelta(days=days),
        created_by="alice",
        now=NOW,
    )
    store.add_waiver(waiver)
    return waiver


def test_a_waiver_round_trips_with_every_field(store: EvidenceStore) -> None:
    waiver = make(store, rule="host-*", image="registry.example/*", digest="sha256:" + "a" * 64)
    assert store.get_waiver(waiver.id) == waiver
    assert store.get_waiver(str(uuid.uuid4())) is None


def test_a_duplicate_id_is_a_conflict(store: EvidenceStore) -> None:
    waiver = make(store)
    with pytest.raises(Conflict, match="already exists"):
        store.add_waiver(waiver)


def test_listing_in_force_leaves_out_expired_and_revoked_waivers(store: EvidenceStore) -> None:
    short = make(store, days=1)
    long = make(store, days=30)
    revoked = make(store, days=10)
    store.revoke_waiver(revoked.id, revoked_by="bob", revoked_at=NOW + timedelta(hours=1))
    assert [w.id for w in store.list_waivers()] == [short.id, revoked.id, long.id]
    assert [w.id for w in store.list_waivers(active_at=NOW + timedelta(minutes=30))] == [
        short.id,
        revoked.id,
        long.id,
    ]
    assert [w.id for w in store.list_waivers(active_at=NOW + timedelta(days=2))] == [long.id]
    assert store.list_waivers(active_at=NOW - timedelta(days=1)) == []
    assert [w.id for w in store.list_waivers(policy="other")] == []


def test_revocation_records_who_and_when_and_happens_once(store: EvidenceStore) -> None:
    waiver = make(store)
    at = NOW + timedelta(hours=2)
    revoked = store.revoke_waiver(waiver.id, revoked_by="bob", revoked_at=at)
    assert (revoked.revoked_at, revoked.revoked_by) == (at, "bob")
    assert store.get_waiver(waiver.id) == revoked
    assert not revoked.in_force(at)
    assert revoked.in_force(at - timedelta(seconds=1))
    with pytest.raises(Conflict, match="already revoked"):
        store.revoke_waiver(waiver.id, revoked_by="carol", revoked_at=at)
    with pytest.raises(NotFound):
        store.revoke_waiver(str(uuid.uuid4()), revoked_by="bob", revoked_at=at)
