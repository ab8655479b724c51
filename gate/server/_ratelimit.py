"""Per-identity request rates: one token bucket per authenticated caller.

Each role may have a bucket size and refill rate (``auth.rate_limits``); an
identity gets the most generous bucket among its roles, and an identity with a
role that is not limited is not limited at all. Buckets are created on a
caller's first request and dropped once they have refilled, so the table stays
as small as the set of recently active callers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gate.auth import Identity
from gate.config import RateLimit, Role
from gate.errors import ResourceExhausted

# Every this many requests, buckets that have refilled completely are forgotten (a new one
# starts full, so forgetting them changes nothing).
_SWEEP_EVERY = 1024


@dataclass(slots=True)
class _Bucket:
    rate: float
    burst: float
    tokens: float
    updated: float


class RateLimiter:
    """Refuses a caller's request when its bucket is empty.

    Args:
        limits: role -> bucket; roles not listed are unlimited.
        clock: monotonic seconds (a fake one in tests).
    """

    def __init__(self, limits: Mapping[Role, RateLimit], clock: Callable[[], float] = time.monotonic) -> None:
        self._limits: dict[str, RateLimit] = {str(role): limit for role, limit in limits.items()}
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._takes = 0

    def _limit_for(self, identity: Identity) -> RateLimit | None:
        limits = []
        for role in identity.roles:
            limit = self._limits.get(role)
            if limit is None:
                return None
            limits.append(limit)
        if not limits:
            return None
        return max(limits, key=lambda limit: (limit.rate, limit.burst))

    def take(self, identity: Identity) -> None:
        """Spend one token of ``identity``'s bucket.

        Raises:
            ResourceExhausted: the bucket is empty; ``retry_after`` is when the next token comes.
        """
        limit = self._limit_for(identity)
        if limit is None:
            return
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(identity.name)
            if bucket is None or bucket.rate != limit.rate or bucket.burst != limit.burst:
                bucket = self._buckets[identity.name] = _Bucket(limit.rate, limit.burst, limit.burst, now)
            else:
                bucket.tokens = min(bucket.burst, bucket.tokens + (now - bucket.updated) * bucket.rate)
                bucket.updated = now
            self._takes += 1
            if self._takes % _SWEEP_EVERY == 0:
                self._sweep(now)
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return
            wait = (1 - bucket.tokens) / bucket.rate
        raise ResourceExhausted(
            f"{identity.name} is over its rate limit of {limit.rate:g} requests/s "
            f"(bursts of {limit.burst}); retry in {wait:.3f} s",
            retry_after=wait,
        )

    def _sweep(self, now: float) -> None:
        idle = [
            name
            for name, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * bucket.rate >= bucket.burst
        ]
        for name in idle:
            del self._buckets[name]
