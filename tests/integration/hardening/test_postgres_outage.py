"""PostgreSQL cut off (or partitioned away) for 10 s under load: RPCs answer UNAVAILABLE within
their deadline, admission fails closed, and gate recovers by itself once the database is back."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gate.store import open_store
from gate.v1 import decision_pb2, scan_pb2
from tests.conftest import drop_postgres_schema, fresh_postgres_url
from tests.integration.hardening.serve_support import ROOT, ServedGate, call, gate_env, review_body, until
from tests.integration.hardening.tcp_proxy import TcpProxy

EVIDENCE_POLICY = ROOT / "tests" / "assets" / "hardening" / "evidence_policy.yaml"
OUTAGE = 10.0
DEADLINE = 5.0
BUDGET = 2.0


@dataclass(frozen=True)
class Outcome:
    """One call: when it started and ended (monotonic), what it was and how it ended."""

    started: float
    ended: float
    method: str
    code: grpc.StatusCode
    detail: str
    allowed: bool | None = None
    decision_id: str = ""


@pytest.fixture(params=["queued", "stored"])
def proxied_gate(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_admin: sa.Engine
) -> Iterator[tuple[ServedGate, TcpProxy, str, str]]:
    admin_url = postgres_admin.url
    proxy = TcpProxy((admin_url.host or "127.0.0.1", admin_url.port or 5432))
    schema, url = fresh_postgres_url(postgres_admin)
    through_proxy = make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    config = tmp_path / "gate.yaml"
    config.write_text(
        f"policies:\n  sources: [{EVIDENCE_POLICY}]\n"
        f"webhook:\n  failure_mode: fail-closed\n  budget: {BUDGET}\n"
        f"decisions:\n  acknowledge: {request.param}\n"
    )
    gate = ServedGate(config, gate_env(tmp_path / "data", GATE_DATABASE_URL=through_proxy))
    try:
        yield gate, proxy, request.param, url
    finally:
        gate.stop()
        proxy.close()
        drop_postgres_schema(postgres_admin, schema)


def _outcome(started: float, method: str, code: grpc.StatusCode, detail: str = "", **extra: Any) -> Outcome:
    return Outcome(started, time.monotonic(), method, code, detail, **extra)


def _read(channel: grpc.Channel, webhook: httpx.Client) -> Outcome:
    started = time.monotonic()
    request = scan_pb2.GetScanRequest(id=str(uuid.uuid4()))
    try:
        call(channel, "gate.v1.ScanService/GetScan", request, scan_pb2.Scan, DEADLINE)
    except grpc.RpcError as error:
        return _outcome(started, "GetScan", error.code(), error.details() or "")
    return _outcome(started, "GetScan", grpc.StatusCode.OK)


def _review(channel: grpc.Channel, webhook: httpx.Client) -> Outcome:
    started = time.monotonic()
    request = decision_pb2.ReviewRequest(admission_review=review_body(str(uuid.uuid4())))
    try:
        reply = call(
            channel, "gate.v1.DecisionService/Review", request, decision_pb2.ReviewResponse, DEADLINE
        )
    except grpc.RpcError as error:
        return _outcome(started, "Review", error.code(), error.details() or "")
    assert isinstance(reply, decision_pb2.ReviewResponse)
    return _outcome(
        started, "Review", grpc.StatusCode.OK, allowed=reply.decision.allowed, decision_id=reply.decision.id
    )


def _validate(channel: grpc.Channel, webhook: httpx.Client) -> Outcome:
    started = time.monotonic()
    try:
        answer = webhook.post("/validate", content=review_body(str(uuid.uuid4())), timeout=DEADLINE)
    except httpx.TimeoutException:
        return _outcome(started, "validate", grpc.StatusCode.DEADLINE_EXCEEDED)
    if answer.status_code != 200:
        return _outcome(started, "validate", grpc.StatusCode.UNAVAILABLE, str(answer.status_code))
    return _outcome(started, "validate", grpc.StatusCode.OK, allowed=answer.json()["response"]["allowed"])


def _load(
    gate: ServedGate,
    one: Callable[[grpc.Channel, httpx.Client], Outcome],
    outcomes: list[Outcome],
    stop: threading.Event,
) -> None:
    # The webhook's own self-signed certificate: this is about answers, not TLS.
    webhook = httpx.Client(base_url=f"https://127.0.0.1:{gate.webhook_port}", verify=False)
    with gate.channel() as channel, webhook:
        while not stop.is_set():
            outcomes.append(one(channel, webhook))
            time.sleep(0.05)


@pytest.mark.parametrize("outage", ["cut", "stall"])
def test_a_ten_second_postgres_outage_is_unavailable_then_recovers_without_restart(
    proxied_gate: tuple[ServedGate, TcpProxy, str, str], outage: str
) -> None:
    gate, proxy, acknowledge, direct_url = proxied_gate
    gate.start()
    outcomes: list[Outcome] = []
    stop = threading.Event()
    workers = [
        threading.Thread(target=_load, args=(gate, one, outcomes, stop), daemon=True)
        for one in (_read, _read, _review, _review, _validate)
    ]
    for worker in workers:
        worker.start()
    time.sleep(2)
    cut_at = time.monotonic()
    # cut: connections reset and refused (a database restart); stall: bytes stop flowing and
    # nothing is closed (a network partition, where only timeouts tell).
    proxy.cut() if outage == "cut" else proxy.stall()
    time.sleep(OUTAGE)
    restored_at = time.monotonic()
    proxy.restore()
    recovered_at = None
    deadline = restored_at + 20
    while until(deadline, 0.2):
        recent = [o for o in list(outcomes) if o.started > time.monotonic() - 1.5]
        if recent and all(o.code in (grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND) for o in recent):
            recovered_at = recent[0].started
            break
    time.sleep(1)
    stop.set()
    for worker in workers:
        worker.join(DEADLINE + 2)
    assert gate.process is not None
    assert gate.process.poll() is None, "gate exited during the outage"

    before = [o for o in outcomes if o.ended < cut_at]
    during = [o for o in outcomes if o.started > cut_at + 0.5 and o.ended < restored_at]
    assert before
    assert during
    assert {o.code for o in before} <= {grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND}
    assert not [o for o in outcomes if "Traceback" in o.detail]
    # The admission webhook answers every review within its budget, per the failure mode
    # (fail-closed: denied), or 503 when ``stored`` cannot store the answer.
    validations = [o for o in during if o.method == "validate"]
    assert validations
    assert max(o.ended - o.started for o in validations) < BUDGET + 1
    assert all(o.allowed is False or o.detail == "503" for o in validations), validations
    # gRPC Review never allows either while the store is away: a denial, or UNAVAILABLE. (A review
    # that waited for a worker until after the restore was decided on fresh evidence.)
    reviews = [
        o for o in outcomes if o.method == "Review" and o.started > cut_at + 0.5 and o.ended < restored_at
    ]
    assert all(o.allowed is not True for o in reviews), reviews
    reads = [o for o in during if o.method == "GetScan"]
    assert reads
    # Reads are refused with UNAVAILABLE before the caller's deadline, never an internal error, a
    # hang or DEADLINE_EXCEEDED: at once when the database is cut off; when a partition closes
    # nothing, once a round trip has outlasted store.answer_timeout.
    assert {o.code for o in reads} == {grpc.StatusCode.UNAVAILABLE}, {(o.code, o.detail) for o in reads}
    if outage == "cut":
        assert max(o.ended - o.started for o in during) < DEADLINE - 0.5
    else:
        # Every read begun during the stall ends before the caller's deadline (store.answer_timeout,
        # 3 s by default), also those the restore overtook.
        stalled = [o for o in outcomes if o.method == "GetScan" and cut_at + 0.5 < o.started < restored_at]
        assert grpc.StatusCode.DEADLINE_EXCEEDED not in {o.code for o in stalled}, stalled
        assert max(o.ended - o.started for o in stalled) < DEADLINE - 0.5, stalled
        # A Review may wait for evidence another thread is fetching (one fetch per artifact, also
        # the webhook's, whose store round trips end with its review budget): it is refused with
        # UNAVAILABLE before the caller's deadline, or decided on evidence gate still holds.
        late = [o for o in outcomes if o.method == "Review" and cut_at + 0.5 < o.started < restored_at]
        assert late
        assert grpc.StatusCode.DEADLINE_EXCEEDED not in {o.code for o in late}, late
        decided = [o for o in late if o.code is not grpc.StatusCode.UNAVAILABLE]
        assert all(o.allowed is False or o.ended >= restored_at for o in decided), decided
        assert max(o.ended - o.started for o in late) < DEADLINE, late
    assert recovered_at is not None, "gate did not recover within 20 s of PostgreSQL coming back"
    assert all(o.allowed for o in outcomes if o.method == "Review" and o.ended < cut_at)

    # The audit trail: every decision gate answered is stored once the database is back (the
    # queued recorder retries through the outage; ``stored`` answers only what is committed).
    answered = [o.decision_id for o in outcomes if o.method == "Review" and o.code is grpc.StatusCode.OK]
    assert answered
    store = open_store(direct_url)
    try:
        deadline = time.monotonic() + 15
        missing = answered
        while True:
            missing = [i for i in missing if store.get_decision(i) is None]
            if not missing or not until(deadline, 0.5):
                break
    finally:
        store.close()
    assert missing == [], (
        f"{len(missing)} of {len(answered)} answered decisions are not stored ({acknowledge})"
    )
    print(f"recovered {recovered_at - restored_at:.2f} s after the proxy was restored; {len(outcomes)} calls")
