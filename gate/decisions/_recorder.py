"""Recording decisions off the request path: a bounded queue and one batch writer thread.

An admission answer must not wait for the database (a PostgreSQL round trip
costs more than the whole answer). Requests hand their decision to
:meth:`DecisionRecorder.record`, which only enqueues; one writer thread drains
the queue in batches (one transaction each), computing request digests and
signatures there rather than on the request path.

When the queue is full (the store is slower than the request rate), ``record``
blocks for up to ``put_timeout`` seconds and then writes the decision itself,
synchronously, in the caller's thread: that request pays the round trip, and the
pressure slows callers down instead of dropping records. :meth:`close` stops
accepting, drains everything queued and returns once it is stored, so a
graceful shutdown loses nothing.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Protocol

from gate._nonblocking import may_block
from gate.decisions._statement import DecisionSigner, seal_all
from gate.errors import EvidenceError, GateError
from gate.model import Decision

log = logging.getLogger("gate.decisions")

# The longest gap between two records the arrival estimate counts: after an idle minute, a
# burst makes the writer batch again within about twenty decisions.
_IDLE_GAP = 1.0


class DecisionSink(Protocol):
    """Where decisions are stored (the evidence store implements this)."""

    def add_decisions(self, batch: Sequence[Decision]) -> None:
        """Record several decisions in one transaction (all or none)."""


class NoWaitSink(Protocol):
    """A store that commits a batch on an event loop or declines at once (a SQLite file)."""

    def add_decisions_now(self, batch: Sequence[Decision]) -> bool:
        """Record ``batch`` in one transaction; False, storing nothing, where that would wait."""


# What a commit brings back of each decision: its request digest and seal (b"": unsigned).
Seal = tuple[str, bytes]


class SealingSink(Protocol):
    """A sink that seals what it stores (the writer process) and can return the seals."""

    def add_decisions(self, batch: Sequence[Decision], seals_for: Collection[str] = ()) -> Mapping[str, Seal]:
        """Seal and store ``batch`` in one transaction (all or none); the seals of ``seals_for``, by id."""


def seal_or_unsigned(batch: Sequence[Decision], signer: DecisionSigner | None) -> list[Decision]:
    """:func:`seal_all`; when signing fails, the decisions with their digests and no seals (logged)."""
    try:
        return seal_all(batch, signer)
    except Exception:
        # An unsigned record is visibly unsigned; a lost one is invisible.
        log.exception(
            "signing %d decisions failed; they are recorded unsigned",
            len(batch),
            extra={"decision_ids": [decision.id for decision in batch]},
        )
        return seal_all(batch, None)


class DecisionRecorder:
    """Writes decisions in batches from a background thread; see the module docstring.

    Attributes:
        recorded: decisions stored so far.
        synchronous: decisions the caller had to write itself because the queue was full.
        lost: decisions that could not be stored (logged with their ids).
    """

    def __init__(
        self,
        sink: DecisionSink | SealingSink,
        *,
        signer: DecisionSigner | None = None,
        capacity: int = 4096,
        max_batch: int = 256,
        put_timeout: float = 0.05,
        retry_delays: Sequence[float] = (0.1, 0.5, 1.0, 2.0, 5.0),
        linger: float = 0.05,
        busy_gap: float = math.inf,
        clock: Callable[[], float] = time.monotonic,
        sealed_by_sink: bool = False,
        on_batch: Callable[[str, int], None] | None = None,
    ) -> None:
        """Start the writer thread.

        ``linger`` is how long the writer waits for a batch to fill after its first decision;
        it waits only while decisions arrive less than ``busy_gap`` seconds apart on average
        (the default: always). ``sealed_by_sink``: the sink digests and signs what it stores
        (the writer process), so this recorder passes decisions on as they are. ``on_batch`` is
        told of each stored batch: who stored it (``thread``, ``process``, ``loop``) and its size.
        """
        self._sink = sink
        self._signer = signer
        self._sealed_by_sink = sealed_by_sink
        self._on_batch = on_batch
        self._stored_by = "process" if sealed_by_sink else "thread"
        self._queue: queue.Queue[Decision | None] = queue.Queue(capacity)
        self._max_batch = max_batch
        self._put_timeout = put_timeout
        self._retry_delays = tuple(retry_delays)
        # How long the writer waits for a batch to fill: every transaction costs a commit,
        # and one per decision cost more than the decisions' rows.
        self._linger = linger
        self._busy_gap = busy_gap
        self._clock = clock
        self._last_arrival = clock()
        # Moving average of the time between two records, seconds; starts idle.
        self._arrival_gap = _IDLE_GAP
        self._closed = False
        self._lock = threading.Lock()
        self.recorded = 0
        self.synchronous = 0
        self.lost = 0
        self._thread = threading.Thread(target=self._run, name="gate-decisions", daemon=True)
        self._thread.start()

    @property
    def signing(self) -> bool:
        """Whether decisions are signed (a signer was configured, or the sink signs)."""
        return self._signer is not None or self._sealed_by_sink

    def record(self, decision: Decision, *, seal_back: bool = False) -> None:
        """Queue ``decision`` for storage; write it synchronously if the queue stays full.

        ``seal_back`` asks for the seal with the acknowledgement (:class:`AcknowledgedRecorder`);
        this recorder acknowledges nothing, so it has no way to hand one back.

        Raises:
            WouldBlock: inside :func:`gate._nonblocking.nonblocking`, when the queue is full
                or closed (nothing was queued).
        """
        self._note_arrival()
        if not self._closed:
            try:
                self._queue.put_nowait(decision)
                return
            except queue.Full:
                may_block("room in the decision queue")
            try:
                self._queue.put(decision, timeout=self._put_timeout)
                return
            except queue.Full:
                with self._lock:
                    self.synchronous += 1
        may_block("the evidence store")
        self._store([decision], final=True)

    @property
    def busy(self) -> bool:
        """Whether decisions arrive often enough that the writer lingers to batch them."""
        return self._arrival_gap < self._busy_gap

    def _note_arrival(self) -> None:
        now = self._clock()
        # Read and written without a lock: a concurrent record may lose one update of this
        # estimate, which shifts it slightly; nothing else depends on it.
        self._arrival_gap += (min(now - self._last_arrival, _IDLE_GAP) - self._arrival_gap) / 4
        self._last_arrival = now

    def flush(self) -> None:
        """Return once every decision queued so far is stored (or given up on and logged)."""
        self._queue.join()

    def close(self) -> None:
        """Stop accepting into the queue, store everything queued, stop the writer."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch: list[Decision] = []
            taken = 1
            stop = first is None
            if first is not None:
                batch.append(first)
                if self._linger and self.busy and not self._closed and self._queue.qsize() < self._max_batch:
                    time.sleep(self._linger)
            while not stop and len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                taken += 1
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            try:
                if batch:
                    self._store(batch, final=self._closed)
            except Exception:  # the writer must survive anything, or every later record is lost
                log.exception("recording %d decisions failed", len(batch))
            finally:
                for _ in range(taken):
                    self._queue.task_done()
            if stop:
                return

    def _store(self, batch: list[Decision], *, final: bool) -> None:
        sealed = batch if self._sealed_by_sink else seal_or_unsigned(batch, self._signer)
        delays = self._retry_delays[:2] if final else self._retry_delays
        for attempt in range(len(delays) + 1):
            try:
                self._sink.add_decisions(sealed)
            except EvidenceError:
                if len(sealed) > 1:
                    # One bad record must not take the batch with it: store them one by one.
                    for decision in sealed:
                        self._store_one(decision)
                    return
                self._store_one(sealed[0])
                return
            except GateError as error:
                if attempt == len(delays):
                    self._give_up(sealed, error.message)
                    return
                log.warning(
                    "storing %d decisions failed (%s); retrying in %.1f s",
                    len(sealed),
                    error.message,
                    delays[attempt],
                )
                time.sleep(delays[attempt])
            else:
                self._count(len(sealed), self._stored_by)
                return

    def _store_one(self, decision: Decision) -> None:
        try:
            self._sink.add_decisions([decision])
        except GateError as error:
            self._give_up([decision], error.message)
        else:
            self._count(1, self._stored_by)

    def _count(self, stored: int, by: str) -> None:
        with self._lock:
            self.recorded += stored
        if self._on_batch is not None:
            self._on_batch(by, stored)

    def _give_up(self, batch: Sequence[Decision], reason: str) -> None:
        with self._lock:
            self.lost += len(batch)
        log.error(
            "%d decisions could not be recorded: %s",
            len(batch),
            reason,
            extra={"decision_ids": [decision.id for decision in batch]},
        )
