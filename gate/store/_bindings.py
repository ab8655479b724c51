"""Artifact-to-project bindings in the SQL store (used by :class:`~gate.store.SqlStore`).

A digest is bound to the projects whose pipelines may record and read
evidence about it. The first binding is *claimed*: it is made only while the
digest has none, so that two projects racing to record the first evidence
for one digest cannot both win. Every write therefore takes a per-digest
lock first: a transaction-scoped advisory lock on PostgreSQL, where
concurrent inserts of different rows would not otherwise see each other;
SQLite's writes are serialised by its database lock already.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gate.errors import InvalidArgument
from gate.model import check_digest
from gate.store._schema import artifact_projects

# First key of the two-key advisory locks taken per digest ("bind"); the two-key
# form is a key space apart from the one-key lock of migrations.
_LOCK_SPACE = 0x62_69_6E_64

# A project name is a Kubernetes namespace-like label in practice; the bound keeps
# hostile input from growing rows and log lines without limit.
MAX_PROJECT_LENGTH = 253

_SELECT_PROJECTS = (
    sa.select(artifact_projects.c.project)
    .where(artifact_projects.c.digest == sa.bindparam("digest"))
    .order_by(artifact_projects.c.project)
)
_INSERT = sa.insert(artifact_projects)
_DELETE = sa.delete(artifact_projects).where(
    artifact_projects.c.digest == sa.bindparam("digest"),
    artifact_projects.c.project == sa.bindparam("project"),
)
_LOCK = sa.text("SELECT pg_advisory_xact_lock(:space, :key)")


def check_binding(digest: str, project: str) -> None:
    """Raise InvalidArgument unless ``digest`` is a digest gate accepts and ``project`` a project name."""
    check_digest(digest, "digest")
    if not project:
        raise InvalidArgument("project", "required, got an empty string")
    if len(project) > MAX_PROJECT_LENGTH or not project.isprintable() or project != project.strip():
        shown = project if len(project) <= 80 else project[:77] + "..."
        raise InvalidArgument(
            "project",
            f"expected at most {MAX_PROJECT_LENGTH} printable characters without surrounding spaces, "
            f"got {shown!r}",
        )


def projects_of(conn: Connection, digest: str) -> tuple[str, ...]:
    """The projects ``digest`` is bound to, sorted."""
    return tuple(str(project) for project in conn.execute(_SELECT_PROJECTS, {"digest": digest}).scalars())


def lock_digest(conn: Connection, digest: str) -> None:
    """Serialise binding writes for ``digest`` until the transaction ends (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(digest.encode()).digest()[:4], "big", signed=True)
        conn.execute(_LOCK, {"space": _LOCK_SPACE, "key": key})


def insert_binding(conn: Connection, digest: str, project: str, bound_by: str, now: datetime) -> None:
    """Add one binding (the caller checked that it is not there)."""
    conn.execute(_INSERT, {"digest": digest, "project": project, "bound_at": now, "bound_by": bound_by})


def delete_binding(conn: Connection, digest: str, project: str) -> bool:
    """Remove one binding; return whether it existed."""
    return bool(conn.execute(_DELETE, {"digest": digest, "project": project}).rowcount)
