"""gate.v1 API operations on protobuf messages, independent of any transport.

:class:`Api` answers each implemented unary RPC with a blocking function from
request message to response message over the core. The gRPC server wraps it
(:mod:`gate.server._grpc`); the CLI calls it in process when no ``--server`` is
given, so both modes validate and answer identically.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from gate import _convert as cv
from gate.core import ArtifactSelector, Gate
from gate.errors import InvalidArgument, Unsupported
from gate.model import Sbom, SbomFormat, ScanEvent, ScanTarget, Severity, check_id
from gate.store import ComponentQuery, DecisionQuery, FindingQuery
from gate.v1 import (
    audit_pb2,
    common_pb2,
    decision_pb2,
    policy_pb2,
    sbom_pb2,
    scan_pb2,
    signature_pb2,
)

SERVICE_MODULES = (scan_pb2, sbom_pb2, signature_pb2, decision_pb2, audit_pb2, policy_pb2)
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
PENDING_FEATURES: Mapping[str, str] = {
    "gate.v1.SbomService/UploadSbom": "SBOM parsing (the SBOM feature)",
    "gate.v1.SbomService/DiffSboms": "SBOM comparison (the SBOM feature)",
    "gate.v1.SignatureService/VerifyImage": "signature verification (the signatures feature)",
    "gate.v1.SignatureService/Attest": "attestation signing (the signatures feature)",
    "gate.v1.DecisionService/Decide": "policy decisions (the decisions feature)",
    "gate.v1.DecisionService/Review": "admission reviews (the decisions feature)",
    "gate.v1.AuditService/ExportPolicyReports": "PolicyReport export (the decisions feature)",
}

# RPCs that carry documents or reports get the upload limit; the rest the small one.
UPLOAD_METHODS = frozenset(
    {
        "gate.v1.ScanService/ImportReport",
        "gate.v1.SbomService/UploadSbom",
        "gate.v1.SignatureService/Attest",
        "gate.v1.PolicyService/TestPolicies",
    }
)


def unavailable(method: str) -> Unsupported | InvalidArgument:
    """The error for an RPC this gate does not answer (yet)."""
    feature = PENDING_FEATURES.get(method)
    if feature is None:
        return InvalidArgument("method", f"no such RPC: {method}")
    return Unsupported(method, f"not implemented yet; it arrives with {feature}")


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

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self.unary: Mapping[str, Callable[[Any], Message]] = {
            "gate.v1.ScanService/GetScan": self._get_scan,
            "gate.v1.ScanService/StartScan": self._start_scan,
            "gate.v1.ScanService/ImportReport": self._import_report,
            "gate.v1.ScanService/CancelScan": self._cancel_scan,
            "gate.v1.ScanService/ListFindings": self._list_findings,
            "gate.v1.SbomService/GetSbom": self._get_sbom,
            "gate.v1.SbomService/ListSboms": self._list_sboms,
            "gate.v1.SbomService/SearchComponents": self._search_components,
            "gate.v1.AuditService/ListDecisions": self._list_decisions,
            "gate.v1.AuditService/GetDecision": self._get_decision,
            "gate.v1.PolicyService/ListPolicies": self._list_policies,
            "gate.v1.PolicyService/ReloadPolicies": self._reload_policies,
            "gate.v1.PolicyService/TestPolicies": self._test_policies,
        }

        # Point lookups by id: cheap enough on a local SQLite file to run on the
        # caller's event loop (see EvidenceStore.inline_reads). Anything that can
        # scan a table or move megabytes (listings, documents) stays off it.
        self.inline: frozenset[str] = (
            frozenset({"gate.v1.ScanService/GetScan", "gate.v1.AuditService/GetDecision"})
            if gate.store.inline_reads
            else frozenset()
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

        def run() -> None:
            try:
                outcome["sbom"] = self._gate.generate_sbom(
                    selector,
                    ScanTarget(target_kind, request.location),
                    fmt=fmt,
                    generator=request.generator,
                    progress=lambda stage, fraction: events.put((stage, fraction)),
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
        sbom, document = self._gate.get_sbom(request.id, include_document=request.include_document)
        return cv.sbom_to_proto(sbom, document)

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
        if request.version_range:
            raise Unsupported("SearchComponents.version_range", "version ranges arrive with the SBOM feature")
        page = self._gate.search_components(
            ComponentQuery(
                name=request.name,
                purl=request.purl,
                page_size=request.page_size,
                page_token=request.page_token,
            )
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
                since=cv.from_timestamp(request.since) if request.HasField("since") else None,
                until=cv.from_timestamp(request.until) if request.HasField("until") else None,
                page_size=request.page_size,
                page_token=request.page_token,
            )
        )
        return audit_pb2.ListDecisionsResponse(
            decisions=[cv.decision_to_proto(d) for d in page.items], next_page_token=page.next_token
        )

    def _get_decision(self, request: audit_pb2.GetDecisionRequest) -> decision_pb2.Decision:
        return cv.decision_to_proto(self._gate.get_decision(request.id))

    def _list_policies(self, request: policy_pb2.ListPoliciesRequest) -> policy_pb2.ListPoliciesResponse:
        bundle = self._gate.policies
        return policy_pb2.ListPoliciesResponse(
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
