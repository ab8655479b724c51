"""Answering a decision only once it is stored: group commit over the batch recorder.

:class:`DecisionRecorder` answers as soon as a decision is queued, so a crash (SIGKILL,
power loss) loses what is still in its queue: at most one linger period and one batch of
decisions that callers were already told about. :class:`AcknowledgedRecorder` keeps the
batching (one transaction for every decision that arrived together) but makes
:meth:`~AcknowledgedRecorder.record` return only after the transaction holding the
decision has committed, and raise :class:`~gate.errors.StoreUnavailable` when that does
not happen in time: the caller then answers per its failure policy instead of
acknowledging a decision that may be lost.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from gate.decisions._recorder import DecisionRecorder, DecisionSink
from gate.decisions._statement import DecisionSigner
from gate.errors import StoreUnavailable
from gate.model import Decision


class _CommitNotices:
    """A sink that passes batches on and then wakes whoever waits for their decisions."""

    def __init__(self, sink: DecisionSink) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self._waiting: dict[str, threading.Event] = {}

    def expect(self, decision_id: str) -> threading.Event:
        stored = threading.Event()
        with self._lock:
            self._waiting[decision_id] = stored
        return stored

    def forget(self, decision_id: str) -> None:
        with self._lock:
            self._waiting.pop(decision_id, None)

    def add_decisions(self, batch: Sequence[Decision]) -> None:
        self._sink.add_decisions(batch)
        with self._lock:
            woken = [self._waiting.pop(decision.id, None) for decision in batch]
        for stored in woken:
            if stored is not None:
                stored.set()


class AcknowledgedRecorder(DecisionRecorder):
    """A :class:`DecisionRecorder` whose ``record`` returns once the decision is committed.

    Args:
        sink: Where decisions are stored.
        signer: Signs each record (None: unsigned).
        timeout: Seconds ``record`` waits for the commit before raising StoreUnavailable.
    """

    def __init__(
        self, sink: DecisionSink, *, signer: DecisionSigner | None = None, timeout: float = 2.0
    ) -> None:
        self._notices = _CommitNotices(sink)
        self._timeout = timeout
        # No linger: callers wait for the commit, and the decisions that arrive while one
        # transaction commits form the next batch anyway.
        super().__init__(self._notices, signer=signer, linger=0)

    def record(self, decision: Decision) -> None:
        """Store ``decision`` (batched with concurrent ones); return once it is committed.

        Raises:
            StoreUnavailable: the decision was not committed within the timeout. It may
                still be stored later; it was never acknowledged.
        """
        stored = self._notices.expect(decision.id)
        try:
            super().record(decision)
            if not stored.wait(self._timeout):
                raise StoreUnavailable(
                    f"decision {decision.id} was not stored within {self._timeout:g} s; not acknowledged"
                )
        finally:
            self._notices.forget(decision.id)
