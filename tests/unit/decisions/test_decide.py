"""Deciding reviews: Kyverno's deny message and status, warnings, dry runs, the failure mode."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import orjson

from gate.decisions import (
    Failure,
    FailureMode,
    decide,
    enforces,
    failure_outcome,
    new_decision_id,
    parse_review,
)
from gate.model import RuleOutcome
from policies import load_policies, parse_policies
from tests.unit.decisions.support import POLICIES, REVIEW, body, latest_review, review

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
BUNDLE = load_policies([POLICIES])


def test_a_clean_pod_is_allowed_with_the_audit_failure_as_a_warning() -> None:
    outcome = decide(parse_review(body(REVIEW)), BUNDLE, decided_at=NOW)
    answer = orjson.loads(outcome.response)
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == REVIEW["request"]["uid"]
    assert answer["response"]["allowed"] is True
    assert answer["response"]["warnings"] == [
        "policy team-label.require-owner: validation error: the label owner is recommended. "
        "rule require-owner failed at path /metadata/labels/owner/"
    ]
    decision = outcome.decision
    assert decision.allowed
    assert decision.stage == "admission"
    assert decision.id
    assert decision.policy_bundle_digest == BUNDLE.digest
    assert {(r.policy, r.rule, r.outcome) for r in decision.results} == {
        ("supply-chain", "no-latest-tag", RuleOutcome.PASS),
        ("team-label", "require-owner", RuleOutcome.FAIL),
    }
    assert decision.request == REVIEW["request"]
    assert decision.timings.total >= decision.timings.policy > 0


def test_an_enforce_failure_denies_with_kyvernos_message_and_403() -> None:
    outcome = decide(parse_review(body(latest_review())), BUNDLE, decided_at=NOW)
    response = orjson.loads(outcome.response)["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert response["status"]["reason"] == "Forbidden"
    message = response["status"]["message"]
    assert message.startswith(
        "\n\nresource Pod/payments/payments-api-7d9f8b6c5d- was blocked due to the following policies \n\n"
        "supply-chain:\n  no-latest-tag: 'validation error: the :latest tag is not allowed."
    )
    assert "/spec/containers/1/image/" in message
    assert outcome.decision.allowed is False


def test_a_dry_run_is_answered_but_gets_no_id() -> None:
    outcome = decide(parse_review(body(review(dryRun=True))), BUNDLE, decided_at=NOW)
    assert outcome.decision.id == ""
    assert orjson.loads(outcome.response)["response"]["allowed"] is True


def test_fail_closed_denies_and_says_why() -> None:
    outcome = failure_outcome(
        parse_review(body(REVIEW)),
        Failure.BUDGET,
        FailureMode.FAIL_CLOSED,
        detail="no answer after 2.001 s of a 2 s budget",
        decided_at=NOW,
        bundle_digest=BUNDLE.digest,
        elapsed=2.001,
        enforcing=enforces(BUNDLE),
    )
    response = orjson.loads(outcome.response)["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 504
    assert response["status"]["message"] == (
        "gate could not decide: time budget exceeded (no answer after 2.001 s of a 2 s budget); "
        "denied because webhook.failure_mode is fail-closed"
    )
    assert outcome.failure is Failure.BUDGET
    assert outcome.decision.results[0].outcome is RuleOutcome.ERROR


def test_fail_open_allows_with_a_warning_that_says_why() -> None:
    outcome = failure_outcome(
        parse_review(body(REVIEW)),
        Failure.ERROR,
        FailureMode.FAIL_OPEN,
        detail="reference abc",
        decided_at=NOW,
        bundle_digest=BUNDLE.digest,
        elapsed=0.01,
    )
    response = orjson.loads(outcome.response)["response"]
    assert response["allowed"] is True
    assert response["warnings"] == [
        "gate could not decide: internal error (reference abc); "
        "allowed because webhook.failure_mode is fail-open"
    ]


def test_fail_closed_allows_when_no_policy_could_deny() -> None:
    audit_only = parse_policies(POLICIES.read_text().split("---\n")[1])
    assert not enforces(audit_only)
    assert enforces(BUNDLE)
    outcome = failure_outcome(
        parse_review(body(REVIEW)),
        Failure.ERROR,
        FailureMode.FAIL_CLOSED,
        detail="reference abc",
        decided_at=NOW,
        bundle_digest=audit_only.digest,
        elapsed=0.01,
        enforcing=enforces(audit_only),
    )
    assert outcome.decision.allowed is True
    assert "fail-closed but no policy enforces" in outcome.decision.message


def test_decision_ids_are_time_ordered_uuids_that_sort_by_creation() -> None:
    # Version 7 (RFC 9562): the primary key of the decisions table grows at one end of its
    # index instead of landing on a random page for every decision.
    earlier = [new_decision_id() for _ in range(200)]
    time.sleep(0.002)
    later = new_decision_id()
    parsed = uuid.UUID(later)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert abs((parsed.int >> 80) - time.time_ns() // 1_000_000) < 5_000  # milliseconds since the epoch
    assert len(set(earlier)) == len(earlier)
    assert all(identifier < later for identifier in earlier)
