"""Decision records are the same whichever construction path built them (the hot-path shortcuts)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from gate.decisions import (
    batch_statement,
    decide,
    parse_review,
    request_digest,
    seal,
    statement,
    statement_payload,
    tree_root,
)
from gate.model import Decision, DecisionTimings, RuleResult
from policies import load_policies
from tests.unit.decisions.support import POLICIES, REVIEW, body

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
BUNDLE = load_policies([POLICIES])


class Signer:
    """Signs with a readable envelope: the payload itself, so a test can compare what was signed."""

    def sign(self, payload: bytes, payload_type: str) -> bytes:
        return json.dumps({"payloadType": payload_type, "payload": payload.decode()}).encode()


def test_decision_results_equal_rule_results_built_the_ordinary_way() -> None:
    outcome = decide(parse_review(body(REVIEW)), BUNDLE, decided_at=NOW)
    responses = BUNDLE.evaluate(parse_review(body(REVIEW)).admission)
    assert outcome.decision.results
    for result, response in zip(outcome.decision.results, responses, strict=True):
        ordinary = RuleResult(
            policy=response.policy,
            rule=response.rule,
            outcome=response.outcome,
            message=response.message,
            remediation="",
            action=response.action,
            resource=str(response.resource),
        )
        assert type(result) is RuleResult
        assert result == ordinary
        assert hash(result) == hash(ordinary)
        assert repr(result) == repr(ordinary)
        assert dataclasses.asdict(result) == dataclasses.asdict(ordinary)


def _decision() -> Decision:
    return Decision(
        id="00000000-0000-4000-8000-000000000001",
        allowed=True,
        message="allowed",
        stage="admission",
        decided_at=NOW,
        request=REVIEW["request"],
        timings=DecisionTimings(total=0.5, policy=0.25, evidence=0.125),
    )


def test_a_decision_sealed_alone_is_the_only_leaf_of_the_tree_whose_root_is_signed() -> None:
    sealed = seal(_decision(), Signer())
    assert sealed.request_digest == request_digest(REVIEW["request"])
    document = json.loads(sealed.signature)
    assert (document["index"], document["treeSize"], document["proof"]) == (0, 1, [])
    signed = json.loads(document["envelope"]["payload"])
    assert signed == batch_statement(tree_root(statement_payload(sealed), 0, 1, []), 1)
    assert statement(sealed)["predicate"]["timings"] == {"total": 0.5, "policy": 0.25, "evidence": 0.125}
    unsigned = seal(_decision(), None)
    assert unsigned.request_digest == sealed.request_digest
    assert not unsigned.signature
    assert seal(unsigned, None) is unsigned  # nothing left to add
