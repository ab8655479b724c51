"""DecisionService/Review: the same path as /validate, over protobuf messages."""

from __future__ import annotations

import json

import pytest

from gate._api import Api
from gate.core import Gate
from gate.errors import InvalidArgument
from gate.v1 import decision_pb2
from tests.unit.decisions.support import POLICIES, body, latest_review
from tests.unit.decisions.test_webhook_validate import DecisionStore


def test_review_answers_the_filled_review_and_the_decision() -> None:
    store = DecisionStore()
    api = Api(Gate(store, policy_sources=[POLICIES]))  # type: ignore[arg-type]
    reply = api.invoke(
        "gate.v1.DecisionService/Review", decision_pb2.ReviewRequest(admission_review=body(latest_review()))
    )
    assert isinstance(reply, decision_pb2.ReviewResponse)
    assert json.loads(reply.admission_review)["response"]["allowed"] is False
    assert reply.decision.allowed is False
    assert reply.decision.stage == "admission"
    assert reply.decision.id == store.decisions[0].id
    assert {r.rule for r in reply.decision.results} == {"no-latest-tag", "require-owner"}


def test_review_refuses_a_non_review() -> None:
    api = Api(Gate(DecisionStore(), policy_sources=[POLICIES]))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="kind: expected AdmissionReview"):
        api.invoke("gate.v1.DecisionService/Review", decision_pb2.ReviewRequest(admission_review=b"{}"))
