"""The gRPC API over a real socket: contract, health, reflection, errors, limits, metrics."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gate import model as m
from gate._api import SERVICE_NAMES
from gate.store import open_store
from gate.v1 import audit_pb2, common_pb2, sbom_pb2, scan_pb2
from tests.conftest import RunningGate, loopback_config

GATE_SERVICES = {
    "gate.v1.ScanService",
    "gate.v1.SbomService",
    "gate.v1.SignatureService",
    "gate.v1.DecisionService",
    "gate.v1.AuditService",
    "gate.v1.PolicyService",
    "gate.v1.WaiverService",
    "gate.v1.CredentialsService",
}
DIGEST = "sha256:" + "c" * 64
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


@pytest.fixture
def gate(tmp_path: Path, serve_gate: Callable[..., RunningGate]) -> RunningGate:
    return serve_gate(loopback_config(tmp_path))


def rpc_error(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def test_reflection_lists_the_six_services_with_health(gate: RunningGate) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(gate.channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {service.name for service in next(responses).list_services_response.service}
    assert names >= GATE_SERVICES
    assert "grpc.health.v1.Health" in names
    assert set(SERVICE_NAMES) == GATE_SERVICES


def test_reflection_serves_the_documented_contract(gate: RunningGate) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(gate.channel)
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol="gate.v1.ScanService")
    answer = next(stub.ServerReflectionInfo(iter([request])))
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(b)
        for b in answer.file_descriptor_response.file_descriptor_proto
    ]
    scan_file = next(f for f in files if f.name == "gate/v1/scan.proto")
    assert [method.name for method in scan_file.service[0].method] == [
        "StartScan",
        "GetScan",
        "WatchScan",
        "ListFindings",
        "ImportReport",
        "CancelScan",
    ]


def test_health_is_serving_overall_and_per_service(gate: RunningGate) -> None:
    stub = health_pb2_grpc.HealthStub(gate.channel)
    for service in ["", *sorted(GATE_SERVICES)]:
        answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, service


def test_unknown_scan_is_not_found(gate: RunningGate) -> None:
    scan_id = str(uuid.uuid4())
    error = rpc_error(
        lambda: gate.call("gate.v1.ScanService/GetScan", scan_pb2.GetScanRequest(id=scan_id), scan_pb2.Scan)
    )
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error.details() == f"scan '{scan_id}' not found"


@pytest.mark.parametrize(
    ("method", "request_message", "response_class", "expected"),
    [
        (
            "gate.v1.ScanService/GetScan",
            scan_pb2.GetScanRequest(),
            scan_pb2.Scan,
            "id: required, got an empty string",
        ),
        (
            "gate.v1.ScanService/GetScan",
            scan_pb2.GetScanRequest(id="42"),
            scan_pb2.Scan,
            "id: expected a UUID",
        ),
        (
            "gate.v1.ScanService/ListFindings",
            scan_pb2.ListFindingsRequest(),
            scan_pb2.ListFindingsResponse,
            "scope: required: set artifact or scan_id",
        ),
        (
            "gate.v1.ScanService/ListFindings",
            scan_pb2.ListFindingsRequest(artifact=common_pb2.ArtifactRef(digest="sha256:XYZ")),
            scan_pb2.ListFindingsResponse,
            "artifact.digest: expected 'sha256:<64 hex>'",
        ),
        (
            "gate.v1.ScanService/ListFindings",
            scan_pb2.ListFindingsRequest(scan_id=str(uuid.uuid4()), kinds=[1, 77]),
            scan_pb2.ListFindingsResponse,
            "kinds[1]: unknown enum value 77",
        ),
        (
            "gate.v1.ScanService/ListFindings",
            scan_pb2.ListFindingsRequest(artifact=common_pb2.ArtifactRef(digest=DIGEST), min_severity=99),
            scan_pb2.ListFindingsResponse,
            "min_severity: unknown enum value 99",
        ),
        (
            "gate.v1.AuditService/ListDecisions",
            audit_pb2.ListDecisionsRequest(filter=5),
            audit_pb2.ListDecisionsResponse,
            "filter: unknown enum value 5",
        ),
        (
            "gate.v1.AuditService/ListDecisions",
            audit_pb2.ListDecisionsRequest(page_token="not a token"),
            audit_pb2.ListDecisionsResponse,
            "page_token:",
        ),
        (
            "gate.v1.SbomService/SearchComponents",
            sbom_pb2.SearchComponentsRequest(),
            sbom_pb2.SearchComponentsResponse,
            "name: set name or purl",
        ),
        (
            "gate.v1.SbomService/SearchComponents",
            sbom_pb2.SearchComponentsRequest(purl="pypi/requests"),
            sbom_pb2.SearchComponentsResponse,
            "purl: expected a package URL starting with 'pkg:'",
        ),
    ],
)
def test_bad_requests_are_invalid_argument_with_the_field_path(
    gate: RunningGate, method: str, request_message: object, response_class: type, expected: str
) -> None:
    error = rpc_error(lambda: gate.call(method, request_message, response_class))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert expected in error.details()


def test_oversized_requests_are_rejected_before_parsing(gate: RunningGate) -> None:
    huge = scan_pb2.GetScanRequest(id="x" * (gate.config.grpc.max_request_bytes + 10))
    error = rpc_error(lambda: gate.call("gate.v1.ScanService/GetScan", huge, scan_pb2.Scan))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (
        f"exceeds the {gate.config.grpc.max_request_bytes}-byte limit of gate.v1.ScanService/GetScan"
        in error.details()
    )


def test_undecodable_requests_are_invalid_argument(gate: RunningGate) -> None:
    stub = gate.channel.unary_unary("/gate.v1.ScanService/GetScan")
    error = rpc_error(lambda: stub(b"\xff\xff\xff\xff", timeout=5))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid gate.v1.GetScanRequest message" in error.details()


def seed(url: str) -> tuple[m.Scan, list[m.Finding]]:
    store = open_store(url)
    try:
        store.upsert_artifact(
            m.Artifact(
                DIGEST, m.ArtifactKind.IMAGE, NOW, "registry.example/app", ("registry.example/app:1.0",)
            )
        )
        scan = m.Scan(
            id=str(uuid.uuid4()),
            artifact_digest=DIGEST,
            scanner="trivy",
            target=m.ScanTarget(m.TargetKind.IMAGE, "registry.example/app:1.0"),
            state=m.ScanState.RUNNING,
            created_at=NOW,
            started_at=NOW,
        )
        store.add_scan(scan)
        severities = [
            m.Severity.LOW,
            m.Severity.CRITICAL,
            m.Severity.HIGH,
            m.Severity.HIGH,
            m.Severity.UNKNOWN,
        ]
        findings = [
            m.Finding(
                fingerprint=f"sha256:{i:064x}",
                scan_id=scan.id,
                scanner="trivy",
                kind=m.FindingKind.VULNERABILITY,
                rule_id=f"CVE-2026-{1000 + i}",
                title=f"problem {i}",
                severity=severity,
                package=m.Package("openssl", "3.0.1", "pkg:deb/debian/openssl@3.0.1", ("3.0.2",)),
                fix_available=True,
            )
            for i, severity in enumerate(severities)
        ]
        done = m.Scan(
            **{
                **{f: getattr(scan, f) for f in scan.__dataclass_fields__},
                "state": m.ScanState.SUCCEEDED,
                "finished_at": NOW + timedelta(seconds=3),
                "counts": m.SeverityCounts.of(severities),
                "finding_count": len(findings),
            }
        )
        store.complete_scan(done, findings)
        return done, findings
    finally:
        store.close()


def test_stored_scans_and_findings_are_served_page_by_page(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    config = loopback_config(tmp_path)
    scan, findings = seed(config.effective_database_url)
    gate = serve_gate(config)

    got = gate.call("gate.v1.ScanService/GetScan", scan_pb2.GetScanRequest(id=scan.id), scan_pb2.Scan)
    assert got.state == scan_pb2.SCAN_STATE_SUCCEEDED
    assert got.counts.high == 2

    seen = []
    token = ""
    while True:
        request = scan_pb2.ListFindingsRequest(
            artifact=common_pb2.ArtifactRef(reference="registry.example/app:1.0"),
            page_size=2,
            page_token=token,
        )
        page = gate.call("gate.v1.ScanService/ListFindings", request, scan_pb2.ListFindingsResponse)
        assert page.counts.critical == 1
        assert page.counts.unknown == 1
        seen += [f.rule_id for f in page.findings]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(findings)
    assert len(set(seen)) == len(seen)
    first = gate.call(
        "gate.v1.ScanService/ListFindings",
        scan_pb2.ListFindingsRequest(scan_id=scan.id, min_severity=common_pb2.SEVERITY_HIGH),
        scan_pb2.ListFindingsResponse,
    )
    assert [f.severity for f in first.findings] == [
        common_pb2.SEVERITY_CRITICAL,
        common_pb2.SEVERITY_HIGH,
        common_pb2.SEVERITY_HIGH,
    ]


def test_unknown_alias_is_not_found(gate: RunningGate) -> None:
    request = scan_pb2.ListFindingsRequest(
        artifact=common_pb2.ArtifactRef(reference="registry.example/none:1")
    )
    error = rpc_error(
        lambda: gate.call("gate.v1.ScanService/ListFindings", request, scan_pb2.ListFindingsResponse)
    )
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert "registry.example/none:1" in error.details()


def test_metrics_count_requests_by_method_and_code(gate: RunningGate) -> None:
    for _ in range(3):
        rpc_error(
            lambda: gate.call(
                "gate.v1.ScanService/GetScan", scan_pb2.GetScanRequest(id=str(uuid.uuid4())), scan_pb2.Scan
            )
        )
    text = httpx.get(f"http://{gate.addresses.metrics}/metrics", timeout=5).text
    line = next(
        x
        for x in text.splitlines()
        if x.startswith('gate_grpc_requests_total{code="NOT_FOUND",method="gate.v1.ScanService/GetScan"}')
    )
    assert float(line.rsplit(" ", 1)[1]) >= 3
    assert "gate_grpc_request_duration_seconds_bucket" in text
    assert 'gate_build_info{version="' in text


def test_webhook_serves_https_with_the_generated_certificate(gate: RunningGate) -> None:
    cert = gate.config.data_dir / "tls" / "webhook.crt"
    assert cert.exists()
    assert (gate.config.data_dir / "tls" / "webhook.key").stat().st_mode & 0o077 == 0
    port = gate.addresses.webhook.rsplit(":", 1)[1]
    import ssl

    context = ssl.create_default_context(cafile=str(cert))
    response = httpx.get(f"https://localhost:{port}/readyz", verify=context, timeout=5)
    assert (response.status_code, response.json()["status"]) == (200, "ready")


@pytest.mark.postgres
def test_the_service_answers_from_postgresql(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], postgres_url: str
) -> None:
    config = loopback_config(tmp_path, GATE_DATABASE_URL=postgres_url)
    scan, findings = seed(config.effective_database_url)
    gate = serve_gate(config)
    got = gate.call("gate.v1.ScanService/GetScan", scan_pb2.GetScanRequest(id=scan.id), scan_pb2.Scan)
    assert got.finding_count == len(findings)
    page = gate.call(
        "gate.v1.ScanService/ListFindings",
        scan_pb2.ListFindingsRequest(artifact=common_pb2.ArtifactRef(digest=DIGEST)),
        scan_pb2.ListFindingsResponse,
    )
    assert len(page.findings) == len(findings)
    unknown = str(uuid.uuid4())
    error = rpc_error(
        lambda: gate.call("gate.v1.ScanService/GetScan", scan_pb2.GetScanRequest(id=unknown), scan_pb2.Scan)
    )
    assert error.code() is grpc.StatusCode.NOT_FOUND


class SlowStore:
    """A real store whose scan lookups take a while, to keep a request in flight."""

    inline_reads = False

    def __init__(self, store: object, delay: float) -> None:
        self._store = store
        self.delay = delay
        self.entered = threading.Event()

    def get_scan(self, scan_id: str) -> object:
        self.entered.set()
        time.sleep(self.delay)
        return self._store.get_scan(scan_id)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def test_sigterm_lets_in_flight_requests_finish_and_refuses_new_ones(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    config = loopback_config(tmp_path)
    real = open_store(config.effective_database_url)
    slow = SlowStore(real, delay=1.5)
    try:
        gate = serve_gate(config, store=slow)
        outcome: dict[str, grpc.StatusCode] = {}

        def in_flight() -> None:
            try:
                gate.call(
                    "gate.v1.ScanService/GetScan",
                    scan_pb2.GetScanRequest(id=str(uuid.uuid4())),
                    scan_pb2.Scan,
                )
            except grpc.RpcError as error:
                outcome["code"] = error.code()

        caller = threading.Thread(target=in_flight)
        caller.start()
        assert slow.entered.wait(5)
        gate.request_stop()
        caller.join(10)
        # The request that was running when the stop came is answered normally.
        assert outcome["code"] is grpc.StatusCode.NOT_FOUND
        gate.thread.join(15)
        assert not gate.thread.is_alive()
        with grpc.insecure_channel(gate.addresses.grpc) as channel, pytest.raises(grpc.RpcError) as refused:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    finally:
        real.close()
