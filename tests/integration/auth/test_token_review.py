"""Kubernetes ServiceAccount tokens checked with TokenReview against a local API server stand-in."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from gate.auth import Authenticator, Credentials, Identity, KubernetesTokenReviewer
from gate.config import AuthSettings, Grant, KubernetesAuth, KubernetesSettings
from gate.errors import InfrastructureError, Unauthenticated
from gate.v1 import audit_pb2
from tests.conftest import RunningGate, loopback_config
from tests.kube_support import FakeApiServer, ReviewedToken, api_client, fake_api_server, kubeconfig

AUDIENCE = "gate.gate-system.svc"
RUNNER = "system:serviceaccount:payments:payments-pipeline"
STRANGER = "system:serviceaccount:other:default"


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with fake_api_server() as state:
        state.tokens["runner-jwt"] = ReviewedToken(RUNNER, (AUDIENCE,))
        state.tokens["stranger-jwt"] = ReviewedToken(STRANGER, (AUDIENCE,))
        state.tokens["apiserver-audience-jwt"] = ReviewedToken(RUNNER, ("https://kubernetes.default.svc",))
        yield state


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def authenticator(api: FakeApiServer, clock: Clock) -> Authenticator:
    return Authenticator(
        reviewer=KubernetesTokenReviewer(api_client(api)),
        audiences=(AUDIENCE,),
        service_accounts={RUNNER: Identity.of(f"k8s:{RUNNER}", ["pipeline"], ["payments"])},
        cache_ttl=60,
        clock=clock,
    )


def test_a_service_account_token_maps_to_its_configured_identity(api: FakeApiServer) -> None:
    identity = authenticator(api, Clock()).authenticate(Credentials(token="runner-jwt"))
    assert identity == Identity.of(f"k8s:{RUNNER}", ["pipeline"], ["payments"])


def test_an_unlisted_service_account_is_authenticated_with_no_role(api: FakeApiServer) -> None:
    identity = authenticator(api, Clock()).authenticate(Credentials(token="stranger-jwt"))
    assert identity.name == f"k8s:{STRANGER}"
    assert identity.roles == frozenset()


def test_a_token_for_another_audience_is_refused_with_the_api_servers_reason(api: FakeApiServer) -> None:
    with pytest.raises(Unauthenticated) as caught:
        authenticator(api, Clock()).authenticate(Credentials(token="apiserver-audience-jwt"))
    assert "is invalid for the target audiences" in caught.value.message
    assert "apiserver-audience-jwt" not in caught.value.message


def test_a_forged_token_is_refused(api: FakeApiServer) -> None:
    with pytest.raises(Unauthenticated, match=r"kubernetes token not accepted: .*invalid bearer token"):
        authenticator(api, Clock()).authenticate(Credentials(token="forged"))


def test_answers_are_cached_per_token_until_the_ttl_and_refusals_briefly(api: FakeApiServer) -> None:
    clock = Clock()
    auth = authenticator(api, clock)
    for _ in range(3):
        auth.authenticate(Credentials(token="runner-jwt"))
    assert api.reviews() == 1
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            auth.authenticate(Credentials(token="forged"))
    assert api.reviews() == 2
    clock.now += 6  # refusals expire after 5 s
    with pytest.raises(Unauthenticated):
        auth.authenticate(Credentials(token="forged"))
    auth.authenticate(Credentials(token="runner-jwt"))
    assert api.reviews() == 3
    clock.now += 60
    auth.authenticate(Credentials(token="runner-jwt"))
    assert api.reviews() == 4


def test_an_api_server_failure_is_infrastructure_not_a_refusal(api: FakeApiServer) -> None:
    api.review_failure = 500
    with pytest.raises(InfrastructureError, match="TokenReview: the API server answered 500"):
        authenticator(api, Clock()).authenticate(Credentials(token="runner-jwt"))


def test_gate_serve_checks_service_account_tokens_through_its_kubeconfig(
    api: FakeApiServer,
    tmp_path: Path,
    serve_gate: Callable[..., RunningGate],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config_file = tmp_path / "kubeconfig"
    config_file.write_text(kubeconfig(api))
    config = loopback_config(tmp_path / "data").model_copy(
        update={
            "auth": AuthSettings(
                mode="required",
                kubernetes=KubernetesAuth(
                    enabled=True,
                    audiences=(AUDIENCE,),
                    identities={RUNNER: Grant(roles=("pipeline",), projects=("payments",))},
                ),
            ),
            "kubernetes": KubernetesSettings(kubeconfig=config_file),
        }
    )
    gate = serve_gate(config)
    stub = gate.channel.unary_unary(
        "/gate.v1.AuditService/GetDecisionKey",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=audit_pb2.DecisionKey.FromString,
    )
    key = stub(
        audit_pb2.GetDecisionKeyRequest(), timeout=10, metadata=(("authorization", "Bearer runner-jwt"),)
    )
    assert key.fingerprint
    with caplog.at_level(logging.WARNING, logger="gate.audit.auth"), pytest.raises(grpc.RpcError) as caught:
        stub(
            audit_pb2.GetDecisionKeyRequest(),
            timeout=10,
            metadata=(("authorization", "Bearer apiserver-audience-jwt"),),
        )
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert "invalid for the target audiences" in caught.value.details()  # type: ignore[attr-defined]
    assert [r.__dict__["status"] for r in caplog.records if r.name == "gate.audit.auth"] == [
        "UNAUTHENTICATED"
    ]
