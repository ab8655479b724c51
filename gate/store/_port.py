"""The evidence store port: what the core needs from persistence."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from gate.model import (
    Artifact,
    Component,
    ComponentMatch,
    Decision,
    Finding,
    FindingKind,
    Page,
    Sbom,
    Scan,
    Severity,
    SeverityCounts,
    Verification,
)

if TYPE_CHECKING:
    from gate.waivers import Waiver

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class FindingQuery:
    """Which findings to list: of one scan, or of an artifact's latest scans.

    Exactly one of ``scan_id`` and ``artifact_digest`` is set. For an artifact
    the findings are those of its latest succeeded scan per scanner.
    """

    scan_id: str = ""
    artifact_digest: str = ""
    min_severity: Severity = Severity.UNKNOWN
    kinds: frozenset[FindingKind] = frozenset()
    page_size: int = DEFAULT_PAGE_SIZE
    page_token: str = ""


@dataclass(frozen=True, slots=True)
class FindingPage:
    """A page of findings (most severe first) and counts over the whole result."""

    findings: tuple[Finding, ...]
    counts: SeverityCounts
    next_token: str = ""


@dataclass(frozen=True, slots=True)
class ScanReport:
    """A scanner's raw report as stored (secrets already redacted by the parser).

    ``format`` is the report's format name (``trivy``, ``gitleaks``, ``sarif``, ...).
    """

    format: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ComponentQuery:
    """Components to find across SBOMs: by name (``*`` wildcards, any case) or purl prefix.

    ``versions``, when set, keeps only components for which it returns True
    given their ecosystem (purl type, ``""`` without a purl) and their
    normalised version (see :func:`gate.sbom._purl_key.normalise`).
    """

    name: str = ""
    purl: str = ""
    page_size: int = DEFAULT_PAGE_SIZE
    page_token: str = ""
    versions: Callable[[str, str], bool] | None = None
    # What ``versions`` was made from (the range's text): page tokens are bound to it.
    versions_key: str = ""


@dataclass(frozen=True, slots=True)
class NewSbom:
    """An SBOM to store: its record, its document (stored compressed) and its component index."""

    sbom: Sbom
    document: bytes
    components: Sequence[Component]


@dataclass(frozen=True, slots=True)
class DecisionQuery:
    """Filters for listing decisions, newest first."""

    artifact_digest: str = ""
    allowed: bool | None = None
    stage: str = ""
    since: datetime | None = None
    until: datetime | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    page_token: str = ""


class EvidenceStore(Protocol):
    """Persistence of artifacts and the evidence gate holds about them.

    Implementations raise :class:`gate.errors.StoreUnavailable` when the
    backend fails (never a driver exception), :class:`gate.errors.Conflict`
    on a duplicate id, and :class:`gate.errors.InvalidArgument` for a bad
    page token. Lookups of unknown ids return ``None``.
    """

    @property
    def inline_reads(self) -> bool:
        """True when point lookups by id finish in microseconds without network I/O.

        An event loop may then run them inline instead of handing them to a
        worker thread (a hop that costs more than the lookup itself).
        """

    def close(self) -> None:
        """Release connections."""

    def ping(self) -> None:
        """Raise StoreUnavailable unless the backend answers."""

    # artifacts
    def upsert_artifact(self, artifact: Artifact) -> Artifact:
        """Record an artifact, merging aliases with any stored ones; return the stored form."""

    def get_artifact(self, digest: str) -> Artifact | None:
        """Return the artifact with this digest."""

    def resolve_alias(self, reference: str) -> str | None:
        """Return the digest an alias points at."""

    # scans and findings
    def add_scan(self, scan: Scan) -> None:
        """Record a new scan (its artifact must exist)."""

    def update_scan(self, scan: Scan) -> None:
        """Replace the stored state of an existing scan."""

    def complete_scan(
        self, scan: Scan, findings: Sequence[Finding], report: ScanReport | None = None
    ) -> None:
        """Store a scan's findings, its raw report and its terminal state in one transaction."""

    def get_scan_report(self, scan_id: str) -> ScanReport | None:
        """Return a scan's stored raw report."""

    def touch_scans(self, scan_ids: Sequence[str], now: datetime) -> None:
        """Refresh the heartbeat of queued or running scans (the lease of the gate running them)."""

    def fail_stale_scans(self, stale_before: datetime, reason: str, now: datetime) -> tuple[str, ...]:
        """Fail every queued or running scan whose heartbeat is older than ``stale_before``.

        The gate that ran such a scan stopped (a crash, a restart, a lost
        node): the scan can never finish and must not be left looking alive.
        Returns the ids of the scans failed.
        """

    def get_scan(self, scan_id: str) -> Scan | None:
        """Return one scan."""

    def latest_scans(self, artifact_digest: str) -> tuple[Scan, ...]:
        """Return the latest succeeded scan per scanner of an artifact."""

    def list_findings(self, query: FindingQuery) -> FindingPage:
        """Return a page of findings."""

    # SBOMs
    def add_sbom(self, sbom: Sbom, document: bytes, components: Sequence[Component]) -> None:
        """Store an SBOM, its document and its components."""

    def add_sboms(self, items: Sequence[NewSbom]) -> None:
        """Store several SBOMs in one transaction (the bulk path: imports, benchmarks)."""

    def get_sbom(self, sbom_id: str) -> Sbom | None:
        """Return one SBOM's record."""

    def get_sbom_document(self, sbom_id: str) -> bytes | None:
        """Return one SBOM's document bytes."""

    def sbom_components(self, sbom_id: str) -> tuple[Component, ...]:
        """Return the components of one SBOM."""

    def list_sboms(
        self, artifact_digest: str = "", page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> Page[Sbom]:
        """Return SBOM records, newest first."""

    def search_components(self, query: ComponentQuery) -> Page[ComponentMatch]:
        """Find components across every stored SBOM."""

    # verifications
    def add_verification(self, verification: Verification) -> None:
        """Record a verification."""

    def get_verification(self, verification_id: str) -> Verification | None:
        """Return one verification."""

    def latest_verification(self, artifact_digest: str) -> Verification | None:
        """Return the newest verification of an artifact."""

    def add_policy_bundle(self, digest: str, documents: Sequence[Mapping[str, Any]], now: datetime) -> None:
        """Keep a policy bundle's documents under its digest (idempotent)."""

    def get_policy_bundle(self, digest: str) -> list[dict[str, Any]] | None:
        """The documents of a kept policy bundle."""

    def finding_tallies(self, scan_ids: Sequence[str]) -> dict[str, list[tuple[str, int, bool, int]]]:
        """``(kind, severity, fix_available, count)`` groups of each scan's findings."""

    # decisions
    def add_decision(self, decision: Decision) -> None:
        """Record a decision."""

    def add_decisions(self, batch: Sequence[Decision]) -> None:
        """Record several decisions in one transaction (all or none)."""

    def get_decision(self, decision_id: str) -> Decision | None:
        """Return one decision."""

    def list_decisions(self, query: DecisionQuery) -> Page[Decision]:
        """Return decisions, newest first."""

    # waivers (gate.waivers)
    def add_waiver(self, waiver: Waiver) -> None:
        """Record a new waiver (Conflict when the id exists)."""

    def get_waiver(self, waiver_id: str) -> Waiver | None:
        """Return one waiver, revoked and expired ones included."""

    def list_waivers(self, *, active_at: datetime | None = None, policy: str = "") -> list[Waiver]:
        """Waivers, soonest expiry first; with ``active_at`` only those in force then."""

    def revoke_waiver(self, waiver_id: str, *, revoked_by: str, revoked_at: datetime) -> Waiver:
        """Revoke a waiver and return it (NotFound; Conflict when already revoked)."""

    # artifact projects (gate.server._authz holds pipeline identities to them)
    def artifact_projects(self, digest: str) -> tuple[str, ...]:
        """The projects ``digest`` is bound to, sorted (empty when unbound)."""

    def bind_artifact(self, digest: str, project: str, *, bound_by: str, now: datetime) -> bool:
        """Bind ``digest`` to ``project`` too (idempotent); True when it was bound to another project."""

    def claim_artifact(self, digest: str, project: str, *, bound_by: str, now: datetime) -> tuple[str, ...]:
        """Bind ``digest`` to ``project`` only if it has no binding; return its projects afterwards."""

    def unbind_artifact(self, digest: str, project: str) -> bool:
        """Remove the binding of ``digest`` to ``project``; return whether there was one."""
