"""Scan jobs over gRPC: start, watch, import, cancel, shutdown, restart, and secrets kept out."""

from __future__ import annotations

import base64
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from gate import model as m
from gate.core import utc_now
from gate.scan_jobs import ScanJobs
from gate.store import open_store
from gate.v1 import common_pb2, scan_pb2
from tests.conftest import RunningGate, loopback_config
from tests.integration.scanners.runner_support import FIXTURES, INPUTS, gitleaks_binary, trivy_binary

COMMIT = "git:" + "b" * 40
TRIVY_REPORT = FIXTURES / "trivy_local" / "secrets2.json"


def config_with(tmp_path: Path, scanners: str) -> object:
    path = tmp_path / "gate.yaml"
    path.write_text(scanners)
    from gate.config import load_config

    env = {
        "GATE_DATA_DIR": str(tmp_path / "data"),
        "GATE_GRPC_LISTEN": "127.0.0.1:0",
        "GATE_WEBHOOK_LISTEN": "127.0.0.1:0",
        "GATE_METRICS_LISTEN": "127.0.0.1:0",
    }
    return load_config(path, env)


def real_scanners() -> str:
    return (
        f"scanners:\n  gitleaks:\n    binary: {gitleaks_binary()}\n"
        f"  trivy:\n    binary: {trivy_binary()}\n    options:\n      scanners: secret\n"
    )


def waiting_scanner(seconds: float) -> str:
    return (
        "scanners:\n  slow:\n    class: tests.integration.scan_jobs_support:WaitingProvider\n"
        f"    options:\n      seconds: '{seconds}'\n      report: '{TRIVY_REPORT}'\n"
    )


def start(gate: RunningGate, location: Path, *scanners: str) -> list[scan_pb2.Scan]:
    request = scan_pb2.StartScanRequest(
        target=scan_pb2.ScanTarget(kind=scan_pb2.TARGET_KIND_FILESYSTEM, location=str(location)),
        artifact=common_pb2.ArtifactRef(digest=COMMIT),
        scanners=list(scanners),
    )
    response = gate.call("gate.v1.ScanService/StartScan", request, scan_pb2.StartScanResponse)
    return list(response.scans)


def watch(gate: RunningGate, scan_id: str) -> Iterator[scan_pb2.ScanEvent]:
    stub = gate.channel.unary_stream(
        "/gate.v1.ScanService/WatchScan",
        request_serializer=scan_pb2.WatchScanRequest.SerializeToString,
        response_deserializer=scan_pb2.ScanEvent.FromString,
    )
    return stub(scan_pb2.WatchScanRequest(id=scan_id), timeout=120)


def final(gate: RunningGate, scan_id: str) -> tuple[scan_pb2.Scan, list[scan_pb2.ScanEvent]]:
    events = list(watch(gate, scan_id))
    assert events[-1].HasField("scan"), events
    return events[-1].scan, events


def planted_secrets() -> list[str]:
    """The secret values in the input tree, as gitleaks itself reports them."""
    import json
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "r.json"
        subprocess.run(
            [
                str(gitleaks_binary()),
                "dir",
                str(INPUTS / "secrets2"),
                "--report-format",
                "json",
                "--report-path",
                str(report),
                "--no-banner",
                "--exit-code",
                "0",
                "--redact=0",
            ],
            check=True,
            capture_output=True,
        )
        leaks = json.loads(report.read_text())
    secrets = sorted({leak["Secret"] for leak in leaks if len(leak["Secret"]) >= 8})
    assert len(secrets) >= 5
    return secrets


def test_a_scan_runs_real_scanners_streams_progress_and_keeps_no_secret(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    target = tmp_path / "src"
    shutil.copytree(INPUTS / "secrets2", target)
    config = config_with(tmp_path, real_scanners())
    gate = serve_gate(config)
    scans = start(gate, target)
    assert {s.scanner for s in scans} == {"gitleaks", "trivy"}
    assert all(s.state in (scan_pb2.SCAN_STATE_QUEUED, scan_pb2.SCAN_STATE_RUNNING) for s in scans)
    results = {}
    for queued in scans:
        done, events = final(gate, queued.id)
        assert done.state == scan_pb2.SCAN_STATE_SUCCEEDED, done.error
        assert done.finding_count >= 6
        assert [e for e in events if e.progress.phase]
        results[done.scanner] = done
    page = gate.call(
        "gate.v1.ScanService/ListFindings",
        scan_pb2.ListFindingsRequest(artifact=common_pb2.ArtifactRef(digest=COMMIT), page_size=1000),
        scan_pb2.ListFindingsResponse,
    )
    assert len(page.findings) == sum(s.finding_count for s in results.values())
    assert all(f.kind == scan_pb2.FINDING_KIND_SECRET for f in page.findings)

    # The secrets appear nowhere gate keeps or says anything: database, raw reports, answers, logs.
    gate.stop()
    store = open_store(config.effective_database_url)  # type: ignore[attr-defined]
    try:
        reports = [store.get_scan_report(s.id) for s in results.values()]
    finally:
        store.close()
    assert all(r is not None for r in reports)
    haystacks = {
        "raw reports": b"".join(r.data for r in reports if r is not None),
        "answers": page.SerializeToString(),
        "logs": caplog.text.encode(),
    }
    data_dir = config.data_dir  # type: ignore[attr-defined]
    for path in data_dir.rglob("*"):
        if path.is_file():
            haystacks[str(path)] = path.read_bytes()
    for secret in planted_secrets():
        forms = {secret.encode(), base64.b64encode(secret.encode()), secret.encode().hex().encode()}
        for name, data in haystacks.items():
            for form in forms:
                assert form not in data, f"a planted secret appears in {name}"


def test_an_imported_report_becomes_a_completed_scan(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    gate = serve_gate(loopback_config(tmp_path))
    request = scan_pb2.ImportReportRequest(
        artifact=common_pb2.ArtifactRef(digest="sha256:" + "d" * 64),
        scanner="trivy",
        report=(FIXTURES / "trivy_local" / "pip-vuln.json").read_bytes(),
    )
    scan = gate.call("gate.v1.ScanService/ImportReport", request, scan_pb2.Scan)
    assert scan.state == scan_pb2.SCAN_STATE_SUCCEEDED
    assert scan.imported
    assert (scan.counts.high, scan.counts.medium) == (1, 1)
    done, events = final(gate, scan.id)
    assert len(events) == 1
    assert done.id == scan.id


@pytest.mark.parametrize(
    ("report", "expected"),
    [(b"", "report: required"), (b'{"SchemaVersion": 2, "Results": [', "report")],
)
def test_a_bad_report_is_invalid_argument(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], report: bytes, expected: str
) -> None:
    gate = serve_gate(loopback_config(tmp_path))
    request = scan_pb2.ImportReportRequest(
        artifact=common_pb2.ArtifactRef(digest="sha256:" + "d" * 64), scanner="trivy", report=report
    )
    with pytest.raises(grpc.RpcError) as caught:
        gate.call("gate.v1.ScanService/ImportReport", request, scan_pb2.Scan)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert expected in caught.value.details()


def test_a_running_scan_can_be_cancelled(tmp_path: Path, serve_gate: Callable[..., RunningGate]) -> None:
    gate = serve_gate(config_with(tmp_path, waiting_scanner(60)))
    (queued,) = start(gate, tmp_path)
    events = watch(gate, queued.id)
    first = next(events)
    while first.state != scan_pb2.SCAN_STATE_RUNNING:
        first = next(events)
    gate.call("gate.v1.ScanService/CancelScan", scan_pb2.CancelScanRequest(id=queued.id), scan_pb2.Scan)
    last = list(events)[-1]
    assert last.scan.state == scan_pb2.SCAN_STATE_CANCELLED
    with pytest.raises(grpc.RpcError) as caught:
        gate.call("gate.v1.ScanService/CancelScan", scan_pb2.CancelScanRequest(id=queued.id), scan_pb2.Scan)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION


def test_stopping_gate_fails_its_running_scans_with_the_reason(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    config = config_with(tmp_path, waiting_scanner(60))
    gate = serve_gate(config)
    (queued,) = start(gate, tmp_path)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = gate.call("gate.v1.ScanService/GetScan", scan_pb2.GetScanRequest(id=queued.id), scan_pb2.Scan)
        if got.state == scan_pb2.SCAN_STATE_RUNNING:
            break
        time.sleep(0.05)
    gate.stop()
    store = open_store(config.effective_database_url)  # type: ignore[attr-defined]
    try:
        stored = store.get_scan(queued.id)
    finally:
        store.close()
    assert stored is not None
    assert stored.state is m.ScanState.FAILED
    assert "gate stopped while the scan ran" in stored.error


def test_scans_of_a_gate_that_died_are_failed_by_the_next_one(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    try:
        store.upsert_artifact(m.Artifact(COMMIT, m.ArtifactKind.SOURCE, utc_now()))
        orphan = m.Scan(
            id="11111111-2222-4333-8444-555555555555",
            artifact_digest=COMMIT,
            scanner="trivy",
            target=m.ScanTarget(m.TargetKind.FILESYSTEM, "/src"),
            state=m.ScanState.RUNNING,
            created_at=utc_now() - timedelta(minutes=10),
        )
        store.add_scan(orphan)
        jobs = ScanJobs(
            store, {}, secret_key=b"k" * 32, workdir=tmp_path, clock=utc_now, heartbeat=1.0, serving=True
        )
        try:
            deadline = time.monotonic() + 10
            while store.get_scan(orphan.id).state is m.ScanState.RUNNING and time.monotonic() < deadline:  # type: ignore[union-attr]
                time.sleep(0.05)
        finally:
            jobs.close()
        stored = store.get_scan(orphan.id)
        assert stored is not None
        assert stored.state is m.ScanState.FAILED
        assert stored.error.startswith("the gate running this scan stopped")
    finally:
        store.close()


def test_start_scan_rejects_what_no_scanner_can_do(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    gate = serve_gate(config_with(tmp_path, waiting_scanner(1)))
    request = scan_pb2.StartScanRequest(
        target=scan_pb2.ScanTarget(kind=scan_pb2.TARGET_KIND_IMAGE, location="registry.example/app:1"),
        artifact=common_pb2.ArtifactRef(digest="sha256:" + "e" * 64),
        scanners=["nope"],
    )
    with pytest.raises(grpc.RpcError) as caught:
        gate.call("gate.v1.ScanService/StartScan", request, scan_pb2.StartScanResponse)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "scanners[0]: unknown scanner 'nope'; configured: slow" in caught.value.details()
    request.ClearField("scanners")
    with pytest.raises(grpc.RpcError) as caught:
        gate.call("gate.v1.ScanService/StartScan", request, scan_pb2.StartScanResponse)
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert "no configured scanner supports them (configured: slow)" in caught.value.details()
    request.scanners.append("slow")
    request.target.kind = scan_pb2.TARGET_KIND_FILESYSTEM
    request.options["other.x"] = "1"
    with pytest.raises(grpc.RpcError) as caught:
        gate.call("gate.v1.ScanService/StartScan", request, scan_pb2.StartScanResponse)
    assert "options[other.x]" in caught.value.details()


def test_watching_an_unknown_scan_is_not_found(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    gate = serve_gate(loopback_config(tmp_path))
    with pytest.raises(grpc.RpcError) as caught:
        list(watch(gate, "00000000-0000-4000-8000-000000000000"))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_a_cli_process_that_only_reads_leaves_stale_scans_to_a_server(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    try:
        store.upsert_artifact(m.Artifact(COMMIT, m.ArtifactKind.SOURCE, utc_now()))
        orphan = m.Scan(
            id="22222222-2222-4333-8444-555555555555",
            artifact_digest=COMMIT,
            scanner="trivy",
            target=m.ScanTarget(m.TargetKind.FILESYSTEM, "/src"),
            state=m.ScanState.RUNNING,
            created_at=utc_now() - timedelta(minutes=10),
        )
        store.add_scan(orphan)
        jobs = ScanJobs(store, {}, secret_key=b"k" * 32, workdir=tmp_path, clock=utc_now, heartbeat=0.05)
        time.sleep(0.5)
        jobs.close()
        assert store.get_scan(orphan.id) == orphan
    finally:
        store.close()
