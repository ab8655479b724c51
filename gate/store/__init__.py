"""The evidence store: where gate keeps artifacts and the evidence about them.

The core talks to the :class:`EvidenceStore` port only. :func:`open_store`
returns its SQL implementation for a ``database_url``:

* ``sqlite:///path/to/gate.db`` -- a file (its directory is created), in WAL
  mode, for a single node; ``sqlite:///:memory:`` for tests and trials.
* ``postgresql://``, ``postgres://`` or ``postgresql+psycopg://`` -- psycopg 3,
  installed by ``pip install 'gate[postgres]'``.

Opening a store migrates its schema to the current revision first (see
:mod:`gate.store.migrations`); when it is already current that costs two
small queries. Every method of the store may raise
:class:`gate.errors.StoreUnavailable` when the database fails.
"""

from __future__ import annotations

from gate.store._engine import create_store_engine, parse_store_url
from gate.store._migrate import migrate
from gate.store._port import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ComponentQuery,
    DecisionQuery,
    EvidenceStore,
    FindingPage,
    FindingQuery,
    NewSbom,
    ScanReport,
)
from gate.store._sql import SqlStore

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "ComponentQuery",
    "DecisionQuery",
    "EvidenceStore",
    "FindingPage",
    "FindingQuery",
    "NewSbom",
    "ScanReport",
    "SqlStore",
    "open_store",
    "shared_between_processes",
]


def shared_between_processes(url: str) -> bool:
    """Whether another process opening ``url`` reaches the same database (not so in-memory SQLite).

    Raises:
        InvalidArgument: the URL is not a store URL (see :func:`open_store`).
    """
    target = parse_store_url(url)
    return target.backend == "postgresql" or target.sqlite_path is not None


def open_store(url: str, *, pool_size: int = 8, max_overflow: int = 8, timeout: float = 5.0) -> EvidenceStore:
    """Open the evidence store at ``url``, migrating its schema to the head revision.

    Safe to call from several processes at once: one migrates while the
    others wait, then find the schema current.

    Args:
        url: ``sqlite:///<path>``, ``sqlite:///:memory:``, or a PostgreSQL URL
            (``postgresql://``, ``postgres://``, ``postgresql+psycopg://``);
            libpq parameters such as ``connect_timeout`` or ``sslmode`` go in
            its query string.
        pool_size: connections kept open (ignored for ``:memory:``).
        max_overflow: connections opened beyond ``pool_size`` under load.
        timeout: seconds to wait for a pooled connection, for PostgreSQL to
            accept a connection (unless the URL sets ``connect_timeout``) and
            for a SQLite lock.

    Returns:
        A thread-safe :class:`SqlStore`; call ``close()`` when done.

    Raises:
        InvalidArgument: the URL's scheme or a pool setting is not accepted
            (field ``database_url``, ``pool_size``, ``max_overflow`` or ``timeout``).
        StoreUnavailable: the database cannot be reached or migrated, or
            psycopg is missing for a PostgreSQL URL.
    """
    target = parse_store_url(url)
    engine = create_store_engine(target, pool_size=pool_size, max_overflow=max_overflow, timeout=timeout)
    try:
        migrate(engine, target)
    except BaseException:
        engine.dispose()
        raise
    return SqlStore(engine)
