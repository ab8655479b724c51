"""What a verification returns: a verdict with its reason and what was verified."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Verification:
    """The outcome of verifying one signature, attestation or bundle.

    ``verified`` is True only when every check passed; otherwise ``reason`` says which
    check failed and why. On success ``signer`` names who signed (a key fingerprint or a
    certificate identity), ``tlog_index``/``integrated_time`` the transparency-log entry
    when one was verified, ``claims`` the simple-signing payload, and ``predicate_type``/
    ``predicate`` the in-toto statement's content for policy conditions.
    """

    verified: bool
    reason: str = ""
    signer: str = ""
    issuer: str = ""
    tlog_index: int | None = None
    integrated_time: datetime | None = None
    claims: dict[str, Any] | None = field(default=None, compare=False)
    predicate_type: str = ""
    predicate: Any = field(default=None, compare=False)

    @classmethod
    def failure(cls, reason: str) -> Verification:
        """A failed verification with its reason."""
        return cls(verified=False, reason=reason or "verification failed")
