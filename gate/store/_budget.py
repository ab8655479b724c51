"""How long a caller waits for the evidence store: a budget that bounds PostgreSQL round trips.

A request handler sets an :class:`AnswerBudget` in its context (:func:`answering_within`)
before it runs store work in a worker thread; the PostgreSQL connections of
:mod:`gate.store._engine` then give up on any round trip (statement, commit,
ping) or connection attempt that outlasts the budget, close the connection (its
protocol state is unknown once an answer is abandoned) and raise, so the
worker thread and the pool slot are free again and the caller gets
``StoreUnavailable``. Without a budget in the context (migrations, the CLI,
background writers) nothing changes.

Why client side: when the path to PostgreSQL stalls without closing anything
(a frozen server, a stuck proxy or pooler, where the peer's kernel still
acknowledges every byte), measurements showed that neither libpq's keepalives
nor ``tcp_user_timeout``, nor a server-side ``statement_timeout`` (the query
never reaches the server), nor a cancel request (it travels the same stalled
path) ends the read; only the client giving up does.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(slots=True)
class AnswerBudget:
    """The store time one call may spend, shared by the handler and the worker running it.

    Attributes:
        per_wait: seconds one round trip to the database may take.
        deadline: ``time.monotonic()`` value after which the caller stops
            waiting altogether (its own deadline, less a margin); None: none.
        started: set once a worker has begun the call.
        waiting_since: ``time.monotonic()`` when the round trip or connection
            attempt in progress began; None while the worker does anything else.
        failure: why the call gave up on the store, once it has.
    """

    per_wait: float
    deadline: float | None = None
    started: bool = False
    waiting_since: float | None = None
    failure: str = ""

    def limit(self, now: float) -> float:
        """Seconds the next round trip may take, starting at ``now`` (0 or less: none left)."""
        if self.deadline is None:
            return self.per_wait
        return min(self.per_wait, self.deadline - now)

    def give_up(self, reason: str) -> None:
        """Spend what is left: the store failed to answer once, later round trips of the call fail at once."""
        self.deadline = time.monotonic()
        self.failure = reason

    def in_store(self) -> bool:
        """True while the worker waits for the database (or has not begun the call yet)."""
        return not self.started or self.waiting_since is not None


BUDGET: ContextVar[AnswerBudget | None] = ContextVar("gate_store_budget", default=None)


@contextlib.contextmanager
def answering_within(per_wait: float, deadline: float | None = None) -> Iterator[AnswerBudget]:
    """Bound the store round trips of work started in this context (and in copies of it).

    Args:
        per_wait: seconds one round trip may take.
        deadline: ``time.monotonic()`` value by which every round trip must be over.

    Yields:
        The budget: a handler reads :meth:`AnswerBudget.in_store` when it stops waiting.
    """
    budget = AnswerBudget(per_wait, deadline)
    token = BUDGET.set(budget)
    try:
        yield budget
    finally:
        BUDGET.reset(token)


def call_deadline(time_remaining: float | None) -> float | None:
    """The budget's deadline for a call with ``time_remaining`` seconds left (None: no deadline).

    The margin leaves time for the answer to travel back: a tenth of what is left,
    at most half a second.
    """
    if time_remaining is None:
        return None
    return time.monotonic() + time_remaining - min(0.5, time_remaining / 10)
