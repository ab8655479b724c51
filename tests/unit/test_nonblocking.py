"""Inside nonblocking(), the ports answer from memory or raise WouldBlock before waiting on anything."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from gate._cache import SharedCache
from gate._nonblocking import WouldBlock, may_block, nonblocking
from gate.decisions import AcknowledgedRecorder, DecisionRecorder, deferred_acknowledgements
from gate.model import Decision
from gate.waivers import WaiverCache
from tests.unit.test_waivers import NOW, CountingStore, waiver


def _decision(number: int) -> Decision:
    return Decision(id=f"d{number}", allowed=True, message="", stage="deploy", decided_at=NOW)


class _StuckSink:
    """A decision sink whose transaction does not end until released (a stalled database)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.stored: list[str] = []

    def add_decisions(self, batch: Sequence[Decision]) -> None:
        self.entered.set()
        self.release.wait(10)
        self.stored.extend(d.id for d in batch)


def test_may_block_raises_only_inside_a_nonblocking_block() -> None:
    may_block("a store")
    with nonblocking(), pytest.raises(WouldBlock, match="a store is not in memory"):
        may_block("a store")
    may_block("a store")


def test_a_cache_miss_computes_nothing_inside_a_nonblocking_block_and_a_hit_is_served() -> None:
    cache: SharedCache[str, int] = SharedCache(max_entries=4, ttl=60)
    computed: list[str] = []
    with nonblocking(), pytest.raises(WouldBlock):
        cache.get_or_compute("a", lambda: computed.append("a") or 1)
    assert computed == []
    assert cache.get_or_compute("a", lambda: 2) == 2
    with nonblocking():
        assert cache.get_or_compute("a", lambda: 3) == 2


def test_stale_waivers_are_not_read_inside_a_nonblocking_block() -> None:
    ticks = [0.0]
    store = CountingStore([waiver()])
    cache = WaiverCache(store, ttl=10.0, monotonic=lambda: ticks[0])
    with nonblocking(), pytest.raises(WouldBlock):
        cache.in_force(NOW)
    assert store.reads == 0
    assert [w.id for w in cache.in_force(NOW)] == ["w1"]
    with nonblocking():
        assert [w.id for w in cache.in_force(NOW)] == ["w1"]
    ticks[0] = 10.0
    with nonblocking(), pytest.raises(WouldBlock):
        cache.in_force(NOW)
    assert store.reads == 1


def test_a_full_decision_queue_refuses_at_once_and_queues_nothing() -> None:
    sink = _StuckSink()
    recorder = DecisionRecorder(sink, capacity=1, linger=0, put_timeout=5.0)
    try:
        recorder.record(_decision(1))
        assert sink.entered.wait(5)  # the writer holds d1 in its transaction
        recorder.record(_decision(2))  # fills the queue
        began = time.monotonic()
        with nonblocking(), pytest.raises(WouldBlock, match="decision queue"):
            recorder.record(_decision(3))
        assert time.monotonic() - began < 1.0  # not the 5 s a blocking caller would wait
        assert recorder.synchronous == 0
    finally:
        sink.release.set()
        recorder.close()
    assert sink.stored == ["d1", "d2"]


def test_a_refused_decision_is_not_awaited_by_its_caller() -> None:
    sink = _StuckSink()
    recorder = AcknowledgedRecorder(sink, timeout=5.0, capacity=1)

    async def refused() -> int:
        with deferred_acknowledgements(asyncio.get_running_loop()) as stored:
            recorder.record(_decision(1))
            assert sink.entered.wait(5)  # the writer holds d1 in its transaction
            recorder.record(_decision(2))  # fills the queue
            with nonblocking(), pytest.raises(WouldBlock):
                recorder.record(_decision(0))
            return stored.pending

    try:
        assert asyncio.run(refused()) == 2  # d1 and d2: the refused d0 is not expected
    finally:
        sink.release.set()
        recorder.close()
    assert "d0" not in sink.stored
