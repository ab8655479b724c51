"""Replayed AdmissionReviews: retries get the first answer once recorded; changed replays are refused."""

from __future__ import annotations

import asyncio
import copy
import logging

import pytest

from gate.core import Gate
from gate.decisions import Answered, ReplayGuard, parse_review
from gate.errors import Conflict
from tests.conftest import ManualClock
from tests.unit.decisions.support import POLICIES, body, latest_review, review
from tests.unit.decisions.test_webhook_validate import DecisionStore, make_app, post

ANSWER = Answered("d-1", True, 200, "", (), b'{"response":{}}')


def test_a_new_uid_is_evaluated_and_its_retry_gets_the_kept_answer() -> None:
    guard = ReplayGuard()
    assert guard.check("u1", b"a") is True
    assert guard.check("u1", b"a") is False, "a retry while the first is evaluated must not record again"
    guard.answered("u1", b"a", ANSWER)
    assert guard.check("u1", b"a") == ANSWER


def test_a_uid_back_with_other_content_is_refused_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    guard = ReplayGuard()
    guard.check("u1", b"a")
    guard.answered("u1", b"a", ANSWER)
    refused = r"request.uid: uid u1 was already reviewed .* different content"
    with caplog.at_level(logging.WARNING, logger="gate.audit.replay"), pytest.raises(Conflict, match=refused):
        guard.check("u1", b"b", caller="system:anonymous")
    assert [r.uid for r in caplog.records] == ["u1"]  # type: ignore[attr-defined]
    assert caplog.records[0].caller == "system:anonymous"  # type: ignore[attr-defined]


def test_uids_are_forgotten_after_the_window_and_beyond_the_capacity() -> None:
    clock = ManualClock(1000.0)
    guard = ReplayGuard(window=60, capacity=2, clock=clock)
    guard.check("old", b"a")
    clock.now += 61
    assert guard.check("old", b"b") is True, "a uid past the window is new again"
    guard.check("u2", b"a")
    guard.check("u3", b"a")
    assert guard.check("old", b"c") is True, "the oldest uid is dropped beyond the capacity"


def test_an_unanswered_uid_can_be_evaluated_again() -> None:
    guard = ReplayGuard()
    guard.check("u1", b"a")
    guard.forget("u1", b"a")
    assert guard.check("u1", b"a") is True


def _gate(store: DecisionStore) -> Gate:
    return Gate(store, policy_sources=[POLICIES], replays=ReplayGuard())  # type: ignore[arg-type]


def test_a_retried_review_is_answered_the_same_and_recorded_once() -> None:
    store = DecisionStore()
    gate = _gate(store)
    payload = body(latest_review())
    first = gate.review(parse_review(payload))
    again = gate.review(parse_review(payload))
    assert again.response == first.response
    assert [d.id for d in store.decisions] == [first.decision.id]
    assert again.decision.id == ""
    assert first.decision.id in again.decision.message


def test_a_review_replayed_with_changes_is_refused_over_http_with_409() -> None:
    store = DecisionStore()
    app = make_app(store, replays=ReplayGuard())
    original = latest_review()
    changed = copy.deepcopy(original)
    changed["request"]["object"]["metadata"]["labels"] = {"replayed": "yes"}

    async def scenario() -> tuple[int, int, int, str]:
        first = await post(app, body(original))
        retry = await post(app, body(original))
        replay = await post(app, body(changed))
        return first.status_code, retry.status_code, replay.status_code, replay.text

    first, retry, replay, text = asyncio.run(scenario())
    assert (first, retry, replay) == (200, 200, 409)
    assert "was already reviewed" in text
    assert len(store.decisions) == 1


def test_without_a_guard_every_review_is_evaluated_and_recorded() -> None:
    store = DecisionStore()
    gate = Gate(store, policy_sources=[POLICIES])  # type: ignore[arg-type]
    payload = body(review())
    gate.review(parse_review(payload))
    gate.review(parse_review(payload))
    assert len(store.decisions) == 2
