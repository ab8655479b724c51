"""ArtifactScope over a real SQLite store: how requests name artifacts, claims, and the binding cache."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gate.auth import Identity
from gate.errors import PermissionDenied
from gate.model import Artifact, ArtifactKind
from gate.server._authz import pipeline_only
from gate.server._scope import ArtifactScope
from gate.store import EvidenceStore, open_store
from gate.v1 import common_pb2, decision_pb2, scan_pb2, signature_pb2

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
DIGEST = "sha256:" + "7e" * 32
COMMIT = "git:" + "3c" * 20
PAYMENTS = Identity.of("token:ci-payments", ["pipeline"], ["payments"])
BILLING = Identity.of("token:ci-billing", ["pipeline"], ["billing"])
DECIDE = "gate.v1.DecisionService/Decide"
VERIFY = "gate.v1.SignatureService/VerifyImage"
FINDINGS = "gate.v1.ScanService/ListFindings"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EvidenceStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    yield opened
    opened.close()


def decide_digest(project: str, *, dry_run: bool = False) -> decision_pb2.DecideRequest:
    return decision_pb2.DecideRequest(
        artifact=common_pb2.ArtifactRef(digest=DIGEST), stage="build", project=project, dry_run=dry_run
    )


def test_a_dry_run_is_checked_but_claims_nothing(store: EvidenceStore) -> None:
    scope = ArtifactScope(store, lambda: NOW)
    scope.check(DECIDE, BILLING, True, decide_digest("billing", dry_run=True))
    assert store.artifact_projects(DIGEST) == ()
    scope.check(DECIDE, PAYMENTS, True, decide_digest("payments"))
    assert store.artifact_projects(DIGEST) == ("payments",)
    with pytest.raises(
        PermissionDenied, match=f"artifact.digest: artifact {DIGEST} belongs to other projects"
    ):
        scope.check(DECIDE, BILLING, True, decide_digest("billing", dry_run=True))


def hold_tag_of_payments(store: EvidenceStore) -> None:
    """``registry.example/pay/api:1`` is an alias gate holds of DIGEST, which is bound to payments."""
    store.upsert_artifact(
        Artifact(
            DIGEST,
            ArtifactKind.IMAGE,
            NOW,
            name="registry.example/pay/api",
            aliases=("registry.example/pay/api:1",),
        )
    )
    store.bind_artifact(DIGEST, "payments", bound_by="cli:alice", now=NOW)


def test_a_tag_gate_holds_as_an_alias_is_checked_as_its_digest(store: EvidenceStore) -> None:
    hold_tag_of_payments(store)
    scope = ArtifactScope(store, lambda: NOW)
    tagged = signature_pb2.VerifyImageRequest(image="registry.example/pay/api:1")
    with pytest.raises(PermissionDenied, match=r"image: .*got payments"):
        scope.check(VERIFY, BILLING, True, tagged)
    scope.check(VERIFY, PAYMENTS, True, tagged)
    # A tag gate does not hold is the registry's to resolve: left to the RPC, nothing bound.
    scope.check(VERIFY, BILLING, True, signature_pb2.VerifyImageRequest(image="registry.example/pay/api:2"))


def test_a_source_tree_is_checked_through_its_repository_at_commit_alias(store: EvidenceStore) -> None:
    repository = "https://git.example/pay/api"
    store.upsert_artifact(
        Artifact(COMMIT, ArtifactKind.SOURCE, NOW, name=repository, aliases=(f"{repository}@{COMMIT[4:]}",))
    )
    scope = ArtifactScope(store, lambda: NOW)
    request = decision_pb2.DecideRequest(
        source=decision_pb2.SourceTree(repository=repository, commit=COMMIT[4:]),
        stage="build",
        project="payments",
    )
    scope.check(DECIDE, PAYMENTS, True, request)
    assert store.artifact_projects(COMMIT) == ("payments",)


def decide_manifest(manifest: str, project: str) -> decision_pb2.DecideRequest:
    return decision_pb2.DecideRequest(manifest=manifest.encode(), stage="deploy", project=project)


SIDECAR = "sha256:" + "5d" * 32
MANIFEST = f"""\
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: pay}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api, namespace: pay}}
spec:
  template:
    spec:
      initContainers: [{{name: init, image: "registry.example/mesh/init@{SIDECAR}"}}]
      containers:
      - {{name: api, image: "registry.example/pay/api@{DIGEST}"}}
      - {{name: proxy, image: "registry.example/pay/api:1"}}
"""


def test_the_images_of_a_decide_manifest_are_checked_but_not_claimed(store: EvidenceStore) -> None:
    store.bind_artifact(DIGEST, "payments", bound_by="cli:alice", now=NOW)
    scope = ArtifactScope(store, lambda: NOW)
    with pytest.raises(
        PermissionDenied,
        match=rf"^manifest\[1\]: artifact {DIGEST} belongs to other projects \(got payments;",
    ):
        scope.check(DECIDE, BILLING, True, decide_manifest(MANIFEST, "billing"))
    scope.check(DECIDE, PAYMENTS, True, decide_manifest(MANIFEST, "payments"))
    # A recording Decide does not claim the images it names: the mesh's init image stays
    # free for every project's manifests.
    assert store.artifact_projects(SIDECAR) == ()
    scope.check(
        DECIDE, BILLING, True, decide_manifest(MANIFEST.replace(DIGEST, "sha256:" + "11" * 32), "billing")
    )


def test_a_tag_in_a_manifest_that_gate_holds_is_checked_as_its_digest(store: EvidenceStore) -> None:
    hold_tag_of_payments(store)
    scope = ArtifactScope(store, lambda: NOW)
    tagged_only = MANIFEST.replace(f"registry.example/pay/api@{DIGEST}", "registry.example/other:2")
    with pytest.raises(PermissionDenied, match=r"^manifest\[1\]: "):
        scope.check(DECIDE, BILLING, True, decide_manifest(tagged_only, "billing"))


def test_a_manifest_decided_by_an_unscoped_caller_reads_no_binding() -> None:
    class NoStore:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"the store was asked {name}")

    scope = ArtifactScope(NoStore(), lambda: NOW)  # type: ignore[arg-type]
    scope.check(DECIDE, PAYMENTS, False, decide_manifest(MANIFEST, "payments"))


def test_a_malformed_manifest_is_left_to_the_rpc(store: EvidenceStore) -> None:
    store.bind_artifact(DIGEST, "payments", bound_by="cli:alice", now=NOW)
    scope = ArtifactScope(store, lambda: NOW)
    for manifest in ("kind: [unclosed", "just text", f"image: registry.example/pay/api@{DIGEST}"):
        scope.check(DECIDE, BILLING, True, decide_manifest(manifest, "billing"))


def test_malformed_and_unknown_names_are_left_to_the_rpc(store: EvidenceStore) -> None:
    scope = ArtifactScope(store, lambda: NOW)
    for request in (
        scan_pb2.ListFindingsRequest(artifact=common_pb2.ArtifactRef(digest="sha256:short")),
        scan_pb2.ListFindingsRequest(scan_id="not-a-uuid"),
        scan_pb2.ListFindingsRequest(scan_id="0f8e4e5c-8c1a-4c53-9d7e-2f7f1d9c0a11"),
        scan_pb2.ListFindingsRequest(artifact=common_pb2.ArtifactRef(reference="registry.example/unknown:1")),
        scan_pb2.ListFindingsRequest(),
    ):
        scope.check(FINDINGS, BILLING, True, request)


def test_an_allowing_binding_is_cached_for_the_ttl_and_a_refusal_always_rereads(store: EvidenceStore) -> None:
    clock = Clock()
    scope = ArtifactScope(store, lambda: NOW, ttl=5.0, monotonic=clock)
    read = scan_pb2.ListFindingsRequest(artifact=common_pb2.ArtifactRef(digest=DIGEST))
    store.bind_artifact(DIGEST, "payments", bound_by="cli:alice", now=NOW)
    scope.check(FINDINGS, PAYMENTS, True, read)
    with pytest.raises(PermissionDenied, match="got payments"):
        scope.check(FINDINGS, BILLING, True, read)
    # A new binding counts at once: refusals are never answered from the cache ...
    store.bind_artifact(DIGEST, "billing", bound_by="cli:alice", now=NOW)
    scope.check(FINDINGS, BILLING, True, read)
    # ... a removed one only once the cached answer is older than the TTL.
    store.unbind_artifact(DIGEST, "payments")
    clock.now += 4.0
    scope.check(FINDINGS, PAYMENTS, True, read)
    clock.now += 2.0
    with pytest.raises(PermissionDenied, match="got billing"):
        scope.check(FINDINGS, PAYMENTS, True, read)


def test_only_calls_held_to_a_project_or_recording_under_one_reach_the_store() -> None:
    auditor = Identity.of("token:audit", ["auditor"])
    admin = Identity.of("token:ops", ["admin"])
    both = Identity.of("token:ci-and-audit", ["pipeline", "auditor"], ["payments"])
    read = scan_pb2.ListFindingsRequest(artifact=common_pb2.ArtifactRef(digest=DIGEST))
    assert pipeline_only(FINDINGS, PAYMENTS)
    assert not pipeline_only(FINDINGS, auditor)
    assert not pipeline_only(FINDINGS, both)
    assert not pipeline_only(DECIDE, admin)
    assert ArtifactScope.applies(FINDINGS, True, read)
    assert not ArtifactScope.applies(FINDINGS, False, read)
    assert ArtifactScope.applies(DECIDE, False, decide_digest("payments"))
    assert not ArtifactScope.applies(DECIDE, False, decide_digest(""))
    assert not ArtifactScope.applies(DECIDE, False, decide_digest("payments", dry_run=True))
    assert not ArtifactScope.applies("gate.v1.AuditService/ListDecisions", True, read)
