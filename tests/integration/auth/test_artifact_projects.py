"""Artifacts belong to projects: a pipeline of one project cannot use another project's digest.

Served over a real socket with ``auth.mode: required`` and tokens for two
pipeline projects (payments, billing), an auditor and an admin; the admin
shares an artifact through ``gate artifact bind``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.message import Message

from gate.cli import main
from gate.config import AuthSettings
from gate.store import open_store
from gate.v1 import common_pb2, decision_pb2, sbom_pb2, scan_pb2, signature_pb2
from tests.conftest import RunningGate, loopback_config
from tests.integration.auth.support import write_tokens
from tests.integration.scanners.runner_support import FIXTURES

DIGEST = "sha256:" + "5a" * 32
IMAGE = f"registry.example/payments/api@{DIGEST}"
REPORT = FIXTURES / "trivy_local" / "pip-vuln.json"
TOKENS = {
    "payments": "payments-pipeline-token-01234",
    "billing": "billing-pipeline-token-56789",
    "auditor": "auditor-token-0123456789ab",
    "admin": "admin-token-0123456789abcd",
}


@pytest.fixture
def projects_gate(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], monkeypatch: pytest.MonkeyPatch
) -> RunningGate:
    tokens = write_tokens(
        tmp_path / "tokens.yaml",
        {
            TOKENS["payments"]: ("ci-payments", ["pipeline"], ["payments"]),
            TOKENS["billing"]: ("ci-billing", ["pipeline"], ["billing"]),
            TOKENS["auditor"]: ("audit", ["auditor"], []),
            TOKENS["admin"]: ("ops", ["admin"], []),
        },
    )
    key = tmp_path / "signing.key"
    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    config = loopback_config(tmp_path / "data", GATE_SIGNING_KEY_FILE=str(key))
    config = config.model_copy(update={"auth": AuthSettings(mode="required", tokens_file=tokens)})
    # The CLI of the admin below finds the same store through the environment.
    monkeypatch.setenv("GATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GATE_CONFIG", raising=False)
    monkeypatch.delenv("GATE_SERVER", raising=False)
    return serve_gate(config)


def rpc(gate: RunningGate, method: str, request: Message, response: type[Message], who: str) -> Any:
    stub = gate.channel.unary_unary(
        f"/{method}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response.FromString,
    )
    return stub(request, timeout=10, metadata=(("authorization", f"Bearer {TOKENS[who]}"),))


def refused(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED, caught.value.details()
    return caught.value


def import_report(gate: RunningGate, who: str, project: str) -> Any:
    request = scan_pb2.ImportReportRequest(
        artifact=common_pb2.ArtifactRef(digest=DIGEST),
        artifact_kind=common_pb2.ARTIFACT_KIND_IMAGE,
        artifact_name="registry.example/payments/api",
        scanner="trivy",
        report=REPORT.read_bytes(),
        project=project,
    )
    return rpc(gate, "gate.v1.ScanService/ImportReport", request, scan_pb2.Scan, who)


def attest(gate: RunningGate, who: str, project: str) -> Any:
    request = signature_pb2.AttestRequest(
        image=IMAGE,
        predicate_type="https://cyclonedx.org/bom",
        predicate=b'{"components": []}',
        project=project,
    )
    return rpc(gate, "gate.v1.SignatureService/Attest", request, signature_pb2.AttestResponse, who)


def decide(gate: RunningGate, who: str, project: str) -> Any:
    request = decision_pb2.DecideRequest(
        artifact=common_pb2.ArtifactRef(digest=DIGEST), stage="build", project=project
    )
    return rpc(gate, "gate.v1.DecisionService/Decide", request, decision_pb2.Decision, who)


def findings(gate: RunningGate, who: str, *, scan_id: str = "") -> Any:
    request = (
        scan_pb2.ListFindingsRequest(scan_id=scan_id)
        if scan_id
        else scan_pb2.ListFindingsRequest(artifact=common_pb2.ArtifactRef(digest=DIGEST))
    )
    return rpc(gate, "gate.v1.ScanService/ListFindings", request, scan_pb2.ListFindingsResponse, who)


def test_another_projects_pipeline_is_refused_the_artifact_until_an_admin_shares_it(
    projects_gate: RunningGate, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = projects_gate
    # The first evidence recorded for the digest binds it to payments.
    scan = import_report(gate, "payments", "payments")
    assert scan.artifact_digest == DIGEST

    with caplog.at_level(logging.WARNING, logger="gate.audit.auth"):
        denials = [
            refused(lambda: import_report(gate, "billing", "billing")),
            refused(lambda: attest(gate, "billing", "billing")),
            refused(lambda: decide(gate, "billing", "billing")),
            refused(lambda: findings(gate, "billing")),
            refused(lambda: findings(gate, "billing", scan_id=scan.id)),
            refused(
                lambda: rpc(
                    gate,
                    "gate.v1.ScanService/GetScan",
                    scan_pb2.GetScanRequest(id=scan.id),
                    scan_pb2.Scan,
                    "billing",
                )
            ),
        ]
    for error in denials:
        assert DIGEST in error.details()
        assert (
            "got payments; expected one of the projects token:ci-billing acts for: billing" in error.details()
        )
    audit = [r for r in caplog.records if r.name == "gate.audit.auth"]
    assert [(r.__dict__["method"], r.__dict__["identity"], r.__dict__["status"]) for r in audit] == [
        ("gate.v1.ScanService/ImportReport", "token:ci-billing", "PERMISSION_DENIED"),
        ("gate.v1.SignatureService/Attest", "token:ci-billing", "PERMISSION_DENIED"),
        ("gate.v1.DecisionService/Decide", "token:ci-billing", "PERMISSION_DENIED"),
        ("gate.v1.ScanService/ListFindings", "token:ci-billing", "PERMISSION_DENIED"),
        ("gate.v1.ScanService/ListFindings", "token:ci-billing", "PERMISSION_DENIED"),
        ("gate.v1.ScanService/GetScan", "token:ci-billing", "PERMISSION_DENIED"),
    ]
    assert all(DIGEST in r.__dict__["reason"] for r in audit)

    # The owning project's pipeline keeps using it; the auditor reads across projects.
    assert findings(gate, "payments").counts.high == 1
    assert findings(gate, "auditor", scan_id=scan.id).counts.high == 1
    assert attest(gate, "payments", "payments").envelope
    assert decide(gate, "payments", "payments").artifact_digests == [DIGEST]

    assert main(["artifact", "bind", DIGEST, "billing"]) == 0
    assert capsys.readouterr().out.strip() == f"{DIGEST}: bound to billing, payments"
    assert import_report(gate, "billing", "billing").artifact_digest == DIGEST
    assert findings(gate, "billing").counts.high == 1
    assert decide(gate, "billing", "billing").artifact_digests == [DIGEST]


def test_a_pipeline_claims_an_unbound_artifact_for_the_project_it_names(projects_gate: RunningGate) -> None:
    gate = projects_gate
    upload = sbom_pb2.UploadSbomRequest(
        artifact=common_pb2.ArtifactRef(digest=DIGEST),
        artifact_kind=common_pb2.ARTIFACT_KIND_IMAGE,
        document=(
            Path(__file__).parents[2] / "assets" / "sbom" / "uploads" / "cyclonedx-1.4.json"
        ).read_bytes(),
        project="billing",
    )
    sbom = rpc(gate, "gate.v1.SbomService/UploadSbom", upload, sbom_pb2.Sbom, "billing")
    read = sbom_pb2.GetSbomRequest(id=sbom.id)
    assert rpc(gate, "gate.v1.SbomService/GetSbom", read, sbom_pb2.Sbom, "billing").artifact_digest == DIGEST
    refused(lambda: rpc(gate, "gate.v1.SbomService/GetSbom", read, sbom_pb2.Sbom, "payments"))
    refused(lambda: import_report(gate, "payments", "payments"))
    # An admin is never refused, and recording under a project does not take the artifact over.
    assert import_report(gate, "admin", "payments").artifact_digest == DIGEST
    refused(lambda: findings(gate, "payments"))


def test_without_authentication_nothing_is_bound(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    config = loopback_config(tmp_path / "data")
    gate = serve_gate(config)
    request = scan_pb2.ImportReportRequest(
        artifact=common_pb2.ArtifactRef(digest=DIGEST),
        artifact_kind=common_pb2.ARTIFACT_KIND_IMAGE,
        scanner="trivy",
        report=REPORT.read_bytes(),
        project="payments",
    )
    gate.call("gate.v1.ScanService/ImportReport", request, scan_pb2.Scan)
    store = open_store(config.effective_database_url)
    try:
        assert store.artifact_projects(DIGEST) == ()
    finally:
        store.close()
