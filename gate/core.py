"""The service core: one object shared by the gRPC servicers, the webhook and the CLI.

``Gate`` holds the ports (the evidence store, a clock) and answers requests
with domain values. It knows nothing of gRPC, HTTP or the terminal; adapters
validate their wire formats, call it, and map its errors with their own
status tables. Its methods block (the store is synchronous): async adapters
run them in a worker pool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from gate.errors import InvalidArgument, NotFound
from gate.model import (
    ComponentMatch,
    Decision,
    Page,
    Sbom,
    Scan,
    check_digest,
    check_id,
)
from gate.store import ComponentQuery, DecisionQuery, EvidenceStore, FindingPage, FindingQuery


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ArtifactSelector:
    """An artifact named by digest or by a known alias (exactly one set)."""

    digest: str = ""
    reference: str = ""


class Gate:
    """gate's core operations over its ports."""

    def __init__(self, store: EvidenceStore, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.store = store
        self.clock = clock

    # --- artifacts ---------------------------------------------------------

    def resolve(self, selector: ArtifactSelector, field: str) -> str:
        """Return the digest an artifact selector names.

        Raises:
            InvalidArgument: when neither or a malformed digest is given.
            NotFound: when an alias is unknown.
        """
        if selector.digest:
            return check_digest(selector.digest, f"{field}.digest")
        if selector.reference:
            digest = self.store.resolve_alias(selector.reference)
            if digest is None:
                raise NotFound("artifact reference", selector.reference)
            return digest
        raise InvalidArgument(field, "required: set digest or reference")

    # --- scans -------------------------------------------------------------

    def get_scan(self, scan_id: str) -> Scan:
        """Return a scan by id."""
        check_id(scan_id, "id")
        scan = self.store.get_scan(scan_id)
        if scan is None:
            raise NotFound("scan", scan_id)
        return scan

    def list_findings(self, query: FindingQuery) -> FindingPage:
        """Return a page of findings of a scan or of an artifact's latest scans."""
        if query.scan_id:
            self.get_scan(query.scan_id)
        elif query.artifact_digest:
            if self.store.get_artifact(query.artifact_digest) is None:
                raise NotFound("artifact", query.artifact_digest)
        else:
            raise InvalidArgument("scope", "required: set artifact or scan_id")
        return self.store.list_findings(query)

    # --- SBOMs -------------------------------------------------------------

    def get_sbom(self, sbom_id: str, *, include_document: bool = False) -> tuple[Sbom, bytes | None]:
        """Return an SBOM record and, when asked, its document."""
        check_id(sbom_id, "id")
        sbom = self.store.get_sbom(sbom_id)
        if sbom is None:
            raise NotFound("SBOM", sbom_id)
        document = self.store.get_sbom_document(sbom_id) if include_document else None
        return sbom, document

    def list_sboms(self, artifact_digest: str, page_size: int, page_token: str) -> Page[Sbom]:
        """Return SBOM records, newest first, optionally of one artifact."""
        return self.store.list_sboms(artifact_digest, page_size, page_token)

    def search_components(self, query: ComponentQuery) -> Page[ComponentMatch]:
        """Find components by name or purl across every stored SBOM."""
        if not query.name and not query.purl:
            raise InvalidArgument("name", "set name or purl (both empty)")
        if query.purl and not query.purl.startswith("pkg:"):
            raise InvalidArgument("purl", f"expected a package URL starting with 'pkg:', got {query.purl!r}")
        return self.store.search_components(query)

    # --- decisions -----------------------------------------------------------

    def get_decision(self, decision_id: str) -> Decision:
        """Return a recorded decision."""
        check_id(decision_id, "id")
        decision = self.store.get_decision(decision_id)
        if decision is None:
            raise NotFound("decision", decision_id)
        return decision

    def list_decisions(self, query: DecisionQuery) -> Page[Decision]:
        """Return recorded decisions, newest first."""
        if query.since and query.until and query.since >= query.until:
            raise InvalidArgument(
                "until",
                f"must be after since, got since={query.since.isoformat()} until={query.until.isoformat()}",
            )
        return self.store.list_decisions(query)

    # --- health ----------------------------------------------------------------

    def check_ready(self) -> None:
        """Raise StoreUnavailable unless the store answers."""
        self.store.ping()
