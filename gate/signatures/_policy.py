"""Who may sign: trusted keys or certificate identities, plus the claims to require."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gate.errors import InvalidArgument
from gate.signatures._certs import Identity
from gate.signatures._keys import PublicKey, hash_algorithm


@dataclass(frozen=True)
class SignaturePolicy:
    """The trust decision for one verification.

    * ``keys``: signatures must verify under one of these keys (key mode), or
    * ``identities``: the signing certificate must chain to a trusted CA and name one of
      these identities (keyless with Fulcio, or a private PKI).

    ``require_tlog`` demands a verified transparency-log entry (Rekor SET or bundle proof).
    ``reference`` (simple signing only) requires ``critical.identity.docker-reference`` to be
    exactly this value; cosign itself ignores the field, containers/image enforces it.
    ``annotations`` must all appear in the payload's ``optional`` map. ``hash_algorithm``
    fixes the hash for ECDSA/RSA keys (default: the curve's hash, SHA-256 for RSA).
    ``threshold`` is how many distinct trusted signers a DSSE envelope needs.
    """

    keys: tuple[PublicKey, ...] = ()
    identities: tuple[Identity, ...] = ()
    require_tlog: bool = False
    require_sct: bool = True
    reference: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)
    hash_algorithm: str | None = None
    threshold: int = 1

    def __post_init__(self) -> None:
        if not self.keys and not self.identities:
            raise InvalidArgument("policy", "name at least one trusted key or certificate identity")
        if self.threshold < 1:
            raise InvalidArgument("policy.threshold", f"must be at least 1, got {self.threshold}")
        if self.hash_algorithm is not None:
            hash_algorithm(self.hash_algorithm)

    @property
    def key_mode(self) -> bool:
        """True when signatures are checked against keys rather than certificates."""
        return bool(self.keys)
