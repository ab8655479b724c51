"""Token buckets per identity: bursts, refusals with the wait, refill, and which role's bucket applies."""

from __future__ import annotations

import pytest

from gate.auth import Identity
from gate.config import RateLimit
from gate.errors import ResourceExhausted
from gate.server._ratelimit import RateLimiter


class Clock:
    """Monotonic seconds that only move when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


PIPELINE = Identity.of("token:ci-payments", ["pipeline"], ["payments"])


def test_a_burst_passes_then_the_next_request_is_refused_with_the_wait() -> None:
    clock = Clock()
    limiter = RateLimiter({"pipeline": RateLimit(rate=2, burst=3)}, clock)
    for _ in range(3):
        limiter.take(PIPELINE)
    with pytest.raises(
        ResourceExhausted, match=r"token:ci-payments is over its rate limit of 2 requests/s"
    ) as err:
        limiter.take(PIPELINE)
    assert err.value.retry_after == pytest.approx(0.5)
    clock.now += 0.5
    limiter.take(PIPELINE)


def test_the_bucket_refills_at_the_rate_and_never_beyond_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter({"pipeline": RateLimit(rate=1, burst=2)}, clock)
    limiter.take(PIPELINE)
    limiter.take(PIPELINE)
    clock.now += 3600
    limiter.take(PIPELINE)
    limiter.take(PIPELINE)
    with pytest.raises(ResourceExhausted):
        limiter.take(PIPELINE)


def test_identities_have_buckets_of_their_own() -> None:
    clock = Clock()
    limiter = RateLimiter({"pipeline": RateLimit(rate=1, burst=1)}, clock)
    other = Identity.of("token:ci-billing", ["pipeline"], ["billing"])
    limiter.take(PIPELINE)
    limiter.take(other)
    with pytest.raises(ResourceExhausted):
        limiter.take(PIPELINE)


def test_an_identity_gets_the_most_generous_bucket_of_its_roles() -> None:
    clock = Clock()
    limiter = RateLimiter(
        {"pipeline": RateLimit(rate=1, burst=1), "auditor": RateLimit(rate=5, burst=4)}, clock
    )
    both = Identity.of("token:both", ["pipeline", "auditor"])
    for _ in range(4):
        limiter.take(both)
    with pytest.raises(ResourceExhausted) as err:
        limiter.take(both)
    assert err.value.retry_after == pytest.approx(0.2)


def test_a_role_without_a_limit_is_not_limited() -> None:
    clock = Clock()
    limiter = RateLimiter({"pipeline": RateLimit(rate=1, burst=1)}, clock)
    admin = Identity.of("token:admin", ["admin"])
    mixed = Identity.of("token:mixed", ["pipeline", "admin"])
    for _ in range(1000):
        limiter.take(admin)
        limiter.take(mixed)


def test_refilled_buckets_are_forgotten_and_start_full_again() -> None:
    clock = Clock()
    limiter = RateLimiter({"pipeline": RateLimit(rate=1000, burst=1)}, clock)
    for n in range(3000):
        limiter.take(Identity.of(f"token:caller-{n}", ["pipeline"]))
        clock.now += 0.01
    assert len(limiter._buckets) < 1100
