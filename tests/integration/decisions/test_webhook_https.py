"""The webhook through uvicorn over real HTTPS: a review answered and recorded, certificate rotation."""

from __future__ import annotations

import shutil
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from gate.config import load_config
from gate.server._tls import ensure_self_signed
from gate.store import DecisionQuery, open_store
from tests.conftest import RunningGate, loopback_config, unverified_tls
from tests.unit.decisions.support import POLICIES, REVIEW, body, review


def served_certificate(address: str) -> bytes:
    host, port = address.rsplit(":", 1)
    context = unverified_tls()
    with socket.create_connection((host, int(port)), timeout=5) as raw, context.wrap_socket(raw) as tls:
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def test_validate_over_https_and_the_certificate_follows_its_files(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    first_cert, first_key = ensure_self_signed(tmp_path / "first")
    second_cert, second_key = ensure_self_signed(tmp_path / "second")
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(first_cert, live / "tls.crt")
    shutil.copy(first_key, live / "tls.key")
    config = loopback_config(
        tmp_path / "data",
        GATE_WEBHOOK_TLS_CERT_FILE=str(live / "tls.crt"),
        GATE_WEBHOOK_TLS_KEY_FILE=str(live / "tls.key"),
        GATE_POLICY_SOURCES=str(POLICIES),
    )
    gate = serve_gate(config)
    url = f"https://{gate.addresses.webhook}/validate"
    with httpx.Client(verify=ssl.create_default_context(cafile=str(first_cert))) as client:
        first = client.post(url, content=body(REVIEW))
        second = client.post(url, content=body(review(uid="second")))  # same keep-alive connection
    assert first.status_code == 200
    assert first.json()["response"] == {
        "uid": REVIEW["request"]["uid"],
        "allowed": True,
        "warnings": [
            "policy team-label.require-owner: validation error: the label owner is recommended. "
            "rule require-owner failed at path /metadata/labels/owner/"
        ],
    }
    assert second.status_code == 200
    before = served_certificate(gate.addresses.webhook)
    assert before == ssl.PEM_cert_to_DER_cert(first_cert.read_text())

    # cert-manager style rotation: new files swapped in, no restart.
    (live / "tls.key.new").write_bytes(second_key.read_bytes())
    (live / "tls.crt.new").write_bytes(second_cert.read_bytes())
    (live / "tls.key.new").replace(live / "tls.key")
    (live / "tls.crt.new").replace(live / "tls.crt")
    expected = ssl.PEM_cert_to_DER_cert(second_cert.read_text())
    deadline = time.monotonic() + 10
    while served_certificate(gate.addresses.webhook) != expected:
        assert time.monotonic() < deadline, "the webhook still serves the old certificate after 10 s"
        time.sleep(0.2)
    with httpx.Client(verify=ssl.create_default_context(cafile=str(second_cert))) as client:
        assert client.post(url, content=body(review(uid="third"))).status_code == 200

    gate.stop()  # graceful: the recorder stores everything before the store closes
    store = open_store(config.effective_database_url)
    try:
        assert len(store.list_decisions(DecisionQuery()).items) == 3
    finally:
        store.close()


def test_a_client_sending_headers_slowly_is_disconnected(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    config_file = tmp_path / "gate.yaml"
    config_file.write_text("webhook:\n  header_timeout: 0.5\n")
    config = load_config(
        config_file,
        {
            "GATE_DATA_DIR": str(tmp_path / "data"),
            "GATE_GRPC_LISTEN": "127.0.0.1:0",
            "GATE_WEBHOOK_LISTEN": "127.0.0.1:0",
            "GATE_METRICS_ENABLED": "false",
        },
    )
    gate = serve_gate(config)
    host, port = gate.addresses.webhook.rsplit(":", 1)
    context = unverified_tls()
    with socket.create_connection((host, int(port)), timeout=5) as raw, context.wrap_socket(raw) as tls:
        tls.sendall(b"POST /validate HTTP/1.1\r\nHost: gate\r\n")  # and never the end of the headers
        started = time.monotonic()
        assert tls.recv(1024) == b""  # closed by the server
        assert 0.3 < time.monotonic() - started < 4


def test_answers_on_a_kept_alive_connection_do_not_wait_for_the_clients_delayed_ack(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    # The answer goes out as two writes (head, then body). With Nagle's algorithm on the
    # accepted socket the body waited for the client's delayed ACK of the head: ~40 ms on
    # Linux per review, which capped a connection at ~23 reviews/s however idle gate was.
    config = loopback_config(tmp_path / "data", GATE_POLICY_SOURCES=str(POLICIES))
    gate = serve_gate(config)
    url = f"https://{gate.addresses.webhook}/validate"
    context = unverified_tls()
    with httpx.Client(verify=context) as client:
        client.post(url, content=body(review(uid="warm-up")))
        seconds = []
        for index in range(15):
            started = time.perf_counter()
            answer = client.post(url, content=body(review(uid=f"kept-alive-{index}")))
            seconds.append(time.perf_counter() - started)
            assert answer.status_code == 200
    seconds.sort()
    assert seconds[len(seconds) // 2] < 0.02, f"median answer took {seconds[len(seconds) // 2] * 1e3:.1f} ms"
