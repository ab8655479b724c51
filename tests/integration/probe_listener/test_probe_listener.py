"""With webhook.client_ca_file set, kubelet and Kyverno reach gate through webhook.probe_listen.

The probe listener presents the webhook's certificate, asks for no client certificate and
serves only /healthz, /readyz and /v1/evidence; the webhook listener keeps refusing every
client without the API server's certificate.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from gate.config import TlsFiles
from tests.conftest import RunningGate, loopback_config
from tests.integration.auth.pki import Authority, Issued
from tests.integration.auth.reviews import configmap_review

REVIEW = configmap_review("3c1d9a4e-55b2-4a8e-9d61-0e2f6b7c8d90")
IMAGE = "registry.example.com/payments/api@sha256:" + "a" * 64


def _client(ca: Authority, cert: Issued | None = None) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(ca.cert_file))
    if cert is not None:
        context.load_cert_chain(str(cert.cert), str(cert.key))
    return httpx.Client(verify=context, timeout=10)


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Authority, Issued, Issued]:
    ca = Authority(tmp_path / "pki", "apiserver-client-ca")
    return ca, ca.server("webhook"), ca.issue("apiserver", "kube-apiserver-webhook-client")


@pytest.fixture
def gate(tmp_path: Path, pki: Any, serve_gate: Callable[..., RunningGate]) -> RunningGate:
    ca, server, _ = pki
    # The environment variables the deployment's webhook-client-ca component sets.
    config = loopback_config(
        tmp_path / "data",
        GATE_WEBHOOK_CLIENT_CA_FILE=str(ca.cert_file),
        GATE_WEBHOOK_PROBE_LISTEN="127.0.0.1:0",
    )
    webhook = config.webhook.model_copy(update={"tls": TlsFiles(cert_file=server.cert, key_file=server.key)})
    return serve_gate(config.model_copy(update={"webhook": webhook}))


def test_probes_and_evidence_are_answered_without_a_client_certificate(gate: RunningGate, pki: Any) -> None:
    ca, _, _ = pki
    assert gate.addresses.probes is not None
    base = f"https://{gate.addresses.probes}"
    with _client(ca) as client:
        health = client.get(base + "/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        ready = client.get(base + "/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        evidence = client.post(base + "/v1/evidence", json={"image": IMAGE})
        assert evidence.status_code == 200, evidence.text
        assert isinstance(evidence.json(), dict)
        # The evidence endpoint's own checks still apply behind the allow-list.
        refused = client.post(base + "/v1/evidence", content=b"[1]")
        assert refused.status_code == 400


@pytest.mark.parametrize("path", ["/validate", "/validate/", "/metrics", "/", "/healthz/../validate"])
def test_admission_reviews_and_every_other_path_get_404_on_the_probe_listener(
    gate: RunningGate, pki: Any, path: str
) -> None:
    ca, _, _ = pki
    with _client(ca) as client:
        answer = client.post(
            f"https://{gate.addresses.probes}{path}",
            content=json.dumps(REVIEW).encode(),
            headers={"Content-Type": "application/json"},
        )
    assert answer.status_code == 404
    assert answer.json()["error"]["message"].startswith("not served on the probe listener")
    assert "response" not in answer.json()


def test_the_webhook_listener_still_refuses_clients_without_the_api_servers_certificate(
    gate: RunningGate, pki: Any
) -> None:
    ca, _, apiserver = pki
    url = f"https://{gate.addresses.webhook}"
    with _client(ca, apiserver) as client:
        answer = client.post(url + "/validate", json=REVIEW)
        assert answer.status_code == 200
        assert answer.json()["response"]["uid"] == REVIEW["request"]["uid"]
    for path in ("/validate", "/healthz", "/v1/evidence"):
        with (
            _client(ca) as client,
            pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
        ):
            client.post(url + path, json=REVIEW)


def test_the_probe_listener_follows_a_renewed_certificate(
    gate: RunningGate, pki: Any, tmp_path: Path
) -> None:
    ca, server, _ = pki

    def served_serial() -> int:
        context = ssl.create_default_context(cafile=str(ca.cert_file))
        assert gate.addresses.probes is not None
        host, port = gate.addresses.probes.rsplit(":", 1)
        with context.wrap_socket(socket.create_connection((host, int(port))), server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der).serial_number

    before = served_serial()
    renewed = ca.server("renewed")
    shutil.copyfile(renewed.key, server.key)
    shutil.copyfile(renewed.cert, server.cert)
    expected = x509.load_pem_x509_certificate(renewed.cert.read_bytes()).serial_number
    deadline = time.monotonic() + 10
    while served_serial() != expected:
        assert time.monotonic() < deadline, "the probe listener kept the old certificate"
        time.sleep(0.2)
    assert expected != before


def test_without_probe_listen_there_is_no_second_listener(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    gate = serve_gate(loopback_config(tmp_path / "data"))
    assert gate.addresses.probes is None
