"""TLS handshakes the webhook listeners perform themselves, so that refusals are audited.

With ``ssl=`` on ``loop.create_server`` asyncio performs the handshake inside its
transport and drops a failed one silently (it logs only in debug mode): an
expired or foreign client certificate would leave no trace. Here the listener
accepts plain TCP, and the protocol runs the handshake with ``loop.start_tls``:
a failure is written to the ``gate.audit.auth`` log with the peer and OpenSSL's
reason, and the HTTP protocol only ever sees connections that completed it.
The cost is one task per connection, not per request (the API server keeps its
connections alive).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gate.server._authz import audit_refusal

# Seconds a client gets to complete the handshake (uvicorn's default is 60).
HANDSHAKE_TIMEOUT = 10.0
# Seconds a closing connection waits to flush its last answer and for the client's close_notify
# (asyncio's default is 30). A client that never sends one (any that stalled until a deadline
# closed it) kept its socket that long after the deadline: 2 s of header timeout held the socket
# 32 s, and a flood of stalled connections held sixteen times the sockets it should have.
SHUTDOWN_TIMEOUT = 5.0


class _Held(asyncio.Protocol):
    """Holds what arrives between the end of the handshake and the HTTP protocol taking over."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.eof = False
        self.lost: tuple[Exception | None] | None = None

    def data_received(self, data: bytes) -> None:
        self.data.append(data)

    def eof_received(self) -> bool | None:
        self.eof = True
        return True  # keep the transport open for the HTTP protocol to decide

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = (exc,)


def tls_accepting(
    base: type[HttpToolsProtocol], context: ssl.SSLContext, listener: str
) -> type[HttpToolsProtocol]:
    """``base`` (uvicorn's HTTP protocol) with the TLS handshake done here, and audited.

    ``context`` is used for every handshake as it is at that moment (certificate
    reloads that update it take effect for new connections).
    """

    class TlsAccepting(base):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            transport.pause_reading()
            self._handshake = self.loop.create_task(_handshake(self, base, transport))

        def connection_lost(self, exc: Exception | None) -> None:
            if getattr(self, "transport", None) is None:
                return  # the handshake never completed: nothing of HTTP's to close
            super().connection_lost(exc)

    async def _handshake(protocol: Any, http: type[HttpToolsProtocol], raw: asyncio.Transport) -> None:
        peer = raw.get_extra_info("peername")
        shown = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)
        held = _Held()
        try:
            tls = await protocol.loop.start_tls(
                raw,
                held,
                context,
                server_side=True,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
                ssl_shutdown_timeout=SHUTDOWN_TIMEOUT,
            )
        except asyncio.CancelledError:
            raw.close()
            raise
        except (ssl.SSLError, OSError, TimeoutError, ConnectionError) as error:
            raw.close()
            audit_refusal(listener, shown, "", "TLS_HANDSHAKE_FAILED", _reason(error))
            return
        if tls is None:  # the peer went away as the handshake ended
            raw.close()
            return
        http.connection_made(protocol, tls)
        tls.set_protocol(protocol)
        for chunk in held.data:
            protocol.data_received(chunk)
        if held.lost is not None:
            protocol.connection_lost(held.lost[0])
        elif held.eof:
            with contextlib.suppress(Exception):
                protocol.eof_received()

    return TlsAccepting


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"client certificate refused: {error.verify_message}"
    if isinstance(error, ssl.SSLError) and error.reason:
        # OpenSSL's reason codes read as words (PEER_DID_NOT_RETURN_A_CERTIFICATE).
        return error.reason.replace("_", " ").lower()
    if isinstance(error, TimeoutError):
        return f"no handshake within {HANDSHAKE_TIMEOUT:g} s"
    return str(error) or type(error).__name__
