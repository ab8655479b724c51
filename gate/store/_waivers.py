"""Waiver records in the SQL store (a part of :class:`~gate.store.SqlStore`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import exc

from gate.errors import Conflict, GateError, InvalidArgument, NotFound
from gate.store._errors import is_unique_violation, store_error
from gate.store._schema import waivers
from gate.waivers import Waiver

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row

# A listing is for people and for the per-replica cache: bounded either way.
MAX_WAIVERS = 10_000


class WaiverRecords:
    """Create, read, list and revoke waivers."""

    if TYPE_CHECKING:

        def _read(self) -> contextlib.AbstractContextManager[Connection]: ...

        def _write(
            self, on_integrity: Callable[[exc.IntegrityError], GateError] | None = None
        ) -> contextlib.AbstractContextManager[Connection]: ...

    def add_waiver(self, waiver: Waiver) -> None:
        """Record a new waiver.

        Raises:
            Conflict: a waiver with this id exists.
        """
        if not waiver.id:
            raise InvalidArgument("id", "required, got an empty string")
        for name, moment in (("created_at", waiver.created_at), ("expires_at", waiver.expires_at)):
            if moment.utcoffset() is None:
                raise InvalidArgument(name, f"expected a timezone-aware datetime, got {moment.isoformat()}")

        def translate(error: exc.IntegrityError) -> GateError:
            if is_unique_violation(error):
                return Conflict(f"waiver {waiver.id!r} already exists")
            return store_error(error)

        with self._write(translate) as conn:
            conn.execute(waivers.insert().values(**_values(waiver)))

    def get_waiver(self, waiver_id: str) -> Waiver | None:
        """Return one waiver (revoked and expired ones included)."""
        with self._read() as conn:
            row = conn.execute(sa.select(waivers).where(waivers.c.id == waiver_id)).first()
        return None if row is None else _waiver(row)

    def list_waivers(self, *, active_at: datetime | None = None, policy: str = "") -> list[Waiver]:
        """Waivers, soonest expiry first; with ``active_at`` only those in force then; with
        ``policy`` only those for that policy (as written in the waiver)."""
        query = sa.select(waivers).order_by(waivers.c.expires_at, waivers.c.id).limit(MAX_WAIVERS)
        if active_at is not None:
            query = query.where(
                waivers.c.expires_at > active_at,
                waivers.c.created_at <= active_at,
                sa.or_(waivers.c.revoked_at.is_(None), waivers.c.revoked_at > active_at),
            )
        if policy:
            query = query.where(waivers.c.policy == policy)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [_waiver(row) for row in rows]

    def revoke_waiver(self, waiver_id: str, *, revoked_by: str, revoked_at: datetime) -> Waiver:
        """Revoke a waiver (it never applies again) and return it.

        Raises:
            NotFound: no such waiver.
            Conflict: it is already revoked.
        """
        if revoked_at.utcoffset() is None:
            raise InvalidArgument(
                "revoked_at", f"expected a timezone-aware datetime, got {revoked_at.isoformat()}"
            )
        with self._write() as conn:
            updated = conn.execute(
                waivers.update()
                .where(waivers.c.id == waiver_id, waivers.c.revoked_at.is_(None))
                .values(revoked_at=revoked_at, revoked_by=revoked_by)
            ).rowcount
            row = conn.execute(sa.select(waivers).where(waivers.c.id == waiver_id)).first()
        if row is None:
            raise NotFound("waiver", waiver_id)
        waiver = _waiver(row)
        if not updated:
            when = waiver.revoked_at.isoformat() if waiver.revoked_at else "an earlier time"
            raise Conflict(f"waiver {waiver_id!r} was already revoked at {when} by {waiver.revoked_by}")
        return waiver


def _values(waiver: Waiver) -> dict[str, Any]:
    return {
        "id": waiver.id,
        "policy": waiver.policy,
        "rule": waiver.rule,
        "namespace": waiver.namespace,
        "image": waiver.image,
        "digest": waiver.digest,
        "owner": waiver.owner,
        "reason": waiver.reason,
        "created_at": waiver.created_at,
        "created_by": waiver.created_by,
        "expires_at": waiver.expires_at,
        "revoked_at": waiver.revoked_at,
        "revoked_by": waiver.revoked_by,
    }


def _waiver(row: Row[Any]) -> Waiver:
    return Waiver(
        id=row.id,
        policy=row.policy,
        rule=row.rule,
        namespace=row.namespace,
        image=row.image,
        digest=row.digest,
        owner=row.owner,
        reason=row.reason,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )
