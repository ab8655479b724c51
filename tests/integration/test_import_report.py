"""Importing a pipeline's report: a report the store cannot take leaves no scan running."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gate.core import ArtifactSelector, Gate
from gate.errors import StoreUnavailable
from gate.model import ArtifactKind, ScanState
from gate.scan_jobs import ScanJobs
from gate.store import EvidenceStore, open_store

NOW = datetime(2026, 11, 30, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32
REPORT = (
    b'[{"RuleID":"aws-access-token","File":"app/config.py","StartLine":3,"Secret":"AKIAABCDEFGHIJKLMNOP"}]'
)


class _CompletionFails:
    """The real store, except that completing a scan as succeeded fails as a lost database would."""

    def __init__(self, store: EvidenceStore) -> None:
        self._store = store
        self.added: list[str] = []

    def add_scan(self, scan: Any) -> None:
        self.added.append(scan.id)
        self._store.add_scan(scan)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def complete_scan(self, scan: Any, *args: Any, **kwargs: Any) -> None:
        if scan.state is ScanState.SUCCEEDED:
            raise StoreUnavailable("the database went away")
        self._store.complete_scan(scan, *args, **kwargs)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EvidenceStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    try:
        yield opened
    finally:
        opened.close()


def _gate(store: Any, tmp_path: Path) -> Gate:
    # Imports need the scan runner's parser and recorder, not any scanner.
    jobs = ScanJobs(store, {}, secret_key=os.urandom(32), workdir=tmp_path, clock=lambda: NOW)
    return Gate(store, clock=lambda: NOW, scans=jobs)


def _import(core: Gate) -> Any:
    return core.import_report(
        ArtifactSelector(digest=DIGEST),
        tool="gitleaks",
        report=REPORT,
        target=None,
        kind=ArtifactKind.IMAGE,
        name="registry.example/app",
    )


def test_an_imported_report_the_store_refuses_leaves_its_scan_failed_not_running(
    store: EvidenceStore, tmp_path: Path
) -> None:
    failing = _CompletionFails(store)
    with pytest.raises(StoreUnavailable):
        _import(_gate(failing, tmp_path))
    (scan_id,) = failing.added
    found = store.get_scan(scan_id)
    assert found is not None
    assert found.state is ScanState.FAILED
    assert found.error == "the report was not stored: the database went away"
    assert found.finished_at == NOW


def test_an_imported_report_is_stored_as_a_succeeded_scan(store: EvidenceStore, tmp_path: Path) -> None:
    scan = _import(_gate(store, tmp_path))
    assert scan.state is ScanState.SUCCEEDED
    stored = store.get_scan(scan.id)
    assert stored is not None
    assert stored.state is ScanState.SUCCEEDED
