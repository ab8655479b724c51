"""Stored acknowledgements: record returns once the decision is committed, or refuses."""

from __future__ import annotations

import threading
import time

import pytest

from gate.decisions import AcknowledgedRecorder
from gate.errors import StoreUnavailable
from tests.unit.decisions.test_recorder import Sink, decision


def test_record_returns_only_after_the_batch_holding_the_decision_committed() -> None:
    release = threading.Event()
    sink = Sink(gate=release)
    recorder = AcknowledgedRecorder(sink, timeout=5)
    returned = threading.Event()

    def record() -> None:
        recorder.record(decision(1))
        returned.set()

    threading.Thread(target=record, daemon=True).start()
    assert not returned.wait(0.3), "record returned while the store had not committed"
    release.set()
    assert returned.wait(5)
    assert [d.id for batch in sink.batches for d in batch] == [decision(1).id]
    recorder.close()


def test_records_that_arrive_during_a_commit_share_the_next_one() -> None:
    release = threading.Event()
    sink = Sink(gate=release)
    recorder = AcknowledgedRecorder(sink, timeout=5)
    threads = [threading.Thread(target=recorder.record, args=(decision(n),)) for n in range(40)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # the first commit is held while the other 39 queue up
    release.set()
    for thread in threads:
        thread.join(10)
    stored = [d.id for batch in sink.batches for d in batch]
    assert sorted(stored) == sorted(decision(n).id for n in range(40))
    assert len(sink.batches) == 2
    recorder.close()


def test_a_store_that_stays_down_is_not_acknowledged() -> None:
    sink = Sink(down=1000)
    recorder = AcknowledgedRecorder(sink, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"was not stored within 0.3 s; not acknowledged"):
        recorder.record(decision(7))
    assert time.monotonic() - started < 2
    sink.down = 0  # back: the writer's retry stores it (it was never acknowledged, but not lost)
    recorder.close()
    assert [d.id for d in sink.stored] == [decision(7).id]
