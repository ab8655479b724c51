"""Pipeline Decide: policies of the stage, evidence from the store, explained answers, recorded decisions."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gate._api import Api
from gate._nonblocking import WouldBlock, nonblocking
from gate.cli import main
from gate.core import Gate
from gate.errors import InvalidArgument
from gate.evidence import StoreEvidence
from gate.model import (
    Artifact,
    ArtifactKind,
    Finding,
    FindingKind,
    Scan,
    ScanState,
    ScanTarget,
    Severity,
    SeverityCounts,
    TargetKind,
)
from gate.store import DecisionQuery, open_store
from gate.v1 import common_pb2, decision_pb2

IMAGE = "registry.example/team/app:2.0"
DIGEST = "sha256:" + "7" * 64
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
# A Pod as JSON, open at its spec: the tests close it.
POD_HEAD = b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":'

POLICIES = """
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: no-secrets
  annotations:
    gate.dev/stages: publish,deploy
    gate.dev/remediation: remove the secret from the image, rotate it, and rebuild
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
              message: "image {{ element.image }} contains {{ evidence.scan.secrets }} secret(s)"
---
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: only-deploy-digests
  annotations:
    gate.dev/stages: deploy
spec:
  validationFailureAction: Enforce
  rules:
  - name: digest
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      message: images must be pinned by digest
      pattern:
        spec:
          containers:
          - image: "*@sha256:*"
"""


def _record_scan(store: Any, scan_id: str, created: datetime, secrets: int) -> None:
    scan = Scan(
        id=scan_id,
        artifact_digest=DIGEST,
        scanner="gitleaks",
        target=ScanTarget(TargetKind.IMAGE, IMAGE),
        state=ScanState.RUNNING,
        created_at=created,
        started_at=created,
    )
    store.add_scan(scan)
    findings = [
        Finding(f"s{i}", scan_id, "gitleaks", FindingKind.SECRET, "aws-access-key", "AWS key", Severity.HIGH)
        for i in range(secrets)
    ]
    done = replace(
        scan,
        state=ScanState.SUCCEEDED,
        finished_at=created,
        counts=SeverityCounts.of(f.severity for f in findings),
        finding_count=len(findings),
    )
    store.complete_scan(done, findings)


@pytest.fixture
def world(tmp_path: Path) -> Any:
    policy = tmp_path / "policies.yaml"
    policy.write_text(POLICIES)
    store = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    store.upsert_artifact(Artifact(DIGEST, ArtifactKind.IMAGE, NOW, "registry.example/team/app", (IMAGE,)))
    api = Api(Gate(store, policy_sources=[policy], evidence=StoreEvidence(store, ttl=1e-6)))
    yield api, store, policy
    store.close()


def _decide(api: Api, stage: str, **subject: Any) -> Any:
    request = decision_pb2.DecideRequest(stage=stage, project="team", **subject)
    return api.invoke("gate.v1.DecisionService/Decide", request)


def test_a_planted_secret_denies_publish_with_the_reason_and_remediation(world: Any) -> None:
    api, store, _ = world
    _record_scan(store, "9a1f1e0e-1111-4111-8111-111111111111", NOW, secrets=1)
    decision = _decide(api, "publish", artifact=common_pb2.ArtifactRef(reference=IMAGE))
    assert decision.allowed is False
    [failed] = [r for r in decision.results if r.outcome == decision_pb2.RULE_OUTCOME_FAIL]
    assert failed.policy == "no-secrets"
    assert f"image {IMAGE} contains 1 secret(s)" in failed.message
    assert failed.remediation == "remove the secret from the image, rotate it, and rebuild"
    assert "9a1f1e0e-1111-4111-8111-111111111111" in decision.evidence_ids
    assert list(decision.artifact_digests) == [DIGEST]
    recorded = store.get_decision(decision.id)
    assert recorded is not None
    assert recorded.request["resources"][0]["spec"]["containers"][0]["image"] == IMAGE


def test_a_clean_rescan_allows_and_stage_annotations_choose_the_policies(world: Any) -> None:
    api, store, _ = world
    _record_scan(store, "9a1f1e0e-2222-4222-8222-222222222222", NOW, secrets=1)
    _record_scan(store, "9a1f1e0e-3333-4333-8333-333333333333", NOW + timedelta(hours=1), secrets=0)
    publish = _decide(api, "publish", artifact=common_pb2.ArtifactRef(reference=IMAGE))
    assert publish.allowed is True, publish.message
    assert {r.policy for r in publish.results} == {"no-secrets"}
    # Deploy also runs only-deploy-digests: a tag is refused, the digest passes.
    assert _decide(api, "deploy", artifact=common_pb2.ArtifactRef(reference=IMAGE)).allowed is False
    pinned = _decide(api, "deploy", artifact=common_pb2.ArtifactRef(digest=DIGEST))
    assert pinned.allowed is True, pinned.message
    # A stage no policy names runs the policies without a stage annotation: here none.
    assert list(_decide(api, "build", artifact=common_pb2.ArtifactRef(reference=IMAGE)).results) == []


def test_a_reloaded_bundle_with_other_stage_annotations_chooses_again(world: Any) -> None:
    api, store, policy = world
    _record_scan(store, "9a1f1e0e-2222-4222-8222-222222222222", NOW, secrets=0)
    before = _decide(api, "build", artifact=common_pb2.ArtifactRef(reference=IMAGE))
    assert list(before.results) == []
    # no-secrets now applies to build as well; the stage's choice must follow the new bundle.
    policy.write_text(POLICIES.replace("gate.dev/stages: publish,deploy", "gate.dev/stages: build,publish"))
    api._gate.reload_policies()
    after = _decide(api, "build", artifact=common_pb2.ArtifactRef(reference=IMAGE))
    assert [(r.policy, r.rule) for r in after.results] == [("no-secrets", "no-secrets-found")]
    assert {
        r.policy for r in _decide(api, "deploy", artifact=common_pb2.ArtifactRef(digest=DIGEST)).results
    } == {"only-deploy-digests"}


def test_an_image_named_by_digest_is_named_from_memory_once_found(world: Any) -> None:
    api, store, _ = world
    core = api._gate
    other = "sha256:" + "8" * 64
    # Not yet looked up: the store must be read, which may not happen on an event loop.
    with pytest.raises(WouldBlock), nonblocking():
        core.artifact_name(DIGEST)
    assert core.artifact_name(DIGEST) == "registry.example/team/app"
    with nonblocking():
        assert core.artifact_name(DIGEST) == "registry.example/team/app"
    # An unknown digest is not remembered as unknown: recorded a moment later, it counts at once.
    assert core.artifact_name(other) == ""
    store.upsert_artifact(Artifact(other, ArtifactKind.IMAGE, NOW, "registry.example/team/other", ()))
    assert core.artifact_name(other) == "registry.example/team/other"
    decision = _decide(api, "publish", artifact=common_pb2.ArtifactRef(digest=other))
    assert list(decision.artifact_digests) == [other]


def test_manifests_are_decided_object_by_object(world: Any) -> None:
    api, _, _ = world
    manifest = json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {"containers": [{"name": "web", "image": IMAGE}]},
        }
    ).encode()
    decision = _decide(api, "deploy", manifest=manifest)
    assert decision.allowed is False
    assert any(
        r.policy == "only-deploy-digests" and r.outcome == decision_pb2.RULE_OUTCOME_FAIL
        for r in decision.results
    )


def test_an_image_is_decided_as_a_pod_in_the_projects_namespace(world: Any) -> None:
    api, _, _ = world
    decision = _decide(api, "publish", artifact=common_pb2.ArtifactRef(reference=IMAGE), dry_run=True)
    assert decision.results
    assert {r.resource.split("/")[1] for r in decision.results} == {"team"}


def test_dry_runs_are_not_recorded(world: Any) -> None:
    api, store, _ = world
    decision = api.invoke(
        "gate.v1.DecisionService/Decide",
        decision_pb2.DecideRequest(
            stage="publish", dry_run=True, artifact=common_pb2.ArtifactRef(reference=IMAGE)
        ),
    )
    assert decision.id == ""
    assert store.list_decisions(DecisionQuery()).items == ()


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"stage": "Publish", "artifact": common_pb2.ArtifactRef(reference=IMAGE)}, "stage"),
        ({"stage": "publish"}, "subject"),
        (
            {"stage": "publish", "artifact": common_pb2.ArtifactRef(digest="sha256:" + "0" * 64)},
            "artifact.digest",
        ),
        ({"stage": "publish", "manifest": b"kind: Pod\n"}, "manifest[0].apiVersion"),
        # Values JSON cannot hold: refused where they are, not when the decision is stored.
        (
            {"stage": "publish", "manifest": b"apiVersion: v1\nkind: Pod\nmetadata: {name: a, x: .nan}\n"},
            "manifest",
        ),
        (
            {"stage": "publish", "manifest": b"apiVersion: v1\nkind: Pod\nmetadata: {name: a, x: -.inf}\n"},
            "manifest",
        ),
        # Bounded before any policy runs (the engine is told the objects are checked).
        ({"stage": "publish", "manifest": POD_HEAD + b'{"a":' * 70 + b"1" + b"}" * 71}, "manifest"),
        ({"stage": "publish", "manifest": POD_HEAD + b'{"v":[' + b"1," * 200_000 + b"1]}}"}, "manifest"),
        (
            {"stage": "publish", "source": decision_pb2.SourceTree(repository="https://git.example/a")},
            "source",
        ),
        # Once rewritten into a namespace: "Team_A" was decided as "team-a", under that project's
        # namespaced exceptions and waivers.
        (
            {"stage": "publish", "project": "Team_A", "artifact": common_pb2.ArtifactRef(reference=IMAGE)},
            "project",
        ),
        (
            {"stage": "publish", "project": "team-", "artifact": common_pb2.ArtifactRef(reference=IMAGE)},
            "project",
        ),
        (
            {"stage": "publish", "project": "t" * 64, "artifact": common_pb2.ArtifactRef(reference=IMAGE)},
            "project",
        ),
    ],
)
def test_bad_requests_name_the_field(world: Any, request_fields: dict[str, Any], field: str) -> None:
    api, _, _ = world
    with pytest.raises(InvalidArgument) as caught:
        api.invoke("gate.v1.DecisionService/Decide", decision_pb2.DecideRequest(**request_fields))
    assert caught.value.field == field


def test_the_cli_exits_1_with_the_explanation_when_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("GATE_CONFIG", "GATE_SERVER", "GATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("GATE_DATA_DIR", str(data))
    policy = tmp_path / "policies.yaml"
    policy.write_text(POLICIES)
    monkeypatch.setenv("GATE_POLICY_SOURCES", str(policy))
    store = open_store(f"sqlite:///{data / 'gate.db'}")
    try:
        store.upsert_artifact(
            Artifact(DIGEST, ArtifactKind.IMAGE, NOW, "registry.example/team/app", (IMAGE,))
        )
        _record_scan(store, "9a1f1e0e-4444-4444-8444-444444444444", NOW, secrets=2)
    finally:
        store.close()
    code = main(["decide", "--stage", "publish", "--image", IMAGE])
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("DENIED at stage 'publish'")
    assert "contains 2 secret(s)" in out
    assert "fix: remove the secret from the image" in out
    assert main(["decide", "--stage", "build", "--image", IMAGE]) == 0
    assert "ALLOWED" in capsys.readouterr().out


@pytest.fixture
def signed_world(tmp_path: Path) -> Any:
    from gate._signature_service import SignatureService

    policy = tmp_path / "policies.yaml"
    policy.write_text(POLICIES)
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    store = open_store(url)
    store.upsert_artifact(Artifact(DIGEST, ArtifactKind.IMAGE, NOW, "registry.example/team/app", (IMAGE,)))
    signer = SignatureService().decision_signer(tmp_path / "data")
    core = Gate(
        store, policy_sources=[policy], evidence=StoreEvidence(store, ttl=1e-6), decision_signer=signer
    )
    yield Api(core), store, url
    store.close()


def test_a_decision_made_with_no_policies_replays_the_same(tmp_path: Path) -> None:
    from gate.v1 import audit_pb2

    store = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    try:
        api = Api(Gate(store, policy_sources=[]))  # gate serve's embedded defaults: no policy sources
        decision = _decide(api, "deploy", manifest=POD_HEAD + b'{"containers":[{"name":"a","image":"x"}]}}')
        assert decision.allowed is True
        replay: Any = api.invoke(
            "gate.v1.AuditService/ReplayDecision", audit_pb2.ReplayDecisionRequest(id=decision.id)
        )
        assert replay.bundle_found is True
        assert replay.same is True, list(replay.differences)
    finally:
        store.close()


NUMBERS_POLICY = """
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: numbers
spec:
  validationFailureAction: Enforce
  rules:
  - name: numbers
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      message: numbers compared
      deny:
        conditions:
          any:
          - key: "{{ length(request.object.spec.containers) }}"
            operator: GreaterThan
            value: 1e3
          - key: 2e-7
            operator: Equals
            value: 0.0000002
"""


def test_a_policy_with_numbers_yaml_1_1_reads_as_text_replays_the_same(tmp_path: Path) -> None:
    # 1e3 and 2e-7 are numbers to Kyverno; the bundle kept as JSON must read back the same.
    from gate.v1 import audit_pb2

    policy = tmp_path / "numbers.yaml"
    policy.write_text(NUMBERS_POLICY)
    store = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    try:
        api = Api(Gate(store, policy_sources=[policy]))
        decision = _decide(api, "deploy", manifest=POD_HEAD + b'{"containers":[{"name":"a","image":"x"}]}}')
        # 2e-7 equals 0.0000002 as numbers: the second condition denies.
        assert decision.allowed is False, decision.message
        replay: Any = api.invoke(
            "gate.v1.AuditService/ReplayDecision", audit_pb2.ReplayDecisionRequest(id=decision.id)
        )
        assert replay.same is True, list(replay.differences)
    finally:
        store.close()


def test_recorded_decisions_are_signed_verify_and_tampering_is_caught(signed_world: Any) -> None:
    import sqlalchemy as sa

    from gate.store._schema import decisions
    from gate.v1 import audit_pb2

    api, store, url = signed_world
    _record_scan(store, "9a1f1e0e-5555-4555-8555-555555555555", NOW, secrets=1)
    decision = _decide(api, "publish", artifact=common_pb2.ArtifactRef(reference=IMAGE))
    assert decision.signature
    check: Any = api.invoke(
        "gate.v1.AuditService/VerifyDecision", audit_pb2.VerifyDecisionRequest(id=decision.id)
    )
    assert check.verified is True, check.reason
    key: Any = api.invoke("gate.v1.AuditService/GetDecisionKey", audit_pb2.GetDecisionKeyRequest())
    assert check.signer == key.fingerprint
    assert "BEGIN PUBLIC KEY" in key.public_key

    # An auditor holding another key does not accept it.
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    stranger = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    foreign: Any = api.invoke(
        "gate.v1.AuditService/VerifyDecision",
        audit_pb2.VerifyDecisionRequest(id=decision.id, public_key=stranger),
    )
    assert foreign.verified is False

    # Flipping the stored answer breaks the link to what was signed.
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.update(decisions).where(decisions.c.id == decision.id).values(allowed=True))
    engine.dispose()
    tampered: Any = api.invoke(
        "gate.v1.AuditService/VerifyDecision", audit_pb2.VerifyDecisionRequest(id=decision.id)
    )
    assert tampered.verified is False
    assert "the stored record differs from what was signed" in tampered.reason


def test_replay_uses_the_recorded_bundle_and_evidence_not_what_changed_since(signed_world: Any) -> None:
    from gate.v1 import audit_pb2

    api, store, _ = signed_world
    _record_scan(store, "9a1f1e0e-6666-4666-8666-666666666666", NOW, secrets=1)
    decision = _decide(api, "publish", artifact=common_pb2.ArtifactRef(reference=IMAGE))
    assert decision.allowed is False
    # Since then: a clean rescan. The replay still sees the records the decision used.
    _record_scan(store, "9a1f1e0e-7777-4777-8777-777777777777", NOW + timedelta(hours=2), secrets=0)
    assert _decide(api, "publish", artifact=common_pb2.ArtifactRef(reference=IMAGE)).allowed is True
    replay: Any = api.invoke(
        "gate.v1.AuditService/ReplayDecision", audit_pb2.ReplayDecisionRequest(id=decision.id)
    )
    assert replay.same is True, list(replay.differences)
    assert replay.bundle_found is True
    assert replay.replayed.allowed is False
    assert [r.outcome for r in replay.replayed.results] == [r.outcome for r in replay.recorded.results]
