"""decisions.writer loop: the event loop commits the decisions it made, or the writer thread does."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from collections.abc import Sequence

import pytest

from gate.decisions import AcknowledgedRecorder, Acknowledgements, deferred_acknowledgements
from gate.decisions._acknowledge import LOOP_LINGER, LOOP_RETRIES
from gate.errors import Conflict
from gate.model import Decision
from tests.unit.decisions.test_recorder import Signer, Sink, decision


class LoopStore:
    """The port ``on_loop`` takes: commits (or declines, or fails) and notes where it ran."""

    def __init__(
        self, *, declines: bool = False, fails: bool = False, breaks: bool = False, declines_first: int = 0
    ) -> None:
        self.batches: list[list[Decision]] = []
        self.threads: list[int] = []
        self.declines = declines
        self.fails = fails
        self.breaks = breaks
        self.declines_first = declines_first  # the first N commits decline, then they succeed

    def add_decisions_now(self, batch: Sequence[Decision]) -> bool:
        self.threads.append(threading.get_ident())
        if self.fails:
            raise Conflict(f"decision {batch[0].id!r} already exists")
        if self.breaks:
            raise RuntimeError("a bug in the store adapter")
        if self.declines_first:
            self.declines_first -= 1
            return False
        if self.declines:
            return False
        self.batches.append(list(batch))
        return True


def _record_all(recorder: AcknowledgedRecorder, numbers: range) -> list[Acknowledgements]:
    calls = []
    for number in numbers:
        with deferred_acknowledgements(asyncio.get_running_loop()) as stored:
            recorder.record(decision(number), seal_back=True)
        calls.append(stored)
    return calls


def test_decisions_recorded_on_a_loop_are_sealed_and_committed_by_that_loop_in_one_batch() -> None:
    asyncio.run(_decisions_recorded_on_a_loop_are_sealed_and_committed_by_that_loop_in_one_batch())


async def _decisions_recorded_on_a_loop_are_sealed_and_committed_by_that_loop_in_one_batch() -> None:
    thread_sink, loop_store = Sink(), LoopStore()
    batches: list[tuple[str, int]] = []
    recorder = AcknowledgedRecorder(
        thread_sink, signer=Signer(), timeout=5, on_loop=loop_store, on_batch=lambda *b: batches.append(b)
    )
    calls = _record_all(recorder, range(5))
    assert loop_store.batches == [], "committed before the loop finished the calls of this pass"
    await asyncio.wait_for(asyncio.gather(*(call.wait() for call in calls)), 5)
    [batch] = loop_store.batches
    assert [d.id for d in batch] == [decision(n).id for n in range(5)]
    assert loop_store.threads == [threading.get_ident()], "committed outside the event loop's thread"
    assert all(d.signature and d.request_digest for d in batch), "stored unsealed"
    for number, call in enumerate(calls):
        kept = batch[number]
        assert call.seal(kept.id) == (kept.request_digest, kept.signature)
    assert thread_sink.stored == []
    recorder.close()
    assert recorder.recorded == 5
    assert batches == [("loop", 5)]


@pytest.mark.parametrize("refusal", ["declines", "fails", "breaks"])
def test_a_batch_the_store_declines_on_the_loop_is_stored_by_the_writer_thread(refusal: str) -> None:
    loop_store = LoopStore(**{refusal: True})
    asyncio.run(_a_batch_the_store_declines_on_the_loop_is_stored_by_the_writer_thread(loop_store))


async def _a_batch_the_store_declines_on_the_loop_is_stored_by_the_writer_thread(store: LoopStore) -> None:
    thread_sink, signer = Sink(), Signer()
    batches: list[tuple[str, int]] = []
    recorder = AcknowledgedRecorder(
        thread_sink, signer=signer, timeout=5, on_loop=store, on_batch=lambda *b: batches.append(b)
    )
    calls = _record_all(recorder, range(3))
    await asyncio.wait_for(asyncio.gather(*(call.wait() for call in calls)), 5)
    # A store that declines (its lock taken) is tried again a few times; one that fails is not.
    tries = 1 + LOOP_RETRIES if store.declines else 1
    assert store.threads == [threading.get_ident()] * tries
    assert len(signer.calls) == 1, "the writer thread signed the loop's sealed decisions again"
    assert sorted(d.id for d in thread_sink.stored) == [decision(n).id for n in range(3)]
    for number, call in enumerate(calls):
        assert call.seal(decision(number).id) is not None, "the writer thread's seal did not come back"
    recorder.close()  # the writer thread counts a batch after it woke the waiters
    assert {by for by, _ in batches} == {"thread"}
    assert sum(size for _, size in batches) == 3


def test_a_batch_declined_once_is_committed_by_the_loop_with_what_came_meanwhile_signed_once() -> None:
    asyncio.run(_a_batch_declined_once_is_committed_by_the_loop_with_what_came_meanwhile_signed_once())


async def _a_batch_declined_once_is_committed_by_the_loop_with_what_came_meanwhile_signed_once() -> None:
    thread_sink, signer, loop_store = Sink(), Signer(), LoopStore(declines_first=1)
    batches: list[tuple[str, int]] = []
    recorder = AcknowledgedRecorder(
        thread_sink, signer=signer, timeout=5, on_loop=loop_store, on_batch=lambda *b: batches.append(b)
    )
    first = _record_all(recorder, range(2))
    await asyncio.sleep(0)  # the loop's first commit, declined
    assert len(loop_store.threads) == 1
    assert loop_store.batches == []
    later = _record_all(recorder, range(2, 4))  # before the second try
    await asyncio.wait_for(asyncio.gather(*(call.wait() for call in [*first, *later])), 5)
    [batch] = loop_store.batches
    assert [d.id for d in batch] == [decision(n).id for n in range(4)], "the declined ones lost their place"
    # One signature per batch sealed: the first two's, then the two that came meanwhile.
    assert len(signer.calls) == 2, "a declined decision was signed again"
    seals = [json.loads(d.signature) for d in batch]
    assert [(seal["index"], seal["treeSize"]) for seal in seals] == [(0, 2), (1, 2), (0, 2), (1, 2)]
    assert thread_sink.stored == []
    for number, call in enumerate([*first, *later]):
        assert call.seal(decision(number).id) == (batch[number].request_digest, batch[number].signature)
    recorder.close()
    assert batches == [("loop", 4)]


def test_a_decision_recorded_off_the_loop_goes_to_the_writer_thread() -> None:
    asyncio.run(_a_decision_recorded_off_the_loop_goes_to_the_writer_thread())


async def _a_decision_recorded_off_the_loop_goes_to_the_writer_thread() -> None:
    thread_sink, loop_store = Sink(), LoopStore()
    recorder = AcknowledgedRecorder(thread_sink, timeout=5, on_loop=loop_store)
    loop = asyncio.get_running_loop()
    with deferred_acknowledgements(loop) as stored:
        # A review thread's evaluation: the loop's state is not touched from another thread.
        await loop.run_in_executor(None, contextvars.copy_context().run, recorder.record, decision(9))
    await asyncio.wait_for(stored.wait(), 5)
    assert [d.id for d in thread_sink.stored] == [decision(9).id]
    assert loop_store.threads == []
    recorder.close()


def test_decisions_a_loop_has_not_committed_yet_are_stored_at_close() -> None:
    asyncio.run(_decisions_a_loop_has_not_committed_yet_are_stored_at_close())


async def _decisions_a_loop_has_not_committed_yet_are_stored_at_close() -> None:
    thread_sink, loop_store = Sink(), LoopStore()
    recorder = AcknowledgedRecorder(thread_sink, timeout=5, on_loop=loop_store)
    _record_all(recorder, range(4))
    recorder.close()  # before the loop ran its commit
    assert sorted(d.id for d in thread_sink.stored) == [decision(n).id for n in range(4)]
    await asyncio.sleep(0)  # the loop's commit, now with nothing left to commit
    assert loop_store.batches == []


def test_a_lone_caller_is_committed_in_the_same_pass_of_the_loop() -> None:
    asyncio.run(_a_lone_caller_is_committed_in_the_same_pass_of_the_loop())


async def _a_lone_caller_is_committed_in_the_same_pass_of_the_loop() -> None:
    loop_store = LoopStore()
    recorder = AcknowledgedRecorder(Sink(), timeout=5, on_loop=loop_store)
    loop = asyncio.get_running_loop()
    # One caller after another, as fast as they come (busy by the arrival rate alone): each
    # batch holds one decision, so none lingers for others that cannot come meanwhile.
    started = loop.time()
    for number in range(20):
        [call] = _record_all(recorder, range(number, number + 1))
        await asyncio.wait_for(call.wait(), 5)
    assert loop.time() - started < 20 * LOOP_LINGER, "a lone caller waited for a batch to fill"
    assert [len(batch) for batch in loop_store.batches] == [1] * 20
    recorder.close()


def test_while_the_writer_thread_is_behind_the_loop_records_through_its_queue() -> None:
    asyncio.run(_while_the_writer_thread_is_behind_the_loop_records_through_its_queue())


async def _while_the_writer_thread_is_behind_the_loop_records_through_its_queue() -> None:
    # The store holds the writer's first batch; two more queue behind it (its batch size): the
    # thread is behind, so a decision made on the loop joins its queue (and its back-pressure)
    # instead of being committed past it.
    release = threading.Event()
    thread_sink, loop_store = Sink(gate=release), LoopStore()
    recorder = AcknowledgedRecorder(thread_sink, timeout=5, max_batch=2, on_loop=loop_store)
    loop = asyncio.get_running_loop()
    with deferred_acknowledgements(loop) as held:
        for number in range(3):
            await loop.run_in_executor(
                None, contextvars.copy_context().run, recorder.record, decision(number)
            )
            await asyncio.sleep(0.05)  # the first is taken by the writer, which waits on the store
    [late] = _record_all(recorder, range(3, 4))
    release.set()
    await asyncio.wait_for(asyncio.gather(held.wait(), late.wait()), 5)
    assert loop_store.threads == []
    assert sorted(d.id for d in thread_sink.stored) == [decision(n).id for n in range(4)]
    recorder.close()
