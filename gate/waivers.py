"""Waivers: time-bounded, owned exemptions from a policy (or one of its rules) for a subject.

A waiver names a policy (and optionally a rule), a subject selector (a namespace
pattern, an image pattern and/or an artifact digest; at least one), an owner, a
reason and an expiry at most ``max_days`` ahead. While it is in force, the rules it
names give ``skip`` for its subjects, in admission reviews and pipeline decisions
alike, and the decision lists the waiver's id among its evidence ids. Expired and
revoked waivers never apply; revoking keeps the record (who revoked it, and when).

The store keeps waivers; :class:`WaiverCache` reads those in force once per ``ttl``
per replica, and hands them to the engine as data (:class:`policies.Waiver`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from gate._nonblocking import may_block
from gate.errors import InvalidArgument
from gate.model import check_digest

if TYPE_CHECKING:
    from policies import Waiver as EngineWaiver

DEFAULT_MAX_DAYS = 90
MAX_TEXT = 256
MAX_REASON = 2048
# Namespace and policy/rule patterns: Kubernetes names plus Kyverno's wildcards.
_NAME_PATTERN = re.compile(r"^[a-z0-9*?]([-a-z0-9.*?/]{0,251}[a-z0-9*?])?$")
_IMAGE_PATTERN = re.compile(r"^[A-Za-z0-9*?][A-Za-z0-9._:/@*?+-]{0,511}$")
_DURATION = re.compile(r"^(\d{1,5})([hdw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


@dataclass(frozen=True, slots=True)
class Waiver:
    """One waiver record.

    Attributes:
        id: a UUID.
        policy: the policy key (``name``, or ``namespace/name`` for a namespaced Policy); wildcards allowed.
        rule: the rule name (wildcards allowed); empty for every rule of the policy.
        namespace: namespace pattern of the subjects; empty for any namespace.
        image: image reference pattern (e.g. ``registry.example/team/*``); empty for any image.
        digest: artifact digest (an image's, or a source tree's); empty for any.
        owner: who answers for the waiver (a person or team).
        reason: why it was granted.
        created_at: when it was created.
        created_by: who created it (as the caller declared).
        expires_at: when it stops applying.
        revoked_at: when it was revoked; None while not revoked.
        revoked_by: who revoked it.
    """

    id: str
    policy: str
    rule: str
    namespace: str
    image: str
    digest: str
    owner: str
    reason: str
    created_at: datetime
    created_by: str
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str = ""

    def in_force(self, now: datetime) -> bool:
        """Whether the waiver applies at ``now`` (created, not expired, not revoked)."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.created_at <= now < self.expires_at

    def state(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked`` at ``now``."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        return "active" if now < self.expires_at else "expired"

    def to_engine(self) -> EngineWaiver:
        """The waiver as the policy engine applies it."""
        from policies import Waiver as EngineWaiver

        return EngineWaiver(
            id=self.id,
            policy=self.policy,
            rule=self.rule,
            namespace=self.namespace,
            image=self.image,
            digest=self.digest,
            owner=self.owner,
            expires=self.expires_at.isoformat().replace("+00:00", "Z"),
            reason=self.reason,
        )


def parse_duration(text: str, field: str = "duration") -> timedelta:
    """A duration written ``12h``, ``14d`` or ``2w``.

    Raises:
        InvalidArgument: any other text.
    """
    found = _DURATION.fullmatch(text.strip())
    if not found or int(found.group(1)) == 0:
        raise InvalidArgument(field, f"expected a duration like 12h, 14d or 2w, got {text!r}")
    return int(found.group(1)) * _UNITS[found.group(2)]


def parse_expiry(text: str, now: datetime, field: str = "expires") -> datetime:
    """An expiry from a date (``2026-12-31``: that day's start, UTC), an ISO 8601 time, or a
    duration from ``now`` (``12h``, ``14d``, ``2w``).

    Raises:
        InvalidArgument: the text is none of these (or a time without a zone).
    """
    text = text.strip()
    if _DURATION.fullmatch(text):
        return now + parse_duration(text, field)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None:
        raise InvalidArgument(
            field, f"expected a date (2026-12-31), a time (2026-12-31T18:00:00Z) or 14d/12h/2w, got {text!r}"
        )
    if moment.utcoffset() is None:
        raise InvalidArgument(field, f"a time needs a zone (Z or +01:00), got {text!r}")
    return moment.astimezone(UTC)


def _text(value: str, field: str, limit: int = MAX_TEXT, *, required: bool = False) -> str:
    value = value.strip()
    if required and not value:
        raise InvalidArgument(field, "required, got an empty string")
    if len(value) > limit:
        raise InvalidArgument(field, f"at most {limit} characters, got {len(value)}")
    allowed = "\n" if field == "reason" else ""
    if any(ord(c) < 32 and c not in allowed for c in value):
        raise InvalidArgument(field, "must not contain control characters")
    return value


def _pattern(value: str, field: str, pattern: re.Pattern[str], what: str) -> str:
    if value and not pattern.fullmatch(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InvalidArgument(field, f"expected {what}, got {shown!r}")
    return value


def new_waiver(
    *,
    waiver_id: str,
    policy: str,
    rule: str = "",
    namespace: str = "",
    image: str = "",
    digest: str = "",
    owner: str,
    reason: str,
    expires_at: datetime,
    created_by: str,
    now: datetime,
    max_days: int = DEFAULT_MAX_DAYS,
) -> Waiver:
    """A checked new waiver.

    Raises:
        InvalidArgument: a missing or malformed field, no subject selector, or an expiry
            in the past or more than ``max_days`` ahead (the field is named).
    """
    policy = _pattern(_text(policy, "policy", required=True), "policy", _NAME_PATTERN, "a policy name")
    rule = _pattern(_text(rule, "rule"), "rule", _NAME_PATTERN, "a rule name")
    namespace = _pattern(_text(namespace, "namespace"), "namespace", _NAME_PATTERN, "a namespace (pattern)")
    image = _pattern(_text(image, "image", 512), "image", _IMAGE_PATTERN, "an image reference (pattern)")
    if digest:
        check_digest(digest, "digest")
    if not (namespace or image or digest):
        raise InvalidArgument("subject", "required: at least one of namespace, image and digest")
    owner = _text(owner, "owner", required=True)
    reason = _text(reason, "reason", MAX_REASON, required=True)
    created_by = _text(created_by, "created_by") or "unknown"
    if expires_at.utcoffset() is None:
        raise InvalidArgument("expires_at", "a time needs a zone")
    if expires_at <= now:
        raise InvalidArgument(
            "expires_at", f"must be in the future, got {expires_at.isoformat()} (now {now.isoformat()})"
        )
    if expires_at - now > timedelta(days=max_days):
        raise InvalidArgument(
            "expires_at",
            f"at most {max_days} days ahead (until {(now + timedelta(days=max_days)).isoformat()}), "
            f"got {expires_at.isoformat()}",
        )
    return Waiver(
        id=waiver_id,
        policy=policy,
        rule=rule,
        namespace=namespace,
        image=image,
        digest=digest,
        owner=owner,
        reason=reason,
        created_at=now,
        created_by=created_by,
        expires_at=expires_at.astimezone(UTC),
    )


class WaiverReader(Protocol):
    """What the cache needs from the store."""

    def list_waivers(self, *, active_at: datetime | None = None, policy: str = "") -> list[Waiver]:
        """Waivers, newest first; with ``active_at``, only those not revoked nor expired then."""


class WaiverCache:
    """The waivers in force, read from the store at most once per ``ttl`` seconds per replica.

    A waiver created or revoked on another replica reaches this one within ``ttl``;
    expiry is checked against the clock on every use, so an expired waiver never applies.
    """

    def __init__(
        self,
        store: WaiverReader,
        *,
        ttl: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be positive, got {ttl}")
        self._store = store
        self._ttl = ttl
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        # Each record with its engine form, replaced as one tuple so readers never see a mix.
        self._waivers: tuple[tuple[Waiver, EngineWaiver], ...] = ()

    def invalidate(self) -> None:
        """Read the store again on next use (after this replica created or revoked a waiver)."""
        with self._lock:
            self._read_at = float("-inf")

    def in_force(self, now: datetime) -> list[EngineWaiver]:
        """The engine form of every waiver in force at ``now``."""
        if self._monotonic() - self._read_at >= self._ttl:
            may_block("the waivers in force")
            with self._lock:
                if self._monotonic() - self._read_at >= self._ttl:
                    read = self._store.list_waivers(active_at=now)
                    self._waivers = tuple((w, w.to_engine()) for w in read)
                    self._read_at = self._monotonic()
        # Checked on every use: a waiver that expired since the read never applies.
        return [engine for waiver, engine in self._waivers if waiver.in_force(now)]


def recorded_waivers(store: Any, ids: Sequence[str], decided_at: datetime) -> list[EngineWaiver]:
    """The waivers among a decision's evidence ids that were in force when it was decided (for replays)."""
    found = []
    for record_id in ids:
        waiver = store.get_waiver(record_id)
        if waiver is not None and waiver.in_force(decided_at):
            found.append(waiver.to_engine())
    return found
