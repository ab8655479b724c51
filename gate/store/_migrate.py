"""Bring a store's schema to the head revision at start-up, safely and quickly.

The common case -- the schema is already at :data:`HEAD_REVISION` -- costs one
connection and two small queries, and never imports Alembic (whose import
alone takes about half a second). Otherwise the upgrade runs under a lock
that serialises concurrent starters: a session advisory lock with a fixed
key on PostgreSQL (taken with ``pg_try_advisory_lock``, polled so that the
wait can time out), an exclusive ``flock`` on ``<database>.migrate.lock``
beside a SQLite file. The
second starter then finds the schema at head and Alembic does nothing.

There is no ``alembic.ini``: :func:`alembic_config` builds Alembic's
configuration in code, pointing at the ``migrations`` package.

To add a revision (``NNNN`` is the next number; ``0002`` after ``0001``):

1. Change :mod:`gate.store._schema`.
2. Generate the migration against a database at the current head::

       python - <<'PY'
       from alembic import command
       from gate.store._migrate import alembic_config
       config = alembic_config("sqlite:////tmp/gate-migrate.db")
       command.upgrade(config, "head")
       command.revision(config, message="add widgets", rev_id="NNNN", autogenerate=True)
       PY

   Without ``autogenerate=True`` the file starts empty. Either way, read it:
   spell out every ``op`` call (types as in ``_schema``, ``Key`` columns with
   their PostgreSQL "C" collation), make ``downgrade`` undo ``upgrade``, and
   run ``ruff check --fix`` and ``ruff format`` on it.
3. Set :data:`HEAD_REVISION` below to ``"NNNN"``; a test
   fails until it matches Alembic's head, and another until the migrations
   and ``_schema`` agree.

Revisions must be backward compatible with the previous release's code
(add, don't rename or drop in the same release), since during a rolling
update both versions use the schema.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gate.errors import StoreUnavailable
from gate.store._engine import StoreTarget, writer
from gate.store._errors import store_error

if TYPE_CHECKING:
    from alembic.config import Config

#: The newest revision in ``migrations/versions``; a test checks it against
#: Alembic's own view of the head, so bump it with every new revision.
HEAD_REVISION = "0003"

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Fixed key of the PostgreSQL advisory lock held while migrating ("gatemigr").
PG_MIGRATION_LOCK_KEY = 0x67_61_74_65_6D_69_67_72

_LOCK_POLL_SECONDS = 0.05


def alembic_config(url: str = "") -> Config:
    """Return an Alembic configuration for gate's migrations, built in code.

    Args:
        url: a store URL for Alembic commands that open their own connection
            (``revision --autogenerate``, ``upgrade`` from a shell). At
            start-up the store passes its connection instead.
    """
    from alembic.config import Config  # deferred: only paid when migrating

    config = Config()
    # ConfigParser interpolates "%": a literal one must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: Engine, target: StoreTarget, lock_timeout: float = 120.0) -> None:
    """Upgrade the schema of the store behind ``engine`` to the head revision.

    Raises:
        StoreUnavailable: the database cannot be reached, the lock is not
            obtained within ``lock_timeout`` seconds, or the upgrade fails.
    """
    try:
        if current_revisions(engine) == (HEAD_REVISION,):
            return
        if target.backend == "postgresql":
            with _postgres_lock(engine, lock_timeout):
                _upgrade(engine)
        elif target.sqlite_path is not None:
            with _file_lock(Path(f"{target.sqlite_path}.migrate.lock"), lock_timeout):
                _upgrade(engine)
        else:
            _upgrade(engine)
    except sa.exc.SQLAlchemyError as error:
        raise store_error(error) from error


def current_revisions(engine: Engine) -> tuple[str, ...]:
    """Return the revisions recorded in ``alembic_version`` (empty for a new database)."""
    with engine.connect() as conn:
        if not engine.dialect.has_table(conn, "alembic_version"):
            return ()
        rows = conn.execute(sa.text("SELECT version_num FROM alembic_version"))
        return tuple(sorted(str(value) for value in rows.scalars()))


def _upgrade(engine: Engine) -> None:
    from alembic import command  # deferred: only paid when migrating
    from alembic.util import CommandError

    config = alembic_config()
    with writer(engine).connect() as conn:
        config.attributes["connection"] = conn
        try:
            command.upgrade(config, "head")
        except CommandError as error:
            # e.g. the database is at a revision newer than this gate knows.
            raise StoreUnavailable(f"evidence store unavailable: schema migration failed: {error}") from error
        if conn.in_transaction():
            conn.commit()


@contextmanager
def _postgres_lock(engine: Engine, timeout: float) -> Iterator[None]:
    # A session-level advisory lock on a connection of its own, outside any
    # transaction, so that it spans Alembic's whole transaction and is
    # released even if that transaction fails.
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        deadline = time.monotonic() + timeout
        try_lock = sa.text("SELECT pg_try_advisory_lock(:key)")
        while not conn.execute(try_lock, {"key": PG_MIGRATION_LOCK_KEY}).scalar():
            if time.monotonic() > deadline:
                raise StoreUnavailable(
                    f"evidence store unavailable: another process has been migrating the schema "
                    f"for more than {timeout:g} s"
                )
            time.sleep(_LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})


@contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    # The lock file is left in place: removing it would let a third process
    # lock a new inode while the second still holds the old one.
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise StoreUnavailable(
            f"evidence store unavailable: cannot open the migration lock file: "
            f"{error.strerror or type(error).__name__}"
        ) from error
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreUnavailable(
                        f"evidence store unavailable: another process has been migrating the schema "
                        f"for more than {timeout:g} s"
                    ) from None
                time.sleep(_LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
