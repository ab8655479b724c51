"""The admission webhook listener (ASGI).

A bare ASGI callable rather than a framework: the admission path is latency
critical and a framework's routing adds measurable cost per request for three
fixed paths. Until the decisions feature lands, ``/validate`` answers 501 so
that the API server applies its failurePolicy instead of getting a made-up
verdict.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import Executor
from typing import Any

from gate.core import Gate
from gate.errors import GateError, InvalidArgument, Unsupported
from gate.server._metrics import HTTP_REQUESTS, STORE_UP
from gate.server._status import HTTP_STATUS, status_for

log = logging.getLogger("gate.webhook")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# An AdmissionReview is a few KB; a large object with annotations may reach
# the API server's own 3 MiB request limit.
MAX_BODY = 4 * 1024 * 1024


class WebhookApp:
    """Routes ``/healthz``, ``/readyz`` and ``/validate``."""

    def __init__(self, gate: Gate, executor: Executor) -> None:
        self._gate = gate
        self._executor = executor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        status: int
        body: dict[str, Any]
        try:
            if path == "/healthz":
                status, body = 200, {"status": "ok"}
            elif path == "/readyz":
                status, body = await self._ready()
            elif path.rstrip("/") == "/validate":
                await _read_body(receive)
                if scope["method"] != "POST":
                    raise InvalidArgument("method", f"expected POST, got {scope['method']}")
                raise Unsupported("POST /validate", "admission decisions arrive with the decisions feature")
            else:
                status, body = 404, {"error": {"code": 404, "message": f"no such path: {path}"}}
        except GateError as error:
            status = status_for(HTTP_STATUS, error)
            body = {"error": {"code": status, "message": error.message}}
        except Exception:
            log.exception("webhook request to %s failed unexpectedly", path)
            status, body = (
                500,
                {"error": {"code": 500, "message": "internal error; the gate log has details"}},
            )
        HTTP_REQUESTS.labels(path if path in _KNOWN else "other", str(status)).inc()
        await _respond(send, status, body)

    async def _ready(self) -> tuple[int, dict[str, Any]]:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._gate.check_ready)
        except GateError as error:
            STORE_UP.set(0)
            return 503, {"status": "unavailable", "reason": error.message}
        STORE_UP.set(1)
        return 200, {"status": "ready"}


_KNOWN = frozenset({"/healthz", "/readyz", "/validate"})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise InvalidArgument("body", f"{size}+ bytes exceeds the {MAX_BODY}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
