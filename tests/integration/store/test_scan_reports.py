"""Raw scan reports stored with their scan, and scans left unfinished by a stop."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from gate.errors import InvalidArgument
from gate.model import Finding, Scan, ScanState, SeverityCounts
from gate.store import EvidenceStore, ScanReport
from tests.integration.store.test_store_suite import T0, make_finding, make_scan, new_artifact


def complete(
    store: EvidenceStore, scan: Scan, findings: list[Finding], report: ScanReport | None = None
) -> Scan:
    """Complete a stored scan as succeeded with ``findings`` and ``report``."""
    done = replace(
        scan,
        state=ScanState.SUCCEEDED,
        finished_at=scan.created_at + timedelta(minutes=1),
        finding_count=len(findings),
        counts=SeverityCounts.of(f.severity for f in findings),
    )
    store.complete_scan(done, findings, report)
    return done


def test_a_report_is_stored_with_the_scan_and_read_back_whole(store: EvidenceStore) -> None:
    digest = new_artifact(store)
    scan = make_scan(digest)
    store.add_scan(scan)
    document = json.dumps({"Results": [{"Target": f"file{i}", "Secrets": []} for i in range(2000)]}).encode()
    findings = [make_finding(scan, "fp-1")]
    done = complete(store, scan, findings, report=ScanReport("trivy", document))
    assert store.get_scan(scan.id) == done
    assert store.get_scan_report(scan.id) == ScanReport("trivy", document)


def test_a_scan_without_a_report_has_none(store: EvidenceStore) -> None:
    digest = new_artifact(store)
    scan = make_scan(digest)
    store.add_scan(scan)
    complete(store, scan, [])
    assert store.get_scan_report(scan.id) is None
    assert store.get_scan_report("00000000-0000-4000-8000-000000000000") is None


def test_a_report_needs_its_format(store: EvidenceStore) -> None:
    digest = new_artifact(store)
    scan = make_scan(digest)
    store.add_scan(scan)
    with pytest.raises(InvalidArgument, match=r"report\.format"):
        complete(store, scan, [], report=ScanReport("", b"{}"))
    assert store.get_scan(scan.id) == scan


def test_scans_whose_gate_stopped_are_failed_with_the_reason(store: EvidenceStore) -> None:
    digest = new_artifact(store)
    queued = make_scan(digest, state=ScanState.QUEUED)
    running = make_scan(digest, state=ScanState.RUNNING)
    alive = make_scan(digest, state=ScanState.RUNNING)
    finished = make_scan(digest)
    for scan in (queued, running, alive, finished):
        store.add_scan(scan)
    complete(store, finished, [])
    # The gate running "alive" keeps its lease fresh; the others' gate stopped.
    store.touch_scans([alive.id, finished.id], T0 + timedelta(minutes=9))
    now = T0 + timedelta(minutes=10)
    failed = store.fail_stale_scans(T0 + timedelta(minutes=5), "the gate running this scan stopped", now)
    assert sorted(failed) == sorted([queued.id, running.id])
    for scan_id in failed:
        stored = store.get_scan(scan_id)
        assert stored is not None
        assert stored.state is ScanState.FAILED
        assert stored.error == "the gate running this scan stopped"
        assert stored.finished_at == now
    assert store.get_scan(alive.id) == alive
    assert store.get_scan(finished.id).state is ScanState.SUCCEEDED  # type: ignore[union-attr]
    assert store.fail_stale_scans(T0 + timedelta(minutes=5), "again", now) == ()
