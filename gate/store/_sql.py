"""The SQL evidence store: :class:`SqlStore` on SQLAlchemy Core (SQLite or PostgreSQL).

Core rather than the ORM: lookups such as ``get_scan`` of an unknown id are
on the hot path of every decision, and a cached Core statement executed on a
pooled connection costs a fraction of an ORM session's round. Statements are
built once (at start-up, or once per shape of filter) so that SQLAlchemy's
compiled-statement cache is hit on every call after the first.

Reads and writes use two handles on one engine. Writes run in a transaction
(``BEGIN IMMEDIATE`` on SQLite, which takes the write lock where
``busy_timeout`` applies). Reads are single statements without a
transaction: on PostgreSQL in autocommit mode, which saves the BEGIN and
ROLLBACK round trips a transaction would add to every lookup.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from functools import cache, lru_cache, partial
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.pool import StaticPool

from gate._nonblocking import may_block
from gate.errors import Conflict, GateError, InvalidArgument, NotFound
from gate.model import (
    ACTION_TEXT,
    OUTCOME_TEXT,
    Artifact,
    ArtifactKind,
    AttestationResult,
    Component,
    ComponentMatch,
    Decision,
    DecisionTimings,
    DecodedJson,
    EnforcementAction,
    Finding,
    FindingKind,
    FindingStatus,
    Location,
    Package,
    Page,
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
    decision_text_holds_nul,
)
from gate.store import _bindings
from gate.store._engine import writer
from gate.store._errors import is_foreign_key_violation, is_unique_violation, store_error
from gate.store._nowait import NoWaitCommits
from gate.store._paging import KeyPart, KeyValue, decode_token, encode_token, filter_scope, page_limit
from gate.store._point import PointReader
from gate.store._port import (
    DEFAULT_PAGE_SIZE,
    ComponentQuery,
    DecisionQuery,
    FindingPage,
    FindingQuery,
    NewSbom,
    ScanReport,
)
from gate.store._schema import (
    UtcDateTime,
    artifact_aliases,
    artifacts,
    decision_artifacts,
    decisions,
    findings,
    policy_bundles,
    sbom_components,
    sbom_documents,
    sboms,
    scan_reports,
    scans,
    verifications,
)
from gate.store._waivers import WaiverRecords

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

_TERMINAL_STATES = tuple(state.value for state in ScanState if state.terminal)


class SqlStore(WaiverRecords):
    """The evidence store on a SQLite or PostgreSQL database.

    Thread-safe: one instance serves every thread of the process. Use
    :func:`gate.store.open_store` to get one with its schema migrated.
    """

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine made by :func:`gate.store._engine.create_store_engine`.

        The schema must already be at the head revision.
        """
        self._engine = engine
        self._writer = writer(engine)
        self._reader: Engine
        if engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")
            self._upsert_artifact, self._upsert_alias = _upserts(
                postgresql_insert(artifacts), postgresql_insert(artifact_aliases)
            )
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            self._reader = engine
            self._upsert_artifact, self._upsert_alias = _upserts(
                sqlite_insert(artifacts), sqlite_insert(artifact_aliases)
            )
        # An in-memory SQLite database is one connection shared by all threads
        # (StaticPool): its transactions must not interleave.
        self._serial: AbstractContextManager[object] = (
            threading.Lock() if isinstance(engine.pool, StaticPool) else contextlib.nullcontext()
        )
        self._driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error

        self._select_artifact = sa.select(artifacts).where(artifacts.c.digest == sa.bindparam("digest"))
        self._select_aliases = (
            sa.select(artifact_aliases.c.digest, artifact_aliases.c.alias)
            .where(artifact_aliases.c.digest.in_(sa.bindparam("digests", expanding=True)))
            .order_by(artifact_aliases.c.digest, artifact_aliases.c.alias)
        )
        self._resolve_alias = sa.select(artifact_aliases.c.digest).where(
            artifact_aliases.c.alias == sa.bindparam("alias")
        )

        self._insert_scan = sa.insert(scans)
        # SET takes every column named in the parameters (all but the id).
        self._update_scan = sa.update(scans).where(
            scans.c.id == sa.bindparam("b_id"), scans.c.state.not_in(_TERMINAL_STATES)
        )
        self._scan_state = sa.select(scans.c.state).where(scans.c.id == sa.bindparam("id"))
        self._select_scan = sa.select(scans).where(scans.c.id == sa.bindparam("id"))
        ranked = (
            sa.select(
                scans,
                sa.func.row_number()
                .over(partition_by=scans.c.scanner, order_by=(scans.c.created_at.desc(), scans.c.id.desc()))
                .label("recency"),
            )
            .where(
                scans.c.artifact_digest == sa.bindparam("digest"), scans.c.state == ScanState.SUCCEEDED.value
            )
            .subquery()
        )
        self._latest_scans = (
            sa.select(*(ranked.c[column.name] for column in scans.c))
            .where(ranked.c.recency == 1)
            .order_by(ranked.c.scanner)
        )
        self._latest_scan_ids = sa.select(ranked.c.id).where(ranked.c.recency == 1)
        quoted = ", ".join(engine.dialect.identifier_preparer.quote(name) for name in _FINDING_COLUMNS)
        marks = ", ".join("?" for _ in _FINDING_COLUMNS)
        self._insert_findings_sql = f"INSERT INTO findings ({quoted}) VALUES ({marks})"  # noqa: S608 (constant names)
        self._copy_findings_sql = f"COPY findings ({quoted}) FROM STDIN"
        self._insert_report = sa.insert(scan_reports)
        self._select_report = sa.select(scan_reports).where(scan_reports.c.scan_id == sa.bindparam("id"))
        unfinished = (ScanState.QUEUED.value, ScanState.RUNNING.value)
        self._stale_scans = (
            sa.select(scans.c.id)
            .where(scans.c.state.in_(unfinished), scans.c.heartbeat_at < sa.bindparam("before"))
            .order_by(scans.c.id)
        )
        self._touch_scans = (
            sa.update(scans)
            .where(scans.c.id.in_(sa.bindparam("ids", expanding=True)), scans.c.state.in_(unfinished))
            .values(heartbeat_at=sa.bindparam("now"))
        )
        self._fail_scans = (
            sa.update(scans)
            .where(scans.c.id.in_(sa.bindparam("ids", expanding=True)), scans.c.state.in_(unfinished))
            .values(
                state=ScanState.FAILED.value,
                error=sa.bindparam("error"),
                finished_at=sa.bindparam("finished_at"),
            )
        )

        self._select_sbom = sa.select(sboms).where(sboms.c.id == sa.bindparam("id"))
        self._select_document = sa.select(sbom_documents.c.encoding, sbom_documents.c.document).where(
            sbom_documents.c.sbom_id == sa.bindparam("id")
        )
        self._insert_sbom = sa.insert(sboms)
        self._select_component_rows = _component_rows_by_key()
        self._insert_documents_sql, self._copy_documents_sql = _bulk_sql(engine, sbom_documents)
        self._insert_components_sql, self._copy_components_sql = _bulk_sql(engine, sbom_components)
        self._select_components = (
            sa.select(sbom_components)
            .where(sbom_components.c.sbom_id == sa.bindparam("id"))
            .order_by(sbom_components.c.position)
        )

        self._insert_verification = sa.insert(verifications)
        self._select_verification = sa.select(verifications).where(verifications.c.id == sa.bindparam("id"))
        self._latest_verification = (
            sa.select(verifications)
            .where(verifications.c.artifact_digest == sa.bindparam("digest"))
            .order_by(verifications.c.verified_at.desc(), verifications.c.id.desc())
            .limit(1)
        )

        self._init_decision_inserts(engine)
        self._select_decision = sa.select(decisions).where(decisions.c.id == sa.bindparam("id"))
        self._ping = sa.select(sa.literal(1))

        self._init_point_reads(engine)
        self._init_loop_commits(engine)

    def _init_loop_commits(self, engine: Engine) -> None:
        # Decision batches an event loop commits without waiting (decisions.writer loop): on a
        # SQLite file only (_local_file, from _init_point_reads).
        self._nowait: NoWaitCommits | None = None
        if self._local_file:
            path = str(engine.url.database)
            self._nowait = NoWaitCommits(path, self._insert_decisions_sql, self._insert_links_sql)

    def _init_decision_inserts(self, engine: Engine) -> None:
        # Decisions go in through the driver, JSON columns already text (orjson, in
        # _decision_values): SQLAlchemy's per-row type processing and the stdlib JSON
        # encoder cost more than the rows themselves, on the path of every admission review.
        names = [column.name for column in decisions.columns]
        json_columns = {column.name for column in decisions.columns if isinstance(column.type, sa.JSON)}
        quoted = ", ".join(engine.dialect.identifier_preparer.quote(name) for name in names)
        if engine.dialect.name == "postgresql":
            marks = ", ".join("%s::json" if name in json_columns else "%s" for name in names)
            link_marks = "%s, %s"
        else:
            marks = ", ".join("?" for _ in names)
            link_marks = "?, ?"
        self._decision_columns = tuple(names)
        self._insert_decisions_sql = f"INSERT INTO decisions ({quoted}) VALUES ({marks})"  # noqa: S608 (constant names)
        self._insert_links_sql = f"INSERT INTO decision_artifacts (digest, decision_id) VALUES ({link_marks})"  # noqa: S608
        # The one typed column: UTC, naive text on SQLite (as UtcDateTime writes it everywhere else).
        processor = decisions.c.decided_at.type.bind_processor(engine.dialect)
        self._decided_at: Callable[[Any], Any] = processor if processor is not None else _unchanged

    def _init_point_reads(self, engine: Engine) -> None:
        # Point lookups bypass SQLAlchemy's per-call work (see _point.py), except
        # on an in-memory SQLite database, whose one connection cannot be shared.
        self._points: PointReader | None = None
        database = engine.url.database
        self._local_file = engine.dialect.name == "sqlite" and bool(database) and database != ":memory:"
        if self._local_file or engine.dialect.name == "postgresql":
            self._points = PointReader(engine)
        self._get_scan_row = self._row_reader(self._select_scan)
        self._get_decision_row = self._row_reader(self._select_decision)
        self._get_sbom_row = self._row_reader(self._select_sbom)
        self._get_verification_row = self._row_reader(self._select_verification)
        self._resolve_alias_row = self._row_reader(self._resolve_alias)

    def _row_reader(self, select: Any) -> Callable[[str], Any]:
        """``key -> row | None`` for a one-parameter select: a point read when there are some."""
        if self._points is not None:
            lookup = self._points.lookup(select)
            if self._local_file:
                # Microseconds, and no network to wait for: allowed on an event loop, as
                # GetScan is. An image's tag then resolves inside the webhook's inline path.
                return lookup

            def remote(key: str) -> Any:
                may_block("the evidence store")
                return lookup(key)

            return remote
        (name,) = select.compile().params

        def read(key: str) -> Any:
            with self._read() as conn:
                return conn.execute(select, {name: key}).first()

        return read

    @property
    def inline_reads(self) -> bool:
        """True on a SQLite file: point lookups take microseconds and no network I/O."""
        return self._local_file

    # -- connections and errors ------------------------------------------------

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        may_block("the evidence store")
        with self._serial:
            try:
                with self._reader.connect() as conn:
                    yield conn
            except GateError:
                raise
            except (exc.SQLAlchemyError, self._driver_error) as error:
                raise store_error(error) from error

    @contextlib.contextmanager
    def _write(
        self, on_integrity: Callable[[exc.IntegrityError], GateError] | None = None
    ) -> Iterator[Connection]:
        may_block("the evidence store")
        with self._serial:
            try:
                with self._writer.begin() as conn:
                    yield conn
            except GateError:
                raise
            except exc.IntegrityError as error:
                if on_integrity is None:
                    raise store_error(error) from error
                raise on_integrity(error) from error
            except (exc.SQLAlchemyError, self._driver_error) as error:
                raise store_error(error) from error

    def close(self) -> None:
        """Close every pooled connection."""
        if self._points is not None:
            self._points.close()
        if self._nowait is not None:
            self._nowait.close()
        self._engine.dispose()

    def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers a trivial query."""
        with self._read() as conn:
            conn.execute(self._ping).scalar()

    # -- artifacts ---------------------------------------------------------------

    def upsert_artifact(self, artifact: Artifact) -> Artifact:
        """Record an artifact and return its stored form.

        Aliases are merged with the stored ones; an alias stored for another
        digest moves to this one (tags are mutable). The earliest
        ``first_seen`` is kept, a non-empty ``name`` replaces the stored one.
        Aliases come back sorted.
        """
        _required(artifact.digest, "digest")
        _aware(artifact.first_seen, "first_seen")
        for index, name in enumerate(artifact.aliases):
            _required(name, f"aliases[{index}]")
        now = datetime.now(UTC)
        with self._write() as conn:
            conn.execute(
                self._upsert_artifact,
                {
                    "digest": artifact.digest,
                    "kind": artifact.kind.value,
                    "name": artifact.name,
                    "first_seen": artifact.first_seen,
                },
            )
            if artifact.aliases:
                conn.execute(
                    self._upsert_alias,
                    # Sorted, so that concurrent upserts sharing aliases lock
                    # their rows in one order (no deadlock on PostgreSQL).
                    [
                        {"alias": name, "digest": artifact.digest, "created_at": now}
                        for name in sorted(set(artifact.aliases))
                    ],
                )
            stored = self._artifact(conn, artifact.digest)
        assert stored is not None  # written in this very transaction
        return stored

    def get_artifact(self, digest: str) -> Artifact | None:
        """Return the artifact with this digest, with its aliases sorted."""
        with self._read() as conn:
            return self._artifact(conn, digest)

    def _artifact(self, conn: Connection, digest: str) -> Artifact | None:
        row = conn.execute(self._select_artifact, {"digest": digest}).first()
        if row is None:
            return None
        aliases = self._aliases(conn, [digest]).get(digest, ())
        return Artifact(
            digest=row.digest,
            kind=ArtifactKind(row.kind),
            first_seen=row.first_seen,
            name=row.name,
            aliases=aliases,
        )

    def _aliases(self, conn: Connection, digests: Sequence[str]) -> dict[str, tuple[str, ...]]:
        grouped: dict[str, list[str]] = {}
        for digest, name in conn.execute(self._select_aliases, {"digests": list(digests)}):
            grouped.setdefault(digest, []).append(name)
        return {digest: tuple(names) for digest, names in grouped.items()}

    def resolve_alias(self, reference: str) -> str | None:
        """Return the digest an alias (a tag or reference) points at."""
        row = self._resolve_alias_row(reference)
        return None if row is None else str(row.digest)

    # -- scans and findings ------------------------------------------------------

    def add_scan(self, scan: Scan) -> None:
        """Record a new scan.

        Raises:
            Conflict: a scan with this id exists.
            NotFound: the scan's artifact is not stored.
        """
        values = {**_scan_values(scan), "heartbeat_at": scan.created_at}
        with self._write(_scan_integrity(scan)) as conn:
            conn.execute(self._insert_scan, values)

    def update_scan(self, scan: Scan) -> None:
        """Replace the stored state of a scan that has not reached a terminal state.

        Raises:
            NotFound: no scan has this id.
            Conflict: the stored scan is terminal (a terminal scan never changes).
        """
        values = _scan_values(scan)
        with self._write(_scan_integrity(scan)) as conn:
            self._replace_scan(conn, scan.id, values)

    def complete_scan(
        self, scan: Scan, findings: Sequence[Finding], report: ScanReport | None = None
    ) -> None:
        """Store a scan's terminal state, its findings and its raw report in one transaction.

        The report is stored zlib-compressed; scanner JSON shrinks 5 to 20 times.

        Raises:
            InvalidArgument: ``scan.state`` is not terminal, a finding belongs
                to another scan, or two findings share a fingerprint.
            NotFound: no scan has this id.
            Conflict: the stored scan is already terminal.
        """
        if not scan.state.terminal:
            raise InvalidArgument(
                "state", f"expected a terminal state {list(_TERMINAL_STATES)}, got {scan.state.value!r}"
            )
        values = _scan_values(scan)
        rows = _finding_rows(scan.id, findings)
        report_row = None
        if report is not None:
            _required(report.format, "report.format")
            report_row = {
                "scan_id": scan.id,
                "format": report.format,
                "encoding": "zlib",
                "size": len(report.data),
                # Level 1: a 24 MB report compresses about 17x instead of 24x, in a
                # fifth of the time level 6 takes.
                "data": zlib.compress(report.data, 1),
            }
        with self._write(_scan_integrity(scan)) as conn:
            self._replace_scan(conn, scan.id, values)
            if rows:
                self._insert_findings(conn, rows)
            if report_row is not None:
                conn.execute(self._insert_report, report_row)

    def _insert_findings(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        # Through the driver: SQLAlchemy's per-row work (type processing, JSON
        # serialisation per column) tripled the time of storing a 10,000-finding
        # report. Rows are plain tuples with JSON as text; PostgreSQL takes them
        # with COPY (one stream, no per-row statement), SQLite with executemany.
        if self._engine.dialect.name == "postgresql":
            driver = conn.connection.driver_connection
            assert driver is not None
            with driver.cursor() as cursor, cursor.copy(self._copy_findings_sql) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            conn.exec_driver_sql(self._insert_findings_sql, rows)

    def get_scan_report(self, scan_id: str) -> ScanReport | None:
        """Return a scan's stored raw report, decompressed."""
        with self._read() as conn:
            row = conn.execute(self._select_report, {"id": scan_id}).first()
        if row is None:
            return None
        if row.encoding != "zlib":
            raise store_error(ValueError(f"unknown report encoding {row.encoding!r}"))
        return ScanReport(format=row.format, data=zlib.decompress(row.data))

    def touch_scans(self, scan_ids: Sequence[str], now: datetime) -> None:
        """Refresh the heartbeat of the given scans that are still queued or running."""
        _aware(now, "now")
        if not scan_ids:
            return
        with self._write() as conn:
            conn.execute(self._touch_scans, {"ids": list(scan_ids), "now": now})

    def fail_stale_scans(self, stale_before: datetime, reason: str, now: datetime) -> tuple[str, ...]:
        """Fail the queued or running scans whose heartbeat is older than ``stale_before``."""
        _required(reason, "reason")
        _aware(stale_before, "stale_before")
        _aware(now, "now")
        with self._write() as conn:
            ids = tuple(str(i) for i in conn.execute(self._stale_scans, {"before": stale_before}).scalars())
            if ids:
                conn.execute(self._fail_scans, {"ids": list(ids), "error": reason, "finished_at": now})
        return ids

    def _replace_scan(self, conn: Connection, scan_id: str, values: dict[str, Any]) -> None:
        changes = {name: value for name, value in values.items() if name != "id"}
        changed = conn.execute(self._update_scan, {**changes, "b_id": scan_id}).rowcount
        if changed == 1:
            return
        state = conn.execute(self._scan_state, {"id": scan_id}).scalar()
        if state is None:
            raise NotFound("scan", scan_id)
        raise Conflict(f"scan {scan_id!r} is {state} and cannot change")

    def get_scan(self, scan_id: str) -> Scan | None:
        """Return one scan."""
        row = self._get_scan_row(scan_id)
        return None if row is None else _scan(row)

    def latest_scans(self, artifact_digest: str) -> tuple[Scan, ...]:
        """Return the latest succeeded scan per scanner (by ``created_at``), ordered by scanner."""
        with self._read() as conn:
            rows = conn.execute(self._latest_scans, {"digest": artifact_digest}).all()
        return tuple(_scan(row) for row in rows)

    def list_findings(self, query: FindingQuery) -> FindingPage:
        """Return a page of findings, most severe first, then by fingerprint.

        With ``artifact_digest`` the findings are those of the artifact's
        latest succeeded scan per scanner. ``counts`` covers every finding that
        passes the filters, not only this page.

        Raises:
            InvalidArgument: not exactly one of scan_id and artifact_digest is
                set, or the page size or token is bad.
        """
        limit = page_limit(query.page_size)
        if bool(query.scan_id) == bool(query.artifact_digest):
            got = "both" if query.scan_id else "neither"
            raise InvalidArgument(
                "scan_id", f"expected exactly one of scan_id and artifact_digest, got {got}"
            )
        kinds = sorted(kind.value for kind in query.kinds)
        scope = filter_scope(query.scan_id, query.artifact_digest, int(query.min_severity), kinds)
        after = (
            decode_token("findings", query.page_token, ("int", "str", "str"), scope)
            if query.page_token
            else None
        )
        params: dict[str, Any] = {"min_severity": int(query.min_severity), "limit": limit + 1}
        if query.kinds:
            params["kinds"] = sorted(kind.value for kind in query.kinds)
        if after is not None:
            params.update(after_severity=after[0], after_fingerprint=after[1], after_scan=after[2])
        with self._read() as conn:
            if query.scan_id:
                params["scan_ids"] = [query.scan_id]
            else:
                params["scan_ids"] = list(
                    conn.execute(self._latest_scan_ids, {"digest": query.artifact_digest}).scalars()
                )
                if not params["scan_ids"]:
                    return FindingPage(findings=(), counts=SeverityCounts())
            tally = {
                Severity(severity): count
                for severity, count in conn.execute(_finding_counts(bool(query.kinds)), params)
            }
            rows = conn.execute(_finding_page(bool(query.kinds), after is not None), params).all()
        rows, token = _cut(
            rows, limit, "findings", lambda row: (row.severity, row.fingerprint, row.scan_id), scope
        )
        return FindingPage(
            findings=tuple(_finding(row) for row in rows),
            counts=SeverityCounts.from_mapping(tally),
            next_token=token,
        )

    # -- SBOMs -------------------------------------------------------------------

    def add_sbom(self, sbom: Sbom, document: bytes, components: Sequence[Component]) -> None:
        """Store an SBOM record, its document and its components (in document order).

        Raises:
            Conflict: an SBOM with this id exists.
        """
        self.add_sboms([NewSbom(sbom, document, components)])

    def add_sboms(self, items: Sequence[NewSbom]) -> None:
        """Store SBOMs with their documents (zlib-compressed) and component indexes in one transaction.

        Raises:
            Conflict: an SBOM with one of these ids exists.
        """
        records: list[tuple[Any, ...]] = []
        documents: list[tuple[Any, ...]] = []
        rows: list[tuple[Any, ...]] = []
        for item in items:
            sbom = item.sbom
            _required(sbom.id, "id")
            _required(sbom.artifact_digest, "artifact_digest")
            _aware(sbom.created_at, "created_at")
            records.append(
                (
                    sbom.id,
                    sbom.artifact_digest,
                    sbom.format.value,
                    sbom.spec_version,
                    sbom.generator,
                    sbom.created_at,
                    sbom.component_count,
                    sbom.document_digest,
                )
            )
            # Level 1, as for scan reports (see complete_scan): fast, and documents are read rarely.
            documents.append((sbom.id, "zlib", len(item.document), zlib.compress(bytes(item.document), 1)))
            rows.extend(_component_rows(sbom.id, item.components))
        if not records:
            return
        names = [column.name for column in sboms.c]
        with self._write(_duplicate("SBOM", records[0][0] if len(records) == 1 else "in batch")) as conn:
            # The records through SQLAlchemy (one row per SBOM; a duplicate id must
            # surface as an IntegrityError), the bulk of the bytes through the driver.
            conn.execute(self._insert_sbom, [dict(zip(names, record, strict=True)) for record in records])
            if self._engine.dialect.name == "postgresql":
                driver = conn.connection.driver_connection
                assert driver is not None
                with driver.cursor() as cursor:
                    for sql, batch in (
                        (self._copy_documents_sql, documents),
                        (self._copy_components_sql, rows),
                    ):
                        with cursor.copy(sql) as copy:
                            for row in batch:
                                copy.write_row(row)
            else:
                # Like findings: SQLAlchemy's per-row processing dominated bulk loads.
                conn.exec_driver_sql(self._insert_documents_sql, documents)
                if rows:
                    conn.exec_driver_sql(self._insert_components_sql, rows)

    def get_sbom(self, sbom_id: str) -> Sbom | None:
        """Return one SBOM's record (without its document)."""
        row = self._get_sbom_row(sbom_id)
        return None if row is None else _sbom(row)

    def get_sbom_document(self, sbom_id: str) -> bytes | None:
        """Return one SBOM's document bytes, decompressed."""
        with self._read() as conn:
            row = conn.execute(self._select_document, {"id": sbom_id}).first()
        if row is None:
            return None
        if row.encoding != "zlib":
            raise store_error(ValueError(f"unknown SBOM document encoding {row.encoding!r}"))
        return zlib.decompress(row.document)

    def sbom_components(self, sbom_id: str) -> tuple[Component, ...]:
        """Return the components of one SBOM in document order (empty if unknown)."""
        with self._read() as conn:
            rows = conn.execute(self._select_components, {"id": sbom_id}).all()
        return tuple(_component(row) for row in rows)

    def list_sboms(
        self, artifact_digest: str = "", page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> Page[Sbom]:
        """Return SBOM records, newest first (ties by id, descending).

        Raises:
            InvalidArgument: the page size or token is bad.
        """
        limit = page_limit(page_size)
        params: dict[str, Any] = {"digest": artifact_digest, "limit": limit + 1}
        if page_token:
            after = decode_token("sboms", page_token, ("time", "str"), filter_scope(artifact_digest))
            params.update(after_at=after[0], after_id=after[1])
        with self._read() as conn:
            rows = conn.execute(_sbom_page(bool(artifact_digest), bool(page_token)), params).all()
        rows, token = _cut(
            rows, limit, "sboms", lambda row: (row.created_at, row.id), filter_scope(artifact_digest)
        )
        return Page(items=tuple(_sbom(row) for row in rows), next_token=token)

    def search_components(self, query: ComponentQuery) -> Page[ComponentMatch]:
        """Find components across every stored SBOM.

        ``name`` matches component names regardless of case; ``*`` stands for
        any run of characters and every other character (``%`` and ``_``
        included) stands for itself. ``purl`` is normalised like the stored
        purls (see :mod:`gate.sbom._purl_key`) and matches identities that
        start with it (with ``versions``, the identity it names exactly); a
        version in it must equal the component's (epoch folded in). With both,
        a component must match both. ``versions`` filters by ecosystem and
        version. Matches come ordered by name, SBOM id and document order, or
        with ``purl`` by identity, version text, SBOM id and document order.

        Raises:
            InvalidArgument: neither name nor purl is given, or the page size
                or token is bad.
        """
        limit = page_limit(query.page_size)
        if not query.name and not query.purl:
            raise InvalidArgument("name", "expected a name or a purl to search for, got neither")
        params = _component_params(query, limit)
        shape = (params.pop("name_mode"), params.pop("purl_mode"), "version" in params, bool(query.purl))
        listing, parts, key = _component_order(shape[3])
        scope = filter_scope(query.name, query.purl, query.versions_key if query.versions else None)
        after = decode_token(listing, query.page_token, parts, scope) if query.page_token else None
        with self._read() as conn:
            if query.versions is None:
                rows = self._component_rows(conn, shape, params, after)
            elif shape[1] == "equal":
                rows = self._one_package_in_range(conn, shape, params, after, query.versions)
            else:
                rows = self._version_filtered(conn, shape, params, after, query.versions, limit, key)
            page_rows, token = _cut(rows, limit, listing, key, scope)
            digests = sorted({row.artifact_digest for row in page_rows})
            aliases = self._aliases(conn, digests) if page_rows else {}
        matches = tuple(
            ComponentMatch(
                component=_component(row),
                sbom_id=row.sbom_id,
                artifact_digest=row.artifact_digest,
                artifact_aliases=aliases.get(row.artifact_digest, ()),
            )
            for row in page_rows
        )
        return Page(items=matches, next_token=token)

    def _component_rows(
        self,
        conn: Connection,
        shape: tuple[str, str, bool, bool],
        params: dict[str, Any],
        after: tuple[KeyValue, ...] | None,
    ) -> list[Row[Any]]:
        if after is not None:
            params.update({f"after_{index}": value for index, value in enumerate(after)})
        statement = _component_page(*shape, after is not None)
        return list(conn.execute(statement, params).all())

    def _one_package_in_range(
        self,
        conn: Connection,
        shape: tuple[str, str, bool, bool],
        params: dict[str, Any],
        after: tuple[KeyValue, ...] | None,
        versions: Callable[[str, str], bool],
    ) -> list[Row[Any]]:
        """A page of one package's components whose version lies in the range.

        The package's distinct versions are few and come from the index; the
        range is checked on them in Python (each ecosystem's ordering). The
        page is then read version by version, each an ordered run of the
        index stopped by LIMIT: one query with ``IN (versions)`` made
        PostgreSQL 15 read and sort every match of every accepted version.
        """
        purl = str(params["purl"])
        ecosystem = _ecosystem_of(purl)
        if "version" in params:
            candidates: list[str] = [params["version"]]
        else:
            candidates = [str(v) for v in conn.execute(_PACKAGE_VERSIONS, {"purl": purl}).scalars()]
        accepted = sorted(version for version in candidates if versions(ecosystem, version))
        if after is not None and after[0] != purl:
            # A token of another package: pages of this one start after it or are done.
            return (
                []
                if str(after[0]) > purl
                else self._one_package_in_range(conn, shape, params, None, versions)
            )
        wanted = int(params["limit"])
        rows: list[Row[Any]] = []
        for version in accepted:
            resume = after is not None and version == after[1]
            if after is not None and version < str(after[1]):
                continue
            bound = {**params, "version": version, "limit": wanted - len(rows)}
            if resume:
                assert after is not None
                bound.update(after_0=after[2], after_1=after[3])
            rows.extend(conn.execute(_version_run(shape[0], resume), bound).all())
            if len(rows) >= wanted:
                break
        return rows

    def _version_filtered(
        self,
        conn: Connection,
        shape: tuple[str, str, bool, bool],
        params: dict[str, Any],
        after: tuple[KeyValue, ...] | None,
        versions: Callable[[str, str], bool],
        limit: int,
        key: Callable[[Row[Any]], tuple[KeyValue, ...]],
    ) -> list[Row[Any]]:
        """Up to ``limit + 1`` rows whose version ``versions`` accepts (name or purl-prefix searches).

        The keys come in chunks from the index, the range is checked in Python
        (once per distinct identity and version), and only the rows of the
        page are read in full.
        """
        accepted: dict[tuple[str, str], bool] = {}
        keys: list[Row[Any]] = []
        chunk = {**params, "limit": _KEY_CHUNK}
        while True:
            if after is not None:
                chunk.update({f"after_{index}": value for index, value in enumerate(after)})
            batch = conn.execute(_component_keys(*shape, after is not None), chunk).all()
            for row in batch:
                pair = (row.purl_key, row.purl_version)
                verdict = accepted.get(pair)
                if verdict is None:
                    verdict = accepted[pair] = versions(_ecosystem_of(row.purl_key), row.purl_version)
                if verdict:
                    keys.append(row)
                    if len(keys) > limit:
                        break
            if len(keys) > limit or len(batch) < _KEY_CHUNK:
                break
            after = key(batch[-1])
        if not keys:
            return []
        wanted = [(row.sbom_id, row.position) for row in keys]
        by_purl = shape[3]
        bound = {
            "leads": sorted({row.purl_key if by_purl else row.name_lower for row in keys}),
            "versions": sorted({row.purl_version for row in keys}),
            "sboms": sorted({sbom_id for sbom_id, _ in wanted}),
        }
        found = {
            (row.sbom_id, row.position): row
            for row in conn.execute(self._select_component_rows[by_purl], bound).all()
        }
        return [found[pair] for pair in wanted if pair in found]

    # -- verifications -----------------------------------------------------------

    def add_verification(self, verification: Verification) -> None:
        """Record a verification.

        Raises:
            Conflict: a verification with this id exists.
        """
        _required(verification.id, "id")
        _required(verification.artifact_digest, "artifact_digest")
        _aware(verification.verified_at, "verified_at")
        values = {
            "id": verification.id,
            "artifact_digest": verification.artifact_digest,
            "verified": verification.verified,
            "verified_at": verification.verified_at,
            "signatures": [
                {
                    "verified": s.verified,
                    "signer": s.signer,
                    "tlog_index": s.tlog_index,
                    "error": s.error,
                    **_log_and_times(s, f"signatures[{index}]"),
                }
                for index, s in enumerate(verification.signatures)
            ],
            "attestations": [
                {
                    "predicate_type": a.predicate_type,
                    "verified": a.verified,
                    "signer": a.signer,
                    "error": a.error,
                    "tlog_index": a.tlog_index,
                    **_log_and_times(a, f"attestations[{index}]"),
                }
                for index, a in enumerate(verification.attestations)
            ],
            "message": verification.message,
        }
        with self._write(_duplicate("verification", verification.id)) as conn:
            conn.execute(self._insert_verification, values)

    def get_verification(self, verification_id: str) -> Verification | None:
        """Return one verification."""
        row = self._get_verification_row(verification_id)
        return None if row is None else _verification(row)

    def latest_verification(self, artifact_digest: str) -> Verification | None:
        """Return the newest verification of an artifact (by ``verified_at``, then id)."""
        with self._read() as conn:
            row = conn.execute(self._latest_verification, {"digest": artifact_digest}).first()
        return None if row is None else _verification(row)

    # -- policy bundles ---------------------------------------------------------

    def add_policy_bundle(self, digest: str, documents: Sequence[Mapping[str, Any]], now: datetime) -> None:
        """Keep a policy bundle's documents under its digest (a no-op when it is already kept)."""
        data = zlib.compress(orjson.dumps(list(documents)), 6)
        present = sa.select(policy_bundles.c.digest).where(policy_bundles.c.digest == digest)
        try:
            with self._write() as conn:
                if conn.execute(present).first() is None:
                    conn.execute(policy_bundles.insert().values(digest=digest, created_at=now, policies=data))
        except GateError:
            # Another replica may have stored the same bundle first: same digest, same content.
            with self._read() as conn:
                if conn.execute(present).first() is None:
                    raise

    def get_policy_bundle(self, digest: str) -> list[dict[str, Any]] | None:
        """The documents of a kept policy bundle, or None."""
        with self._read() as conn:
            data = conn.execute(
                sa.select(policy_bundles.c.policies).where(policy_bundles.c.digest == digest)
            ).scalar()
        if data is None:
            return None
        documents: list[dict[str, Any]] = orjson.loads(zlib.decompress(data))
        return documents

    def finding_tallies(self, scan_ids: Sequence[str]) -> dict[str, list[tuple[str, int, bool, int]]]:
        """``(kind, severity, fix_available, count)`` per scan, for the evidence policies read.

        One grouped query for all the scans; completed scans never change, so callers cache it.
        """
        if not scan_ids:
            return {}
        table = findings
        query = (
            sa.select(
                table.c.scan_id,
                table.c.kind,
                table.c.severity,
                table.c.fix_available,
                sa.func.count(),
            )
            .where(table.c.scan_id.in_(list(scan_ids)))
            .group_by(table.c.scan_id, table.c.kind, table.c.severity, table.c.fix_available)
        )
        tallies: dict[str, list[tuple[str, int, bool, int]]] = {scan_id: [] for scan_id in scan_ids}
        with self._read() as conn:
            for scan_id, kind, severity, fixable, count in conn.execute(query):
                tallies[scan_id].append((str(kind), int(severity), bool(fixable), int(count)))
        return tallies

    # -- decisions ---------------------------------------------------------------

    def add_decision(self, decision: Decision) -> None:
        """Record a decision.

        Raises:
            InvalidArgument: ``request`` is not JSON-compatible, or a timing
                is not a finite number.
            Conflict: a decision with this id exists.
        """
        self.add_decisions((decision,))

    def add_decisions(self, batch: Sequence[Decision]) -> None:
        """Record several decisions in one transaction (all or none).

        Raises:
            InvalidArgument: a ``request`` is not JSON-compatible, or a timing
                is not a finite number.
            Conflict: a decision with one of these ids exists.
        """
        if not batch:
            return
        rows, links, what = self._decision_rows(batch)
        with self._write(_duplicate("decision", what)) as conn:
            conn.exec_driver_sql(self._insert_decisions_sql, rows)
            if links:
                conn.exec_driver_sql(self._insert_links_sql, links)

    @property
    def commits_without_waiting(self) -> bool:
        """Whether :meth:`add_decisions_now` can commit (a SQLite file; never on PostgreSQL)."""
        return self._nowait is not None

    def add_decisions_now(self, batch: Sequence[Decision]) -> bool:
        """Record several decisions in one transaction, or decline at once (see gate.store._nowait).

        For an event loop: nothing here waits for a lock, a connection or a checkpoint. Returns
        False, having stored nothing, when it would have had to (or on a database where it cannot
        work, see :attr:`commits_without_waiting`); store the batch with :meth:`add_decisions` then.

        Raises:
            InvalidArgument: as :meth:`add_decisions`.
            Conflict: a decision with one of these ids exists.
            StoreUnavailable: the database failed.
        """
        if self._nowait is None or not batch:
            return self._nowait is not None
        rows, links, what = self._decision_rows(batch)
        return self._nowait.commit(rows, links, what)

    def _decision_rows(
        self, batch: Sequence[Decision]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]], str]:
        rows = []
        for decision in batch:
            values = _decision_values(decision)
            values["decided_at"] = self._decided_at(values["decided_at"])
            rows.append(tuple(values[name] for name in self._decision_columns))
        links = [
            (digest, decision.id) for decision in batch for digest in dict.fromkeys(decision.artifact_digests)
        ]
        what = batch[0].id if len(batch) == 1 else f"{batch[0].id} (or another of {len(batch)})"
        return rows, links, what

    def get_decision(self, decision_id: str) -> Decision | None:
        """Return one decision."""
        row = self._get_decision_row(decision_id)
        return None if row is None else _decision(row)

    def list_decisions(self, query: DecisionQuery) -> Page[Decision]:
        """Return decisions, newest first (ties by id, descending).

        ``since`` is inclusive and ``until`` exclusive; every filter given
        must hold.

        Raises:
            InvalidArgument: a bound is a naive datetime, or the page size or
                token is bad.
        """
        limit = page_limit(query.page_size)
        scope = filter_scope(query.artifact_digest, query.allowed, query.stage, query.since, query.until)
        params: dict[str, Any] = {
            "digest": query.artifact_digest,
            "allowed": query.allowed,
            "stage": query.stage,
            "since": None if query.since is None else _aware(query.since, "since"),
            "until": None if query.until is None else _aware(query.until, "until"),
            "limit": limit + 1,
        }
        if query.page_token:
            after = decode_token("decisions", query.page_token, ("time", "str"), scope)
            params.update(after_at=after[0], after_id=after[1])
        statement = _decision_page(
            bool(query.artifact_digest),
            query.allowed is not None,
            bool(query.stage),
            query.since is not None,
            query.until is not None,
            bool(query.page_token),
        )
        with self._read() as conn:
            rows = conn.execute(statement, params).all()
        rows, token = _cut(rows, limit, "decisions", lambda row: (row.decided_at, row.id), scope)
        return Page(items=tuple(_decision(row) for row in rows), next_token=token)

    # -- artifact projects (appended; see gate.store._bindings) -----------------

    def artifact_projects(self, digest: str) -> tuple[str, ...]:
        """Return the projects ``digest`` is bound to, sorted (empty when unbound)."""
        with self._read() as conn:
            return _bindings.projects_of(conn, digest)

    def bind_artifact(self, digest: str, project: str, *, bound_by: str, now: datetime) -> bool:
        """Bind ``digest`` to ``project`` too (idempotent).

        Returns:
            True when the digest was already bound to another project.

        Raises:
            InvalidArgument: a malformed digest or project name, or a naive ``now``.
        """
        bound = self._bind(digest, project, bound_by, now, first_only=False)
        return any(other != project for other in bound)

    def claim_artifact(self, digest: str, project: str, *, bound_by: str, now: datetime) -> tuple[str, ...]:
        """Bind ``digest`` to ``project`` only if it is bound to no project yet.

        Atomic: of concurrent first claims for one digest exactly one binds.

        Returns:
            The projects the digest is bound to afterwards, sorted.

        Raises:
            InvalidArgument: a malformed digest or project name, or a naive ``now``.
        """
        return self._bind(digest, project, bound_by, now, first_only=True) or (project,)

    def _bind(
        self, digest: str, project: str, bound_by: str, now: datetime, *, first_only: bool
    ) -> tuple[str, ...]:
        """The projects ``digest`` was bound to; adds ``project`` unless there (first_only: unless any is)."""
        _bindings.check_binding(digest, project)
        _aware(now, "now")
        with self._write() as conn:
            _bindings.lock_digest(conn, digest)
            bound = _bindings.projects_of(conn, digest)
            if project not in bound and not (first_only and bound):
                _bindings.insert_binding(conn, digest, project, bound_by, now)
        return bound

    def unbind_artifact(self, digest: str, project: str) -> bool:
        """Remove the binding of ``digest`` to ``project``; return whether there was one."""
        _bindings.check_binding(digest, project)
        with self._write() as conn:
            _bindings.lock_digest(conn, digest)
            return _bindings.delete_binding(conn, digest, project)

    def observe_statements(self, observe: Callable[[str, float], None]) -> None:
        """Call ``observe(kind, seconds)`` after every database statement (select, insert, ...).

        For the store latency metric: SQLAlchemy's cursor events time each round trip,
        a batch insert included, at a few microseconds per statement.
        """
        started: dict[int, float] = {}

        def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            started[id(cursor)] = time.perf_counter()

        def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            begun = started.pop(id(cursor), None)
            if begun is not None:
                observe(_statement_kind(statement), time.perf_counter() - begun)

        def failed(context: Any) -> None:
            cursor = getattr(context, "cursor", None)
            if cursor is not None:
                started.pop(id(cursor), None)

        sa.event.listen(self._engine, "before_cursor_execute", before)
        sa.event.listen(self._engine, "after_cursor_execute", after)
        sa.event.listen(self._engine, "handle_error", failed)


_KINDS = ("select", "insert", "update", "delete")


def _statement_kind(statement: str) -> str:
    head = statement.lstrip()[:6].lower()
    return head if head in _KINDS else "other"


# -- statements that vary with the filters: built once per shape ------------------


def _upserts(
    artifact: postgresql.Insert | sqlite.Insert, alias: postgresql.Insert | sqlite.Insert
) -> tuple[sa.Insert, sa.Insert]:
    """Return the upserts of an artifact and of an alias, from the dialect's INSERTs."""
    upsert_artifact = artifact.on_conflict_do_update(
        index_elements=[artifacts.c.digest],
        set_={
            "kind": artifact.excluded.kind,
            "name": sa.case((artifact.excluded.name != "", artifact.excluded.name), else_=artifacts.c.name),
            "first_seen": sa.case(
                (artifact.excluded.first_seen < artifacts.c.first_seen, artifact.excluded.first_seen),
                else_=artifacts.c.first_seen,
            ),
        },
    )
    # Tags are mutable: an alias seen with another digest moves there (and
    # its created_at restarts); one seen again with the same digest is kept.
    upsert_alias = alias.on_conflict_do_update(
        index_elements=[artifact_aliases.c.alias],
        set_={
            "digest": alias.excluded.digest,
            "created_at": sa.case(
                (artifact_aliases.c.digest == alias.excluded.digest, artifact_aliases.c.created_at),
                else_=alias.excluded.created_at,
            ),
        },
    )
    return upsert_artifact, upsert_alias


@cache
def _finding_filters(kinds: bool) -> tuple[sa.ColumnElement[bool], ...]:
    conditions = [
        findings.c.scan_id.in_(sa.bindparam("scan_ids", expanding=True)),
        findings.c.severity >= sa.bindparam("min_severity", type_=sa.SmallInteger),
    ]
    if kinds:
        conditions.append(findings.c.kind.in_(sa.bindparam("kinds", expanding=True)))
    return tuple(conditions)


@cache
def _finding_counts(kinds: bool) -> sa.Select[Any]:
    return (
        sa.select(findings.c.severity, sa.func.count())
        .where(*_finding_filters(kinds))
        .group_by(findings.c.severity)
    )


@cache
def _finding_page(kinds: bool, after: bool) -> sa.Select[Any]:
    statement = sa.select(findings).where(*_finding_filters(kinds))
    if after:
        # Severity descends while fingerprint and scan id ascend, so the key
        # cannot be one row-value comparison.
        severity = sa.bindparam("after_severity", type_=sa.SmallInteger)
        statement = statement.where(
            sa.or_(
                findings.c.severity < severity,
                sa.and_(
                    findings.c.severity == severity,
                    sa.tuple_(findings.c.fingerprint, findings.c.scan_id)
                    > sa.tuple_(sa.bindparam("after_fingerprint"), sa.bindparam("after_scan")),
                ),
            )
        )
    return statement.order_by(findings.c.severity.desc(), findings.c.fingerprint, findings.c.scan_id).limit(
        sa.bindparam("limit", type_=sa.Integer)
    )


@cache
def _sbom_page(artifact: bool, after: bool) -> sa.Select[Any]:
    statement = sa.select(sboms)
    if artifact:
        statement = statement.where(sboms.c.artifact_digest == sa.bindparam("digest"))
    if after:
        statement = statement.where(
            sa.tuple_(sboms.c.created_at, sboms.c.id)
            < sa.tuple_(sa.bindparam("after_at", type_=UtcDateTime), sa.bindparam("after_id"))
        )
    return statement.order_by(sboms.c.created_at.desc(), sboms.c.id.desc()).limit(
        sa.bindparam("limit", type_=sa.Integer)
    )


# Index entries read per round trip when a version range filters a search.
_KEY_CHUNK = 2000


def _ecosystem_of(identity: str) -> str:
    """The purl type of a normalised identity (``pkg:deb/debian/zlib1g`` -> ``deb``); ``""`` without one."""
    return identity[4:].split("/", 1)[0] if identity.startswith("pkg:") else ""


def _component_params(query: ComponentQuery, limit: int) -> dict[str, Any]:
    """Bound values of a component search, plus ``name_mode`` ("", "equal" or "like")."""
    params: dict[str, Any] = {"limit": limit + 1, "name_mode": "", "purl_mode": ""}
    if query.name:
        folded = query.name.casefold()
        if "*" in folded:
            params["name_mode"] = "like"
            params["name"] = "%".join(_escape_like(part) for part in folded.split("*"))
            params["name_low"], params["name_high"] = _prefix_range(folded.split("*", 1)[0])
        else:
            params["name_mode"] = "equal"
            params["name"] = folded
    if query.purl:
        from gate.sbom._purl_key import normalise, search_prefix

        prefix, version = search_prefix(query.purl)
        if query.versions is not None and normalise(query.purl) is not None:
            # A version range is about one package: its identity must be equal, not a prefix.
            params["purl_mode"] = "equal"
            params["purl"] = prefix
        else:
            params["purl_mode"] = "prefix"
            params["purl_low"], params["purl_high"] = _prefix_range(prefix)
        if version:
            params["version"] = version
    return params


def _prefix_range(prefix: str) -> tuple[str, str]:
    """Bounds ``low <= text < high`` of every text starting with ``prefix`` (byte-wise order)."""
    # U+10FFFF is the greatest code point: its UTF-8 bytes sort after any
    # character that can follow the prefix.
    return prefix, prefix + "\U0010ffff"


def _component_filters(name_mode: str, purl_mode: str, exact_version: bool) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if name_mode == "equal":
        conditions.append(sbom_components.c.name_lower == sa.bindparam("name"))
    elif name_mode == "like":
        conditions.append(sbom_components.c.name_lower.like(sa.bindparam("name"), escape="\\"))
        # The literal text before the first "*" as a range the index serves.
        conditions.append(sbom_components.c.name_lower >= sa.bindparam("name_low"))
        conditions.append(sbom_components.c.name_lower < sa.bindparam("name_high"))
    if purl_mode == "equal":
        conditions.append(sbom_components.c.purl_key == sa.bindparam("purl"))
    elif purl_mode == "prefix":
        # A prefix as a range, not LIKE: SQLite's LIKE ignores case and so
        # cannot use a binary index, and both backends seek a range directly.
        conditions.append(sbom_components.c.purl_key >= sa.bindparam("purl_low"))
        conditions.append(sbom_components.c.purl_key < sa.bindparam("purl_high"))
    if exact_version:
        conditions.append(sbom_components.c.purl_version == sa.bindparam("version"))
    return conditions


def _component_rows_by_key() -> dict[bool, sa.Select[Any]]:
    """Rows of a page by its keys, for purl (True) and name (False) searches.

    SQLite scans the table for a row-value IN, so the keys go in as the
    leading columns of an index (a few seeks each).
    """
    c = sbom_components.c
    joined = sa.select(sbom_components, sboms.c.artifact_digest).join(sboms, sboms.c.id == c.sbom_id)
    return {
        True: joined.where(
            c.purl_key.in_(sa.bindparam("leads", expanding=True)),
            c.purl_version.in_(sa.bindparam("versions", expanding=True)),
            c.sbom_id.in_(sa.bindparam("sboms", expanding=True)),
        ),
        False: joined.where(
            c.name_lower.in_(sa.bindparam("leads", expanding=True)),
            c.sbom_id.in_(sa.bindparam("sboms", expanding=True)),
        ),
    }


def _order_columns(by_purl: bool) -> tuple[sa.ColumnElement[Any], ...]:
    c = sbom_components.c
    if by_purl:
        return (c.purl_key, c.purl_version, c.sbom_id, c.position)
    return (c.name_lower, c.sbom_id, c.position)


def _component_order(
    by_purl: bool,
) -> tuple[str, tuple[KeyPart, ...], Callable[[Row[Any]], tuple[KeyValue, ...]]]:
    """The listing name, token parts and key of a component search's page order."""
    if by_purl:
        return (
            "components-purl",
            ("str", "str", "str", "int"),
            lambda row: (row.purl_key, row.purl_version, row.sbom_id, row.position),
        )
    return ("components", ("str", "str", "int"), lambda row: (row.name_lower, row.sbom_id, row.position))


def _after(columns: tuple[sa.ColumnElement[Any], ...]) -> sa.ColumnElement[bool]:
    bounds = [
        sa.bindparam(f"after_{index}", type_=sa.Integer if index == len(columns) - 1 else None)
        for index in range(len(columns))
    ]
    return sa.tuple_(*columns) > sa.tuple_(*bounds)


# The distinct versions of one package identity by a skip scan of the purl
# index: one seek per version, where DISTINCT reads every entry of a package
# found in thousands of SBOMs (57 ms for 3,000 on PostgreSQL, whose plan also
# visits the table).
_PACKAGE_VERSIONS = sa.text(
    "WITH RECURSIVE found(version) AS ("
    " SELECT min(purl_version) FROM sbom_components WHERE purl_key = :purl"
    " UNION ALL"
    " SELECT (SELECT min(purl_version) FROM sbom_components"
    " WHERE purl_key = :purl AND purl_version > found.version)"
    " FROM found WHERE found.version IS NOT NULL"
    ") SELECT version FROM found WHERE version IS NOT NULL"
)


@cache
def _version_run(name_mode: str, after: bool) -> sa.Select[Any]:
    """One package's components in one version, in SBOM and document order (one index run)."""
    c = sbom_components.c
    statement = (
        sa.select(sbom_components, sboms.c.artifact_digest)
        .join(sboms, sboms.c.id == c.sbom_id)
        .where(*_component_filters(name_mode, "equal", True))
    )
    if after:
        statement = statement.where(
            sa.tuple_(c.sbom_id, c.position)
            > sa.tuple_(sa.bindparam("after_0"), sa.bindparam("after_1", type_=sa.Integer))
        )
    return statement.order_by(c.sbom_id, c.position).limit(sa.bindparam("limit", type_=sa.Integer))


@cache
def _component_page(
    name_mode: str, purl_mode: str, exact_version: bool, by_purl: bool, after: bool
) -> sa.Select[Any]:
    statement = (
        sa.select(sbom_components, sboms.c.artifact_digest)
        .join(sboms, sboms.c.id == sbom_components.c.sbom_id)
        .where(*_component_filters(name_mode, purl_mode, exact_version))
    )
    columns = _order_columns(by_purl)
    if after:
        statement = statement.where(_after(columns))
    return statement.order_by(*columns).limit(sa.bindparam("limit", type_=sa.Integer))


@cache
def _component_keys(
    name_mode: str, purl_mode: str, exact_version: bool, by_purl: bool, after: bool
) -> sa.Select[Any]:
    """Page keys and versions only: for a purl search all of it comes from one covering index."""
    c = sbom_components.c
    statement = sa.select(c.name_lower, c.purl_key, c.sbom_id, c.position, c.purl_version).where(
        *_component_filters(name_mode, purl_mode, exact_version)
    )
    columns = _order_columns(by_purl)
    if after:
        statement = statement.where(_after(columns))
    return statement.order_by(*columns).limit(sa.bindparam("limit", type_=sa.Integer))


@cache
def _decision_page(
    artifact: bool, allowed: bool, stage: bool, since: bool, until: bool, after: bool
) -> sa.Select[Any]:
    statement = sa.select(decisions)
    if artifact:
        linked = sa.select(decision_artifacts.c.decision_id).where(
            decision_artifacts.c.digest == sa.bindparam("digest")
        )
        statement = statement.where(decisions.c.id.in_(linked))
    if allowed:
        statement = statement.where(decisions.c.allowed == sa.bindparam("allowed", type_=sa.Boolean))
    if stage:
        statement = statement.where(decisions.c.stage == sa.bindparam("stage"))
    if since:
        statement = statement.where(decisions.c.decided_at >= sa.bindparam("since", type_=UtcDateTime))
    if until:
        statement = statement.where(decisions.c.decided_at < sa.bindparam("until", type_=UtcDateTime))
    if after:
        statement = statement.where(
            sa.tuple_(decisions.c.decided_at, decisions.c.id)
            < sa.tuple_(sa.bindparam("after_at", type_=UtcDateTime), sa.bindparam("after_id"))
        )
    return statement.order_by(decisions.c.decided_at.desc(), decisions.c.id.desc()).limit(
        sa.bindparam("limit", type_=sa.Integer)
    )


# -- helpers -------------------------------------------------------------------------


def _cut(
    rows: Sequence[Row[Any]],
    limit: int,
    listing: str,
    key: Callable[[Row[Any]], Sequence[KeyValue]],
    scope: str,
) -> tuple[Sequence[Row[Any]], str]:
    """Trim the look-ahead row fetched beyond ``limit``; return the rows and the next token."""
    if len(rows) <= limit:
        return rows, ""
    rows = rows[:limit]
    return rows, encode_token(listing, key(rows[-1]), scope)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _bulk_sql(engine: Engine, table: sa.Table) -> tuple[str, str]:
    """The driver-level INSERT (SQLite) and COPY (PostgreSQL) of every column of ``table``, in order."""
    names = ", ".join(engine.dialect.identifier_preparer.quote(column.name) for column in table.c)
    marks = ", ".join("?" for _ in table.c)
    insert = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608 (constant names)
    return insert, f"COPY {table.name} ({names}) FROM STDIN"


def _component_rows(sbom_id: str, components: Sequence[Component]) -> list[tuple[Any, ...]]:
    """Rows of the component index in sbom_components column order, licences as JSON text."""
    from gate.sbom._purl_key import normalise

    rows: list[tuple[Any, ...]] = []
    for position, component in enumerate(components):
        key = normalise(component.purl) if component.purl else None
        rows.append(
            (
                sbom_id,
                position,
                component.name,
                component.name.casefold(),
                component.version,
                component.purl,
                "" if key is None else key.identity,
                component.version if key is None else key.version,
                "" if key is None else key.ecosystem,
                component.type,
                component.group,
                _licences_json(component.licenses),
            )
        )
    return rows


@lru_cache(maxsize=4096)
def _licences_json(licenses: tuple[str, ...]) -> str:
    # Few distinct licence lists repeat across millions of rows in a bulk load.
    return _to_json(list(licenses))


def _required(value: str, field: str) -> None:
    if not value:
        raise InvalidArgument(field, "required, got an empty string")


def _aware(value: datetime, field: str) -> datetime:
    if value.utcoffset() is None:
        raise InvalidArgument(field, f"expected a timezone-aware datetime, got naive {value.isoformat()}")
    return value


def _finite(value: float, field: str) -> None:
    if not math.isfinite(value):
        raise InvalidArgument(field, f"expected a finite number, got {value}")


def _duplicate(what: str, key: str) -> Callable[[exc.IntegrityError], GateError]:
    def translate(error: exc.IntegrityError) -> GateError:
        if is_unique_violation(error):
            return Conflict(f"{what} {key!r} already exists")
        return store_error(error)

    return translate


def _scan_integrity(scan: Scan) -> Callable[[exc.IntegrityError], GateError]:
    def translate(error: exc.IntegrityError) -> GateError:
        if is_unique_violation(error):
            return Conflict(f"scan {scan.id!r} already exists")
        if is_foreign_key_violation(error):
            return NotFound("artifact", scan.artifact_digest)
        return store_error(error)

    return translate


def _scan_values(scan: Scan) -> dict[str, Any]:
    _required(scan.id, "id")
    _required(scan.artifact_digest, "artifact_digest")
    _required(scan.scanner, "scanner")
    _aware(scan.created_at, "created_at")
    if scan.started_at is not None:
        _aware(scan.started_at, "started_at")
    if scan.finished_at is not None:
        _aware(scan.finished_at, "finished_at")
    counts = scan.counts
    return {
        "id": scan.id,
        "artifact_digest": scan.artifact_digest,
        "scanner": scan.scanner,
        "scanner_version": scan.scanner_version,
        "target_kind": scan.target.kind.value,
        "target_location": scan.target.location,
        "state": scan.state.value,
        "error": scan.error,
        "created_at": scan.created_at,
        "started_at": scan.started_at,
        "finished_at": scan.finished_at,
        "count_critical": counts.critical,
        "count_high": counts.high,
        "count_medium": counts.medium,
        "count_low": counts.low,
        "count_info": counts.info,
        "count_unknown": counts.unknown,
        "finding_count": scan.finding_count,
        "imported": scan.imported,
    }


def _scan(row: Row[Any]) -> Scan:
    return Scan(
        id=row.id,
        artifact_digest=row.artifact_digest,
        scanner=row.scanner,
        target=ScanTarget(kind=TargetKind(row.target_kind), location=row.target_location),
        state=ScanState(row.state),
        created_at=row.created_at,
        scanner_version=row.scanner_version,
        error=row.error,
        started_at=row.started_at,
        finished_at=row.finished_at,
        counts=SeverityCounts(
            critical=row.count_critical,
            high=row.count_high,
            medium=row.count_medium,
            low=row.count_low,
            info=row.count_info,
            unknown=row.count_unknown,
        ),
        finding_count=row.finding_count,
        imported=row.imported,
    )


# Column order of the driver-level findings insert (see _insert_findings).
_FINDING_COLUMNS = (
    "scan_id",
    "fingerprint",
    "scanner",
    "kind",
    "rule_id",
    "title",
    "severity",
    "description",
    "package",
    "location",
    "fix_available",
    "references",
    "cvss_score",
    "redacted_match",
    "tool_severity",
    "status",
)
_to_json = partial(json.dumps, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _finding_rows(scan_id: str, items: Sequence[Finding]) -> list[tuple[Any, ...]]:
    """Rows for the findings insert, JSON columns already text.

    A finding with an empty ``scan_id`` belongs to ``scan_id`` (parsers leave it
    empty: binding 10,000 findings by copying them costs more than storing them).
    """
    rows: list[tuple[Any, ...]] = []
    seen: set[str] = set()
    for index, finding in enumerate(items):
        if finding.scan_id and finding.scan_id != scan_id:
            raise InvalidArgument(
                f"findings[{index}].scan_id", f"expected {scan_id!r} or empty, got {finding.scan_id!r}"
            )
        _required(finding.fingerprint, f"findings[{index}].fingerprint")
        if finding.fingerprint in seen:
            raise InvalidArgument(
                f"findings[{index}].fingerprint",
                f"expected unique fingerprints, got {finding.fingerprint!r} again",
            )
        seen.add(finding.fingerprint)
        _finite(finding.cvss_score, f"findings[{index}].cvss_score")
        package = finding.package
        location = finding.location
        rows.append(
            (
                scan_id,
                finding.fingerprint,
                finding.scanner,
                finding.kind.value,
                finding.rule_id,
                finding.title,
                int(finding.severity),
                finding.description,
                None
                if package is None
                else _to_json(
                    {
                        "name": package.name,
                        "version": package.version,
                        "purl": package.purl,
                        "fixed_versions": list(package.fixed_versions),
                    }
                ),
                None
                if location is None
                else _to_json(
                    {
                        "path": location.path,
                        "start_line": location.start_line,
                        "end_line": location.end_line,
                        "layer_digest": location.layer_digest,
                        "commit": location.commit,
                    }
                ),
                finding.fix_available,
                _to_json(list(finding.references)),
                float(finding.cvss_score),
                finding.redacted_match,
                finding.tool_severity,
                finding.status.value,
            )
        )
    return rows


def _finding(row: Row[Any]) -> Finding:
    package: Mapping[str, Any] | None = row.package
    location: Mapping[str, Any] | None = row.location
    return Finding(
        fingerprint=row.fingerprint,
        scan_id=row.scan_id,
        scanner=row.scanner,
        kind=FindingKind(row.kind),
        rule_id=row.rule_id,
        title=row.title,
        severity=Severity(row.severity),
        description=row.description,
        package=None
        if package is None
        else Package(
            name=package["name"],
            version=package["version"],
            purl=package["purl"],
            fixed_versions=tuple(package["fixed_versions"]),
        ),
        location=None
        if location is None
        else Location(
            path=location["path"],
            start_line=location["start_line"],
            end_line=location["end_line"],
            layer_digest=location["layer_digest"],
            commit=location.get("commit", ""),
        ),
        fix_available=row.fix_available,
        references=tuple(row.references),
        cvss_score=row.cvss_score,
        redacted_match=row.redacted_match,
        tool_severity=row.tool_severity,
        status=FindingStatus(row.status),
    )


def _sbom(row: Row[Any]) -> Sbom:
    return Sbom(
        id=row.id,
        artifact_digest=row.artifact_digest,
        format=SbomFormat(row.format),
        spec_version=row.spec_version,
        generator=row.generator,
        created_at=row.created_at,
        component_count=row.component_count,
        document_digest=row.document_digest,
    )


def _component(row: Row[Any]) -> Component:
    return Component(
        type=row.type,
        name=row.name,
        version=row.version,
        group=row.group,
        purl=row.purl,
        licenses=tuple(row.licenses),
    )


def _log_and_times(result: SignatureResult | AttestationResult, field: str) -> dict[str, Any]:
    """The log position and times of a check as its JSON object keeps them (ISO 8601, UTC).

    Records written before these were kept lack the keys; :func:`_verification` reads
    them as unknown.
    """
    return {
        "integrated_time": _json_time(result.integrated_time, f"{field}.integrated_time"),
        "tlog_tree": result.tlog_tree,
        "tlog_tree_index": result.tlog_tree_index,
        "timestamp": _json_time(result.timestamp, f"{field}.timestamp"),
    }


def _json_time(value: datetime | None, field: str) -> str | None:
    return None if value is None else _aware(value, field).astimezone(UTC).isoformat()


def _read_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _verification(row: Row[Any]) -> Verification:
    return Verification(
        id=row.id,
        artifact_digest=row.artifact_digest,
        verified=row.verified,
        verified_at=row.verified_at,
        signatures=tuple(
            SignatureResult(
                verified=s["verified"],
                signer=s["signer"],
                tlog_index=s["tlog_index"],
                error=s["error"],
                integrated_time=_read_time(s.get("integrated_time")),
                tlog_tree=s.get("tlog_tree", ""),
                tlog_tree_index=s.get("tlog_tree_index", -1),
                timestamp=_read_time(s.get("timestamp")),
            )
            for s in row.signatures
        ),
        attestations=tuple(
            AttestationResult(
                predicate_type=a["predicate_type"],
                verified=a["verified"],
                signer=a["signer"],
                error=a["error"],
                tlog_index=a.get("tlog_index", -1),
                integrated_time=_read_time(a.get("integrated_time")),
                tlog_tree=a.get("tlog_tree", ""),
                tlog_tree_index=a.get("tlog_tree_index", -1),
                timestamp=_read_time(a.get("timestamp")),
            )
            for a in row.attestations
        ),
        message=row.message,
    )


# Only JSON's own types: datetimes, dataclasses and subclasses are errors, as with json.dumps.
_STRICT_JSON = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _unchanged(value: Any) -> Any:
    return value


def _json_text(value: Any) -> str:
    """JSON text of ``value``; TypeError or ValueError when it is not JSON-compatible.

    orjson: the request of an admission review is ~3 KB and the stdlib encoder
    took ~0.1 ms of every decision stored. orjson writes NaN and infinities as
    null instead of failing: output with a null must read back equal to the
    value (NaN never equals null), else the stdlib decides (tuples also differ).
    """
    text = orjson.dumps(value, option=_STRICT_JSON)
    # find, not `in`: `bytes in bytes` first tries the operand as an integer, raising and
    # clearing a TypeError each time (CPython 3.11); five columns a decision.
    if text.find(b"null") != -1 and orjson.loads(text) != value:
        json.dumps(value, allow_nan=False)
    return text.decode()


def _decision_values(decision: Decision) -> dict[str, Any]:
    """The row of a decision, checked: JSON-compatible request, finite timings.

    JSON columns are serialized here (see ``_insert_decisions_sql``).
    """
    _required(decision.id, "id")
    _aware(decision.decided_at, "decided_at")
    try:
        decoded = decision.request
        if type(decoded) is DecodedJson:
            # The text its request digest was computed from (keys sorted), not a second dump.
            request = decoded.canonical_json().decode()
        else:
            request = _json_text(dict(decoded))
    except (TypeError, ValueError) as error:
        raise InvalidArgument("request", f"expected JSON-compatible values, got {error}") from error
    timings = decision.timings
    for name in ("total", "policy", "evidence"):
        _finite(getattr(timings, name), f"timings.{name}")
    # gate.decisions.storable escapes these before the seal; a caller of the port that did not
    # gets the same refusal from SQLite as from PostgreSQL (which cannot store a NUL in text).
    if decision_text_holds_nul(decision):
        raise InvalidArgument("decision", "got a NUL character in its message, subject, caller or stage")
    return {
        "id": decision.id,
        "allowed": decision.allowed,
        "message": decision.message,
        "stage": decision.stage,
        "decided_at": decision.decided_at,
        # Each result as a list in _RESULT_FIELDS' order: a review's 20 results took 4.4 KB as
        # objects, 3.0 KB so; the row's size sets how often the SQLite log starts over.
        "results": _json_text(
            [
                [
                    r.policy,
                    r.rule,
                    OUTCOME_TEXT[r.outcome],
                    r.message,
                    r.remediation,
                    ACTION_TEXT[r.action],
                    r.resource,
                ]
                for r in decision.results
            ]
        ),
        "policy_bundle_digest": decision.policy_bundle_digest,
        "evidence_ids": _json_text(list(decision.evidence_ids)),
        "caller": decision.caller,
        "subject": decision.subject,
        "request_digest": decision.request_digest,
        "artifact_digests": _json_text(list(decision.artifact_digests)),
        "timings": _json_text(
            {"total": timings.total, "policy": timings.policy, "evidence": timings.evidence}
        ),
        "request": request,
        "signature": bytes(decision.signature),
    }


_RESULT_FIELDS = ("policy", "rule", "outcome", "message", "remediation", "action", "resource")


def _rule_result(stored: Any) -> RuleResult:
    """A stored rule result: a list in ``_RESULT_FIELDS`` order, or an object (rows written before)."""
    fields: Mapping[str, str] = (
        dict(zip(_RESULT_FIELDS, stored, strict=True)) if isinstance(stored, list) else stored
    )
    return RuleResult(
        policy=fields["policy"],
        rule=fields["rule"],
        outcome=RuleOutcome(fields["outcome"]),
        message=fields["message"],
        remediation=fields["remediation"],
        action=EnforcementAction(fields["action"]),
        resource=fields["resource"],
    )


def _decision(row: Row[Any]) -> Decision:
    timings: Mapping[str, float] = row.timings
    return Decision(
        id=row.id,
        allowed=row.allowed,
        message=row.message,
        stage=row.stage,
        decided_at=row.decided_at,
        results=tuple(_rule_result(r) for r in row.results),
        policy_bundle_digest=row.policy_bundle_digest,
        evidence_ids=tuple(row.evidence_ids),
        caller=row.caller,
        artifact_digests=tuple(row.artifact_digests),
        timings=DecisionTimings(
            total=timings["total"], policy=timings["policy"], evidence=timings["evidence"]
        ),
        request=row.request,
        signature=bytes(row.signature),
        subject=row.subject,
        request_digest=row.request_digest,
    )
