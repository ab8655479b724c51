"""Authorisation: the one table of which roles may call which RPC, and its enforcement.

Roles:

* ``pipeline`` -- scans, SBOMs, attestations and decisions, only about the
  projects its identity acts for (see :data:`PROJECT_FIELD`), and reading back
  its scans, findings and SBOMs;
* ``admission`` -- reviews AdmissionReviews;
* ``auditor`` -- read-only: SBOMs, findings, decisions, reports, verification
  and replay of recorded decisions, the policies in force;
* ``admin`` -- everything, and alone: policy reloads and tests, cancelling
  scans, project credentials.

How an artifact maps to a project: a project-scoped RPC names its project in
the request's ``project`` field. A caller whose only granting role is
``pipeline`` must fill it with a project its identity acts for (its grant's
``projects``, ``*`` for all); an empty or foreign project is PERMISSION_DENIED.
The project is recorded with the decision (``request.project``), so an audit
shows which project a pipeline claimed for which artifact.

Which project an artifact belongs to is kept in the store: the first evidence
recorded for a digest under a project binds the digest to it, and a pipeline
identity is refused RPCs about digests bound only to projects it does not act
for (:mod:`gate.server._scope`; :meth:`Guard.authorize_artifacts`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from datetime import datetime
from typing import TYPE_CHECKING, Any

import grpc

from gate.auth import Authenticator, Credentials, Identity
from gate.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from gate.server._ratelimit import RateLimiter
from gate.server._scope import ArtifactScope

if TYPE_CHECKING:
    from gate.store import EvidenceStore

log = logging.getLogger("gate.audit.auth")

PIPELINE = "pipeline"
ADMISSION = "admission"
AUDITOR = "auditor"
ADMIN = "admin"

_P = frozenset({PIPELINE, ADMIN})
_R = frozenset({AUDITOR, ADMIN})
_PR = frozenset({PIPELINE, AUDITOR, ADMIN})
_ADM = frozenset({ADMISSION, ADMIN})
_A = frozenset({ADMIN})

# Every gate.v1 RPC -> the roles that may call it. A test walks the service
# descriptors and fails on an RPC missing here; at run time a missing RPC is refused to all.
ROLES_FOR_METHOD: Mapping[str, frozenset[str]] = {
    "gate.v1.ScanService/StartScan": _P,
    "gate.v1.ScanService/GetScan": _PR,
    "gate.v1.ScanService/WatchScan": _PR,
    "gate.v1.ScanService/ListFindings": _PR,
    "gate.v1.ScanService/ImportReport": _P,
    "gate.v1.ScanService/CancelScan": _A,
    "gate.v1.SbomService/GenerateSbom": _P,
    "gate.v1.SbomService/UploadSbom": _P,
    "gate.v1.SbomService/GetSbom": _PR,
    "gate.v1.SbomService/ListSboms": _R,
    "gate.v1.SbomService/SearchComponents": _R,
    "gate.v1.SbomService/DiffSboms": _R,
    "gate.v1.SbomService/SummarizeLicenses": _R,
    "gate.v1.SignatureService/VerifyImage": _P,
    "gate.v1.SignatureService/Attest": _P,
    "gate.v1.DecisionService/Decide": _P,
    "gate.v1.DecisionService/Review": _ADM,
    "gate.v1.AuditService/ListDecisions": _R,
    "gate.v1.AuditService/GetDecision": _R,
    "gate.v1.AuditService/ExportPolicyReports": _R,
    "gate.v1.AuditService/VerifyDecision": _R,
    "gate.v1.AuditService/ReplayDecision": _R,
    "gate.v1.AuditService/GetDecisionKey": _PR,
    "gate.v1.PolicyService/ListPolicies": _R,
    "gate.v1.PolicyService/ReloadPolicies": _A,
    "gate.v1.PolicyService/TestPolicies": _A,
    "gate.v1.CredentialsService/ApplyProjectCredentials": _A,
    "gate.v1.CredentialsService/RotateProjectCredentials": _A,
    "gate.v1.CredentialsService/DeleteProjectCredentials": _A,
    "gate.v1.WaiverService/CreateWaiver": _A,
    "gate.v1.WaiverService/ListWaivers": _R,
    "gate.v1.WaiverService/RevokeWaiver": _A,
}

# RPCs about one project's artifacts -> the request field naming the project.
# Only the ``pipeline`` role is held to it; the other roles that may call these are unscoped.
PROJECT_FIELD: Mapping[str, str] = {
    "gate.v1.ScanService/StartScan": "project",
    "gate.v1.ScanService/ImportReport": "project",
    "gate.v1.SbomService/GenerateSbom": "project",
    "gate.v1.SbomService/UploadSbom": "project",
    "gate.v1.SignatureService/Attest": "project",
    "gate.v1.DecisionService/Decide": "project",
}


def authorize(method: str, identity: Identity, request: object) -> None:
    """Allow ``identity`` to call ``method`` with ``request``, or raise.

    Raises:
        PermissionDenied: no role of the identity may call the method, or a
            pipeline-only caller names a project it does not act for.
    """
    allowed = ROLES_FOR_METHOD.get(method, frozenset())
    granting = identity.roles & allowed
    if not granting:
        wanted = ", ".join(sorted(allowed)) or "none (the RPC is not in the authorisation table)"
        have = ", ".join(sorted(identity.roles)) or "none"
        raise PermissionDenied(f"{method} needs one of the roles: {wanted}; {identity.name} has: {have}")
    field = PROJECT_FIELD.get(method)
    if field is None or not pipeline_only(method, identity):
        return
    project = str(getattr(request, field, "") or "")
    if not project:
        raise PermissionDenied(f"{field}: required for a pipeline identity ({identity.name}) in {method}")
    if not identity.acts_for(project):
        raise PermissionDenied(f"{field}: {identity.name} does not act for project {project!r}")


def pipeline_only(method: str, identity: Identity) -> bool:
    """Whether ``pipeline`` is the only role of ``identity`` that may call ``method``.

    Such a caller is held to its projects; any other granting role is not.
    """
    return (identity.roles & ROLES_FOR_METHOD.get(method, frozenset())) == {PIPELINE}


class Guard:
    """Authenticates and authorises each gRPC call before its implementation runs.

    Every refusal is written to the ``gate.audit.auth`` log with the method,
    the peer and the reason (never a token). With a ``limiter``, an identity
    over its rate is refused with RESOURCE_EXHAUSTED. After
    :meth:`scope_artifacts`, :meth:`admit` also holds pipeline identities to
    the projects of the artifacts their requests name.
    """

    def __init__(
        self, authenticator: Authenticator, executor: Executor, limiter: RateLimiter | None = None
    ) -> None:
        """Use ``executor`` for the blocking part (a TokenReview not yet cached)."""
        self._authenticator = authenticator
        self._executor = executor
        self._limiter = limiter
        self._scope: ArtifactScope | None = None

    async def authenticate(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> Identity:
        """The caller's identity.

        Raises:
            Unauthenticated: missing or unaccepted credentials.
            InfrastructureError: a TokenReview could not be made.
        """
        try:
            credentials = Credentials.from_grpc(context.invocation_metadata(), context.auth_context())
            identity = self._authenticator.identify(credentials)
            if identity is None:
                assert credentials.token is not None
                identity = await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._authenticator.review, credentials.token
                )
        except Unauthenticated as error:
            audit_refusal(method, context.peer(), "", "UNAUTHENTICATED", error.message)
            raise
        if self._limiter is not None:
            try:
                self._limiter.take(identity)
            except ResourceExhausted as error:
                audit_refusal(method, context.peer(), identity.name, "RESOURCE_EXHAUSTED", error.message)
                raise
        return identity

    def authorize(
        self, method: str, identity: Identity, request: object, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        """:func:`authorize`, with an audit log entry on refusal."""
        try:
            authorize(method, identity, request)
        except PermissionDenied as error:
            audit_refusal(method, context.peer(), identity.name, "PERMISSION_DENIED", error.message)
            raise

    async def admit(
        self, method: str, identity: Identity, request: object, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        """:meth:`authorize`, then :meth:`authorize_artifacts`: everything a call must pass to run."""
        self.authorize(method, identity, request, context)
        await self.authorize_artifacts(method, identity, request, context)

    def scope_artifacts(self, store: EvidenceStore, clock: Callable[[], datetime]) -> None:
        """Hold pipeline identities to the projects of the artifacts they name, bound in ``store``."""
        self._scope = ArtifactScope(store, clock)

    async def authorize_artifacts(
        self, method: str, identity: Identity, request: object, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        """After :meth:`authorize`: the artifact check of :mod:`gate.server._scope`, audited on refusal.

        The store is read (and an unbound digest claimed) on the executor;
        calls that neither are held to a project nor record evidence under one
        never reach the store.

        Raises:
            PermissionDenied: a pipeline identity names another project's artifact.
            StoreUnavailable: the bindings could not be read or written.
        """
        scope = self._scope
        if scope is None:
            return
        scoped = pipeline_only(method, identity)
        if not scope.applies(method, scoped, request):
            return
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, scope.check, method, identity, scoped, request
            )
        except PermissionDenied as error:
            audit_refusal(method, context.peer(), identity.name, "PERMISSION_DENIED", error.message)
            raise


def audit_refusal(method: str, peer: str, identity: str, status: str, reason: str) -> None:
    """An entry on the ``gate.audit.auth`` log for a refused call (gRPC or webhook)."""
    log.warning(
        "call refused",
        extra={"method": method, "peer": peer, "identity": identity, "status": status, "reason": reason},
    )
