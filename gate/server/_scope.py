"""Artifact scope: a pipeline identity records and reads evidence only about its projects' artifacts.

The ``project`` field of a request (see :mod:`gate.server._authz`) says which
project a pipeline *claims* to act for; it says nothing about whose artifact
the request is about. So the store binds every digest to projects
(``artifact_projects``): the first call that records evidence for a digest
under a project claims it for that project, and an admin can bind it to more
(``gate artifact bind``, for shared base images). A caller whose only granting
role is ``pipeline`` is then refused any RPC about a digest bound only to
projects it does not act for. Admins are never refused; auditors read across
projects; both still claim an unbound digest when they record evidence under
a project.

Which artifact a request is about is read from the request the way the core
reads it: a digest, a reference gate holds as an alias, an image reference
with ``@digest``, a source tree's ``repository@commit`` alias, the artifact
of the scan or SBOM an id names, or the container images of a Decide
manifest. What only the core can find out (a tag it resolves at the registry,
a directory's checked-out commit) is not scoped here; such artifacts are bound
by the next call that names them by digest. Reads of an unbound digest are
allowed and bind nothing.

A manifest's images are checked but never claimed: manifests name sidecars and
public images beside the project's own, and the first project to decide one
would otherwise own them all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gate.auth import Identity
from gate.errors import InvalidArgument, PermissionDenied
from gate.evidence import alias_digest
from gate.model import check_digest, check_id
from gate.store import EvidenceStore

# How long a binding read from the store is trusted to *allow* a call. A refusal
# always reads the store again, so an admin's new binding takes effect at once;
# a removed binding may still allow calls for this long.
BINDING_TTL_SECONDS = 5.0
_CACHE_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class Named:
    """One way a request names an artifact, and the request field it came from.

    ``how`` is ``digest``, ``alias`` (a reference gate may hold), ``image``
    (an image reference: its ``@digest``, else an alias), ``scan`` or
    ``sbom`` (a record id whose artifact it is).
    """

    how: str
    value: str
    field: str
    # Whether a recording call claims the artifact for its project when it is unbound.
    claims: bool = True


@dataclass(frozen=True, slots=True)
class Access:
    """How an RPC names its artifact, and whether it records evidence (and so binds)."""

    names: Callable[[Any], Iterator[Named]]
    records: bool


def _ref(ref: Any, field: str) -> Iterator[Named]:
    which = ref.WhichOneof("ref")
    if which == "digest":
        yield Named("digest", ref.digest, f"{field}.digest")
    elif which == "reference" and ref.reference:
        yield Named("alias", ref.reference, f"{field}.reference")


def _artifact(request: Any) -> Iterator[Named]:
    if request.HasField("artifact"):
        yield from _ref(request.artifact, "artifact")


def _generated(request: Any) -> Iterator[Named]:
    if request.HasField("artifact"):
        yield from _ref(request.artifact, "artifact")
    elif "@" in request.location:
        yield Named("image", request.location, "location")


def _image(request: Any) -> Iterator[Named]:
    if request.image:
        yield Named("image", request.image, "image")


def _decided(request: Any) -> Iterator[Named]:
    which = request.WhichOneof("subject")
    if which == "artifact":
        ref = request.artifact
        if ref.WhichOneof("ref") == "reference" and ref.reference:
            yield Named("image", ref.reference, "artifact.reference")
        else:
            yield from _ref(ref, "artifact")
    elif which == "source" and request.source.repository and request.source.commit:
        yield Named("alias", f"{request.source.repository}@{request.source.commit}", "source")
    elif which == "manifest":
        yield from _manifest_images(request.manifest)


def _manifest_images(manifest: bytes) -> Iterator[Named]:
    """The container images of a manifest's objects; none when it is malformed (the core refuses it)."""
    from gate.pipeline import images_of, manifest_resources

    try:
        resources = manifest_resources(manifest)
    except InvalidArgument:
        return
    for index, resource in enumerate(resources):
        for image in images_of([resource]):
            yield Named("image", image, f"manifest[{index}]", claims=False)


def _scan_id(request: Any) -> Iterator[Named]:
    if request.id:
        yield Named("scan", request.id, "id")


def _findings(request: Any) -> Iterator[Named]:
    which = request.WhichOneof("scope")
    if which == "artifact":
        yield from _ref(request.artifact, "artifact")
    elif which == "scan_id" and request.scan_id:
        yield Named("scan", request.scan_id, "scan_id")


def _sbom_id(request: Any) -> Iterator[Named]:
    if request.id:
        yield Named("sbom", request.id, "id")


# RPCs about one artifact -> how the request names it. Listings and searches across
# artifacts are not here: the pipeline role may not call them (see ROLES_FOR_METHOD).
ACCESS_FOR_METHOD: Mapping[str, Access] = {
    "gate.v1.ScanService/StartScan": Access(_artifact, records=True),
    "gate.v1.ScanService/ImportReport": Access(_artifact, records=True),
    "gate.v1.SbomService/GenerateSbom": Access(_generated, records=True),
    "gate.v1.SbomService/UploadSbom": Access(_artifact, records=True),
    "gate.v1.SignatureService/Attest": Access(_image, records=True),
    "gate.v1.DecisionService/Decide": Access(_decided, records=True),
    # Records a verification, but names no project to bind the digest to.
    "gate.v1.SignatureService/VerifyImage": Access(_image, records=False),
    "gate.v1.ScanService/GetScan": Access(_scan_id, records=False),
    "gate.v1.ScanService/WatchScan": Access(_scan_id, records=False),
    "gate.v1.ScanService/ListFindings": Access(_findings, records=False),
    "gate.v1.SbomService/GetSbom": Access(_sbom_id, records=False),
}


class ArtifactScope:
    """Checks (and claims) the project bindings of the artifacts requests name.

    :meth:`check` blocks on the store: call it from a worker thread. Thread-safe.
    """

    def __init__(
        self,
        store: EvidenceStore,
        clock: Callable[[], datetime],
        *,
        ttl: float = BINDING_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Read and write bindings in ``store``; ``clock`` stamps new ones."""
        self._store = store
        self._clock = clock
        self._ttl = ttl
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, tuple[str, ...]]] = {}

    @staticmethod
    def applies(method: str, scoped: bool, request: object) -> bool:
        """Whether :meth:`check` has anything to do (no store access when not)."""
        access = ACCESS_FOR_METHOD.get(method)
        if access is None:
            return False
        return scoped or (access.records and bool(_recording_project(request)))

    def check(self, method: str, identity: Identity, scoped: bool, request: object) -> None:
        """Refuse a scoped caller an artifact of other projects; claim unbound ones for the request's project.

        ``scoped`` says whether ``identity`` is held to its projects for
        ``method`` (its only granting role is ``pipeline``).

        Raises:
            PermissionDenied: a scoped caller names an artifact bound only to
                projects it does not act for.
            StoreUnavailable: the store failed.
        """
        access = ACCESS_FOR_METHOD.get(method)
        if access is None:
            return
        project = _recording_project(request) if access.records else ""
        for named in access.names(request):
            if not scoped and not named.claims:
                continue  # nothing to refuse and nothing to claim: no store look-up
            digest = self._digest(named)
            if digest is None:
                continue
            cached = self._cached(digest)
            if cached and (not scoped or any(identity.acts_for(p) for p in cached)):
                continue
            bound = self._store.artifact_projects(digest)
            if not bound and project and named.claims:
                bound = self._store.claim_artifact(digest, project, bound_by=identity.name, now=self._clock())
            self._remember(digest, bound)
            if scoped and bound and not any(identity.acts_for(p) for p in bound):
                own = ", ".join(sorted(identity.projects)) or "none"
                raise PermissionDenied(
                    f"{named.field}: artifact {digest} belongs to other projects "
                    f"(got {', '.join(bound)}; expected one of the projects {identity.name} acts for: {own})"
                )

    def _digest(self, named: Named) -> str | None:
        """The digest ``named`` stands for, or None when it is malformed or unknown here.

        Malformed and unknown names are left to the RPC, which refuses them
        with the error it always gives (INVALID_ARGUMENT, NOT_FOUND).
        """
        if named.how == "digest":
            return _valid_digest(named.value)
        if named.how == "image":
            return self._image_digest(named.value)
        if named.how == "alias":
            return self._store.resolve_alias(named.value)
        return self._record_digest(named)

    def _record_digest(self, named: Named) -> str | None:
        """The artifact of the scan or SBOM an id names."""
        if not _valid_id(named.value):
            return None
        if named.how == "scan":
            scan = self._store.get_scan(named.value)
            return None if scan is None else scan.artifact_digest
        sbom = self._store.get_sbom(named.value)
        return None if sbom is None else sbom.artifact_digest

    def _image_digest(self, image: str) -> str | None:
        """An image reference's own digest, else the digest it is an alias of (as in gate.evidence)."""
        if "@" in image:
            return _valid_digest(image.rsplit("@", 1)[1])
        return alias_digest(self._store, image)

    def _cached(self, digest: str) -> tuple[str, ...]:
        """The projects of ``digest`` as read less than the TTL ago (empty when not cached)."""
        with self._lock:
            entry = self._cache.get(digest)
        if entry is None or entry[0] < self._monotonic():
            return ()
        return entry[1]

    def _remember(self, digest: str, bound: tuple[str, ...]) -> None:
        if not bound:
            return
        with self._lock:
            if len(self._cache) >= _CACHE_ENTRIES and digest not in self._cache:
                # Oldest first (insertion order): dropping it costs at most one lookup.
                self._cache.pop(next(iter(self._cache)))
            self._cache[digest] = (self._monotonic() + self._ttl, bound)


def _recording_project(request: object) -> str:
    """The project a request records evidence under ("" for a dry run or none)."""
    if getattr(request, "dry_run", False):
        return ""
    return str(getattr(request, "project", "") or "")


def _valid_digest(value: str) -> str | None:
    try:
        return check_digest(value, "digest")
    except InvalidArgument:
        return None


def _valid_id(value: str) -> bool:
    try:
        check_id(value, "id")
    except InvalidArgument:
        return False
    return True
