"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from gate.config import Config, load_config
from gate.server import BoundAddresses, GateServer

ASSETS = Path(__file__).parent / "assets"


@pytest.fixture
def asset() -> Callable[[str], Path]:
    """Path of a file under tests/assets/."""

    def find(name: str) -> Path:
        path = ASSETS / name
        assert path.exists(), f"missing test asset {path}"
        return path

    return find


def loopback_config(data_dir: Path, **env: str) -> Config:
    """A configuration listening on free loopback ports, data under ``data_dir``."""
    environ = {
        "GATE_DATA_DIR": str(data_dir),
        "GATE_GRPC_LISTEN": "127.0.0.1:0",
        "GATE_WEBHOOK_LISTEN": "127.0.0.1:0",
        "GATE_METRICS_LISTEN": "127.0.0.1:0",
        **env,
    }
    return load_config(None, environ)


@dataclass
class RunningGate:
    """A gate served in a background thread of the test process."""

    config: Config
    addresses: BoundAddresses
    channel: grpc.Channel

    def call(self, method: str, request: object, response_class: type) -> object:
        """Invoke a unary RPC and return the response message."""
        stub = self.channel.unary_unary(
            f"/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        return stub(request, timeout=10)


@pytest.fixture
def serve_gate() -> Iterator[Callable[[Config], RunningGate]]:
    """Start gate servers in background threads; stop them at teardown."""
    running: list[tuple[GateServer, threading.Thread, asyncio.AbstractEventLoop, grpc.Channel]] = []

    def start(config: Config) -> RunningGate:
        server = GateServer(config)
        ready = threading.Event()
        box: dict[str, object] = {}
        loop = asyncio.new_event_loop()

        def on_ready(addresses: BoundAddresses) -> None:
            box["addresses"] = addresses
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(server.run(on_ready))
            except BaseException as exc:  # surfaced to the test below
                box["error"] = exc
                ready.set()

        thread = threading.Thread(target=run, name="gate-under-test", daemon=True)
        thread.start()
        assert ready.wait(30), "gate did not start within 30 s"
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        addresses = box["addresses"]
        assert isinstance(addresses, BoundAddresses)
        channel = grpc.insecure_channel(addresses.grpc)
        running.append((server, thread, loop, channel))
        return RunningGate(config, addresses, channel)

    yield start
    for server, thread, loop, channel in running:
        channel.close()
        loop.call_soon_threadsafe(server.request_stop)
        thread.join(30)
        assert not thread.is_alive(), "gate did not stop within 30 s"
