"""The webhook's rate limit: per client address, under the admission role's bucket (auth.rate_limits)."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gate.config import RateLimit
from gate.core import Gate
from gate.server._ratelimit import RateLimiter
from gate.server._webhook import WebhookApp
from tests.unit.decisions.support import POLICIES, body, review
from tests.unit.decisions.test_webhook_validate import DecisionStore


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def _app(store: DecisionStore, limiter: RateLimiter | None) -> WebhookApp:
    gate = Gate(store, policy_sources=[POLICIES])  # type: ignore[arg-type]
    return WebhookApp(gate, ThreadPoolExecutor(1), limiter=limiter)


async def _posts(
    app: WebhookApp, count: int, client: tuple[str, int] = ("10.0.0.7", 5000)
) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app, client=client)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://gate.test") as http:
        return [await http.post("/validate", content=body(review(uid=f"u{n}"))) for n in range(count)]


def test_a_client_over_the_admission_rate_gets_429_with_retry_after_and_an_audit_entry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    store = DecisionStore()
    app = _app(store, RateLimiter({"admission": RateLimit(rate=0.5, burst=2)}, clock=clock))
    with caplog.at_level(logging.WARNING, logger="gate.audit.auth"):
        answers = asyncio.run(_posts(app, 3))
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["retry-after"] == "2"
    assert "rate" in answers[2].json()["error"]["message"]
    assert len(store.decisions) == 2, "a refused review is neither evaluated nor recorded"
    refusal = next(r for r in caplog.records if r.name == "gate.audit.auth")
    assert refusal.identity == "webhook:10.0.0.7"  # type: ignore[attr-defined]
    assert refusal.status == "RESOURCE_EXHAUSTED"  # type: ignore[attr-defined]
    clock.now += 2
    assert [a.status_code for a in asyncio.run(_posts(app, 1))] == [200]


def test_each_client_address_has_its_own_bucket() -> None:
    app = _app(DecisionStore(), RateLimiter({"admission": RateLimit(rate=0.1, burst=1)}, clock=Clock()))
    first = asyncio.run(_posts(app, 2, ("10.0.0.1", 1)))
    other = asyncio.run(_posts(app, 1, ("10.0.0.2", 1)))
    assert [a.status_code for a in first] == [200, 429]
    assert [a.status_code for a in other] == [200]


def test_without_an_admission_limit_the_webhook_is_not_limited() -> None:
    app = _app(DecisionStore(), None)
    assert {a.status_code for a in asyncio.run(_posts(app, 5))} == {200}
