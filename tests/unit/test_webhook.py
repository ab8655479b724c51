"""The webhook listener's routes, without a socket (ASGI in process)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from gate.core import Gate
from gate.errors import StoreUnavailable
from gate.server._webhook import MAX_BODY, WebhookApp


class PingStore:
    """The one method of the store port the webhook uses so far."""

    def __init__(self, up: bool) -> None:
        self.up = up

    def ping(self) -> None:
        if not self.up:
            raise StoreUnavailable("evidence store unavailable: connection refused")


async def request(up: bool, method: str, path: str, body: bytes = b"") -> httpx.Response:
    app = WebhookApp(Gate(PingStore(up)), ThreadPoolExecutor(1))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://gate.test") as client:
        return await client.request(method, path, content=body)


def run(coro: Any) -> httpx.Response:
    import asyncio

    return asyncio.run(coro)


def test_healthz_answers_ok() -> None:
    response = run(request(True, "GET", "/healthz"))
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize(("up", "status"), [(True, 200), (False, 503)])
def test_readyz_follows_the_store(up: bool, status: int) -> None:
    response = run(request(up, "GET", "/readyz"))
    assert response.status_code == status
    if not up:
        assert response.json()["reason"] == "evidence store unavailable: connection refused"


def test_validate_rejects_other_methods() -> None:
    response = run(request(True, "GET", "/validate"))
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "method: expected POST, got GET"


def test_oversized_bodies_are_refused() -> None:
    response = run(request(True, "POST", "/validate", b"x" * (MAX_BODY + 1)))
    assert response.status_code == 413
    assert "exceeds" in response.json()["error"]["message"]


def test_unknown_paths_are_404() -> None:
    assert run(request(True, "GET", "/mutate")).status_code == 404
