"""Two gate replicas sharing PostgreSQL give identical decisions, and each sees the other's evidence."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gate._signature_service import SignatureService
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
from gate.pipeline import DecideSubject
from gate.store import open_store
from tests.integration.decisions.test_evidence_rules import _review

REPO = Path(__file__).resolve().parents[3]
POLICIES = [
    REPO / "deployments/policies/kyverno/no-fixable-critical-vulnerabilities",
    REPO / "deployments/policies/kyverno/pod-security-baseline",
]
IMAGE = "registry.example.com/shop/web:3.1"
DIGEST = "sha256:" + "9" * 64
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.postgres


def _replica(url: str, data_dir: Path) -> tuple[Gate, Any]:
    store = open_store(url)
    signer = SignatureService().decision_signer(data_dir)
    # A per-replica evidence cache with a short TTL, as configured by policies.evidence_ttl.
    evidence = StoreEvidence(store, ttl=0.01)
    return Gate(store, policy_sources=POLICIES, evidence=evidence, decision_signer=signer), store


def _scan(store: Any, scan_id: str, created: datetime, critical_fixable: int) -> None:
    scan = Scan(scan_id, DIGEST, "trivy", ScanTarget(TargetKind.IMAGE, IMAGE), ScanState.RUNNING, created)
    store.add_scan(scan)
    zlib = Package("zlib", "1.2", fixed_versions=("1.3",))
    findings = [
        Finding(
            f"c{i}", scan_id, "trivy", FindingKind.VULNERABILITY, f"CVE-2026-{i:04}", "bad", Severity.CRITICAL
        )
        for i in range(critical_fixable)
    ]
    findings = [replace(f, package=zlib, fix_available=True) for f in findings]
    done = replace(
        scan,
        state=ScanState.SUCCEEDED,
        finished_at=created,
        counts=SeverityCounts.of(f.severity for f in findings),
        finding_count=len(findings),
    )
    store.complete_scan(done, findings)


def _outcome(decision: Any) -> tuple[bool, tuple[tuple[str, str, str, str], ...]]:
    return decision.allowed, tuple((r.policy, r.rule, r.outcome.value, r.message) for r in decision.results)


def test_two_replicas_on_one_database_decide_alike_and_see_each_others_evidence(
    postgres_url: str, tmp_path: Path
) -> None:
    first, first_store = _replica(postgres_url, tmp_path / "a")
    second, second_store = _replica(postgres_url, tmp_path / "b")
    try:
        first_store.upsert_artifact(
            Artifact(DIGEST, ArtifactKind.IMAGE, NOW, "registry.example.com/shop/web", (IMAGE,))
        )
        # Evidence recorded through one replica...
        _scan(first_store, "0a1f1e0e-1111-4111-8111-111111111111", NOW, critical_fixable=2)
        review = parse_review(_review(IMAGE))
        a, b = first.review(review), second.review(review)
        assert _outcome(a.decision) == _outcome(b.decision)
        assert a.decision.allowed is False
        assert a.decision.policy_bundle_digest == b.decision.policy_bundle_digest
        subject = DecideSubject(image=IMAGE)
        assert _outcome(first.decide(subject, "deploy", project="shop")) == _outcome(
            second.decide(subject, "deploy", project="shop")
        )
        # ...and a clean rescan recorded through the other reaches both once their caches expire.
        _scan(
            second_store, "0a1f1e0e-2222-4222-8222-222222222222", NOW + timedelta(hours=1), critical_fixable=0
        )
        time.sleep(0.05)
        a, b = first.review(review), second.review(review)
        assert a.decision.allowed is True, a.decision.message
        assert _outcome(a.decision) == _outcome(b.decision)
        # Each decision is in the shared store, verifiable by the replica that did not make it.
        assert first_store.get_decision(b.decision.id) is not None
    finally:
        first_store.close()
        second_store.close()
