"""Every gate.v1 RPC against every role, over a real socket: the table is what is enforced."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.message import Message

from gate._api import METHODS
from gate.auth import ROLES
from gate.server._authz import PROJECT_FIELD, ROLES_FOR_METHOD
from gate.v1 import audit_pb2, decision_pb2
from tests.conftest import RunningGate
from tests.integration.auth.support import TOKENS

REFUSED = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


def request_for(method: str, project: str = "payments") -> Message:
    request = message_factory.GetMessageClass(METHODS[method].input_type)()
    if "project" in request.DESCRIPTOR.fields_by_name:
        request.project = project  # type: ignore[attr-defined]
    return request


def call(gate: RunningGate, method: str, request: Message, token: str | None) -> grpc.StatusCode:
    """The status one call ends with (OK or the error code); streams are read to their first message."""
    descriptor = METHODS[method]
    response_class = message_factory.GetMessageClass(descriptor.output_type)
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    try:
        if descriptor.server_streaming:
            stream = gate.channel.unary_stream(
                f"/{method}",
                request_serializer=_serialize,
                response_deserializer=response_class.FromString,
            )
            responses: Iterator[Message] = stream(request, timeout=10, metadata=metadata)
            next(responses, None)
            responses.cancel()  # type: ignore[attr-defined]
        else:
            unary = gate.channel.unary_unary(
                f"/{method}",
                request_serializer=_serialize,
                response_deserializer=response_class.FromString,
            )
            unary(request, timeout=10, metadata=metadata)
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()  # type: ignore[attr-defined]
        return code
    return grpc.StatusCode.OK


def test_the_table_names_every_rpc_of_the_service_descriptors() -> None:
    assert set(ROLES_FOR_METHOD) == set(METHODS)
    assert set(PROJECT_FIELD) <= set(METHODS)
    for method, field in PROJECT_FIELD.items():
        request = message_factory.GetMessageClass(METHODS[method].input_type)()
        assert field in request.DESCRIPTOR.fields_by_name, method
    assert all(roles <= set(ROLES) for roles in ROLES_FOR_METHOD.values())


def test_every_role_gets_exactly_the_rpcs_the_table_gives_it(guarded_gate: RunningGate) -> None:
    seen: dict[tuple[str, str], grpc.StatusCode] = {}
    for method in sorted(METHODS):
        for role in ROLES:
            seen[method, role] = call(guarded_gate, method, request_for(method), TOKENS[role])
    wrong = {
        key: code.name
        for key, code in seen.items()
        if (key[1] in ROLES_FOR_METHOD[key[0]]) == (code is grpc.StatusCode.PERMISSION_DENIED)
        or code is grpc.StatusCode.UNAUTHENTICATED
    }
    assert wrong == {}
    # Allowed calls reached their implementation: an empty request is refused as invalid, not as forbidden.
    allowed_codes = {code for (method, role), code in seen.items() if role in ROLES_FOR_METHOD[method]}
    assert not allowed_codes & REFUSED


def test_every_rpc_without_credentials_is_unauthenticated(guarded_gate: RunningGate) -> None:
    codes = {method: call(guarded_gate, method, request_for(method), None) for method in sorted(METHODS)}
    assert {method for method, code in codes.items() if code is not grpc.StatusCode.UNAUTHENTICATED} == set()


def test_an_unknown_token_is_unauthenticated_and_audited(
    guarded_gate: RunningGate, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "not-a-listed-token-4242"
    with caplog.at_level(logging.WARNING, logger="gate.audit.auth"):
        code = call(
            guarded_gate,
            "gate.v1.AuditService/GetDecisionKey",
            request_for("gate.v1.AuditService/GetDecisionKey"),
            secret,
        )
    assert code is grpc.StatusCode.UNAUTHENTICATED
    entries = [r for r in caplog.records if r.name == "gate.audit.auth"]
    assert [(r.__dict__["method"], r.__dict__["status"]) for r in entries] == [
        ("gate.v1.AuditService/GetDecisionKey", "UNAUTHENTICATED")
    ]
    assert all(secret not in r.getMessage() and secret not in str(r.__dict__) for r in caplog.records)


@pytest.mark.parametrize("method", sorted(PROJECT_FIELD))
def test_a_pipeline_identity_is_refused_other_projects_and_an_empty_project(
    guarded_gate: RunningGate, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gate.audit.auth"):
        assert (
            call(guarded_gate, method, request_for(method, "billing"), TOKENS["pipeline"])
            is grpc.StatusCode.PERMISSION_DENIED
        )
        assert (
            call(guarded_gate, method, request_for(method, ""), TOKENS["pipeline"])
            is grpc.StatusCode.PERMISSION_DENIED
        )
    assert call(guarded_gate, method, request_for(method, "payments"), TOKENS["pipeline"]) not in REFUSED
    # Roles other than pipeline are not scoped to projects.
    assert call(guarded_gate, method, request_for(method, "billing"), TOKENS["admin"]) not in REFUSED
    reasons = [r.__dict__["reason"] for r in caplog.records if r.name == "gate.audit.auth"]
    assert len(reasons) == 2
    assert "does not act for project 'billing'" in reasons[0]


def test_decide_records_the_authenticated_identity_as_its_caller(guarded_gate: RunningGate) -> None:
    manifest = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: payments}\n"
    decision = guarded_gate.channel.unary_unary(
        "/gate.v1.DecisionService/Decide",
        request_serializer=_serialize,
        response_deserializer=decision_pb2.Decision.FromString,
    )(
        decision_pb2.DecideRequest(manifest=manifest, stage="deploy", project="payments"),
        timeout=10,
        metadata=(("authorization", f"Bearer {TOKENS['pipeline']}"),),
    )
    assert decision.caller == "token:ci-pipeline"
    get = guarded_gate.channel.unary_unary(
        "/gate.v1.AuditService/GetDecision",
        request_serializer=_serialize,
        response_deserializer=decision_pb2.Decision.FromString,
    )
    auditor = (("authorization", f"Bearer {TOKENS['auditor']}"),)
    # Decisions are written by a background recorder: wait for this one.
    deadline = time.monotonic() + 10
    while True:
        try:
            recorded = get(audit_pb2.GetDecisionRequest(id=decision.id), timeout=10, metadata=auditor)
            break
        except grpc.RpcError as error:
            if error.code() is not grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:  # type: ignore[attr-defined]
                raise
            time.sleep(0.05)
    assert recorded.caller == "token:ci-pipeline"


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()
