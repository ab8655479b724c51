"""Waiver expiry parsing, state, and the per-replica cache of waivers in force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gate.errors import InvalidArgument
from gate.waivers import Waiver, WaiverCache, new_waiver, parse_duration, parse_expiry

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_expiries_are_dates_times_or_durations() -> None:
    assert parse_expiry("2026-12-31", NOW) == datetime(2026, 12, 31, tzinfo=UTC)
    assert parse_expiry("2026-12-31T18:30:00+01:00", NOW) == datetime(2026, 12, 31, 17, 30, tzinfo=UTC)
    assert parse_expiry("2026-12-31T18:30:00Z", NOW) == datetime(2026, 12, 31, 18, 30, tzinfo=UTC)
    assert parse_expiry("14d", NOW) == NOW + timedelta(days=14)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("2w") == timedelta(weeks=2)


@pytest.mark.parametrize("text", ["tomorrow", "2026-13-01", "2026-12-31T18:30:00", "0d", "14 d", ""])
def test_bad_expiries_name_the_field(text: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse_expiry(text, NOW, "--expires")
    assert raised.value.message.startswith("--expires")


def waiver(**fields: Any) -> Waiver:
    base: dict[str, Any] = {
        "waiver_id": "w1",
        "policy": "p",
        "namespace": "delta",
        "owner": "o",
        "reason": "r",
        "expires_at": NOW + timedelta(days=1),
        "created_by": "a",
        "now": NOW,
    }
    base.update(fields)
    return new_waiver(**base)


def test_state_follows_expiry_and_revocation() -> None:
    made = waiver()
    assert made.state(NOW) == "active"
    assert made.in_force(NOW)
    assert not made.in_force(NOW - timedelta(seconds=1))
    assert made.state(NOW + timedelta(days=1)) == "expired"
    revoked = Waiver(**_fields(made, revoked_at=NOW + timedelta(hours=1)))
    assert revoked.state(NOW + timedelta(hours=1)) == "revoked"
    assert revoked.in_force(NOW + timedelta(minutes=59))


def _fields(made: Waiver, **changes: Any) -> dict[str, Any]:
    values = {name: getattr(made, name) for name in Waiver.__slots__}
    values.update(changes)
    return values


def test_reason_keeps_newlines_but_other_fields_refuse_control_characters() -> None:
    assert waiver(reason="line one\nline two").reason == "line one\nline two"
    with pytest.raises(InvalidArgument, match="owner"):
        waiver(owner="a\tb")


class CountingStore:
    """The waiver reader port, counting reads."""

    def __init__(self, waivers: list[Waiver]) -> None:
        self.waivers = waivers
        self.reads = 0

    def list_waivers(self, *, active_at: datetime | None = None, policy: str = "") -> list[Waiver]:
        self.reads += 1
        return [w for w in self.waivers if active_at is None or w.in_force(active_at)]


def test_the_cache_reads_once_per_ttl_and_checks_expiry_on_every_use() -> None:
    ticks = [0.0]
    store = CountingStore([waiver(expires_at=NOW + timedelta(hours=1))])
    cache = WaiverCache(store, ttl=10.0, monotonic=lambda: ticks[0])
    assert [w.id for w in cache.in_force(NOW)] == ["w1"]
    assert [w.id for w in cache.in_force(NOW)] == ["w1"]
    assert store.reads == 1
    assert cache.in_force(NOW + timedelta(hours=1)) == []
    assert store.reads == 1
    store.waivers = []
    ticks[0] = 10.0
    assert cache.in_force(NOW) == []
    assert store.reads == 2
    store.waivers = [waiver(waiver_id="w2")]
    cache.invalidate()
    assert [w.id for w in cache.in_force(NOW)] == ["w2"]
    assert store.reads == 3
