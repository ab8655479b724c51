"""Engines for the SQL evidence store: URL checks, pools and connection set-up."""

from __future__ import annotations

import importlib
import json
import re
import sqlite3
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool, StaticPool

from gate.errors import InvalidArgument, StoreUnavailable

POSTGRES_EXTRA_HINT = "PostgreSQL support needs the postgres extra: pip install 'gate[postgres]'"

_SQLITE_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite"})
_POSTGRES_DRIVERS = frozenset({"postgresql", "postgres", "postgresql+psycopg"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")

# Compact JSON without NaN/Infinity: PostgreSQL's json type rejects those, so
# SQLite must not accept what PostgreSQL would refuse.
_json_serializer = partial(json.dumps, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True, slots=True)
class StoreTarget:
    """Where a store URL points, once parsed and normalised."""

    url: URL
    backend: str  # "sqlite" or "postgresql"
    sqlite_path: Path | None  # None for PostgreSQL and for an in-memory SQLite database


def parse_store_url(url: str) -> StoreTarget:
    """Check and normalise a ``database_url``.

    Accepted: ``sqlite:///path``, ``sqlite:///:memory:``, ``postgresql://``,
    ``postgres://`` and ``postgresql+psycopg://`` (the first two use psycopg 3).

    Raises:
        InvalidArgument: the scheme is none of these (the message shows only
            the scheme: a URL may hold a password).
    """
    match = _SCHEME.match(url)
    scheme = match.group(1) if match else url.split(":", 1)[0][:20]
    if scheme.lower() not in _SQLITE_DRIVERS | _POSTGRES_DRIVERS:
        raise InvalidArgument("database_url", f"expected sqlite:/// or postgresql://, got {scheme!r}")
    try:
        parsed = sa.make_url(url)
    except exc.ArgumentError as error:
        raise InvalidArgument(
            "database_url",
            f"expected sqlite:///<path> or postgresql://<host>/<db>, got an unparsable {scheme} URL",
        ) from error
    if scheme.lower() in _POSTGRES_DRIVERS:
        return StoreTarget(parsed.set(drivername="postgresql+psycopg"), "postgresql", None)
    database = parsed.database or ""
    if database in ("", ":memory:"):
        return StoreTarget(parsed.set(drivername="sqlite+pysqlite", database=":memory:"), "sqlite", None)
    return StoreTarget(parsed.set(drivername="sqlite+pysqlite"), "sqlite", Path(database))


def create_store_engine(
    target: StoreTarget, *, pool_size: int = 8, max_overflow: int = 8, timeout: float = 5.0
) -> Engine:
    """Create the engine for a parsed store URL (no connection is made yet).

    Args:
        target: the parsed URL.
        pool_size: connections kept open (PostgreSQL and SQLite files).
        max_overflow: extra connections opened under load, closed when returned.
        timeout: seconds to wait for a pooled connection, for a PostgreSQL
            server to accept a connection, and for a SQLite lock.

    Raises:
        InvalidArgument: a pool setting is out of range.
        StoreUnavailable: psycopg is not installed, or a SQLite database's
            directory cannot be created.
    """
    if pool_size < 1:
        raise InvalidArgument("pool_size", f"expected at least 1, got {pool_size}")
    if max_overflow < 0:
        raise InvalidArgument("max_overflow", f"expected 0 or more, got {max_overflow}")
    if timeout <= 0:
        raise InvalidArgument("timeout", f"expected a positive number of seconds, got {timeout}")
    if target.backend == "postgresql":
        return _postgres_engine(target.url, pool_size, max_overflow, timeout)
    return _sqlite_engine(target, pool_size, max_overflow, timeout)


def _postgres_engine(url: URL, pool_size: int, max_overflow: int, timeout: float) -> Engine:
    try:
        importlib.import_module("psycopg")
    except ImportError as error:
        raise StoreUnavailable(POSTGRES_EXTRA_HINT) from error
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        # libpq counts whole seconds and treats 1 as 2.
        connect_args["connect_timeout"] = max(2, round(timeout))
    if "application_name" not in url.query:
        connect_args["application_name"] = "gate"
    # A partition (a dead route, a vanished pod IP) closes nothing: without these a query waits
    # for the kernel's retransmission timeout (about 15 minutes) and holds its worker thread.
    # tcp_user_timeout ends a connection whose sent bytes stay unacknowledged; the keepalives
    # end an idle pooled one whose peer is gone.
    for key, value in (
        ("keepalives", 1),
        ("keepalives_idle", 10),
        ("keepalives_interval", 3),
        ("keepalives_count", 3),
        ("tcp_user_timeout", round(max(timeout, 5.0) * 2000)),
    ):
        if key not in url.query:
            connect_args[key] = value
    engine = sa.create_engine(
        url,
        poolclass=QueuePool,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=timeout,
        # A server restart or an idle-timeout proxy closes pooled connections;
        # the ping turns that into a reconnect instead of a failed request.
        pool_pre_ping=True,
        connect_args=connect_args,
        json_serializer=_json_serializer,
    )
    # Those settings do not end a read from a peer whose kernel still acknowledges bytes (a
    # frozen server, a stuck proxy): connections that honour the caller's answer budget do
    # (gate.store._budget).
    from gate.store import _pgwait

    @event.listens_for(engine, "do_connect")
    def _budgeted_connect(
        _dialect: Any, _record: ConnectionPoolEntry, cargs: list[Any], cparams: dict[str, Any]
    ) -> Any:
        return _pgwait.connect(cargs, cparams)

    return engine


def _sqlite_engine(target: StoreTarget, pool_size: int, max_overflow: int, timeout: float) -> Engine:
    connect_args: dict[str, Any] = {"check_same_thread": False}
    engine: Engine
    if target.sqlite_path is None:
        # Every connection to ":memory:" is a database of its own, so all
        # threads must share one connection; SqlStore serialises its use.
        engine = sa.create_engine(
            target.url, poolclass=StaticPool, connect_args=connect_args, json_serializer=_json_serializer
        )
    else:
        try:
            target.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreUnavailable(
                f"evidence store unavailable: cannot create the directory of the SQLite database: "
                f"{error.strerror or type(error).__name__}"
            ) from error
        # QueuePool rather than SingletonThreadPool: the gRPC thread pool may
        # run many threads, and one connection per thread would grow without
        # bound and be closed at random. check_same_thread=False is safe since
        # the pool hands a connection to one thread at a time, and with WAL
        # readers on their own connections run alongside the single writer.
        engine = sa.create_engine(
            target.url,
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=timeout,
            connect_args=connect_args,
            json_serializer=_json_serializer,
        )
    busy_ms = round(timeout * 1000)
    wal = target.sqlite_path is not None

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take BEGIN away from the sqlite3 module (which would skip it before
        # SELECT and DDL); writer() issues it instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in sqlite_pragmas(busy_ms):
                cursor.execute(f"PRAGMA {pragma}")
            if wal:
                _enable_wal(cursor, timeout)
        finally:
            cursor.close()

    return engine


def sqlite_pragmas(busy_ms: int) -> tuple[str, ...]:
    """The settings of every connection gate opens to a SQLite database (``PRAGMA`` omitted)."""
    return (
        f"busy_timeout = {busy_ms}",
        # NORMAL is durable across application crashes in WAL mode; only a power loss can drop
        # the last commits, never corrupt the file.
        "synchronous = NORMAL",
        "foreign_keys = ON",
    )


def writer(engine: Engine) -> Engine:
    """Return the handle of ``engine`` to run write transactions (and migrations) through.

    It shares the engine's pool. On SQLite its transactions begin with
    ``BEGIN IMMEDIATE``; connections of the engine itself never emit BEGIN,
    so a read is one statement that sees the latest commit.
    """
    handle = engine.execution_options()
    if engine.dialect.name == "sqlite":
        # Listening on the option engine keeps this hook off the read path.
        @event.listens_for(handle, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # The write lock is taken up front, where busy_timeout waits for
            # it; a deferred transaction that reads first and writes later
            # fails at once with SQLITE_BUSY if another writer committed in
            # between.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return handle


# Page size of a database gate creates: SQLite's default, set so that a build with another
# default changes nothing. Gates before 2026-11-30 created 16 KiB pages, for admission rows of
# ~15 KB; rows are 3-7 KB now, and every commit writes each page it touched into the log whole:
# counted by callgrind, a served Decide committed alone took 3.2 % fewer instructions on 4 KiB
# pages and a review in batches of 32 0.4 % fewer (benchmarks/README.md). Older files keep theirs.
NEW_DATABASE_PAGE_SIZE = 4096


def _enable_wal(cursor: Any, timeout: float) -> None:
    """Switch the database to WAL mode (kept in the file, so usually already done)."""
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    # Only a database with no pages yet takes it (and only before WAL mode): an existing one
    # keeps its page size.
    cursor.execute(f"PRAGMA page_size = {NEW_DATABASE_PAGE_SIZE}")
    # The switch needs the database to itself, and SQLite reports a clash
    # with another connection at once instead of calling the busy handler:
    # two processes opening a new database together meet exactly that.
    deadline = time.monotonic() + timeout
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
