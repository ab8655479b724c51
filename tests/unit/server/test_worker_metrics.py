"""Worker processes: the merged /metrics, log lines, what each serves, and the advice on their number."""

from __future__ import annotations

import json
import logging
import multiprocessing
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gate import _logging
from gate.config import TlsFiles, load_config
from gate.server._workers import Workers, merged_registry, processes_advice

WORKER_EXPOSITION = b"""\
# HELP gate_webhook_requests_total Webhook HTTP requests, by path and status.
# TYPE gate_webhook_requests_total counter
gate_webhook_requests_total{path="/validate",status="200"} 7.0
# HELP gate_admission_review_duration_seconds Time to decide an admission review, by part.
# TYPE gate_admission_review_duration_seconds histogram
gate_admission_review_duration_seconds_bucket{le="0.01",part="total"} 6.0
gate_admission_review_duration_seconds_bucket{le="+Inf",part="total"} 7.0
gate_admission_review_duration_seconds_count{part="total"} 7.0
gate_admission_review_duration_seconds_sum{part="total"} 0.05
"""


class FakeWorkers:
    """The port the merged registry reads: each worker's exposition by index."""

    def __init__(self, expositions: list[tuple[str, bytes]]) -> None:
        self.asked = 0
        self._expositions = expositions

    def expositions(self) -> list[tuple[str, bytes]]:
        self.asked += 1
        return self._expositions


def _samples(text: str, family_name: str) -> dict[tuple[str, ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        if family.name == family_name:
            for sample in family.samples:
                found[(sample.name, *sorted(f"{k}={v}" for k, v in sample.labels.items()))] = sample.value
    return found


def test_each_process_series_carry_its_worker_index_in_one_family() -> None:
    workers = FakeWorkers([("1", WORKER_EXPOSITION), ("2", WORKER_EXPOSITION.replace(b"} 7.0", b"} 3.0"))])
    text = generate_latest(merged_registry(workers)).decode()  # type: ignore[arg-type]

    assert workers.asked == 1
    # One HELP/TYPE per family, whichever processes report it.
    assert text.count("# TYPE gate_webhook_requests_total counter") == 1
    requests = _samples(text, "gate_webhook_requests")
    assert requests[("gate_webhook_requests_total", "path=/validate", "status=200", "worker=1")] == 7.0
    assert requests[("gate_webhook_requests_total", "path=/validate", "status=200", "worker=2")] == 3.0
    durations = _samples(text, "gate_admission_review_duration_seconds")
    assert durations[("gate_admission_review_duration_seconds_count", "part=total", "worker=1")] == 7.0
    assert (
        durations[("gate_admission_review_duration_seconds_bucket", "le=0.01", "part=total", "worker=2")]
        == 6.0
    )
    # The main process's own metrics are there too, as worker 0.
    build = _samples(text, "gate_build_info")
    assert [key for key in build if "worker=0" in key]


def test_a_worker_that_did_not_answer_leaves_only_the_others() -> None:
    text = generate_latest(merged_registry(FakeWorkers([]))).decode()  # type: ignore[arg-type]
    workers = {
        sample.labels["worker"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert workers == {"0"}


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_worker_process_log_lines_name_the_worker(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _logging.configure("info", "json", fields={"worker": 3})
    logging.getLogger("gate.test").info("answered", extra={"worker": "kept"})
    logging.getLogger("gate.test").info("served")
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert first["worker"] == "kept"  # a record's own value wins
    assert second["worker"] == 3


def test_more_processes_than_cpus_gets_a_warning_that_says_both() -> None:
    assert processes_advice(2, 2) is None
    assert processes_advice(2, 8) is None
    advice = processes_advice(4, 2)
    assert advice is not None
    assert "serves from 4 processes" in advice
    assert "2 CPU(s)" in advice


@pytest.mark.parametrize(
    ("webhook", "grpc", "expected"),
    [
        (2, 1, {1: (True, False)}),
        (1, 2, {1: (False, True)}),
        (3, 2, {1: (True, True), 2: (True, False)}),
        (2, 4, {1: (True, True), 2: (False, True), 3: (False, True)}),
    ],
)
def test_each_worker_serves_the_listeners_whose_processes_reach_its_index(
    tmp_path: Path, webhook: int, grpc: int, expected: dict[int, tuple[bool, bool]]
) -> None:
    config = load_config(
        None,
        {
            "GATE_DATA_DIR": str(tmp_path),
            "GATE_WEBHOOK_PROCESSES": str(webhook),
            "GATE_GRPC_PROCESSES": str(grpc),
        },
    )
    assert config.serving_processes == max(webhook, grpc)
    tls = TlsFiles(cert_file=tmp_path / "c.pem", key_file=tmp_path / "k.pem")
    with socket.socket() as sock:
        workers = Workers(config, (sock, tls), "127.0.0.1:50051")
        assert workers.count == len(expected)
        ours, theirs = multiprocessing.Pipe()
        with ours, theirs:
            roles = {index: workers.role(index, theirs) for index in expected}
    served = {i: (role.webhook is not None, role.grpc_listen is not None) for i, role in roles.items()}
    assert {role.grpc_listen for role in roles.values()} <= {"127.0.0.1:50051", None}
    assert served == expected
