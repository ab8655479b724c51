"""A NUL in what a decision quotes is recorded alike on SQLite and PostgreSQL, and its seal verifies.

PostgreSQL's text columns refuse a NUL. A review of a resource named with one (by a caller that is
not the API server), or a policy message quoting an annotation that holds one, failed the insert
of the whole batch of decisions sharing the commit, on PostgreSQL only.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gate.audit import verify_decision
from gate.core import ArtifactSelector, Gate
from gate.decisions import seal_all
from gate.errors import InvalidArgument
from gate.evidence import StoreEvidence
from gate.model import ArtifactKind
from gate.scan_jobs import ScanJobs
from gate.store import EvidenceStore
from tests.unit.decisions.test_recorder import decision
from tests.unit.decisions.test_seal_verification import KEY, PUBLIC, KeySigner

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def test_a_batch_with_a_nul_in_one_decision_is_stored_whole_and_verifies(store: EvidenceStore) -> None:
    quoted = dataclasses.replace(
        decision(1),
        allowed=False,
        subject="Pod/default/we\0b",
        message="denied: annotation owner is 'a\0b'",
    )
    batch = seal_all([decision(0), quoted, decision(2)], KeySigner(KEY))
    store.add_decisions(batch)
    stored = store.get_decision(quoted.id)
    assert stored is not None
    assert stored.subject == "Pod/default/we\\u0000b"
    assert stored.message == "denied: annotation owner is 'a\\u0000b'"
    for record in batch:
        read = store.get_decision(record.id)
        assert read is not None
        check = verify_decision(read, PUBLIC)
        assert check.verified, check.reason


def test_a_decision_with_a_nul_not_escaped_is_refused_alike_by_every_backend(store: EvidenceStore) -> None:
    raw = dataclasses.replace(decision(3), caller="k8s:a\0b")
    with pytest.raises(InvalidArgument, match="got a NUL character in its message, subject, caller or stage"):
        store.add_decision(raw)
    assert store.get_decision(raw.id) is None


def test_a_reference_or_artifact_name_with_a_control_character_is_invalid_not_unavailable(
    store: EvidenceStore, tmp_path: Path
) -> None:
    jobs = ScanJobs(store, {}, secret_key=os.urandom(32), workdir=tmp_path, clock=lambda: NOW)
    gate = Gate(store, clock=lambda: NOW, scans=jobs)
    with pytest.raises(InvalidArgument) as caught:
        gate.resolve(ArtifactSelector(reference="registry.example/app:1\0"), "artifact")
    assert caught.value.field == "artifact.reference"
    assert "got a control character (\\u0000)" in caught.value.problem
    with pytest.raises(InvalidArgument) as caught:
        gate.ensure_artifact(
            ArtifactSelector(digest="sha256:" + "7" * 64), "artifact", ArtifactKind.IMAGE, "app\0"
        )
    assert caught.value.field == "artifact_name"
    assert store.get_artifact("sha256:" + "7" * 64) is None


def test_evidence_for_an_image_no_registry_could_name_is_none_without_asking_the_store(
    store: EvidenceStore,
) -> None:
    evidence = StoreEvidence(store)
    assert evidence.digest_of("registry.example/app:1\0") is None
    assert evidence.digest_of("registry.example/app@sha256:" + "\0" * 64) is None
    assert evidence.digest_of("registry.example/app@sha256:" + "A" * 64) is None
    assert evidence.digest_of("registry.example/app@sha256:" + "a" * 64) == "sha256:" + "a" * 64


@pytest.mark.postgres
def test_a_nul_reaching_a_postgresql_lookup_is_invalid_argument_not_unavailable(postgres_url: str) -> None:
    from gate.store import open_store

    store = open_store(postgres_url)
    try:
        for lookup in (
            lambda: store.get_decision("d\0"),
            lambda: store.resolve_alias("registry.example/app:1\0"),
            lambda: store.get_scan("s\0"),
        ):
            with pytest.raises(InvalidArgument) as caught:
                lookup()
            assert (
                caught.value.problem
                == "got a NUL character (\\u0000) in a text value, expected text without NUL"
            )
    finally:
        store.close()
