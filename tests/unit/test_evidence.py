"""The evidence document policies read, and the resolver that answers gate's evidence apiCalls."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gate.evidence import (
    DEFAULT_EVIDENCE_URL,
    ArtifactEvidence,
    FindingTally,
    ScanEvidence,
    evidence_document,
    evidence_resolver,
)
from gate.model import (
    AttestationResult,
    FindingKind,
    Sbom,
    SbomFormat,
    Scan,
    ScanState,
    ScanTarget,
    Severity,
    SignatureResult,
    TargetKind,
    Verification,
)
from policies import UNANSWERED, ApiCall, EvaluationError

DIGEST = "sha256:" + "a" * 64
WHEN = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _scan(scan_id: str, scanner: str) -> Scan:
    return Scan(
        id=scan_id,
        artifact_digest=DIGEST,
        scanner=scanner,
        target=ScanTarget(TargetKind.IMAGE, "reg/app:1"),
        state=ScanState.SUCCEEDED,
        created_at=WHEN,
        finished_at=WHEN,
    )


def _evidence() -> ArtifactEvidence:
    trivy = ScanEvidence(
        _scan("s1", "trivy"),
        (
            FindingTally(FindingKind.VULNERABILITY, Severity.CRITICAL, True, 2),
            FindingTally(FindingKind.VULNERABILITY, Severity.CRITICAL, False, 1),
            FindingTally(FindingKind.VULNERABILITY, Severity.HIGH, False, 4),
            FindingTally(FindingKind.MISCONFIGURATION, Severity.MEDIUM, False, 3),
        ),
    )
    gitleaks = ScanEvidence(
        _scan("s2", "gitleaks"), (FindingTally(FindingKind.SECRET, Severity.HIGH, False, 1),)
    )
    sonar = ScanEvidence(
        _scan("s3", "sonarqube"),
        (FindingTally(FindingKind.CODE_SMELL, Severity.LOW, False, 5),),
        quality_gate="ERROR",
    )
    sbom = Sbom("b1", DIGEST, SbomFormat.CYCLONEDX_JSON, "1.6", "gate", WHEN, 120, "sha256:" + "b" * 64)
    verification = Verification(
        "v1",
        DIGEST,
        True,
        WHEN,
        signatures=(SignatureResult(True, "sha256:key"), SignatureResult(False, "other", error="bad")),
        attestations=(
            AttestationResult("https://cyclonedx.org/bom", False, error="subject mismatch"),
            AttestationResult("https://cyclonedx.org/bom", True, "sha256:key"),
        ),
    )
    return ArtifactEvidence(DIGEST, (trivy, gitleaks, sonar), sbom, verification)


def test_the_document_sums_findings_by_kind_severity_and_fix() -> None:
    doc = evidence_document("reg/app:1", _evidence())
    scan = doc["scan"]
    assert scan["present"] is True
    assert scan["ids"] == ["s1", "s2", "s3"]
    assert scan["vulnerabilities"]["critical"] == 3
    assert scan["fixable"]["critical"] == 2
    assert scan["vulnerabilities"]["high"] == 4
    assert scan["fixable"]["high"] == 0
    assert (scan["secrets"], scan["misconfigurations"], scan["code"], scan["findings"]) == (1, 3, 5, 16)
    assert doc["quality_gate"] == {"status": "ERROR"}


def test_the_document_reports_signature_attestations_and_sbom() -> None:
    doc = evidence_document("reg/app:1", _evidence())
    assert doc["digest"] == DIGEST
    assert doc["known"] is True
    assert doc["signature"]["verified"] is True
    assert doc["signature"]["signers"] == ["sha256:key"]
    # A verified attestation of a type wins over a failed one of the same type.
    assert doc["attestations"] == {"https://cyclonedx.org/bom": {"verified": True, "signer": "sha256:key"}}
    assert doc["sbom"]["present"] is True
    assert doc["sbom"]["components"] == 120


def test_an_unknown_image_has_every_key_with_empty_values() -> None:
    doc = evidence_document("reg/unknown:1", None)
    assert doc["digest"] is None
    assert doc["known"] is False
    assert doc["signature"]["verified"] is False
    assert doc["sbom"]["present"] is False
    assert doc["scan"]["present"] is False
    assert doc["scan"]["fixable"]["critical"] == 0
    assert doc["quality_gate"]["status"] == "NONE"


def test_the_resolver_answers_only_the_evidence_url() -> None:
    documents: dict[str, Any] = {"reg/app:1": evidence_document("reg/app:1", _evidence())}
    resolve = evidence_resolver(documents)
    answer = resolve(ApiCall("POST", DEFAULT_EVIDENCE_URL + "/", {"image": "reg/app:1"}))
    assert answer["digest"] == DIGEST
    assert resolve(ApiCall("GET", "https://other.example/v1/evidence", {"image": "x"})) is UNANSWERED
    unknown = resolve(ApiCall("POST", DEFAULT_EVIDENCE_URL, {"image": "reg/other:2"}))
    assert unknown["known"] is False


@pytest.mark.parametrize("data", [{}, {"image": ""}, {"image": 3}])
def test_a_malformed_evidence_request_is_an_evaluation_error(data: dict[str, Any]) -> None:
    resolve = evidence_resolver({})
    with pytest.raises(EvaluationError, match="'image'"):
        resolve(ApiCall("POST", DEFAULT_EVIDENCE_URL, data))


class _AliasStore:
    """The store port as far as tag resolution uses it, counting the look-ups."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.asked: list[str] = []

    def resolve_alias(self, reference: str) -> str | None:
        self.asked.append(reference)
        return self.aliases.get(reference)


def test_a_resolved_tag_is_read_once_and_an_unknown_one_every_time() -> None:
    from gate.evidence import StoreEvidence

    store = _AliasStore()
    evidence = StoreEvidence(store)
    digest = "sha256:" + "c" * 64
    store.aliases["registry.example.com/shop/app:1.0"] = digest
    assert [evidence.digest_of("registry.example.com/shop/app:1.0") for _ in range(3)] == [digest] * 3
    assert store.asked == ["registry.example.com/shop/app:1.0"]
    # Not known yet: asked again, so that a tag recorded a moment later counts at once.
    assert evidence.digest_of("registry.example.com/shop/app:2.0") is None
    store.aliases["registry.example.com/shop/app:2.0"] = digest
    assert evidence.digest_of("registry.example.com/shop/app:2.0") == digest
    assert evidence.digest_of(f"registry.example.com/shop/app@{digest}") == digest
