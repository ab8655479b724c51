"""The service core: one object shared by the gRPC servicers, the webhook and the CLI.

``Gate`` holds the ports (the evidence store, a clock) and answers requests
with domain values. It knows nothing of gRPC, HTTP or the terminal; adapters
validate their wire formats, call it, and map its errors with their own
status tables. Its methods block (the store is synchronous): async adapters
run them in a worker pool.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from time import perf_counter
from typing import TYPE_CHECKING, Any

from gate._cache import SharedCache
from gate._git import git_head
from gate._nonblocking import WouldBlock
from gate._signature_service import DecisionSigner, SignatureService
from gate.config import Config, RegistrySettings, SbomSettings
from gate.errors import (
    ConfigError,
    EvidenceError,
    GateError,
    InfrastructureError,
    InvalidArgument,
    NotFound,
    Unsupported,
)
from gate.evidence import StoreEvidence
from gate.model import (
    CONTROL_CHARACTER,
    Artifact,
    ArtifactKind,
    ComponentMatch,
    Decision,
    DecisionTimings,
    Page,
    RuleOutcome,
    Sbom,
    SbomFormat,
    Scan,
    ScanState,
    ScanTarget,
    TargetKind,
    check_digest,
    check_id,
    new_decision,
    new_decision_timings,
    new_rule_result,
)
from gate.scan_jobs import ScanJobs
from gate.waivers import DEFAULT_MAX_DAYS, Waiver, WaiverCache, new_waiver, recorded_waivers

if TYPE_CHECKING:
    from gate.audit import DecisionCheck, Replay
    from gate.decisions import (
        AdmissionReview,
        AdmissionSettings,
        Answered,
        DecisionRecorder,
        Evidence,
        EvidenceSource,
        Failure,
        ReplayGuard,
        ReviewOutcome,
    )
    from gate.model import Verification
    from gate.pipeline import DecideSubject
    from gate.sbom import Subject
    from gate.sbom._diff import SbomDiff
    from gate.sbom._generators import SbomTarget
    from gate.sbom._licence_summary import LicenceSummary
    from gate.signatures._image import ImageVerification
    from gate.verification import VerifyRequest
    from policies import PolicyBundle
    from policies._kyverno_test import SuiteReport

from gate.store import ComponentQuery, DecisionQuery, EvidenceStore, FindingPage, FindingQuery
from scanners import resolve_local_path

_log = logging.getLogger("gate.decisions")

# The decision and policy modules are imported inside the methods that use them: `import
# gate.core` (every `gate` command) must not load the policy engine. A module that is not a
# package is imported as `from gate import pipeline`, not `from gate.pipeline import name`: the
# latter makes CPython 3.11 raise and clear two AttributeErrors each time it runs (its lookup of
# the module's `__path__`), ~0.5 us.


# Warnings of one SBOM generation passed on to the caller: a tree of broken package databases
# could give thousands, and each rides on the stream's last message.
MAX_SBOM_WARNINGS = 100


def _never() -> bool:
    return False


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ArtifactSelector:
    """An artifact named by digest or by a known alias (exactly one set)."""

    digest: str = ""
    reference: str = ""


class Gate:
    """gate's core operations over its ports.

    ``scans`` runs scanner providers; without it (no providers configured in
    this process) starting or importing scans is Unsupported.
    """

    def __init__(
        self,
        store: EvidenceStore,
        *,
        clock: Callable[[], datetime] = utc_now,
        scans: ScanJobs | None = None,
        policy_sources: Sequence[Path] = (),
        local_root: Path | None = None,
        admission: AdmissionSettings | None = None,
        recorder: DecisionRecorder | None = None,
        evidence: EvidenceSource | None = None,
        sbom: SbomSettings | None = None,
        registry: RegistrySettings | None = None,
        signatures: SignatureService | None = None,
        decision_signer: DecisionSigner | None = None,
        waiver_max_days: int = DEFAULT_MAX_DAYS,
        waiver_ttl: float = 10.0,
        replays: ReplayGuard | None = None,
        artifact_ttl: float = 10.0,
    ) -> None:
        """Build the core; loads the policies of ``policy_sources``.

        ``admission`` sets the review budget and failure mode (default 2 s,
        fail-closed); ``recorder`` records decisions off the request path
        (without one they are written synchronously); ``evidence`` supplies the
        context admission rules read (without one they see none); ``replays``
        remembers answered review uids (retries get the same answer, changed
        replays are refused; without one every review is evaluated).
        ``artifact_ttl``: seconds an artifact's name, looked up by digest, is reused.

        Raises:
            PolicyLoadError: a policy file is malformed (file, line and field path named).
        """
        self.admission = admission
        self.replays = replays
        # SBOM generators and how registry images are fetched for them.
        self.sbom_settings = sbom or SbomSettings()
        self.registry_settings = registry or RegistrySettings()
        self.recorder = recorder
        # Registry client, trust root, verification cache and signing key, built on first use.
        self.signatures = signatures or SignatureService(registry=self.registry_settings)
        # Signs decisions recorded without a recorder (the CLI's local mode); None: unsigned.
        self.decision_signer = decision_signer
        # Digests of the policy bundles this process has kept in the store for replays.
        self._kept_bundles: set[str] = set()
        # The current bundle's policies by stage (see _stage_policies).
        self._stage_cache: tuple[PolicyBundle | None, dict[str, tuple[str, ...]]] = (None, {})
        # Called with every recorded decision on the caller's thread (metrics, notifications):
        # each must return at once.
        self.decision_listeners: list[Callable[[Decision], None]] = []
        # Why the last reload failed and when (the previous bundle stayed in force); None after a success.
        self.policy_reload_error: tuple[str, datetime] | None = None
        # Called with every bundle reload_policies put in force (worker processes reload with it).
        self.policy_listeners: list[Callable[[PolicyBundle], None]] = []
        # What rules read about images: the store's records, and the registry for verifyImages.
        self.evidence: EvidenceSource = evidence or StoreEvidence(store, image_verifier=self.signatures)
        self.store = store
        self.clock = clock
        self.scans = scans
        self.policy_sources = tuple(policy_sources)
        # Waivers in force, read from the store at most once per waiver_ttl seconds.
        self.waivers = WaiverCache(store, ttl=waiver_ttl)
        # Names of artifacts asked for by digest (a pipeline's Decide of sha256:...). Cached so
        # that such a Decide answers on the event loop instead of moving to a worker thread for
        # one store read; only found names, so that an artifact recorded a moment ago counts.
        self._artifact_names: SharedCache[str, str] = SharedCache(max_entries=10_000, ttl=artifact_ttl)
        self.waiver_max_days = waiver_max_days
        # Local targets (scans, SBOM generation) must lie under this directory when set.
        self.local_root = local_root
        # With no sources the engine is imported on first use (~0.1 s off every start).
        self._policies: PolicyBundle | None = (
            _load_policies(self.policy_sources) if self.policy_sources else None
        )

    @classmethod
    def from_config(
        cls,
        config: Config,
        store: EvidenceStore,
        scans: ScanJobs | None,
        *,
        recorder: DecisionRecorder | None = None,
        signatures: SignatureService | None = None,
        decision_signer: DecisionSigner | None = None,
    ) -> Gate:
        """The core for ``config``, over an opened store, scan runner and decision recorder.

        ``signatures`` and ``decision_signer`` are built from ``config`` unless the caller (the
        server, which signs with the same key in its recorder) passes its own.

        Raises:
            ConfigError: a policy source does not load (the file, line and field are named).
        """
        from gate.decisions import AdmissionSettings, FailureMode, ReplayGuard
        from gate.evidence import StoreEvidence

        admission = AdmissionSettings(config.webhook.budget, FailureMode(config.webhook.failure_mode))
        webhook = config.webhook
        replays = (
            ReplayGuard(webhook.replay_window, webhook.replay_capacity) if webhook.replay_window else None
        )
        if signatures is None:
            signatures = SignatureService(config.signatures, config.registry, kubernetes=config.kubernetes)
        evidence = StoreEvidence(
            store,
            urls=config.policies.evidence_urls,
            image_verifier=signatures,
            ttl=config.policies.evidence_ttl,
        )
        try:
            return cls(
                store,
                scans=scans,
                policy_sources=config.policies.sources,
                local_root=config.scanning.root,
                admission=admission,
                replays=replays,
                recorder=recorder,
                evidence=evidence,
                sbom=config.sbom,
                registry=config.registry,
                signatures=signatures,
                decision_signer=decision_signer or signatures.decision_signer(config.data_dir),
                waiver_max_days=config.policies.waiver_max_days,
                waiver_ttl=config.policies.waiver_ttl,
                artifact_ttl=config.policies.evidence_ttl,
            )
        except EvidenceError as error:
            # Only a loaded engine can raise this, so importing it here costs nothing.
            from policies import PolicyLoadError

            if not isinstance(error, PolicyLoadError):
                raise
            raise ConfigError("configuration", "policies.sources", error.message) from None

    # --- artifacts ---------------------------------------------------------

    def artifact_name(self, digest: str) -> str:
        """The name gate recorded for the artifact ``digest`` ("" when it holds none or no name).

        Served from a per-replica cache for ``policies.evidence_ttl`` seconds once found.
        """
        cached = self._artifact_names.get(digest)
        if cached is not None:
            return cached
        artifact = self.store.get_artifact(digest)
        if artifact is None or not artifact.name:
            return ""
        self._artifact_names.put(digest, artifact.name)
        return artifact.name

    def resolve(self, selector: ArtifactSelector, field: str) -> str:
        """Return the digest an artifact selector names.

        Raises:
            InvalidArgument: when neither or a malformed digest is given.
            NotFound: when an alias is unknown.
        """
        if selector.digest:
            return check_digest(selector.digest, f"{field}.digest")
        if selector.reference:
            _check_text(selector.reference, f"{field}.reference", "an image reference or alias")
            digest = self.store.resolve_alias(selector.reference)
            if digest is None:
                raise NotFound("artifact reference", selector.reference)
            return digest
        raise InvalidArgument(field, "required: set digest or reference")

    def ensure_artifact(
        self, selector: ArtifactSelector, field: str, kind: ArtifactKind | None, name: str
    ) -> str:
        """Return the digest a selector names, recording a new digest as an artifact of ``kind``.

        Raises:
            InvalidArgument: a new digest without a kind, or a malformed digest.
            NotFound: an unknown alias.
        """
        digest = self.resolve(selector, field)
        _check_text(name, f"{field}_name", "a repository name")
        if selector.digest and self.store.get_artifact(digest) is None:
            if kind is None:
                raise InvalidArgument(
                    f"{field}_kind", f"required for an artifact gate does not know yet ({digest})"
                )
            self.store.upsert_artifact(Artifact(digest=digest, kind=kind, first_seen=self.clock(), name=name))
        return digest

    # --- scans -------------------------------------------------------------

    def _jobs(self) -> ScanJobs:
        if self.scans is None:
            raise Unsupported("scanner runs", "this gate process has no scan runner")
        return self.scans

    def start_scan(
        self,
        selector: ArtifactSelector,
        target: ScanTarget,
        scanners: Sequence[str],
        options: Mapping[str, str],
    ) -> tuple[Scan, ...]:
        """Queue scans of ``target`` as evidence for the selected artifact."""
        jobs = self._jobs()
        if not target.location:
            raise InvalidArgument("target.location", "required, got an empty string")
        kind = ArtifactKind.SOURCE if selector.digest.startswith("git:") else _kind_of_target(target)
        digest = self.ensure_artifact(selector, "artifact", kind, "")
        return jobs.start(digest, target, scanners, options)

    def import_report(
        self,
        selector: ArtifactSelector,
        *,
        tool: str,
        report: bytes,
        target: ScanTarget | None,
        kind: ArtifactKind | None,
        name: str,
    ) -> Scan:
        """Store a report a pipeline produced as a completed scan of the selected artifact."""
        jobs = self._jobs()
        if not report:
            raise InvalidArgument("report", "required, got an empty report")
        parsed = jobs.parse(tool, report, source="report")
        if kind is None:
            kind = _kind_of_report(selector, parsed.artifact.type)
        digest = self.ensure_artifact(selector, "artifact", kind, name or parsed.artifact.name)
        now = self.clock()
        location = target.location if target else parsed.artifact.name
        scan = Scan(
            id=str(uuid.uuid4()),
            artifact_digest=digest,
            scanner=parsed.tool,
            scanner_version=parsed.tool_version,
            target=target or ScanTarget(_target_of_report(parsed.artifact.type), location),
            state=ScanState.RUNNING,
            created_at=now,
            started_at=now,
            imported=True,
        )
        self.store.add_scan(scan)
        try:
            return jobs.record(scan, tool, parsed)
        except Exception as error:
            # No job or lease watches an imported scan: left running, it would stay so for good.
            reason = error.message if isinstance(error, GateError) else "an internal error (see the gate log)"
            failed = replace(
                scan,
                state=ScanState.FAILED,
                error=f"the report was not stored: {reason}",
                finished_at=self.clock(),
            )
            try:
                self.store.complete_scan(failed, [])
            except GateError as second:
                _log.error("imported scan %s could not be marked failed: %s", scan.id, second.message)
            raise

    def cancel_scan(self, scan_id: str) -> Scan:
        """Ask a queued or running scan to stop; return its state now.

        Raises:
            NotFound: no such scan.
            EvidenceError: the scan has already ended (FAILED_PRECONDITION).
            Unsupported: another gate runs it (cancel it there).
        """
        scan = self.get_scan(scan_id)
        if scan.state.terminal:
            raise EvidenceError(f"scan {scan_id!r} has already ended ({scan.state.value})")
        if not self._jobs().cancel(scan_id):
            refreshed = self.get_scan(scan_id)
            if refreshed.state.terminal:
                raise EvidenceError(f"scan {scan_id!r} has already ended ({refreshed.state.value})")
            raise Unsupported("cancelling this scan", "another gate sharing the store runs it; ask that one")
        return self.get_scan(scan_id)

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

    def get_sbom(
        self, sbom_id: str, *, include_document: bool = False, fmt: SbomFormat | None = None
    ) -> tuple[Sbom, bytes | None]:
        """Return an SBOM record and, when asked, its document.

        With ``fmt`` other than the stored format the document is converted
        from the stored one (CycloneDX 1.6 JSON/XML or SPDX 2.3 JSON); the
        stored format (or None) returns the stored bytes verbatim.
        """
        check_id(sbom_id, "id")
        sbom = self.store.get_sbom(sbom_id)
        if sbom is None:
            raise NotFound("SBOM", sbom_id)
        if not include_document:
            return sbom, None
        document = self.store.get_sbom_document(sbom_id)
        if document is None:
            raise NotFound("SBOM document", sbom_id)
        if fmt is None or fmt is sbom.format:
            return sbom, document
        from gate.sbom._export import convert
        from gate.sbom._ingest import parse

        # Stored documents were schema-checked on the way in (or written by gate).
        parsed = parse(document, sbom.format, check_schema=False)
        return sbom, convert(parsed, sbom, fmt)

    def upload_sbom(
        self,
        selector: ArtifactSelector,
        document: bytes,
        *,
        fmt: SbomFormat | None = None,
        kind: ArtifactKind | None = None,
        name: str = "",
    ) -> Sbom:
        """Validate and store an SBOM made elsewhere, with its component index.

        CycloneDX 1.4-1.7 (JSON or XML) and SPDX 2.3 JSON are accepted; ``fmt``
        None detects the format. The document is stored verbatim.

        Raises:
            InvalidArgument: malformed, schema-invalid or unsupported-version
                documents (the field names the path of the first error).
            NotFound: an unknown artifact alias.
        """
        from gate.sbom._ingest import parse

        parsed = parse(document, fmt)
        if kind is None and selector.digest and not selector.digest.startswith("git:"):
            described = parsed.subject.component.type if parsed.subject else ""
            kind = ArtifactKind.IMAGE if described == "container" else ArtifactKind.FILE
        elif kind is None and selector.digest:
            kind = ArtifactKind.SOURCE
        subject_name = parsed.subject.component.name if parsed.subject else ""
        digest = self.ensure_artifact(selector, "artifact", kind, name or subject_name)
        components = parsed.model_components
        sbom = Sbom(
            id=str(uuid.uuid4()),
            artifact_digest=digest,
            format=parsed.format,
            spec_version=parsed.spec_version,
            generator=parsed.generator or "unknown",
            created_at=self.clock(),
            component_count=len(components),
            document_digest="sha256:" + hashlib.sha256(document).hexdigest(),
        )
        self.store.add_sbom(sbom, document, components)
        return sbom

    def latest_sbom(self, artifact_digest: str) -> Sbom:
        """The newest SBOM stored for an artifact.

        Raises:
            NotFound: the artifact has no SBOM.
        """
        page = self.store.list_sboms(artifact_digest, 1, "")
        if not page.items:
            raise NotFound("SBOM of artifact", artifact_digest)
        return page.items[0]

    def diff_sboms(self, base_id: str, head_id: str) -> SbomDiff:
        """Compare the components of two stored SBOMs by normalised package identity."""
        from gate.sbom._diff import diff

        for sbom_id, field in ((base_id, "base_id"), (head_id, "head_id")):
            check_id(sbom_id, field)
            if self.store.get_sbom(sbom_id) is None:
                raise NotFound("SBOM", sbom_id)
        return diff(self.store.sbom_components(base_id), self.store.sbom_components(head_id))

    def summarize_licenses(self, sbom_id: str) -> LicenceSummary:
        """Count the licences of one stored SBOM's components."""
        from gate.sbom._licence_summary import summarize

        check_id(sbom_id, "sbom_id")
        if self.store.get_sbom(sbom_id) is None:
            raise NotFound("SBOM", sbom_id)
        return summarize(sbom_id, self.store.sbom_components(sbom_id))

    def list_sboms(self, artifact_digest: str, page_size: int, page_token: str) -> Page[Sbom]:
        """Return SBOM records, newest first, optionally of one artifact."""
        return self.store.list_sboms(artifact_digest, page_size, page_token)

    def search_components(self, query: ComponentQuery, version_range: str = "") -> Page[ComponentMatch]:
        """Find components by name or purl across every stored SBOM.

        ``version_range`` (``>=2.0,<2.31.0``, ``==1.2``, ``<1|>=2``) keeps the
        components whose version lies in it, compared in each one's ecosystem
        order (PEP 440, semver, Debian, Alpine; see :mod:`gate.sbom._versions`).

        Raises:
            InvalidArgument: neither name nor purl, a purl not starting with
                ``pkg:``, or a malformed range (position named).
        """
        if not query.name and not query.purl:
            raise InvalidArgument("name", "set name or purl (both empty)")
        if query.purl and not query.purl.startswith("pkg:"):
            raise InvalidArgument("purl", f"expected a package URL starting with 'pkg:', got {query.purl!r}")
        if version_range:
            from gate.sbom._versions import ordering_of, parse_range

            wanted = parse_range(version_range)
            query = replace(
                query,
                versions=lambda ecosystem, version: wanted.matches(ordering_of(ecosystem), version),
                versions_key=version_range,
            )
        return self.store.search_components(query)

    # --- decisions -----------------------------------------------------------

    def get_decision(self, decision_id: str) -> Decision:
        """Return a recorded decision."""
        check_id(decision_id, "id")
        decision = self.store.get_decision(decision_id)
        if decision is None:
            raise NotFound("decision", decision_id)
        return decision

    def review(
        self,
        review: AdmissionReview,
        *,
        started: float | None = None,
        claim: Callable[[], bool] | None = None,
    ) -> ReviewOutcome:
        """Decide an AdmissionReview with the policies in force; record it unless it is a dry run.

        ``started`` is the :func:`time.perf_counter` reading when the request
        arrived. An internal error, or an evaluation that ends past the budget,
        gives the failure mode's answer (saying so) instead of an exception.
        ``claim`` lets a caller that stopped waiting (its own deadline passed)
        keep this call from recording: it is called once before recording and
        recording happens only if it returns True.

        Raises:
            EvidenceError: the object is malformed (too deep, envelope fields of the wrong type).
            WouldBlock: inside :func:`gate._nonblocking.nonblocking`, something the review needs
                is not in memory; nothing was recorded, and the call can be made again elsewhere.
        """

        begin = perf_counter() if started is None else started
        replays = self.replays
        first = True
        if replays is not None and review.fingerprint:
            # Raises Conflict for a uid seen with other content (a replay, not a retry).
            seen = replays.check(review.uid, review.fingerprint, caller=review.caller)
            if not isinstance(seen, bool):
                return self._retry_outcome(review, seen, begin)
            first = seen
        try:
            # A retry that arrives while the first evaluation runs is answered, not recorded again.
            outcome, recorded = self._review(review, begin, claim if first else _never)
        except BaseException:
            if replays is not None and first:
                replays.forget(review.uid, review.fingerprint)
            raise
        if replays is not None and first and review.fingerprint:
            from gate.decisions import Answered

            if not recorded:
                # The caller answered otherwise (its budget ran out): a retry is evaluated afresh.
                replays.forget(review.uid, review.fingerprint)
                return outcome

            replays.answered(
                review.uid,
                review.fingerprint,
                Answered(
                    outcome.decision.id,
                    outcome.decision.allowed,
                    outcome.code,
                    outcome.reason,
                    outcome.warnings,
                    outcome.response,
                ),
            )
        return outcome

    def _retry_outcome(self, review: AdmissionReview, answer: Answered, begin: float) -> ReviewOutcome:
        """The answer already given to ``review``'s uid, again (an API server retry; not recorded)."""
        from gate.decisions import STAGE, ReviewOutcome

        _log.info("review %s is a retry; answered as decision %s was", review.uid, answer.decision_id)
        decision = Decision(
            id="",
            allowed=answer.allowed,
            message=f"retry of the review answered by decision {answer.decision_id}",
            stage=STAGE,
            decided_at=self.clock(),
            caller=review.caller,
            subject=review.subject,
            timings=DecisionTimings(total=perf_counter() - begin),
        )
        return ReviewOutcome(decision, answer.warnings, answer.code, answer.reason, answer.response)

    def _review(
        self, review: AdmissionReview, begin: float, claim: Callable[[], bool] | None
    ) -> tuple[ReviewOutcome, bool]:
        """The outcome of ``review``, and whether this call recorded it (dry runs count as recorded)."""
        from gate.decisions import Failure, decide

        bundle = self.policies
        self._keep_bundle(bundle)
        settings = self._admission_settings()
        try:
            evidence = None
            evidence_seconds = 0.0
            if self.evidence is not None:
                looked_up = perf_counter()
                evidence = self.evidence.for_review(review)
                evidence_seconds = perf_counter() - looked_up
            evidence = self._with_waivers(evidence, review.admission.resource)
            outcome = decide(
                review,
                bundle,
                decided_at=self.clock(),
                evidence=evidence,
                evidence_seconds=evidence_seconds,
                started=begin,
            )
        except (EvidenceError, WouldBlock):
            raise
        except Exception as error:
            reference = uuid.uuid4().hex[:12]
            _log.error("review %s failed (reference %s)", review.uid, reference, exc_info=error)
            outcome = self._failure(review, Failure.ERROR, f"reference {reference}", begin, bundle)
        else:
            elapsed = perf_counter() - begin
            if elapsed > settings.budget:
                detail = f"took {elapsed:.3f} s of a {settings.budget:g} s budget"
                outcome = self._failure(review, Failure.BUDGET, detail, begin, bundle, record=False)
        if claim is None or claim():
            self.record_decision(outcome.decision)
            return outcome, True
        return outcome, False

    def decide(
        self,
        subject: DecideSubject,
        stage: str,
        *,
        project: str = "",
        dry_run: bool = False,
        caller: str = "",
    ) -> Decision:
        """Decide a pipeline stage for a subject with the policies of that stage and gate's evidence.

        The subject becomes the resources a cluster would see (:mod:`gate.pipeline`); rules
        reach evidence through gate's evidence apiCall and verifyImages. Recorded (and signed)
        unless ``dry_run``; the record keeps the resources so that it can be replayed.
        Returned sealed (request digest and signature), except inside
        :func:`gate.decisions.deferred_acknowledgements` with an acknowledged recorder: the
        seal then comes with the commit (:func:`gate.decisions.after_commit`).

        Raises:
            InvalidArgument: a bad stage, project, subject or manifest.
        """
        from gate import pipeline
        from gate.decisions import new_decision_id

        pipeline.check_stage(stage)
        pipeline.check_project(project)
        if subject.image:
            resources = [pipeline.image_pod(subject.image, project)]
        elif subject.source is not None:
            tree = subject.source
            if not tree.repository or not tree.commit:
                raise InvalidArgument("source", "required: repository and commit")
            digest = self.store.resolve_alias(f"{tree.repository}@{tree.commit}") or ""
            resources = [pipeline.source_resource(replace(tree, artifact_digest=digest), project)]
        elif subject.manifest:
            resources = pipeline.manifest_resources(subject.manifest)
        else:
            raise InvalidArgument("subject", "required: an artifact, a manifest or a source tree")
        bundle = self.policies
        decision = self._pipeline_decision(
            resources,
            stage,
            project,
            subject.describe(),
            bundle,
            self._with_waivers(self.evidence.for_resources(resources), *resources),
            new_id="" if dry_run else new_decision_id(),
            caller=caller,
            # Built by gate (an image's or a source tree's stand-in) or bounded by
            # manifest_resources: the engine need not walk them again.
            depth_checked=True,
        )
        sealed_later = bool(decision.id) and self._sealed_on_commit()
        if decision.id and not sealed_later:
            from gate.decisions import seal

            # Sealed here: the pipeline gets the signed record back.
            decision = seal(decision, self.decision_signer)
        self.record_decision(decision, seal_back=sealed_later)
        return decision

    def _sealed_on_commit(self) -> bool:
        # A transport that awaits the commit gets the seal with it (gate.decisions.after_commit):
        # the writer signs, off the request path, and the decision is returned unsealed.
        from gate.decisions import AcknowledgedRecorder

        recorder = self.recorder
        return isinstance(recorder, AcknowledgedRecorder) and recorder.seals_on_commit

    def _pipeline_decision(
        self,
        resources: Sequence[Mapping[str, Any]],
        stage: str,
        project: str,
        subject: str,
        bundle: PolicyBundle,
        evidence: Evidence,
        *,
        new_id: str,
        caller: str,
        depth_checked: bool = False,
    ) -> Decision:
        from gate import pipeline
        from gate.decisions import with_waivers
        from policies import AdmissionRequest, verdict

        begin = perf_counter()
        self._keep_bundle(bundle)
        chosen = self._stage_policies(bundle, stage)
        responses = []
        for resource in resources:
            namespace = str((resource.get("metadata") or {}).get("namespace") or "")
            request = AdmissionRequest(operation="CREATE", object=resource, namespace=namespace)
            responses.extend(
                bundle.evaluate(
                    request, values=evidence.context(), policies=chosen, depth_checked=depth_checked
                )
            )
        policy_seconds = perf_counter() - begin
        answer = verdict(responses)
        failing = (RuleOutcome.FAIL, RuleOutcome.ERROR)
        results = tuple(
            new_rule_result(
                r.policy,
                r.rule,
                r.outcome,
                r.message,
                pipeline.remediation(bundle, r.policy, r.rule) if r.outcome in failing else "",
                r.action,
                str(r.resource),
            )
            for r in responses
        )
        if answer.allowed:
            message = f"allowed: {len(chosen)} policies for stage {stage!r}, {len(responses)} rule results"
        else:
            message = answer.message
        digests = tuple(d for d in (self._digest_of(i) for i in pipeline.images_of(resources)) if d)
        return new_decision(
            id=new_id,
            allowed=answer.allowed,
            message=message,
            stage=stage,
            decided_at=self.clock(),
            results=results,
            policy_bundle_digest=bundle.digest,
            evidence_ids=with_waivers(evidence.record_ids(), responses),
            caller=caller,
            artifact_digests=digests,
            timings=new_decision_timings(total=perf_counter() - begin, policy=policy_seconds, evidence=0.0),
            request={
                "kind": "Decide",
                "stage": stage,
                "project": project,
                "subject": subject,
                "resources": list(resources),
            },
            subject=subject,
        )

    def _stage_policies(self, bundle: PolicyBundle, stage: str) -> tuple[str, ...]:
        """The keys of ``bundle``'s policies for ``stage``, parsed from their annotations once per bundle."""
        cached, by_stage = self._stage_cache
        if cached is not bundle:
            by_stage = {}
            self._stage_cache = (bundle, by_stage)
        chosen = by_stage.get(stage)
        if chosen is None:
            from gate import pipeline

            chosen = tuple(pipeline.policies_for_stage(bundle, stage))
            # Stages are the callers' words: keep a bounded number.
            if len(by_stage) < 256:
                by_stage[stage] = chosen
        return chosen

    def _keep_bundle(self, bundle: PolicyBundle) -> None:
        """Keep the bundle's documents in the store (once per process and digest) for replays.

        An empty bundle too (a gate started with no policies, as on a first try-out): its
        decisions replay like any other.
        """
        if bundle.digest in self._kept_bundles:
            return
        self.store.add_policy_bundle(bundle.digest, bundle.documents(), self.clock())
        self._kept_bundles.add(bundle.digest)

    # --- audit -------------------------------------------------------------

    def decision_key(self) -> tuple[bytes, str]:
        """gate's decision signing key: PEM public key and fingerprint.

        Raises:
            Unsupported: this gate records decisions unsigned.
        """
        from gate.signatures import load_public_key

        if self.decision_signer is None:
            raise Unsupported("decision signatures", "this gate has no decision signer")
        pem = self.decision_signer.public_key_pem()
        return pem, load_public_key(pem).fingerprint

    def verify_decision(self, decision_id: str, public_key_pem: bytes = b"") -> DecisionCheck:
        """Check a recorded decision's signature (against gate's key unless one is given)."""
        from gate.audit import verify_decision

        decision = self.get_decision(decision_id)
        key = public_key_pem or self.decision_key()[0]
        return verify_decision(decision, key)

    def replay_decision(self, decision_id: str) -> Replay:
        """Re-evaluate a recorded decision with its policy bundle and its evidence records."""
        import json as _json

        from gate.audit import RecordedEvidence, Replay, compare
        from gate.decisions import decide, parse_review
        from gate.evidence import DEFAULT_EVIDENCE_URL
        from policies import parse_policies

        recorded = self.get_decision(decision_id)
        notes: list[str] = []
        documents = self.store.get_policy_bundle(recorded.policy_bundle_digest)
        if documents is None:
            bundle = self.policies
            missing = recorded.policy_bundle_digest
            notes.append(f"policy bundle {missing} is not kept; replayed with the bundle in force")
        else:
            bundle = parse_policies("\n---\n".join(_json.dumps(d) for d in documents), "recorded bundle")
            if bundle.digest != recorded.policy_bundle_digest:
                notes.append(
                    f"the kept bundle re-compiles to {bundle.digest}, not {recorded.policy_bundle_digest}"
                )
        urls = getattr(self.evidence, "urls", (DEFAULT_EVIDENCE_URL,))
        evidence = RecordedEvidence(self.store, recorded).evidence(urls)
        evidence = replace(evidence, image_verifier=self.signatures)
        # The waivers the decision used, as they were when it was made (later revocations aside).
        waived = recorded_waivers(self.store, recorded.evidence_ids, recorded.decided_at)
        if waived:
            evidence = self._digests_for(replace(evidence, waivers=tuple(waived)), recorded.request)
        request = recorded.request
        if recorded.stage == "admission":
            body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
            review = parse_review(_json.dumps(body).encode())
            replayed = decide(review, bundle, decided_at=self.clock(), evidence=evidence, new_id=str).decision
        else:
            replayed = self._pipeline_decision(
                request.get("resources", []),
                recorded.stage,
                str(request.get("project", "")),
                recorded.subject,
                bundle,
                evidence,
                new_id="",
                caller=recorded.caller,
            )
        replayed = replace(replayed, id="")
        return Replay(recorded, replayed, (*notes, *compare(recorded, replayed)), documents is not None)

    def _with_waivers(self, evidence: Evidence | None, *resources: Mapping[str, Any] | None) -> Evidence:
        """``evidence`` with the waivers in force now (and the image digests they may select)."""
        from gate.decisions import Evidence

        evidence = evidence if evidence is not None else Evidence()
        active = self.waivers.in_force(self.clock())
        if not active:
            return evidence
        evidence = replace(evidence, waivers=tuple(active))
        if not any(w.digest for w in active):
            return evidence
        return self._digests_for(evidence, {"resources": [r for r in resources if r]})

    def _digests_for(self, evidence: Evidence, request: Mapping[str, Any]) -> Evidence:
        """``evidence`` with the digests gate knows for the images of the request's resources."""
        from gate import pipeline

        resources = list(request.get("resources") or ())
        for key in ("object", "oldObject"):
            if isinstance(request.get(key), Mapping):
                resources.append(request[key])
        images = pipeline.images_of(resources)
        digests = {image: digest for image in images if (digest := self._digest_of(image))}
        return replace(evidence, image_digests=digests)

    # --- waivers -----------------------------------------------------------

    def create_waiver(
        self,
        *,
        policy: str,
        rule: str = "",
        namespace: str = "",
        image: str = "",
        digest: str = "",
        owner: str,
        reason: str,
        expires_at: datetime,
        created_by: str,
    ) -> Waiver:
        """Create a waiver (in force at once on this replica, within ``waiver_ttl`` on others).

        Raises:
            InvalidArgument: a missing or malformed field, no subject selector, or an expiry
                in the past or beyond ``policies.waiver_max_days``.
        """
        waiver = new_waiver(
            waiver_id=str(uuid.uuid4()),
            policy=policy,
            rule=rule,
            namespace=namespace,
            image=image,
            digest=digest,
            owner=owner,
            reason=reason,
            expires_at=expires_at,
            created_by=created_by,
            now=self.clock(),
            max_days=self.waiver_max_days,
        )
        self.store.add_waiver(waiver)
        self.waivers.invalidate()
        _log.info(
            "waiver %s created by %s for policy %s rule %s until %s",
            waiver.id,
            waiver.created_by,
            waiver.policy,
            waiver.rule or "*",
            waiver.expires_at.isoformat(),
        )
        return waiver

    def list_waivers(self, *, include_inactive: bool = False, policy: str = "") -> list[Waiver]:
        """Waivers, soonest expiry first: those in force, or every one kept with ``include_inactive``."""
        return self.store.list_waivers(active_at=None if include_inactive else self.clock(), policy=policy)

    def revoke_waiver(self, waiver_id: str, revoked_by: str) -> Waiver:
        """Revoke a waiver: it never applies again; the record keeps who revoked it and when.

        Raises:
            NotFound: no such waiver. Conflict: it is already revoked.
        """
        check_id(waiver_id, "id")
        revoked = self.store.revoke_waiver(
            waiver_id, revoked_by=revoked_by.strip()[:256] or "unknown", revoked_at=self.clock()
        )
        self.waivers.invalidate()
        _log.info("waiver %s revoked by %s", revoked.id, revoked.revoked_by)
        return revoked

    def _digest_of(self, image: str) -> str:
        return self.evidence.digest_of(image) or ""

    def review_failure(
        self, review: AdmissionReview, failure: Failure, detail: str, started: float, *, record: bool = True
    ) -> ReviewOutcome:
        """The failure mode's answer for ``review``; recorded (unless a dry run) when ``record``."""
        return self._failure(review, failure, detail, started, self.policies, record=record)

    @property
    def admission_settings(self) -> AdmissionSettings:
        """The review budget and failure mode in force."""
        return self._admission_settings()

    def _failure(
        self,
        review: AdmissionReview,
        failure: Failure,
        detail: str,
        started: float,
        bundle: PolicyBundle,
        *,
        record: bool = False,
    ) -> ReviewOutcome:
        from gate.decisions import enforces, failure_outcome

        settings = self._admission_settings()
        outcome = failure_outcome(
            review,
            failure,
            settings.failure_mode,
            detail=detail,
            decided_at=self.clock(),
            bundle_digest=bundle.digest,
            elapsed=perf_counter() - started,
            enforcing=enforces(bundle),
        )
        if record:
            self.record_decision(outcome.decision)
        return outcome

    def _admission_settings(self) -> AdmissionSettings:
        if self.admission is None:
            from gate.decisions import AdmissionSettings

            self.admission = AdmissionSettings()
        return self.admission

    def record_decision(self, decision: Decision, *, seal_back: bool = False) -> None:
        """Record a decision (through the recorder when there is one); dry runs (no id) are not recorded.

        ``seal_back``: the transport awaiting the commit gets the seal with it (see :meth:`decide`).
        """
        if not decision.id:
            return
        if self.recorder is not None:
            self.recorder.record(decision, seal_back=seal_back)
        else:
            from gate.decisions import seal

            self.store.add_decision(seal(decision, self.decision_signer))
        for listener in self.decision_listeners:
            try:
                listener(decision)
            except Exception:  # metrics and notifications must never fail a decision
                _log.exception("a decision listener failed on decision %s", decision.id)

    def list_decisions(self, query: DecisionQuery) -> Page[Decision]:
        """Return recorded decisions, newest first."""
        if query.since and query.until and query.since >= query.until:
            raise InvalidArgument(
                "until",
                f"must be after since, got since={query.since.isoformat()} until={query.until.isoformat()}",
            )
        return self.store.list_decisions(query)

    def export_policy_reports(
        self, *, since: datetime | None = None, namespace: str = ""
    ) -> list[dict[str, Any]]:
        """PolicyReports (wgpolicyk8s.io/v1alpha2) of the resources admission decisions were about.

        One report per resource, from its latest recorded decision at or after
        ``since`` (see :func:`gate.policy_reports.export_reports`); at most
        :data:`~gate.policy_reports.MAX_EXPORT_DECISIONS` decisions are read.
        Severity, category and scoring come from the recorded policy bundle
        (the bundle in force when that one is not kept).

        Raises:
            InvalidArgument: ``since`` lies in the future, or too many decisions to export at once.
        """
        from gate.policy_reports import (
            ADMISSION_STAGE,
            MAX_EXPORT_DECISIONS,
            PolicyMeta,
            export_reports,
            policy_meta,
        )

        if since is not None and since > self.clock():
            raise InvalidArgument("since", f"must not be in the future, got {since.isoformat()}")
        cached: dict[str, dict[str, PolicyMeta]] = {}

        def meta_of(digest: str) -> dict[str, PolicyMeta]:
            if digest not in cached:
                documents = self.store.get_policy_bundle(digest) if digest else None
                if documents is None:
                    documents = [dict(p.raw) for p in self.policies.policies]
                cached[digest] = policy_meta(documents)
            return cached[digest]

        def decisions() -> Iterator[Decision]:
            token = ""
            read = 0
            while True:
                page = self.store.list_decisions(
                    DecisionQuery(stage=ADMISSION_STAGE, since=since, page_size=1000, page_token=token)
                )
                read += len(page.items)
                if read > MAX_EXPORT_DECISIONS:
                    raise InvalidArgument(
                        "since",
                        f"more than {MAX_EXPORT_DECISIONS} decisions to export; export a later window",
                    )
                yield from page.items
                token = page.next_token
                if not token:
                    return

        return export_reports(decisions(), meta_of, namespace=namespace)

    # --- SBOMs -------------------------------------------------------------------

    def generate_sbom(
        self,
        selector: ArtifactSelector | None,
        target: ScanTarget,
        *,
        fmt: SbomFormat,
        generator: str,
        progress: Callable[[str, float], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> Sbom:
        """Generate the SBOM of a directory, root filesystem, Python environment or image, and store it.

        Images (``TargetKind.IMAGE``) are named as scans name them:
        ``oci:<dir>[:<name>]``, ``docker-archive:<file.tar>`` or a registry
        reference. Their artifact is the image's digest; a selector, if given,
        must name the same one (a classic docker-archive carries no manifest,
        so there the selector's digest is taken). A directory's artifact
        defaults to the git commit checked out in it. ``generator`` picks the
        provider (``native``, ``trivy``, ``syft``); empty: ``sbom.generator``.
        The document is stored in ``fmt`` when the generator writes it, else as
        CycloneDX JSON (the record says which); GetSbom converts on read.
        ``warn`` is told, once the SBOM is stored, what the generator skipped or read only in
        part (``<path>: <reason>``, at most :data:`MAX_SBOM_WARNINGS`).

        Raises:
            InvalidArgument: a missing, unreadable or hostile target, or no artifact to attach the SBOM to.
            Unsupported: a target kind, format or generator this gate does not provide.
            InfrastructureError: a generator tool or the registry failed.
        """
        if target.kind not in (TargetKind.FILESYSTEM, TargetKind.ROOTFS, TargetKind.IMAGE):
            raise Unsupported(
                f"SBOMs of {target.kind.value} targets", "this gate generates them for directories and images"
            )
        # Imported here: the cataloguers and cyclonedx-python-lib cost ~0.15 s of every start.
        from gate.sbom._generators import GeneratorRequest, load_generator

        name = generator or self.sbom_settings.generator
        provider = load_generator(name, self.sbom_settings.generators)
        progress = _at_most_every(0.1, progress) if progress is not None else None
        # A format the generator does not write (SPDX; XML from a tool) is stored as
        # CycloneDX JSON, and GetSbom converts it when asked for another format.
        produced = fmt if fmt in provider.formats else SbomFormat.CYCLONEDX_JSON
        if target.kind not in provider.supported_targets:
            raise Unsupported(f"{target.kind.value} targets", f"for the {name!r} SBOM generator")
        with contextlib.ExitStack() as stack:
            if target.kind is TargetKind.IMAGE:
                sbom_target, subject = self._sbom_image_target(stack, selector, target)
            else:
                sbom_target, subject = self._sbom_directory_target(selector, target)
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gate-sbom-")))
            output = provider.generate(
                GeneratorRequest(
                    sbom_target,
                    subject,
                    produced,
                    workdir,
                    progress=progress,
                    registry_options={"insecure": ",".join(self.registry_settings.insecure)},
                )
            )
        sbom = Sbom(
            id=str(uuid.uuid4()),
            artifact_digest=subject.digest,
            format=produced,
            spec_version="1.6",
            generator=output.generator,
            created_at=self.clock(),
            component_count=len(output.components),
            document_digest="sha256:" + hashlib.sha256(output.document).hexdigest(),
        )
        self.store.add_sbom(sbom, output.document, output.components)
        if warn is not None:
            for warning in output.warnings[:MAX_SBOM_WARNINGS]:
                warn(f"{warning.path}: {warning.message}")
            if len(output.warnings) > MAX_SBOM_WARNINGS:
                warn(f"and {len(output.warnings) - MAX_SBOM_WARNINGS} more warnings")
        return sbom

    def _sbom_directory_target(
        self, selector: ArtifactSelector | None, target: ScanTarget
    ) -> tuple[SbomTarget, Subject]:
        from gate.sbom import Subject
        from gate.sbom._generators import SbomTarget

        root = resolve_local_path(target.location, self.local_root)
        if not root.is_dir():
            raise InvalidArgument("target.location", f"expected a directory, got a file: {target.location!r}")
        if selector is None or not (selector.digest or selector.reference):
            head = git_head(root)
            if head is None:
                raise InvalidArgument(
                    "artifact", "required: the target is not a git work tree, so gate cannot name its commit"
                )
            selector = ArtifactSelector(digest=head)
        kind = ArtifactKind.SOURCE if (selector.digest or "").startswith("git:") else ArtifactKind.FILE
        digest = self.ensure_artifact(selector, "artifact", kind, root.name)
        artifact = self.store.get_artifact(digest)
        subject = Subject(
            name=(artifact.name if artifact and artifact.name else root.name) or "target",
            digest=digest,
            kind=artifact.kind if artifact else kind,
        )
        is_rootfs = target.kind is TargetKind.ROOTFS or (root / "etc" / "os-release").exists()
        sbom_target = SbomTarget(
            TargetKind.ROOTFS if is_rootfs else TargetKind.FILESYSTEM,
            path=root,
            python_environment=(root / "pyvenv.cfg").is_file(),
        )
        return sbom_target, subject

    def _sbom_image_target(
        self, stack: contextlib.ExitStack, selector: ArtifactSelector | None, target: ScanTarget
    ) -> tuple[SbomTarget, Subject]:
        from gate.sbom import Limits, Subject
        from gate.sbom._generators import SbomTarget
        from gate.sbom._image import open_image, parse_location

        location = parse_location(target.location)
        path = resolve_local_path(location.path, self.local_root) if location.kind != "registry" else None
        image = stack.enter_context(
            open_image(location, path, self.registry_settings, platform="linux/amd64", limits=Limits())
        )
        digest = image.digest
        wanted = ""
        if selector is not None and (selector.digest or selector.reference):
            wanted = (
                check_digest(selector.digest, "artifact.digest")
                if selector.digest
                else self.store.resolve_alias(selector.reference) or ""
            )
        if wanted and wanted != digest:
            if digest != image.config_digest:
                raise InvalidArgument(
                    "artifact", f"the image at {target.location!r} is {digest}, not {wanted}"
                )
            # A classic docker-archive carries no manifest: the caller's digest names it.
            digest = wanted
        self.ensure_artifact(ArtifactSelector(digest=digest), "artifact", ArtifactKind.IMAGE, image.name)
        subject = Subject(image.name, digest, ArtifactKind.IMAGE, version=image.tag)
        return SbomTarget(TargetKind.IMAGE, path=path, image=location, content=image), subject

    # --- policies ----------------------------------------------------------------

    def evidence_document(self, image: str) -> dict[str, Any]:
        """The evidence JSON policies read about ``image`` (gate's ``/v1/evidence`` answer)."""
        return self.evidence.document(image)

    # --- signatures --------------------------------------------------------

    def verify_image(self, image: str, request: VerifyRequest) -> tuple[Verification, ImageVerification]:
        """Verify an image's signatures and attestations and record the result as evidence.

        The image is recorded as an artifact (named by its repository) if gate did not know it.

        Raises:
            InvalidArgument: a malformed image reference or policy.
            InfrastructureError: the registry failed (retry; nothing is recorded).
        """
        from gate.oci import ImageRef
        from gate.verification import to_record

        ref = ImageRef.parse(image)
        policy, key = request.policy()
        result = self.signatures.service().verify(ref, policy, key)
        if self.store.get_artifact(result.digest) is None:
            artifact = Artifact(
                digest=result.digest, kind=ArtifactKind.IMAGE, first_seen=self.clock(), name=ref.name
            )
            self.store.upsert_artifact(artifact)
        record = to_record(result, str(uuid.uuid4()), self.clock())
        self.store.add_verification(record)
        return record, result

    def attest(self, image: str, predicate_type: str, predicate: bytes, *, push: bool) -> tuple[bytes, str]:
        """Sign an in-toto statement about ``image`` with gate's key; push it as cosign does when asked.

        Returns the DSSE envelope and where it was pushed ("" when not pushed).

        Raises:
            InvalidArgument: a malformed reference, predicate type or predicate.
            Unsupported: no signing key is configured.
            InfrastructureError: the registry failed.
        """
        from gate.oci import ImageRef
        from gate.publish import attest_image, attestation_envelope, parse_predicate

        if not predicate_type:
            raise InvalidArgument("predicate_type", "required, e.g. https://cyclonedx.org/bom")
        body = parse_predicate(predicate)
        ref = ImageRef.parse(image)
        key = self.signatures.signing_key()
        if not push:
            digest = ref.digest or self.signatures.service().resolve(ref)
            return attestation_envelope(ref, digest, predicate_type, body, key), ""
        client = self.signatures.publisher()
        digest = ref.digest or client.resolve(ref).digest
        envelope, attached = attest_image(client, ref, digest, predicate_type, body, key, replace=True)
        return envelope, attached.reference

    @property
    def policies(self) -> PolicyBundle:
        """The policy bundle in force."""
        if self._policies is None:
            self._policies = _load_policies(self.policy_sources)
        return self._policies

    def reload_policies(self) -> PolicyBundle:
        """Load the policy sources again; the old bundle stays in force if the new one fails.

        Raises:
            PolicyLoadError: a policy file is malformed (FAILED_PRECONDITION to gRPC callers).
        """
        try:
            bundle = _load_policies(self.policy_sources)
        except EvidenceError as error:
            self.policy_reload_error = (error.message, self.clock())
            raise
        # One attribute assignment: requests see the old bundle or the new one, never a mix.
        self._policies = bundle
        self.policy_reload_error = None
        for listener in self.policy_listeners:
            listener(bundle)
        return bundle

    def test_policies(self, files: Sequence[tuple[str, bytes]]) -> SuiteReport:
        """Run the Kyverno test files among ``files`` (with their policies and resources).

        The files are written to a private temporary directory that is removed afterwards.

        Raises:
            InvalidArgument: a path is absolute, empty, escapes the root, or repeats.
        """
        if not files:
            raise InvalidArgument("files", "required: send at least one kyverno-test.yaml")
        if len(files) > MAX_TEST_FILES:
            raise InvalidArgument("files", f"at most {MAX_TEST_FILES} files, got {len(files)}")
        with tempfile.TemporaryDirectory(prefix="gate-policy-test-") as tmp:
            root = Path(tmp)
            seen: set[PurePosixPath] = set()
            for index, (name, content) in enumerate(files):
                relative = _safe_relative(name, f"files[{index}].path")
                if relative in seen:
                    raise InvalidArgument(f"files[{index}].path", f"repeats {name!r}")
                seen.add(relative)
                _write_test_file(root.joinpath(*relative.parts), content, f"files[{index}].path")
            from policies._kyverno_test import run_tests

            return run_tests(root, confine=True)

    # --- health ----------------------------------------------------------------

    def check_ready(self) -> None:
        """Raise StoreUnavailable unless the store answers."""
        self.store.ping()


MAX_TEST_FILES = 10_000


def _check_text(value: str, field: str, expected: str) -> None:
    """InvalidArgument on ``field`` when ``value`` holds a control character.

    Names and references are stored in text columns and shown on one line; PostgreSQL refuses a
    NUL outright, so the request would have failed as if the store were down (and been retried).
    """
    found = CONTROL_CHARACTER.search(value)
    if found is not None:
        raise InvalidArgument(
            field, f"got a control character (\\u{ord(found.group()):04x}), expected {expected} without one"
        )


def _load_policies(sources: Sequence[Path]) -> PolicyBundle:
    from policies import load_policies

    return load_policies(sources)


# A file name's bytes (Linux's NAME_MAX), and a whole path's, well under PATH_MAX beside the
# temporary directory's own.
_MAX_NAME_BYTES = 255
_MAX_PATH_BYTES = 1024


def _safe_relative(name: str, field: str) -> PurePosixPath:
    if not name or "\x00" in name:
        raise InvalidArgument(field, f"expected a relative path, got {name!r}")
    size = len(name.encode())
    if size > _MAX_PATH_BYTES:
        raise InvalidArgument(field, f"expected at most {_MAX_PATH_BYTES} bytes, got {size}")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or name.startswith("\\"):
        raise InvalidArgument(field, f"expected a relative path without '..', got {name!r}")
    parts = [part for part in path.parts if part not in ("", ".")]
    if not parts:
        raise InvalidArgument(field, f"expected a file path, got {name!r}")
    longest = max(len(part.encode()) for part in parts)
    if longest > _MAX_NAME_BYTES:
        raise InvalidArgument(field, f"expected names of at most {_MAX_NAME_BYTES} bytes, got {longest}")
    return PurePosixPath(*parts)


def _write_test_file(target: Path, content: bytes, field: str) -> None:
    """Write one uploaded file; a path colliding with another's (file against directory) is the caller's."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as error:
        raise InvalidArgument(
            field, f"collides with another file's path (a file and a directory of one name): {error.strerror}"
        ) from None
    except OSError as error:
        raise InfrastructureError(f"cannot write the uploaded test files: {error.strerror}") from error


def _kind_of_target(target: ScanTarget) -> ArtifactKind:
    return ArtifactKind.IMAGE if target.kind in (TargetKind.IMAGE, TargetKind.ROOTFS) else ArtifactKind.FILE


# Trivy's ArtifactType values (and the SARIF/other tools' empty type) to what gate records.
_IMAGE_TYPES = frozenset({"container_image", "container-image", "image"})
_SOURCE_TYPES = frozenset({"repository", "git"})


def _kind_of_report(selector: ArtifactSelector, artifact_type: str) -> ArtifactKind:
    if selector.digest.startswith("git:") or artifact_type in _SOURCE_TYPES:
        return ArtifactKind.SOURCE
    if artifact_type in _IMAGE_TYPES:
        return ArtifactKind.IMAGE
    return ArtifactKind.FILE


def _target_of_report(artifact_type: str) -> TargetKind:
    if artifact_type in _IMAGE_TYPES:
        return TargetKind.IMAGE
    if artifact_type in _SOURCE_TYPES:
        return TargetKind.REPOSITORY
    return TargetKind.FILESYSTEM


def _at_most_every(seconds: float, progress: Callable[[str, float], None]) -> Callable[[str, float], None]:
    """``progress`` called at most once per ``seconds`` (and always at the end).

    A cataloguer reports every file it reads; streamed one by one, hundreds of
    events cost the GenerateSbom caller more than the generation itself.
    """
    last = -seconds

    def report(stage: str, fraction: float) -> None:
        nonlocal last
        now = perf_counter()
        if fraction >= 1.0 or now - last >= seconds:
            last = now
            progress(stage, fraction)

    return report
