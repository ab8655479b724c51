"""gRPC over mutual TLS: client certificates mapped to identities; expired and foreign ones refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from gate.config import AuthSettings, Grant, GrpcSettings, TlsFiles
from gate.v1 import audit_pb2, policy_pb2
from tests.conftest import RunningGate, loopback_config
from tests.integration.auth.pki import Authority, Issued
from tests.integration.auth.support import write_tokens

RUNNER = "spiffe://cluster.local/ns/ci/sa/runner"


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, object]:
    ca = Authority(tmp_path / "pki", "gate-clients-ca")
    foreign = Authority(tmp_path / "foreign", "someone-else-ca")
    return {
        "ca": ca,
        "server": ca.server(),
        "runner": ca.issue("runner", "ci-runner", sans=[x509.UniformResourceIdentifier(RUNNER)]),
        "auditor": ca.issue("auditor", "audit.example.com"),
        "unmapped": ca.issue("unmapped", "stranger"),
        "expired": ca.issue(
            "expired", "ci-runner", sans=[x509.UniformResourceIdentifier(RUNNER)], expired=True
        ),
        "foreign": foreign.issue("foreign", "ci-runner", sans=[x509.UniformResourceIdentifier(RUNNER)]),
    }


def start(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], pki: dict[str, object], client_certificates: str
) -> RunningGate:
    ca, server = pki["ca"], pki["server"]
    assert isinstance(ca, Authority)
    assert isinstance(server, Issued)
    tokens = write_tokens(tmp_path / "tokens.yaml", {"auditor-token-77": ("auditor", ["auditor"], [])})
    config = loopback_config(tmp_path / "data")
    grpc_settings = config.grpc.model_copy(
        update={
            "tls": TlsFiles(cert_file=server.cert, key_file=server.key, client_ca_file=ca.cert_file),
            "client_certificates": client_certificates,
        }
    )
    auth = AuthSettings(
        mode="required",
        tokens_file=tokens,
        certificates={
            RUNNER: Grant(roles=("pipeline",), projects=("payments",)),
            "audit.example.com": Grant(roles=("auditor",)),
        },
    )
    assert isinstance(grpc_settings, GrpcSettings)
    return serve_gate(config.model_copy(update={"grpc": grpc_settings, "auth": auth}))


def channel(gate: RunningGate, pki: dict[str, object], client: str | None) -> grpc.Channel:
    ca = pki["ca"]
    assert isinstance(ca, Authority)
    key = chain = None
    if client is not None:
        issued = pki[client]
        assert isinstance(issued, Issued)
        key, chain = issued.key.read_bytes(), issued.cert.read_bytes()
    credentials = grpc.ssl_channel_credentials(
        ca.cert_file.read_bytes(), private_key=key, certificate_chain=chain
    )
    return grpc.secure_channel(gate.addresses.grpc, credentials)


def list_policies(chan: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.StatusCode:
    stub = chan.unary_unary(
        "/gate.v1.PolicyService/ListPolicies",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=policy_pb2.ListPoliciesResponse.FromString,
    )
    try:
        stub(policy_pb2.ListPoliciesRequest(), timeout=5, metadata=metadata)
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()  # type: ignore[attr-defined]
        return code
    return grpc.StatusCode.OK


def decision_key(chan: grpc.Channel) -> grpc.StatusCode:
    stub = chan.unary_unary(
        "/gate.v1.AuditService/GetDecisionKey",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=audit_pb2.DecisionKey.FromString,
    )
    try:
        stub(audit_pb2.GetDecisionKeyRequest(), timeout=5)
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()  # type: ignore[attr-defined]
        return code
    return grpc.StatusCode.OK


def test_client_certificates_map_to_their_identities_roles(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], pki: dict[str, object]
) -> None:
    gate = start(tmp_path, serve_gate, pki, "required")
    # The SAN URI maps to a pipeline identity: GetDecisionKey yes, ListPolicies (auditor) no.
    runner = channel(gate, pki, "runner")
    assert decision_key(runner) is grpc.StatusCode.OK
    assert list_policies(runner) is grpc.StatusCode.PERMISSION_DENIED
    # The subject common name maps to an auditor.
    assert list_policies(channel(gate, pki, "auditor")) is grpc.StatusCode.OK
    # A certificate from the right CA that no mapping names is authenticated to nobody.
    assert list_policies(channel(gate, pki, "unmapped")) is grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("client", ["expired", "foreign", None])
def test_expired_foreign_or_missing_client_certificates_fail_the_handshake(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], pki: dict[str, object], client: str | None
) -> None:
    gate = start(tmp_path, serve_gate, pki, "required")
    assert list_policies(channel(gate, pki, client)) is grpc.StatusCode.UNAVAILABLE


def test_with_client_certificates_off_token_callers_connect_and_certificates_count_for_nothing(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], pki: dict[str, object]
) -> None:
    gate = start(tmp_path, serve_gate, pki, "off")
    plain = channel(gate, pki, None)
    assert list_policies(plain, (("authorization", "Bearer auditor-token-77"),)) is grpc.StatusCode.OK
    assert list_policies(plain) is grpc.StatusCode.UNAUTHENTICATED
    # Not asked for, so never seen: a certificate identifies nobody in this mode.
    assert decision_key(channel(gate, pki, "runner")) is grpc.StatusCode.UNAUTHENTICATED
