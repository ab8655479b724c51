"""The floor of grpc_floor.py: a bare grpc.aio server that echoes its request bytes.

One generic handler for ``/bench.Echo/Echo`` with identity serializers (no
protobuf, no executor, no interceptors): whatever gate does per RPC on top of
this is gate's own cost. Run as ``python benchmarks/_echo_server.py --port N``;
SIGTERM stops it gracefully.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

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
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
