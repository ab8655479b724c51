"""The batch writer: nothing lost on close, backpressure when full, retries, signing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from gate.decisions import (
    BATCH_PREDICATE_TYPE,
    PAYLOAD_TYPE,
    SEAL_MEDIA_TYPE,
    DecisionRecorder,
    request_digest,
    statement_payload,
    tree_root,
)
from gate.errors import StoreUnavailable
from gate.model import Decision
from tests.conftest import ManualClock

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def decision(n: int) -> Decision:
    return Decision(
        id=f"00000000-0000-4000-8000-{n:012d}",
        allowed=True,
        message="allowed",
        stage="admission",
        decided_at=NOW,
        request={"uid": str(n)},
    )


class Sink:
    """An in-memory store port; ``down`` batches fail with StoreUnavailable first; ``gate`` blocks writes."""

    def __init__(self, down: int = 0, gate: threading.Event | None = None) -> None:
        self.batches: list[list[Decision]] = []
        self.down = down
        self.gate = gate

    def add_decisions(self, batch: Sequence[Decision]) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        if self.down:
            self.down -= 1
            raise StoreUnavailable("evidence store unavailable: connection refused")
        self.batches.append(list(batch))

    @property
    def stored(self) -> list[Decision]:
        return [d for batch in self.batches for d in batch]


class Signer:
    def __init__(self) -> None:
        self.calls: list[tuple[bytes, str]] = []

    def sign(self, payload: bytes, payload_type: str) -> bytes:
        self.calls.append((payload, payload_type))
        return b'{"payloadType":"' + payload_type.encode() + b'"}'


def test_close_stores_everything_queued_with_request_digests() -> None:
    sink = Sink()
    recorder = DecisionRecorder(sink)
    for n in range(500):
        recorder.record(decision(n))
    recorder.close()
    stored = sink.stored
    assert [d.id for d in stored] == [decision(n).id for n in range(500)]
    assert stored[7].request_digest == request_digest({"uid": "7"})
    assert stored[7].signature == b""
    assert recorder.recorded == 500
    assert recorder.lost == 0
    assert len(sink.batches) < 500  # batched


def test_a_full_queue_makes_the_caller_write_synchronously() -> None:
    gate = threading.Event()
    sink = Sink(gate=gate)
    recorder = DecisionRecorder(sink, capacity=2, put_timeout=0.01)
    writer = threading.Thread(target=lambda: [recorder.record(decision(n)) for n in range(6)])
    writer.start()
    deadline = time.monotonic() + 10
    while recorder.synchronous == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.set()
    writer.join(10)
    recorder.close()
    assert sorted(d.id for d in sink.stored) == sorted(decision(n).id for n in range(6))
    assert recorder.synchronous >= 1


def test_a_store_outage_is_retried() -> None:
    sink = Sink(down=2)
    recorder = DecisionRecorder(sink, retry_delays=(0.01, 0.01, 0.01))
    recorder.record(decision(1))
    recorder.flush()
    recorder.close()
    assert [d.id for d in sink.stored] == [decision(1).id]
    assert recorder.lost == 0


def test_one_signature_seals_a_batch_and_each_record_proves_its_place_in_it() -> None:
    held = threading.Event()
    sink, signer = Sink(gate=held), Signer()
    recorder = DecisionRecorder(sink, signer=signer, linger=0)
    recorder.record(decision(0))
    deadline = time.monotonic() + 10
    while not signer.calls and time.monotonic() < deadline:  # sealed alone; the sink holds it now
        time.sleep(0.001)
    for n in range(1, 6):
        recorder.record(decision(n))
    held.set()
    recorder.close()
    assert [len(batch) for batch in sink.batches] == [1, 5]
    assert len(signer.calls) == 2, "one signature per batch"
    for batch, (payload, payload_type) in zip(sink.batches, signer.calls, strict=True):
        assert payload_type == PAYLOAD_TYPE
        signed = json.loads(payload)
        assert signed["predicateType"] == BATCH_PREDICATE_TYPE
        assert signed["predicate"]["treeSize"] == len(batch)
        [root] = [subject["digest"]["sha256"] for subject in signed["subject"]]
        for index, stored in enumerate(batch):
            seal = json.loads(stored.signature)
            assert seal["mediaType"] == SEAL_MEDIA_TYPE
            assert (seal["index"], seal["treeSize"]) == (index, len(batch))
            assert seal["envelope"] == {"payloadType": PAYLOAD_TYPE}  # the signer's envelope, as it is
            proof = [bytes.fromhex(h) for h in seal["proof"]]
            assert tree_root(statement_payload(stored), index, len(batch), proof).hex() == root
            statement = json.loads(statement_payload(stored))
            assert statement["subject"][0]["digest"]["sha256"] == stored.request_digest.removeprefix(
                "sha256:"
            )
            assert statement["predicate"]["id"] == stored.id


def test_the_writer_lingers_to_batch_only_while_decisions_arrive_close_together() -> None:
    clock = ManualClock()
    held = threading.Event()  # nothing reaches the sink: only the arrival estimate is watched
    recorder = DecisionRecorder(Sink(gate=held), linger=0.001, busy_gap=0.002, clock=clock)
    assert not recorder.busy, "a recorder that has seen nothing is idle"
    for n in range(60):
        clock.now += 0.0005  # 2,000 decisions per second
        recorder.record(decision(n))
    assert recorder.busy
    for n in range(60, 120):
        clock.now += 0.01  # 100 per second
        recorder.record(decision(n))
    assert not recorder.busy
    held.set()
    recorder.close()


def test_after_an_idle_hour_a_burst_is_batched_again_within_a_few_dozen_decisions() -> None:
    clock = ManualClock()
    recorder = DecisionRecorder(Sink(), linger=0.001, busy_gap=0.002, clock=clock)
    clock.now += 3600
    recorder.record(decision(0))
    burst = 0
    while not recorder.busy:
        burst += 1
        clock.now += 0.0002
        recorder.record(decision(burst))
    assert burst <= 30
    recorder.close()
