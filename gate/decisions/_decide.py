"""The admission decision: a parsed review and a policy bundle in, the answer and its record out.

Pure: the caller supplies the policies, the evidence context, the clock's
reading and the decision id; nothing here reads a file, a socket or the store.
"""

from __future__ import annotations

import enum
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from gate.decisions._review import AdmissionReview
from gate.model import (
    Decision,
    DecisionTimings,
    EnforcementAction,
    RuleOutcome,
    RuleResult,
    new_decision,
    new_decision_timings,
    new_rule_result,
)

if TYPE_CHECKING:
    from policies import PolicyBundle, RuleResponse

STAGE = "admission"

# Random bits of decision ids, from a generator seeded once from the OS. uuid.uuid4()
# asks the OS for every id, a system call that gives up the GIL on the request path;
# ids must be unique, not secret.
_ids = random.Random(os.urandom(32))  # noqa: S311  # uniqueness, not secrecy
_MILLIS_MASK = (1 << 48) - 1


def new_decision_id() -> str:
    """A time-ordered UUID (version 7, RFC 9562) for a decision.

    The id is the decisions table's primary key. Random (version 4) ids put every
    insert on a random leaf of its index, so each decision dirtied a page of its own:
    with 30,000 rows stored, SQLite spent 157-207 us per decision in batches against
    113-144 us with time-ordered ids, and random keys age a PostgreSQL index the same way.
    Its first 48 bits are the Unix time in milliseconds; 74 random bits follow.
    """
    millis = time.time_ns() // 1_000_000
    value = (
        (millis & _MILLIS_MASK) << 80
        | 0x7 << 76
        | _ids.getrandbits(12) << 64
        | 0b10 << 62  # the RFC variant
        | _ids.getrandbits(62)
    )
    # What str(uuid.UUID(int=value)) gives, without building the object (a third of the cost).
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


class FailureMode(enum.Enum):
    """What the webhook answers when it cannot decide (internal error, budget exceeded)."""

    FAIL_CLOSED = "fail-closed"
    FAIL_OPEN = "fail-open"


class Failure(enum.Enum):
    """Why no decision could be made."""

    ERROR = "internal error"
    BUDGET = "time budget exceeded"


@dataclass(frozen=True, slots=True)
class AdmissionSettings:
    """How reviews are answered: the time budget (seconds) and the failure mode."""

    budget: float = 2.0
    failure_mode: FailureMode = FailureMode.FAIL_CLOSED


@dataclass(frozen=True, slots=True)
class Evidence:
    """Evidence context for one review: values for the rules and the ids of the records used.

    ``values`` are dotted context paths (``evidence.images``) set for every rule,
    like a ``kyverno test`` Values file.
    """

    values: Mapping[str, Any] = field(default_factory=dict)
    ids: tuple[str, ...] = ()
    # Answers the rules' apiCalls to gate's evidence endpoint (policies.ApiCallResolver).
    api_calls: Any = None
    # Checks verifyImages rules against the registry (policies.ImageVerifier).
    image_verifier: Any = None
    # Ids of records the api_calls resolver read while the rules ran (filled during evaluation).
    used: list[str] | None = None
    # Waivers in force (policies.Waiver), and digests of the request's images their digest
    # selectors compare against (image reference -> digest).
    waivers: tuple[Any, ...] = ()
    image_digests: Mapping[str, str] = field(default_factory=dict)

    def record_ids(self) -> tuple[str, ...]:
        """Ids of every evidence record the decision rests on, first use first."""
        return tuple(dict.fromkeys((*self.ids, *(self.used or ()))))

    def context(self) -> Any:
        """The engine's ContextValues for this evidence (None when there is nothing to pass)."""
        from policies import ContextValues

        if not (self.values or self.api_calls is not None or self.image_verifier is not None or self.waivers):
            return None
        return ContextValues(
            global_values=self.values,
            api_calls=self.api_calls,
            image_verifier=self.image_verifier,
            exceptions=self.waivers,
            image_digests=self.image_digests,
        )


class EvidenceSource(Protocol):
    """Looks up the evidence a review's rules read (a per-replica cache over the store)."""

    def for_review(self, review: AdmissionReview) -> Evidence:
        """The evidence context for ``review`` (one batched look-up for all its images).

        The webhook may call this, and the resolvers it returns, on its event loop inside
        :func:`gate._nonblocking.nonblocking`: an implementation calls
        :func:`gate._nonblocking.may_block` before anything that waits (a store or registry
        read), so that a review whose evidence is not in memory moves to a review thread.

        Raises:
            InfrastructureError: the evidence could not be read (the failure mode answers).
            WouldBlock: inside ``nonblocking()``, the evidence is not in memory.
        """

    def for_resources(self, resources: Sequence[Mapping[str, Any]]) -> Evidence:
        """The evidence context for rules evaluated on ``resources`` (pipeline decisions)."""

    def digest_of(self, image: str) -> str | None:
        """The digest an image reference names, when gate knows it."""

    def document(self, image: str) -> dict[str, Any]:
        """The evidence document of one image (gate's evidence endpoint answer)."""


@dataclass(frozen=True, slots=True)
class ReviewOutcome:
    """The answer to one AdmissionReview and the decision behind it.

    Attributes:
        decision: the decision (``id`` empty for dry runs, which are not recorded).
        warnings: the AdmissionReview ``warnings``.
        code: the ``status.code`` of the answer (200 when allowed).
        reason: the ``status.reason`` (empty when allowed).
        response: the AdmissionReview answer as JSON bytes.
        failure: set when the answer comes from the failure mode, not from the policies.
    """

    decision: Decision
    warnings: tuple[str, ...]
    code: int
    reason: str
    response: bytes
    failure: Failure | None = None


def decide(
    review: AdmissionReview,
    bundle: PolicyBundle,
    *,
    decided_at: datetime,
    evidence: Evidence | None = None,
    evidence_seconds: float = 0.0,
    started: float | None = None,
    new_id: Callable[[], str] = new_decision_id,
) -> ReviewOutcome:
    """Evaluate ``bundle`` against ``review`` and build the answer.

    Denied when an Enforce rule fails or errors under failurePolicy Fail (the
    message has Kyverno's shape); Audit failures, unscored failures and
    non-blocking errors become ``warnings``. ``started`` is the
    :func:`time.perf_counter` reading when the request arrived (for timings).

    Raises:
        ResourceLimitError, InvalidArgument: the object is too deep or its
            envelope fields have the wrong types.
    """
    from policies import verdict

    begin = perf_counter()
    values = evidence.context() if evidence is not None else None
    # parse_review bounded the whole body's depth (the object's limit plus its two levels).
    responses = bundle.evaluate(review.admission, values=values, depth_checked=True)
    policy_seconds = perf_counter() - begin
    answer = verdict(responses)
    warnings = tuple(_warnings(responses))
    # RuleResponse.to_rule_result formats the resource for every rule; it is one resource.
    resource = str(responses[0].resource) if responses else review.subject
    results = tuple(
        new_rule_result(r.policy, r.rule, r.outcome, r.message, "", r.action, resource) for r in responses
    )
    if answer.allowed:
        message = "allowed" if not warnings else "allowed with warnings:\n" + "\n".join(warnings)
        code, reason = 200, ""
    else:
        message, code, reason = answer.message, 403, "Forbidden"
    total = perf_counter() - (started if started is not None else begin)
    decision = new_decision(
        id="" if review.dry_run else new_id(),
        allowed=answer.allowed,
        message=message,
        stage=STAGE,
        decided_at=decided_at,
        results=results,
        policy_bundle_digest=bundle.digest,
        evidence_ids=with_waivers(evidence.record_ids() if evidence else (), responses),
        caller=review.caller,
        artifact_digests=review.image_digests,
        timings=new_decision_timings(total=total, policy=policy_seconds, evidence=evidence_seconds),
        request=review.request,
        subject=review.subject,
    )
    body = response_json(review, answer.allowed, answer.message, warnings, code, reason)
    return ReviewOutcome(decision, warnings, code, reason, body)


def failure_outcome(
    review: AdmissionReview,
    failure: Failure,
    mode: FailureMode,
    *,
    detail: str,
    decided_at: datetime,
    bundle_digest: str,
    elapsed: float,
    enforcing: bool = True,
    new_id: Callable[[], str] = new_decision_id,
) -> ReviewOutcome:
    """The answer when no decision could be made, per the configured failure mode.

    Fail-closed denies when the bundle holds a policy or rule that enforces
    (with only Audit policies nothing could have been denied, so it allows);
    fail-open allows. Either way the message says that the answer is the
    failure mode's, and why.
    """
    deny = mode is FailureMode.FAIL_CLOSED and enforcing
    because = f"gate could not decide: {failure.value} ({detail})"
    if deny:
        message = f"{because}; denied because webhook.failure_mode is fail-closed"
        warnings: tuple[str, ...] = ()
        code, reason = (504, "Timeout") if failure is Failure.BUDGET else (500, "InternalError")
    else:
        why = "fail-open" if mode is FailureMode.FAIL_OPEN else "fail-closed but no policy enforces"
        message = f"{because}; allowed because webhook.failure_mode is {why}"
        warnings = (message,)
        code, reason = 200, ""
    decision = Decision(
        id="" if review.dry_run else new_id(),
        allowed=not deny,
        message=message,
        stage=STAGE,
        decided_at=decided_at,
        results=(
            RuleResult(
                policy="gate",
                rule="failure-mode",
                outcome=RuleOutcome.ERROR,
                message=message,
                resource=review.subject,
            ),
        ),
        policy_bundle_digest=bundle_digest,
        caller=review.caller,
        artifact_digests=review.image_digests,
        timings=DecisionTimings(total=elapsed),
        request=review.request,
        subject=review.subject,
    )
    body = response_json(review, not deny, message if deny else "", warnings, code, reason)
    return ReviewOutcome(decision, warnings, code, reason, body, failure)


def enforces(bundle: PolicyBundle) -> bool:
    """Whether some policy or rule of ``bundle`` can deny (Enforce, at policy, rule or override level)."""
    enforce = EnforcementAction.ENFORCE
    for policy in bundle.policies:
        if policy.action is enforce or any(o.action is enforce for o in policy.overrides):
            return True
        for rule in policy.rules:
            if rule.action is enforce or any(o.action is enforce for o in rule.overrides):
                return True
    return False


def response_json(
    review: AdmissionReview,
    allowed: bool,
    message: str,
    warnings: Sequence[str],
    code: int,
    reason: str,
) -> bytes:
    """The AdmissionReview answer: same apiVersion and kind, the request uid echoed."""
    response: dict[str, Any] = {"uid": review.uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"status": "Failure", "code": code, "reason": reason, "message": message}
    if warnings:
        response["warnings"] = list(warnings)
    return orjson.dumps({"apiVersion": review.api_version, "kind": "AdmissionReview", "response": response})


def with_waivers(ids: Sequence[str], responses: Sequence[RuleResponse]) -> tuple[str, ...]:
    """Evidence ids followed by the ids of the waivers that changed some rule result."""
    used = [w for r in responses for w in r.waivers]
    if not used:
        return tuple(ids)
    return tuple(dict.fromkeys((*ids, *used)))


# Outcomes that never give a warning (nor block).
_QUIET = frozenset({RuleOutcome.PASS, RuleOutcome.SKIP})


def _warnings(responses: Sequence[RuleResponse]) -> list[str]:
    """Audit failures, unscored (warn) failures and errors that do not block."""
    found = []
    quiet = _QUIET
    for response in responses:
        # Most rules pass on most requests: skip those before the two property look-ups.
        if response.outcome in quiet or response.blocks:
            continue
        outcome = response.report_outcome
        if outcome in (RuleOutcome.FAIL, RuleOutcome.WARN, RuleOutcome.ERROR):
            found.append(f"policy {response.policy}.{response.rule}: {response.message}")
    return found
