"""Under concurrent load, /metrics reports decisions, policy results, store latency and caches."""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import RunningGate, loopback_config
from tests.unit.decisions.support import POLICIES, REVIEW

CLIENTS = 8
REVIEWS_EACH = 25


def _review(latest: bool) -> bytes:
    document = copy.deepcopy(REVIEW)
    document["request"]["uid"] = str(uuid.uuid4())
    if latest:
        document["request"]["object"]["spec"]["containers"][1]["image"] = "docker.io/envoyproxy/envoy:latest"
    return json.dumps(document).encode()


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_appear_on_the_metrics_endpoint_under_concurrent_reviews(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    gate = serve_gate(loopback_config(tmp_path / "data", GATE_POLICY_SOURCES=str(POLICIES)))
    url = f"https://{gate.addresses.webhook}/validate"
    metrics = f"http://{gate.addresses.metrics}/metrics"
    # Counters are per process, and other tests' gates may share this one: compare with before.
    before = _samples(httpx.get(metrics, timeout=10).text)
    answers: list[int] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        with httpx.Client(verify=False, timeout=30) as http:  # the generated self-signed certificate
            for number in range(REVIEWS_EACH):
                status = http.post(url, content=_review(latest=(index + number) % 3 == 0)).status_code
                with lock:
                    answers.append(status)

    workers = [threading.Thread(target=client, args=(index,)) for index in range(CLIENTS)]
    for worker in workers:
        worker.start()
    # Scraped while the reviews are being answered, and once more after.
    during = httpx.get(metrics, timeout=10)
    for worker in workers:
        worker.join(60)
    assert during.status_code == 200
    assert answers.count(200) == CLIENTS * REVIEWS_EACH
    samples = _samples(httpx.get(metrics, timeout=10).text)

    def value(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return samples.get(key, 0.0) - before.get(key, 0.0)

    total = CLIENTS * REVIEWS_EACH
    denied = value("gate_decisions_total", stage="admission", result="denied")
    allowed = value("gate_decisions_total", stage="admission", result="allowed")
    assert denied + allowed == total
    assert denied == sum(1 for i in range(CLIENTS) for n in range(REVIEWS_EACH) if (i + n) % 3 == 0)
    assert value("gate_decision_duration_seconds_count", stage="admission") == total
    assert value("gate_policy_results_total", policy="supply-chain", result="fail") == denied
    assert value("gate_admission_review_duration_seconds_count", part="policy") == total
    assert value("gate_webhook_requests_total", path="/validate", status="200") == total
    # Every answered review is stored: batch inserts are timed as the store's statements.
    assert value("gate_store_statement_duration_seconds_count", statement="insert") >= 1
    assert value("gate_store_statement_duration_seconds_count", statement="select") >= 1
    # The evidence cache was asked for the review's pinned images, or at least exported.
    assert ("gate_cache_entries", frozenset({("cache", "evidence")})) in samples
