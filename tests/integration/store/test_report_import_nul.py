"""Reports holding a NUL, imported on both backends: the same InvalidArgument, nothing stored.

Before, SQLite stored the finding and PostgreSQL failed inside the store with StoreUnavailable
(UNAVAILABLE, retry-after): a client retried a bad report for ever.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from gate.core import ArtifactSelector, Gate
from gate.errors import InvalidArgument
from gate.model import ArtifactKind, Scan, ScanState
from gate.scan_jobs import ScanJobs
from gate.store import EvidenceStore
from gate.v1 import common_pb2, scan_pb2
from tests.conftest import RunningGate, loopback_config

DIGEST = "sha256:" + "6" * 64
NOW = datetime(2026, 11, 30, tzinfo=UTC)


def trivy(title: str) -> bytes:
    vulnerability = {
        "VulnerabilityID": "CVE-2024-0001",
        "PkgName": "openssl",
        "InstalledVersion": "3.0.11-1",
        "Severity": "HIGH",
        "Title": title,
    }
    result = {
        "Target": "app (debian 12)",
        "Class": "os-pkgs",
        "Type": "debian",
        "Vulnerabilities": [vulnerability],
    }
    return json.dumps(
        {"SchemaVersion": 2, "ArtifactName": "registry.example/app:1", "Results": [result]}
    ).encode()


def import_trivy(store: EvidenceStore, tmp_path: Path, report: bytes) -> Scan:
    jobs = ScanJobs(store, {}, secret_key=os.urandom(32), workdir=tmp_path, clock=lambda: NOW)
    return Gate(store, clock=lambda: NOW, scans=jobs).import_report(
        ArtifactSelector(digest=DIGEST),
        tool="trivy",
        report=report,
        target=None,
        kind=ArtifactKind.IMAGE,
        name="",
    )


def test_an_imported_report_holding_a_nul_is_refused_alike_on_every_backend(
    store: EvidenceStore, tmp_path: Path
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        import_trivy(store, tmp_path, trivy("openssl:\0 a flaw"))
    assert str(caught.value) == (
        "report: Results[0].Vulnerabilities[0].Title: "
        "got a NUL character (\\u0000), expected text without NUL"
    )
    # Refused while parsing: no artifact, no scan left behind.
    assert store.get_artifact(DIGEST) is None
    assert import_trivy(store, tmp_path, trivy("openssl: a flaw")).state is ScanState.SUCCEEDED


@pytest.mark.postgres
def test_a_nul_report_imported_into_a_postgresql_gate_is_invalid_argument_not_unavailable(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], postgres_url: str
) -> None:
    gate = serve_gate(loopback_config(tmp_path, GATE_DATABASE_URL=postgres_url))
    request = scan_pb2.ImportReportRequest(
        artifact=common_pb2.ArtifactRef(digest=DIGEST),
        artifact_kind=common_pb2.ARTIFACT_KIND_IMAGE,
        scanner="trivy",
        report=trivy("openssl:\0 a flaw"),
    )
    with pytest.raises(grpc.RpcError) as caught:
        gate.call("gate.v1.ScanService/ImportReport", request, scan_pb2.Scan)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "Results[0].Vulnerabilities[0].Title: got a NUL character (\\u0000)" in caught.value.details()
