"""Primary-key lookups straight through the database driver, one connection per thread.

Why route around SQLAlchemy here: a lookup such as ``get_scan`` of an unknown
id costs ~10 µs in SQLite itself but ~120 µs through SQLAlchemy (pool
checkout, Connection and Result objects, event dispatch), and on PostgreSQL
the pool's pre-ping doubles the round trips. These lookups sit on the hot path
of every RPC that names a record. The statements are still built with
SQLAlchemy and compiled once by the engine's dialect, connections still come
from the engine (so its connect-time settings apply), and values still pass
through the column types' own result processors: the rows read here are
exactly what the SQLAlchemy path returns.

Each thread keeps its own connection (DBAPI connections must not be shared
while in use), in autocommit, so a lookup is one statement and one round
trip. A connection the server dropped is replaced once per lookup; lookups
are reads, so repeating one is safe.
"""

from __future__ import annotations

import contextlib
import threading
from collections import namedtuple
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gate.store._errors import store_error

Lookup = Callable[[Any], Any]


class PointReader:
    """Runs single-row SELECTs with one bound parameter on per-thread driver connections."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect
        self._driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False

    def lookup(self, statement: sa.Select[Any]) -> Lookup:
        """Compile ``statement`` (one bound parameter) into a fast ``key -> row | None`` function.

        Rows have the statement's column names as attributes, like SQLAlchemy rows.
        """
        compiled = statement.compile(dialect=self._dialect)
        names = list(compiled.params)
        if len(names) != 1:
            raise ValueError(f"a point lookup takes exactly one bound parameter, got {names}")
        sql = str(compiled)
        positional = bool(compiled.positiontup)
        name = names[0]
        columns = list(statement.selected_columns)
        row_type = namedtuple("PointRow", [column.key for column in columns])  # type: ignore[misc]
        processors = [
            column.type.dialect_impl(self._dialect).result_processor(self._dialect, None)
            for column in columns
        ]
        active = [(index, process) for index, process in enumerate(processors) if process is not None]

        def run(key: Any) -> Any:
            raw = self._fetch_one(sql, (key,) if positional else {name: key})
            if raw is None:
                return None
            values = list(raw)
            for index, process in active:
                values[index] = process(values[index])
            return row_type(*values)

        return run

    def _fetch_one(self, sql: str, params: Any) -> Any:
        for attempt in (1, 2):
            connection = self._connection()
            try:
                cursor = connection.cursor()
                try:
                    cursor.execute(sql, params)
                    return cursor.fetchone()
                finally:
                    cursor.close()
            except self._driver_error as error:
                self._discard(connection)
                if attempt == 2 or not self._is_disconnect(error, connection):
                    raise store_error(error) from error
        raise AssertionError("unreachable")

    def _is_disconnect(self, error: Exception, connection: Any) -> bool:
        return bool(self._dialect.is_disconnect(error, connection, None))  # type: ignore[arg-type]

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        if self._closed:
            raise store_error(RuntimeError("the store is closed"))
        try:
            proxied = self._engine.raw_connection()
            # Detached: the connection leaves the pool for good (the pool may
            # open another) and belongs to this thread until close().
            proxied.detach()
            connection = proxied.dbapi_connection
            assert connection is not None
            if self._dialect.name == "postgresql":
                connection.autocommit = True
        except sa.exc.SQLAlchemyError as error:
            raise store_error(error) from error
        except self._driver_error as error:
            raise store_error(error) from error
        with self._lock:
            self._all.append(connection)
        self._local.connection = connection
        return connection

    def _discard(self, connection: Any) -> None:
        self._local.connection = None
        with self._lock:
            if connection in self._all:
                self._all.remove(connection)
        # Already broken: closing it may fail too, and there is nothing more to release.
        with contextlib.suppress(self._driver_error):
            connection.close()

    def close(self) -> None:
        """Close every connection; later lookups fail with StoreUnavailable."""
        with self._lock:
            self._closed = True
            connections, self._all = self._all, []
        for connection in connections:
            with contextlib.suppress(self._driver_error):  # one the server already dropped
                connection.close()
        self._local = threading.local()
