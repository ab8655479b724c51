"""Answering a decision only once it is stored: group commit over the batch recorder.

:class:`DecisionRecorder` answers as soon as a decision is queued, so a crash (SIGKILL,
power loss) loses what is still in its queue: at most one linger period and one batch of
decisions that callers were already told about. :class:`AcknowledgedRecorder` keeps the
batching (one transaction for every decision that arrived together) but acknowledges a
decision only after the transaction holding it has committed, and raises
:class:`~gate.errors.StoreUnavailable` when that does not happen in time: the caller then
answers per its failure policy instead of acknowledging a decision that may be lost.

Two ways to wait. A plain caller blocks in :meth:`AcknowledgedRecorder.record`. A
transport on an event loop (the webhook, the gRPC servicers) instead opens
:func:`deferred_acknowledgements` around the call: ``record`` then only enqueues, and the
transport awaits :meth:`Acknowledgements.wait` before it answers. Blocking worker threads
on commits capped the decisions per transaction at the number of workers (two review
threads gave batches of two); deferred, every decision that arrives while one
transaction commits joins the next, and the writer wakes each event loop once per batch.

With ``on_loop`` (``decisions.writer: loop``) a decision recorded on the event loop that awaits
it skips the writer thread: the loop seals and commits it with the others of the same pass (or of
the next few milliseconds under load) through a store that never waits, and settles the waiters
directly. No queue, no wake-up of the writer and none back; when the store would have to wait
(its write lock is taken), the loop tries that batch again a millisecond later, a few times, and
then hands it, sealed, to the writer thread.

A call that answers with the signed record (a pipeline Decide) records its decision with
``seal_back`` and leaves the signing to the writer: the commit brings the seal (request digest
and seal document) back, and :func:`after_commit` puts it into the answer. The statement and
its seal are then made with the rest of the batch (one signature for all of it) and, with the
writer a process of its own (``decisions.writer``), off the GIL the event loop answers on.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import cast

from gate._nonblocking import WouldBlock
from gate.decisions._recorder import (
    DecisionRecorder,
    DecisionSink,
    NoWaitSink,
    Seal,
    SealingSink,
    seal_or_unsigned,
)
from gate.decisions._statement import DecisionSigner
from gate.errors import GateError, StoreUnavailable
from gate.model import Decision

log = logging.getLogger("gate.decisions")


class Acknowledgements:
    """Commits a transport awaits for the decisions recorded during one call.

    Created on the event loop; ``record`` (in any thread) adds to it, the writer
    thread settles it through the loop, and the transport awaits :meth:`wait`.
    """

    __slots__ = (
        "_finishers",
        "_forget",
        "_future",
        "_lock",
        "_missing",
        "_pending",
        "_seals",
        "_timeout",
        "loop",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._pending = 0
        self._missing: list[str] = []
        self._timeout = 0.0
        self._future: asyncio.Future[None] | None = None
        self._forget: Callable[[str], None] | None = None
        self._seals: dict[str, Seal] = {}
        self._finishers: list[Callable[[Acknowledgements], None]] = []

    @property
    def pending(self) -> int:
        """Decisions recorded in this call and not committed yet."""
        return self._pending

    def _expect(self, decision_id: str, timeout: float, forget: Callable[[str], None]) -> None:
        with self._lock:
            self._pending += 1
            self._missing.append(decision_id)
            self._timeout = max(self._timeout, timeout)
            self._forget = forget

    def _unexpect(self, decision_id: str) -> None:
        with self._lock:
            self._pending -= 1
            self._missing.remove(decision_id)

    def seal(self, decision_id: str) -> Seal | None:
        """The request digest and seal of a decision of this call, once committed."""
        return self._seals.get(decision_id)

    def _settle(self, decision_id: str, seal: Seal | None) -> None:
        # On the loop (see _CommitNotices.add_decisions).
        with self._lock:
            if seal is not None:
                self._seals[decision_id] = seal
            self._pending -= 1
            with contextlib.suppress(ValueError):
                self._missing.remove(decision_id)
            done = self._pending == 0
        if done and self._future is not None and not self._future.done():
            self._future.set_result(None)

    async def wait(self, deadline: float | None = None) -> None:
        """Return once every decision recorded in this call is committed.

        ``deadline`` (a :func:`time.monotonic` reading: the caller's own deadline) shortens
        the recorder's timeout when it comes first.

        Then the :func:`after_commit` callbacks of the call run, in order.

        Raises:
            StoreUnavailable: some decision was not committed in time (it may still be
                stored later; it was never acknowledged).
        """
        with self._lock:
            future = None if self._pending == 0 else self.loop.create_future()
            self._future = future
        if future is None:
            self._finish()
            return
        timeout = self._timeout
        if deadline is not None:
            timeout = max(0.0, min(timeout, deadline - time.monotonic()))
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            if self._forget is not None:
                for decision_id in self._missing:
                    self._forget(decision_id)
            raise StoreUnavailable(
                f"decision {', '.join(self._missing)} was not stored within {timeout:g} s; not acknowledged"
            ) from None
        self._finish()

    def _finish(self) -> None:
        finishers, self._finishers = self._finishers, []
        for finisher in finishers:
            finisher(self)


_DEFERRED: ContextVar[Acknowledgements | None] = ContextVar("gate_deferred_acknowledgements", default=None)


@contextlib.contextmanager
def deferred_acknowledgements(loop: asyncio.AbstractEventLoop) -> Iterator[Acknowledgements]:
    """Within the block (and contexts copied from it), ``record`` defers to the returned object."""
    acks = Acknowledgements(loop)
    token = _DEFERRED.set(acks)
    try:
        yield acks
    finally:
        _DEFERRED.reset(token)


def after_commit(finisher: Callable[[Acknowledgements], None]) -> bool:
    """Within :func:`deferred_acknowledgements`, run ``finisher`` once the call's decisions are committed.

    It runs on the event loop, after the call returned and before the transport answers, with
    the call's :class:`Acknowledgements` (whose :meth:`~Acknowledgements.seal` then has each
    decision's seal). Returns False, and registers nothing, outside such a block.
    """
    deferred = _DEFERRED.get()
    if deferred is None:
        return False
    deferred._finishers.append(finisher)
    return True


class _CommitNotices:
    """A sink that passes batches on and then wakes whoever waits for their decisions."""

    def __init__(self, sink: DecisionSink | SealingSink, *, sealing: bool) -> None:
        self._sink = sink
        self._sealing = sealing
        self._lock = threading.Lock()
        self._waiting: dict[str, threading.Event | Acknowledgements] = {}
        self._seal_back: set[str] = set()

    def expect(
        self, decision_id: str, waiter: threading.Event | Acknowledgements, *, seal_back: bool
    ) -> None:
        with self._lock:
            self._waiting[decision_id] = waiter
            if seal_back:
                self._seal_back.add(decision_id)

    def forget(self, decision_id: str) -> None:
        with self._lock:
            self._waiting.pop(decision_id, None)
            self._seal_back.discard(decision_id)

    def add_decisions(self, batch: Sequence[Decision]) -> None:
        seals: Mapping[str, Seal] | None = None
        if self._sealing:
            # Only the seals someone waits for come back: a seal is ~1-2 KB, and a review's
            # answer does not carry it.
            with self._lock:
                wanted = [decision.id for decision in batch if decision.id in self._seal_back]
            seals = cast("SealingSink", self._sink).add_decisions(batch, wanted)
        else:
            self._sink.add_decisions(batch)
        self.stored(batch, seals)

    def stored(
        self,
        batch: Sequence[Decision],
        seals: Mapping[str, Seal] | None = None,
        here: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """Wake whoever waits for ``batch``, just committed; on ``here`` (the running loop) at once."""
        with self._lock:
            woken = [(index, self._waiting.pop(decision.id, None)) for index, decision in enumerate(batch)]
            if self._seal_back:
                self._seal_back.difference_update(decision.id for decision in batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Acknowledgements, str, Seal | None]]] = {}
        for index, waiter in woken:
            if isinstance(waiter, threading.Event):
                waiter.set()
            elif waiter is not None:
                decision = batch[index]
                # The sink sealed the batch (the writer process), or the recorder did before it.
                seal = seals.get(decision.id) if seals is not None else _seal_of(decision)
                by_loop.setdefault(waiter.loop, []).append((waiter, decision.id, seal))
        for loop, settled in by_loop.items():
            if loop is here:
                _settle_all(settled)
                continue
            # One wake-up per loop and batch; a closed loop has nobody left waiting.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle_all, settled)


def _seal_of(decision: Decision) -> Seal | None:
    return (decision.request_digest, decision.signature) if decision.request_digest else None


def _settle_all(settled: list[tuple[Acknowledgements, str, Seal | None]]) -> None:
    for acks, decision_id, seal in settled:
        acks._settle(decision_id, seal)  # the module's own protocol


# On-loop group commit (``on_loop``): while callers overlap and decisions arrive less than
# LOOP_BUSY_GAP seconds apart, a batch waits LOOP_LINGER seconds for more: each batch costs a
# transaction. Under Decide load on two serving processes the loop then committed ~9 decisions a
# transaction, where the writer threads had committed ~3.5 (benchmarks/README.md, "Decisions
# committed on the event loop"). A lone caller never waits: its batches hold one decision.
LOOP_LINGER = 0.005
LOOP_BUSY_GAP = 0.005
# A batch the store declines (another connection holds SQLite's write lock: mostly the other
# serving process, whose commit takes a millisecond or two) is tried again on the loop, sealed as
# it is, up to LOOP_RETRIES times LOOP_RETRY seconds apart, before the writer thread takes it. The
# thread signed every batch it took a second time and committed it through the pool: with two
# serving processes ~8 % of the loops' batches went to it, and it held ~12 % of a process's GIL
# (benchmarks/README.md, "Declined batches tried again on the loop").
LOOP_RETRY = 0.001
LOOP_RETRIES = 4

# Callbacks that commit on a loop run in an empty context: not in the nonblocking() or
# deferred_acknowledgements() block of the call that scheduled them.
_NO_CONTEXT = contextvars.Context()


class AcknowledgedRecorder(DecisionRecorder):
    """A :class:`DecisionRecorder` that acknowledges a decision once it is committed.

    Args:
        sink: Where decisions are stored.
        signer: Signs each record (None: unsigned).
        timeout: Seconds to wait for the commit before raising StoreUnavailable.
        capacity: Decisions the queue holds before callers wait (see DecisionRecorder).
        max_batch: Decisions per transaction at most (see DecisionRecorder).
        sealed_by_sink: The sink digests and signs what it stores (see DecisionRecorder).
        on_loop: Commits decisions recorded on an event loop by that loop itself
            (``decisions.writer: loop``; see :meth:`record`). Not with ``sealed_by_sink``.
        on_batch: Told of each stored batch (see DecisionRecorder).
    """

    def __init__(
        self,
        sink: DecisionSink | SealingSink,
        *,
        signer: DecisionSigner | None = None,
        timeout: float = 2.0,
        capacity: int = 4096,
        max_batch: int = 256,
        sealed_by_sink: bool = False,
        on_loop: NoWaitSink | None = None,
        on_batch: Callable[[str, int], None] | None = None,
    ) -> None:
        self._notices = _CommitNotices(sink, sealing=sealed_by_sink)
        self._timeout = timeout
        self._on_loop = None if sealed_by_sink else on_loop
        self._loop_lock = threading.Lock()
        # Per event loop: decisions recorded on it and not committed yet, and the size of its last
        # batch (more than one: callers overlap, so lingering gathers more).
        self._loop_batches: dict[asyncio.AbstractEventLoop, list[Decision]] = {}
        self._last_loop_batch: dict[asyncio.AbstractEventLoop, int] = {}
        # Per event loop: how many times in a row the store declined its batch (see LOOP_RETRIES).
        self._loop_declines: dict[asyncio.AbstractEventLoop, int] = {}
        # Callers wait for the commit, so the writer lingers only when busy: 1 ms, once decisions
        # arrive 2 ms apart or closer (500/s). Without it, every review that released the GIL
        # (hashing its body does) let the writer commit alone: batches of one or two, and a
        # transaction's fixed cost (~150 us) on each decision; with it, ~15 % less CPU per
        # review at saturation (benchmarks/README.md, "Group commit for acknowledged decisions").
        super().__init__(
            self._notices,
            signer=signer,
            linger=0.001,
            busy_gap=0.002,
            capacity=capacity,
            max_batch=max_batch,
            sealed_by_sink=sealed_by_sink,
            on_batch=on_batch,
        )

    @property
    def seals_on_commit(self) -> bool:
        """Whether a decision recorded now with ``seal_back`` gets its seal with the commit."""
        return _DEFERRED.get() is not None

    def record(self, decision: Decision, *, seal_back: bool = False) -> None:
        """Store ``decision`` (batched with concurrent ones); acknowledge it once committed.

        ``seal_back`` (inside :func:`deferred_acknowledgements`): the call's
        :meth:`Acknowledgements.seal` gets the decision's seal with the commit.

        Inside :func:`deferred_acknowledgements` this only enqueues; the transport awaits
        the commit. Otherwise it returns once the decision is committed. With ``on_loop``, a
        decision recorded on the event loop that awaits it is committed by that loop: with
        the others recorded in the same pass of the loop, or, while callers overlap and
        decisions come faster than :data:`LOOP_BUSY_GAP` apart, in the next
        :data:`LOOP_LINGER` seconds. When the store declines (it would have had to wait),
        the loop tries again (:data:`LOOP_RETRIES` times, :data:`LOOP_RETRY` seconds apart), and
        then the writer thread stores them; while that thread is behind (a batch or more queued),
        decisions go through its queue, as without ``on_loop``.

        Raises:
            StoreUnavailable: (blocking form) the decision was not committed within the
                timeout. It may still be stored later; it was never acknowledged.
            WouldBlock: inside :func:`gate._nonblocking.nonblocking`, when the decision could
                not be queued at once (nothing was queued or expected).
        """
        deferred = _DEFERRED.get()
        if (
            deferred is not None
            and self._on_loop is not None
            and not self._closed
            and asyncio._get_running_loop() is deferred.loop
            # A writer thread that is behind (the store slow or down, the loop's batches declined)
            # takes new decisions through its queue, whose limit pushes back on callers.
            and self._queue.qsize() < self._max_batch
        ):
            deferred._expect(decision.id, self._timeout, self._notices.forget)
            self._notices.expect(decision.id, deferred, seal_back=seal_back)
            self._on_loop_record(deferred.loop, decision)
            return
        if deferred is not None:
            deferred._expect(decision.id, self._timeout, self._notices.forget)
            self._notices.expect(decision.id, deferred, seal_back=seal_back)
            try:
                super().record(decision)
            except WouldBlock:
                # Nothing was queued: the caller runs the review again where it may wait.
                self._notices.forget(decision.id)
                deferred._unexpect(decision.id)
                raise
            return
        stored = threading.Event()
        self._notices.expect(decision.id, stored, seal_back=False)
        try:
            super().record(decision)
            if not stored.wait(self._timeout):
                raise StoreUnavailable(
                    f"decision {decision.id} was not stored within {self._timeout:g} s; not acknowledged"
                )
        finally:
            self._notices.forget(decision.id)

    def _on_loop_record(self, loop: asyncio.AbstractEventLoop, decision: Decision) -> None:
        self._note_arrival()
        with self._loop_lock:
            pending = self._loop_batches.setdefault(loop, [])
            pending.append(decision)
            first = len(pending) == 1
        if not first:
            return
        if self._arrival_gap < LOOP_BUSY_GAP and self._last_loop_batch.get(loop, 1) > 1:
            loop.call_later(LOOP_LINGER, self._commit_on_loop, loop, context=_NO_CONTEXT)
        else:
            loop.call_soon(self._commit_on_loop, loop, context=_NO_CONTEXT)

    def _commit_on_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._loop_lock:
            batch = self._loop_batches.pop(loop, [])
        if not batch or self._on_loop is None:
            return
        self._last_loop_batch[loop] = len(batch)
        sealed = seal_or_unsigned(batch, self._signer)
        committed: bool | None
        try:
            committed = self._on_loop.add_decisions_now(sealed)
        except GateError as error:
            # The writer thread stores them one by one and retries (a bad record, an outage).
            log.debug("committing %d decisions on the event loop failed: %s", len(batch), error.message)
            committed = None
        except Exception:  # a callback that raises would leave its callers waiting in vain
            log.exception(
                "committing %d decisions on the event loop failed; the writer thread takes them", len(batch)
            )
            committed = None
        if committed:
            self._loop_declines.pop(loop, None)
            self._count(len(sealed), "loop")
            self._notices.stored(sealed, here=loop)
            return
        declines = self._loop_declines.pop(loop, 0) + 1
        if committed is False and declines <= LOOP_RETRIES and not self._closed:
            # Ahead of what was recorded meanwhile, which the next try commits with them.
            self._loop_declines[loop] = declines
            with self._loop_lock:
                self._loop_batches.setdefault(loop, [])[:0] = sealed
            loop.call_later(LOOP_RETRY, self._commit_on_loop, loop, context=_NO_CONTEXT)
            return
        self._to_writer_thread(sealed)

    def _to_writer_thread(self, batch: list[Decision]) -> None:
        # Sealed or not: the writer thread seals what is not (a signed decision keeps its
        # signature). Their callers already wait for them.
        if self._closed:  # closing: the thread may be gone, so store them here (shutdown only)
            self._record_all(batch)
            return
        for index, decision in enumerate(batch):
            try:
                self._queue.put_nowait(decision)
            except queue.Full:
                # Never wait on the loop: a worker thread waits for room (or stores them itself).
                rest = batch[index:]
                threading.Thread(target=self._record_all, args=(rest,), daemon=True).start()
                return

    def _record_all(self, batch: list[Decision]) -> None:
        for decision in batch:
            DecisionRecorder.record(self, decision)

    def close(self) -> None:
        """Hand what the event loops have not committed to the writer thread, then close it."""
        with self._loop_lock:
            batches, self._loop_batches = list(self._loop_batches.values()), {}
        for batch in batches:
            self._record_all(batch)
        super().close()
