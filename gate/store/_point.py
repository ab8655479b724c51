"""Primary-key lookups on a SQLite file straight through the ``sqlite3`` module.

Why route around SQLAlchemy here: a lookup such as ``get_scan`` of an unknown
id costs ~10 µs in SQLite itself but ~120 µs through SQLAlchemy (pool
checkout, Connection and Result objects, event dispatch), and these lookups
sit on the hot path of every RPC that names a record. The statements are
still built with SQLAlchemy and compiled once by its SQLite dialect, and
values still pass through the column types' own result processors, so the
rows read here are exactly what the SQLAlchemy path would return.

Each thread gets its own read-only connection (SQLite connections must not
be shared while in use); with WAL, readers see the latest commit and never
block the writer.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import namedtuple
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from gate.store._errors import store_unavailable

Lookup = Callable[[Any], Any]


class SqlitePointReader:
    """Runs single-row SELECTs with one bound parameter on per-thread read-only connections."""

    def __init__(self, path: Path, dialect: Dialect, busy_timeout_ms: int) -> None:
        self._uri = path.resolve().as_uri() + "?mode=ro"
        self._dialect = dialect
        self._busy_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def lookup(self, statement: sa.Select[Any]) -> Lookup:
        """Compile ``statement`` (one bound parameter) into a fast ``key -> row | None`` function.

        Rows have the statement's column names as attributes, like SQLAlchemy rows.
        """
        compiled = statement.compile(dialect=self._dialect)
        if len(compiled.positiontup or ()) != 1:
            raise ValueError("a point lookup takes exactly one bound parameter")
        sql = str(compiled)
        columns = list(statement.selected_columns)
        row_type = namedtuple("PointRow", [column.key for column in columns])  # type: ignore[misc]
        processors = [
            column.type.dialect_impl(self._dialect).result_processor(self._dialect, None)
            for column in columns
        ]
        active = [(index, p) for index, p in enumerate(processors) if p is not None]
        connection = self._connection

        def run(key: Any) -> Any:
            try:
                raw = connection().execute(sql, (key,)).fetchone()
            except sqlite3.Error as error:
                raise store_unavailable(error) from error
            if raw is None:
                return None
            values = list(raw)
            for index, process in active:
                values[index] = process(values[index])
            return row_type(*values)

        return run

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            if self._closed:
                raise store_unavailable(sqlite3.ProgrammingError("the store is closed"))
            # check_same_thread=False only so that close() may run on another
            # thread; in use, a connection belongs to the thread that opened it.
            connection = sqlite3.connect(self._uri, uri=True, check_same_thread=False, isolation_level=None)
            connection.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            with self._lock:
                self._all.append(connection)
            self._local.connection = connection
        return connection

    def close(self) -> None:
        """Close every connection opened so far; later lookups fail with StoreUnavailable."""
        with self._lock:
            self._closed = True
            for connection in self._all:
                connection.close()
            self._all.clear()
        self._local = threading.local()
