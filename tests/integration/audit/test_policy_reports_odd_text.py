"""PolicyReport export of decisions whose results hold odd text: the JSON and YAML read back the same."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gate._api import Api
from gate.cli import main
from gate.core import Gate
from gate.decisions import parse_review
from gate.model import Decision, RuleOutcome, RuleResult
from gate.policy_reports import export_reports
from gate.store import EvidenceStore, open_store
from gate.v1 import audit_pb2
from policies._yaml import KubernetesDumper

POLICY = Path(__file__).resolve().parents[2] / "assets" / "audit" / "quoting_policy.yaml"
DECIDED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

# Every character JSON text can carry: controls, NUL, line and paragraph separators, non-BMP.
# (Not lone surrogates: orjson refuses them in a review, and no UTF-8 store can hold one.)
ODD = st.text(st.characters(blacklist_categories=["Cs"]), max_size=60)
SAMPLES = [
    "\x00",
    "a\x00b",
    "\\u0000",
    "\x01\x1b[31mred\x7f",
    "\x85\u2028\u2029\ufeff",
    "\U0001f600\U0010ffff",
    " leading and trailing ",
    "l1\nl2\r\n",
    "- a: b",
    "yes",
    "1e3",
    "x" * 200_000,
]


def decision(messages: list[str], name: str = "api") -> Decision:
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"},
    }
    request = {
        "uid": f"r-{name}",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "name": name,
        "namespace": "ns",
        "operation": "CREATE",
        "object": obj,
    }
    results = tuple(
        RuleResult(policy=f"p{index}", rule="r", outcome=RuleOutcome.FAIL, message=message)
        for index, message in enumerate(messages)
    )
    return Decision(
        id=f"d-{name}",
        allowed=False,
        message="denied",
        stage="admission",
        decided_at=DECIDED,
        results=results,
        request=request,
    )


def round_trips(reports: list[dict[str, Any]]) -> None:
    # As the ExportPolicyReports RPC sends them, and as `gate audit reports` prints them.
    assert [json.loads(json.dumps(report, sort_keys=True)) for report in reports] == reports
    assert (
        list(yaml.safe_load_all(yaml.dump_all(reports, Dumper=KubernetesDumper, sort_keys=False))) == reports
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ODD, min_size=1, max_size=5))
def test_any_result_text_round_trips_through_the_json_and_the_yaml(messages: list[str]) -> None:
    (report,) = export_reports([decision(messages)], lambda digest: {})
    assert [result["message"] for result in report["results"]] == messages
    round_trips([report])


def test_odd_and_very_long_messages_round_trip() -> None:
    reports = export_reports(
        [decision([text], name=f"pod-{i}") for i, text in enumerate(SAMPLES)], lambda d: {}
    )
    assert sorted(r["results"][0]["message"] for r in reports) == sorted(SAMPLES)
    round_trips(reports)


def test_a_decision_with_a_hundred_thousand_results_is_one_valid_report() -> None:
    (report,) = export_reports([decision([f"message {i}" for i in range(100_000)])], lambda digest: {})
    assert report["summary"]["fail"] == 100_000
    assert json.loads(json.dumps(report, sort_keys=True)) == report


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EvidenceStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    yield opened
    opened.close()


def review(index: int, note: str) -> bytes:
    name = f"pod-{index}"
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{index}", "annotations": {"note": note}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
    }
    request = {
        "uid": f"req-{index}",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "name": name,
        "namespace": "ns",
        "operation": "CREATE",
        "userInfo": {"username": "alice"},
        "object": obj,
    }
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    ).encode()


def test_recorded_decisions_quoting_odd_text_export_the_same_through_the_rpc_and_the_cli(
    store: EvidenceStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    core = Gate(store, policy_sources=[POLICY])
    for index, note in enumerate(SAMPLES):
        core.review(parse_review(review(index, note)))
    expected = core.export_policy_reports()
    messages = {report["scope"]["name"]: report["results"][0]["message"] for report in expected}
    # A NUL is kept in the rule's message (the decision's own text fields spell it \u0000).
    assert messages["pod-0"] == "validation error: note \x00. rule quote failed at path /metadata/labels/"
    assert messages["pod-5"].startswith("validation error: note \U0001f600\U0010ffff.")

    answer = Api(core).invoke(
        "gate.v1.AuditService/ExportPolicyReports", audit_pb2.ExportPolicyReportsRequest()
    )
    assert isinstance(answer, audit_pb2.ExportPolicyReportsResponse)
    assert [json.loads(report) for report in answer.reports] == expected

    config = tmp_path / "gate.yaml"
    config.write_text(yaml.safe_dump({"database_url": f"sqlite:///{tmp_path / 'gate.db'}"}))
    assert main(["--config", str(config), "audit", "reports"]) == 0
    assert list(yaml.safe_load_all(capsys.readouterr().out)) == expected
    assert main(["--config", str(config), "audit", "reports", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == expected
