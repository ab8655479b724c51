"""Decide and Review run on the gRPC event loop when they need nothing that waits, else in a worker."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client import REGISTRY

from gate.server._grpc import _answered
from gate.store._budget import AnswerBudget
from tests.conftest import WhereItRan


class _Call(WhereItRan):
    """An RPC implementation that answers with its request and notes where it ran."""

    def __call__(self, request: Any) -> Any:
        self.note()
        return request


METHOD = "test.Inline/Answer"


def _where(where: str) -> float:
    labels = {"method": METHOD, "where": where}
    return REGISTRY.get_sample_value("gate_grpc_evaluations_total", labels) or 0.0


def _answer(call: _Call, *, inline_first: bool) -> Any:
    executor = ThreadPoolExecutor(1, thread_name_prefix="gate-worker")

    async def run() -> Any:
        return await _answered(
            call, "answer", executor, AnswerBudget(3.0, None), inline_first=inline_first, method=METHOD
        )

    try:
        return asyncio.run(run())
    finally:
        executor.shutdown()


def test_a_call_that_needs_nothing_that_waits_is_answered_on_the_event_loop() -> None:
    call = _Call(needs_io=False)
    before = _where("loop")
    assert _answer(call, inline_first=True) == "answer"
    assert call.threads == [threading.main_thread().name]
    assert _where("loop") == before + 1


def test_a_call_that_would_wait_is_answered_from_a_worker() -> None:
    call = _Call(needs_io=True)
    before = _where("thread")
    assert _answer(call, inline_first=True) == "answer"
    assert call.threads[0] == threading.main_thread().name
    assert call.threads[1].startswith("gate-worker")
    assert _where("thread") == before + 1


def test_other_calls_go_straight_to_a_worker() -> None:
    call = _Call(needs_io=False)
    assert _answer(call, inline_first=False) == "answer"
    assert [name.startswith("gate-worker") for name in call.threads] == [True]
