"""The WaiverService RPCs: messages in, :class:`~gate.core.Gate` waiver operations, messages out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from gate import _convert as cv
from gate.auth import current_caller
from gate.errors import InvalidArgument
from gate.v1 import waiver_pb2
from gate.waivers import Waiver

if TYPE_CHECKING:
    from google.protobuf.duration_pb2 import Duration
    from google.protobuf.message import Message

    from gate.core import Gate

# Longest a ``duration`` may be before it is refused outright (the configured maximum is checked later).
_MAX_DURATION = timedelta(days=3650)


def waiver_to_proto(waiver: Waiver, now: Any) -> waiver_pb2.Waiver:
    """A waiver record as its message (``state`` as at ``now``)."""
    return waiver_pb2.Waiver(
        id=waiver.id,
        policy=waiver.policy,
        rule=waiver.rule,
        namespace=waiver.namespace,
        image=waiver.image,
        digest=waiver.digest,
        owner=waiver.owner,
        reason=waiver.reason,
        created_at=cv.timestamp(waiver.created_at),
        created_by=waiver.created_by,
        expires_at=cv.timestamp(waiver.expires_at),
        revoked_at=cv.timestamp(waiver.revoked_at),
        revoked_by=waiver.revoked_by,
        state=waiver.state(now),
    )


def _seconds_text(duration: Duration) -> str:
    """A valid Duration in seconds, exactly (``-0.000000001``, ``90``)."""
    sign = "-" if duration.seconds < 0 or duration.nanos < 0 else ""
    fraction = f"{abs(duration.nanos):09d}".rstrip("0")
    return f"{sign}{abs(duration.seconds)}" + (f".{fraction}" if fraction else "")


def _actor(declared: str) -> str:
    """The authenticated caller; the declared actor only when the call is not authenticated."""
    return current_caller() or declared.strip()[:256] or "unknown"


class WaiverApi:
    """Unary implementations of gate.v1.WaiverService."""

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self.unary: Mapping[str, Callable[[Any], Message]] = {
            "gate.v1.WaiverService/CreateWaiver": self.create,
            "gate.v1.WaiverService/ListWaivers": self.list,
            "gate.v1.WaiverService/RevokeWaiver": self.revoke,
        }

    def create(self, request: waiver_pb2.CreateWaiverRequest) -> waiver_pb2.Waiver:
        """CreateWaiver."""
        has_time = request.HasField("expires_at")
        has_duration = request.HasField("duration")
        if has_time == has_duration:
            raise InvalidArgument("expires_at", "required: exactly one of expires_at and duration")
        now = self._gate.clock()
        if has_duration:
            duration = cv.from_duration(request.duration, "duration")
            if not timedelta(seconds=1) <= duration <= _MAX_DURATION:
                raise InvalidArgument(
                    "duration", f"expected 1 s to 3650 days, got {_seconds_text(request.duration)} s"
                )
            expires_at = now + duration
        else:
            expires_at = cv.from_timestamp(request.expires_at, "expires_at")
        waiver = self._gate.create_waiver(
            policy=request.policy,
            rule=request.rule,
            namespace=request.namespace,
            image=request.image,
            digest=request.digest,
            owner=request.owner,
            reason=request.reason,
            expires_at=expires_at,
            created_by=_actor(request.actor),
        )
        return waiver_to_proto(waiver, now)

    def list(self, request: waiver_pb2.ListWaiversRequest) -> waiver_pb2.ListWaiversResponse:
        """ListWaivers."""
        now = self._gate.clock()
        found = self._gate.list_waivers(include_inactive=request.include_inactive, policy=request.policy)
        return waiver_pb2.ListWaiversResponse(waivers=[waiver_to_proto(w, now) for w in found])

    def revoke(self, request: waiver_pb2.RevokeWaiverRequest) -> waiver_pb2.Waiver:
        """RevokeWaiver."""
        waiver = self._gate.revoke_waiver(request.id, _actor(request.actor))
        return waiver_to_proto(waiver, self._gate.clock())
