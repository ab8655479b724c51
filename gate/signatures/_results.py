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
    certificate identity), ``tlog_index``/``integrated_time`` the transparency-log entry's
    global index and time when the log signed them, ``claims`` the simple-signing payload,
    and ``predicate_type``/``predicate`` the in-toto statement's content for policy conditions.

    ``tlog_tree``/``tlog_tree_index`` say where an inclusion proof placed the entry: the
    checkpoint origin of the tree it was verified in and the index within that tree. A
    sharded Rekor v1 log numbers entries of a later shard from zero again, so the tree index
    is the global ``tlog_index`` only where the trust root pins the tree itself (Rekor v2).
    ``timestamp`` is the ``genTime`` of an RFC 3161 timestamp over the signature that a
    timestamp authority of the trust root signed (key-based bundles).
    """

    verified: bool
    reason: str = ""
    signer: str = ""
    issuer: str = ""
    tlog_index: int | None = None
    integrated_time: datetime | None = None
    tlog_tree: str = ""
    tlog_tree_index: int | None = None
    timestamp: datetime | None = None
    claims: dict[str, Any] | None = field(default=None, compare=False)
    predicate_type: str = ""
    predicate: Any = field(default=None, compare=False)

    @classmethod
    def failure(cls, reason: str) -> Verification:
        """A failed verification with its reason."""
        return cls(verified=False, reason=reason or "verification failed")
