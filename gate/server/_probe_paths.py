"""The probe listener's app: the webhook app, limited to the paths callers without a client certificate need.

With ``webhook.client_ca_file`` the webhook listener refuses every client but the API
server; kubelet's probes and Kyverno's ``apiCall`` to the evidence endpoint then connect
to ``webhook.probe_listen`` instead. Admission reviews must never be accepted there
(anyone who reaches the port could otherwise submit them), so every other path is
answered 404 before the webhook app sees the request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from gate.evidence import EVIDENCE_PATH

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

PROBE_PATHS = frozenset({"/healthz", "/readyz", EVIDENCE_PATH})
# A hostile client may send a long path: the 404 quotes only its start.
_QUOTED_PATH = 200


class PathAllowList:
    """An ASGI app that passes requests for ``paths`` to ``app`` and answers 404 to any other."""

    def __init__(self, app: App, paths: frozenset[str] = PROBE_PATHS) -> None:
        self._app = app
        self._paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path in self._paths:
            await self._app(scope, receive, send)
            return
        body = orjson.dumps(
            {"error": {"code": 404, "message": f"not served on the probe listener: {path[:_QUOTED_PATH]}"}}
        )
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
