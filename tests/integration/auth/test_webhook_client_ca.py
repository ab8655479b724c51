"""The admission webhook accepts only clients with a certificate from webhook.client_ca_file."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gate.config import TlsFiles
from tests.conftest import RunningGate, loopback_config
from tests.integration.auth.pki import Authority
from tests.integration.auth.reviews import configmap_review

REVIEW = configmap_review("0f6b3a52-7d1e-4d0e-9d6c-1f0b8c9d2a11")


def test_only_the_api_servers_certificate_gets_an_answer(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    ca = Authority(tmp_path / "pki", "apiserver-client-ca")
    foreign = Authority(tmp_path / "foreign", "other-ca")
    server = ca.server("webhook")
    apiserver = ca.issue("apiserver", "kube-apiserver-webhook-client")
    stranger = foreign.issue("stranger", "kube-apiserver-webhook-client")
    config = loopback_config(tmp_path / "data")
    webhook = config.webhook.model_copy(
        update={"tls": TlsFiles(cert_file=server.cert, key_file=server.key), "client_ca_file": ca.cert_file}
    )
    gate = serve_gate(config.model_copy(update={"webhook": webhook}))
    url = f"https://{gate.addresses.webhook}/validate"
    body = json.dumps(REVIEW).encode()

    def post(cert: tuple[str, str] | None) -> httpx.Response:
        context = ssl.create_default_context(cafile=str(ca.cert_file))
        if cert is not None:
            context.load_cert_chain(*cert)
        with httpx.Client(verify=context, timeout=10) as client:
            return client.post(url, content=body, headers={"Content-Type": "application/json"})

    answer = post((str(apiserver.cert), str(apiserver.key)))
    assert answer.status_code == 200
    assert answer.json()["response"]["uid"] == REVIEW["request"]["uid"]
    for cert in (None, (str(stranger.cert), str(stranger.key))):
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            post(cert)


def test_a_refused_handshake_leaves_an_audit_entry_naming_the_peer_and_the_reason(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], caplog: pytest.LogCaptureFixture
) -> None:
    ca = Authority(tmp_path / "pki", "apiserver-client-ca")
    foreign = Authority(tmp_path / "foreign", "other-ca")
    server = ca.server("webhook")
    stranger = foreign.issue("stranger", "kube-apiserver-webhook-client")
    expired = ca.issue("expired", "kube-apiserver-webhook-client", expired=True)
    config = loopback_config(tmp_path / "data")
    webhook = config.webhook.model_copy(
        update={"tls": TlsFiles(cert_file=server.cert, key_file=server.key), "client_ca_file": ca.cert_file}
    )
    gate = serve_gate(config.model_copy(update={"webhook": webhook}))
    url = f"https://{gate.addresses.webhook}/healthz"

    def get(cert: tuple[str, str] | None) -> None:
        context = ssl.create_default_context(cafile=str(ca.cert_file))
        if cert is not None:
            context.load_cert_chain(*cert)
        with httpx.Client(verify=context, timeout=10) as client:
            client.get(url)

    with caplog.at_level("WARNING", logger="gate.audit.auth"):
        for cert in (None, (str(stranger.cert), str(stranger.key)), (str(expired.cert), str(expired.key))):
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                get(cert)
        deadline = time.monotonic() + 5
        while len([r for r in caplog.records if r.name == "gate.audit.auth"]) < 3:
            assert time.monotonic() < deadline, "no audit entry for the refused handshakes"
            time.sleep(0.05)
    entries = [r for r in caplog.records if r.name == "gate.audit.auth"]
    assert {r.status for r in entries} == {"TLS_HANDSHAKE_FAILED"}  # type: ignore[attr-defined]
    assert all(r.peer.startswith("127.0.0.1:") for r in entries)  # type: ignore[attr-defined]
    assert all(r.method == "webhook" for r in entries)  # type: ignore[attr-defined]
    reasons = [r.reason.lower() for r in entries]  # type: ignore[attr-defined]
    assert "peer did not return a certificate" in reasons[0], reasons
    assert "certificate" in reasons[1], reasons
    assert "expired" in reasons[2], reasons
