"""Stored acknowledgements: record returns once the decision is committed, or refuses."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Collection, Sequence

import pytest

from gate.decisions import (
    AcknowledgedRecorder,
    Acknowledgements,
    Seal,
    after_commit,
    deferred_acknowledgements,
)
from gate.errors import StoreUnavailable
from gate.model import Decision
from tests.unit.decisions.test_recorder import Signer, Sink, decision


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


def test_deferred_record_returns_at_once_and_the_loop_awaits_the_commit() -> None:
    asyncio.run(_deferred_record_returns_at_once_and_the_loop_awaits_the_commit())


async def _deferred_record_returns_at_once_and_the_loop_awaits_the_commit() -> None:
    release = threading.Event()
    sink = Sink(gate=release)
    recorder = AcknowledgedRecorder(sink, timeout=5)
    loop = asyncio.get_running_loop()
    with deferred_acknowledgements(loop) as stored:
        # What the webhook and the gRPC servicers do: record in a worker thread, await on the loop.
        await loop.run_in_executor(None, contextvars.copy_context().run, recorder.record, decision(3))
    assert stored.pending == 1, "the worker waited for the commit instead of handing it to the loop"
    waiting = asyncio.ensure_future(stored.wait())
    await asyncio.sleep(0.2)
    assert not waiting.done(), "acknowledged before the store committed"
    release.set()
    await asyncio.wait_for(waiting, 5)
    assert stored.pending == 0
    assert [d.id for batch in sink.batches for d in batch] == [decision(3).id]
    recorder.close()


def test_deferred_decisions_of_many_callers_share_one_commit() -> None:
    asyncio.run(_deferred_decisions_of_many_callers_share_one_commit())


async def _deferred_decisions_of_many_callers_share_one_commit() -> None:
    release = threading.Event()
    sink = Sink(gate=release)
    recorder = AcknowledgedRecorder(sink, timeout=5)
    loop = asyncio.get_running_loop()
    waits = []
    # The first decision's commit is held, so the next 30 queue behind it: one more transaction.
    for number in range(31):
        with deferred_acknowledgements(loop) as stored:
            recorder.record(decision(number))
        waits.append(stored.wait())
        if number == 0:
            await asyncio.sleep(0.1)  # the writer takes the first alone and waits on the store
    await asyncio.sleep(0.2)
    release.set()
    await asyncio.wait_for(asyncio.gather(*waits), 5)
    assert len(sink.batches) == 2
    recorder.close()


def test_a_deferred_decision_the_store_never_takes_is_not_acknowledged() -> None:
    asyncio.run(_a_deferred_decision_the_store_never_takes_is_not_acknowledged())


async def _a_deferred_decision_the_store_never_takes_is_not_acknowledged() -> None:
    sink = Sink(down=1000)
    recorder = AcknowledgedRecorder(sink, timeout=0.3)
    with deferred_acknowledgements(asyncio.get_running_loop()) as stored:
        recorder.record(decision(8))
    with pytest.raises(StoreUnavailable, match=r"was not stored within 0.3 s; not acknowledged"):
        await stored.wait()
    sink.down = 0
    recorder.close()
    assert [d.id for d in sink.stored] == [decision(8).id]


def test_the_seal_the_writer_made_reaches_the_call_with_the_commit() -> None:
    asyncio.run(_the_seal_the_writer_made_reaches_the_call_with_the_commit())


async def _the_seal_the_writer_made_reaches_the_call_with_the_commit() -> None:
    sink = Sink()
    recorder = AcknowledgedRecorder(sink, signer=Signer(), timeout=5)
    seen: list[Seal | None] = []
    with deferred_acknowledgements(asyncio.get_running_loop()) as stored:
        assert recorder.seals_on_commit
        recorder.record(decision(4), seal_back=True)
        assert after_commit(lambda acks: seen.append(acks.seal(decision(4).id)))
    assert seen == [], "the call's answer was finished before the commit"
    await asyncio.wait_for(stored.wait(), 5)
    [kept] = sink.stored
    assert kept.signature
    assert seen == [(kept.request_digest, kept.signature)]
    recorder.close()


class SealingSink:
    """A sink that seals what it stores, as the decision writer process does, and says how."""

    def __init__(self) -> None:
        self.stored: list[Decision] = []
        self.asked: list[list[str]] = []

    def add_decisions(self, batch: Sequence[Decision], seals_for: Collection[str] = ()) -> dict[str, Seal]:
        self.stored += batch
        self.asked.append(sorted(seals_for))
        return {d.id: (f"sha256:{d.id}", f"envelope of {d.id}".encode()) for d in batch if d.id in seals_for}


def test_only_the_seals_a_call_asked_for_come_back_from_the_sink() -> None:
    asyncio.run(_only_the_seals_a_call_asked_for_come_back_from_the_sink())


async def _only_the_seals_a_call_asked_for_come_back_from_the_sink() -> None:
    sink = SealingSink()
    recorder = AcknowledgedRecorder(sink, timeout=5, sealed_by_sink=True)
    calls: list[Acknowledgements] = []
    for number in range(6):
        with deferred_acknowledgements(asyncio.get_running_loop()) as stored:
            # Odd ones answer with the signed record (a pipeline Decide); even ones do not (a review).
            recorder.record(decision(number), seal_back=number % 2 == 1)
        calls.append(stored)
    await asyncio.wait_for(asyncio.gather(*(call.wait() for call in calls)), 5)
    assert not any(d.signature for d in sink.stored), "the recorder signed what the sink seals"
    assert sorted(i for asked in sink.asked for i in asked) == [decision(n).id for n in (1, 3, 5)]
    for number, call in enumerate(calls):
        ident = decision(number).id
        expected = (f"sha256:{ident}", f"envelope of {ident}".encode()) if number % 2 else None
        assert call.seal(ident) == expected
    recorder.close()


def test_outside_a_deferred_call_nothing_waits_for_a_seal() -> None:
    recorder = AcknowledgedRecorder(Sink(), timeout=5)
    assert not recorder.seals_on_commit
    assert after_commit(lambda acks: None) is False
    recorder.close()


def test_a_call_whose_decision_is_not_stored_is_not_finished() -> None:
    asyncio.run(_a_call_whose_decision_is_not_stored_is_not_finished())


async def _a_call_whose_decision_is_not_stored_is_not_finished() -> None:
    sink = Sink(down=1000)
    recorder = AcknowledgedRecorder(sink, timeout=0.3)
    finished: list[Acknowledgements] = []
    with deferred_acknowledgements(asyncio.get_running_loop()) as stored:
        recorder.record(decision(9))
        after_commit(finished.append)
    with pytest.raises(StoreUnavailable):
        await stored.wait()
    assert finished == []
    sink.down = 0
    recorder.close()
