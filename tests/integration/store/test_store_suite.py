"""The evidence store's behaviour, proved on SQLite and on PostgreSQL alike.

Every test that takes the ``store`` or ``store_url`` fixture runs once per
backend (see conftest.py). Tests without either are about code that is the
same for both (URL handling, the migration head).
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gate
from gate.errors import Conflict, InvalidArgument, NotFound, StoreUnavailable
from gate.model import (
    Artifact,
    ArtifactKind,
    AttestationResult,
    Component,
    Decision,
    DecisionTimings,
    DecodedJson,
    EnforcementAction,
    Finding,
    FindingKind,
    FindingStatus,
    Location,
    Package,
    RuleOutcome,
    RuleResult,
    Sbom,
    SbomFormat,
    Scan,
    ScanState,
    ScanTarget,
    Severity,
    SeverityCounts,
    SignatureResult,
    TargetKind,
    Verification,
)
from gate.store import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ComponentQuery,
    DecisionQuery,
    EvidenceStore,
    FindingQuery,
    SqlStore,
    open_store,
)
from gate.store._engine import create_store_engine, parse_store_url
from gate.store._migrate import HEAD_REVISION, alembic_config, current_revisions
from gate.store._schema import decisions, metadata
from tests.conftest import drop_postgres_schema, fresh_postgres_url

UTC_PLUS_2 = timezone(timedelta(hours=2))
T0 = datetime(2024, 5, 1, 14, 30, 15, 123456, tzinfo=UTC_PLUS_2)
SQL_WORDS = ("SELECT", "INSERT", "UPDATE", "DELETE", "FROM", "WHERE", "VALUES", "[SQL", "Traceback")
CLOSED_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=1"
_ids = itertools.count()


def unique(prefix: str) -> str:
    """An id no other call in this process returns."""
    return f"{prefix}-{os.getpid()}-{next(_ids)}"


def digest_of(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def new_artifact(store: EvidenceStore, *aliases: str) -> str:
    digest = digest_of(unique("artifact"))
    store.upsert_artifact(Artifact(digest=digest, kind=ArtifactKind.IMAGE, first_seen=T0, aliases=aliases))
    return digest


def make_scan(
    digest: str,
    *,
    scanner: str = "trivy",
    state: ScanState = ScanState.RUNNING,
    created_at: datetime = T0,
    scan_id: str = "",
) -> Scan:
    return Scan(
        id=scan_id or unique("scan"),
        artifact_digest=digest,
        scanner=scanner,
        target=ScanTarget(kind=TargetKind.IMAGE, location="registry.example/app:1"),
        state=state,
        created_at=created_at,
    )


def make_finding(
    scan: Scan,
    fingerprint: str,
    severity: Severity = Severity.HIGH,
    kind: FindingKind = FindingKind.VULNERABILITY,
) -> Finding:
    return Finding(
        fingerprint=fingerprint,
        scan_id=scan.id,
        scanner=scan.scanner,
        kind=kind,
        rule_id=f"CVE-{fingerprint}",
        title=f"finding {fingerprint}",
        severity=severity,
    )


def complete(store: EvidenceStore, scan: Scan, findings: list[Finding], **changes: Any) -> Scan:
    """Add ``scan`` as running, then complete it as succeeded with ``findings``."""
    store.add_scan(scan)
    done = replace(
        scan,
        state=ScanState.SUCCEEDED,
        finished_at=scan.created_at + timedelta(minutes=1),
        finding_count=len(findings),
        counts=SeverityCounts.of(f.severity for f in findings),
        **changes,
    )
    store.complete_scan(done, findings)
    return done


CRITICAL_FOUND = RuleResult(
    policy="no-critical",
    rule="check-scan",
    outcome=RuleOutcome.FAIL,
    message="1 critical",
    remediation="upgrade openssl",
    action=EnforcementAction.ENFORCE,
    resource="Pod/default/app",
)


def make_decision(decided_at: datetime, *digests: str, **fields: Any) -> Decision:
    values: dict[str, Any] = {
        "id": unique("decision"),
        "allowed": True,
        "message": "allowed",
        "stage": "admission",
        "decided_at": decided_at,
        "artifact_digests": digests,
    }
    values.update(fields)
    return Decision(**values)


def make_sbom(digest: str, created_at: datetime = T0, sbom_id: str = "") -> Sbom:
    return Sbom(
        id=sbom_id or unique("sbom"),
        artifact_digest=digest,
        format=SbomFormat.CYCLONEDX_JSON,
        spec_version="1.6",
        generator="syft 1.18.1",
        created_at=created_at,
        component_count=0,
        document_digest=digest_of("document"),
    )


def assert_utc(moment: datetime | None) -> None:
    assert moment is not None
    assert moment.tzinfo is not None
    assert moment.utcoffset() == timedelta(0)


def walk_decisions(store: EvidenceStore, query: DecisionQuery) -> list[Decision]:
    seen: list[Decision] = []
    token = ""
    while True:
        page = store.list_decisions(replace(query, page_token=token))
        assert len(page.items) <= query.page_size
        seen.extend(page.items)
        if not page.next_token:
            return seen
        assert page.items, "a page with a next token must not be empty"
        token = page.next_token


# -- round trips --------------------------------------------------------------------------


def test_every_record_round_trips_with_all_fields(store: EvidenceStore) -> None:
    digest = digest_of(unique("round-trip"))
    artifact = Artifact(
        digest=digest,
        kind=ArtifactKind.SOURCE,
        first_seen=T0,
        name="github.com/example/app",
        aliases=("example/app:1.0", "example/app:latest"),
    )
    stored = store.upsert_artifact(artifact)
    assert stored == artifact
    assert store.get_artifact(digest) == artifact
    assert_utc(stored.first_seen)

    scan = Scan(
        id=unique("scan"),
        artifact_digest=digest,
        scanner="trivy",
        target=ScanTarget(kind=TargetKind.REPOSITORY, location="https://example.test/app.git"),
        state=ScanState.RUNNING,
        created_at=T0,
        scanner_version="0.76.0",
        started_at=T0 + timedelta(seconds=1),
        imported=True,
    )
    store.add_scan(scan)
    assert store.get_scan(scan.id) == scan
    findings = [
        Finding(
            fingerprint="fp-full",
            scan_id=scan.id,
            scanner="trivy",
            kind=FindingKind.SECRET,
            rule_id="aws-access-key",
            title="AWS key",
            severity=Severity.CRITICAL,
            description="An AWS key — in a file ✓",
            package=Package(
                name="openssl",
                version="3.0.1",
                purl="pkg:deb/debian/openssl@3.0.1",
                fixed_versions=("3.0.2", "3.1.0"),
            ),
            location=Location(
                path="src/app.py", start_line=3, end_line=4, layer_digest=digest_of("layer"), commit="a" * 40
            ),
            fix_available=True,
            references=("https://a.example", "https://b.example"),
            cvss_score=9.8,
            redacted_match="AKIA****************",
            tool_severity="CRITICAL",
            status=FindingStatus.WILL_NOT_FIX,
        ),
        make_finding(scan, "fp-bare", Severity.UNKNOWN),
    ]
    done = Scan(
        id=scan.id,
        artifact_digest=digest,
        scanner="trivy",
        target=scan.target,
        state=ScanState.FAILED,
        created_at=T0,
        scanner_version="0.76.0",
        error="exit status 2",
        started_at=scan.started_at,
        finished_at=T0 + timedelta(minutes=2),
        counts=SeverityCounts(critical=1, unknown=1),
        finding_count=2,
        imported=True,
    )
    store.complete_scan(done, findings)
    got = store.get_scan(scan.id)
    assert got == done
    assert got is not None
    for moment in (got.created_at, got.started_at, got.finished_at):
        assert_utc(moment)
    page = store.list_findings(FindingQuery(scan_id=scan.id))
    assert page.findings == tuple(findings)
    assert page.counts == SeverityCounts(critical=1, unknown=1)
    assert page.next_token == ""

    sbom = Sbom(
        id=unique("sbom"),
        artifact_digest=digest,
        format=SbomFormat.SPDX_JSON,
        spec_version="2.3",
        generator="syft 1.18.1",
        created_at=T0,
        component_count=2,
        document_digest=digest_of("doc"),
    )
    document = b'{"spdxVersion": "SPDX-2.3"}\x00\xff'
    components = [
        Component(
            type="library",
            name="Log4J-Core",
            version="2.14.1",
            group="org.apache.logging.log4j",
            purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar",
            licenses=("Apache-2.0", "MIT"),
        ),
        Component(type="application", name="app"),
    ]
    store.add_sbom(sbom, document, components)
    assert store.get_sbom(sbom.id) == sbom
    assert_utc(store.get_sbom(sbom.id).created_at)  # type: ignore[union-attr]
    assert store.get_sbom_document(sbom.id) == document
    assert store.sbom_components(sbom.id) == tuple(components)

    verification = Verification(
        id=unique("verification"),
        artifact_digest=digest,
        verified=False,
        verified_at=T0,
        signatures=(
            SignatureResult(verified=True, signer="ci@example.test", tlog_index=42),
            SignatureResult(verified=False, signer="", error="no matching signature"),
        ),
        attestations=(
            AttestationResult(predicate_type="https://slsa.dev/provenance/v1", verified=True, signer="ci"),
            AttestationResult(predicate_type="https://cyclonedx.org/bom", verified=False, error="expired"),
        ),
        message="1 of 2 signatures verified",
    )
    store.add_verification(verification)
    assert store.get_verification(verification.id) == verification
    assert store.latest_verification(digest) == verification

    decision = Decision(
        id=unique("decision"),
        allowed=False,
        message="denied: critical vulnerabilities",
        stage="admission",
        decided_at=T0,
        results=(
            CRITICAL_FOUND,
            RuleResult(
                policy="signed", rule="verify", outcome=RuleOutcome.SKIP, action=EnforcementAction.AUDIT
            ),
        ),
        policy_bundle_digest=digest_of("bundle"),
        evidence_ids=(scan.id, sbom.id, verification.id),
        caller="system:serviceaccount:kube-system:admission",
        artifact_digests=(digest, digest_of("other")),
        timings=DecisionTimings(total=0.125, policy=0.05, evidence=0.0625),
        request={
            "kind": "AdmissionReview",
            "images": ["a", "b"],
            "n": 3,
            "ratio": 0.5,
            "ok": True,
            "none": None,
            "nested": {"ünïcode": "✓"},
        },
        signature=b"\x00\x01sig\xff",
    )
    store.add_decision(decision)
    got_decision = store.get_decision(decision.id)
    assert got_decision == decision
    assert got_decision is not None
    assert_utc(got_decision.decided_at)


def test_rule_results_stored_as_objects_before_they_were_lists_read_back_the_same(
    store: EvidenceStore, store_url: str
) -> None:
    decision = make_decision(T0, id=unique("objects"), results=(CRITICAL_FOUND,))
    store.add_decision(decision)
    engine = create_store_engine(parse_store_url(store_url))
    try:
        with engine.begin() as conn:
            written = conn.execute(
                sa.select(decisions.c.results).where(decisions.c.id == decision.id)
            ).scalar()
            assert written == [
                [
                    "no-critical",
                    "check-scan",
                    "fail",
                    "1 critical",
                    "upgrade openssl",
                    "Enforce",
                    "Pod/default/app",
                ]
            ]
            earlier = [
                dict(
                    zip(
                        ("policy", "rule", "outcome", "message", "remediation", "action", "resource"),
                        written[0],
                        strict=True,
                    )
                )
            ]
            conn.execute(sa.update(decisions).where(decisions.c.id == decision.id).values(results=earlier))
    finally:
        engine.dispose()
    assert store.get_decision(decision.id) == decision


def test_get_of_unknown_ids_returns_none(store: EvidenceStore) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    assert store.get_artifact(digest_of(unknown)) is None
    assert store.resolve_alias("registry.example/unknown:1") is None
    assert store.get_scan(unknown) is None
    assert store.latest_scans(digest_of(unknown)) == ()
    assert store.get_sbom(unknown) is None
    assert store.get_sbom_document(unknown) is None
    assert store.sbom_components(unknown) == ()
    assert store.get_verification(unknown) is None
    assert store.latest_verification(digest_of(unknown)) is None
    assert store.get_decision(unknown) is None
    empty = store.list_findings(FindingQuery(scan_id=unknown))
    assert (empty.findings, empty.counts, empty.next_token) == ((), SeverityCounts(), "")
    assert store.list_findings(FindingQuery(artifact_digest=digest_of(unknown))).findings == ()


def test_ping_answers(store: EvidenceStore) -> None:
    store.ping()


# -- artifacts and aliases ------------------------------------------------------------------


def test_upsert_artifact_merges_aliases_and_keeps_earliest_first_seen(store: EvidenceStore) -> None:
    digest = digest_of(unique("merge"))
    first = store.upsert_artifact(
        Artifact(
            digest=digest, kind=ArtifactKind.IMAGE, first_seen=T0, name="app", aliases=("app:2", "app:1")
        )
    )
    assert first.aliases == ("app:1", "app:2")
    later = store.upsert_artifact(
        Artifact(
            digest=digest,
            kind=ArtifactKind.IMAGE,
            first_seen=T0 + timedelta(days=1),
            aliases=("app:3", "app:1"),
        )
    )
    assert later == Artifact(
        digest=digest, kind=ArtifactKind.IMAGE, first_seen=T0, name="app", aliases=("app:1", "app:2", "app:3")
    )
    earlier = store.upsert_artifact(
        Artifact(digest=digest, kind=ArtifactKind.IMAGE, first_seen=T0 - timedelta(hours=1), name="renamed")
    )
    assert earlier.first_seen == T0 - timedelta(hours=1)
    assert earlier.name == "renamed"
    assert earlier.aliases == ("app:1", "app:2", "app:3")
    assert store.get_artifact(digest) == earlier
    assert all(store.resolve_alias(alias) == digest for alias in earlier.aliases)


def test_alias_repointed_to_a_new_digest_moves_there(store: EvidenceStore) -> None:
    old = new_artifact(store, "app:latest", "app:1")
    new = new_artifact(store, "app:latest")
    assert store.resolve_alias("app:latest") == new
    assert store.resolve_alias("app:1") == old
    assert store.get_artifact(old).aliases == ("app:1",)  # type: ignore[union-attr]
    assert store.get_artifact(new).aliases == ("app:latest",)  # type: ignore[union-attr]


# -- conflicts and invalid input -------------------------------------------------------------


def test_duplicate_ids_raise_conflict_and_keep_the_stored_record(store: EvidenceStore) -> None:
    digest = new_artifact(store)
    scan = make_scan(digest)
    store.add_scan(scan)
    with pytest.raises(Conflict, match=scan.id):
        store.add_scan(make_scan(digest, scanner="grype", scan_id=scan.id))
    assert store.get_scan(scan.id) == scan

    sbom = make_sbom(digest)
    store.add_sbom(sbom, b"first", [Component(type="library", name="a")])
    with pytest.raises(Conflict, match=sbom.id):
        store.add_sbom(sbom, b"second", [Component(type="library", name="b")])
    assert store.get_sbom_document(sbom.id) == b"first"
    assert store.sbom_components(sbom.id) == (Component(type="library", name="a"),)

    verification = Verification(id=unique("v"), artifact_digest=digest, verified=True, verified_at=T0)
    store.add_verification(verification)
    with pytest.raises(Conflict, match=verification.id):
        store.add_verification(verification)

    decision = make_decision(T0, digest)
    store.add_decision(decision)
    with pytest.raises(Conflict, match=decision.id):
        store.add_decision(make_decision(T0, digest_of("other"), id=decision.id))
    assert store.get_decision(decision.id) == decision
    assert store.list_decisions(DecisionQuery(artifact_digest=digest_of("other"))).items == ()


def test_add_scan_of_an_unknown_artifact_raises_not_found(store: EvidenceStore) -> None:
    missing = digest_of(unique("missing"))
    with pytest.raises(NotFound, match=missing):
        store.add_scan(make_scan(missing))


def test_terminal_scans_never_change(store: EvidenceStore) -> None:
    digest = new_artifact(store)
    scan = make_scan(digest, state=ScanState.QUEUED)
    store.add_scan(scan)
    running = replace(scan, state=ScanState.RUNNING, started_at=T0)
    store.update_scan(running)
    assert store.get_scan(scan.id) == running
    cancelled = replace(scan, state=ScanState.CANCELLED)
    store.update_scan(cancelled)
    with pytest.raises(Conflict, match="cancelled"):
        store.update_scan(running)
    with pytest.raises(Conflict, match="cancelled"):
        store.complete_scan(
            replace(scan, state=ScanState.SUCCEEDED),
            [make_finding(scan, "late")],
        )
    assert store.get_scan(scan.id) == cancelled
    assert store.list_findings(FindingQuery(scan_id=scan.id)).findings == ()


def test_scan_updates_of_unknown_scans_raise_not_found(store: EvidenceStore) -> None:
    scan = make_scan(new_artifact(store), state=ScanState.SUCCEEDED)
    with pytest.raises(NotFound, match=scan.id):
        store.update_scan(scan)
    with pytest.raises(NotFound, match=scan.id):
        store.complete_scan(scan, [])


def test_complete_scan_rejects_bad_input_naming_the_field(store: EvidenceStore) -> None:
    scan = make_scan(new_artifact(store))
    store.add_scan(scan)
    with pytest.raises(InvalidArgument) as raised:
        store.complete_scan(scan, [])
    assert raised.value.field == "state"
    done = replace(scan, state=ScanState.SUCCEEDED)
    other = make_scan(scan.artifact_digest)
    with pytest.raises(InvalidArgument) as raised:
        store.complete_scan(done, [make_finding(scan, "a"), make_finding(other, "b")])
    assert raised.value.field == "findings[1].scan_id"
    with pytest.raises(InvalidArgument) as raised:
        store.complete_scan(done, [make_finding(scan, "a"), make_finding(scan, "a")])
    assert raised.value.field == "findings[1].fingerprint"
    assert store.get_scan(scan.id) == scan


def test_naive_datetimes_are_rejected_naming_the_field(store: EvidenceStore) -> None:
    naive = datetime(2024, 1, 1, 12, 0)
    with pytest.raises(InvalidArgument) as raised:
        store.upsert_artifact(Artifact(digest=digest_of("naive"), kind=ArtifactKind.FILE, first_seen=naive))
    assert raised.value.field == "first_seen"
    with pytest.raises(InvalidArgument) as raised:
        store.add_decision(make_decision(naive))
    assert raised.value.field == "decided_at"
    with pytest.raises(InvalidArgument) as raised:
        store.list_decisions(DecisionQuery(since=naive))
    assert raised.value.field == "since"


def test_decision_request_must_be_json_compatible(store: EvidenceStore) -> None:
    with pytest.raises(InvalidArgument) as raised:
        store.add_decision(make_decision(T0, request={"when": T0}))
    assert raised.value.field == "request"
    with pytest.raises(InvalidArgument) as raised:
        store.add_decision(make_decision(T0, request={"ratio": float("nan")}))
    assert raised.value.field == "request"


def test_a_request_decoded_from_json_text_is_stored_and_read_back_unchanged(store: EvidenceStore) -> None:
    # The review path's requests (DecodedJson) skip the non-finite check; nulls, nesting and
    # non-ASCII text must still come back exactly.
    text = rb'{"object":{"metadata":{"creationTimestamp":null,"name":"caf\u00e9"},"n":[1,2.5,-0.0,null]}}'
    request = DecodedJson(orjson.loads(text))
    decision = make_decision(T0, id=unique("decoded"), request=request)
    store.add_decision(decision)
    stored = store.get_decision(decision.id)
    assert stored is not None
    assert stored.request == orjson.loads(text)


# -- pagination --------------------------------------------------------------------------------

TIES = [T0, T0 + timedelta(microseconds=1), T0 + timedelta(hours=1)]
KEYS = st.text(alphabet="abzABZ019-_.", min_size=1, max_size=6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(KEYS, st.sampled_from(TIES)), min_size=0, max_size=14, unique_by=lambda r: r[0]),
    page_size=st.integers(min_value=1, max_value=5),
)
def test_decision_pages_walk_every_row_exactly_once_despite_timestamp_ties(
    store: EvidenceStore, rows: list[tuple[str, datetime]], page_size: int
) -> None:
    digest = digest_of(unique("paging"))
    prefix = unique("d")
    for key, decided_at in rows:
        store.add_decision(make_decision(decided_at, digest, id=f"{prefix}/{key}"))
    walked = walk_decisions(store, DecisionQuery(artifact_digest=digest, page_size=page_size))
    expected = sorted(((at, f"{prefix}/{key}") for key, at in rows), reverse=True)
    assert [(d.decided_at, d.id) for d in walked] == expected


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(KEYS, st.sampled_from(list(Severity))), max_size=14, unique_by=lambda r: r[0]),
    page_size=st.integers(min_value=1, max_value=5),
    min_severity=st.sampled_from(list(Severity)),
)
def test_finding_pages_walk_every_row_exactly_once_most_severe_first(
    store: EvidenceStore, rows: list[tuple[str, Severity]], page_size: int, min_severity: Severity
) -> None:
    scan = make_scan(new_artifact(store))
    complete(store, scan, [make_finding(scan, key, severity) for key, severity in rows])
    walked: list[Finding] = []
    token = ""
    while True:
        page = store.list_findings(
            FindingQuery(scan_id=scan.id, min_severity=min_severity, page_size=page_size, page_token=token)
        )
        kept = [severity for _, severity in rows if severity >= min_severity]
        assert page.counts == SeverityCounts.of(kept)
        walked.extend(page.findings)
        if not page.next_token:
            break
        token = page.next_token
    expected = sorted((-s, key) for key, s in rows if s >= min_severity)
    assert [(-f.severity, f.fingerprint) for f in walked] == expected


def test_sbom_pages_newest_first_with_ties_by_id(store: EvidenceStore) -> None:
    digest = new_artifact(store)
    other = new_artifact(store)
    made = [make_sbom(digest, TIES[i % 3], sbom_id=f"sbom-{i:02d}-{unique('s')}") for i in range(7)]
    for sbom in made:
        store.add_sbom(sbom, b"{}", [])
    store.add_sbom(make_sbom(other), b"{}", [])
    walked: list[Sbom] = []
    token = ""
    while True:
        page = store.list_sboms(digest, page_size=3, page_token=token)
        walked.extend(page.items)
        token = page.next_token
        if not token:
            break
    assert walked == sorted(made, key=lambda s: (s.created_at, s.id), reverse=True)
    everything = store.list_sboms(page_size=MAX_PAGE_SIZE)
    assert len(everything.items) == 8
    assert everything.next_token == ""


def test_component_pages_walk_every_match_once(store: EvidenceStore) -> None:
    digest = new_artifact(store)
    tag = unique("pagecomp").replace("-", "")
    for n in range(3):
        components = [Component(type="library", name=f"{tag}{i * 3 % 5}", version=str(n)) for i in range(5)]
        store.add_sbom(make_sbom(digest), b"{}", components)
    seen: list[tuple[str, str, str]] = []
    token = ""
    while True:
        page = store.search_components(ComponentQuery(name=f"{tag}*", page_size=4, page_token=token))
        seen.extend((m.component.name, m.sbom_id, m.component.version) for m in page.items)
        token = page.next_token
        if not token:
            break
    assert len(seen) == 15
    assert len(set(seen)) == 15
    assert [name for name, _, _ in seen] == sorted(name for name, _, _ in seen)


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "!!!",
        "eyJsIjoiZGVjaXNpb25zIn0",  # {"l":"decisions"} without a key
        "eyJsIjoic2JvbXMiLCJrIjpbMSwieCJdfQ",  # an SBOM token whose time is a number
        "bnVsbA",  # null
    ],
)
def test_malformed_page_token_raises_invalid_argument_naming_page_token(
    store: EvidenceStore, token: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        store.list_sboms(page_token=token)
    assert raised.value.field == "page_token"
    assert "expected" in raised.value.problem
    assert "got" in raised.value.problem


def test_a_token_of_another_listing_is_rejected(store: EvidenceStore) -> None:
    digest = new_artifact(store)
    for _ in range(2):
        store.add_decision(make_decision(T0, digest))
    token = store.list_decisions(DecisionQuery(artifact_digest=digest, page_size=1)).next_token
    assert token
    with pytest.raises(InvalidArgument) as raised:
        store.list_sboms(page_token=token)
    assert raised.value.field == "page_token"
    with pytest.raises(InvalidArgument) as raised:
        store.search_components(ComponentQuery(name="x", page_token=token))
    assert raised.value.field == "page_token"


def test_a_token_is_refused_with_other_filters_than_it_was_issued_for(store: EvidenceStore) -> None:
    digest = new_artifact(store)
    for stage in ("build", "build", "deploy"):
        store.add_decision(make_decision(T0, digest, stage=stage))
    first = DecisionQuery(artifact_digest=digest, stage="build", page_size=1)
    token = store.list_decisions(first).next_token
    assert token
    # The same filters resume the listing.
    assert len(store.list_decisions(replace(first, page_token=token)).items) == 1
    for changed in (
        replace(first, stage="deploy"),
        replace(first, stage=""),
        replace(first, allowed=True),
        replace(first, since=T0 - timedelta(days=1)),
        replace(first, artifact_digest=new_artifact(store)),
    ):
        with pytest.raises(InvalidArgument) as raised:
            store.list_decisions(replace(changed, page_token=token))
        assert raised.value.field == "page_token"
        assert "issued for other filters" in raised.value.problem
    # A different page size is not a different listing.
    assert len(store.list_decisions(replace(first, page_size=5, page_token=token)).items) == 1


def test_a_finding_or_component_token_is_bound_to_its_filters(store: EvidenceStore) -> None:
    scan = make_scan(new_artifact(store))
    complete(store, scan, [make_finding(scan, f"k{i}", Severity.HIGH) for i in range(3)])
    token = store.list_findings(FindingQuery(scan_id=scan.id, page_size=1)).next_token
    with pytest.raises(InvalidArgument, match="issued for other filters"):
        store.list_findings(
            FindingQuery(scan_id=scan.id, min_severity=Severity.CRITICAL, page_size=1, page_token=token)
        )
    digest = new_artifact(store)
    tag = unique("bound").replace("-", "")
    store.add_sbom(make_sbom(digest), b"{}", [Component(type="library", name=f"{tag}{i}") for i in range(3)])
    query = ComponentQuery(name=f"{tag}*", page_size=1)
    token = store.search_components(query).next_token
    with pytest.raises(InvalidArgument, match="issued for other filters"):
        store.search_components(replace(query, name=f"{tag}1*", page_token=token))
    ranged = replace(query, versions=lambda _e, _v: True, versions_key=">=1")
    with pytest.raises(InvalidArgument, match="issued for other filters"):
        store.search_components(replace(ranged, page_token=token))


@pytest.mark.parametrize("page_size", [-1, MAX_PAGE_SIZE + 1])
def test_page_size_out_of_range_raises_invalid_argument_naming_page_size(
    store: EvidenceStore, page_size: int
) -> None:
    calls: list[Callable[[], object]] = [
        lambda: store.list_sboms(page_size=page_size),
        lambda: store.list_decisions(DecisionQuery(page_size=page_size)),
        lambda: store.list_findings(FindingQuery(scan_id="x", page_size=page_size)),
        lambda: store.search_components(ComponentQuery(name="x", page_size=page_size)),
    ]
    for call in calls:
        with pytest.raises(InvalidArgument) as raised:
            call()
        assert raised.value.field == "page_size"


def test_page_size_zero_means_the_default(store: EvidenceStore) -> None:
    scan = make_scan(new_artifact(store))
    complete(store, scan, [make_finding(scan, f"fp{i:04d}") for i in range(DEFAULT_PAGE_SIZE + 1)])
    page = store.list_findings(FindingQuery(scan_id=scan.id, page_size=0))
    assert len(page.findings) == DEFAULT_PAGE_SIZE
    assert page.next_token
    assert page.counts.total == DEFAULT_PAGE_SIZE + 1
    rest = store.list_findings(FindingQuery(scan_id=scan.id, page_size=0, page_token=page.next_token))
    assert [f.fingerprint for f in rest.findings] == [f"fp{DEFAULT_PAGE_SIZE:04d}"]
    assert rest.next_token == ""


# -- findings -----------------------------------------------------------------------------------


def test_list_findings_filters_and_counts_cover_the_whole_filtered_result(store: EvidenceStore) -> None:
    scan = make_scan(new_artifact(store))
    made = [
        make_finding(scan, "c1", Severity.CRITICAL),
        make_finding(scan, "h1", Severity.HIGH),
        make_finding(scan, "h2", Severity.HIGH, FindingKind.SECRET),
        make_finding(scan, "m1", Severity.MEDIUM, FindingKind.MISCONFIGURATION),
        make_finding(scan, "l1", Severity.LOW),
        make_finding(scan, "i1", Severity.INFO, FindingKind.LICENSE),
    ]
    complete(store, scan, made)

    high = store.list_findings(FindingQuery(scan_id=scan.id, min_severity=Severity.HIGH, page_size=1))
    assert [f.fingerprint for f in high.findings] == ["c1"]
    assert high.counts == SeverityCounts(critical=1, high=2)
    assert high.next_token

    vulns = store.list_findings(FindingQuery(scan_id=scan.id, kinds=frozenset({FindingKind.VULNERABILITY})))
    assert [f.fingerprint for f in vulns.findings] == ["c1", "h1", "l1"]
    assert vulns.counts == SeverityCounts(critical=1, high=1, low=1)

    both = store.list_findings(
        FindingQuery(
            scan_id=scan.id,
            min_severity=Severity.MEDIUM,
            kinds=frozenset({FindingKind.SECRET, FindingKind.MISCONFIGURATION, FindingKind.LICENSE}),
        )
    )
    assert [f.fingerprint for f in both.findings] == ["h2", "m1"]
    assert both.counts == SeverityCounts(high=1, medium=1)


def test_list_findings_needs_exactly_one_of_scan_and_artifact(store: EvidenceStore) -> None:
    for query in (FindingQuery(), FindingQuery(scan_id="s", artifact_digest=digest_of("a"))):
        with pytest.raises(InvalidArgument) as raised:
            store.list_findings(query)
        assert raised.value.field == "scan_id"


def test_artifact_findings_come_from_the_latest_succeeded_scan_per_scanner(store: EvidenceStore) -> None:
    digest = new_artifact(store)
    old = make_scan(digest, scanner="trivy", created_at=T0)
    complete(store, old, [make_finding(old, "old-only"), make_finding(old, "shared")])
    new = make_scan(digest, scanner="trivy", created_at=T0 + timedelta(hours=1))
    new_done = complete(
        store, new, [make_finding(new, "shared", Severity.LOW), make_finding(new, "new-only")]
    )
    failed = make_scan(digest, scanner="trivy", created_at=T0 + timedelta(hours=2))
    store.add_scan(failed)
    store.update_scan(replace(failed, state=ScanState.FAILED))
    store.add_scan(make_scan(digest, scanner="trivy", created_at=T0 + timedelta(hours=3)))  # still running
    grype = make_scan(digest, scanner="grype", created_at=T0)
    grype_done = complete(store, grype, [make_finding(grype, "shared", Severity.CRITICAL)])
    elsewhere = make_scan(new_artifact(store), scanner="trivy", created_at=T0 + timedelta(days=1))
    complete(store, elsewhere, [make_finding(elsewhere, "elsewhere")])

    assert store.latest_scans(digest) == (grype_done, new_done)
    page = store.list_findings(FindingQuery(artifact_digest=digest))
    assert [(f.fingerprint, f.scan_id) for f in page.findings] == sorted(
        [("shared", grype.id), ("new-only", new.id), ("shared", new.id)],
        key=lambda pair: ({"shared": 0 if pair[1] == grype.id else 2, "new-only": 1}[pair[0]], pair[1]),
    )
    assert page.counts == SeverityCounts(critical=1, high=1, low=1)
    walked: list[Finding] = []
    token = ""
    while True:
        part = store.list_findings(FindingQuery(artifact_digest=digest, page_size=1, page_token=token))
        walked.extend(part.findings)
        token = part.next_token
        if not token:
            break
    assert walked == list(page.findings)


# -- component search ---------------------------------------------------------------------------


@pytest.fixture
def catalogue(store: EvidenceStore) -> tuple[EvidenceStore, str, str, str]:
    """A store with two SBOMs of one aliased artifact: the digest, the SBOM ids."""
    digest = new_artifact(store, "shop:1", "shop:latest")
    first = make_sbom(digest)
    second = make_sbom(digest, T0 + timedelta(days=1))
    store.add_sbom(
        first,
        b"{}",
        [
            Component(
                type="library",
                name="Log4J-Core",
                version="2.14.1",
                purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar#src",
            ),
            Component(
                type="library",
                name="log4j-api",
                version="2.14.1",
                purl="pkg:maven/org.apache.logging.log4j/log4j-api@2.14.1",
            ),
            Component(type="library", name="lib%odd", purl="pkg:npm/lib%25odd@1.0.0"),
            Component(type="library", name="lib_under", purl="pkg:npm/lib_under@1.0.0"),
            Component(type="library", name="libXunder"),
            Component(type="library", name="back\\slash"),
        ],
    )
    store.add_sbom(
        second,
        b"{}",
        [
            Component(
                type="library",
                name="LOG4J-CORE",
                version="2.17.1",
                purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.17.1",
            )
        ],
    )
    return store, digest, first.id, second.id


def names(page_items: tuple[Any, ...]) -> list[str]:
    return [m.component.name for m in page_items]


def test_search_components_matches_names_ignoring_case_with_wildcards(
    catalogue: tuple[EvidenceStore, str, str, str],
) -> None:
    store, digest, first, second = catalogue
    exact = store.search_components(ComponentQuery(name="log4j-core"))
    assert sorted((m.component.version, m.sbom_id) for m in exact.items) == [
        ("2.14.1", first),
        ("2.17.1", second),
    ]
    assert all(m.artifact_digest == digest for m in exact.items)
    assert all(m.artifact_aliases == ("shop:1", "shop:latest") for m in exact.items)
    assert sorted(names(store.search_components(ComponentQuery(name="LOG4J*")).items)) == [
        "LOG4J-CORE",
        "Log4J-Core",
        "log4j-api",
    ]
    assert sorted(names(store.search_components(ComponentQuery(name="*-C*e")).items)) == [
        "LOG4J-CORE",
        "Log4J-Core",
    ]
    assert names(store.search_components(ComponentQuery(name="log4j")).items) == []


def test_search_components_treats_like_metacharacters_literally(
    catalogue: tuple[EvidenceStore, str, str, str],
) -> None:
    store = catalogue[0]
    assert names(store.search_components(ComponentQuery(name="lib%odd")).items) == ["lib%odd"]
    assert names(store.search_components(ComponentQuery(name="lib%")).items) == []
    assert names(store.search_components(ComponentQuery(name="lib_under")).items) == ["lib_under"]
    assert names(store.search_components(ComponentQuery(name="lib_*")).items) == ["lib_under"]
    assert names(store.search_components(ComponentQuery(name="back\\*")).items) == ["back\\slash"]
    assert names(store.search_components(ComponentQuery(purl="pkg:npm/lib_")).items) == ["lib_under"]


def test_search_components_matches_purl_prefixes_ignoring_qualifiers_and_subpath(
    catalogue: tuple[EvidenceStore, str, str, str],
) -> None:
    store = catalogue[0]
    by_package = store.search_components(
        ComponentQuery(purl="pkg:maven/org.apache.logging.log4j/log4j-core@")
    )
    assert sorted(m.component.version for m in by_package.items) == ["2.14.1", "2.17.1"]
    exact = store.search_components(
        ComponentQuery(purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=pom#other")
    )
    assert [m.component.version for m in exact.items] == ["2.14.1"]
    namespace = store.search_components(ComponentQuery(purl="pkg:maven/org.apache.logging.log4j/"))
    assert len(namespace.items) == 3
    both = store.search_components(
        ComponentQuery(name="log4j-api", purl="pkg:maven/org.apache.logging.log4j/")
    )
    assert names(both.items) == ["log4j-api"]
    assert store.search_components(
        ComponentQuery(purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?")
    ).items


def test_search_components_needs_a_name_or_a_purl(store: EvidenceStore) -> None:
    with pytest.raises(InvalidArgument) as raised:
        store.search_components(ComponentQuery())
    assert raised.value.field == "name"


# -- decisions ----------------------------------------------------------------------------------


def test_list_decisions_filters_by_artifact_outcome_stage_and_time(store: EvidenceStore) -> None:
    app = new_artifact(store)
    lib = new_artifact(store)
    d1 = make_decision(T0, app, stage="admission")
    d2 = make_decision(T0 + timedelta(minutes=1), app, lib, stage="ci", allowed=False)
    d3 = make_decision(T0 + timedelta(minutes=2), lib, stage="admission", allowed=False)
    d4 = make_decision(T0 + timedelta(minutes=3), app, app, stage="admission")
    for decision in (d1, d2, d3, d4):
        store.add_decision(decision)

    def ids(**filters: Any) -> list[str]:
        return [d.id for d in store.list_decisions(DecisionQuery(**filters)).items]

    assert ids(artifact_digest=app) == [d4.id, d2.id, d1.id]
    assert ids(artifact_digest=lib) == [d3.id, d2.id]
    assert ids(artifact_digest=app, allowed=False) == [d2.id]
    assert ids(artifact_digest=app, allowed=True) == [d4.id, d1.id]
    assert ids(artifact_digest=lib, stage="admission") == [d3.id]
    assert ids(artifact_digest=app, since=T0 + timedelta(minutes=1)) == [d4.id, d2.id]
    assert ids(artifact_digest=app, until=T0 + timedelta(minutes=3)) == [d2.id, d1.id]
    assert ids(
        artifact_digest=app,
        since=(T0 + timedelta(minutes=1)).astimezone(UTC),
        until=T0 + timedelta(minutes=3),
    ) == [d2.id]
    assert ids(artifact_digest=app, allowed=False, stage="admission") == []
    assert ids(artifact_digest=digest_of("nothing")) == []
    assert store.get_decision(d4.id).artifact_digests == (app, app)  # type: ignore[union-attr]
    assert {d1.id, d2.id, d3.id, d4.id} <= set(ids(since=T0, until=T0 + timedelta(minutes=4)))


def test_latest_verification_is_the_newest(store: EvidenceStore) -> None:
    digest = new_artifact(store)
    older = Verification(id=unique("v"), artifact_digest=digest, verified=True, verified_at=T0)
    newer = Verification(
        id=unique("v"), artifact_digest=digest, verified=False, verified_at=T0 + timedelta(1)
    )
    store.add_verification(newer)
    store.add_verification(older)
    assert store.latest_verification(digest) == newer


# -- concurrency --------------------------------------------------------------------------------


def test_threads_share_one_store_safely(store: EvidenceStore) -> None:
    digest = new_artifact(store)

    def work(n: int) -> None:
        store.add_decision(make_decision(T0 + timedelta(seconds=n), digest))
        store.upsert_artifact(
            Artifact(digest=digest, kind=ArtifactKind.IMAGE, first_seen=T0, aliases=(f"t:{n}",))
        )
        assert store.get_scan(f"missing-{n}") is None
        store.list_decisions(DecisionQuery(artifact_digest=digest, page_size=5))

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(work, range(60)))
    assert len(walk_decisions(store, DecisionQuery(artifact_digest=digest, page_size=7))) == 60
    assert len(store.get_artifact(digest).aliases) == 60  # type: ignore[union-attr]


def test_in_memory_store_is_shared_by_threads() -> None:
    store = open_store("sqlite:///:memory:")
    try:
        digest = new_artifact(store)
        barrier = threading.Barrier(8)

        def work(n: int) -> None:
            barrier.wait(10)
            for i in range(10):
                store.add_decision(make_decision(T0 + timedelta(seconds=i), digest))
                store.list_decisions(DecisionQuery(artifact_digest=digest))

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(work, range(8)))
        assert len(walk_decisions(store, DecisionQuery(artifact_digest=digest, page_size=50))) == 80
    finally:
        store.close()


def _open_store_at_once(url: str, barrier: Any, index: int) -> None:
    """Child process of the migration race: open the store when the other child does."""
    barrier.wait(60)
    store = open_store(url)
    try:
        store.upsert_artifact(
            Artifact(digest=digest_of(f"racer-{index}"), kind=ArtifactKind.FILE, first_seen=T0)
        )
    finally:
        store.close()


def test_two_processes_migrating_a_fresh_database_at_once_both_succeed(store_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    racers = [context.Process(target=_open_store_at_once, args=(store_url, barrier, i)) for i in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(120)
    assert [racer.exitcode for racer in racers] == [0, 0]

    engine = create_store_engine(parse_store_url(store_url))
    try:
        assert current_revisions(engine) == (HEAD_REVISION,)
        assert set(metadata.tables) <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    store = open_store(store_url)
    try:
        assert store.get_artifact(digest_of("racer-0")) is not None
        assert store.get_artifact(digest_of("racer-1")) is not None
        new_artifact(store)
    finally:
        store.close()


# -- failures of the backend --------------------------------------------------------------------


@pytest.fixture
def broken_store(backend: str, store_url: str) -> Iterator[SqlStore]:
    """A store whose database has gone: a SQLite file overwritten, a PostgreSQL port closed."""
    if backend == "sqlite":
        healthy = open_store(store_url)
        new_artifact(healthy)
        healthy.close()
        path = Path(store_url.removeprefix("sqlite:///"))
        for leftover in (Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
        path.write_bytes(b"this is not a database, SELECT * FROM nothing" * 100)
        engine = create_store_engine(parse_store_url(store_url))
    else:
        engine = create_store_engine(parse_store_url(CLOSED_POSTGRES_URL))
    broken = SqlStore(engine)
    yield broken
    broken.close()


def test_backend_failures_raise_store_unavailable_without_sql(broken_store: SqlStore) -> None:
    digest = digest_of("broken")
    calls: list[Callable[[], object]] = [
        broken_store.ping,
        lambda: broken_store.get_scan("00000000-0000-4000-8000-000000000000"),
        lambda: broken_store.upsert_artifact(Artifact(digest=digest, kind=ArtifactKind.FILE, first_seen=T0)),
        lambda: broken_store.add_scan(make_scan(digest)),
        lambda: broken_store.list_findings(FindingQuery(artifact_digest=digest)),
        lambda: broken_store.list_decisions(DecisionQuery(stage="ci")),
        lambda: broken_store.search_components(ComponentQuery(name="x*")),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailable) as raised:
            call()
        message = str(raised.value)
        assert message.startswith("evidence store unavailable: ")
        assert not any(word in message for word in SQL_WORDS), message
        assert raised.value.__cause__ is not None


def test_open_store_on_an_unreachable_database_raises_store_unavailable(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        blocker = tmp_path / "file"
        blocker.write_text("a file where a directory should be")
        url = f"sqlite:///{blocker}/sub/gate.db"
    else:
        url = CLOSED_POSTGRES_URL
    with pytest.raises(StoreUnavailable) as raised:
        open_store(url)
    assert not any(word in str(raised.value) for word in SQL_WORDS)


# -- URLs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("mysql://root@localhost/gate", "mysql"),
        ("postgresql+asyncpg://u:secret@db/gate", "postgresql+asyncpg"),
        ("/var/lib/gate.db", "/var/lib/gate.db"),
        ("", ""),
    ],
)
def test_other_url_schemes_raise_invalid_argument_naming_database_url(url: str, scheme: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        open_store(url)
    assert raised.value.field == "database_url"
    assert raised.value.problem == f"expected sqlite:/// or postgresql://, got {scheme!r}"
    assert "secret" not in str(raised.value)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgres_url_spellings_all_use_psycopg3(scheme: str) -> None:
    target = parse_store_url(f"{scheme}://user:pw@db.example:5433/gate?sslmode=require")
    assert target.backend == "postgresql"
    assert target.url.drivername == "postgresql+psycopg"
    assert (target.url.host, target.url.port, target.url.database) == ("db.example", 5433, "gate")
    assert target.url.query == {"sslmode": "require"}


@pytest.mark.postgres
def test_postgres_scheme_opens_a_real_store(postgres_url: str) -> None:
    store = open_store(postgres_url.replace("postgresql+psycopg://", "postgres://", 1))
    try:
        new_artifact(store)
    finally:
        store.close()


def test_missing_psycopg_raises_store_unavailable_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StoreUnavailable) as raised:
        open_store("postgresql://postgres@127.0.0.1:5432/test")
    assert str(raised.value) == "PostgreSQL support needs the postgres extra: pip install 'gate[postgres]'"


def test_sqlite_creates_the_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "gate.db"
    store = open_store(f"sqlite:///{path}")
    try:
        new_artifact(store)
    finally:
        store.close()
    assert path.is_file()
    assert Path(f"{path}.migrate.lock").exists()


# -- migrations -----------------------------------------------------------------------------------


def test_head_revision_constant_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def test_migrations_create_exactly_the_schema_the_code_uses(store_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    open_store(store_url).close()
    engine = create_store_engine(parse_store_url(store_url))
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_migrations_downgrade_to_base_and_upgrade_again(store_url: str) -> None:
    from alembic import command

    open_store(store_url).close()
    command.downgrade(alembic_config(store_url), "base")
    engine = create_store_engine(parse_store_url(store_url))
    try:
        assert current_revisions(engine) == ()
        assert not set(metadata.tables) & set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    store = open_store(store_url)
    try:
        new_artifact(store)
    finally:
        store.close()


@pytest.mark.postgres
def test_decisions_large_columns_are_lz4_compressed_on_postgresql(postgres_admin: sa.Engine) -> None:
    from alembic import command

    schema, url = fresh_postgres_url(postgres_admin)
    engine = create_store_engine(parse_store_url(url))

    def compression() -> dict[str, str]:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT attname, attcompression FROM pg_attribute WHERE attrelid = 'decisions'::regclass"
                    " AND attname IN ('request', 'results', 'signature')"
                )
            ).all()
        return {str(name): str(method) for name, method in rows}

    try:
        with engine.connect() as conn:
            supported = conn.execute(
                sa.text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
            ).scalar_one()
        assert "lz4" in supported, f"this PostgreSQL server was built without LZ4: {supported}"
        open_store(url).close()
        assert compression() == {"request": "l", "results": "l", "signature": "l"}
        # Large enough to be compressed into TOAST: the value is LZ4's, and reads back as written.
        decision = make_decision(T0, request={"object": "spec " * 4000}, signature=b"envelope " * 2000)
        store = open_store(url)
        try:
            store.add_decision(decision)
            assert store.get_decision(decision.id) == decision
        finally:
            store.close()
        with engine.connect() as conn:
            methods = conn.execute(
                sa.text(
                    "SELECT pg_column_compression(request), pg_column_compression(signature) FROM decisions"
                )
            ).one()
        assert tuple(methods) == ("lz4", "lz4")
        command.downgrade(alembic_config(url), "0002")
        assert compression() == {"request": "", "results": "", "signature": ""}
    finally:
        engine.dispose()
        drop_postgres_schema(postgres_admin, schema)


def test_opening_a_migrated_store_does_not_import_alembic(store_url: str) -> None:
    open_store(store_url).close()
    code = (
        "import sys\n"
        "from gate.store import open_store\n"
        f"open_store({store_url!r}).close()\n"
        "print(sorted(name for name in sys.modules if name.startswith('alembic')))\n"
    )
    root = Path(gate.__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])},
    )
    assert result.stdout.strip() == "[]"


def test_a_schema_newer_than_this_gate_raises_store_unavailable(store_url: str) -> None:
    open_store(store_url).close()
    engine = create_store_engine(parse_store_url(store_url))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    with pytest.raises(StoreUnavailable, match="9999"):
        open_store(store_url)
