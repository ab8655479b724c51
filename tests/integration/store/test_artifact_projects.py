"""Artifact-to-project bindings on SQLite and PostgreSQL: bind, claim, unbind, and racing claims."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from gate.errors import InvalidArgument
from gate.store import EvidenceStore

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
IMAGE = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
COMMIT = "git:" + "1f" * 20


def test_an_unbound_digest_belongs_to_no_project(store: EvidenceStore) -> None:
    assert store.artifact_projects(IMAGE) == ()


def test_binding_is_idempotent_and_says_whether_another_project_had_the_digest(store: EvidenceStore) -> None:
    assert store.bind_artifact(IMAGE, "payments", bound_by="token:ci-payments", now=NOW) is False
    assert store.bind_artifact(IMAGE, "payments", bound_by="token:ci-payments", now=NOW) is False
    assert store.artifact_projects(IMAGE) == ("payments",)
    assert store.bind_artifact(IMAGE, "billing", bound_by="cli:alice", now=NOW) is True
    assert store.artifact_projects(IMAGE) == ("billing", "payments")
    assert store.artifact_projects(OTHER) == ()


def test_a_claim_binds_only_a_digest_no_project_has_yet(store: EvidenceStore) -> None:
    assert store.claim_artifact(COMMIT, "payments", bound_by="token:ci-payments", now=NOW) == ("payments",)
    assert store.claim_artifact(COMMIT, "billing", bound_by="token:ci-billing", now=NOW) == ("payments",)
    assert store.artifact_projects(COMMIT) == ("payments",)


def test_unbinding_removes_one_project_and_reports_whether_it_was_bound(store: EvidenceStore) -> None:
    store.bind_artifact(IMAGE, "payments", bound_by="cli:alice", now=NOW)
    store.bind_artifact(IMAGE, "billing", bound_by="cli:alice", now=NOW)
    assert store.unbind_artifact(IMAGE, "billing") is True
    assert store.unbind_artifact(IMAGE, "billing") is False
    assert store.artifact_projects(IMAGE) == ("payments",)
    # With no binding left the next claim wins again.
    assert store.unbind_artifact(IMAGE, "payments") is True
    assert store.claim_artifact(IMAGE, "billing", bound_by="token:ci-billing", now=NOW) == ("billing",)


def test_of_racing_first_claims_exactly_one_project_wins(store: EvidenceStore) -> None:
    projects = [f"project-{index}" for index in range(8)]
    start = threading.Barrier(len(projects))

    def claim(project: str) -> tuple[str, ...]:
        start.wait()
        return store.claim_artifact(OTHER, project, bound_by=f"token:ci-{project}", now=NOW)

    with ThreadPoolExecutor(len(projects)) as pool:
        answers = set(pool.map(claim, projects))
    assert len(answers) == 1
    (winner,) = answers
    assert len(winner) == 1
    assert winner[0] in projects
    assert store.artifact_projects(OTHER) == winner


@pytest.mark.parametrize(
    ("digest", "project", "field", "problem"),
    [
        ("sha256:ABC", "payments", "digest", "expected 'sha256:<64 hex>'"),
        ("", "payments", "digest", "required"),
        (IMAGE, "", "project", "required"),
        (IMAGE, " payments", "project", "printable characters without surrounding spaces"),
        (IMAGE, "pay\nments", "project", "printable characters"),
        (IMAGE, "p" * 254, "project", "at most 253"),
    ],
)
def test_a_malformed_digest_or_project_is_refused_naming_the_field(
    store: EvidenceStore, digest: str, project: str, field: str, problem: str
) -> None:
    for write in (store.bind_artifact, store.claim_artifact):
        with pytest.raises(InvalidArgument, match=problem) as raised:
            write(digest, project, bound_by="cli:alice", now=NOW)
        assert raised.value.field == field
    assert store.artifact_projects(IMAGE) == ()


def test_a_binding_time_without_a_zone_is_refused(store: EvidenceStore) -> None:
    with pytest.raises(InvalidArgument, match="now"):
        store.bind_artifact(IMAGE, "payments", bound_by="cli:alice", now=datetime(2026, 11, 27, 15, 0))
    assert store.artifact_projects(IMAGE) == ()
