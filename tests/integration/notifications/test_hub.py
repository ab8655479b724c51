"""What gate announces: denied decisions, new critical findings, failed scans, expiring waivers."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from gate.config import NotificationSettings, NotificationWebhook
from gate.config import ScannerProvider as ProviderSettings
from gate.core import ArtifactSelector, Gate
from gate.decisions import parse_review
from gate.model import ArtifactKind, ScanState, ScanTarget, TargetKind
from gate.notifications import NotificationHub, Notifier, RetryPolicy, StoreWaivers, Webhook
from gate.scan_jobs import ScanJobs
from gate.server._observe import count_scan_failure
from gate.store import EvidenceStore, open_store
from gate.waivers import Waiver
from tests.integration.notifications.receiver import Receiver, receiver
from tests.integration.scan_jobs_support import WaitingProvider

POLICIES = Path(__file__).resolve().parents[2] / "assets" / "audit" / "policies.yaml"
DIGEST = "sha256:" + "ab" * 32
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def trivy(*vulnerabilities: tuple[str, str, str]) -> bytes:
    return json.dumps(
        {
            "SchemaVersion": 2,
            "ArtifactName": "registry.example/app:1",
            "ArtifactType": "container_image",
            "Results": [
                {
                    "Target": "app (debian 12)",
                    "Class": "os-pkgs",
                    "Type": "debian",
                    "Vulnerabilities": [
                        {
                            "VulnerabilityID": cve,
                            "PkgName": package,
                            "InstalledVersion": "1.0",
                            "FixedVersion": "1.1",
                            "Severity": severity,
                            "Title": f"{cve} in {package}",
                        }
                        for cve, package, severity in vulnerabilities
                    ],
                }
            ],
        }
    ).encode()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EvidenceStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    yield opened
    opened.close()


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


@pytest.fixture
def world(store: EvidenceStore, hook: Receiver, tmp_path: Path) -> Iterator[tuple[Gate, NotificationHub]]:
    report = tmp_path / "missing-report.json"  # the waiting provider fails reading it
    provider = WaitingProvider("waiting", ProviderSettings(options={"seconds": "0", "report": str(report)}))
    jobs = ScanJobs(
        store, {"waiting": provider}, secret_key=os.urandom(32), workdir=tmp_path, clock=lambda: NOW
    )
    core = Gate(store, clock=lambda: NOW, scans=jobs, policy_sources=[POLICIES])
    notifier = Notifier([Webhook(hook.url)], retry=RetryPolicy(max_attempts=2, backoff=0.05))
    hub = NotificationHub(notifier, store, clock=lambda: NOW)
    core.decision_listeners.append(hub.on_decision)
    jobs.finish_listeners.extend([hub.on_scan, count_scan_failure])
    hub.start()
    yield core, hub
    hub.close()
    jobs.close()


def review(image: str, name: str) -> bytes:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": {"owner": "team-a"}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }
    request = {
        "uid": f"req-{name}",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "namespace": "shop",
        "name": name,
        "operation": "CREATE",
        "userInfo": {"username": "ci-bot"},
        "object": pod,
    }
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    ).encode()


def test_a_denied_decision_is_announced_with_stage_subject_and_failing_rules(
    world: tuple[Gate, NotificationHub], hook: Receiver
) -> None:
    core, _ = world
    assert core.review(parse_review(review("r/app:1.0", "fine"))).decision.allowed
    decision = core.review(parse_review(review("r/app:latest", "bad"))).decision
    assert not decision.allowed
    (received,) = hook.wait_for(1)
    time.sleep(0.2)
    assert len(hook.received) == 1  # the allowed one is not announced
    body = received.body
    assert body["event"] == "deny"
    assert body["title"] == "gate denied Pod/shop/bad at stage admission"
    assert body["facts"] == {
        "stage": "admission",
        "subject": "Pod/shop/bad",
        "decision": decision.id,
        "caller": "ci-bot",
    }
    (failing,) = [r for r in decision.results if r.rule == "no-latest-tag"]
    assert body["details"]["failing_rules"] == [
        {
            "policy": "disallow-latest-tag",
            "rule": "no-latest-tag",
            "result": "fail",
            "message": failing.message,
        }
    ]
    assert body["items"][0].startswith("disallow-latest-tag/no-latest-tag: validation error: the :latest tag")


def test_only_critical_findings_the_previous_scan_did_not_report_are_announced(
    world: tuple[Gate, NotificationHub], hook: Receiver
) -> None:
    core, _ = world

    def imported(report: bytes) -> str:
        scan = core.import_report(
            ArtifactSelector(digest=DIGEST),
            tool="trivy",
            report=report,
            target=None,
            kind=ArtifactKind.IMAGE,
            name="registry.example/app",
        )
        return scan.id

    first = imported(trivy(("CVE-2026-0001", "openssl", "CRITICAL"), ("CVE-2026-0002", "zlib", "HIGH")))
    (announced,) = hook.wait_for(1)
    assert announced.body["event"] == "critical_finding"
    assert announced.body["details"]["scan_id"] == first
    assert [f["rule_id"] for f in announced.body["details"]["findings"]] == ["CVE-2026-0001"]

    # The same critical again, a high one fixed: nothing new to announce.
    imported(trivy(("CVE-2026-0001", "openssl", "CRITICAL")))
    # A new critical next to the known one: only the new one is announced.
    third = imported(trivy(("CVE-2026-0001", "openssl", "CRITICAL"), ("CVE-2026-0003", "curl", "CRITICAL")))
    _, second_announcement = hook.wait_for(2)
    time.sleep(0.2)
    assert len(hook.received) == 2
    details = second_announcement.body["details"]
    assert details["scan_id"] == third
    assert details["new_critical_count"] == 1
    assert details["findings"] == [
        {
            "rule_id": "CVE-2026-0003",
            "title": "CVE-2026-0003 in curl",
            "kind": "vulnerability",
            "fix_available": True,
            "where": "curl 1.0",
        }
    ]
    assert second_announcement.body["title"] == f"1 new critical finding in {DIGEST}"


def test_a_failed_scan_is_counted_by_scanner(world: tuple[Gate, NotificationHub], tmp_path: Path) -> None:
    core, _ = world
    before = REGISTRY.get_sample_value("gate_scan_failures_total", {"tool": "waiting"}) or 0.0
    (scan,) = core.start_scan(
        ArtifactSelector(digest=DIGEST), ScanTarget(TargetKind.FILESYSTEM, str(tmp_path)), ["waiting"], {}
    )
    deadline = time.monotonic() + 10
    while not core.get_scan(scan.id).state.terminal:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert core.get_scan(scan.id).state is ScanState.FAILED
    assert REGISTRY.get_sample_value("gate_scan_failures_total", {"tool": "waiting"}) == before + 1


def waiver(waiver_id: str, owner: str, expires: timedelta, revoked: bool = False) -> Waiver:
    return Waiver(
        id=waiver_id,
        policy="disallow-latest-tag",
        rule="no-latest-tag",
        namespace="shop",
        image="",
        digest="",
        owner=owner,
        reason="the fix ships next sprint",
        created_at=NOW - timedelta(days=10),
        created_by="alice",
        expires_at=NOW + expires,
        revoked_at=NOW - timedelta(days=1) if revoked else None,
        revoked_by="bob" if revoked else "",
    )


def test_waivers_ending_within_the_window_are_announced_once(store: EvidenceStore, hook: Receiver) -> None:
    soon = "0a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
    store.add_waiver(waiver(soon, "team-a", timedelta(days=2)))
    store.add_waiver(waiver("1b4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", "team-b", timedelta(days=30)))
    store.add_waiver(
        waiver("2c4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", "team-c", timedelta(days=1), revoked=True)
    )
    store.add_waiver(waiver("3d4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", "team-d", -timedelta(hours=1)))
    hub = NotificationHub(
        Notifier([Webhook(hook.url, format="slack")]),
        store,
        clock=lambda: NOW,
        waivers=StoreWaivers(store),
        waiver_window=timedelta(days=7),
        waiver_interval=0.1,
    )
    hub.start()
    (received,) = hook.wait_for(1)
    time.sleep(0.4)  # several more checks: the same waiver is not announced again
    assert hub.check_waivers() == 0
    hub.close()
    assert len(hook.received) == 1
    assert received.body["text"] == f"waiver {soon} for disallow-latest-tag/no-latest-tag expires in 48 h"
    facts: Any = received.body["blocks"][1]["text"]["text"]
    assert "*owner:* team-a" in facts
    assert received.body["blocks"][2]["text"]["text"] == "• the fix ships next sprint"


def test_a_webhook_worker_hub_leaves_waivers_ending_to_the_main_process(
    store: EvidenceStore, hook: Receiver
) -> None:
    # Each process of a pod has a hub; only the main process's checks the waivers, so that a
    # waiver ending is announced once per pod, not once per process.
    store.add_waiver(waiver("0a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", "team-a", timedelta(days=2)))
    settings = NotificationSettings(
        webhooks=(NotificationWebhook(url=hook.url, format="slack"),), waiver_check_interval=0.1
    )
    worker = NotificationHub.from_settings(settings, store, clock=lambda: NOW, check_waivers=False)
    assert worker is not None
    worker.start()
    time.sleep(0.4)  # several intervals
    worker.close()
    assert hook.received == []
    main = NotificationHub.from_settings(settings, store, clock=lambda: NOW)
    assert main is not None
    main.start()
    hook.wait_for(1)
    main.close()
