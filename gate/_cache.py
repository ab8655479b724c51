"""A bounded, time-limited cache whose concurrent misses share one computation.

Verification results and admission evidence are read far more often than they
change: Kyverno was seen verifying one image eight times in a single admission.
Callers on gate's worker threads ask :meth:`SharedCache.get_or_compute`; the
first caller for a key computes, the others wait for its answer instead of
starting their own registry fetches.

Failures are shared with the callers that waited for them but never cached:
the next caller after a failure tries again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from gate._nonblocking import may_block

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class _Flight(Generic[V]):
    """A computation in progress: its waiters block on ``done``."""

    done: threading.Event = field(default_factory=threading.Event)
    value: V | None = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since the cache was created."""

    hits: int
    misses: int
    shared: int
    size: int


class SharedCache(Generic[K, V]):
    """LRU entries with a time to live; concurrent misses for one key compute once.

    Args:
        max_entries: entries kept; the least recently used goes first.
        ttl: seconds an entry is served after it was computed.
        clock: monotonic seconds (a parameter so tests can move time).
    """

    def __init__(self, *, max_entries: int, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        if ttl <= 0:
            raise ValueError(f"ttl must be positive, got {ttl}")
        self._max = max_entries
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._flights: dict[K, _Flight[V]] = {}
        self._hits = 0
        self._misses = 0
        self._shared = 0

    def get(self, key: K) -> V | None:
        """The fresh cached value for ``key``, or None."""
        with self._lock:
            return self._fresh(key)

    def get_or_compute(self, key: K, compute: Callable[[], V]) -> V:
        """The cached value, or ``compute()``'s, computed once however many threads ask at once.

        An exception from ``compute`` reaches every caller that waited for it and is not cached.
        """
        with self._lock:
            value = self._fresh(key)
            if value is not None:
                return value
            # Computing or waiting for another thread's computation: neither on an event loop.
            may_block("a cached value")
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
                self._misses += 1
            else:
                self._shared += 1
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.value is not None
            return flight.value
        try:
            result = compute()
        except BaseException as error:
            flight.error = error
            raise
        else:
            flight.value = result
            with self._lock:
                self._store(key, result)
            return result
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def put(self, key: K, value: V) -> None:
        """Store ``value`` for ``key`` (a value computed outside :meth:`get_or_compute`)."""
        with self._lock:
            self._store(key, value)

    def invalidate(self, key: K | None = None) -> None:
        """Forget ``key``, or every entry when None (a trust policy or policy bundle changed)."""
        with self._lock:
            if key is None:
                self._entries.clear()
            else:
                self._entries.pop(key, None)

    def stats(self) -> CacheStats:
        """Hit, miss and shared-flight counters, and the current size."""
        with self._lock:
            return CacheStats(self._hits, self._misses, self._shared, len(self._entries))

    def _store(self, key: K, value: V) -> None:
        self._entries[key] = (self._clock() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def _fresh(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        self._hits += 1
        return value
