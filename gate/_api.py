"""gate.v1 API operations on protobuf messages, independent of any transport.

:class:`Api` answers each implemented unary RPC with a blocking function from
request message to response message over the core. The gRPC server wraps it
(:mod:`gate.server._grpc`); the CLI calls it in process when no ``--server`` is
given, so both modes validate and answer identically.
"""

from __future__ import annotations

import functools
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from gate import _convert as cv
from gate._waiver_api import WaiverApi
from gate.auth import current_caller
from gate.core import ArtifactSelector, Gate
from gate.decisions import after_commit, statement_payload
from gate.errors import InvalidArgument, Unsupported
from gate.model import Decision, Sbom, SbomFormat, ScanEvent, ScanTarget, Severity, check_digest, check_id
from gate.store import ComponentQuery, DecisionQuery, FindingQuery
from gate.v1 import (
    audit_pb2,
    common_pb2,
    credentials_pb2,
    decision_pb2,
    policy_pb2,
    sbom_pb2,
    scan_pb2,
    signature_pb2,
    waiver_pb2,
)

if TYPE_CHECKING:
    from gate.credentials import CredentialMaterial, CredentialsResult, ProjectCredentials, ProjectRef

SERVICE_MODULES = (
    scan_pb2,
    sbom_pb2,
    signature_pb2,
    decision_pb2,
    audit_pb2,
    policy_pb2,
    credentials_pb2,
    waiver_pb2,
)
SERVICE_NAMES: tuple[str, ...] = tuple(
    service.full_name for module in SERVICE_MODULES for service in module.DESCRIPTOR.services_by_name.values()
)
METHODS: Mapping[str, MethodDescriptor] = {
    f"{service.full_name}/{method.name}": method
    for module in SERVICE_MODULES
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
}

# How long a stream waits for an event before yielding None (an idle tick).
IDLE_SECONDS = 1.0

# RPCs whose feature has not landed yet, with the feature that brings them.
PENDING_FEATURES: Mapping[str, str] = {}

# RPCs that carry documents or reports get the upload limit; the rest the small one.
UPLOAD_METHODS = frozenset(
    {
        "gate.v1.ScanService/ImportReport",
        "gate.v1.SbomService/UploadSbom",
        "gate.v1.SignatureService/Attest",
        "gate.v1.PolicyService/TestPolicies",
    }
)


def unavailable(method: str, pending: Mapping[str, str] = PENDING_FEATURES) -> Unsupported | InvalidArgument:
    """The error for an RPC this gate does not answer (yet); ``pending`` maps RPCs to their feature."""
    feature = pending.get(method)
    if feature is None:
        return InvalidArgument("method", f"no such RPC: {method}")
    return Unsupported(method, f"not implemented yet; it arrives with {feature}")


def _seal_on_commit(answer: decision_pb2.Decision, decision: Decision) -> None:
    """A decision recorded but not sealed yet (:meth:`Gate.decide`) gets its seal with the commit."""
    if decision.id and not decision.request_digest:
        # Signed by the decision writer, off the request path (gate.decisions.after_commit).
        after_commit(lambda acks: _add_seal(answer, acks.seal(decision.id)))


def _add_seal(answer: decision_pb2.Decision, seal: tuple[str, bytes] | None) -> None:
    if seal is not None:
        answer.request_digest, answer.signature = seal


def _selector(ref: common_pb2.ArtifactRef, field: str) -> ArtifactSelector:
    which = ref.WhichOneof("ref")
    if which == "digest":
        return ArtifactSelector(digest=ref.digest)
    if which == "reference":
        if not ref.reference:
            raise InvalidArgument(f"{field}.reference", "required, got an empty string")
        return ArtifactSelector(reference=ref.reference)
    raise InvalidArgument(field, "required: set digest or reference")


class Api:
    """The implemented unary RPCs of gate.v1, as blocking message-to-message functions."""

    def __init__(self, gate: Gate, *, credentials: ProjectCredentials | None = None) -> None:
        """Answer over ``gate``; ``credentials`` manages project credentials (Unsupported without)."""
        self._gate = gate
        self._credentials = credentials
        self.unary: Mapping[str, Callable[[Any], Message]] = {
            "gate.v1.ScanService/GetScan": self._get_scan,
            "gate.v1.ScanService/StartScan": self._start_scan,
            "gate.v1.ScanService/ImportReport": self._import_report,
            "gate.v1.ScanService/CancelScan": self._cancel_scan,
            "gate.v1.ScanService/ListFindings": self._list_findings,
            "gate.v1.SbomService/GetSbom": self._get_sbom,
            "gate.v1.SbomService/ListSboms": self._list_sboms,
            "gate.v1.SbomService/SearchComponents": self._search_components,
            "gate.v1.SbomService/UploadSbom": self._upload_sbom,
            "gate.v1.SbomService/DiffSboms": self._diff_sboms,
            "gate.v1.SbomService/SummarizeLicenses": self._summarize_licenses,
            "gate.v1.SignatureService/VerifyImage": self._verify_image,
            "gate.v1.SignatureService/Attest": self._attest,
            "gate.v1.DecisionService/Decide": self._decide,
            "gate.v1.DecisionService/Review": self._review,
            "gate.v1.AuditService/ListDecisions": self._list_decisions,
            "gate.v1.AuditService/GetDecision": self._get_decision,
            "gate.v1.AuditService/VerifyDecision": self._verify_decision,
            "gate.v1.AuditService/ReplayDecision": self._replay_decision,
            "gate.v1.AuditService/GetDecisionKey": self._get_decision_key,
            "gate.v1.AuditService/ExportPolicyReports": self._export_policy_reports,
            "gate.v1.PolicyService/ListPolicies": self._list_policies,
            "gate.v1.PolicyService/ReloadPolicies": self._reload_policies,
            "gate.v1.PolicyService/TestPolicies": self._test_policies,
            "gate.v1.CredentialsService/ApplyProjectCredentials": self._apply_credentials,
            "gate.v1.CredentialsService/RotateProjectCredentials": self._rotate_credentials,
            "gate.v1.CredentialsService/DeleteProjectCredentials": self._delete_credentials,
            **WaiverApi(gate).unary,
        }

        # Point lookups by id: cheap enough on a local SQLite file to run on the
        # caller's event loop (see EvidenceStore.inline_reads). Anything that can
        # scan a table or move megabytes (listings, documents) stays off it.
        self.inline: frozenset[str] = (
            frozenset({"gate.v1.ScanService/GetScan", "gate.v1.AuditService/GetDecision"})
            if gate.store.inline_reads
            else frozenset()
        )
        # Decisions: tried on the event loop first, inside gate._nonblocking.nonblocking(), and
        # moved to a worker only when something they need is not in memory (the evidence or
        # waivers caches, room in the decision queue). The hand-offs to a worker and back cost
        # more CPU than evaluating the policies (benchmarks/README.md, "Evaluating on the event loop").
        self.inline_first: frozenset[str] = frozenset(
            {"gate.v1.DecisionService/Decide", "gate.v1.DecisionService/Review"}
        )

        # Server-streaming RPCs: blocking generators that yield a message per
        # event, or None when idle (so a transport can notice a gone client).
        self.streams: Mapping[str, Callable[[Any], Iterator[Message | None]]] = {
            "gate.v1.ScanService/WatchScan": self._watch_scan,
            "gate.v1.SbomService/GenerateSbom": self._generate_sbom,
        }

    def invoke(self, method: str, request: Message) -> Message:
        """Answer one unary RPC (``package.Service/Method``); raises GateError."""
        implementation = self.unary.get(method)
        if implementation is None:
            raise unavailable(method)
        return implementation(request)

    def _get_scan(self, request: scan_pb2.GetScanRequest) -> scan_pb2.Scan:
        return cv.scan_to_proto(self._gate.get_scan(request.id))

    def _start_scan(self, request: scan_pb2.StartScanRequest) -> scan_pb2.StartScanResponse:
        target_kind = cv.enum_from_proto(cv.TARGET_KIND, request.target.kind, "target.kind")
        if target_kind is None:
            raise InvalidArgument("target.kind", "required: set the kind of target")
        if not request.HasField("artifact"):
            raise InvalidArgument(
                "artifact",
                "required: set the digest (or a known reference) of the artifact the findings are about",
            )
        scans = self._gate.start_scan(
            _selector(request.artifact, "artifact"),
            ScanTarget(target_kind, request.target.location),
            list(request.scanners),
            dict(request.options),
        )
        return scan_pb2.StartScanResponse(scans=[cv.scan_to_proto(scan) for scan in scans])

    def _import_report(self, request: scan_pb2.ImportReportRequest) -> scan_pb2.Scan:
        if not request.HasField("artifact"):
            raise InvalidArgument("artifact", "required: set the digest of the artifact the report is about")
        kind = cv.enum_from_proto(cv.ARTIFACT_KIND, request.artifact_kind, "artifact_kind")
        target = None
        if request.HasField("target"):
            target_kind = cv.enum_from_proto(cv.TARGET_KIND, request.target.kind, "target.kind")
            if target_kind is not None:
                target = ScanTarget(target_kind, request.target.location)
        if not request.scanner:
            raise InvalidArgument("scanner", "required: the tool whose format the report is in")
        scan = self._gate.import_report(
            _selector(request.artifact, "artifact"),
            tool=request.scanner,
            report=request.report,
            target=target,
            kind=kind,
            name=request.artifact_name,
        )
        return cv.scan_to_proto(scan)

    def _generate_sbom(
        self, request: sbom_pb2.GenerateSbomRequest
    ) -> Iterator[sbom_pb2.GenerateSbomEvent | None]:
        target_kind = cv.enum_from_proto(cv.TARGET_KIND, request.target_kind, "target_kind")
        if target_kind is None:
            raise InvalidArgument("target_kind", "required: set the kind of target")
        fmt = cv.enum_from_proto(cv.SBOM_FORMAT, request.format, "format") or SbomFormat.CYCLONEDX_JSON
        selector = _selector(request.artifact, "artifact") if request.HasField("artifact") else None
        events: queue.Queue[tuple[str, float]] = queue.Queue()
        outcome: dict[str, object] = {}
        warnings: list[str] = []

        def run() -> None:
            try:
                outcome["sbom"] = self._gate.generate_sbom(
                    selector,
                    ScanTarget(target_kind, request.location),
                    fmt=fmt,
                    generator=request.generator,
                    progress=lambda stage, fraction: events.put((stage, fraction)),
                    warn=warnings.append,
                )
            except BaseException as error:  # re-raised in the caller's thread below
                outcome["error"] = error
            finally:
                events.put(("", -2.0))

        worker = threading.Thread(target=run, name="gate-sbom", daemon=True)
        worker.start()
        while True:
            try:
                stage, fraction = events.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                yield None
                continue
            if fraction == -2.0:
                break
            yield sbom_pb2.GenerateSbomEvent(
                progress=common_pb2.Progress(
                    phase="generate", message=stage, fraction=fraction, time=cv.timestamp(self._gate.clock())
                )
            )
        worker.join()
        error = outcome.get("error")
        if isinstance(error, BaseException):
            raise error
        sbom = outcome["sbom"]
        assert isinstance(sbom, Sbom)
        yield sbom_pb2.GenerateSbomEvent(
            progress=common_pb2.Progress(phase="stored", message="SBOM stored", fraction=1.0),
            sbom=cv.sbom_to_proto(sbom),
            warnings=warnings,
        )

    def _cancel_scan(self, request: scan_pb2.CancelScanRequest) -> scan_pb2.Scan:
        scan = self._gate.cancel_scan(request.id)
        return cv.scan_to_proto(scan)

    def _watch_scan(self, request: scan_pb2.WatchScanRequest) -> Iterator[scan_pb2.ScanEvent | None]:
        scan_id = check_id(request.id, "id")
        events: queue.Queue[ScanEvent] = queue.Queue()
        jobs = self._gate.scans
        unsubscribe = jobs.subscribe(scan_id, events.put) if jobs is not None else None
        try:
            if unsubscribe is None:
                yield from self._poll_scan(scan_id)
                return
            while True:
                try:
                    event = events.get(timeout=IDLE_SECONDS)
                except queue.Empty:
                    yield None
                    continue
                yield cv.scan_event_to_proto(event)
                if event.scan is not None:
                    return
        finally:
            if unsubscribe is not None:
                unsubscribe()

    def _poll_scan(self, scan_id: str) -> Iterator[scan_pb2.ScanEvent | None]:
        # The scan is finished, or another gate sharing the store runs it.
        last_state = None
        while True:
            scan = self._gate.get_scan(scan_id)
            if scan.state.terminal:
                yield cv.scan_event_to_proto(
                    ScanEvent(scan.id, scan.state, self._gate.clock(), "finished", scan.error, 1.0, scan)
                )
                return
            if scan.state != last_state:
                last_state = scan.state
                yield cv.scan_event_to_proto(
                    ScanEvent(scan.id, scan.state, self._gate.clock(), scan.state.value)
                )
            else:
                yield None
            time.sleep(IDLE_SECONDS)

    def _list_findings(self, request: scan_pb2.ListFindingsRequest) -> scan_pb2.ListFindingsResponse:
        scope = request.WhichOneof("scope")
        scan_id = artifact_digest = ""
        if scope == "scan_id":
            scan_id = check_id(request.scan_id, "scan_id")
        elif scope == "artifact":
            artifact_digest = self._gate.resolve(_selector(request.artifact, "artifact"), "artifact")
        else:
            raise InvalidArgument("scope", "required: set artifact or scan_id")
        min_severity = cv.enum_from_proto(cv.SEVERITY, request.min_severity, "min_severity")
        kinds = frozenset(
            kind
            for index, value in enumerate(request.kinds)
            if (kind := cv.enum_from_proto(cv.FINDING_KIND, value, f"kinds[{index}]")) is not None
        )
        page = self._gate.list_findings(
            FindingQuery(
                scan_id=scan_id,
                artifact_digest=artifact_digest,
                min_severity=min_severity or Severity.UNKNOWN,
                kinds=kinds,
                page_size=request.page_size,
                page_token=request.page_token,
            )
        )
        return scan_pb2.ListFindingsResponse(
            findings=[cv.finding_to_proto(f) for f in page.findings],
            next_page_token=page.next_token,
            counts=cv.counts_to_proto(page.counts),
        )

    def _get_sbom(self, request: sbom_pb2.GetSbomRequest) -> sbom_pb2.Sbom:
        fmt = cv.enum_from_proto(cv.SBOM_FORMAT, request.format, "format")
        sbom, document = self._gate.get_sbom(request.id, include_document=request.include_document, fmt=fmt)
        return cv.sbom_to_proto(sbom, document)

    def _upload_sbom(self, request: sbom_pb2.UploadSbomRequest) -> sbom_pb2.Sbom:
        if not request.HasField("artifact"):
            raise InvalidArgument("artifact", "required: set the digest of the artifact the SBOM describes")
        sbom = self._gate.upload_sbom(
            _selector(request.artifact, "artifact"),
            request.document,
            fmt=cv.enum_from_proto(cv.SBOM_FORMAT, request.format, "format"),
            kind=cv.enum_from_proto(cv.ARTIFACT_KIND, request.artifact_kind, "artifact_kind"),
            name=request.artifact_name,
        )
        return cv.sbom_to_proto(sbom)

    def _sbom_of(self, sbom_id: str, artifact: common_pb2.ArtifactRef | None, field: str) -> str:
        """An SBOM id given directly, or the newest SBOM of an artifact."""
        if sbom_id and artifact is not None:
            raise InvalidArgument(field, "set an SBOM id or an artifact, not both")
        if artifact is not None:
            return self._gate.latest_sbom(self._gate.resolve(_selector(artifact, field), field)).id
        if not sbom_id:
            raise InvalidArgument(field, "required: set an SBOM id or an artifact")
        return sbom_id

    def _diff_sboms(self, request: sbom_pb2.DiffSbomsRequest) -> sbom_pb2.DiffSbomsResponse:
        base = self._sbom_of(
            request.base_id, request.base_artifact if request.HasField("base_artifact") else None, "base_id"
        )
        head = self._sbom_of(
            request.head_id, request.head_artifact if request.HasField("head_artifact") else None, "head_id"
        )
        result = self._gate.diff_sboms(base, head)
        return sbom_pb2.DiffSbomsResponse(
            added=[cv.component_to_proto(c) for c in result.added],
            removed=[cv.component_to_proto(c) for c in result.removed],
            changed=[
                sbom_pb2.ComponentChange(
                    base=cv.component_to_proto(change.base), head=cv.component_to_proto(change.head)
                )
                for change in result.changed
            ],
            base_id=base,
            head_id=head,
        )

    def _summarize_licenses(
        self, request: sbom_pb2.SummarizeLicensesRequest
    ) -> sbom_pb2.SummarizeLicensesResponse:
        sbom_id = self._sbom_of(
            request.sbom_id, request.artifact if request.HasField("artifact") else None, "sbom_id"
        )
        summary = self._gate.summarize_licenses(sbom_id)
        return sbom_pb2.SummarizeLicensesResponse(
            sbom_id=summary.sbom_id,
            component_count=summary.component_count,
            licenses=[
                sbom_pb2.LicenseCount(
                    license=entry.license,
                    count=entry.count,
                    components=[cv.component_to_proto(c) for c in entry.components],
                )
                for entry in summary.licenses
            ],
            unknown_count=len(summary.unknown),
            unknown=[cv.component_to_proto(c) for c in summary.unknown],
        )

    def _list_sboms(self, request: sbom_pb2.ListSbomsRequest) -> sbom_pb2.ListSbomsResponse:
        digest = ""
        if request.HasField("artifact"):
            digest = self._gate.resolve(_selector(request.artifact, "artifact"), "artifact")
        page = self._gate.list_sboms(digest, request.page_size, request.page_token)
        return sbom_pb2.ListSbomsResponse(
            sboms=[cv.sbom_to_proto(s) for s in page.items], next_page_token=page.next_token
        )

    def _search_components(
        self, request: sbom_pb2.SearchComponentsRequest
    ) -> sbom_pb2.SearchComponentsResponse:
        page = self._gate.search_components(
            ComponentQuery(
                name=request.name,
                purl=request.purl,
                page_size=request.page_size,
                page_token=request.page_token,
            ),
            version_range=request.version_range,
        )
        return sbom_pb2.SearchComponentsResponse(
            matches=[cv.match_to_proto(match) for match in page.items], next_page_token=page.next_token
        )

    def _list_decisions(self, request: audit_pb2.ListDecisionsRequest) -> audit_pb2.ListDecisionsResponse:
        digest = ""
        if request.HasField("artifact"):
            digest = self._gate.resolve(_selector(request.artifact, "artifact"), "artifact")
        if request.filter not in audit_pb2.DecisionFilter.values():
            raise InvalidArgument("filter", f"unknown enum value {request.filter}; expected 0, 1 or 2")
        allowed = {
            audit_pb2.DECISION_FILTER_UNSPECIFIED: None,
            audit_pb2.DECISION_FILTER_ALLOWED: True,
            audit_pb2.DECISION_FILTER_DENIED: False,
        }[request.filter]
        page = self._gate.list_decisions(
            DecisionQuery(
                artifact_digest=digest,
                allowed=allowed,
                stage=request.stage,
                since=cv.from_timestamp(request.since, "since") if request.HasField("since") else None,
                until=cv.from_timestamp(request.until, "until") if request.HasField("until") else None,
                page_size=request.page_size,
                page_token=request.page_token,
            )
        )
        return audit_pb2.ListDecisionsResponse(
            decisions=[cv.decision_to_proto(d) for d in page.items], next_page_token=page.next_token
        )

    def _verify_image(self, request: signature_pb2.VerifyImageRequest) -> signature_pb2.Verification:
        from gate.signatures import Identity
        from gate.verification import VerifyRequest

        if not request.image:
            raise InvalidArgument("image", "required: registry/repository@sha256:... or :tag")
        policy = request.policy
        identities = []
        for index, identity in enumerate(policy.identities):
            if not identity.issuer:
                raise InvalidArgument(f"policy.identities[{index}].issuer", "required: the OIDC issuer")
            try:
                identities.append(
                    Identity(
                        subject=identity.subject,
                        subject_regexp=identity.subject_regexp,
                        issuer=identity.issuer,
                    )
                )
            except InvalidArgument as error:
                raise InvalidArgument(f"policy.identities[{index}]", error.problem) from None
        if not policy.public_keys and not identities:
            raise InvalidArgument("policy", "name at least one public key or keyless identity")
        if policy.attestations_only and not policy.required_predicate_types:
            raise InvalidArgument(
                "policy.required_predicate_types", "attestations_only needs at least one type"
            )
        verify = VerifyRequest(
            public_keys=tuple(policy.public_keys),
            identities=tuple(identities),
            require_tlog=policy.require_tlog,
            predicate_types=tuple(policy.required_predicate_types),
            attestations_only=policy.attestations_only,
        )
        record, result = self._gate.verify_image(request.image, verify)
        answer = cv.verification_to_proto(record)
        # The predicates are returned to the caller, not stored with the record.
        predicates = [
            json.dumps(check.predicate).encode() if check.verified else b""
            for checks in result.attestations.values()
            for check in checks
        ]
        for message, predicate in zip(answer.attestations, predicates, strict=True):
            message.predicate = predicate
        return answer

    def _attest(self, request: signature_pb2.AttestRequest) -> signature_pb2.AttestResponse:
        if not request.image:
            raise InvalidArgument("image", "required: registry/repository@sha256:... or :tag")
        envelope, pushed = self._gate.attest(
            request.image, request.predicate_type, request.predicate, push=request.push
        )
        return signature_pb2.AttestResponse(envelope=envelope, pushed_reference=pushed)

    def _decide(self, request: decision_pb2.DecideRequest) -> decision_pb2.Decision:
        from gate import pipeline  # here, not at the top: see gate.core

        which = request.WhichOneof("subject")
        if which == "artifact":
            ref = request.artifact
            if ref.WhichOneof("ref") == "reference":
                if not ref.reference:
                    raise InvalidArgument("artifact.reference", "required, got an empty string")
                # The reference becomes the image of the Pod the policies see: one that no
                # registry could serve (a 63-hex digest, a NUL) would be judged as if it could.
                _checked_reference(ref.reference)
                subject = pipeline.DecideSubject(image=ref.reference)
            elif ref.WhichOneof("ref") == "digest":
                digest = check_digest(ref.digest, "artifact.digest")
                name = self._gate.artifact_name(digest)
                if not name:
                    raise InvalidArgument(
                        "artifact.digest", f"gate knows no image {digest}; name it by reference (repo@digest)"
                    )
                subject = pipeline.DecideSubject(image=f"{name}@{digest}")
            else:
                raise InvalidArgument("artifact", "required: set digest or reference")
        elif which == "manifest":
            subject = pipeline.DecideSubject(manifest=request.manifest)
        elif which == "source":
            subject = pipeline.DecideSubject(
                source=pipeline.source_tree(request.source.repository, request.source.commit)
            )
        else:
            raise InvalidArgument("subject", "required: one of artifact, manifest, source")
        decision = self._gate.decide(
            subject, request.stage, project=request.project, dry_run=request.dry_run, caller=current_caller()
        )
        answer = cv.decision_to_proto(decision)
        _seal_on_commit(answer, decision)
        return answer

    def _review(self, request: decision_pb2.ReviewRequest) -> decision_pb2.ReviewResponse:
        # The same path as the webhook's /validate: parse and check, decide, record.
        from gate.decisions import parse_review

        if not request.admission_review:
            raise InvalidArgument("admission_review", "required: an AdmissionReview as JSON")
        from policies import ResourceLimitError

        started = time.perf_counter()
        try:
            review = parse_review(request.admission_review)
        except ResourceLimitError as error:
            # Too deep or too large is a fault of this request's field, as for a Decide manifest
            # (gate.pipeline.manifest_resources), not a precondition of the evidence.
            raise InvalidArgument("admission_review", str(error)) from None
        outcome = self._gate.review(review, started=started)
        return decision_pb2.ReviewResponse(
            admission_review=outcome.response, decision=cv.decision_to_proto(outcome.decision)
        )

    def _verify_decision(self, request: audit_pb2.VerifyDecisionRequest) -> audit_pb2.DecisionCheck:
        check = self._gate.verify_decision(request.id, request.public_key.encode())
        return audit_pb2.DecisionCheck(
            verified=check.verified, reason=check.reason, signer=check.signer, statement=check.statement
        )

    def _replay_decision(self, request: audit_pb2.ReplayDecisionRequest) -> audit_pb2.ReplayDecisionResponse:
        replay = self._gate.replay_decision(request.id)
        return audit_pb2.ReplayDecisionResponse(
            same=replay.same,
            recorded=cv.decision_to_proto(replay.recorded),
            replayed=cv.decision_to_proto(replay.replayed),
            differences=list(replay.differences),
            bundle_found=replay.bundle_found,
        )

    def _get_decision_key(self, request: audit_pb2.GetDecisionKeyRequest) -> audit_pb2.DecisionKey:
        pem, fingerprint = self._gate.decision_key()
        return audit_pb2.DecisionKey(public_key=pem.decode(), fingerprint=fingerprint)

    def _export_policy_reports(
        self, request: audit_pb2.ExportPolicyReportsRequest
    ) -> audit_pb2.ExportPolicyReportsResponse:
        reports = self._gate.export_policy_reports(
            since=cv.from_timestamp(request.since, "since") if request.HasField("since") else None,
            namespace=request.namespace,
        )
        return audit_pb2.ExportPolicyReportsResponse(
            reports=[json.dumps(report, sort_keys=True).encode() for report in reports]
        )

    def _get_decision(self, request: audit_pb2.GetDecisionRequest) -> decision_pb2.Decision:
        decision = self._gate.get_decision(request.id)
        answer = cv.decision_to_proto(decision)
        if decision.request_digest:
            # What the seal proves, exactly: a client cannot rebuild it from the message (its
            # timings are Durations, rounded to nanoseconds).
            answer.statement = statement_payload(decision)
        return answer

    def _list_policies(self, request: policy_pb2.ListPoliciesRequest) -> policy_pb2.ListPoliciesResponse:
        bundle = self._gate.policies
        failed = self._gate.policy_reload_error
        return policy_pb2.ListPoliciesResponse(
            reload_error=failed[0] if failed else "",
            reload_error_time=cv.timestamp(failed[1]) if failed else None,
            policies=[
                policy_pb2.PolicyInfo(
                    kind=policy.kind,
                    name=policy.name,
                    namespace=policy.namespace,
                    failure_action=policy.action.value,
                    rules=[rule.name for rule in policy.rules],
                    source=policy.source,
                )
                for policy in sorted(bundle.policies, key=lambda p: (p.kind, p.namespace, p.name))
            ],
            bundle_digest=bundle.digest,
        )

    def _reload_policies(
        self, request: policy_pb2.ReloadPoliciesRequest
    ) -> policy_pb2.ReloadPoliciesResponse:
        bundle = self._gate.reload_policies()
        return policy_pb2.ReloadPoliciesResponse(
            bundle_digest=bundle.digest, policy_count=len(bundle.policies)
        )

    def _test_policies(self, request: policy_pb2.TestPoliciesRequest) -> policy_pb2.TestPoliciesResponse:
        report = self._gate.test_policies([(f.path, f.content) for f in request.files])
        strict = request.strict
        failed = report.failed(strict=strict)
        return policy_pb2.TestPoliciesResponse(
            results=[
                policy_pb2.PolicyTestResult(
                    test=row.test_file,
                    policy=row.policy,
                    rule=row.rule,
                    resource=row.resource,
                    expected=row.expected,
                    actual=row.actual,
                    passed=row.agrees(strict=strict),
                    reason=row.reason,
                )
                for row in report.rows
            ],
            passed=failed == 0 and not report.errors,
            errors=report.errors,
            passed_count=report.passed(strict=strict),
            failed_count=failed,
        )

    # --- project credentials ---------------------------------------------------

    def _credentials_service(self) -> ProjectCredentials:
        if self._credentials is None:
            raise Unsupported("project credentials", "this gate has no Kubernetes connection configured")
        return self._credentials

    def _credential_material(
        self, request: credentials_pb2.ProjectCredentialsRequest
    ) -> tuple[ProjectRef, CredentialMaterial]:
        from gate.credentials import CredentialMaterial, ProjectRef

        ref = ProjectRef.of(request.project, request.namespace)
        material = CredentialMaterial.check(
            ssh_private_key=request.ssh_private_key,
            known_hosts=request.known_hosts,
            registry=request.registry,
            username=request.username,
            password=request.password,
            git_host=request.git_host,
        )
        return ref, material

    def _apply_credentials(
        self, request: credentials_pb2.ProjectCredentialsRequest
    ) -> credentials_pb2.ProjectCredentialsResult:
        service = self._credentials_service()
        return _credentials_result(service.apply(*self._credential_material(request)))

    def _rotate_credentials(
        self, request: credentials_pb2.ProjectCredentialsRequest
    ) -> credentials_pb2.ProjectCredentialsResult:
        service = self._credentials_service()
        return _credentials_result(service.rotate(*self._credential_material(request)))

    def _delete_credentials(
        self, request: credentials_pb2.DeleteProjectCredentialsRequest
    ) -> credentials_pb2.ProjectCredentialsResult:
        from gate.credentials import ProjectRef

        service = self._credentials_service()
        return _credentials_result(service.delete(ProjectRef.of(request.project, request.namespace)))


def _credentials_result(result: CredentialsResult) -> credentials_pb2.ProjectCredentialsResult:
    return credentials_pb2.ProjectCredentialsResult(
        objects=[
            credentials_pb2.ObjectChange(kind=c.kind, name=c.name, namespace=c.namespace, action=c.action)
            for c in result.changes
        ],
        service_account=result.service_account,
    )


@functools.lru_cache(maxsize=1024)
def _checked_reference(reference: str) -> None:
    """Refuse an image reference no registry could serve (InvalidArgument on artifact.reference).

    Remembered once it passes: pipelines ask about the same few images at every stage, and the
    parse (~5 us) was 2-3 % of a Decide's instructions. Refusals are not remembered.
    """
    from gate.oci import ImageRef

    ImageRef.parse(reference, field="artifact.reference")
