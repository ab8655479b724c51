"""``webhook.processes``, ``grpc.processes``: worker processes serving beside the main one, supervised."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gate.config import TlsFiles
from gate.errors import InfrastructureError
from gate.model import Decision
from gate.server import GateServer
from gate.server._tls import ensure_self_signed
from gate.server._workers import WorkerRole
from gate.store import DecisionQuery, open_store
from gate.v1 import decision_pb2, policy_pb2
from tests.conftest import RunningGate, loopback_config, unverified_tls
from tests.unit.decisions.support import POLICIES, body, review

BURST_CLIENT = Path(__file__).parents[2] / "assets" / "decisions" / "burst_client.py"
# New connections in the burst test: enough that a fair share is well above chance.
BURST = 64


def _by_worker(gate: RunningGate, sample_name: str, **labels: str) -> dict[str, float]:
    """The non-zero samples ``sample_name`` with ``labels``, summed by the merged exposition's ``worker``."""
    text = httpx.get(f"http://{gate.addresses.metrics}/metrics", timeout=10).text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == sample_name and sample.value and labels.items() <= sample.labels.items():
                worker = sample.labels["worker"]
                counts[worker] = counts.get(worker, 0.0) + sample.value
    return counts


def _validate_counts(gate: RunningGate) -> dict[str, float]:
    """``/validate`` answers so far, by process."""
    return _by_worker(gate, "gate_webhook_requests_total", path="/validate")


def _post_each_on_a_new_connection(url: str, uids: list[str]) -> list[tuple[int, bool]]:
    """The status and ``allowed`` of each review."""

    def post(uid: str) -> tuple[int, bool]:
        # A client per review: each is a new connection, so that the kernel can hand it to any process.
        with httpx.Client(verify=unverified_tls(), timeout=20) as client:
            answer = client.post(url, content=body(review(uid=uid)))
            return answer.status_code, bool(answer.json()["response"]["allowed"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(post, uids))


def _since(before: dict[str, float], now: dict[str, float]) -> dict[str, float]:
    return {worker: count - before.get(worker, 0.0) for worker, count in now.items()}


def _until_both_processes_answered(
    send: Callable[[list[str]], None], counts: Callable[[], dict[str, float]], what: str
) -> list[str]:
    """Names sent in batches (each on new connections) until the main process and the worker answered."""
    # The main process is this test process, whose counters earlier tests have moved.
    before = counts()
    sent: list[str] = []
    # Which process gets a connection is the kernel's choice: send until both have answered.
    for batch in range(10):
        more = [f"{what.lower()}-{batch}-{index}" for index in range(24)]
        send(more)
        sent += more
        answered = _since(before, counts())
        if answered.get("0") and answered.get("1"):
            break
    assert answered.get("0"), f"the main process answered no {what}: {answered}"
    assert answered.get("1"), f"the worker answered no {what}: {answered}"
    assert sum(answered.values()) == len(sent)
    return sent


def _stored_after_a_graceful_stop(gate: RunningGate) -> tuple[Decision, ...]:
    gate.stop()  # graceful: the worker stores its decisions before it exits
    assert _workers() == []
    store = open_store(gate.config.effective_database_url)
    try:
        return store.list_decisions(DecisionQuery(page_size=1000)).items
    finally:
        store.close()


def _workers() -> list[multiprocessing.process.BaseProcess]:
    return [child for child in multiprocessing.active_children() if child.name.startswith("gate-worker-")]


def test_reviews_are_answered_by_every_process_and_each_is_stored_once(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    config = loopback_config(tmp_path / "data", GATE_POLICY_SOURCES=str(POLICIES), GATE_WEBHOOK_PROCESSES="2")
    gate = serve_gate(config)
    assert [worker.name for worker in _workers()] == ["gate-worker-1"]
    url = f"https://{gate.addresses.webhook}/validate"

    def post(uids: list[str]) -> None:
        assert {status for status, _ in _post_each_on_a_new_connection(url, uids)} == {200}

    uids = _until_both_processes_answered(post, partial(_validate_counts, gate), "review")
    stored = _stored_after_a_graceful_stop(gate)
    assert sorted(decision.request["uid"] for decision in stored) == sorted(uids)


def test_a_burst_of_new_connections_is_shared_between_the_processes(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    # An API server that restarts opens its connections at once. asyncio accepts every queued
    # connection on one wake-up, so the process that woke first took them all and served them
    # alone while the other idled.
    config = loopback_config(tmp_path / "data", GATE_POLICY_SOURCES=str(POLICIES), GATE_WEBHOOK_PROCESSES="2")
    gate = serve_gate(config)
    before = _validate_counts(gate)
    host, port = gate.addresses.webhook.rsplit(":", 1)
    # The client is a process of its own: the main gate process is this test's, and client
    # threads here took its GIL often enough that it accepted 3 of 32 (the worker 29).
    sent = subprocess.run(
        [sys.executable, str(BURST_CLIENT), host, port, str(BURST)],
        input=body(review(uid="burst")),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert sent.returncode == 0, sent.stderr.decode(errors="replace")
    answers = sent.stdout.decode().splitlines()
    assert len(answers) == BURST
    assert all(answer.startswith("HTTP/1.1 200") for answer in answers), answers
    counts = _since(before, _validate_counts(gate))
    assert sum(counts.values()) == BURST
    # Even shares are not the point (the main process also serves gRPC, and the kernel picks):
    # each process takes a fair part, not none or a few.
    assert min(counts.get("0", 0.0), counts.get("1", 0.0)) >= BURST / 8, (
        f"one process took the burst: {counts}"
    )


def test_a_policy_change_the_main_process_loads_is_in_force_in_the_workers_too(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    source = tmp_path / "policies.yaml"
    source.write_text(POLICIES.read_text())
    config = loopback_config(tmp_path / "data", GATE_POLICY_SOURCES=str(source), GATE_WEBHOOK_PROCESSES="2")
    config = config.model_copy(update={"policies": config.policies.model_copy(update={"poll_interval": 0.2})})
    gate = serve_gate(config)
    url = f"https://{gate.addresses.webhook}/validate"
    assert set(_post_each_on_a_new_connection(url, ["before-0", "before-1"])) == {(200, True)}
    # The owner label becomes required: the sample review, which has none, is now denied.
    source.write_text(
        POLICIES.read_text().replace("validationFailureAction: Audit", "validationFailureAction: Enforce")
    )
    deadline = time.monotonic() + 30
    while _reloads(gate).get("1", 0.0) < 1:
        assert time.monotonic() < deadline, f"the worker did not reload within 30 s: {_reloads(gate)}"
        time.sleep(0.1)
    before = _validate_counts(gate)
    answers = _post_each_on_a_new_connection(url, [f"after-{index}" for index in range(48)])
    assert set(answers) == {(200, False)}
    counts = _since(before, _validate_counts(gate))
    assert counts.get("1"), f"the worker answered none of the reviews after the change: {counts}"


def _reloads(gate: RunningGate) -> dict[str, float]:
    return _by_worker(gate, "gate_policy_reloads_total")


def test_a_worker_that_dies_is_started_again_and_the_webhook_and_grpc_keep_answering(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    processes = {"GATE_WEBHOOK_PROCESSES": "2", "GATE_GRPC_PROCESSES": "2"}
    config = loopback_config(tmp_path / "data", GATE_POLICY_SOURCES=str(POLICIES), **processes)
    gate = serve_gate(config)
    (first,) = _workers()
    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not [worker for worker in _workers() if worker.pid != first.pid and worker.is_alive()]:
        assert time.monotonic() < deadline, "the killed worker was not started again within 30 s"
        time.sleep(0.1)
    metrics = httpx.get(f"http://{gate.addresses.metrics}/metrics", timeout=10).text
    assert 'gate_webhook_worker_restarts_total{worker="0"} 1.0' in metrics
    url = f"https://{gate.addresses.webhook}/validate"
    answers = _post_each_on_a_new_connection(url, [f"after-{index}" for index in range(12)])
    assert {status for status, _ in answers} == {200}

    # The new worker bound the gRPC port again: calls on new connections reach both processes.
    decide = partial(_decide_all_allowed, gate)
    _until_both_processes_answered(decide, partial(_decide_counts, gate), "Decide")


def test_a_worker_that_cannot_start_stops_gate_from_starting_and_says_why(tmp_path: Path) -> None:
    # The main process is handed a working store; the worker opens the configured one, which
    # nothing listens for.
    config = loopback_config(
        tmp_path / "data",
        GATE_WEBHOOK_PROCESSES="2",
        GATE_DATABASE_URL="postgresql+psycopg://gate@127.0.0.1:9/gate",
    )
    store = open_store(f"sqlite:///{tmp_path / 'main.db'}")
    try:
        with pytest.raises(InfrastructureError) as raised:
            asyncio.run(GateServer(config, store=store).run())
    finally:
        store.close()
    assert raised.value.message.startswith("worker 1 did not start: ")
    assert "evidence store unavailable" in raised.value.message
    assert _workers() == []


def test_a_worker_whose_main_process_is_gone_when_it_is_ready_stops_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = loopback_config(tmp_path / "data", GATE_WEBHOOK_PROCESSES="2")
    cert, key = ensure_self_signed(tmp_path / "tls")
    ours, theirs = multiprocessing.Pipe()
    ours.close()  # the main process was killed while this worker started
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        role = WorkerRole(1, theirs, webhook=(sock, TlsFiles(cert_file=cert, key_file=key)))
        with caplog.at_level("INFO", logger="gate.serve"):
            asyncio.run(asyncio.wait_for(GateServer(config, worker=role).run(), 60))
    messages = [record.getMessage() for record in caplog.records]
    assert "worker 1: the main process is gone; stopping" in messages
    assert not [record for record in caplog.records if record.levelname in ("ERROR", "CRITICAL")]


DECIDE = "gate.v1.DecisionService/Decide"


def _decide_each_on_a_new_channel(target: str, names: list[str]) -> list[bool]:
    """``allowed`` of a deploy Decide of the sample Pod named each of ``names``."""

    def decide(name: str) -> bool:
        pod = {**review()["request"]["object"], "metadata": {"name": name, "namespace": "team"}}
        request = decision_pb2.DecideRequest(stage="deploy", project="team", manifest=body(pod))
        # A channel per call: each is a new connection, which the kernel may give to any process.
        with grpc.insecure_channel(target) as channel:
            call = channel.unary_unary(
                f"/{DECIDE}",
                request_serializer=decision_pb2.DecideRequest.SerializeToString,
                response_deserializer=decision_pb2.Decision.FromString,
            )
            answer: decision_pb2.Decision = call(request, timeout=20)
        assert answer.id, "the decision was not recorded"
        return answer.allowed

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(decide, names))


def _decide_all_allowed(gate: RunningGate, names: list[str]) -> None:
    assert set(_decide_each_on_a_new_channel(gate.addresses.grpc, names)) == {True}


def _decide_counts(gate: RunningGate) -> dict[str, float]:
    """Decide answers so far, by process."""
    return _by_worker(gate, "gate_grpc_requests_total", method=DECIDE)


def test_decides_are_answered_by_every_grpc_process_and_each_is_stored_once(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    config = loopback_config(tmp_path / "data", GATE_POLICY_SOURCES=str(POLICIES), GATE_GRPC_PROCESSES="2")
    gate = serve_gate(config)
    assert [worker.name for worker in _workers()] == ["gate-worker-1"]
    names = _until_both_processes_answered(
        partial(_decide_all_allowed, gate), partial(_decide_counts, gate), "Decide"
    )
    # webhook.processes is 1: the worker answers gRPC only, and every review is the main process's.
    before = _validate_counts(gate)
    url = f"https://{gate.addresses.webhook}/validate"
    assert {status for status, _ in _post_each_on_a_new_connection(url, ["r-0", "r-1", "r-2"])} == {200}
    reviews = _since(before, _validate_counts(gate))
    assert {worker: count for worker, count in reviews.items() if count} == {"0": 3.0}

    stored = _stored_after_a_graceful_stop(gate)
    manifests = [decision for decision in stored if decision.stage == "deploy"]
    stored_names = [decision.request["resources"][0]["metadata"]["name"] for decision in manifests]
    assert sorted(stored_names) == sorted(names)


def test_a_second_gate_cannot_join_the_grpc_port_of_a_gate_with_several_grpc_processes(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    first = serve_gate(loopback_config(tmp_path / "first", GATE_GRPC_PROCESSES="2"))
    for processes in ("2", "1"):
        second = loopback_config(
            tmp_path / f"second-{processes}",
            GATE_GRPC_LISTEN=first.addresses.grpc,
            GATE_GRPC_PROCESSES=processes,
        )
        with pytest.raises(InfrastructureError) as raised:
            asyncio.run(GateServer(second).run())
        assert raised.value.message.startswith(f"grpc: cannot listen on {first.addresses.grpc}"), processes
    assert [worker.name for worker in _workers()] == ["gate-worker-1"]


RELOAD = "gate.v1.PolicyService/ReloadPolicies"


def test_a_reload_policies_that_a_grpc_worker_answers_reloads_every_process(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    source = tmp_path / "policies.yaml"
    source.write_text(POLICIES.read_text())
    processes = {"GATE_GRPC_PROCESSES": "2", "GATE_WEBHOOK_PROCESSES": "2"}
    config = loopback_config(tmp_path / "data", GATE_POLICY_SOURCES=str(source), **processes)
    # No watch of the sources: only the worker's request can bring the change to the main process.
    config = config.model_copy(update={"policies": config.policies.model_copy(update={"poll_interval": 0.0})})
    gate = serve_gate(config)
    # The owner label becomes required: the sample review, which has none, is now denied.
    source.write_text(
        POLICIES.read_text().replace("validationFailureAction: Audit", "validationFailureAction: Enforce")
    )
    reloads_before = _reloads(gate)
    for _ in range(40):
        before = _by_worker(gate, "gate_grpc_requests_total", method=RELOAD)
        with grpc.insecure_channel(gate.addresses.grpc) as channel:
            channel.unary_unary(
                f"/{RELOAD}",
                request_serializer=policy_pb2.ReloadPoliciesRequest.SerializeToString,
                response_deserializer=policy_pb2.ReloadPoliciesResponse.FromString,
            )(policy_pb2.ReloadPoliciesRequest(), timeout=20)
        after = _by_worker(gate, "gate_grpc_requests_total", method=RELOAD)
        if after.get("1", 0.0) > before.get("1", 0.0):
            break
        # The main process answered: it reloads the workers itself; wait for a new connection.
    else:
        pytest.fail(f"the worker answered none of 40 ReloadPolicies: {after}")
    deadline = time.monotonic() + 30
    while _reloads(gate).get("0", 0.0) <= reloads_before.get("0", 0.0):
        assert time.monotonic() < deadline, f"the main process did not reload within 30 s: {_reloads(gate)}"
        time.sleep(0.1)
    before = _validate_counts(gate)
    url = f"https://{gate.addresses.webhook}/validate"
    answers = _post_each_on_a_new_connection(url, [f"after-{index}" for index in range(48)])
    assert set(answers) == {(200, False)}
    counts = _since(before, _validate_counts(gate))
    assert counts.get("0"), f"the main process answered none of the reviews after the reload: {counts}"
