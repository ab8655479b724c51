"""The writer process's wire form: every field of a decision survives the trip unchanged."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gate.decisions import WriterProcess, statement_payload
from gate.decisions._writer_process import from_wire, to_wire
from gate.errors import InvalidArgument
from gate.model import (
    Decision,
    DecisionTimings,
    DecodedJson,
    EnforcementAction,
    RuleOutcome,
    RuleResult,
)
from gate.store import shared_between_processes
from tests.conftest import loopback_config

NOW = datetime(2026, 11, 28, 4, 0, 1, 123456, tzinfo=UTC)


def full_decision(request: dict[str, object]) -> Decision:
    return Decision(
        id="01a22032-6c6b-7e39-bbad-2a105e769428",
        allowed=False,
        message="denied: 1 rule failed",
        stage="admission",
        decided_at=NOW,
        results=(
            RuleResult(
                "require-labels",
                "check-team",
                RuleOutcome.FAIL,
                "label 'team' is required",
                "add it",
                EnforcementAction.ENFORCE,
                "Pod/payments/api",
            ),
            RuleResult(
                "pss", "privileged", RuleOutcome.PASS, "", "", EnforcementAction.AUDIT, "Pod/payments/api"
            ),
            RuleResult("pss", "host-path", RuleOutcome.SKIP, "excluded", "", EnforcementAction.AUDIT, ""),
        ),
        policy_bundle_digest="sha256:" + "a" * 64,
        evidence_ids=("01a22032-0000-7000-8000-000000000001",),
        caller="system:serviceaccount:kube-system:replicaset-controller",
        artifact_digests=("sha256:" + "b" * 64, "sha256:" + "c" * 64),
        timings=DecisionTimings(total=0.0012, policy=0.0009, evidence=0.0001),
        request=request,
        signature=b'{"payloadType":"x"}',
        subject="Pod/payments/api",
        request_digest="sha256:" + "d" * 64,
    )


def test_a_decoded_request_crosses_as_json_and_comes_back_equal() -> None:
    request = DecodedJson(
        {"uid": "u", "object": {"spec": {"n": 1.5, "list": [None, True, "x"], "big": 2**62}}}
    )
    decision = full_decision(request)

    back = from_wire(pickle.loads(pickle.dumps(to_wire(decision))))

    assert back == decision
    assert type(back.request) is DecodedJson
    # What the child signs is what the parent would have signed.
    assert statement_payload(back) == statement_payload(decision)


def test_any_other_request_crosses_as_it_is() -> None:
    decision = full_decision({"artifact": {"digest": "sha256:" + "e" * 64}, "stage": "deploy"})

    back = from_wire(pickle.loads(pickle.dumps(to_wire(decision))))

    assert back == decision
    assert type(back.request) is dict


def test_a_request_that_cannot_be_sent_is_refused_as_a_bad_record(tmp_path: Path) -> None:
    # Never started: the refusal comes before a child is needed.
    writer = WriterProcess(loopback_config(tmp_path))
    decision = full_decision({"stage": "deploy", "handle": lambda: None})

    with pytest.raises(InvalidArgument, match=r"^request: expected JSON-compatible values, got "):
        writer.add_decisions([decision])


@pytest.mark.parametrize(
    ("url", "shared"),
    [
        ("sqlite:///:memory:", False),
        ("sqlite://", False),
        ("sqlite:////var/lib/gate/gate.db", True),
        ("postgresql://gate@db.example/gate", True),
    ],
)
def test_only_a_database_other_processes_reach_can_have_a_writer_process(url: str, shared: bool) -> None:
    assert shared_between_processes(url) is shared
