"""psycopg connections that honour the caller's :class:`~gate.store._budget.AnswerBudget`.

Imported only once psycopg is known to be installed (the ``postgres`` extra).
"""

from __future__ import annotations

import math
import time
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.abc import RV, PQGen

from gate.store._budget import BUDGET

# psycopg's own poll interval for waits (psycopg.connection._WAIT_INTERVAL).
_WAIT_INTERVAL = 0.1
# Below this a round trip cannot succeed: give up without sending anything.
_NO_TIME = 0.001


class BudgetedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose waits for the server end at the caller's budget.

    ``wait`` is where psycopg blocks for every exchange with the server
    (execute, fetch, commit, rollback, the pool's ping), so one override bounds
    them all. An explicit ``timeout`` from psycopg itself (LISTEN, cancellation)
    is left alone.
    """

    def wait(self, gen: PQGen[RV], interval: float = _WAIT_INTERVAL, timeout: float | None = None) -> RV:
        """Run ``gen`` to completion, within the budget of the current context if there is one."""
        budget = BUDGET.get()
        if budget is None or timeout is not None:
            return super().wait(gen, interval, timeout)
        started = time.monotonic()
        limit = budget.limit(started)
        budget.waiting_since = started
        try:
            return super().wait(gen, interval, max(limit, _NO_TIME))
        except pg_errors._WaitTimeout:
            # The request may be in flight and its answer may still come: the connection's
            # protocol state is unknown, so it cannot be used again (psycopg does the same
            # when a cancelled query does not end).
            self.pgconn.finish()
            # A server that did not answer within the budget will not answer the reconnect
            # the pool tries next either: spare the caller a second wait. (The first failure
            # names the wait that ran out; later ones of the call had no time left.)
            if not budget.failure:
                budget.give_up(f"no answer from PostgreSQL within {max(limit, 0):.1f} s")
            raise psycopg.OperationalError(f"{budget.failure}; the connection was closed") from None
        finally:
            budget.waiting_since = None


def connect(cargs: list[Any], cparams: dict[str, Any]) -> BudgetedConnection:
    """Open a connection, its connection attempt bounded by the budget of the current context.

    libpq counts ``connect_timeout`` in whole seconds (2 at least), so an attempt may
    outlast a budget by up to 2 s; an exhausted budget fails at once.

    Raises:
        psycopg.OperationalError: the budget is spent, or the server cannot be reached.
    """
    budget = BUDGET.get()
    if budget is None:
        return BudgetedConnection.connect(*cargs, **cparams)
    started = time.monotonic()
    limit = budget.limit(started)
    if limit <= _NO_TIME:
        raise psycopg.OperationalError(
            budget.failure or "no time left to connect to PostgreSQL within the caller's deadline"
        )
    configured = cparams.get("connect_timeout")
    seconds = max(2, math.ceil(limit))
    if configured is not None and 0 < int(float(configured)) < seconds:
        seconds = int(float(configured))
    budget.waiting_since = started
    try:
        return BudgetedConnection.connect(*cargs, **{**cparams, "connect_timeout": seconds})
    finally:
        budget.waiting_since = None
