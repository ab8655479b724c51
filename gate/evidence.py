"""The evidence gate holds about an artifact, as the JSON document policies read.

Policies reach evidence through a Kyverno ``apiCall`` context entry whose
``service.url`` is gate's evidence endpoint (:data:`EVIDENCE_PATH` on the
webhook listener)::

    context:
    - name: evidence
      apiCall:
        method: POST
        data:
        - key: image
          value: "{{ element.image }}"
        service:
          url: https://gate.gate-system.svc:8443/v1/evidence

In a cluster Kyverno makes that call; gate, evaluating the same file for a
pipeline or an admission review, answers it from the records it already holds
(:func:`evidence_document`) without a network round trip. One policy file
therefore means the same in both places.

The document (every key always present, so conditions never hit a missing key)::

    image            the reference asked about
    digest           sha256:... or null when gate knows no artifact for it
    known            whether gate holds any record for the artifact
    signature        {verified: bool, verification_id, verified_at, signers: [...]}
    attestations     {<predicateType>: {verified: bool, signer}}
    sbom             {present: bool, id, components, created_at}
    scan             {present: bool, ids: [...], scanners: [...], finished_at,
                      findings, vulnerabilities: {critical, high, medium, low, info, unknown},
                      fixable: {same keys}, secrets, misconfigurations, licenses, code}
    quality_gate     {status: "OK" | "ERROR" | "WARN" | "NONE"}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gate._nonblocking import may_block
from gate.model import CONTROL_CHARACTER, SHA256_DIGEST, FindingKind, Sbom, Scan, Severity, Verification

if TYPE_CHECKING:
    # The engine is imported when a resolver is built, not when the webhook module loads.
    from gate._cache import CacheStats
    from policies import ApiCall, ApiCallResolver

EVIDENCE_PATH = "/v1/evidence"

_SEVERITY_KEYS = {severity: severity.name.lower() for severity in Severity}
# Code-quality kinds (SonarQube, Snyk Code) are reported as one ``code`` total.
_CODE_KINDS = frozenset({FindingKind.CODE, FindingKind.BUG, FindingKind.CODE_SMELL, FindingKind.HOTSPOT})


@dataclass(frozen=True, slots=True)
class FindingTally:
    """Findings of one scan grouped by kind, severity and whether a fix exists."""

    kind: FindingKind
    severity: Severity
    fixable: bool
    count: int


@dataclass(frozen=True)
class ScanEvidence:
    """One completed scan with its finding tallies (immutable once the scan finished)."""

    scan: Scan
    tallies: tuple[FindingTally, ...] = ()
    quality_gate: str = ""


@dataclass(frozen=True)
class ArtifactEvidence:
    """Every record gate holds about one artifact, as read from the store."""

    digest: str
    scans: tuple[ScanEvidence, ...] = ()
    sbom: Sbom | None = None
    verification: Verification | None = None

    @property
    def record_ids(self) -> tuple[str, ...]:
        """Ids of the records a decision used (for the audit trail)."""
        found = [s.scan.id for s in self.scans]
        if self.sbom is not None:
            found.append(self.sbom.id)
        if self.verification is not None:
            found.append(self.verification.id)
        return tuple(found)


def _severity_table() -> dict[str, int]:
    return dict.fromkeys(_SEVERITY_KEYS.values(), 0)


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _scan_part(scans: Sequence[ScanEvidence]) -> dict[str, Any]:
    vulnerabilities = _severity_table()
    fixable = _severity_table()
    totals = {"secrets": 0, "misconfigurations": 0, "licenses": 0, "code": 0, "findings": 0}
    for item in scans:
        for tally in item.tallies:
            totals["findings"] += tally.count
            if tally.kind is FindingKind.VULNERABILITY:
                key = _SEVERITY_KEYS[tally.severity]
                vulnerabilities[key] += tally.count
                if tally.fixable:
                    fixable[key] += tally.count
            elif tally.kind is FindingKind.SECRET:
                totals["secrets"] += tally.count
            elif tally.kind is FindingKind.MISCONFIGURATION:
                totals["misconfigurations"] += tally.count
            elif tally.kind is FindingKind.LICENSE:
                totals["licenses"] += tally.count
            elif tally.kind in _CODE_KINDS:
                totals["code"] += tally.count
    finished = [s.scan.finished_at for s in scans if s.scan.finished_at is not None]
    return {
        "present": bool(scans),
        "ids": [s.scan.id for s in scans],
        "scanners": [s.scan.scanner for s in scans],
        "finished_at": _time(max(finished)) if finished else None,
        "vulnerabilities": vulnerabilities,
        "fixable": fixable,
        **totals,
    }


def _quality_gate(scans: Iterable[ScanEvidence]) -> str:
    statuses = [s.quality_gate for s in scans if s.quality_gate]
    if not statuses:
        return "NONE"
    # Several analyses: the worst status stands for all.
    for status in ("ERROR", "WARN", "OK"):
        if status in statuses:
            return status
    return statuses[0]


def evidence_document(image: str, evidence: ArtifactEvidence | None) -> dict[str, Any]:
    """The evidence JSON for ``image`` (see the module documentation for its shape)."""
    verification = evidence.verification if evidence is not None else None
    sbom = evidence.sbom if evidence is not None else None
    scans = evidence.scans if evidence is not None else ()
    attestations: dict[str, dict[str, Any]] = {}
    if verification is not None:
        for attestation in verification.attestations:
            current = attestations.get(attestation.predicate_type)
            # One verified attestation of a type is enough; keep the verified one.
            if current is None or (attestation.verified and not current["verified"]):
                attestations[attestation.predicate_type] = {
                    "verified": attestation.verified,
                    "signer": attestation.signer,
                }
    return {
        "image": image,
        "digest": evidence.digest if evidence is not None else None,
        "known": evidence is not None and bool(evidence.record_ids),
        "signature": {
            "verified": bool(verification is not None and verification.verified),
            "verification_id": verification.id if verification is not None else None,
            "verified_at": _time(verification.verified_at) if verification is not None else None,
            "signers": [s.signer for s in verification.signatures if s.verified]
            if verification is not None
            else [],
        },
        "attestations": attestations,
        "sbom": {
            "present": sbom is not None,
            "id": sbom.id if sbom is not None else None,
            "components": sbom.component_count if sbom is not None else 0,
            "created_at": _time(sbom.created_at) if sbom is not None else None,
        },
        "scan": _scan_part(scans),
        "quality_gate": {"status": _quality_gate(scans)},
    }


def request_image(data: Mapping[str, Any]) -> str:
    """The image an evidence request names (``{"image": ...}``), checked.

    Raises:
        ValueError: the request has no non-empty string ``image``.
    """
    image = data.get("image")
    if not isinstance(image, str) or not image.strip():
        got = type(image).__name__ if image is not None else "nothing"
        raise ValueError(f"expected 'image' to be a non-empty string, got {got}")
    return image.strip()


DEFAULT_EVIDENCE_URL = "https://gate.gate-system.svc:8443" + EVIDENCE_PATH


def _normal_url(url: str) -> str:
    return url.strip().rstrip("/").lower()


def evidence_resolver(
    documents: Mapping[str, Mapping[str, Any]],
    *,
    urls: Iterable[str] = (DEFAULT_EVIDENCE_URL,),
    missing: Callable[[str], Mapping[str, Any]] | None = None,
) -> ApiCallResolver:
    """An apiCall resolver answering calls to gate's evidence URL(s) from prefetched documents.

    Args:
        documents: evidence documents by image reference, fetched before evaluation (one
            batched store read per request, never a read per rule).
        urls: the URLs policies use for gate's evidence endpoint; other calls stay unanswered.
        missing: builds the document for an image not prefetched (an image computed by a
            policy expression); None answers with the "unknown artifact" document.
    """
    from policies import UNANSWERED, EvaluationError

    served = frozenset(_normal_url(u) for u in urls)

    def resolve(call: ApiCall) -> Any:
        if _normal_url(call.url) not in served:
            return UNANSWERED
        try:
            image = request_image(call.data)
        except ValueError as error:
            raise EvaluationError(f"evidence request: {error}") from None
        document = documents.get(image)
        if document is not None:
            return document
        return missing(image) if missing is not None else evidence_document(image, None)

    return resolve


def alias_digest(store: Any, image: str) -> str | None:
    """The digest ``store`` holds for an image reference used as an alias: as written, else normalised.

    Evidence is recorded under the reference a pipeline gave (``app:1.0``) or under its
    normalised form (``docker.io/library/app:1.0``); a lookup must find either.
    """
    found = store.resolve_alias(image)
    if found is None:
        from policies._images import parse_image  # the engine is imported on first use

        normalised = parse_image(image)["reference"]
        if normalised != image:
            found = store.resolve_alias(normalised)
    return None if found is None else str(found)


class StoreEvidence:
    """The evidence of images, read from the evidence store and cached per replica.

    Records of one artifact are read together and kept for ``ttl`` seconds (a new scan or
    verification shows up within that time); finding tallies and quality gates of completed
    scans never change and are kept until evicted. Concurrent reviews of one image share a
    single read.

    Args:
        store: the evidence store port.
        urls: the evidence endpoint URLs policies call (answered in process).
        image_verifier: checks ``verifyImages`` rules (policies.ImageVerifier), if any.
    """

    def __init__(
        self,
        store: Any,
        *,
        urls: Iterable[str] = (DEFAULT_EVIDENCE_URL,),
        image_verifier: Any = None,
        ttl: float = 10.0,
        max_entries: int = 10_000,
    ) -> None:
        from gate._cache import SharedCache

        self._store = store
        self.urls = tuple(urls)
        self.image_verifier = image_verifier
        self._artifacts: SharedCache[str, tuple[ArtifactEvidence | None]] = SharedCache(
            max_entries=max_entries, ttl=ttl
        )
        # Completed scans are immutable: a long TTL only bounds memory.
        self._scans: SharedCache[str, ScanEvidence] = SharedCache(max_entries=max_entries, ttl=24 * 3600.0)
        # Tags gate resolved (a decision asks for each image's digest two or three times). Only
        # found digests are kept: a tag recorded a moment ago must count at once, and one that
        # moves to another digest is followed within ``ttl``, as the artifacts' records are.
        self._aliases: SharedCache[str, str] = SharedCache(max_entries=max_entries, ttl=ttl)

    def digest_of(self, image: str) -> str | None:
        """The digest an image reference names: its own, or the artifact an alias points at."""
        if "@" in image:
            digest = image.rsplit("@", 1)[1]
            return digest if SHA256_DIGEST.fullmatch(digest) else None
        cached = self._aliases.get(image)
        if cached is not None:
            return cached
        # No alias gate stores can hold one; PostgreSQL refuses a NUL even as a query parameter.
        if CONTROL_CHARACTER.search(image) is not None:
            return None
        may_block("the digest of a tag")
        found = alias_digest(self._store, image)
        if found is not None:
            self._aliases.put(image, found)
        return found

    def cache_stats(self) -> dict[str, CacheStats]:
        """Counters of the per-replica caches: artifacts' evidence, completed scans, resolved tags."""
        return {
            "evidence": self._artifacts.stats(),
            "evidence_scans": self._scans.stats(),
            "evidence_aliases": self._aliases.stats(),
        }

    def artifact(self, digest: str) -> ArtifactEvidence | None:
        """Every record gate holds about ``digest`` (None when it holds none)."""
        return self._artifacts.get_or_compute(digest, lambda: (self._read(digest),))[0]

    def _read(self, digest: str) -> ArtifactEvidence | None:
        scans = tuple(s for s in self._store.latest_scans(digest))
        missing = [s.id for s in scans if self._scans.get(s.id) is None]
        tallies = self._store.finding_tallies(missing) if missing else {}
        evidence_scans = []
        for scan in scans:
            cached = self._scans.get(scan.id)
            if cached is None:
                groups = tuple(
                    FindingTally(FindingKind(kind), Severity(severity), fixable, count)
                    for kind, severity, fixable, count in tallies.get(scan.id, ())
                )
                cached = ScanEvidence(scan, groups, self._quality_gate(scan))
                self._scans.put(scan.id, cached)
            evidence_scans.append(cached)
        sboms = self._store.list_sboms(digest, 1, "")
        sbom = sboms.items[0] if sboms.items else None
        verification = self._store.latest_verification(digest)
        if not evidence_scans and sbom is None and verification is None:
            return None
        return ArtifactEvidence(digest, tuple(evidence_scans), sbom, verification)

    def _quality_gate(self, scan: Scan) -> str:
        if scan.scanner != "sonarqube":
            return ""
        report = self._store.get_scan_report(scan.id)
        if report is None:
            return ""
        import os

        from scanners.reports import parse_report

        try:
            # The stored report is already redacted; only its quality gate is read here.
            parsed = parse_report(report.format, report.data, secret_key=os.urandom(32))
        except Exception:
            return ""
        return parsed.quality_gate.status if parsed.quality_gate is not None else ""

    def documents(self, images: Iterable[str]) -> tuple[dict[str, dict[str, Any]], tuple[str, ...]]:
        """Evidence documents by image, and the ids of the records they rest on."""
        documents: dict[str, dict[str, Any]] = {}
        ids: list[str] = []
        for image in images:
            digest = self.digest_of(image)
            evidence = self.artifact(digest) if digest is not None else None
            if evidence is None and digest is not None:
                evidence = ArtifactEvidence(digest)
            documents[image] = evidence_document(image, evidence)
            if evidence is not None:
                ids.extend(evidence.record_ids)
        return documents, tuple(dict.fromkeys(ids))

    def document(self, image: str) -> dict[str, Any]:
        """The evidence document of one image (what the evidence endpoint answers)."""
        return self.documents([image])[0][image]

    def for_resources(self, resources: Sequence[Mapping[str, Any]]) -> Any:
        """The evidence context for rules evaluated on ``resources``.

        Nothing is read until a rule asks: a bundle without evidence rules costs no store
        read on the admission path. Each image is read once per decision (and cached per
        replica); the ids of the records read are collected for the decision record.
        """
        from gate.decisions import Evidence

        used: list[str] = []
        seen: dict[str, dict[str, Any]] = {}

        def lookup(image: str) -> dict[str, Any]:
            document = seen.get(image)
            if document is None:
                documents, ids = self.documents([image])
                document = seen[image] = documents[image]
                used.extend(ids)
            return document

        resolver = evidence_resolver({}, urls=self.urls, missing=lookup)
        return Evidence(api_calls=resolver, image_verifier=self.image_verifier, used=used)

    def for_review(self, review: Any) -> Any:
        """The evidence context of an AdmissionReview (its object's images)."""
        admission = review.admission
        obj = admission.object or admission.old_object or {}
        return self.for_resources([obj])
