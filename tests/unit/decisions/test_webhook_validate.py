"""POST /validate in process (ASGI, no socket): answers, recording, budget, bad input."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from gate._nonblocking import may_block
from gate.core import Gate
from gate.decisions import AcknowledgedRecorder, AdmissionReview, AdmissionSettings, Evidence, FailureMode
from gate.model import Decision
from gate.server._webhook import WebhookApp, WebhookLimits
from tests.conftest import WhereItRan
from tests.unit.decisions.support import POLICIES, REVIEW, body, latest_review, review


class DecisionStore:
    """The store port as far as reviews use it: recorded decisions kept in memory."""

    inline_reads = False

    def __init__(self) -> None:
        self.decisions: list[Decision] = []
        self.bundles: dict[str, list[Any]] = {}

    def add_decision(self, decision: Decision) -> None:
        self.decisions.append(decision)

    def add_decisions(self, batch: Sequence[Decision]) -> None:
        self.decisions.extend(batch)

    def add_policy_bundle(self, digest: str, documents: Sequence[Any], now: Any) -> None:
        self.bundles[digest] = list(documents)

    def get_policy_bundle(self, digest: str) -> list[Any] | None:
        return self.bundles.get(digest)

    def list_waivers(self, *, active_at: Any = None, policy: str = "") -> list[Any]:
        return []


class SlowEvidence:
    """An evidence source that takes ``delay`` seconds (a slow store)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def for_review(self, review: AdmissionReview) -> Evidence:
        may_block("the slow store")  # as a real store read does: never on the event loop
        time.sleep(self.delay)
        return Evidence()


def make_app(
    store: DecisionStore, *, budget: float = 2.0, mode: FailureMode = FailureMode.FAIL_CLOSED, **kwargs: Any
) -> WebhookApp:
    gate = Gate(
        store,  # type: ignore[arg-type]
        policy_sources=[POLICIES],
        admission=AdmissionSettings(budget, mode),
        **kwargs,
    )
    return WebhookApp(gate, ThreadPoolExecutor(2), WebhookLimits(max_body=64 * 1024, body_timeout=1.0))


async def post(app: WebhookApp, payload: bytes, path: str = "/validate") -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://gate.test") as client:
        return await client.post(path, content=payload)


def test_an_allowed_review_is_answered_and_recorded() -> None:
    store = DecisionStore()
    labels = {"answer": "allowed", "failure_mode": "false"}
    before = REGISTRY.get_sample_value("gate_admission_decisions_total", labels) or 0.0
    response = asyncio.run(post(make_app(store), body(REVIEW)))
    assert REGISTRY.get_sample_value("gate_admission_decisions_total", labels) == before + 1
    assert response.status_code == 200
    answer = response.json()
    assert answer["response"]["uid"] == REVIEW["request"]["uid"]
    assert answer["response"]["allowed"] is True
    [decision] = store.decisions
    assert decision.subject == "Pod/payments/payments-api-7d9f8b6c5d-"
    assert decision.request_digest.startswith("sha256:")
    assert decision.caller == "system:serviceaccount:kube-system:replicaset-controller"


def test_a_denied_review_gets_403_in_the_review_and_is_recorded() -> None:
    store = DecisionStore()
    response = asyncio.run(post(make_app(store), body(latest_review())))
    assert response.status_code == 200
    status = response.json()["response"]["status"]
    assert status["code"] == 403
    assert "no-latest-tag" in status["message"]
    assert [d.allowed for d in store.decisions] == [False]


def test_a_dry_run_is_answered_but_not_recorded() -> None:
    store = DecisionStore()
    response = asyncio.run(post(make_app(store), body(review(dryRun=True))))
    assert response.json()["response"]["allowed"] is True
    assert store.decisions == []


def test_an_exceeded_budget_denies_fail_closed_and_says_so() -> None:
    store = DecisionStore()
    app = make_app(store, budget=0.05, evidence=SlowEvidence(0.3))
    response = asyncio.run(post(app, body(REVIEW)))
    app.close()
    answer = response.json()["response"]
    assert answer["allowed"] is False
    assert answer["status"]["code"] == 504
    assert "time budget exceeded" in answer["status"]["message"]
    assert "fail-closed" in answer["status"]["message"]
    time.sleep(0.1)  # the failure's record is written off the event loop
    # One record: the failure mode's; the late evaluation lost the claim and records nothing.
    assert [d.allowed for d in store.decisions] == [False]


def test_an_exceeded_budget_allows_fail_open_with_a_warning() -> None:
    store = DecisionStore()
    app = make_app(store, budget=0.05, mode=FailureMode.FAIL_OPEN, evidence=SlowEvidence(0.3))
    response = asyncio.run(post(app, body(REVIEW)))
    app.close()
    answer = response.json()["response"]
    assert answer["allowed"] is True
    assert "fail-open" in answer["warnings"][0]


class BrokenEvidence:
    def for_review(self, review: AdmissionReview) -> Evidence:
        raise RuntimeError("bug")


def test_an_internal_error_answers_per_the_failure_mode_with_a_reference() -> None:
    store = DecisionStore()
    response = asyncio.run(post(make_app(store, evidence=BrokenEvidence()), body(REVIEW)))
    answer = response.json()["response"]
    assert answer["allowed"] is False
    assert answer["status"]["code"] == 500
    assert "internal error (reference " in answer["status"]["message"]


def test_bad_bodies_get_4xx_with_what_was_wrong() -> None:
    app = make_app(DecisionStore())
    cases = {
        b"{": (400, "body: expected a JSON AdmissionReview, got invalid JSON"),
        b'{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{}}': (
            400,
            "request.uid: required",
        ),
        b"x" * (64 * 1024 + 1): (413, "body: 65537 bytes exceeds the 65536-byte limit"),
        b'{"a":' * 100 + b"1" + b"}" * 100: (422, "body: nesting deeper than 66"),
    }
    for payload, (status, message) in cases.items():
        response = asyncio.run(post(app, payload))
        assert response.status_code == status, payload[:40]
        assert response.json()["error"]["message"].startswith(message)


def test_a_slow_body_gets_408() -> None:
    app = make_app(DecisionStore())

    async def scenario() -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            await asyncio.sleep(5)
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/validate", "headers": []}
        await app(scope, receive, send)
        return sent

    sent = asyncio.run(scenario())
    assert sent[0]["status"] == 408
    assert b"not received within 1 s" in sent[1]["body"]


# Shapes: arbitrary JSON, and valid reviews with one field replaced by arbitrary JSON.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = ["uid", "operation", "object", "oldObject", "userInfo", "namespace", "name", "kind", "dryRun"]


def mutated(field: str, value: Any) -> bytes:
    document = json.loads(json.dumps(REVIEW))
    document["request"][field] = value
    return json.dumps(document).encode()


APP = make_app(DecisionStore())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        JSON.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=64),
        st.tuples(st.sampled_from(FIELDS), JSON).map(lambda fv: mutated(*fv)),
        st.tuples(st.sampled_from(["object", "metadata", "spec"]), JSON).map(
            lambda fv: mutated("object", {**REVIEW["request"]["object"], fv[0]: fv[1]})
        ),
    )
)
def test_no_admission_review_shape_gets_a_500(payload: bytes) -> None:
    response = asyncio.run(post(APP, payload))
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert response.json()["kind"] == "AdmissionReview"


class WhereEvidence(WhereItRan):
    """Evidence that notes the thread each look-up ran on; ``needs_io`` says whether it needs a read."""

    def for_review(self, review: AdmissionReview) -> Evidence:
        self.note()
        return Evidence()


def _evaluations(where: str) -> float:
    return REGISTRY.get_sample_value("gate_admission_evaluations_total", {"where": where}) or 0.0


def _recorded_app(store: DecisionStore, evidence: WhereEvidence) -> WebhookApp:
    return make_app(store, evidence=evidence, recorder=AcknowledgedRecorder(store))


def _two_reviews(app: WebhookApp, second: bytes) -> httpx.Response:
    """A first review fills the caches (the waivers are read once per TTL), then ``second``."""

    async def both() -> httpx.Response:
        await post(app, body(REVIEW))
        return await post(app, second)

    return asyncio.run(both())


def test_a_review_whose_evidence_is_in_memory_is_evaluated_on_the_event_loop() -> None:
    store = DecisionStore()
    evidence = WhereEvidence(needs_io=False)
    app = _recorded_app(store, evidence)
    evidence_threads = evidence.threads
    before = (_evaluations("loop"), _evaluations("thread"))
    response = _two_reviews(app, body(review(uid="second")))
    app.close()
    assert response.json()["response"]["allowed"] is True
    # The first review read the waivers on a review thread; the second needed no read at all.
    assert evidence_threads[-1] == threading.main_thread().name
    assert evidence_threads[-2].startswith("gate-review")
    assert (_evaluations("loop"), _evaluations("thread")) == (before[0] + 1, before[1] + 1)
    assert len(store.decisions) == 2


def test_a_review_whose_evidence_must_be_read_moves_to_a_review_thread_and_is_recorded_once() -> None:
    store = DecisionStore()
    evidence = WhereEvidence(needs_io=True)
    app = _recorded_app(store, evidence)
    before = (_evaluations("loop"), _evaluations("thread"))
    denied = latest_review()
    denied["request"]["uid"] = "second"
    response = _two_reviews(app, body(denied))
    app.close()
    assert response.json()["response"]["allowed"] is False
    # Tried on the loop, refused before anything was recorded, then evaluated on a review thread.
    assert evidence.threads[2] == threading.main_thread().name
    assert evidence.threads[3].startswith("gate-review")
    assert (_evaluations("loop"), _evaluations("thread")) == (before[0], before[1] + 2)
    assert [d.allowed for d in store.decisions] == [True, False]
