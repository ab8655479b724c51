"""The deployment's evidence policies, as written for Kyverno, decide admission from gate's store.

The policy files under deployments/policies/kyverno/ call gate's evidence endpoint through a
Kyverno apiCall; gate answers those calls in process from its records. A Pod whose image has a
recorded scan with a fixable critical vulnerability is denied with the policy's message, the
same Pod is allowed once a clean scan is recorded, and the HTTP endpoint Kyverno calls returns
the same document.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gate.core import Gate
from gate.decisions import parse_review
from gate.evidence import StoreEvidence
from gate.model import (
    Artifact,
    ArtifactKind,
    Finding,
    FindingKind,
    Package,
    Scan,
    ScanState,
    ScanTarget,
    Severity,
    SeverityCounts,
    TargetKind,
)
from gate.store import open_store

REPO = Path(__file__).resolve().parents[3]
POLICY = REPO / "deployments/policies/kyverno/no-fixable-critical-vulnerabilities"
IMAGE = "registry.example/team/app:1.4.2"
DIGEST = "sha256:" + "4" * 64
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _review(image: str) -> bytes:
    return json.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "0f6c1a2e-7f4e-4a5e-9a0c-6c1b2d3e4f50",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "shop",
                "operation": "CREATE",
                "userInfo": {"username": "system:serviceaccount:shop:deployer"},
                "object": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "web", "namespace": "shop"},
                    "spec": {"containers": [{"name": "web", "image": image}]},
                },
            },
        }
    ).encode()


def _scan(scan_id: str, created: datetime) -> Scan:
    return Scan(
        id=scan_id,
        artifact_digest=DIGEST,
        scanner="trivy",
        target=ScanTarget(TargetKind.IMAGE, IMAGE),
        state=ScanState.RUNNING,
        created_at=created,
        started_at=created,
    )


def _record_scan(store: Any, scan_id: str, created: datetime, findings: list[Finding]) -> None:
    scan = _scan(scan_id, created)
    store.add_scan(scan)
    done = replace(
        scan,
        state=ScanState.SUCCEEDED,
        finished_at=created + timedelta(seconds=5),
        counts=SeverityCounts.of(f.severity for f in findings),
        finding_count=len(findings),
    )
    store.complete_scan(done, [replace(f, scan_id=scan_id) for f in findings])


@pytest.fixture
def gate(tmp_path: Path) -> Any:
    store = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    store.upsert_artifact(Artifact(DIGEST, ArtifactKind.IMAGE, NOW, "registry.example/team/app", (IMAGE,)))
    # ttl: every review reads the store afresh, so the test sees each new scan at once.
    core = Gate(store, policy_sources=[POLICY], evidence=StoreEvidence(store, ttl=1e-6))
    yield core, store
    store.close()


def test_a_fixable_critical_denies_with_the_policy_message_and_a_clean_rescan_allows(gate: Any) -> None:
    core, store = gate
    critical = Finding(
        fingerprint="f1",
        scan_id="",
        scanner="trivy",
        kind=FindingKind.VULNERABILITY,
        rule_id="CVE-2026-0001",
        title="openssl: remote code execution",
        severity=Severity.CRITICAL,
        package=Package("openssl", "3.0.1", fixed_versions=("3.0.15",)),
        fix_available=True,
    )
    _record_scan(store, "5d1f1e0e-1111-4111-8111-111111111111", NOW, [critical])
    denied = core.review(parse_review(_review(IMAGE)))
    assert denied.decision.allowed is False
    assert "has 1" in denied.decision.message
    assert "critical vulnerabilities with a fixed version available" in denied.decision.message
    assert "5d1f1e0e-1111-4111-8111-111111111111" in denied.decision.evidence_ids

    _record_scan(store, "5d1f1e0e-2222-4222-8222-222222222222", NOW + timedelta(hours=1), [])
    allowed = core.review(parse_review(_review(IMAGE)))
    assert allowed.decision.allowed is True, allowed.decision.message


def test_an_image_gate_never_scanned_is_denied_for_missing_evidence(gate: Any) -> None:
    core, _ = gate
    outcome = core.review(parse_review(_review("registry.example/team/unknown:9")))
    assert outcome.decision.allowed is False
    assert "has no scan recorded in gate" in outcome.decision.message


def test_the_evidence_endpoint_document_is_what_the_policy_reads(gate: Any) -> None:
    core, store = gate
    _record_scan(store, "5d1f1e0e-3333-4333-8333-333333333333", NOW, [])
    document = core.evidence_document(IMAGE)
    assert document["digest"] == DIGEST
    assert document["scan"]["present"] is True
    assert document["scan"]["fixable"]["critical"] == 0
    pinned = core.evidence_document(f"registry.example/team/app@{DIGEST}")
    assert pinned["scan"]["ids"] == document["scan"]["ids"]
