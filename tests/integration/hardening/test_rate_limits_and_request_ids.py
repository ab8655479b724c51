"""A served gate with per-role rate limits: RESOURCE_EXHAUSTED with a retry hint and an audit
entry once an identity's bucket is empty; request ids echoed and written in every log line."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from gate.v1 import scan_pb2
from tests.integration.auth.support import TOKENS, write_tokens
from tests.integration.hardening.serve_support import ServedGate, gate_env

PIPELINE = TOKENS["pipeline"]
AUDITOR = TOKENS["auditor"]


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[ServedGate]:
    tokens = write_tokens(
        tmp_path / "tokens.yaml",
        {PIPELINE: ("ci-payments", ["pipeline"], ["payments"]), AUDITOR: ("audit", ["auditor"], [])},
    )
    config = tmp_path / "gate.yaml"
    config.write_text(
        f"auth:\n  mode: required\n  tokens_file: {tokens}\n"
        "  rate_limits:\n    pipeline: {rate: 2, burst: 3}\n"
    )
    gate = ServedGate(config, gate_env(tmp_path / "data"))
    gate.start()
    yield gate
    gate.stop()


def _get_scan(
    channel: grpc.Channel, token: str, rid: str = ""
) -> tuple[grpc.StatusCode, dict[str, str], str]:
    stub = channel.unary_unary(
        "/gate.v1.ScanService/GetScan",
        request_serializer=scan_pb2.GetScanRequest.SerializeToString,
        response_deserializer=scan_pb2.Scan.FromString,
    )
    metadata = [("authorization", f"Bearer {token}")]
    if rid:
        metadata.append(("x-request-id", rid))
    try:
        _, call = stub.with_call(scan_pb2.GetScanRequest(id=str(uuid.uuid4())), timeout=10, metadata=metadata)
    except grpc.RpcError as error:
        # Raised errors of a unary call are also its Call: code, details and trailers.
        failed: Any = error
        trailers = {k: str(v) for k, v in failed.trailing_metadata() or ()}
        return failed.code(), trailers, failed.details() or ""
    return grpc.StatusCode.OK, {k: str(v) for k, v in call.trailing_metadata() or ()}, ""


def _log(gate: ServedGate) -> list[dict[str, object]]:
    return [json.loads(line) for line in gate.log_file.read_text().splitlines() if line.startswith("{")]


def test_an_identity_over_its_rate_gets_resource_exhausted_with_a_retry_hint(limited: ServedGate) -> None:
    with limited.channel() as channel:
        codes = [_get_scan(channel, PIPELINE)[0] for _ in range(3)]
        assert codes == [grpc.StatusCode.NOT_FOUND] * 3
        code, trailers, detail = _get_scan(channel, PIPELINE, "over-the-limit-1")
        assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "token:ci-payments is over its rate limit of 2 requests/s (bursts of 3); retry in" in detail
        wait = float(trailers["retry-after"])
        assert 0 < wait <= 0.5
        assert int(trailers["grpc-retry-pushback-ms"]) == max(1, round(wait * 1000))
        assert trailers["x-request-id"] == "over-the-limit-1"
        # Another identity has a bucket of its own (and auditors are not limited here).
        assert [_get_scan(channel, AUDITOR)[0] for _ in range(10)] == [grpc.StatusCode.NOT_FOUND] * 10
        time.sleep(wait + 0.05)
        assert _get_scan(channel, PIPELINE)[0] is grpc.StatusCode.NOT_FOUND

    refusals = [r for r in _log(limited) if r.get("status") == "RESOURCE_EXHAUSTED"]
    assert len(refusals) == 1
    assert refusals[0]["identity"] == "token:ci-payments"
    assert refusals[0]["request_id"] == "over-the-limit-1"
    assert refusals[0]["method"] == "gate.v1.ScanService/GetScan"
    assert PIPELINE not in limited.log_file.read_text(), "a bearer token was written to the log"


def test_grpc_calls_echo_the_callers_request_id_or_a_new_one_and_log_it(limited: ServedGate) -> None:
    with limited.channel() as channel:
        _, kept, _ = _get_scan(channel, AUDITOR, "ci-run-17.step-3")
        _, made, _ = _get_scan(channel, AUDITOR)
        _, replaced, _ = _get_scan(channel, AUDITOR, "has spaces and / slashes")
        code, refused, _ = _get_scan(channel, "not-a-token", "who-is-this")
    assert kept["x-request-id"] == "ci-run-17.step-3"
    assert len(made["x-request-id"]) == 32
    assert replaced["x-request-id"] not in ("", "has spaces and / slashes")
    assert code is grpc.StatusCode.UNAUTHENTICATED
    assert refused["x-request-id"] == "who-is-this"
    unauthenticated = [r for r in _log(limited) if r.get("status") == "UNAUTHENTICATED"]
    assert [r["request_id"] for r in unauthenticated] == ["who-is-this"]


def test_webhook_responses_carry_the_request_id(limited: ServedGate) -> None:
    with httpx.Client(verify=False, timeout=10) as client:  # the webhook's own self-signed pair
        url = f"https://127.0.0.1:{limited.webhook_port}/healthz"
        kept = client.get(url, headers={"x-request-id": "probe-1"})
        made = client.get(url)
    assert kept.status_code == 200
    assert kept.headers["x-request-id"] == "probe-1"
    assert len(made.headers["x-request-id"]) == 32
