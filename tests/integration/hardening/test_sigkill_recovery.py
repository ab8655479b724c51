"""SIGKILL during reviews and scans: after a restart on the same SQLite file, every decision
gate answered is stored, and no scan stays queued or running."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from gate.store import open_store
from gate.v1 import common_pb2, decision_pb2, scan_pb2
from tests.integration.hardening.serve_support import POLICIES, ServedGate, call, gate_env, review_body, until
from tests.integration.scanners.runner_support import FIXTURES, gitleaks_binary

HEARTBEAT = 0.5
TERMINAL = {scan_pb2.SCAN_STATE_SUCCEEDED, scan_pb2.SCAN_STATE_FAILED, scan_pb2.SCAN_STATE_CANCELLED}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedGate]:
    secrets = tmp_path / "repo"
    secrets.mkdir()
    (secrets / "config.env").write_text("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLQ\n")
    config = tmp_path / "gate.yaml"
    config.write_text(
        f"policies:\n  sources: [{POLICIES}]\n"
        f"scanning:\n  heartbeat: {HEARTBEAT}\n  concurrency: 2\n"
        "decisions:\n  acknowledge: stored\n"
        f"scanners:\n  gitleaks:\n    binary: {gitleaks_binary()}\n"
        "  slow:\n    class: tests.integration.scan_jobs_support:WaitingProvider\n"
        f"    options:\n      seconds: '120'\n      report: '{FIXTURES / 'trivy_local' / 'secrets2.json'}'\n"
    )
    gate = ServedGate(config, gate_env(tmp_path / "data"))
    yield gate
    gate.stop()


def _review_until_refused(gate: ServedGate, answered: list[str], stop: threading.Event) -> None:
    with gate.channel() as channel:
        while not stop.is_set():
            request = decision_pb2.ReviewRequest(admission_review=review_body(str(uuid.uuid4())))
            try:
                reply = call(
                    channel, "gate.v1.DecisionService/Review", request, decision_pb2.ReviewResponse, 5
                )
            except grpc.RpcError:
                return  # the process is gone
            assert isinstance(reply, decision_pb2.ReviewResponse)
            answered.append(reply.decision.id)


def _start_scans(gate: ServedGate, location: Path) -> list[str]:
    request = scan_pb2.StartScanRequest(
        target=scan_pb2.ScanTarget(kind=scan_pb2.TARGET_KIND_FILESYSTEM, location=str(location)),
        artifact=common_pb2.ArtifactRef(digest="git:" + "3" * 40),
        scanners=["gitleaks", "slow"],
    )
    with gate.channel() as channel:
        reply = call(channel, "gate.v1.ScanService/StartScan", request, scan_pb2.StartScanResponse)
    assert isinstance(reply, scan_pb2.StartScanResponse)
    return [scan.id for scan in reply.scans]


def test_answered_reviews_survive_sigkill_and_no_scan_stays_running(
    served: ServedGate, tmp_path: Path
) -> None:
    served.start()
    scan_ids = _start_scans(served, tmp_path / "repo")
    answered: list[list[str]] = [[], []]
    stop = threading.Event()
    workers = [
        threading.Thread(target=_review_until_refused, args=(served, ids, stop), daemon=True)
        for ids in answered
    ]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 20
    while sum(map(len, answered)) < 40 and until(deadline, 0.05):
        pass
    served.kill()
    stop.set()
    for worker in workers:
        worker.join(10)
    acknowledged = [decision_id for ids in answered for decision_id in ids]
    assert len(acknowledged) >= 40, "too few reviews were answered before the kill to prove anything"
    assert all(acknowledged)

    served.start()
    store = open_store(f"sqlite:///{tmp_path / 'data' / 'gate.db'}")
    try:
        missing = [i for i in acknowledged if store.get_decision(i) is None]
        assert missing == [], f"{len(missing)} of {len(acknowledged)} answered decisions were lost"
    finally:
        store.close()

    # The restarted gate fails what the killed one was running once its lease is four beats old.
    states: dict[str, int] = {}
    errors: dict[str, str] = {}
    deadline = time.monotonic() + HEARTBEAT * 4 + 15
    with served.channel() as channel:
        while True:
            for scan_id in scan_ids:
                scan = call(
                    channel, "gate.v1.ScanService/GetScan", scan_pb2.GetScanRequest(id=scan_id), scan_pb2.Scan
                )
                assert isinstance(scan, scan_pb2.Scan)
                states[scan_id] = scan.state
                errors[scan_id] = scan.error
            if set(states.values()) <= TERMINAL or not until(deadline, 0.2):
                break
    assert set(states.values()) <= TERMINAL, f"scans still queued or running after the restart: {states}"
    # The slow scan was running when gate died: its lease expired, and it says so.
    assert any("stopped before it finished" in error for error in errors.values()), errors
