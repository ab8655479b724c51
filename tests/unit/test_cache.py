"""SharedCache: TTL, size bound, one computation per key under concurrency, failures not cached."""

from __future__ import annotations

import threading

import pytest

from gate._cache import SharedCache
from tests.conftest import ManualClock


def test_a_cached_value_is_served_until_its_ttl_then_recomputed() -> None:
    clock = ManualClock(0.0)
    cache: SharedCache[str, int] = SharedCache(max_entries=4, ttl=10, clock=clock)
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get_or_compute("a", compute) == 1
    clock.now = 9.9
    assert cache.get_or_compute("a", compute) == 1
    clock.now = 10.0
    assert cache.get("a") is None
    assert cache.get_or_compute("a", compute) == 2
    assert cache.stats().hits == 1


def test_the_least_recently_used_entry_goes_first_when_full() -> None:
    cache: SharedCache[str, str] = SharedCache(max_entries=2, ttl=60)
    cache.get_or_compute("a", lambda: "A")
    cache.get_or_compute("b", lambda: "B")
    assert cache.get("a") == "A"  # a is now the most recently used
    cache.get_or_compute("c", lambda: "C")
    assert cache.get("b") is None
    assert cache.get("a") == "A"
    assert cache.stats().size == 2


def test_concurrent_misses_for_one_key_share_a_single_computation() -> None:
    cache: SharedCache[str, str] = SharedCache(max_entries=8, ttl=60)
    started = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    def slow() -> str:
        calls.append(1)
        started.set()
        release.wait(5)
        return "verified"

    results: list[str] = []

    def ask() -> None:
        results.append(cache.get_or_compute("img", slow))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    threads[0].start()
    assert started.wait(5)
    for thread in threads[1:]:
        thread.start()
    # Every follower has registered on the flight before the leader finishes.
    for _ in range(500):
        if cache.stats().shared == 7:
            break
        threading.Event().wait(0.01)
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == ["verified"] * 8
    assert len(calls) == 1
    stats = cache.stats()
    assert (stats.misses, stats.shared) == (1, 7)


def test_a_failure_reaches_the_waiters_and_is_not_cached() -> None:
    cache: SharedCache[str, str] = SharedCache(max_entries=8, ttl=60)

    def broken() -> str:
        raise ConnectionError("registry answered 500")

    with pytest.raises(ConnectionError, match="500"):
        cache.get_or_compute("img", broken)
    assert cache.get("img") is None
    assert cache.get_or_compute("img", lambda: "ok") == "ok"


def test_invalidate_forgets_one_key_or_all() -> None:
    cache: SharedCache[str, int] = SharedCache(max_entries=8, ttl=60)
    cache.get_or_compute("a", lambda: 1)
    cache.get_or_compute("b", lambda: 2)
    cache.invalidate("a")
    assert cache.get("a") is None
    assert cache.get("b") == 2
    cache.invalidate()
    assert cache.stats().size == 0


@pytest.mark.parametrize(("entries", "ttl"), [(0, 1.0), (1, 0.0)])
def test_nonsense_bounds_are_refused(entries: int, ttl: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        SharedCache(max_entries=entries, ttl=ttl)
