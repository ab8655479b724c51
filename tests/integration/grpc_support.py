"""gate's gRPC API served in process: grpc.aio on a loopback port, in a thread of its own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import grpc

from gate.server._grpc import GrpcApi


class ThreadedGrpc:
    """A grpc.aio server with ``make_api()``'s handlers, running until :meth:`stop`.

    ``make_api`` is called on the server's event loop (the API binds to the loop it starts on).
    """

    def __init__(self, make_api: Callable[[], GrpcApi]) -> None:
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        ready = threading.Event()
        box: dict[str, int] = {}

        async def main() -> None:
            server = grpc.aio.server()
            server.add_generic_rpc_handlers(make_api().handlers())
            box["port"] = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            ready.set()
            await self._stop.wait()
            await server.stop(0)

        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(main(),), daemon=True)
        self._thread.start()
        assert ready.wait(10), "the in-process gRPC server did not start within 10 s"
        self.port = box["port"]

    def stop(self) -> None:
        """Stop the server and wait for its thread."""
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive()
