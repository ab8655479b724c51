"""The decision writer process: it signs and stores, survives being killed, and refuses a bad key."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gate._signature_service import SignatureService
from gate.audit import verify_decision
from gate.config import Config
from gate.decisions import AcknowledgedRecorder, DecisionRecorder, LocalWriter, WriterProcess
from gate.errors import ConfigError, StoreUnavailable
from gate.model import Decision, DecodedJson, EnforcementAction, RuleOutcome, RuleResult
from gate.store import DecisionQuery, open_store
from gate.v1 import audit_pb2, decision_pb2
from tests.conftest import ManualClock, RunningGate, loopback_config

NOW = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)


def decision(n: int) -> Decision:
    return Decision(
        id=f"01a22032-0000-7000-8000-{n:012d}",
        allowed=n % 2 == 0,
        message="allowed" if n % 2 == 0 else "denied",
        stage="admission",
        decided_at=NOW,
        results=(RuleResult("p", "r", RuleOutcome.PASS, "", "", EnforcementAction.ENFORCE, "Pod/ns/x"),),
        request=DecodedJson({"uid": str(n), "object": {"kind": "Pod"}}),
        subject="Pod/ns/x",
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return loopback_config(tmp_path / "data", GATE_DATABASE_URL=url)
    return loopback_config(tmp_path / "data")


@pytest.fixture
def writer(config: Config) -> Iterator[WriterProcess]:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    process = WriterProcess(config)
    process.start()
    process.wait_ready()
    yield process
    process.close()


def stored_ids(config: Config) -> list[str]:
    store = open_store(config.effective_database_url)
    try:
        ids: list[str] = []
        token = ""
        while True:
            page = store.list_decisions(DecisionQuery(page_size=500, page_token=token))
            ids += [d.id for d in page.items]
            token = page.next_token
            if not token:
                return ids
    finally:
        store.close()


def test_decisions_stored_by_the_child_carry_signatures_that_verify(config: Config) -> None:
    statements: list[str] = []
    config.data_dir.mkdir(parents=True, exist_ok=True)
    writer = WriterProcess(config, observe=lambda kind, seconds: statements.append(kind))
    writer.start()
    recorder = AcknowledgedRecorder(writer, timeout=30, sealed_by_sink=True)
    threads = [threading.Thread(target=recorder.record, args=(decision(n),)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorder.close()
    writer.close()

    public_key = (
        SignatureService(config.signatures, config.registry).decision_signer(config.data_dir).public_key_pem()
    )
    store = open_store(config.effective_database_url)
    try:
        for n in range(40):
            stored = store.get_decision(decision(n).id)
            assert stored is not None
            assert stored.request_digest.startswith("sha256:")
            check = verify_decision(stored, public_key)
            assert check.verified, check.reason
    finally:
        store.close()
    # The child's statements are timed in this process (the store's statement metrics).
    assert "insert" in statements


def test_a_killed_child_is_replaced_and_every_decision_is_stored_once(
    config: Config, writer: WriterProcess
) -> None:
    recorder = DecisionRecorder(writer, sealed_by_sink=True, linger=0.0, retry_delays=(0.05, 0.1, 0.5, 1.0))
    for n in range(150):
        recorder.record(decision(n))
    first = writer.pid
    assert first is not None
    # Killed while it may be storing a batch: it either committed it before dying or not, and
    # the batch is sent again to the next child, which stores what is missing.
    os.kill(first, signal.SIGKILL)
    for n in range(150, 300):
        recorder.record(decision(n))
    recorder.close()

    ids = stored_ids(config)
    assert sorted(ids) == sorted(decision(n).id for n in range(300))
    assert recorder.lost == 0
    assert writer.pid != first
    assert writer.restarts == 1


def test_a_batch_resent_after_its_child_died_skips_what_that_child_had_committed(config: Config) -> None:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    restarted: list[None] = []
    writer = WriterProcess(config, reply_timeout=0.5, on_restart=lambda: restarted.append(None))
    writer.start()
    writer.wait_ready()
    try:
        batch = [decision(n) for n in range(10)]
        frozen = writer.pid
        assert frozen is not None
        os.kill(frozen, signal.SIGSTOP)
        # The frozen child does not answer in time: it is killed with the batch in flight...
        with pytest.raises(StoreUnavailable, match=r"did not store 10 decisions within 0\.5 s"):
            writer.add_decisions(batch)
        # ...having committed half of it before it stopped answering (as a child killed between
        # its commit and its answer has).
        store = open_store(config.effective_database_url)
        try:
            store.add_decisions(batch[:5])
        finally:
            store.close()
        writer.add_decisions(batch)  # the next child stores the other half instead of refusing all
    finally:
        writer.close()

    assert sorted(stored_ids(config)) == sorted(d.id for d in batch)
    assert writer.restarts == 1
    assert len(restarted) == 1  # what gate_decision_writer_restarts_total counts


def test_a_record_the_store_refuses_is_lost_alone(config: Config, writer: WriterProcess) -> None:
    writer.add_decisions([decision(0)])
    recorder = DecisionRecorder(writer, sealed_by_sink=True, linger=0.05)
    for n in (1, 0, 2):  # decision 0 is stored already: its id is refused as a duplicate
        recorder.record(decision(n))
    recorder.close()

    assert sorted(stored_ids(config)) == sorted(decision(n).id for n in range(3))
    assert recorder.lost == 1
    assert recorder.recorded == 2


def test_the_child_ignores_sigterm_and_stores_what_the_parent_drains_after_it(
    config: Config, writer: WriterProcess
) -> None:
    recorder = DecisionRecorder(writer, sealed_by_sink=True)
    pid = writer.pid
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGINT)
    for n in range(20):
        recorder.record(decision(n))
    recorder.close()

    assert len(stored_ids(config)) == 20
    assert writer.restarts == 0


def test_a_key_that_does_not_load_stops_the_start_naming_the_setting(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    config = loopback_config(tmp_path / "data", GATE_SIGNING_KEY_FILE=str(key))
    config.data_dir.mkdir(parents=True)
    writer = WriterProcess(config)
    writer.start()
    try:
        with pytest.raises(ConfigError, match=r"signatures\.signing_key_file"):
            writer.wait_ready()
    finally:
        writer.close()


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_until_busy_this_process_writes_and_a_busy_second_starts_the_child_first_and_after_it_died(
    config: Config,
) -> None:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config.effective_database_url)
    signer = SignatureService(config.signatures, config.registry).decision_signer(config.data_dir)
    clock = ManualClock()
    writer = WriterProcess(
        config, until_busy=LocalWriter(store.add_decisions, signer), busy_rate=10, clock=clock
    )
    try:
        for n in range(9):  # 9 in one second: below the busy rate
            writer.add_decisions([decision(n)])
        clock.now += 1.5
        writer.add_decisions([decision(n) for n in range(9, 14)])  # a new second: 5 so far
        assert writer.pid is None
        writer.add_decisions([decision(n) for n in range(14, 20)])  # 11 in this second: busy
        wait_for(lambda: writer.ready)
        child = writer.pid
        assert child is not None
        writer.add_decisions([decision(n) for n in range(20, 30)])
        # Gone between two batches: this process writes again, and the next busy second
        # starts a new child.
        os.kill(child, signal.SIGKILL)
        wait_for(lambda: not Path(f"/proc/{child}").exists() or "Z" in _state(child))
        clock.now += 1.5
        writer.add_decisions([decision(n) for n in range(30, 41)])
        assert store.get_decision(decision(40).id) is not None
        wait_for(lambda: writer.ready)
        assert writer.pid != child
        writer.add_decisions([decision(n) for n in range(41, 45)])
    finally:
        writer.close()
    public_key = signer.public_key_pem()
    try:
        for n in range(45):
            stored = store.get_decision(decision(n).id)
            assert stored is not None
            assert verify_decision(stored, public_key).verified
    finally:
        store.close()
    assert writer.restarts == 1


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_a_child_that_cannot_start_leaves_this_process_writing(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config.effective_database_url)
    signer = SignatureService(config.signatures, config.registry).decision_signer(config.data_dir)
    # No child imports gate and opens the store in a millisecond.
    writer = WriterProcess(
        config, until_busy=LocalWriter(store.add_decisions, signer), busy_rate=1, start_timeout=0.001
    )
    try:
        writer.add_decisions([decision(0)])
        wait_for(lambda: "could not start" in caplog.text)
        writer.add_decisions([decision(1)])
        assert not writer.ready
        assert writer.pid is None
        assert store.get_decision(decision(1).id) is not None
    finally:
        writer.close()
        store.close()
    assert "was not ready within 0.001 s" in caplog.text
    assert "tried again in 60 s" in caplog.text


POD = b"""apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop}
spec: {containers: [{name: api, image: 'registry.example/shop/api:1.0'}]}
"""


@pytest.mark.parametrize("writer_kind", ["process", "thread", "loop"])
def test_a_pipeline_decide_answers_with_the_signed_record_the_writer_stored(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], writer_kind: str
) -> None:
    # The writer signs (in its process, its thread, or on the event loop); the answer waits for the
    # commit and carries that signature: the same bytes the audit trail holds, verifying with
    # gate's key.
    config = loopback_config(tmp_path / "data", GATE_DECISIONS_WRITER=writer_kind)
    served = serve_gate(config)
    answers = [
        served.call(
            "gate.v1.DecisionService/Decide",
            decision_pb2.DecideRequest(manifest=POD, stage="deploy", project="shop"),
            decision_pb2.Decision,
        )
        for _ in range(3)
    ]
    key = served.call(
        "gate.v1.AuditService/GetDecisionKey", audit_pb2.GetDecisionKeyRequest(), audit_pb2.DecisionKey
    )
    assert isinstance(key, audit_pb2.DecisionKey)
    for answer in answers:
        assert isinstance(answer, decision_pb2.Decision)
        assert answer.signature, answer
        assert answer.request_digest.startswith("sha256:"), answer
        asked = audit_pb2.GetDecisionRequest(id=answer.id)
        stored = served.call("gate.v1.AuditService/GetDecision", asked, decision_pb2.Decision)
        assert isinstance(stored, decision_pb2.Decision)
        assert (stored.request_digest, stored.signature) == (answer.request_digest, answer.signature)
        record = open_store(config.effective_database_url)
        try:
            kept = record.get_decision(answer.id)
            assert kept is not None
            check = verify_decision(kept, key.public_key.encode())
        finally:
            record.close()
        assert check.verified, check.reason
    # A dry run is neither recorded nor sealed.
    dry = served.call(
        "gate.v1.DecisionService/Decide",
        decision_pb2.DecideRequest(manifest=POD, stage="deploy", dry_run=True),
        decision_pb2.Decision,
    )
    assert isinstance(dry, decision_pb2.Decision)
    assert (dry.id, dry.signature) == ("", b"")


def test_a_resent_batch_returns_the_seals_of_what_the_dead_child_had_stored(config: Config) -> None:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    ids = [decision(n).id for n in range(5)]
    first = WriterProcess(config)
    seals = first.add_decisions([decision(n) for n in range(3)], seals_for=ids[:2])
    first.close()
    assert sorted(seals) == ids[:2], "only the seals asked for come back"
    second = WriterProcess(config)
    try:
        # As after a child that committed and died before it answered: the batch comes again.
        second._resend = True
        again = second.add_decisions([decision(n) for n in range(5)], seals_for=ids)
    finally:
        second.close()
    assert sorted(again) == ids
    assert [again[i] for i in ids[:2]] == [seals[i] for i in ids[:2]]
    assert all(digest.startswith("sha256:") and envelope for digest, envelope in again.values())
