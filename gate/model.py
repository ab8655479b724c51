"""gate's domain model: plain typed values, no I/O.

Artifacts are identified by digest (an OCI content digest, or ``git:<commit>``
for a source tree); tags and references are aliases of a digest. Every other
record (scans, findings, SBOMs, verifications, decisions) is evidence about
one or more artifacts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any, Generic, TypeVar

import orjson

from gate._slots import slot_constructor, slot_replacer
from gate.errors import InvalidArgument

_DIGEST = re.compile(r"(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}|git:(?:[0-9a-f]{40}|[0-9a-f]{64}))")
SHA256_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
"""An image digest as OCI writes it (``fullmatch`` it)."""
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
"""An RFC 1123 label, as Kubernetes names namespaces: at most 63 characters (``fullmatch`` it)."""
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
"""A C0 control character or DEL: never in a name, reference or option value gate stores or shows."""


def check_digest(value: str, field_path: str) -> str:
    """Return ``value`` if it is a digest gate accepts, else raise InvalidArgument.

    Accepted: ``sha256:<64 hex>``, ``sha512:<128 hex>`` (OCI content digests) and
    ``git:<40 or 64 hex>`` (a commit), all lowercase.
    """
    if not value:
        raise InvalidArgument(field_path, "required, got an empty string")
    if not _DIGEST.fullmatch(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InvalidArgument(
            field_path,
            f"expected 'sha256:<64 hex>', 'sha512:<128 hex>' or 'git:<40|64 hex>', got {shown!r}",
        )
    return value


class ArtifactKind(StrEnum):
    """What kind of thing an artifact is."""

    IMAGE = "image"
    SOURCE = "source"
    FILE = "file"


class Severity(IntEnum):
    """Normalised severity; integer order is severity order (UNKNOWN lowest)."""

    UNKNOWN = 0
    INFO = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5


class TargetKind(StrEnum):
    """What a scan or an SBOM generation looks at."""

    IMAGE = "image"
    FILESYSTEM = "filesystem"
    ROOTFS = "rootfs"
    REPOSITORY = "repository"
    SBOM = "sbom"


class ScanState(StrEnum):
    """Life cycle of a scan."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True for states a scan never leaves."""
        return self in (ScanState.SUCCEEDED, ScanState.FAILED, ScanState.CANCELLED)


class FindingKind(StrEnum):
    """What a finding is about."""

    VULNERABILITY = "vulnerability"
    SECRET = "secret"
    MISCONFIGURATION = "misconfiguration"
    LICENSE = "license"
    CODE = "code"
    BUG = "bug"
    CODE_SMELL = "code_smell"
    HOTSPOT = "hotspot"


class FindingStatus(StrEnum):
    """Whether a finding affects the artifact (the scanner's or a VEX statement's word)."""

    AFFECTED = "affected"
    WILL_NOT_FIX = "will_not_fix"
    FIX_DEFERRED = "fix_deferred"
    END_OF_LIFE = "end_of_life"
    NOT_AFFECTED = "not_affected"
    UNDER_INVESTIGATION = "under_investigation"
    RESOLVED = "resolved"


class SbomFormat(StrEnum):
    """Document format of an SBOM."""

    CYCLONEDX_JSON = "cyclonedx-json"
    CYCLONEDX_XML = "cyclonedx-xml"
    SPDX_JSON = "spdx-json"


class RuleOutcome(StrEnum):
    """Outcome of one rule, as Kyverno names them."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    ERROR = "error"
    SKIP = "skip"


class EnforcementAction(StrEnum):
    """What a failing rule does."""

    ENFORCE = "Enforce"
    AUDIT = "Audit"


# Enum.value is a descriptor call (~0.3 us) and a decision's ~20 results are written out
# several times per record (statement, row, writer process): the writers look the text up.
OUTCOME_TEXT: Mapping[RuleOutcome, str] = {outcome: outcome.value for outcome in RuleOutcome}
ACTION_TEXT: Mapping[EnforcementAction, str] = {action: action.value for action in EnforcementAction}


@dataclass(frozen=True, slots=True)
class Artifact:
    """A thing gate holds evidence for, identified by its digest."""

    digest: str
    kind: ArtifactKind
    first_seen: datetime
    name: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScanTarget:
    """What a scan looks at: a kind and a location (reference, path or URL)."""

    kind: TargetKind
    location: str


@dataclass(frozen=True, slots=True)
class SeverityCounts:
    """Numbers of findings by severity."""

    critical: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0
    info: int = 0
    unknown: int = 0

    @classmethod
    def of(cls, severities: Iterable[Severity]) -> SeverityCounts:
        """Count the given severities."""
        tally = dict.fromkeys(Severity, 0)
        for severity in severities:
            tally[severity] += 1
        return cls.from_mapping(tally)

    @classmethod
    def from_mapping(cls, tally: Mapping[Severity, int]) -> SeverityCounts:
        """Build counts from a severity-to-number mapping (missing keys count 0)."""
        return cls(
            critical=tally.get(Severity.CRITICAL, 0),
            high=tally.get(Severity.HIGH, 0),
            medium=tally.get(Severity.MEDIUM, 0),
            low=tally.get(Severity.LOW, 0),
            info=tally.get(Severity.INFO, 0),
            unknown=tally.get(Severity.UNKNOWN, 0),
        )

    @property
    def total(self) -> int:
        """All findings counted."""
        return self.critical + self.high + self.medium + self.low + self.info + self.unknown


@dataclass(frozen=True, slots=True)
class Scan:
    """One run of one scanner provider against one target."""

    id: str
    artifact_digest: str
    scanner: str
    target: ScanTarget
    state: ScanState
    created_at: datetime
    scanner_version: str = ""
    error: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    counts: SeverityCounts = field(default_factory=SeverityCounts)
    finding_count: int = 0
    imported: bool = False


@dataclass(frozen=True, slots=True)
class Package:
    """The package a finding concerns."""

    name: str
    version: str = ""
    purl: str = ""
    fixed_versions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Location:
    """Where in the scanned content a finding is."""

    path: str
    start_line: int = 0
    end_line: int = 0
    layer_digest: str = ""
    commit: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    """A normalised finding. Secrets appear only as ``redacted_match``.

    ``severity`` is on gate's one scale; ``tool_severity`` keeps the tool's own
    value. ``scan_id`` is empty until the finding is bound to a stored scan.
    """

    fingerprint: str
    scan_id: str
    scanner: str
    kind: FindingKind
    rule_id: str
    title: str
    severity: Severity
    description: str = ""
    package: Package | None = None
    location: Location | None = None
    fix_available: bool = False
    references: tuple[str, ...] = ()
    cvss_score: float = 0.0
    redacted_match: str = ""
    tool_severity: str = ""
    status: FindingStatus = FindingStatus.AFFECTED


@dataclass(frozen=True, slots=True)
class Component:
    """A component listed in an SBOM."""

    type: str
    name: str
    version: str = ""
    group: str = ""
    purl: str = ""
    licenses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Sbom:
    """A stored SBOM (its document is kept beside it, fetched on demand)."""

    id: str
    artifact_digest: str
    format: SbomFormat
    spec_version: str
    generator: str
    created_at: datetime
    component_count: int
    document_digest: str


@dataclass(frozen=True, slots=True)
class ComponentMatch:
    """A component found in a stored SBOM."""

    component: Component
    sbom_id: str
    artifact_digest: str
    artifact_aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SignatureResult:
    """Outcome of one signature check.

    ``tlog_index`` is the transparency-log entry's global index (-1 when none is proven)
    and ``integrated_time`` the time the log signed for it; ``tlog_tree`` and
    ``tlog_tree_index`` (-1 when none) where an inclusion proof placed the entry (the
    checkpoint origin and the index in that tree, which a sharded log numbers from zero
    per shard); ``timestamp`` the ``genTime`` of a verified RFC 3161 timestamp. Unknown
    times are None.
    """

    verified: bool
    signer: str
    tlog_index: int = -1
    error: str = ""
    integrated_time: datetime | None = None
    tlog_tree: str = ""
    tlog_tree_index: int = -1
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class AttestationResult:
    """Outcome of one attestation check; the log and time fields are as in SignatureResult."""

    predicate_type: str
    verified: bool
    signer: str = ""
    error: str = ""
    tlog_index: int = -1
    integrated_time: datetime | None = None
    tlog_tree: str = ""
    tlog_tree_index: int = -1
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class Verification:
    """A recorded verification of one image's signatures and attestations."""

    id: str
    artifact_digest: str
    verified: bool
    verified_at: datetime
    signatures: tuple[SignatureResult, ...] = ()
    attestations: tuple[AttestationResult, ...] = ()
    message: str = ""


@dataclass(frozen=True, slots=True)
class RuleResult:
    """The result of one rule of one policy on one resource."""

    policy: str
    rule: str
    outcome: RuleOutcome
    message: str = ""
    remediation: str = ""
    action: EnforcementAction = EnforcementAction.ENFORCE
    resource: str = ""


class DecodedJson(dict[str, Any]):
    """A JSON object exactly as decoded from JSON text (orjson).

    It can hold no NaN or infinity, which JSON cannot spell and orjson refuses, so
    the store writes it without checking every float (a decoded request is ~3 KB,
    and the check cost a second parse of it per decision recorded). It is not changed
    once decoded: its canonical JSON is written once and kept.
    """

    __slots__ = ("_canonical",)
    _canonical: bytes

    def __getstate__(self) -> None:
        # Copies and pickles carry the items, not the kept JSON: a copy may be changed.
        return None

    def canonical_json(self) -> bytes:
        """Its JSON with sorted keys: what the request digest hashes and the store keeps."""
        try:
            return self._canonical
        except AttributeError:
            # Once per request: the seal hashes it and the store writes it (two ~3 KB dumps before).
            self._canonical = orjson.dumps(self, option=orjson.OPT_SORT_KEYS)
            return self._canonical


@dataclass(frozen=True, slots=True)
class DecisionTimings:
    """Seconds spent on a decision."""

    total: float = 0.0
    policy: float = 0.0
    evidence: float = 0.0


@dataclass(frozen=True, slots=True)
class Decision:
    """A recorded allow/deny answer, with everything needed to replay it.

    ``request`` holds the JSON-compatible input the decision was made from.
    """

    id: str
    allowed: bool
    message: str
    stage: str
    decided_at: datetime
    results: tuple[RuleResult, ...] = ()
    policy_bundle_digest: str = ""
    evidence_ids: tuple[str, ...] = ()
    caller: str = ""
    artifact_digests: tuple[str, ...] = ()
    timings: DecisionTimings = field(default_factory=DecisionTimings)
    request: Mapping[str, Any] = field(default_factory=dict)
    signature: bytes = b""
    # What was decided about (``kind/namespace/name`` for an admission review).
    subject: str = ""
    # ``sha256:<hex>`` of the canonical JSON of ``request``.
    request_digest: str = ""


# Built and copied on every decision's path, through the slots rather than the frozen classes'
# __init__ (one object.__setattr__ per field): a Decision in 1.2 us against 3.2, a copy in 1.5
# against 5.7 for dataclasses.replace (gate._slots).
new_decision = slot_constructor(Decision)
new_rule_result = slot_constructor(RuleResult)
new_decision_timings = slot_constructor(DecisionTimings)
replace_decision = slot_replacer(Decision)


def decision_text_holds_nul(decision: Decision) -> bool:
    """Whether a field of ``decision`` stored in a text column (message, subject, caller, stage) holds a NUL.

    PostgreSQL's text columns cannot (see gate.decisions.storable, which escapes them).
    """
    # Spelled out: every recorded decision is asked, and a generator costs ~1 us.
    return (
        "\x00" in decision.message
        or "\x00" in decision.subject
        or "\x00" in decision.caller
        or "\x00" in decision.stage
    )


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; ``next_token`` is empty on the last page."""

    items: tuple[T, ...]
    next_token: str = ""


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def check_id(value: str, field_path: str) -> str:
    """Return ``value`` if it is a record id (a lowercase UUID), else raise InvalidArgument."""
    if not value:
        raise InvalidArgument(field_path, "required, got an empty string")
    if not _UUID.fullmatch(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InvalidArgument(field_path, f"expected a UUID like 0f8e...-...., got {shown!r}")
    return value


@dataclass(frozen=True, slots=True)
class ScanEvent:
    """Progress of one scan, as watchers see it; ``scan`` is set on the last event only."""

    scan_id: str
    state: ScanState
    time: datetime
    phase: str = ""
    message: str = ""
    fraction: float = -1.0
    scan: Scan | None = None
