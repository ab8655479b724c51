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


def spawn(
    processes: list[subprocess.Popen[str]], env: dict[str, str], *, own_group: bool = False
) -> subprocess.Popen[str]:
    """``gate serve``; ``own_group``: in a process group of its own, as a terminal gives it."""
    process = subprocess.Popen(
        [GATE, "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=own_group,
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
    # decisions.writer auto on a SQLite file: the event loop commits what it decides.
    assert serving["decision_writer"] == "event loop"
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


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited: it only waits for its parent to collect it.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("stop", ["SIGTERM to gate", "Ctrl-C to the process group"])
def test_serve_with_webhook_workers_stops_them_all_and_leaves_no_process_behind(
    tmp_path: Path, processes: list[subprocess.Popen[str]], stop: str
) -> None:
    port = free_port()
    env = environment(tmp_path, port)
    env["GATE_WEBHOOK_PROCESSES"] = "3"
    process = spawn(processes, env, own_group=True)
    wait_serving(port, process)
    descendants = _children(process.pid)
    spawned = [pid for pid in descendants if "multiprocessing.spawn" in _cmdline(pid)]
    assert len(spawned) == 2, [_cmdline(pid) for pid in descendants]
    if stop == "SIGTERM to gate":
        process.send_signal(signal.SIGTERM)
    else:
        os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    records = [json.loads(line) for line in stderr.splitlines() if line.strip().startswith("{")]
    stopped = sorted(
        str(record.get("worker", "main")) for record in records if record["message"] == "gate stopped"
    )
    assert stopped == ["1", "2", "main"], stderr
    assert not [r for r in records if r["level"] in ("error", "critical")], stderr
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in descendants):
        assert time.monotonic() < deadline, "a child of gate outlived it"
        time.sleep(0.1)


def _cmdline(pid: int) -> str:
    path = Path(f"/proc/{pid}/cmdline")
    return path.read_bytes().replace(b"\0", b" ").decode(errors="replace") if path.exists() else ""


def _descendants(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        found += [child, *_descendants(child)]
    return found


def test_each_serving_process_records_through_its_writer_process_and_ctrl_c_stops_them_all(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    env = environment(tmp_path / "data", port)
    env.update(GATE_WEBHOOK_PROCESSES="2", GATE_DECISIONS_WRITER="process")
    process = spawn(processes, env, own_group=True)
    wait_serving(port, process)
    descendants = _descendants(process.pid)
    writers = [pid for pid in descendants if "gate.decisions._writer_process" in _cmdline(pid)]
    assert len(writers) == 2, [_cmdline(pid) for pid in descendants]  # gate serve's and the worker's
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: api, namespace: shop}\n"
        "spec: {containers: [{name: api, image: 'registry.example/shop/api:1.0'}]}\n"
    )
    client_env = {k: v for k, v in env.items() if k != "GATE_WEBHOOK_PROCESSES"}

    def client(*arguments: str) -> subprocess.CompletedProcess[str]:
        command = [GATE, "--server", f"127.0.0.1:{port}", *arguments]
        return subprocess.run(
            command, env=client_env, capture_output=True, text=True, timeout=60, check=False
        )

    decided = client("decide", "--stage", "deploy", "--manifest", str(manifest), "-o", "json")
    assert decided.returncode in (0, 1), decided.stderr  # allowed or denied: either is recorded
    decision_id = json.loads(decided.stdout)["id"]
    # Answered once committed (decisions.acknowledge: stored): signed by the writer process.
    verified = client("audit", "verify", decision_id)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # An auditor who does not trust the server checks the statement and seal on their side.
    public = client("audit", "public-key")
    assert public.returncode == 0, public.stderr
    key = tmp_path / "decisions.pub"
    key.write_text(public.stdout)
    here = client("audit", "verify", decision_id, "--local", "--key", str(key))
    assert here.returncode == 0, here.stdout + here.stderr
    assert f"Verified OK (here): decision {decision_id}" in here.stdout
    assert "signed record: " in here.stdout
    without_key = client("audit", "verify", decision_id, "--local")
    assert without_key.returncode != 0
    assert "--local needs --key" in without_key.stderr
    os.killpg(process.pid, signal.SIGINT)  # the writers ignore it; gate drains through them, then stops them
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    records = [json.loads(line) for line in stderr.splitlines() if line.strip().startswith("{")]
    assert not [r for r in records if r["level"] in ("error", "critical")], stderr
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in descendants):
        assert time.monotonic() < deadline, "a child of gate outlived it"
        time.sleep(0.1)
