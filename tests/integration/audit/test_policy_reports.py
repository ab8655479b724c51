"""PolicyReport export: recorded admission decisions as one wgpolicyk8s.io report per resource."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from gate._api import Api
from gate.cli import main
from gate.core import Gate
from gate.decisions import parse_review
from gate.errors import InvalidArgument
from gate.store import EvidenceStore, open_store
from gate.v1 import audit_pb2

POLICIES = Path(__file__).resolve().parents[2] / "assets" / "audit" / "policies.yaml"
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def pod(name: str, namespace: str, uid: str, image: str, *, owner: bool = False) -> dict[str, Any]:
    labels = {"app": name, **({"owner": "team-a"} if owner else {})}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": uid, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def review(obj: dict[str, Any], operation: str = "CREATE", *, dry_run: bool = False) -> bytes:
    metadata = obj["metadata"]
    request: dict[str, Any] = {
        "uid": f"req-{metadata['uid']}-{operation}",
        "kind": {"group": "", "version": "v1", "kind": obj["kind"]},
        "name": metadata["name"],
        "operation": operation,
        "userInfo": {"username": "alice"},
        "object": None if operation == "DELETE" else obj,
        "oldObject": obj if operation == "DELETE" else None,
        "dryRun": dry_run,
    }
    if metadata.get("namespace"):
        request["namespace"] = metadata["namespace"]
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    ).encode()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EvidenceStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    yield opened
    opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def core(store: EvidenceStore, clock: Clock) -> Gate:
    return Gate(store, clock=clock, policy_sources=[POLICIES])


def decide(core: Gate, clock: Clock, body: bytes) -> bool:
    clock.now += timedelta(minutes=1)
    return core.review(parse_review(body)).decision.allowed


def by_name(reports: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {report["scope"]["name"]: report for report in reports}


def test_one_report_per_resource_and_its_latest_decision_wins(core: Gate, clock: Clock) -> None:
    bad = pod("api", "payments", "11111111-1111-4111-8111-111111111111", "registry.example/api:latest")
    assert decide(core, clock, review(bad)) is False
    fixed = pod(
        "api", "payments", "11111111-1111-4111-8111-111111111111", "registry.example/api:1.2", owner=True
    )
    assert decide(core, clock, review(fixed, "UPDATE")) is True
    decided_at = clock.now
    other = pod("web", "shop", "22222222-2222-4222-8222-222222222222", "registry.example/web:latest")
    decide(core, clock, review(other))

    reports = by_name(core.export_policy_reports())
    assert set(reports) == {"api", "web"}
    api = reports["api"]
    assert api["apiVersion"] == "wgpolicyk8s.io/v1alpha2"
    assert api["kind"] == "PolicyReport"
    assert api["metadata"]["name"] == "11111111-1111-4111-8111-111111111111"
    assert api["metadata"]["namespace"] == "payments"
    assert api["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "kyverno"}
    assert api["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "api", "uid": "11111111-1111-4111-8111-111111111111"}
    ]
    assert api["scope"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "api",
        "namespace": "payments",
        "uid": "11111111-1111-4111-8111-111111111111",
    }
    # The UPDATE (fixed image, owner label) is the latest decision: both rules pass.
    assert api["summary"] == {"pass": 2, "fail": 0, "warn": 0, "error": 0, "skip": 0}
    results = {r["policy"]: r for r in api["results"]}
    latest = results["disallow-latest-tag"]
    assert latest["rule"] == "no-latest-tag"
    assert latest["result"] == "pass"
    assert latest["severity"] == "medium"
    assert latest["category"] == "Best Practices"
    assert latest["scored"] is True
    assert latest["source"] == "kyverno"
    assert latest["timestamp"] == {"seconds": int(decided_at.timestamp()), "nanos": 0}
    assert latest["properties"]["process"] == "admission review"
    assert latest["properties"]["allowed"] == "true"
    assert core.get_decision(latest["properties"]["decision"]).subject == "Pod/payments/api"

    web = {r["policy"]: r for r in reports["web"]["results"]}
    assert web["disallow-latest-tag"]["result"] == "fail"
    assert web["disallow-latest-tag"]["message"].startswith(
        "validation error: the :latest tag is not allowed"
    )
    # An unscored policy's failure is reported as a warning, as Kyverno does.
    assert web["require-owner-label"]["result"] == "warn"
    assert web["require-owner-label"]["scored"] is False
    assert reports["web"]["summary"] == {"pass": 0, "fail": 1, "warn": 1, "error": 0, "skip": 0}


def test_namespace_and_since_filters(core: Gate, clock: Clock) -> None:
    decide(core, clock, review(pod("a", "one", "aaaaaaaa-1111-4111-8111-111111111111", "r/a:1")))
    cut = clock.now + timedelta(seconds=30)
    decide(core, clock, review(pod("b", "two", "bbbbbbbb-1111-4111-8111-111111111111", "r/b:1")))
    decide(core, clock, review(pod("c", "one", "cccccccc-1111-4111-8111-111111111111", "r/c:1")))

    assert set(by_name(core.export_policy_reports(namespace="one"))) == {"a", "c"}
    assert set(by_name(core.export_policy_reports(since=cut))) == {"b", "c"}
    assert set(by_name(core.export_policy_reports(since=cut, namespace="one"))) == {"c"}
    with pytest.raises(InvalidArgument, match="since: must not be in the future"):
        core.export_policy_reports(since=clock.now + timedelta(days=1))


def test_cluster_scoped_resources_get_a_cluster_policy_report(core: Gate, clock: Clock) -> None:
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "payments", "uid": "dddddddd-1111-4111-8111-111111111111"},
    }
    decide(core, clock, review(namespace))
    (report,) = core.export_policy_reports()
    assert report["kind"] == "ClusterPolicyReport"
    assert "namespace" not in report["metadata"]
    assert report["scope"] == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "name": "payments",
        "uid": "dddddddd-1111-4111-8111-111111111111",
    }
    assert [(r["policy"], r["result"]) for r in report["results"]] == [("require-owner-label", "warn")]


def test_deleted_resources_and_dry_runs_have_no_report(core: Gate, clock: Clock) -> None:
    gone = pod("gone", "x", "eeeeeeee-1111-4111-8111-111111111111", "r/g:1")
    decide(core, clock, review(gone))
    decide(core, clock, review(gone, "DELETE"))
    decide(
        core, clock, review(pod("dry", "x", "ffffffff-1111-4111-8111-111111111111", "r/d:1"), dry_run=True)
    )
    assert core.export_policy_reports() == []


def test_the_rpc_and_the_cli_export_the_same_reports(
    core: Gate, clock: Clock, store: EvidenceStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    decide(
        core, clock, review(pod("api", "payments", "11111111-1111-4111-8111-111111111111", "r/api:latest"))
    )
    decide(core, clock, review(pod("web", "shop", "22222222-2222-4222-8222-222222222222", "r/web:2")))
    expected = core.export_policy_reports()

    answer = Api(core).invoke(
        "gate.v1.AuditService/ExportPolicyReports", audit_pb2.ExportPolicyReportsRequest(namespace="shop")
    )
    assert isinstance(answer, audit_pb2.ExportPolicyReportsResponse)
    assert [json.loads(r) for r in answer.reports] == [r for r in expected if r["scope"]["name"] == "web"]

    config = tmp_path / "gate.yaml"
    config.write_text(yaml.safe_dump({"database_url": f"sqlite:///{tmp_path / 'gate.db'}"}))
    assert main(["--config", str(config), "audit", "reports"]) == 0
    assert list(yaml.safe_load_all(capsys.readouterr().out)) == expected
    assert main(["--config", str(config), "audit", "reports", "-o", "json", "--namespace", "payments"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["kind"] == "List"
    assert [r["scope"]["name"] for r in listing["items"]] == ["api"]
