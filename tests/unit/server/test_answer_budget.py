"""The gRPC handler's answer budget: UNAVAILABLE before the caller's deadline when the store holds a call."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from google.protobuf.message import Message
from google.protobuf.wrappers_pb2 import StringValue

from gate.errors import InfrastructureError, StoreUnavailable
from gate.server._grpc import _in_worker
from gate.store._budget import BUDGET, AnswerBudget, call_deadline


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(1)
    yield pool
    pool.shutdown(wait=True)


def _in_store(seconds: float) -> Any:
    """A call that spends ``seconds`` in what the budget knows as a database round trip."""

    def call(request: object) -> Message:
        budget = BUDGET.get()
        assert budget is not None
        budget.waiting_since = time.monotonic()
        time.sleep(seconds)
        budget.waiting_since = None
        return StringValue(value="late")

    return call


def _busy(seconds: float) -> Any:
    def call(request: object) -> Message:
        time.sleep(seconds)
        return StringValue(value="done")

    return call


def _run(executor: ThreadPoolExecutor, budget: AnswerBudget, call: Any) -> tuple[float, Message]:
    async def main() -> tuple[float, Message]:
        started = time.monotonic()
        answer = await _in_worker(asyncio.get_running_loop(), executor, budget, call, None)
        return time.monotonic() - started, answer

    return asyncio.run(main())


def test_a_call_waiting_for_the_store_past_the_deadline_is_store_unavailable(
    executor: ThreadPoolExecutor,
) -> None:
    budget = AnswerBudget(5.0, time.monotonic() + 0.3)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="no answer within the deadline"):
        _run(executor, budget, _in_store(2.0))
    assert time.monotonic() - started < 0.6


def test_a_call_still_queued_at_the_deadline_never_runs(executor: ThreadPoolExecutor) -> None:
    ran = threading.Event()

    def second(request: object) -> Message:
        ran.set()
        return StringValue()

    executor.submit(time.sleep, 0.8)
    with pytest.raises(InfrastructureError, match="no worker was free"):
        _run(executor, AnswerBudget(5.0, time.monotonic() + 0.2), second)
    executor.shutdown(wait=True)
    assert not ran.is_set()


def test_a_call_busy_elsewhere_is_awaited_past_the_deadline(executor: ThreadPoolExecutor) -> None:
    # A registry fetch or a scan is not the store: its own timeouts and the caller's deadline apply.
    took, answer = _run(executor, AnswerBudget(5.0, time.monotonic() + 0.1), _busy(0.5))
    assert answer == StringValue(value="done")
    assert took >= 0.5


def test_without_a_deadline_the_answer_is_awaited(executor: ThreadPoolExecutor) -> None:
    _, answer = _run(executor, AnswerBudget(0.1), _in_store(0.3))
    assert answer == StringValue(value="late")


def test_the_budget_is_seen_by_the_worker_and_not_left_behind(executor: ThreadPoolExecutor) -> None:
    budget = AnswerBudget(1.0)
    seen: list[AnswerBudget | None] = []

    def call(request: object) -> Message:
        seen.append(BUDGET.get())
        return StringValue()

    _run(executor, budget, call)
    assert seen == [budget]
    assert budget.started
    assert executor.submit(BUDGET.get).result() is None


@pytest.mark.parametrize(("remaining", "margin"), [(5.0, 0.5), (20.0, 0.5), (1.0, 0.1), (0.2, 0.02)])
def test_the_deadline_leaves_a_margin_for_the_answer(remaining: float, margin: float) -> None:
    before = time.monotonic()
    deadline = call_deadline(remaining)
    assert deadline is not None
    assert deadline - before == pytest.approx(remaining - margin, abs=0.05)


def test_a_call_without_a_deadline_has_none() -> None:
    assert call_deadline(None) is None


def test_a_budget_that_gave_up_leaves_no_time_and_says_why() -> None:
    budget = AnswerBudget(3.0)
    assert budget.limit(time.monotonic()) == 3.0
    budget.give_up("no answer from PostgreSQL within 3.0 s")
    assert budget.limit(time.monotonic()) <= 0
    assert budget.failure == "no answer from PostgreSQL within 3.0 s"
