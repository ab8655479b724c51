"""What gate signs about a decision: an in-toto Statement, and the signer port.

The signature column of a decision holds what the configured signer returns
for :func:`statement_payload` (a DSSE envelope, as JSON). With no signer
configured the column stays empty; ``gate audit verify`` then has nothing to
check and says so.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from gate.decisions._review import canonical_json, request_digest
from gate.model import ACTION_TEXT, OUTCOME_TEXT, Decision, DecisionTimings

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://gate.dev/attestations/decision/v1"
_TIMING_FIELDS = tuple(f.name for f in dataclasses.fields(DecisionTimings))


class DecisionSigner(Protocol):
    """Signs decision records (the DSSE signer of the signatures feature implements this)."""

    def sign(self, payload: bytes, payload_type: str) -> bytes:
        """Return the signed envelope (DSSE JSON) over ``payload`` of ``payload_type``."""


def statement(decision: Decision) -> dict[str, Any]:
    """The in-toto Statement of a recorded decision (subject: the request digest).

    Everything an auditor needs to judge the decision is in the predicate: the
    answer, who asked, about what, with which policy bundle and evidence, and
    every rule result. ``request_digest`` must be set.
    """
    return _statement(decision, decision.request_digest)


def _statement(decision: Decision, digest: str) -> dict[str, Any]:
    timings = decision.timings
    algorithm, _, hexdigest = digest.partition(":")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f"decision/{decision.id}", "digest": {algorithm: hexdigest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "id": decision.id,
            "allowed": decision.allowed,
            "message": decision.message,
            "stage": decision.stage,
            "decidedAt": decision.decided_at.isoformat(),
            "caller": decision.caller,
            "subject": decision.subject,
            "requestDigest": digest,
            "policyBundleDigest": decision.policy_bundle_digest,
            "evidenceIds": list(decision.evidence_ids),
            "artifactDigests": list(decision.artifact_digests),
            "results": [
                {
                    "policy": r.policy,
                    "rule": r.rule,
                    "outcome": OUTCOME_TEXT[r.outcome],
                    "action": ACTION_TEXT[r.action],
                    "message": r.message,
                    "remediation": r.remediation,
                    "resource": r.resource,
                }
                for r in decision.results
            ],
            # What dataclasses.asdict gives, without its recursive deep copy (~5 us per record).
            "timings": {name: getattr(timings, name) for name in _TIMING_FIELDS},
        },
    }


def statement_payload(decision: Decision) -> bytes:
    """The bytes that are signed: the canonical JSON of :func:`statement`."""
    return canonical_json(statement(decision))


def seal(decision: Decision, signer: DecisionSigner | None) -> Decision:
    """The decision with its request digest set and, when a signer is given, its signature.

    A decision already signed (sealed on the request path) keeps its signature.
    """
    digest = decision.request_digest or request_digest(decision.request)
    if signer is None or decision.signature:
        if digest == decision.request_digest:
            return decision
        return dataclasses.replace(decision, request_digest=digest)
    # One copy of the record, not two (dataclasses.replace costs ~5 us on a Decision).
    payload = canonical_json(_statement(decision, digest))
    return dataclasses.replace(decision, request_digest=digest, signature=signer.sign(payload, PAYLOAD_TYPE))
