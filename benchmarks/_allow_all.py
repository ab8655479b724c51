"""The allow-all floor of benchmarks/admission.py: the webhook's stack answering "allowed".

uvicorn with the same HTTP protocol (httptools), TLS context shape and bare
ASGI callable as gate's webhook; it parses the AdmissionReview with orjson and
echoes its uid with ``allowed: true``. No policies, no recording: what any
Python webhook on this stack pays per request.

    python benchmarks/_allow_all.py PORT CERT KEY [PROCESSES]
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import sys
from typing import Any

import orjson
import uvicorn


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    review = orjson.loads(b"".join(chunks))
    payload = orjson.dumps(
        {
            "apiVersion": review["apiVersion"],
            "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], "allowed": True},
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class _Server(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        for sock in sockets or ():
            sock.listen(2048)  # asyncio set the queue to the backlog above


def main() -> None:
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    processes = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(cert, key)
    # As gate's webhook.processes: one listening socket that every process accepts on.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    children = []
    for _ in range(processes - 1):
        # Forked before any thread or event loop exists, so a plain fork is safe here.
        pid = os.fork()
        if pid == 0:
            children = []
            break
        children.append(pid)
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
        ssl_context_factory=lambda _config, _default: context,
        # As gate's webhook on a shared socket: one accept per wake-up (gate/server/_run.py).
        backlog=1 if processes > 1 else 2048,
    )
    try:
        _Server(config).run(sockets=[sock])
    finally:
        for pid in children:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)


if __name__ == "__main__":
    main()
