"""The service core: one object shared by the gRPC servicers, the webhook and the CLI.

``Gate`` holds the ports (the evidence store, a clock) and answers requests
with domain values. It knows nothing of gRPC, HTTP or the terminal; adapters
validate their wire formats, call it, and map its errors with their own
status tables. Its methods block (the store is synchronous): async adapters
run them in a worker pool.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from gate import __version__
from gate._git import git_head
from gate.config import Config
from gate.errors import ConfigError, EvidenceError, InvalidArgument, NotFound, Unsupported
from gate.model import (
    Artifact,
    ArtifactKind,
    ComponentMatch,
    Decision,
    Page,
    Sbom,
    SbomFormat,
    Scan,
    ScanState,
    ScanTarget,
    TargetKind,
    check_digest,
    check_id,
)
from gate.scan_jobs import ScanJobs

if TYPE_CHECKING:
    from policies import PolicyBundle
    from policies._kyverno_test import SuiteReport

from gate.store import ComponentQuery, DecisionQuery, EvidenceStore, FindingPage, FindingQuery
from scanners import resolve_local_path


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
    ) -> None:
        """Build the core; loads the policies of ``policy_sources``.

        Raises:
            PolicyLoadError: a policy file is malformed (file, line and field path named).
        """
        self.store = store
        self.clock = clock
        self.scans = scans
        self.policy_sources = tuple(policy_sources)
        # Local targets (scans, SBOM generation) must lie under this directory when set.
        self.local_root = local_root
        # With no sources the engine is imported on first use (~0.1 s off every start).
        self._policies: PolicyBundle | None = (
            _load_policies(self.policy_sources) if self.policy_sources else None
        )

    @classmethod
    def from_config(cls, config: Config, store: EvidenceStore, scans: ScanJobs | None) -> Gate:
        """The core for ``config``, over an opened store and scan runner.

        Raises:
            ConfigError: a policy source does not load (the file, line and field are named).
        """
        try:
            return cls(
                store, scans=scans, policy_sources=config.policies.sources, local_root=config.scanning.root
            )
        except EvidenceError as error:
            # Only a loaded engine can raise this, so importing it here costs nothing.
            from policies import PolicyLoadError

            if not isinstance(error, PolicyLoadError):
                raise
            raise ConfigError("configuration", "policies.sources", error.message) from None

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

    def ensure_artifact(
        self, selector: ArtifactSelector, field: str, kind: ArtifactKind | None, name: str
    ) -> str:
        """Return the digest a selector names, recording a new digest as an artifact of ``kind``.

        Raises:
            InvalidArgument: a new digest without a kind, or a malformed digest.
            NotFound: an unknown alias.
        """
        digest = self.resolve(selector, field)
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
        return jobs.record(scan, tool, parsed)

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

    # --- SBOMs -------------------------------------------------------------------

    def generate_sbom(
        self,
        selector: ArtifactSelector | None,
        target: ScanTarget,
        *,
        fmt: SbomFormat,
        generator: str,
        progress: Callable[[str, float], None] | None = None,
    ) -> Sbom:
        """Generate an SBOM of a local directory, root filesystem or Python environment, and store it.

        Without a selector the artifact is the git commit checked out in the target.

        Raises:
            InvalidArgument: a missing or unreadable target, or no artifact to attach the SBOM to.
            Unsupported: a target kind, format or generator this gate does not provide yet.
        """
        if generator not in ("", "native"):
            raise Unsupported(f"the {generator!r} SBOM generator", "only 'native' is available in this gate")
        if fmt is SbomFormat.SPDX_JSON:
            raise Unsupported("SPDX output", "this gate writes CycloneDX JSON and XML")
        if target.kind not in (TargetKind.FILESYSTEM, TargetKind.ROOTFS):
            raise Unsupported(
                f"SBOMs of {target.kind.value} targets", "this gate generates them for local directories"
            )
        # Imported here: the cataloguers and cyclonedx-python-lib cost ~0.15 s of every start.
        from gate.sbom import Subject, generate, generate_python_environment

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
        if (root / "pyvenv.cfg").is_file():
            inventory = generate_python_environment(root, subject=subject, progress=progress)
        else:
            inventory = generate(root, subject=subject, progress=progress)
        document = (
            inventory.to_cyclonedx_xml() if fmt is SbomFormat.CYCLONEDX_XML else inventory.to_cyclonedx_json()
        )
        components = inventory.model_components
        sbom = Sbom(
            id=str(uuid.uuid4()),
            artifact_digest=digest,
            format=fmt,
            spec_version="1.6",
            generator=f"gate {__version__}",
            created_at=self.clock(),
            component_count=len(components),
            document_digest="sha256:" + hashlib.sha256(document).hexdigest(),
        )
        self.store.add_sbom(sbom, document, components)
        return sbom

    # --- policies ----------------------------------------------------------------

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
        bundle = _load_policies(self.policy_sources)
        # One attribute assignment: requests see the old bundle or the new one, never a mix.
        self._policies = bundle
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
                target = root.joinpath(*relative.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            from policies._kyverno_test import run_tests

            return run_tests(root)

    # --- health ----------------------------------------------------------------

    def check_ready(self) -> None:
        """Raise StoreUnavailable unless the store answers."""
        self.store.ping()


MAX_TEST_FILES = 10_000


def _load_policies(sources: Sequence[Path]) -> PolicyBundle:
    from policies import load_policies

    return load_policies(sources)


def _safe_relative(name: str, field: str) -> PurePosixPath:
    if not name or "\x00" in name:
        raise InvalidArgument(field, f"expected a relative path, got {name!r}")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or name.startswith("\\"):
        raise InvalidArgument(field, f"expected a relative path without '..', got {name!r}")
    parts = [part for part in path.parts if part not in ("", ".")]
    if not parts:
        raise InvalidArgument(field, f"expected a file path, got {name!r}")
    return PurePosixPath(*parts)


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
