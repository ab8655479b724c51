"""`gate serve` as a process: start, SERVING, JSON logs, SIGTERM, port clashes, parallel starts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

GATE = str(Path(sys.executable).parent / "gate")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(data_dir: Path, grpc_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATE_")}
    env.update(
        GATE_DATA_DIR=str(data_dir),
        GATE_GRPC_LISTEN=f"127.0.0.1:{grpc_port}",
        GATE_WEBHOOK_LISTEN=f"127.0.0.1:{free_port()}",
        GATE_METRICS_LISTEN=f"127.0.0.1:{free_port()}",
    )
    return env


def wait_serving(port: int, process: subprocess.Popen[str], timeout: float = 30) -> float:
    started = time.monotonic()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() - started < timeout:
            assert process.poll() is None, f"gate exited early: {process.communicate()[1]}"
            try:
                if (
                    stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5).status
                    == health_pb2.HealthCheckResponse.SERVING
                ):
                    return time.monotonic() - started
            except grpc.RpcError:
                time.sleep(0.02)
    raise AssertionError("gate did not report SERVING")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def spawn(processes: list[subprocess.Popen[str]], env: dict[str, str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [GATE, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    processes.append(process)
    return process


def test_serve_reports_serving_logs_json_and_stops_cleanly_on_sigterm(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    process = spawn(processes, environment(tmp_path, port))
    wait_serving(port, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    records = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    messages = [record["message"] for record in records]
    assert "gate serving" in messages
    assert messages[-1] == "gate stopped"
    serving = next(record for record in records if record["message"] == "gate serving")
    assert serving["grpc"] == f"127.0.0.1:{port}"
    assert serving["database"].startswith("sqlite:///")
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)


def test_a_taken_port_stops_serve_with_a_clear_message(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        process = spawn(processes, environment(tmp_path, port))
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 3
    assert f"gate: unavailable: grpc: cannot listen on 127.0.0.1:{port}" in stderr
    assert "Traceback" not in stderr


def test_two_servers_starting_at_once_share_a_fresh_database(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    ports = [free_port(), free_port()]
    started = [spawn(processes, environment(tmp_path, port)) for port in ports]
    for port, process in zip(ports, started, strict=True):
        wait_serving(port, process)
    for process in started:
        process.send_signal(signal.SIGTERM)
    for process in started:
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
