"""Waivers in decisions: denied, allowed while a waiver is in force, denied again after expiry or
revocation; the waiver id in the decision's evidence; replays; WaiverService and ``gate waiver``."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration

from gate._api import Api
from gate.cli import main
from gate.core import Gate
from gate.decisions import parse_review
from gate.errors import Conflict, InvalidArgument, NotFound
from gate.evidence import StoreEvidence
from gate.model import (
    Artifact,
    ArtifactKind,
    Finding,
    FindingKind,
    RuleOutcome,
    Scan,
    ScanState,
    ScanTarget,
    Severity,
    SeverityCounts,
    TargetKind,
)
from gate.store import EvidenceStore, open_store
from gate.v1 import common_pb2, decision_pb2, waiver_pb2
from tests.conftest import loopback_config

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
IMAGE = "registry.example/team/app:2.0"
DIGEST = "sha256:" + "7" * 64

POLICIES = """
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: disallow-host-namespaces
spec:
  validationFailureAction: Enforce
  rules:
  - name: host-namespaces
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      message: Sharing the host namespaces is disallowed.
      pattern:
        spec:
          =(hostNetwork): "false"
---
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: no-secrets
  annotations:
    gate.dev/stages: publish
spec:
  validationFailureAction: Enforce
  rules:
  - name: no-secrets-found
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      foreach:
      - list: request.object.spec.containers
        context:
        - name: evidence
          apiCall:
            method: POST
            data:
            - key: image
              value: "{{ element.image }}"
            service:
              url: https://gate.gate-system.svc:8443/v1/evidence
        deny:
          conditions:
            any:
            - key: "{{ evidence.scan.secrets }}"
              operator: GreaterThan
              value: 0
              message: "image {{ element.image }} contains secrets"
"""


class Clock:
    """The Gate clock parameter, moved by the tests."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(tmp_path: Path) -> Any:
    policy = tmp_path / "policies.yaml"
    policy.write_text(POLICIES)
    store = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    clock = Clock()
    gate = Gate(
        store, clock=clock, policy_sources=[policy], evidence=StoreEvidence(store, ttl=1e-6), waiver_ttl=1e-6
    )
    yield Api(gate), gate, store, clock
    store.close()


def review_body(namespace: str = "delta", host_network: bool = True) -> bytes:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "tool", "namespace": namespace},
        "spec": {"hostNetwork": host_network, "containers": [{"name": "tool", "image": IMAGE}]},
    }
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": pod,
        },
    }
    return json.dumps(review).encode()


def create(api: Api, **fields: Any) -> Any:
    fields.setdefault("policy", "disallow-host-namespaces")
    fields.setdefault("owner", "platform-team")
    fields.setdefault("reason", "tool migration, SEC-42")
    if "expires_at" not in fields:
        fields.setdefault("duration", Duration(seconds=14 * 86400))
    request = waiver_pb2.CreateWaiverRequest(actor="alice", **fields)
    return api.invoke("gate.v1.WaiverService/CreateWaiver", request)


def test_admission_is_denied_then_allowed_by_a_waiver_then_denied_after_expiry(world: Any) -> None:
    api, gate, store, clock = world
    assert gate.review(parse_review(review_body())).decision.allowed is False

    waiver = create(api, namespace="delta", rule="host-*")
    assert (waiver.state, waiver.created_by) == ("active", "alice")
    outcome = gate.review(parse_review(review_body()))
    assert outcome.decision.allowed is True
    [result] = [r for r in outcome.decision.results if r.rule == "host-namespaces"]
    assert result.outcome is RuleOutcome.SKIP
    assert waiver.id in result.message
    assert "platform-team" in result.message
    assert "2026-12-11T12:00:00Z" in result.message
    assert waiver.id in outcome.decision.evidence_ids
    recorded = store.get_decision(outcome.decision.id)
    assert recorded is not None
    assert waiver.id in recorded.evidence_ids

    # Another namespace is not the waiver's subject.
    assert gate.review(parse_review(review_body(namespace="prod"))).decision.allowed is False

    clock.now = NOW + timedelta(days=14, seconds=1)
    after = gate.review(parse_review(review_body()))
    assert after.decision.allowed is False
    assert waiver.id not in after.decision.evidence_ids


def test_a_revoked_waiver_never_applies_again(world: Any) -> None:
    api, gate, _, clock = world
    waiver = create(api, namespace="delta")
    assert gate.review(parse_review(review_body())).decision.allowed is True
    clock.now = NOW + timedelta(hours=1)
    revoked = api.invoke(
        "gate.v1.WaiverService/RevokeWaiver", waiver_pb2.RevokeWaiverRequest(id=waiver.id, actor="bob")
    )
    assert (revoked.state, revoked.revoked_by) == ("revoked", "bob")
    assert revoked.revoked_at.ToDatetime(tzinfo=UTC) == clock.now
    assert gate.review(parse_review(review_body())).decision.allowed is False
    with pytest.raises(Conflict):
        api.invoke("gate.v1.WaiverService/RevokeWaiver", waiver_pb2.RevokeWaiverRequest(id=waiver.id))
    with pytest.raises(NotFound):
        api.invoke("gate.v1.WaiverService/RevokeWaiver", waiver_pb2.RevokeWaiverRequest(id=str(uuid.uuid4())))
    listed = api.invoke("gate.v1.WaiverService/ListWaivers", waiver_pb2.ListWaiversRequest())
    assert list(listed.waivers) == []
    everything = api.invoke(
        "gate.v1.WaiverService/ListWaivers", waiver_pb2.ListWaiversRequest(include_inactive=True)
    )
    assert [w.id for w in everything.waivers] == [waiver.id]


def _record_secret_scan(store: EvidenceStore) -> None:
    scan_id = str(uuid.uuid4())
    scan = Scan(
        id=scan_id,
        artifact_digest=DIGEST,
        scanner="gitleaks",
        target=ScanTarget(TargetKind.IMAGE, IMAGE),
        state=ScanState.RUNNING,
        created_at=NOW,
        started_at=NOW,
    )
    store.add_scan(scan)
    finding = Finding(
        "s1", scan_id, "gitleaks", FindingKind.SECRET, "aws-access-key", "AWS key", Severity.HIGH
    )
    done = replace(
        scan,
        state=ScanState.SUCCEEDED,
        finished_at=NOW,
        counts=SeverityCounts.of([finding.severity]),
        finding_count=1,
    )
    store.complete_scan(done, [finding])


def _decide(api: Api) -> Any:
    request = decision_pb2.DecideRequest(
        stage="publish", project="team", artifact=common_pb2.ArtifactRef(reference=IMAGE)
    )
    return api.invoke("gate.v1.DecisionService/Decide", request)


def test_decide_is_allowed_by_a_digest_waiver_until_it_expires_and_replays_the_same(world: Any) -> None:
    api, gate, store, clock = world
    store.upsert_artifact(Artifact(DIGEST, ArtifactKind.IMAGE, NOW, "registry.example/team/app", (IMAGE,)))
    _record_secret_scan(store)
    assert _decide(api).allowed is False

    waiver = create(api, policy="no-secrets", digest=DIGEST, duration=Duration(seconds=3600))
    allowed = _decide(api)
    assert allowed.allowed is True, allowed.message
    assert waiver.id in allowed.evidence_ids
    [skipped] = [r for r in allowed.results if r.policy == "no-secrets"]
    assert skipped.outcome == decision_pb2.RULE_OUTCOME_SKIP
    assert waiver.id in skipped.message

    # Replayed later, after the waiver expired and was revoked: the decision used it, so it still applies.
    clock.now = NOW + timedelta(hours=2)
    gate.revoke_waiver(waiver.id, "carol")
    replay = gate.replay_decision(allowed.id)
    assert replay.same, replay.differences
    assert replay.replayed.allowed is True

    assert _decide(api).allowed is False


def test_a_waiver_for_another_digest_does_not_apply(world: Any) -> None:
    api, _, store, _ = world
    store.upsert_artifact(Artifact(DIGEST, ArtifactKind.IMAGE, NOW, "registry.example/team/app", (IMAGE,)))
    _record_secret_scan(store)
    create(api, policy="no-secrets", digest="sha256:" + "8" * 64)
    assert _decide(api).allowed is False


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"namespace": ""}, "subject"),
        ({"namespace": "delta", "owner": ""}, "owner"),
        ({"namespace": "delta", "reason": ""}, "reason"),
        ({"namespace": "delta", "duration": Duration(seconds=91 * 86400)}, "expires_at"),
        ({"namespace": "delta", "digest": "sha256:abc"}, "digest"),
        ({"namespace": "Delta Space"}, "namespace"),
        ({"namespace": "delta", "policy": ""}, "policy"),
    ],
)
def test_bad_waivers_are_refused_naming_the_field(world: Any, fields: dict[str, Any], field: str) -> None:
    api, _, _, _ = world
    with pytest.raises(InvalidArgument) as raised:
        create(api, **fields)
    assert raised.value.message.startswith(field)


def test_an_expiry_in_the_past_is_refused(world: Any) -> None:
    api, _, _, _ = world
    from google.protobuf.timestamp_pb2 import Timestamp

    stamp = Timestamp()
    stamp.FromDatetime(NOW - timedelta(days=1))
    with pytest.raises(InvalidArgument, match="must be in the future"):
        create(api, namespace="delta", expires_at=stamp)


def test_the_maximum_is_configurable(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    try:
        gate = Gate(store, clock=Clock(), waiver_max_days=7)
        with pytest.raises(InvalidArgument, match="at most 7 days"):
            gate.create_waiver(
                policy="p",
                namespace="delta",
                owner="o",
                reason="r",
                expires_at=NOW + timedelta(days=8),
                created_by="a",
            )
        assert gate.create_waiver(
            policy="p",
            namespace="delta",
            owner="o",
            reason="r",
            expires_at=NOW + timedelta(days=7),
            created_by="a",
        ).expires_at == NOW + timedelta(days=7)
    finally:
        store.close()


def test_the_cli_creates_lists_and_revokes_waivers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("GATE_CONFIG", "GATE_SERVER", "GATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATE_DATA_DIR", str(tmp_path / "data"))
    expires = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    code = main(
        [
            "waiver", "create", "--policy", "disallow-host-namespaces", "--rule", "host-namespaces",
            "--namespace", "delta", "--owner", "platform-team", "--reason", "migration",
            "--expires", expires, "-o", "json",
        ]
    )  # fmt: skip
    assert code == 0
    created = json.loads(capsys.readouterr().out)
    assert created["state"] == "active"
    assert created["expires_at"].startswith(expires)
    assert (
        main(
            [
                "waiver",
                "create",
                "--policy",
                "p",
                "--image",
                "registry.example/*",
                "--owner",
                "o",
                "--reason",
                "r",
                "--for",
                "14d",
            ]
        )
        == 0
    )
    capsys.readouterr()

    assert main(["waiver", "list"]) == 0
    listing = capsys.readouterr().out
    assert created["id"] in listing
    assert "namespace=delta" in listing
    assert "image=registry.example/*" in listing

    assert main(["waiver", "revoke", created["id"]]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["waiver", "list", "-o", "json"]) == 0
    assert created["id"] not in capsys.readouterr().out
    assert main(["waiver", "list", "--all"]) == 0
    assert created["id"] in capsys.readouterr().out

    # Usage errors exit 2 with the reason; bad waivers exit 1 naming the field.
    assert (
        main(["waiver", "create", "--policy", "p", "--namespace", "d", "--owner", "o", "--reason", "r"]) == 2
    )
    assert "exactly one of --expires and --for" in capsys.readouterr().err
    assert (
        main(
            [
                "waiver",
                "create",
                "--policy",
                "p",
                "--namespace",
                "d",
                "--owner",
                "o",
                "--reason",
                "r",
                "--for",
                "120d",
            ]
        )
        == 1
    )
    assert "at most 90 days" in capsys.readouterr().err


def test_the_cli_reaches_a_running_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], serve_gate: Any
) -> None:
    for name in ("GATE_CONFIG", "GATE_SERVER", "GATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATE_DATA_DIR", str(tmp_path / "client"))
    server = serve_gate(loopback_config(tmp_path / "server"))
    address = server.addresses.grpc
    args = ["--server", address, "waiver", "create", "--policy", "p", "--namespace", "delta"]
    assert main([*args, "--owner", "o", "--reason", "r", "--for", "1d", "-o", "json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert main(["--server", address, "waiver", "list", "-o", "json"]) == 0
    assert [w["id"] for w in json.loads(capsys.readouterr().out)["waivers"]] == [created["id"]]
