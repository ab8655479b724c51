"""The floor of grpc_floor.py: a bare grpc.aio server that echoes its request bytes.

One generic handler for ``/bench.Echo/Echo`` with identity serializers (no
protobuf, no executor, no interceptors): whatever gate does per RPC on top of
this is gate's own cost. Run as ``python benchmarks/_echo_server.py --port N``;
SIGTERM stops it gracefully. ``--processes M`` serves from M processes on the one
port (SO_REUSEPORT, grpc's default on Linux), as gate's ``grpc.processes`` does:
this process starts M - 1 copies of itself as its children and stops them when
it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys

import grpc

SERVICE = "bench.Echo"
METHOD = "Echo"
FULL_METHOD = f"/{SERVICE}/{METHOD}"


async def _echo(request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


def _handler() -> grpc.GenericRpcHandler:
    # No request_deserializer/response_serializer: grpc hands over and sends raw bytes.
    return grpc.method_handlers_generic_handler(SERVICE, {METHOD: grpc.unary_unary_rpc_method_handler(_echo)})


async def serve(host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_handler(),))
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await server.stop(1.0)


def main() -> None:
    """Parse the listen address and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    copies = [
        subprocess.Popen([sys.executable, __file__, "--host", args.host, "--port", str(args.port)])
        for _ in range(args.processes - 1)
    ]
    try:
        asyncio.run(serve(args.host, args.port))
    finally:
        for copy in copies:
            copy.terminate()
        for copy in copies:
            copy.wait(10)


if __name__ == "__main__":
    main()
