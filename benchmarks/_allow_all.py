"""The allow-all floor of benchmarks/admission.py: the webhook's stack answering "allowed".

uvicorn with the same HTTP protocol (httptools), TLS context shape and bare
ASGI callable as gate's webhook; it parses the AdmissionReview with orjson and
echoes its uid with ``allowed: true``. No policies, no recording: what any
Python webhook on this stack pays per request.

    python benchmarks/_allow_all.py PORT CERT KEY
"""

from __future__ import annotations

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


def main() -> None:
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(cert, key)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
        ssl_context_factory=lambda _config, _default: context,
    )


if __name__ == "__main__":
    main()
